//! The source papers' experiments, each writing a run directory of CSV
//! files, a Markdown table and charts.

pub mod eager;
pub mod ga_vs_sgd;
pub mod gradual_vs_stacked;
pub mod imputation;
pub mod restore;
pub mod variants;

pub use eager::{eager, Eager};
pub use ga_vs_sgd::{ga_vs_sgd, GaVsSgd};
pub use gradual_vs_stacked::{gradual_vs_stacked, GradualVsStacked};
pub use imputation::{imputation, Imputation};
pub use restore::{restoration, Restoration, Task};
pub use variants::{variants, TablePretraining, Variants, Width};

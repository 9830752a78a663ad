//! Runs: the run directory a training command writes (its configuration,
//! metrics, summary, model and pictures), and the configuration of a `train`
//! run.

pub mod config;
pub mod dir;

pub use config::{ModelKind, RunConfig};
pub use dir::RunDir;

//! Optimizers over one flat parameter slice.

pub mod adam;
pub mod average;
pub mod lbfgs;
pub mod max_norm;
pub mod sgd;
pub use adam::{Adam, AdamConfig};
pub use average::WeightAverage;
pub use max_norm::MaxNorm;
pub use sgd::Sgd;

//! Optimizers over one flat parameter slice.

pub mod adam;
pub mod lbfgs;
pub mod sgd;
pub use adam::{Adam, AdamConfig};
pub use sgd::Sgd;

//! Optimizers over one flat parameter slice.

pub mod lbfgs;
pub mod sgd;
pub use sgd::Sgd;

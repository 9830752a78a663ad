//! Optimizers over one flat parameter slice.

pub mod sgd;
pub use sgd::Sgd;

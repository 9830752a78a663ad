//! Models: the denoising autoencoder (tied or untied), sparse, stacked and
//! convolutional autoencoders, each offering the one [`Estimator`] surface.

pub mod classifier;
pub mod conv;
pub mod dae;
pub mod deep;
pub mod ensemble;
pub mod estimator;
pub mod gradcheck;
pub mod sparse_ae;
pub mod stacked;
pub use dae::{DaeConfig, DenoisingAutoencoder, Metrics};
pub use estimator::Estimator;

/// The error for data whose rows have the wrong width.
pub(crate) fn check_columns(what: &str, expected: usize, got: usize) -> crate::Result<()> {
    if got != expected {
        return Err(crate::Error::shape(
            what,
            format!("{expected} columns"),
            format!("{got} columns"),
        ));
    }
    Ok(())
}

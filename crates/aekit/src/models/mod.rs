//! Models: the denoising autoencoder (tied or untied), sparse, stacked and
//! convolutional autoencoders.

pub mod classifier;
pub mod conv;
pub mod dae;
pub mod deep;
pub mod ensemble;
pub mod gradcheck;
pub mod sparse_ae;
pub mod stacked;
pub use dae::{DaeConfig, DenoisingAutoencoder, Metrics};

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

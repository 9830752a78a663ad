//! Models: the denoising autoencoder (tied or untied).

pub mod dae;
pub mod gradcheck;
pub mod sparse_ae;
pub use dae::{DaeConfig, DenoisingAutoencoder, Metrics};

//! Models: the denoising autoencoder (tied or untied).

pub mod dae;
pub use dae::{DaeConfig, DenoisingAutoencoder, Metrics};

//! Models: the denoising autoencoder (tied or untied), sparse, stacked and
//! convolutional autoencoders, each offering the one [`Estimator`] surface.

pub mod classifier;
pub mod conv;
pub mod dae;
pub mod deep;
pub mod deep_ae;
pub mod ensemble;
pub mod estimator;
pub mod gradcheck;
pub mod impute;
pub mod pca;
pub mod rbm;
pub mod scaler;
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

/// Refuses data the model cannot learn from: a non-finite value anywhere,
/// or (for cross-entropy, whose targets are probabilities) a value outside
/// [0, 1]. Names the first bad row and column.
pub(crate) fn check_values(what: &str, x: &[f32], dim: usize, unit: bool) -> crate::Result<()> {
    let bad = x
        .iter()
        .position(|v| !v.is_finite() || (unit && !(0.0..=1.0).contains(v)));
    match bad {
        None => Ok(()),
        Some(i) => Err(crate::Error::config(
            what,
            format!(
                "row {}, column {} is {}: {}",
                i / dim.max(1),
                i % dim.max(1),
                x[i],
                if x[i].is_finite() {
                    "cross-entropy needs values in [0, 1] (use --loss squared for other data)"
                } else {
                    "the data must be finite"
                }
            ),
        )),
    }
}

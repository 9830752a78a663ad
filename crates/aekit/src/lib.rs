//! aekit: autoencoders for learning representations without labels.
//!
//! The estimator surface follows scikit-learn: construct a model with its
//! hyperparameters, then `fit`, `partial_fit`, `transform` (encode),
//! `inverse_transform` (decode), `reconstruct` and `score`.
//!
//! ```no_run
//! use aekit::{models::{DaeConfig, DenoisingAutoencoder}, train::{Silent, TrainConfig}};
//! let data = aekit::data::builtin::builtin_mnist().unwrap();
//! let x = ndarray::ArrayView2::from_shape((data.n, data.dim), &data.x).unwrap();
//! let mut dae = DenoisingAutoencoder::new(DaeConfig::default(), TrainConfig::default());
//! dae.fit(x, None, &mut Silent).unwrap();
//! let codes = dae.transform(x).unwrap();
//! ```

pub mod bench;
pub mod data;
pub mod error;
pub mod experiments;
#[cfg(feature = "cuda")]
pub mod gpu;
pub mod io;
pub mod layers;
pub mod metrics;
pub mod models;
pub mod optim;
pub mod per_example;
pub mod run;
pub mod tensor;
pub mod train;
pub mod viz;

pub use error::{Error, Result};
pub use ndarray;

//! How a CAE is trained: its loss, corruption, eager stop and loop.

use crate::error::{Error, Result};
use crate::layers::{Corruption, Loss};
use crate::models::conv::network::Network;
use crate::train::{Optimizer, TrainConfig};
use serde::{Deserialize, Serialize};

/// How a CAE is trained: its loss and corruption, an eager stop, and the
/// loop (Adam by default).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CaeTrainConfig {
    /// `squared` (½·Σ(x − z)² per image) or `xent` (needs a final sigmoid).
    pub loss: Loss,
    /// Input corruption for a denoising CAE (`none`, `mask:P`, `gauss:S`, …).
    pub noise: Corruption,
    /// Eager stop: end training once an epoch improves the validation loss
    /// by less than this fraction of the previous best; 0 disables.
    pub min_improvement: f64,
    /// The loop: `threads` workers split each batch (1 for ensemble
    /// members; 0 = all cores); `patience` counts epochs without a better
    /// validation loss.
    pub train: TrainConfig,
    /// Replace the decoder's last activation with the identity: a linear
    /// output, for real-valued images (with `loss = "squared"`).
    pub linear_output: bool,
    /// Standardise each input value (pixel and channel) by the training
    /// images' mean and standard deviation, kept in the model; inputs are
    /// standardised and outputs put back in the data's units. Needs a
    /// linear output and squared loss.
    pub standardize: bool,
}

impl Default for CaeTrainConfig {
    fn default() -> Self {
        CaeTrainConfig {
            loss: Loss::Squared,
            noise: Corruption::None,
            min_improvement: 0.0,
            train: TrainConfig {
                epochs: 10,
                batch: 100,
                patience: 0,
                ..TrainConfig::adam(1e-3)
            },
            linear_output: false,
            standardize: false,
        }
    }
}

impl CaeTrainConfig {
    /// Refuses a batch whose workspaces (one per worker: activations of
    /// every layer and a gradient) the machine cannot hold, before any is
    /// allocated.
    pub fn check_memory(&self, net: &Network, batch: usize) -> Result<()> {
        let workers = self.train.resolved_threads().clamp(1, batch.max(1));
        let chunk = batch.div_ceil(workers);
        crate::tensor::memory::check_f32s(
            "train.batch",
            workers as u128 * (net.floats_per_image(chunk) + net.n_params() as u128),
        )
    }

    pub fn validate(&self) -> Result<()> {
        self.train.validate()?;
        if self.train.optimizer != Optimizer::Adam {
            return Err(Error::config("train.optimizer", "a CAE trains with adam"));
        }
        if !(0.0..1.0).contains(&self.min_improvement) {
            return Err(Error::config("train.min_improvement", "must be in [0, 1)"));
        }
        if self.standardize && (!self.linear_output || self.loss != Loss::Squared) {
            return Err(Error::config(
                "model.standardize",
                "standardised images are real-valued: they need linear_output = true and loss = \"squared\" \
                 (--output identity --loss squared)",
            ));
        }
        self.noise.validate("train.noise")
    }
}

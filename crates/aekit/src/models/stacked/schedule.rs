//! How a stack is pretrained: the schedule (stacked, gradual, hybrid f)
//! and the pretraining settings.

use crate::error::{Error, Result};
use crate::layers::{Corruption, Loss};
use crate::train::{Optimizer, TrainConfig};
use serde::{Deserialize, Serialize};

/// A pretraining schedule.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum Schedule {
    Stacked,
    Gradual,
    /// Each layer an RBM trained by contrastive divergence on the codes of
    /// the layers below (the `[model.rbm]` settings), with the stacked
    /// schedule's epochs.
    Rbm,
    /// Fraction f of each new layer's budget spent stacked (see module docs).
    Hybrid(f64),
}

impl Schedule {
    /// (stacked epochs, gradual epochs) for a new layer's budget of n epochs.
    pub fn split(&self, n: usize) -> (usize, usize) {
        let f = match *self {
            Schedule::Stacked | Schedule::Rbm => 1.0,
            Schedule::Gradual => 0.0,
            Schedule::Hybrid(f) => f,
        };
        (
            (2.0 * n as f64 * f).round() as usize,
            (n as f64 * (1.0 - f)).round() as usize,
        )
    }
}

impl std::str::FromStr for Schedule {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "stacked" => Ok(Schedule::Stacked),
            "gradual" => Ok(Schedule::Gradual),
            "rbm" => Ok(Schedule::Rbm),
            _ => {
                let f = s
                    .strip_prefix("hybrid:")
                    .and_then(|f| f.parse::<f64>().ok())
                    .ok_or_else(|| format!("schedule `{s}` should be stacked, gradual, rbm or hybrid:F"))?;
                if (0.0..=1.0).contains(&f) {
                    Ok(Schedule::Hybrid(f))
                } else {
                    Err(format!("hybrid fraction {f} is not in [0, 1]"))
                }
            }
        }
    }
}

impl std::fmt::Display for Schedule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Schedule::Stacked => write!(f, "stacked"),
            Schedule::Gradual => write!(f, "gradual"),
            Schedule::Rbm => write!(f, "rbm"),
            Schedule::Hybrid(x) => write!(f, "hybrid:{x}"),
        }
    }
}

impl TryFrom<String> for Schedule {
    type Error = String;
    fn try_from(s: String) -> std::result::Result<Self, String> {
        s.parse()
    }
}

impl From<Schedule> for String {
    fn from(s: Schedule) -> String {
        s.to_string()
    }
}

/// Pretraining settings: the stack, and the training loop of each layer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PretrainConfig {
    /// Hidden layer widths, bottom first.
    pub layers: Vec<usize>,
    pub schedule: Schedule,
    /// Corruption of each layer's input when that layer is trained stacked
    /// (one entry: the same for every layer). Gradual training corrupts x
    /// with the first entry.
    pub noise: Vec<Corruption>,
    pub loss: Loss,
    /// Budget n of each later layer (see [`Schedule::split`]).
    pub layer_epochs: usize,
    /// Each later layer's epochs on the stacked or rbm schedule, in place
    /// of the 2n of [`Schedule::split`] (which is always even); unset, the
    /// split stands.
    pub later_epochs: Option<usize>,
    /// The loop of every layer (SGD): `train.epochs` is the first layer's
    /// epochs; patience is not used (pretraining has no validation).
    pub train: TrainConfig,
    /// Each layer's learning rate is multiplied by this after every epoch
    /// of that layer (1: constant; the stacked schedule only), so a layer
    /// starts at `train.lr` and ends at `train.lr · lr_decay^(epochs-1)`.
    pub lr_decay: f32,
    /// Give each layer's pretraining autoencoder its own decoder weights W′
    /// instead of Wᵀ (the stacked schedule only). The decoders are kept in
    /// the model for reconstruction; the encoder is what fine-tuning uses.
    pub untied: bool,
    /// The RBMs of the `rbm` schedule (their epochs come from the schedule,
    /// their threads and seed from `train`).
    pub rbm: crate::models::rbm::RbmConfig,
}

impl Default for PretrainConfig {
    fn default() -> Self {
        PretrainConfig {
            layers: vec![1000, 1000, 1000],
            schedule: Schedule::Stacked,
            noise: vec![
                Corruption::Mask(0.1),
                Corruption::Mask(0.2),
                Corruption::Mask(0.3),
            ],
            loss: Loss::CrossEntropy,
            layer_epochs: 15,
            later_epochs: None,
            train: TrainConfig {
                epochs: 15,
                batch: 20,
                lr: 0.01,
                momentum: 0.0,
                weight_decay: 0.0,
                patience: 0,
                seed: 1,
                threads: 1,
                ..TrainConfig::default()
            },
            lr_decay: 1.0,
            untied: false,
            rbm: crate::models::rbm::RbmConfig::default(),
        }
    }
}

impl PretrainConfig {
    pub fn validate(&self) -> Result<()> {
        if self.layers.is_empty() || self.layers.contains(&0) {
            return Err(Error::config("layers", "give one or more widths of at least 1"));
        }
        if self.noise.is_empty() {
            return Err(Error::config("noise", "give at least one corruption"));
        }
        if self.noise.len() > self.layers.len() {
            return Err(Error::config(
                "noise",
                format!(
                    "{} corruptions for {} layers: give at most one per layer (the last one serves every layer after it)",
                    self.noise.len(),
                    self.layers.len()
                ),
            ));
        }
        for n in &self.noise {
            n.validate("noise")?;
        }
        if self.schedule == Schedule::Rbm {
            self.rbm.validate("model.rbm")?;
        }
        if self.later_epochs.is_some() && !matches!(self.schedule, Schedule::Stacked | Schedule::Rbm) {
            return Err(Error::config(
                "later_epochs",
                format!(
                    "sets the stacked and rbm schedules' epochs; the {} schedule splits layer_epochs",
                    self.schedule
                ),
            ));
        }
        if self.train.optimizer != Optimizer::Sgd {
            return Err(Error::config("train.optimizer", "pretraining runs SGD"));
        }
        crate::train::check_lr_decay("lr_decay", self.lr_decay)?;
        if self.lr_decay != 1.0 && self.schedule != Schedule::Stacked {
            return Err(Error::config(
                "lr_decay",
                format!(
                    "decays the stacked schedule's layers; the {} schedule keeps its rate",
                    self.schedule
                ),
            ));
        }
        if self.untied && self.schedule != Schedule::Stacked {
            return Err(Error::config(
                "untied",
                format!(
                    "unties the stacked schedule's autoencoders; the {} schedule is not supported",
                    self.schedule
                ),
            ));
        }
        self.train.validate()
    }

    /// These settings for the stack `layers`, with the corruptions cut to
    /// one per layer (so the defaults, written for three layers, fit fewer).
    pub fn with_layers(mut self, layers: &[usize]) -> PretrainConfig {
        self.layers = layers.to_vec();
        self.noise.truncate(layers.len().max(1));
        self
    }

    pub(crate) fn noise_for(&self, layer: usize) -> Corruption {
        self.noise[layer.min(self.noise.len() - 1)]
    }

    /// The loop of one layer's DAE: these settings with `epochs`, no early
    /// stopping.
    pub(crate) fn train_config(&self, epochs: usize) -> TrainConfig {
        TrainConfig {
            epochs,
            patience: 0,
            ..self.train.clone()
        }
    }
}

//! The deep autoencoder's settings: code and output units, pretraining,
//! fine-tuning and its step-size decay.

use crate::error::{Error, Result};
use crate::layers::{Corruption, Loss};
use crate::models::rbm::RbmConfig;
use crate::train::{Optimizer, TrainConfig};
use serde::{Deserialize, Serialize};

/// The code layer's units.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Code {
    #[default]
    Linear,
    Logistic,
}

impl std::str::FromStr for Code {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "linear" => Ok(Code::Linear),
            "logistic" | "sigmoid" => Ok(Code::Logistic),
            _ => Err(format!("code units `{s}` should be linear or logistic")),
        }
    }
}

/// How the layers start before fine-tuning.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Pretrain {
    /// A stack of RBMs.
    #[default]
    Rbm,
    /// A stack of one-layer denoising autoencoders.
    Dae,
    /// Random weights (Glorot-uniform).
    None,
}

impl std::str::FromStr for Pretrain {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "rbm" => Ok(Pretrain::Rbm),
            "dae" => Ok(Pretrain::Dae),
            "none" => Ok(Pretrain::None),
            _ => Err(format!("pretraining `{s}` should be rbm, dae or none")),
        }
    }
}

impl std::fmt::Display for Pretrain {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Pretrain::Rbm => "rbm",
            Pretrain::Dae => "dae",
            Pretrain::None => "none",
        })
    }
}

/// Pretraining of a layer as a denoising autoencoder.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DaePretrain {
    /// Fraction of inputs set to 0.
    pub noise: f32,
    /// The loop of each layer (Adam by default).
    pub train: TrainConfig,
}

impl Default for DaePretrain {
    fn default() -> Self {
        DaePretrain {
            noise: 0.2,
            train: TrainConfig {
                epochs: 10,
                batch: 100,
                patience: 0,
                ..TrainConfig::adam(1e-3)
            },
        }
    }
}

/// Everything a deep autoencoder's training needs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DeepAeConfig {
    /// Encoder widths after the input, the code last.
    pub layers: Vec<usize>,
    pub code: Code,
    /// Fine-tuning loss: `xent` (of the logistic output) or `squared`.
    pub loss: Loss,
    pub pretrain: Pretrain,
    /// `[rbm]`: the RBMs' training.
    pub rbm: RbmConfig,
    /// `[dae]`: the one-layer DAEs' training.
    pub dae: DaePretrain,
    /// `[train]`: fine-tuning. `optimizer = "lbfgs"` runs `line_searches`
    /// L-BFGS iterations on each batch of `batch` examples in turn.
    pub train: TrainConfig,
    pub line_searches: usize,
    /// Corruption of the inputs in fine-tuning (a deep denoising
    /// autoencoder; the target stays clean): `none`, `mask:P`, `gauss:S`,
    /// `saltpepper:P`, `block:S`.
    pub noise: Corruption,
    /// The output units: `logistic` (data in [0, 1]) or `linear`
    /// (real-valued data; squared loss, no RBM pretraining).
    pub output: Code,
    /// Standardise each input feature by the training data's mean and
    /// standard deviation, kept in the model (needs the linear output).
    pub standardize: bool,
    /// Each fine-tuning epoch after the first `decay_from` runs at this
    /// times the step size of the one before (1 keeps it constant; Adam and
    /// SGD only).
    pub lr_decay: f32,
    /// The epochs run at the full step size before `lr_decay` starts.
    pub decay_from: usize,
}

impl Default for DeepAeConfig {
    fn default() -> Self {
        DeepAeConfig {
            layers: vec![1000, 500, 250, 30],
            code: Code::Linear,
            loss: Loss::CrossEntropy,
            pretrain: Pretrain::Rbm,
            rbm: RbmConfig::default(),
            dae: DaePretrain::default(),
            train: TrainConfig {
                epochs: 50,
                batch: 100,
                patience: 0,
                ..TrainConfig::adam(1e-3)
            },
            line_searches: 3,
            noise: Corruption::None,
            output: Code::Logistic,
            standardize: false,
            lr_decay: 1.0,
            decay_from: 0,
        }
    }
}

impl DeepAeConfig {
    pub fn validate(&self) -> Result<()> {
        if self.layers.is_empty() || self.layers.contains(&0) {
            return Err(Error::config(
                "model.layers",
                "give one or more widths of at least 1",
            ));
        }
        self.rbm.validate("model.rbm")?;
        if !(0.0..1.0).contains(&self.dae.noise) {
            return Err(Error::config("model.dae.noise", "must be in [0, 1)"));
        }
        self.dae.train.validate_in("model.dae.train")?;
        self.train.validate_in("model.train")?;
        if matches!(self.train.optimizer, Optimizer::Ga | Optimizer::Es) {
            return Err(Error::config(
                "model.train.optimizer",
                "the deep autoencoder fine-tunes with adam, sgd or lbfgs",
            ));
        }
        self.noise.validate("model.noise")?;
        if self.standardize && self.output != Code::Linear {
            return Err(Error::config(
                "model.standardize",
                "standardised data is real-valued: it needs output = \"linear\" (--output linear)",
            ));
        }
        if self.output == Code::Linear && self.loss != Loss::Squared {
            return Err(Error::config(
                "model.output",
                "a linear output trains on squared loss (loss = \"squared\"); cross-entropy needs logistic outputs",
            ));
        }
        if self.output == Code::Linear && self.pretrain == Pretrain::Rbm {
            return Err(Error::config(
                "model.pretrain",
                "RBMs take binary visible units, not real-valued data: pretrain with dae or none",
            ));
        }
        crate::train::check_lr_decay("model.lr_decay", self.lr_decay)?;
        if self.train.optimizer == Optimizer::Lbfgs && self.lr_decay != 1.0 {
            return Err(Error::config(
                "model.lr_decay",
                "applies to adam and sgd; lbfgs finds its own steps",
            ));
        }
        if self.train.optimizer == Optimizer::Lbfgs && self.line_searches == 0 {
            return Err(Error::config("model.line_searches", "must be at least 1"));
        }
        Ok(())
    }
}

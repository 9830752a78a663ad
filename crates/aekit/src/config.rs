//! Run configuration: TOML sections `[data]`, `[model]`, `[train]`, each with
//! documented defaults. A file is read, command-line flags override it, then
//! one `validate()` checks everything. The resolved config is saved in the
//! run directory and in the model file.

use crate::data::{default_val_size, DataSource};
use crate::error::{Error, Result};
use crate::models::dae::DaeConfig;
use crate::models::sparse_ae::SparseConfig;
use crate::optim::lbfgs::LbfgsConfig;
use crate::train::parallel::ParallelMode;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// Where the data comes from and how it is split.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DataConfig {
    /// `builtin` (10k MNIST test images in the binary), `mnist`,
    /// `fashion-mnist`, or a directory of IDX files.
    pub source: String,
    /// Cache folder for downloads; unset means `$AEKIT_DATA`, else the user's
    /// cache directory.
    pub data_dir: Option<PathBuf>,
    /// Training examples (class-balanced subset); unset means all that remain
    /// after validation.
    pub train_size: Option<usize>,
    /// Validation examples; unset means 1000 (built-in) or 10000. 0 disables
    /// validation and early stopping.
    pub val_size: Option<usize>,
}

impl Default for DataConfig {
    fn default() -> Self {
        DataConfig {
            source: "builtin".into(),
            data_dir: None,
            train_size: None,
            val_size: None,
        }
    }
}

impl DataConfig {
    pub fn source(&self) -> Result<DataSource> {
        self.source
            .parse()
            .map_err(|e: String| Error::config("data.source", e))
    }

    /// The validation size in force.
    pub fn val_size(&self) -> Result<usize> {
        Ok(self
            .val_size
            .unwrap_or_else(|| default_val_size(&self.source().unwrap_or(DataSource::Builtin))))
    }
}

/// How a model is trained.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TrainConfig {
    /// Passes over the training set.
    pub epochs: usize,
    /// Examples per update; 1 is per-example SGD.
    pub batch: usize,
    /// Learning rate η (the gradient is the batch mean).
    pub lr: f32,
    /// Classical momentum μ in [0, 1).
    pub momentum: f32,
    /// L2 weight decay λ: adds ½·λ·‖W‖² to the objective, weights only.
    pub weight_decay: f32,
    /// Stop after this many epochs without a better validation loss, and
    /// restore the best weights; 0 disables early stopping.
    pub patience: usize,
    /// Seed of every random choice (initialisation, shuffling, noise, splits).
    pub seed: u64,
    /// Threads; 0 means all cores. With 1 thread a run is bit-for-bit
    /// reproducible (and so is `minibatch` with any number).
    pub threads: usize,
    /// How threads are used: `auto` (split for batch 1, else GEMM), `split`,
    /// `hogwild`, `minibatch` or `gemm`.
    pub parallel: ParallelMode,
    /// `sgd` (minibatches, epochs) or `lbfgs` (full batch, `[lbfgs]` settings).
    pub optimizer: Optimizer,
}

/// The optimizer of a `train` run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Optimizer {
    #[default]
    Sgd,
    Lbfgs,
}

impl std::str::FromStr for Optimizer {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "sgd" => Ok(Optimizer::Sgd),
            "lbfgs" | "l-bfgs" => Ok(Optimizer::Lbfgs),
            _ => Err(format!("unknown optimizer `{s}` (expected sgd or lbfgs)")),
        }
    }
}

/// Which model a `train` run builds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum ModelKind {
    /// Denoising autoencoder (`[model]`).
    #[default]
    Dae,
    /// Sparse autoencoder (`[sparse]`), trained with L-BFGS.
    Sparse,
}

impl std::str::FromStr for ModelKind {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "dae" => Ok(ModelKind::Dae),
            "sparse" => Ok(ModelKind::Sparse),
            _ => Err(format!("unknown model kind `{s}` (expected dae or sparse)")),
        }
    }
}

impl Default for TrainConfig {
    fn default() -> Self {
        TrainConfig {
            epochs: 15,
            batch: 20,
            lr: 0.1,
            momentum: 0.0,
            weight_decay: 0.0,
            patience: 5,
            seed: 1,
            threads: 1,
            parallel: ParallelMode::Auto,
            optimizer: Optimizer::Sgd,
        }
    }
}

impl TrainConfig {
    pub fn validate(&self) -> Result<()> {
        if self.epochs == 0 {
            return Err(Error::config("train.epochs", "must be at least 1"));
        }
        if self.batch == 0 {
            return Err(Error::config("train.batch", "must be at least 1"));
        }
        if !(self.lr.is_finite() && self.lr > 0.0) {
            return Err(Error::config(
                "train.lr",
                format!("learning rate {} must be positive and finite", self.lr),
            ));
        }
        if !(0.0..1.0).contains(&self.momentum) {
            return Err(Error::config(
                "train.momentum",
                format!("{} is not in [0, 1)", self.momentum),
            ));
        }
        if !(self.weight_decay.is_finite() && self.weight_decay >= 0.0) {
            return Err(Error::config(
                "train.weight_decay",
                format!("{} must be ≥ 0", self.weight_decay),
            ));
        }
        Ok(())
    }

    /// Threads actually used (0 resolved to the core count).
    pub fn resolved_threads(&self) -> usize {
        if self.threads == 0 {
            std::thread::available_parallelism().map_or(1, |n| n.get())
        } else {
            self.threads
        }
    }
}

/// Everything a `train` run needs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct RunConfig {
    /// `dae` or `sparse`.
    pub kind: ModelKind,
    pub data: DataConfig,
    /// The denoising autoencoder (kind = "dae").
    pub model: DaeConfig,
    /// The sparse autoencoder (kind = "sparse").
    pub sparse: SparseConfig,
    pub train: TrainConfig,
    /// L-BFGS settings (optimizer = "lbfgs").
    pub lbfgs: LbfgsConfig,
}

impl RunConfig {
    /// Parses TOML; unknown keys are errors that name the file.
    pub fn from_toml(text: &str, path: &Path) -> Result<RunConfig> {
        toml::from_str(text)
            .map_err(|e| Error::format(path, format!("invalid config: {}", e.to_string().trim())))
    }

    pub fn read(path: &Path) -> Result<RunConfig> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io("cannot read config", path, e))?;
        RunConfig::from_toml(&text, path)
    }

    pub fn to_toml(&self) -> String {
        toml::to_string_pretty(self).expect("RunConfig always serialises")
    }

    /// The one check of the whole configuration.
    pub fn validate(&self) -> Result<()> {
        self.data.source()?;
        match self.kind {
            ModelKind::Dae => self.model.validate()?,
            ModelKind::Sparse => {
                self.sparse.validate()?;
                if self.train.optimizer != Optimizer::Lbfgs {
                    return Err(Error::config(
                        "train.optimizer",
                        "the sparse autoencoder trains with lbfgs",
                    ));
                }
            }
        }
        if self.lbfgs.memory == 0 || self.lbfgs.max_iter == 0 {
            return Err(Error::config("lbfgs", "memory and max_iter must be at least 1"));
        }
        self.train.validate()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_round_trip_through_toml() {
        let c = RunConfig::default();
        let back = RunConfig::from_toml(&c.to_toml(), Path::new("c.toml")).unwrap();
        assert_eq!(c, back);
        c.validate().unwrap();
    }

    #[test]
    fn unknown_keys_are_refused_with_the_file_and_key() {
        let e = RunConfig::from_toml("[train]\nlearning_rate = 0.1\n", Path::new("my.toml"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("my.toml") && e.contains("learning_rate"), "{e}");
    }

    #[test]
    fn bad_values_are_refused() {
        let mut c = RunConfig::default();
        c.train.lr = -0.1;
        assert!(c.validate().unwrap_err().to_string().contains("train.lr"));
        let mut c = RunConfig::default();
        c.model.n_hid = 0;
        assert!(c.validate().unwrap_err().to_string().contains("n_hid"));
        let mut c = RunConfig::default();
        c.train.momentum = 1.0;
        assert!(c.validate().is_err());
        let e = RunConfig::from_toml("[model]\nnoise = \"mask:2\"\n", Path::new("n.toml")).unwrap_err();
        assert!(e.to_string().contains("not in [0, 1]"), "{e}");
    }
}

//! The settings of a training loop, shared by every model: how long, how
//! many examples per update, the optimizer's step, early stopping, the seed,
//! and how threads are used.

use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};

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

/// How `--threads N` is used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum ParallelMode {
    /// `rows` for per-example SGD (batch 1) on a tied sigmoid model (the
    /// fastest exact mode measured), otherwise threads inside each matrix
    /// product.
    #[default]
    Auto,
    Split,
    /// Exact per-example SGD over blocks of visible units (rows of W).
    Rows,
    /// `rows`, with the rows shared out again by each worker's measured speed
    /// every [`balance_every`] examples (not bit-reproducible run to run).
    Balanced,
    Hogwild,
    Minibatch,
    /// Threads inside each matrix product (faer's own parallelism).
    Gemm,
}

impl std::str::FromStr for ParallelMode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "auto" => Ok(ParallelMode::Auto),
            "split" => Ok(ParallelMode::Split),
            "rows" => Ok(ParallelMode::Rows),
            "balanced" => Ok(ParallelMode::Balanced),
            "hogwild" => Ok(ParallelMode::Hogwild),
            "minibatch" => Ok(ParallelMode::Minibatch),
            "gemm" => Ok(ParallelMode::Gemm),
            _ => Err(format!(
                "unknown parallel mode `{s}` (expected auto, split, rows, balanced, hogwild, minibatch or gemm)"
            )),
        }
    }
}

impl std::fmt::Display for ParallelMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let s = match self {
            ParallelMode::Auto => "auto",
            ParallelMode::Split => "split",
            ParallelMode::Rows => "rows",
            ParallelMode::Balanced => "balanced",
            ParallelMode::Hogwild => "hogwild",
            ParallelMode::Minibatch => "minibatch",
            ParallelMode::Gemm => "gemm",
        };
        f.write_str(s)
    }
}

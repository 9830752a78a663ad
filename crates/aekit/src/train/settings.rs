//! The settings of a training loop, shared by every model: how long, how
//! many examples per update, the optimizer's step, early stopping, the seed,
//! and how threads are used.

use crate::error::{Error, Result};
use crate::optim::AdamConfig;
use crate::tensor::gemm::Par;
use serde::{Deserialize, Serialize};

/// How a model is trained: the loop (epochs, batch, early stopping, seed,
/// threads) and the optimizer's step. Every model's settings embed one
/// (`PretrainConfig::train`, `CaeTrainConfig::train`, …) and write their own
/// defaults into it; config files give it as the `[train]` section.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TrainConfig {
    /// Passes over the training set (the most, with early stopping).
    pub epochs: usize,
    /// Examples per update; 1 is per-example SGD.
    pub batch: usize,
    /// `sgd` (with `momentum`), `adam` (with `beta1`, `beta2`, `eps`) or
    /// `lbfgs` (full batch; the `[lbfgs]` settings).
    pub optimizer: Optimizer,
    /// Learning rate (step size) η; the gradient is the batch mean.
    pub lr: f32,
    /// SGD: classical momentum μ in [0, 1).
    pub momentum: f32,
    /// Adam: decay of the first moment β₁ in [0, 1).
    pub beta1: f32,
    /// Adam: decay of the second moment β₂ in [0, 1).
    pub beta2: f32,
    /// Adam: ε added to √v̂.
    pub eps: f32,
    /// L2 weight decay λ: adds ½·λ·‖W‖² to the objective, weights only.
    pub weight_decay: f32,
    /// Stop after this many epochs without a better validation figure, and
    /// keep the best weights; 0 disables early stopping.
    pub patience: usize,
    /// Seed of every random choice (initialisation, shuffling, noise, splits).
    pub seed: u64,
    /// Threads; 0 means all cores, for every model. With 1 thread a run is
    /// bit-for-bit reproducible (and so is `minibatch` with any number).
    pub threads: usize,
    /// How threads are used by the dense autoencoder: `auto`, `rows`,
    /// `balanced`, `split`, `hogwild`, `minibatch` or `gemm`.
    pub parallel: ParallelMode,
    /// Where training runs: `cpu`, or `cuda` / `cuda:N` (GPU N; an aekit
    /// built with the `cuda` feature).
    pub device: Device,
}

/// Where a model trains.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum Device {
    #[default]
    Cpu,
    /// The NVIDIA GPU of this ordinal.
    Cuda(usize),
}

impl std::str::FromStr for Device {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "cpu" => Ok(Device::Cpu),
            "cuda" | "gpu" => Ok(Device::Cuda(0)),
            _ => s
                .strip_prefix("cuda:")
                .and_then(|n| n.parse().ok())
                .map(Device::Cuda)
                .ok_or_else(|| format!("unknown device `{s}` (expected cpu, cuda or cuda:N)")),
        }
    }
}

impl std::fmt::Display for Device {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Device::Cpu => f.write_str("cpu"),
            Device::Cuda(n) => write!(f, "cuda:{n}"),
        }
    }
}

impl TryFrom<String> for Device {
    type Error = String;
    fn try_from(s: String) -> std::result::Result<Self, String> {
        s.parse()
    }
}

impl From<Device> for String {
    fn from(d: Device) -> String {
        d.to_string()
    }
}

/// The optimizer of a training loop.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Optimizer {
    /// Minibatch SGD with momentum.
    #[default]
    Sgd,
    /// Adam (Kingma & Ba 2015), PyTorch's form.
    Adam,
    /// Full-batch L-BFGS.
    Lbfgs,
    /// A genetic algorithm (the `[ga]` settings), no gradients.
    Ga,
    /// An evolution strategy (the `[es]` settings; Adam at `lr`).
    Es,
}

impl std::str::FromStr for Optimizer {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "sgd" => Ok(Optimizer::Sgd),
            "adam" => Ok(Optimizer::Adam),
            "lbfgs" | "l-bfgs" => Ok(Optimizer::Lbfgs),
            "ga" => Ok(Optimizer::Ga),
            "es" => Ok(Optimizer::Es),
            _ => Err(format!(
                "unknown optimizer `{s}` (expected sgd, adam, lbfgs, ga or es)"
            )),
        }
    }
}

impl std::fmt::Display for Optimizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Optimizer::Sgd => "sgd",
            Optimizer::Adam => "adam",
            Optimizer::Lbfgs => "lbfgs",
            Optimizer::Ga => "ga",
            Optimizer::Es => "es",
        })
    }
}

impl Default for TrainConfig {
    /// The dense denoising autoencoder's defaults (`aekit train`); other
    /// models start from these and change what differs.
    fn default() -> Self {
        TrainConfig {
            epochs: 15,
            batch: 20,
            optimizer: Optimizer::Sgd,
            lr: 0.1,
            momentum: 0.0,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            weight_decay: 0.0,
            patience: 5,
            seed: 1,
            threads: 1,
            parallel: ParallelMode::Auto,
            device: Device::Cpu,
        }
    }
}

/// Refuses a learning-rate factor per epoch outside (0, 1] (`field`: the
/// setting's name in the error).
pub fn check_lr_decay(field: &str, factor: f32) -> Result<()> {
    if factor > 0.0 && factor <= 1.0 {
        Ok(())
    } else {
        Err(Error::config(field, format!("{factor} is not in (0, 1]")))
    }
}

/// Refuses a value outside [0, 1) (`field`: the setting's name in the
/// error; `what`: what the value is, as "a rate", or "" to say nothing).
pub fn check_below_one(field: &str, v: f32, what: &str) -> Result<()> {
    if (0.0..1.0).contains(&v) {
        return Ok(());
    }
    let what = wrapped(what, "", " ");
    Err(Error::config(field, format!("{v} is not {what}in [0, 1)")))
}

/// `text` between `before` and `after`, or nothing when `text` is empty (an
/// optional part of a message).
fn wrapped(text: &str, before: &str, after: &str) -> String {
    if text.is_empty() {
        String::new()
    } else {
        format!("{before}{text}{after}")
    }
}

/// Refuses a value that is negative, NaN or infinite (`field`: the
/// setting's name in the error; `zero`: what 0 means, as "none", or "" to
/// say nothing).
pub fn check_non_negative<T: Into<f64> + Copy + std::fmt::Display>(
    field: &str,
    v: T,
    zero: &str,
) -> Result<()> {
    let x: f64 = v.into();
    if x.is_finite() && x >= 0.0 {
        return Ok(());
    }
    let zero = wrapped(zero, " (0 = ", ")");
    Err(Error::config(field, format!("{v} must be ≥ 0 and finite{zero}")))
}

impl TrainConfig {
    /// Adam with PyTorch's defaults and this step size, otherwise as
    /// [`TrainConfig::default`].
    pub fn adam(lr: f32) -> TrainConfig {
        TrainConfig {
            optimizer: Optimizer::Adam,
            lr,
            ..TrainConfig::default()
        }
    }

    /// Checks every setting, naming fields `train.<field>`.
    pub fn validate(&self) -> Result<()> {
        self.validate_in("train")
    }

    /// [`TrainConfig::validate`], naming fields `<section>.<field>` (for a
    /// `TrainConfig` embedded elsewhere, e.g. `classifier.train`).
    pub fn validate_in(&self, section: &str) -> Result<()> {
        let bad = |field: &str, why: String| Err(Error::config(&format!("{section}.{field}"), why));
        if self.epochs == 0 {
            return bad("epochs", "must be at least 1".into());
        }
        if self.batch == 0 {
            return bad("batch", "must be at least 1".into());
        }
        if !(self.lr.is_finite() && self.lr > 0.0) {
            return bad(
                "lr",
                format!("learning rate {} must be positive and finite", self.lr),
            );
        }
        for (name, v) in [
            ("momentum", self.momentum),
            ("beta1", self.beta1),
            ("beta2", self.beta2),
        ] {
            check_below_one(&format!("{section}.{name}"), v, "")?;
        }
        if !(self.eps.is_finite() && self.eps > 0.0) {
            return bad("eps", format!("{} must be positive", self.eps));
        }
        check_non_negative(&format!("{section}.weight_decay"), self.weight_decay, "none")?;
        if self.device != Device::Cpu && !cfg!(feature = "cuda") {
            return bad(
                "device",
                format!(
                    "{} needs an aekit built with the `cuda` feature (cargo build --release --features cuda)",
                    self.device
                ),
            );
        }
        Ok(())
    }

    /// Refuses a GPU for `what`, which trains on the CPU only.
    pub fn require_cpu(&self, what: &str) -> Result<()> {
        if self.device == Device::Cpu {
            return Ok(());
        }
        Err(Error::config(
            "train.device",
            format!(
                "{what} trains on the CPU only; the GPU ({}) trains the dense autoencoder, the stacks' \
                 pretraining and fine-tuning, the sparse autoencoder and the convolutional autoencoder \
                 (see docs/gpu.md)",
                self.device
            ),
        ))
    }

    /// Threads actually used (0 resolved to the core count).
    pub fn resolved_threads(&self) -> usize {
        if self.threads == 0 {
            std::thread::available_parallelism().map_or(1, |n| n.get())
        } else {
            self.threads
        }
    }

    /// Holds `threads` to the machine: more threads than cores is refused
    /// for the lock-step per-example modes (`split`, `rows`, `balanced`: their
    /// workers wait for each other and slow to a crawl when they share cores)
    /// and capped at the core count, with a note on stderr, elsewhere. The
    /// benchmarks, which time oversubscription on purpose, do not call this.
    pub fn hold_threads_to_cores(&mut self) -> Result<()> {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        if self.threads <= cores {
            return Ok(());
        }
        if matches!(
            self.parallel,
            ParallelMode::Split | ParallelMode::Rows | ParallelMode::Balanced
        ) {
            return Err(Error::config(
                "train.threads",
                format!(
                    "{} threads for `{}` on a machine with {cores} cores: lock-step workers must each have a core",
                    self.threads, self.parallel
                ),
            ));
        }
        eprintln!(
            "note: {} threads capped at this machine's {cores} cores",
            self.threads
        );
        self.threads = cores;
        Ok(())
    }

    /// Parallelism inside the matrix products for these threads.
    pub fn par(&self) -> Par {
        Par::from_threads(self.resolved_threads())
    }

    /// Adam's hyperparameters from these settings.
    pub fn adam_config(&self) -> AdamConfig {
        AdamConfig {
            lr: self.lr,
            beta1: self.beta1,
            beta2: self.beta2,
            eps: self.eps,
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

//! The nets of the variants experiment: each built, pretrained (through
//! the pretrained cache when there is one), fine-tuned at every minibatch
//! size and rate, the one with the lowest validation error chosen, and
//! that one refit on the training and validation sets together.

use crate::data::Dataset;
use crate::error::Result;
use crate::layers::{Corruption, Loss};
use crate::models::stacked::{FinetuneConfig, PretrainConfig, Schedule, StackedDae};
use crate::train::{EpochLines, TrainConfig};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// The training settings every net of the experiment shares.
pub(super) struct Loop {
    pub(super) pre_epochs: usize,
    pub(super) pre_lr: f32,
    pub(super) pre_batch: usize,
    pub(super) pre_momentum: f32,
    pub(super) pre_lr_decay: f32,
    pub(super) pre_untied: bool,
    pub(super) ft_epochs: usize,
    pub(super) ft_lr: Vec<f32>,
    pub(super) ft_batch: Vec<usize>,
    pub(super) ft_momentum: f32,
    pub(super) ft_weight_decay: f32,
    pub(super) ft_dropout: f32,
    pub(super) ft_average: f32,
    pub(super) ft_max_norm: f32,
    pub(super) lr_decay: f32,
    pub(super) threads: usize,
    pub(super) seed: u64,
    /// Where pretrained stacks are kept and found again.
    pub(super) cache: Option<PathBuf>,
}

/// The pretraining of a stack of `layers`.
pub(super) fn pretrain_config(
    l: &Loop,
    layers: &[usize],
    schedule: Schedule,
    noise: Corruption,
) -> PretrainConfig {
    PretrainConfig {
        layers: layers.to_vec(),
        schedule,
        noise: vec![noise],
        loss: Loss::CrossEntropy,
        // Every layer the same epochs, odd numbers too (so the split of
        // `layer_epochs` is not used).
        later_epochs: Some(l.pre_epochs),
        train: TrainConfig {
            epochs: l.pre_epochs,
            batch: l.pre_batch,
            lr: l.pre_lr,
            momentum: l.pre_momentum,
            patience: 0,
            seed: l.seed,
            threads: l.threads,
            ..TrainConfig::default()
        },
        lr_decay: l.pre_lr_decay,
        untied: l.pre_untied,
        ..PretrainConfig::default()
    }
}

/// The fine-tuning of every net in minibatches of `batch` at learning
/// rate `lr`.
pub(super) fn finetune_config(l: &Loop, batch: usize, lr: f32) -> FinetuneConfig {
    FinetuneConfig {
        lr_decay: l.lr_decay,
        dropout: l.ft_dropout,
        average: l.ft_average,
        max_norm: l.ft_max_norm,
        train: TrainConfig {
            epochs: l.ft_epochs,
            batch,
            lr,
            momentum: l.ft_momentum,
            weight_decay: l.ft_weight_decay,
            patience: 10,
            seed: l.seed,
            threads: l.threads,
            ..FinetuneConfig::default().train
        },
    }
}

/// The hidden widths of the nets of one run: every layer the same
/// (`1000`), or one width a layer, bottom first (`3000x2000x1000`), which
/// builds nets of that depth only.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Width {
    Every(usize),
    Layers(Vec<usize>),
}

impl Width {
    /// The width of `layers`: [`Width::Every`] when they are all the same.
    fn of(layers: &[usize]) -> Width {
        match layers {
            [first, rest @ ..] if rest.iter().all(|w| w == first) => Width::Every(*first),
            _ => Width::Layers(layers.to_vec()),
        }
    }

    /// Refuses a layer of no units.
    pub(super) fn check(&self) -> Result<()> {
        let layers = match self {
            Width::Every(w) => std::slice::from_ref(w),
            Width::Layers(l) => l.as_slice(),
        };
        if layers.is_empty() || layers.contains(&0) {
            return Err(crate::Error::config(
                "width",
                format!("{self}: a hidden layer needs at least one unit"),
            ));
        }
        Ok(())
    }

    /// The widths of a net of `depth` hidden layers, bottom first.
    pub(super) fn layers(&self, depth: usize) -> Result<Vec<usize>> {
        match self {
            Width::Every(w) => Ok(vec![*w; depth]),
            Width::Layers(l) if l.len() == depth => Ok(l.clone()),
            Width::Layers(l) => Err(crate::Error::config(
                "width",
                format!(
                    "{self} gives {} layers, but a net of depth {depth} is asked for (--depths, or the SdA-3's 3)",
                    l.len()
                ),
            )),
        }
    }
}

impl std::str::FromStr for Width {
    type Err = String;

    /// `1000` or `3000x2000x1000`.
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        let layers = s
            .split('x')
            .map(|p| {
                p.trim()
                    .parse::<usize>()
                    .map_err(|_| format!("{s:?}: give a number of units, or one a layer as 3000x2000x1000"))
            })
            .collect::<std::result::Result<Vec<_>, _>>()?;
        Ok(match &layers[..] {
            [w] => Width::Every(*w),
            _ => Width::Layers(layers),
        })
    }
}

impl std::fmt::Display for Width {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Width::Every(w) => write!(f, "{w}"),
            Width::Layers(l) => {
                let parts: Vec<String> = l.iter().map(|w| w.to_string()).collect();
                write!(f, "{}", parts.join("x"))
            }
        }
    }
}

/// One fine-tuning of a net: its width, minibatch size and learning
/// rate, test and validation errors (%) and the epoch of its lowest
/// validation error.
#[derive(Debug, Clone)]
pub(super) struct Tuned {
    pub(super) width: Width,
    pub(super) batch: usize,
    pub(super) lr: f32,
    pub(super) test: f64,
    pub(super) valid: f64,
    pub(super) best_epoch: usize,
}

/// Builds a stack of `depth` layers at each width of `widths`, pretrains
/// it (unless `pretrain` is `None`) and fine-tunes it at each minibatch
/// size and learning rate of `l` from the same start; returns every
/// fine-tuning, width by width in the order given, then size by size,
/// rate by rate.
pub(super) fn deep_nets(
    d: &[Dataset; 3],
    depth: usize,
    widths: &[Width],
    pretrain: Option<(Schedule, Corruption)>,
    l: &Loop,
) -> Result<Vec<Tuned>> {
    let mut runs = Vec::with_capacity(widths.len() * l.ft_batch.len() * l.ft_lr.len());
    for w in widths {
        runs.extend(deep_net(d, &w.layers(depth)?, pretrain, l)?);
    }
    Ok(runs)
}

/// Pretrains (unless `pretrain` is `None`) and fine-tunes a stack at each
/// minibatch size and learning rate of `l` from the same start; returns
/// every fine-tuning, size by size, rate by rate.
fn deep_net(
    d: &[Dataset; 3],
    layers: &[usize],
    pretrain: Option<(Schedule, Corruption)>,
    l: &Loop,
) -> Result<Vec<Tuned>> {
    let m = pretrained(&d[0], layers, pretrain, l, "")?;
    let mut runs = Vec::with_capacity(l.ft_batch.len() * l.ft_lr.len());
    for &batch in &l.ft_batch {
        for &lr in &l.ft_lr {
            let fc = finetune_config(l, batch, lr);
            // The size is named only when there are several.
            let what = match &l.ft_batch[..] {
                [_] => format!("{}, fine-tuning lr {lr}", stack_name(layers)),
                _ => format!("{}, fine-tuning lr {lr} batch {batch}", stack_name(layers)),
            };
            let mut lines = EpochLines::new(what.clone()).validation_error();
            let r = m.clone().finetune(&d[0], &d[1], &d[2], &fc, &mut lines)?;
            eprintln!(
                "  {what}: test error {:.2}%, validation {:.2}%",
                r.test_error, r.valid_error
            );
            runs.push(Tuned {
                width: Width::of(layers),
                batch,
                lr,
                test: r.test_error,
                valid: r.valid_error,
                best_epoch: r.best_epoch,
            });
        }
    }
    Ok(runs)
}

/// A new stack of `layers` on `x`'s rows, pretrained on `x` (unless
/// `pretrain` is `None`), through the cache when there is one; `what`
/// prefixes its progress lines ("" or "refit, ").
fn pretrained(
    x: &Dataset,
    layers: &[usize],
    pretrain: Option<(Schedule, Corruption)>,
    l: &Loop,
    what: &str,
) -> Result<StackedDae> {
    let new = || StackedDae::new(x.dim, layers, l.seed);
    let Some((schedule, noise)) = pretrain else {
        return Ok(new());
    };
    let cfg = pretrain_config(l, layers, schedule, noise);
    let label = format!("{what}{}, pretraining", stack_name(layers));
    if let Some(dir) = &l.cache {
        return cached_pretraining(dir, new, x, &cfg, label);
    }
    let mut m = new();
    m.pretrain(x, &cfg, &mut EpochLines::new(label))?;
    Ok(m)
}

/// The refit of the net chosen as `best`: the same stack built again,
/// pretrained (as the chosen one was) on the training and validation sets
/// together, then fine-tuned at its minibatch size and rate for its best
/// epoch count with no validation set (every epoch runs, the last weights
/// are kept); returns the test error, %.
pub(super) fn refit(
    d: &[Dataset; 3],
    depth: usize,
    pretrain: Option<(Schedule, Corruption)>,
    l: &Loop,
    best: &Tuned,
) -> Result<f64> {
    let all = d[0].concat(&d[1])?;
    let layers = best.width.layers(depth)?;
    let mut m = pretrained(&all, &layers, pretrain, l, "refit, ")?;
    let mut fc = finetune_config(l, best.batch, best.lr);
    fc.train.epochs = best.best_epoch.max(1);
    fc.train.patience = 0;
    let what = format!(
        "refit, {}, fine-tuning lr {} for {} epochs on {} examples",
        stack_name(&layers),
        best.lr,
        fc.train.epochs,
        all.n
    );
    let r = m.finetune(
        &all,
        &all.select(&[]),
        &d[2],
        &fc,
        &mut EpochLines::new(what.clone()),
    )?;
    eprintln!("  {what}: test error {:.2}%", r.test_error);
    Ok(r.test_error)
}

/// The file of the pretraining `cfg` on `x` in the cache `dir`:
/// `pretrained-<digest>.safetensors`, the digest (SHA-256, its first 16
/// hex digits) over aekit's version, every pretraining setting and the
/// training images' bits, so that any change of data or settings names
/// another file. Also returns the settings as written in the file.
fn cache_file(dir: &Path, x: &Dataset, cfg: &PretrainConfig) -> (PathBuf, String) {
    use sha2::{Digest, Sha256};
    let what = format!(
        "aekit {}; {} images of {} values; {cfg:?}",
        env!("CARGO_PKG_VERSION"),
        x.n,
        x.dim
    );
    let mut h = Sha256::new();
    h.update(what.as_bytes());
    for v in &x.x {
        h.update(v.to_le_bytes());
    }
    let hex: String = h.finalize()[..8].iter().map(|b| format!("{b:02x}")).collect();
    (dir.join(format!("pretrained-{hex}.safetensors")), what)
}

/// Loads the stack an earlier run left in the cache `dir` for the same
/// images `x` and settings `cfg`, or pretrains the one `new` builds on `x`
/// by `cfg` and saves it there (atomically, so a killed run leaves no half
/// file).
fn cached_pretraining(
    dir: &Path,
    new: impl FnOnce() -> StackedDae,
    x: &Dataset,
    cfg: &PretrainConfig,
    label: String,
) -> Result<StackedDae> {
    let (path, what) = cache_file(dir, x, cfg);
    if path.exists() {
        let mut cached = StackedDae::load(&path)?;
        let sizes: Vec<usize> = std::iter::once(x.dim).chain(cfg.layers.iter().copied()).collect();
        if cached.sizes != sizes || cached.classifier.is_some() {
            return Err(crate::Error::format(
                &path,
                format!(
                    "expected a pretrained stack of widths {sizes:?} without a classifier; remove the file to pretrain again"
                ),
            ));
        }
        eprintln!("  {label}: loaded from {}", path.display());
        cached.pretrain = cfg.clone();
        return Ok(cached);
    }
    let mut m = new();
    m.pretrain(x, cfg, &mut EpochLines::new(label))?;
    match m.save(&path, HashMap::from([("aekit.pretraining".to_string(), what)])) {
        Ok(()) => eprintln!("  pretrained stack kept in {}", path.display()),
        // A diverged pretraining (or a full disk) is not kept; its
        // fine-tuning still runs and reports what it finds.
        Err(e) => eprintln!("  pretrained stack not kept: {e}"),
    }
    Ok(m)
}

/// "3 layers of 1000 units", "1 layer of 500 units", "3 layers of
/// 3000x2000x1000 units".
fn stack_name(layers: &[usize]) -> String {
    let s = if layers.len() == 1 { "" } else { "s" };
    format!("{} layer{s} of {} units", layers.len(), Width::of(layers))
}

/// The fine-tuning with the lowest validation error (the first of equals).
pub(super) fn chosen(runs: &[Tuned]) -> Tuned {
    runs.iter()
        .reduce(|b, r| if r.valid < b.valid { r } else { b })
        .expect("at least one learning rate")
        .clone()
}

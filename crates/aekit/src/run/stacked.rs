//! `aekit pretrain` and `aekit finetune`: a stacked denoising autoencoder
//! pretrained layer by layer (stacked, gradual or hybrid), then fine-tuned
//! with a softmax layer on the labels.

use super::config::Sections;
use super::dir::{resume_hint, Out, RunDir};
use super::observe::{finetune_row, PretrainObserver, RunObserver};
use crate::data::DataConfig;
use crate::error::{Error, Result};
use crate::models::stacked::{FinetuneConfig, PretrainConfig, StackedDae};
use crate::train::{Checkpointing, EpochMetrics, Progress, State};
use crate::viz;
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::collections::HashMap;
use std::path::Path;

/// Everything `aekit pretrain` needs: `[data]`, `[model]` and `[train]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct PretrainRun {
    pub data: DataConfig,
    pub model: PretrainConfig,
}

impl Sections for PretrainRun {}

impl PretrainRun {
    pub fn validate(&self) -> Result<()> {
        self.data.source()?;
        self.model.validate()
    }
}

/// Everything `aekit finetune` needs besides the pretrained model:
/// `[data]`, `[model]` (the learning-rate decay) and `[train]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct FinetuneRun {
    /// The pretrained stack this run started from (recorded so that
    /// `--resume` can load it again; `--model` gives it).
    pub pretrained: Option<std::path::PathBuf>,
    pub data: DataConfig,
    pub model: FinetuneConfig,
}

impl Sections for FinetuneRun {}

impl FinetuneRun {
    pub fn validate(&self) -> Result<()> {
        self.data.source()?;
        self.model.validate()
    }
}

/// Pretrains as `cfg` says, writing the run directory at `out` (default
/// `runs/pretrain-<unix time>`).
pub fn pretrain(mut cfg: PretrainRun, out: &Out) -> Result<RunDir> {
    let s = prepare_pretrain(&mut cfg)?;
    let run = RunDir::claim(out, "pretrain")?;
    run.write_config(&cfg.to_toml()?)?;
    pretrain_in(&cfg, &s, run, None)
}

/// Continues the stopped `pretrain` run in `dir` with the settings in its
/// `config.toml`, from its last checkpoint (in the middle of a layer's
/// stage, or between two). A one-thread run ends bit-for-bit as it would
/// have without the stop.
pub fn resume_pretrain(dir: &Path) -> Result<RunDir> {
    let run = RunDir::reopen(dir, "pretrain")?;
    let mut cfg = super::dir::read_config(&run, PretrainRun::read)?;
    let s = prepare_pretrain(&mut cfg)?;
    let state = super::dir::resume_state(&run.path, "pretrain")?;
    pretrain_in(&cfg, &s, run, state)
}

/// Checks `cfg` and loads its data, before any file is written.
fn prepare_pretrain(cfg: &mut PretrainRun) -> Result<crate::data::Splits> {
    cfg.validate()?;
    cfg.model.train.hold_threads_to_cores()?;
    let m = &cfg.model;
    crate::tensor::init_threads(m.train.resolved_threads());
    let s = super::load_splits(&cfg.data, m.train.seed)?;
    let weights: u128 = std::iter::once(s.train.dim)
        .chain(m.layers.iter().copied())
        .collect::<Vec<_>>()
        .windows(2)
        .map(|w| w[0] as u128 * w[1] as u128)
        .sum();
    // The stack, and gradual training's copy with its gradient and momentum.
    crate::tensor::memory::check_f32s("model.layers", 5 * weights)?;
    Ok(s)
}

fn pretrain_in(
    cfg: &PretrainRun,
    s: &crate::data::Splits,
    run: RunDir,
    state: Option<State>,
) -> Result<RunDir> {
    let m = &cfg.model;
    let mut model = StackedDae::new(s.train.dim, &m.layers, m.train.seed);
    eprintln!(
        "pretraining {:?} with the {} schedule ({} epochs for layer 1, a budget of {} for each later layer)",
        model.sizes, m.schedule, m.train.epochs, m.layer_epochs
    );
    let start = std::time::Instant::now();
    let mut progress = Progress::new();
    let mut obs = PretrainObserver::new(&run, &mut progress);
    let template = model.clone();
    let mut save = |mut st: State, e: &EpochMetrics| {
        st.put("verb", "pretrain");
        let snap = template.pretrain_snapshot(&st, m)?;
        let mut meta = HashMap::new();
        meta.insert(
            "pretrain".into(),
            toml::to_string(m).expect("configs always serialise"),
        );
        run.save_checkpoint(e.epoch, |p| snap.save(p, meta), &st)
            .map(drop)
    };
    let ck = Checkpointing {
        resume: state,
        save: Some(&mut save),
    };
    let updates = model
        .pretrain_with(&s.train, m, &mut obs, ck)
        .map_err(|e| resume_hint(e, &run, "pretrain"))?;
    obs.finish()?;
    let secs = start.elapsed().as_secs_f64();
    let mut meta = HashMap::new();
    meta.insert(
        "pretrain".into(),
        toml::to_string(m).expect("configs always serialise"),
    );
    model.save(&run.file("model.safetensors"), meta)?;
    let first = viz::filter_tiles(
        &model.trunk[..s.train.dim * m.layers[0]],
        s.train.dim,
        m.layers[0],
        100,
    );
    let (h, w) = viz::tile_shape(s.train.dim, s.train.image);
    viz::save_png(
        &run.file("filters.png"),
        &viz::tile_grid(&first, h, w, 10, viz::Scale::PerTile, 2),
    )?;
    run.write_summary(&json!({
        "schedule": m.schedule.to_string(),
        "sizes": model.sizes,
        "updates": updates,
        "train_seconds": secs,
        "n_train": s.train.n,
        "data": s.description,
    }))?;
    eprintln!(
        "done in {secs:.1} s, {updates} weight updates; run directory {}",
        run.path.display()
    );
    Ok(run)
}

/// Fine-tunes the stack in `model_path` as `cfg` says, writing the run
/// directory at `out` (default `runs/finetune-<unix time>`).
pub fn finetune(mut cfg: FinetuneRun, model_path: &Path, out: &Out) -> Result<RunDir> {
    cfg.validate()?;
    cfg.model.train.hold_threads_to_cores()?;
    let cfg = &cfg;
    if let (Some(o), Some(dir)) = (&out.path, model_path.parent()) {
        let same = |a: &Path, b: &Path| match (a.canonicalize(), b.canonicalize()) {
            (Ok(a), Ok(b)) => a == b,
            _ => a == b,
        };
        if same(
            o,
            if dir.as_os_str().is_empty() {
                Path::new(".")
            } else {
                dir
            },
        ) {
            return Err(Error::config(
                "out",
                format!(
                    "{} holds the pretrained model, which fine-tuning would overwrite",
                    o.display()
                ),
            ));
        }
    }
    let mut cfg = cfg.clone();
    cfg.pretrained = Some(
        model_path
            .canonicalize()
            .unwrap_or_else(|_| model_path.to_path_buf()),
    );
    let (model, s) = prepare_finetune(&cfg)?;
    let run = RunDir::claim(out, "finetune")?;
    run.write_config(&cfg.to_toml()?)?;
    finetune_in(&cfg, model, &s, run, None)
}

/// Continues the stopped `finetune` run in `dir` with the settings in its
/// `config.toml` (the pretrained stack read again from where it was), from
/// its last checkpoint. A one-thread run ends bit-for-bit as it would have
/// without the stop.
pub fn resume_finetune(dir: &Path) -> Result<RunDir> {
    let run = RunDir::reopen(dir, "finetune")?;
    let cfg = super::dir::read_config(&run, FinetuneRun::read)?;
    cfg.validate()?;
    let (model, s) = prepare_finetune(&cfg)?;
    let state = super::dir::resume_state(&run.path, "finetune")?;
    finetune_in(&cfg, model, &s, run, state)
}

/// The pretrained stack and the data, checked against each other.
fn prepare_finetune(cfg: &FinetuneRun) -> Result<(StackedDae, crate::data::Splits)> {
    let model_path = cfg
        .pretrained
        .as_deref()
        .ok_or_else(|| Error::config("pretrained", "fine-tuning needs a pretrained stack (--model)"))?;
    let t = &cfg.model.train;
    crate::tensor::init_threads(t.resolved_threads());
    let model = StackedDae::load(model_path)?;
    let s = super::load_splits(&cfg.data, t.seed)?;
    if s.train.dim != model.sizes[0] {
        return Err(Error::shape(
            &format!("the data for {}", model_path.display()),
            format!("{} inputs", model.sizes[0]),
            format!("{} inputs", s.train.dim),
        ));
    }
    Ok((model, s))
}

fn finetune_in(
    cfg: &FinetuneRun,
    mut model: StackedDae,
    s: &crate::data::Splits,
    run: RunDir,
    state: Option<State>,
) -> Result<RunDir> {
    let t = &cfg.model.train;
    eprintln!(
        "fine-tuning {:?} + softmax for up to {} epochs",
        model.sizes, t.epochs
    );
    let mut obs = RunObserver::new(&run, finetune_row);
    let template = model.clone();
    let mut save = |mut st: State, e: &EpochMetrics| {
        st.put("verb", "finetune");
        let snap = template.finetuned(st.tensor_any("params")?)?;
        run.save_checkpoint(e.epoch, |p| snap.save(p, HashMap::new()), &st)
            .map(drop)
    };
    let ck = Checkpointing {
        resume: state,
        save: Some(&mut save),
    };
    let r = model
        .finetune_with(&s.train, &s.val, &s.test, &cfg.model, &mut obs, ck)
        .map_err(|e| resume_hint(e, &run, "finetune"))?;
    obs.finish()?;
    model.save(&run.file("model.safetensors"), HashMap::new())?;
    // Without validation examples every epoch ran and the last is kept:
    // the curve is the training loss.
    let refit = s.val.n == 0;
    let curve: Vec<(f64, f64)> = r
        .history
        .iter()
        .map(|e| (e.epoch as f64, if refit { e.train_loss } else { e.val_error }))
        .collect();
    let (title, axis) = if refit {
        ("Fine-tuning without validation: training loss", "training loss")
    } else {
        ("Fine-tuning: validation error", "validation error, %")
    };
    viz::plot::save_line_chart(
        &run.file("curve.png"),
        title,
        "epoch",
        axis,
        &[viz::plot::Series {
            label: format!("test error {:.2}% at epoch {}", r.test_error, r.best_epoch),
            points: curve,
        }],
    )?;
    run.write_summary(&json!({
        "test_error": r.test_error,
        "valid_error": r.valid_error,
        "best_epoch": r.best_epoch,
        "epochs": r.history.len(),
        "updates": r.updates,
        "train_seconds": r.train_seconds,
        "confusion": r.confusion,
        "n_train": s.train.n,
        "n_val": s.val.n,
        "n_test": s.test.n,
        "data": s.description,
    }))?;
    if refit {
        eprintln!(
            "test error {:.2}% after {} epochs (no validation set: the last weights); run directory {}",
            r.test_error,
            r.best_epoch,
            run.path.display()
        );
    } else {
        eprintln!(
            "test error {:.2}% (validation {:.2}% at epoch {}); run directory {}",
            r.test_error,
            r.valid_error,
            r.best_epoch,
            run.path.display()
        );
    }
    Ok(run)
}

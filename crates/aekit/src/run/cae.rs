//! `aekit cae` and `aekit ensemble`: a convolutional autoencoder (with an
//! optional classifier on its codes and a fine-tuning of both), and an eager
//! ensemble of small ones.

use super::config::Sections;
use super::dir::{resume_hint, Out, RunDir};
use super::observe::{epoch_row, finetune_row, RunObserver};
use crate::data::{DataConfig, Dataset, Splits};
use crate::error::{Error, Result};
use crate::models::classifier::{error_percent, ClassifierConfig, FeatureClassifier};
use crate::models::conv::{CaeSpec, CaeTrainConfig, ConvAutoencoder};
use crate::models::ensemble::{self, classify};
use crate::models::scaler::Scaler;
use crate::train::{Checkpointing, EpochMetrics, State, TrainConfig};
use crate::viz;
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::collections::HashMap;
use std::path::Path;
use std::sync::Mutex;
use std::time::Instant;

/// The classifier on a CAE's codes: which one, its loop, and an optional
/// fine-tuning of encoder and classifier together (`[classifier]`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ClassifierRun {
    /// `none`, `softmax`, or `mlp:H` (one ReLU hidden layer of H units).
    pub kind: String,
    /// The classifier's loop (Adam); its seed and threads are the CAE's.
    pub train: TrainConfig,
    /// After the classifier on frozen codes, fine-tune the encoder and the
    /// classifier together on the labels for up to this many epochs (`cae`).
    pub finetune_epochs: usize,
    /// Adam's step size for that fine-tuning.
    pub finetune_lr: f32,
}

impl Default for ClassifierRun {
    fn default() -> Self {
        ClassifierRun {
            kind: "none".into(),
            train: ClassifierConfig::default().train,
            finetune_epochs: 0,
            finetune_lr: 2e-4,
        }
    }
}

/// The widest hidden layer of an `mlp:H` classifier.
pub const MAX_MLP_HIDDEN: usize = 65_536;

/// The most members of an ensemble (each a CAE trained at once).
pub const MAX_MEMBERS: usize = 1000;

impl ClassifierRun {
    /// The classifier's settings (`None` for `none`), with the seed and
    /// threads of `cae`'s loop.
    pub fn config(&self, cae: &TrainConfig) -> Result<Option<ClassifierConfig>> {
        let hidden = match self.kind.as_str() {
            "none" => return Ok(None),
            "softmax" => 0,
            k => match k.strip_prefix("mlp:").and_then(|h| h.parse::<usize>().ok()) {
                Some(h) if (1..=MAX_MLP_HIDDEN).contains(&h) => h,
                _ => {
                    return Err(Error::config(
                        "classifier.kind",
                        format!("`{k}` is not none, softmax or mlp:H with H from 1 to {MAX_MLP_HIDDEN}"),
                    ))
                }
            },
        };
        let cfg = ClassifierConfig {
            hidden,
            train: TrainConfig {
                seed: cae.seed,
                threads: cae.threads,
                ..self.train.clone()
            },
        };
        cfg.validate()?;
        if self.finetune_epochs > 0 && !(self.finetune_lr > 0.0 && self.finetune_lr.is_finite()) {
            return Err(Error::config(
                "classifier.finetune_lr",
                "must be a positive number",
            ));
        }
        Ok(Some(cfg))
    }
}

/// Everything `aekit cae` needs: `arch`, `[data]`, `[model]` (loss, noise,
/// eager stop), `[train]` and `[classifier]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CaeRun {
    /// A preset (`cae-mnist`, `cae-mnist-unpool`, `cae-mnist-upsample`,
    /// `cae-cifar`) or a TOML architecture file.
    pub arch: String,
    pub data: DataConfig,
    pub model: CaeTrainConfig,
    pub classifier: ClassifierRun,
}

impl Default for CaeRun {
    fn default() -> Self {
        CaeRun {
            arch: "cae-mnist".into(),
            data: DataConfig::default(),
            model: CaeTrainConfig::default(),
            classifier: ClassifierRun::default(),
        }
    }
}

/// Everything `aekit ensemble` needs: as [`CaeRun`], plus the member count;
/// the members train one thread each, and `train.threads` encode and
/// classify afterwards.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EnsembleRun {
    pub arch: String,
    /// Members trained at once, one thread each.
    pub members: usize,
    pub data: DataConfig,
    pub model: CaeTrainConfig,
    pub classifier: ClassifierRun,
}

impl Default for EnsembleRun {
    fn default() -> Self {
        let mut model = CaeTrainConfig::default();
        (model.train.epochs, model.train.threads) = (3, 2);
        EnsembleRun {
            arch: "cae-mnist".into(),
            members: 5,
            data: DataConfig::default(),
            model,
            classifier: ClassifierRun {
                kind: "softmax".into(),
                ..ClassifierRun::default()
            },
        }
    }
}

macro_rules! cae_run_common {
    ($t:ty) => {
        impl Sections for $t {}

        impl $t {
            /// The architecture, checked to build with the loss; the settings
            /// checked. Nothing is loaded or written before this passes.
            pub fn spec(&self) -> Result<CaeSpec> {
                self.data.source()?;
                self.model.validate()?;
                let mut spec = CaeSpec::load(&self.arch)?;
                if self.model.linear_output {
                    spec = spec.linear_output();
                }
                let m = ConvAutoencoder::new(&spec, self.model.loss, self.model.train.seed)?;
                self.model.check_memory(&m.net, self.model.train.batch)?;
                self.classifier.config(&self.model.train)?;
                Ok(spec)
            }
        }
    };
}
cae_run_common!(CaeRun);
cae_run_common!(EnsembleRun);

/// `data` split as for the other verbs, checked against the architecture.
fn splits(data: &DataConfig, seed: u64, spec: &CaeSpec) -> Result<Splits> {
    let s = super::load_splits(data, seed)?;
    let want: usize = spec.input.iter().product();
    if s.train.dim != want {
        return Err(Error::shape(
            &format!("images for the architecture's input {:?}", spec.input),
            format!("{want} values per image"),
            format!("{} values", s.train.dim),
        ));
    }
    Ok(s)
}

/// Originals above their reconstructions, for grey or RGB images.
pub fn reconstructions(model: &ConvAutoencoder, data: &Dataset, count: usize) -> Result<viz::RgbImage> {
    let n = count.min(data.n);
    let sample = data.select(&(0..n).collect::<Vec<_>>());
    let recon = model.reconstruct(&sample, 1)?;
    let [c, h, w] = model.net.spec.input;
    let d = sample.dim;
    let tiles: Vec<&[f32]> = (0..n)
        .map(|i| sample.row(i))
        .chain(recon.chunks_exact(d).take(n))
        .collect();
    Ok(viz::chw_grid(&tiles, c, h, w, n.max(1), 2))
}

fn gflops(model: &ConvAutoencoder, images: f64, seconds: f64) -> f64 {
    // forward + the two backward products per layer ≈ 3× the forward FLOPs
    3.0 * model.net.flops_per_image() * images / seconds.max(1e-9) / 1e9
}

/// Trains a CAE as `c` says (then, if asked, a classifier on its codes and
/// a fine-tuning of both), writing the run directory at `out` (default
/// `runs/cae-<unix time>`).
pub fn cae(mut c: CaeRun, out: &Out) -> Result<RunDir> {
    let s = prepare_cae(&mut c)?;
    let run = RunDir::claim(out, "cae")?;
    run.write_config(&c.to_toml()?)?;
    cae_in(&c, &s, run, None)
}

/// Continues the stopped `cae` run in `dir` with the settings in its
/// `config.toml`, from its last checkpoint. A one-thread run ends
/// bit-for-bit as it would have without the stop.
pub fn resume_cae(dir: &Path) -> Result<RunDir> {
    let run = RunDir::reopen(dir, "cae")?;
    let mut c = super::dir::read_config(&run, CaeRun::read)?;
    let s = prepare_cae(&mut c)?;
    let state = super::dir::resume_state(&run.path, "cae")?;
    cae_in(&c, &s, run, state)
}

/// Checks `c` and loads its data, before any file is written.
fn prepare_cae(c: &mut CaeRun) -> Result<Splits> {
    c.model.train.hold_threads_to_cores()?;
    let spec = c.spec()?;
    let cls = c.classifier.config(&c.model.train)?;
    crate::tensor::init_threads(c.model.train.resolved_threads());
    let s = splits(&c.data, c.model.train.seed, &spec)?;
    if cls.is_some() {
        check_labelled(&s, "give --classifier none to train the autoencoder alone")?;
    }
    Ok(s)
}

/// A classifier's data must carry labels: refused before any training,
/// with `what_else` to do.
fn check_labelled(s: &Splits, what_else: &str) -> Result<()> {
    if s.train.labels.is_none() || s.test.labels.is_none() {
        return Err(Error::config(
            "classifier",
            format!("classifying needs labelled images, but these have no labels (a CSV, an .npy file or a folder of images carries none): {what_else}"),
        ));
    }
    Ok(())
}

/// A model like `template` with the parameters of a checkpoint's state.
fn cae_snapshot(template: &ConvAutoencoder, s: &State) -> Result<ConvAutoencoder> {
    let mut m = template.clone();
    let n = m.params.len();
    m.params.copy_from_slice(s.tensor("params", n)?);
    Ok(m)
}

fn cae_in(c: &CaeRun, s: &Splits, run: RunDir, state: Option<State>) -> Result<RunDir> {
    let (spec, cfg) = (c.spec()?, &c.model);
    let cls = c.classifier.config(&cfg.train)?;
    let threads = cfg.train.resolved_threads();
    let mut model = ConvAutoencoder::new(&spec, cfg.loss, cfg.train.seed)?;
    // Set before training so that every checkpoint's model carries it.
    model.scaler = cfg.standardize.then(|| Scaler::fit(&s.train.x, s.train.dim));
    eprintln!(
        "training {} ({} parameters, code {:?}) for up to {} epochs on {} images, {} worker(s)",
        c.arch,
        model.net.n_params(),
        model.net.code_shape(),
        cfg.train.epochs,
        s.train.n,
        threads
    );
    let mut obs = RunObserver::new(&run, epoch_row);
    let template = model.clone();
    let mut save = |mut st: State, e: &EpochMetrics| {
        st.put("verb", "cae");
        let snap = cae_snapshot(&template, &st)?;
        run.save_checkpoint(e.epoch, |p| snap.save(p, HashMap::new()), &st)
            .map(drop)
    };
    let ck = Checkpointing {
        resume: state,
        save: Some(&mut save),
    };
    let report = model
        .fit(&s.train, &s.val, cfg, &mut obs, ck)
        .map_err(|e| resume_hint(e, &run, "cae"))?;
    obs.finish()?;
    model.save(&run.file("model.safetensors"), HashMap::new())?;
    let test_loss = model.score(&s.test, threads)?;
    viz::save_rgb_png(
        &run.file("reconstructions.png"),
        &reconstructions(&model, &s.test, 10)?,
    )?;
    let epochs = report.history.len();
    let per_epoch = report.train_seconds / epochs.max(1) as f64;
    let rate = gflops(&model, (s.train.n * epochs) as f64, report.train_seconds);
    eprintln!(
        "test loss {test_loss:.4} per image; {per_epoch:.2} s per epoch ({rate:.1} GFLOP/s in the convolutions)"
    );
    let mut summary = json!({
        "arch": c.arch,
        "test_loss": test_loss,
        "best_epoch": report.best_epoch,
        "epochs": epochs,
        "stopped_early": report.stopped_early,
        "updates": report.updates,
        "train_seconds": report.train_seconds,
        "seconds_per_epoch": per_epoch,
        "gflops": rate,
        "threads": threads,
        "n_train": s.train.n,
        "n_val": s.val.n,
        "n_test": s.test.n,
        "data": s.description,
    });
    if let Some(cls) = cls {
        // Without a validation split (the CAE saw every training image), the
        // classifier holds out the last tenth of the training images.
        let held;
        let (ctrain, cval) = if s.val.n > 0 {
            (&s.train, &s.val)
        } else {
            let cut = s.train.n - (s.train.n / 10).max(1);
            held = (
                s.train.select(&(0..cut).collect::<Vec<_>>()),
                s.train.select(&(cut..s.train.n).collect::<Vec<_>>()),
            );
            (&held.0, &held.1)
        };
        let t = Instant::now();
        let labels = |d: &Dataset| {
            d.labels
                .clone()
                .ok_or_else(|| Error::config("classifier", "classifying needs labelled images"))
        };
        let (ytr, yva, yte) = (labels(ctrain)?, labels(cval)?, labels(&s.test)?);
        let classes = ctrain.n_classes().max(s.test.n_classes());
        let code = |d: &Dataset, m: &ConvAutoencoder| m.transform(d, threads);
        let cl = model.net.code_len();
        let mut clf = FeatureClassifier::fit(
            &code(ctrain, &model)?,
            &ytr,
            &code(cval, &model)?,
            &yva,
            cl,
            classes,
            &cls,
        )?;
        let frozen = error_percent(&clf.predict(&code(&s.test, &model)?), &yte);
        eprintln!(
            "classifier on the frozen codes: test error {frozen:.2}% (validation {:.2}%), {:.1} s",
            clf.valid_error,
            t.elapsed().as_secs_f64()
        );
        summary["frozen_test_error"] = json!(frozen);
        summary["test_error"] = json!(frozen);
        summary["valid_error"] = json!(clf.valid_error);
        summary["classifier"] = json!(c.classifier.kind);
        if c.classifier.finetune_epochs > 0 {
            let mut fc = cls.clone();
            (fc.train.epochs, fc.train.lr) = (c.classifier.finetune_epochs, c.classifier.finetune_lr);
            let mut obs = RunObserver::to_file(&run, "finetune.csv", finetune_row);
            let r = model.finetune_encoder(&mut clf, ctrain, cval, &fc, &mut obs)?;
            obs.finish()?;
            let tuned = error_percent(&clf.predict(&code(&s.test, &model)?), &yte);
            eprintln!(
                "fine-tuned encoder + classifier: test error {tuned:.2}% (validation {:.2}% at epoch {}), {:.1} s",
                r.valid_error, r.best_epoch, r.train_seconds
            );
            model.save(&run.file("model-finetuned.safetensors"), HashMap::new())?;
            summary["test_error"] = json!(tuned);
            summary["valid_error"] = json!(r.valid_error);
            summary["finetuned_test_error"] = json!(tuned);
            summary["finetune"] = json!(r);
        }
    }
    run.write_summary(&summary)?;
    eprintln!("run directory {}", run.path.display());
    Ok(run)
}

/// Trains an eager ensemble as `c` says (its members one thread each, all at
/// once) and classifies with their joined codes and by majority vote,
/// writing the run directory at `out` (default `runs/ensemble-<unix time>`).
pub fn ensemble(mut c: EnsembleRun, out: &Out) -> Result<RunDir> {
    let s = prepare_ensemble(&mut c)?;
    let run = RunDir::claim(out, "ensemble")?;
    run.write_config(&c.to_toml()?)?;
    ensemble_in(&c, &s, run, false)
}

/// Continues the stopped `ensemble` run in `dir` with the settings in its
/// `config.toml`: each member from its own last checkpoint (members train
/// one thread each, so each ends bit-for-bit as it would have).
pub fn resume_ensemble(dir: &Path) -> Result<RunDir> {
    let run = RunDir::reopen(dir, "ensemble")?;
    let mut c = super::dir::read_config(&run, EnsembleRun::read)?;
    let s = prepare_ensemble(&mut c)?;
    ensemble_in(&c, &s, run, true)
}

/// Checks `c` and loads its data, before any file is written.
fn prepare_ensemble(c: &mut EnsembleRun) -> Result<Splits> {
    c.model.train.hold_threads_to_cores()?;
    let spec = c.spec()?;
    c.classifier
        .config(&c.model.train)?
        .ok_or_else(|| Error::config("classifier", "an ensemble needs a classifier (softmax or mlp:H)"))?;
    if !(1..=MAX_MEMBERS).contains(&c.members) {
        return Err(Error::config(
            "members",
            format!("{} members: give 1 to {MAX_MEMBERS}", c.members),
        ));
    }
    crate::tensor::init_threads(c.model.train.resolved_threads());
    let s = splits(&c.data, c.model.train.seed, &spec)?;
    check_labelled(
        &s,
        "an ensemble is chosen and scored by its classifiers; train one CAE with `aekit cae` instead",
    )?;
    if s.val.n == 0 {
        return Err(Error::config(
            "data.val_size",
            "an ensemble needs a validation split (--val-size > 0) for its eager stop and classifiers",
        ));
    }
    Ok(s)
}

fn ensemble_in(c: &EnsembleRun, s: &Splits, run: RunDir, resume: bool) -> Result<RunDir> {
    let (spec, cfg) = (c.spec()?, &c.model);
    let cls = c
        .classifier
        .config(&cfg.train)?
        .expect("checked by prepare_ensemble");
    let threads = cfg.train.resolved_threads();
    let mut states = Vec::new();
    for k in 0..c.members {
        let folder = run.folder(&format!("members/{k}"))?;
        let state = if resume {
            super::dir::resume_state(&folder, "ensemble")?
        } else {
            None
        };
        states.push(state);
    }
    let histories: Vec<Vec<EpochMetrics>> = states
        .iter()
        .map(|st| st.as_ref().map_or(Ok(Vec::new()), |st| st.get("fit.history")))
        .collect::<Result<_>>()?;
    let mut template = ConvAutoencoder::new(&spec, cfg.loss, cfg.train.seed)?;
    template.scaler = cfg.standardize.then(|| Scaler::fit(&s.train.x, s.train.dim));
    eprintln!(
        "training {} members of {} at once for up to {} epochs (eager threshold {}, patience {})",
        c.members, c.arch, cfg.train.epochs, cfg.min_improvement, cfg.train.patience
    );
    let histories = Mutex::new(histories);
    let t = Instant::now();
    let hook = |k: usize, mut st: State, e: &EpochMetrics| {
        eprintln!(
            "member {k} epoch {}: train loss {:.4}, validation loss {:.4} ({:.1} s)",
            e.epoch,
            e.train_loss,
            e.val_loss.unwrap_or(f64::NAN),
            e.seconds
        );
        st.put("verb", "ensemble");
        let snap = cae_snapshot(&template, &st)?;
        let mut h = histories.lock().expect("not poisoned");
        h[k].push(*e);
        run.write_rows(&format!("members/{k}/metrics.csv"), &h[k])?;
        drop(h);
        super::dir::save_checkpoint(
            &run.file(&format!("members/{k}")),
            e.epoch,
            |p| snap.save(p, HashMap::new()),
            &st,
        )
        .map(drop)
    };
    let members = ensemble::train_members(&spec, cfg.loss, c.members, &s.train, &s.val, cfg, &hook, states)
        .map_err(|e| resume_hint(e, &run, "ensemble"))?;
    let train_seconds = t.elapsed().as_secs_f64();
    for (k, (m, _)) in members.iter().enumerate() {
        m.save(
            &run.file(&format!("members/{k}/model.safetensors")),
            HashMap::new(),
        )?;
    }
    let refs: Vec<&ConvAutoencoder> = members.iter().map(|(m, _)| m).collect();
    let test_losses: Vec<f64> = refs
        .iter()
        .map(|m| m.score(&s.test, threads))
        .collect::<Result<_>>()?;
    viz::save_rgb_png(
        &run.file("reconstructions.png"),
        &reconstructions(refs[0], &s.test, 10)?,
    )?;
    let t = Instant::now();
    let e = classify(&refs, &s.train, &s.val, &s.test, &cls, threads)?;
    let classify_seconds = t.elapsed().as_secs_f64();
    eprintln!(
        "joined codes: test error {:.2}%; majority vote: {:.2}%; members alone: {:?}",
        e.concat_test_error, e.vote_test_error, e.member_test_errors
    );
    let summary = json!({
        "test_error": e.concat_test_error,
        "valid_error": e.concat_valid_error,
        "vote_test_error": e.vote_test_error,
        "member_test_errors": e.member_test_errors,
        "member_test_losses": test_losses,
        "member_epochs": members.iter().map(|(_, r)| r.history.len()).collect::<Vec<_>>(),
        "members": c.members,
        "train_seconds": train_seconds,
        "classify_seconds": classify_seconds,
        "n_train": s.train.n,
        "n_val": s.val.n,
        "n_test": s.test.n,
        "data": s.description,
    });
    run.write_summary(&summary)?;
    eprintln!("run directory {}", run.path.display());
    Ok(run)
}

//! `aekit deep-ae`: Hinton & Salakhutdinov's deep autoencoder, pretrained
//! (RBMs, DAEs or not at all) and fine-tuned, with their pictures: test
//! digits, their reconstructions by the deep autoencoder and by PCA with as
//! many components as the code (Fig. 2), the first layer's filters, and for
//! a 2-d code the codes of the test set beside PCA's first two components,
//! coloured by label (Fig. 3).

use super::config::Sections;
use super::dir::{resume_hint, MetricsRow, Out, RunDir};
use crate::data::{DataConfig, Dataset};
use crate::error::{Error, Result};
use crate::models::deep_ae::{DeepAeConfig, DeepAutoencoder, Pretrain};
use crate::models::pca::Pca;
use crate::train::{Checkpointing, EpochMetrics, Observer, Progress, State};
use crate::viz;
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::path::Path;
use std::time::Instant;

/// Everything `aekit deep-ae` needs: `[data]` and `[model]` (with
/// `[model.rbm]`, `[model.dae]` and `[model.train]`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DeepAeRun {
    pub data: DataConfig,
    pub model: DeepAeConfig,
}

impl Default for DeepAeRun {
    /// All the training images (no validation split), the paper's model.
    fn default() -> Self {
        DeepAeRun {
            data: DataConfig {
                val_size: Some(0),
                ..DataConfig::default()
            },
            model: DeepAeConfig::default(),
        }
    }
}

impl Sections for DeepAeRun {}

impl DeepAeRun {
    /// The `--quick` preset: the same model and stages on 10,000 training
    /// images, 2 epochs per RBM or DAE and 5 of fine-tuning.
    pub fn quick(mut self) -> DeepAeRun {
        self.data.train_size = Some(self.data.train_size.map_or(10_000, |n| n.min(10_000)));
        self.model.rbm.epochs = 2;
        self.model.rbm.momentum_after = 1;
        self.model.dae.train.epochs = 2;
        self.model.train.epochs = 5;
        self
    }
}

/// One epoch of any stage, as `metrics.csv` lists it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DeepAeEpoch {
    /// `rbm`, `dae` or `finetune`.
    pub stage: String,
    /// The layer pretrained (1-based); 0 for fine-tuning.
    pub layer: usize,
    pub epoch: usize,
    /// RBM: reconstruction error per row; DAE and fine-tuning: the loss
    /// per row.
    pub train_loss: f64,
    /// Squared error per image on the validation split, when there is one.
    pub val_error: Option<f64>,
    /// Seconds since the run began.
    pub seconds: f64,
}

impl MetricsRow for DeepAeEpoch {
    const HEADER: &'static str = "stage,layer,epoch,train_loss,val_error,seconds";
    fn csv(&self) -> String {
        format!(
            "{},{},{},{:.6},{},{:.3}",
            self.stage,
            self.layer,
            self.epoch,
            self.train_loss,
            self.val_error.map(|v| format!("{v:.4}")).unwrap_or_default(),
            self.seconds
        )
    }
}

/// Progress on stderr and `metrics.csv` rewritten after every epoch of
/// every stage; its rows travel in the checkpoints.
struct StageObserver<'a> {
    run: &'a RunDir,
    progress: Progress<'static>,
    stage: (usize, String),
    rows: Vec<DeepAeEpoch>,
    start: Instant,
    error: Option<Error>,
}

impl Observer for StageObserver<'_> {
    fn on_stage(&mut self, layer: usize, phase: &str) {
        if layer > 0 {
            eprintln!("layer {layer}, {phase}:");
        } else {
            eprintln!("{phase}:");
        }
        self.stage = (layer, phase.to_string());
        self.progress.on_stage(layer, phase);
    }
    fn on_start(&mut self, epochs: usize, batches: usize) {
        self.progress.on_start(epochs, batches);
    }
    fn on_progress(&mut self, done: usize, total: usize) {
        self.progress.on_progress(done, total);
    }
    fn on_epoch(&mut self, m: &EpochMetrics) {
        self.progress.on_epoch(m);
        self.rows.push(DeepAeEpoch {
            stage: self.stage.1.clone(),
            layer: self.stage.0,
            epoch: m.epoch,
            train_loss: m.train_loss,
            val_error: m.val_loss,
            seconds: self.start.elapsed().as_secs_f64(),
        });
        if let Err(e) = self.run.write_metrics(&self.rows) {
            self.error.get_or_insert(e);
        }
    }
    fn on_end(&mut self) {
        self.progress.on_end();
    }
    fn save_state(&self, s: &mut State) {
        s.put("log.rows", &self.rows);
        s.put("log.seconds", &self.start.elapsed().as_secs_f64());
    }
    fn load_state(&mut self, s: &State) -> Result<()> {
        self.rows = s.get("log.rows")?;
        let secs: f64 = s.get("log.seconds")?;
        self.start = Instant::now()
            .checked_sub(std::time::Duration::from_secs_f64(secs))
            .unwrap_or(self.start);
        if let Some(r) = self.rows.last() {
            eprintln!("resuming after {} epoch {} (layer {})", r.stage, r.epoch, r.layer);
        }
        if let Err(e) = self.run.write_metrics(&self.rows) {
            self.error.get_or_insert(e);
        }
        Ok(())
    }
}

/// Trains the deep autoencoder of `cfg` and writes the run directory.
pub fn deep_ae(cfg: DeepAeRun, out: &Out) -> Result<RunDir> {
    cfg.model.validate()?;
    cfg.data.source()?;
    let run = RunDir::claim(out, "deep-ae")?;
    run.write_config(&cfg.to_toml()?)?;
    train_in(&cfg, run, None)
}

/// Continues the stopped `deep-ae` run in `dir` from its last checkpoint.
pub fn resume(dir: &Path) -> Result<RunDir> {
    let run = RunDir::reopen(dir, "deep-ae")?;
    let cfg = super::dir::read_config(&run, DeepAeRun::read)?;
    let state = super::dir::resume_state(&run.path, "deep-ae")?;
    train_in(&cfg, run, state)
}

fn train_in(cfg: &DeepAeRun, run: RunDir, state: Option<State>) -> Result<RunDir> {
    let threads = cfg.model.train.resolved_threads();
    crate::tensor::init_threads(threads);
    let s = super::load_splits(&cfg.data, cfg.model.train.seed)?;
    let m = &cfg.model;
    let mut model = DeepAutoencoder::new(s.train.dim, &m.layers, m.code, m.loss);
    // Set before training so that every checkpoint's model carries them.
    model.output = m.output;
    if m.standardize {
        model.scaler = Some(crate::models::scaler::Scaler::fit(&s.train.x, s.train.dim));
    }
    crate::tensor::memory::check_f32s(
        "model.layers",
        4 * 3 * model.params.len() as u128
            + 4 * (model.sizes.iter().sum::<usize>() as u128) * 3 * m.train.batch.max(1000) as u128,
    )?;
    let mut obs = StageObserver {
        run: &run,
        progress: Progress::new(),
        stage: (0, String::new()),
        rows: Vec::new(),
        start: Instant::now(),
        error: None,
    };
    let blank = model.clone();
    let mut save = |mut st: State, e: &EpochMetrics| {
        st.put("verb", "deep-ae");
        let snap = blank.snapshot(&st, m)?;
        run.save_checkpoint(e.epoch, |p| snap.save(p), &st).map(drop)
    };
    let val = (s.val.n > 0).then_some(s.val.x.as_slice());
    let t0 = Instant::now();
    let report = model
        .train(
            &s.train.x,
            val,
            m,
            &mut obs,
            Checkpointing {
                resume: state,
                save: Some(&mut save),
            },
        )
        .map_err(|e| resume_hint(e, &run, "deep-ae"))?;
    if let Some(e) = obs.error.take() {
        return Err(e);
    }
    let rows = std::mem::take(&mut obs.rows);
    drop(obs);
    let train_seconds = t0.elapsed().as_secs_f64();
    model.save(&run.file("model.safetensors"))?;
    let par = m.train.par();
    let train_error = model.squared_error(&s.train.x, par);
    let test_error = (s.test.n > 0).then(|| model.squared_error(&s.test.x, par));
    // PCA with as many components as the code, on the same training rows.
    let k = model.code_width().min(s.train.dim);
    let mut pca = Pca::new(k, false);
    pca.threads = threads;
    pca.fit_rows(s.train.view())?;
    let pca_train = pca.error_p(s.train.view(), k)?;
    let pca_test = if s.test.n > 0 {
        Some(pca.error_p(s.test.view(), k)?)
    } else {
        None
    };
    let shown = if s.test.n > 0 { &s.test } else { &s.train };
    pictures(&run, &model, &pca, shown, par)?;
    let stage_seconds = |stage: &str| {
        let first = rows.iter().position(|r| r.stage == stage)?;
        let before = if first == 0 { 0.0 } else { rows[first - 1].seconds };
        let last = rows.iter().rposition(|r| r.stage == stage)?;
        Some(rows[last].seconds - before)
    };
    run.write_summary(&json!({
        "sizes": model.sizes,
        "code": m.code,
        "pretrain": m.pretrain,
        "optimizer": m.train.optimizer,
        "loss": m.loss,
        "finetune_epochs": report.history.len(),
        "train_error": train_error,
        "test_error": test_error,
        "pca_components": k,
        "pca_train_error": pca_train,
        "pca_test_error": pca_test,
        "pretrain_seconds": match m.pretrain {
            Pretrain::Rbm => stage_seconds("rbm"),
            Pretrain::Dae => stage_seconds("dae"),
            Pretrain::None => Some(0.0),
        },
        "finetune_seconds": stage_seconds("finetune"),
        "train_seconds": train_seconds,
        "threads": threads,
        "n_train": s.train.n,
        "n_test": s.test.n,
        "data": s.description,
    }))?;
    eprintln!(
        "deep autoencoder {:?}: squared error per image {train_error:.3} (train), {} (test); PCA-{k}: {pca_train:.3} (train), {} (test); {train_seconds:.0} s",
        model.sizes,
        test_error.map_or("–".into(), |e| format!("{e:.3}")),
        pca_test.map_or("–".into(), |e| format!("{e:.3}")),
    );
    eprintln!("run directory {}", run.path.display());
    Ok(run)
}

/// `reconstructions.png` (one example per class where there are labels,
/// else the first ten: originals, deep autoencoder, PCA), `filters.png`
/// (the first layer's first 100 units) and, for a 2-d code, `codes.png`.
fn pictures(
    run: &RunDir,
    model: &DeepAutoencoder,
    pca: &Pca,
    d: &Dataset,
    par: crate::tensor::gemm::Par,
) -> Result<()> {
    let mut pick: Vec<usize> = Vec::new();
    if let Some(labels) = &d.labels {
        for c in 0..10u8 {
            if let Some(i) = labels.iter().position(|&l| l == c) {
                pick.push(i);
            }
        }
    }
    if pick.is_empty() {
        pick = (0..d.n.min(10)).collect();
    }
    let dim = d.dim;
    let x: Vec<f32> = pick.iter().flat_map(|&i| d.row(i).iter().copied()).collect();
    let ae = model.reconstruct(&x, par);
    let xv = ndarray::ArrayView2::from_shape((pick.len(), dim), &x).expect("rows");
    let z = pca.transform_p(xv, pca.k)?;
    let pr: Vec<f32> = pca.inverse_p(z.view())?.iter().copied().collect();
    let (h, w) = viz::tile_shape(dim, d.image);
    let n = pick.len();
    viz::save_png(
        &run.file("reconstructions.png"),
        &viz::tile_grid(
            &viz::row_tiles(&[&x, &ae, &pr], n, dim),
            h,
            w,
            n,
            viz::Scale::Unit,
            3,
        ),
    )?;
    let (w0, _) = model.layer(0);
    viz::save_png(
        &run.file("filters.png"),
        &viz::tile_grid(
            &viz::filter_tiles(&model.params[w0], dim, model.sizes[1], 100),
            h,
            w,
            10,
            viz::Scale::PerTile,
            2,
        ),
    )?;
    if model.code_width() == 2 {
        let codes = model.encode(&d.x, par);
        let pz = pca.transform_p(d.view(), 2)?;
        let label = |i: usize| d.labels.as_ref().map_or(0, |l| l[i]);
        let panel = |title: &str, f: &dyn Fn(usize) -> (f64, f64)| viz::plot::Panel {
            title: title.into(),
            points: (0..d.n)
                .map(|i| {
                    let (a, b) = f(i);
                    (a, b, label(i))
                })
                .collect(),
        };
        let png = viz::plot::scatter_panels(&[
            panel("PCA: first two components", &|i| {
                (pz[[i, 0]] as f64, pz[[i, 1]] as f64)
            }),
            panel("deep autoencoder: 2-d code", &|i| {
                (codes[2 * i] as f64, codes[2 * i + 1] as f64)
            }),
        ])?;
        crate::io::atomic_write(&run.file("codes.png"), &png)?;
    }
    Ok(())
}

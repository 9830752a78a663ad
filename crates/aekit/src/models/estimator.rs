//! The one surface every model offers, in scikit-learn's habits: construct
//! with hyperparameters (a model's own settings, including its
//! [`TrainConfig`](crate::train::TrainConfig) loop), then `fit`,
//! `transform`, `reconstruct`, `score`, and `set_threads`. Data goes in and
//! out as `[n, features]` arrays (images flattened row-major, channels
//! first); the Python bindings wrap exactly this.

use crate::data::Dataset;
use crate::error::{Error, Result};
use crate::models::conv::ConvAutoencoder;
use crate::models::sparse_ae::SparseAutoencoder;
use crate::models::stacked::StackedDae;
use crate::models::DenoisingAutoencoder;
use crate::optim::lbfgs::{LbfgsConfig, LbfgsReport};
use crate::tensor::gemm::Par;
use crate::train::{EpochMetrics, FitReport, Observer, Optimizer, TrainConfig};
use ndarray::{Array2, ArrayView2};

/// What every model can do.
pub trait Estimator {
    /// Trains on the rows of `x` from the current weights (drawn from the
    /// data's width if there are none), validating on `val` after each epoch
    /// where the model early-stops; reports every epoch to `obs`.
    fn fit(
        &mut self,
        x: ArrayView2<f32>,
        val: Option<ArrayView2<f32>>,
        obs: &mut dyn Observer,
    ) -> Result<FitReport>;
    /// The codes of `x`'s rows, `[n, code width]`.
    fn transform(&self, x: ArrayView2<f32>) -> Result<Array2<f32>>;
    /// Decodes codes back to inputs, where the model has a decoder from its
    /// code alone.
    fn inverse_transform(&self, _codes: ArrayView2<f32>) -> Result<Array2<f32>> {
        Err(Error::config("model", "this model has no decoder from its codes"))
    }
    /// Reconstructions of `x`'s rows (encoded, then decoded).
    fn reconstruct(&self, x: ArrayView2<f32>) -> Result<Array2<f32>>;
    /// The mean reconstruction loss per example on clean `x` (lower is
    /// better; not scikit-learn's higher-is-better convention).
    fn score(&self, x: ArrayView2<f32>) -> Result<f64>;
    /// Threads for fitting and inference; 0 means all cores.
    fn set_threads(&mut self, threads: usize);
}

fn owned(x: ArrayView2<f32>) -> Dataset {
    Dataset {
        x: x.iter().copied().collect(),
        labels: None,
        n: x.nrows(),
        dim: x.ncols(),
        image: None,
    }
}

fn array(rows: usize, v: Vec<f32>) -> Array2<f32> {
    let cols = v.len().checked_div(rows).unwrap_or(0);
    Array2::from_shape_vec((rows, cols), v).expect("rows × cols values")
}

fn threads(t: usize) -> usize {
    TrainConfig {
        threads: t,
        ..TrainConfig::default()
    }
    .resolved_threads()
}

/// Runs an L-BFGS fit that reports to an observer, and reports its
/// iterations as the epochs of a [`FitReport`].
fn lbfgs_report(
    obs: &mut dyn Observer,
    fit: impl FnOnce(&mut dyn Observer) -> Result<LbfgsReport>,
) -> Result<FitReport> {
    let t = std::time::Instant::now();
    let mut rec = Recorder {
        inner: obs,
        rows: Vec::new(),
    };
    let r = fit(&mut rec)?;
    Ok(FitReport {
        best_epoch: rec.rows.len(),
        history: rec.rows,
        stopped_early: false,
        train_seconds: t.elapsed().as_secs_f64(),
        updates: r.evaluations as u64,
    })
}

impl Estimator for DenoisingAutoencoder {
    /// Minibatch SGD or Adam with early stopping; with `optimizer = lbfgs`,
    /// full-batch L-BFGS for `epochs` iterations (no validation).
    fn fit(
        &mut self,
        x: ArrayView2<f32>,
        val: Option<ArrayView2<f32>>,
        obs: &mut dyn Observer,
    ) -> Result<FitReport> {
        if matches!(self.train.optimizer, Optimizer::Ga | Optimizer::Es) {
            let (ga, es) = Default::default();
            return Ok(self.fit_evolve_with(x, val, &ga, &es, obs, Default::default())?.0);
        }
        if self.train.optimizer != Optimizer::Lbfgs {
            return DenoisingAutoencoder::fit(self, x, val, obs);
        }
        let cfg = LbfgsConfig {
            max_iter: self.train.epochs,
            ..LbfgsConfig::default()
        };
        lbfgs_report(obs, |rec| self.fit_lbfgs(x, &cfg, rec))
    }
    fn transform(&self, x: ArrayView2<f32>) -> Result<Array2<f32>> {
        DenoisingAutoencoder::transform(self, x)
    }
    fn inverse_transform(&self, codes: ArrayView2<f32>) -> Result<Array2<f32>> {
        DenoisingAutoencoder::inverse_transform(self, codes)
    }
    fn reconstruct(&self, x: ArrayView2<f32>) -> Result<Array2<f32>> {
        DenoisingAutoencoder::reconstruct(self, x)
    }
    fn score(&self, x: ArrayView2<f32>) -> Result<f64> {
        DenoisingAutoencoder::score(self, x)
    }
    fn set_threads(&mut self, threads: usize) {
        self.train.threads = threads;
    }
}

impl Estimator for SparseAutoencoder {
    /// Full-batch L-BFGS with `self.lbfgs` (no validation).
    fn fit(
        &mut self,
        x: ArrayView2<f32>,
        _val: Option<ArrayView2<f32>>,
        obs: &mut dyn Observer,
    ) -> Result<FitReport> {
        let (cfg, par) = (self.lbfgs.clone(), Par::from_threads(threads(self.threads)));
        lbfgs_report(obs, |rec| SparseAutoencoder::fit(self, x, &cfg, par, rec))
    }
    fn transform(&self, x: ArrayView2<f32>) -> Result<Array2<f32>> {
        SparseAutoencoder::transform(self, x)
    }
    fn reconstruct(&self, x: ArrayView2<f32>) -> Result<Array2<f32>> {
        SparseAutoencoder::reconstruct(self, x)
    }
    /// The mean of ½·Σ(x − z)² per example.
    fn score(&self, x: ArrayView2<f32>) -> Result<f64> {
        Ok(self
            .cost(x, Par::from_threads(threads(self.threads)))?
            .reconstruction)
    }
    fn set_threads(&mut self, threads: usize) {
        self.threads = threads;
    }
}

impl Estimator for ConvAutoencoder {
    /// Adam with `self.train`, early stopping on `val`.
    fn fit(
        &mut self,
        x: ArrayView2<f32>,
        val: Option<ArrayView2<f32>>,
        obs: &mut dyn Observer,
    ) -> Result<FitReport> {
        let (train, val) = (
            owned(x),
            val.map(owned)
                .unwrap_or_else(|| owned(x.slice(ndarray::s![..0, ..]))),
        );
        let cfg = self.train.clone();
        ConvAutoencoder::fit(self, &train, &val, &cfg, obs, Default::default())
    }
    fn transform(&self, x: ArrayView2<f32>) -> Result<Array2<f32>> {
        Ok(array(
            x.nrows(),
            ConvAutoencoder::transform(self, &owned(x), threads(self.train.train.threads))?,
        ))
    }
    fn reconstruct(&self, x: ArrayView2<f32>) -> Result<Array2<f32>> {
        Ok(array(
            x.nrows(),
            ConvAutoencoder::reconstruct(self, &owned(x), threads(self.train.train.threads))?,
        ))
    }
    fn score(&self, x: ArrayView2<f32>) -> Result<f64> {
        ConvAutoencoder::score(self, &owned(x), threads(self.train.train.threads))
    }
    fn set_threads(&mut self, threads: usize) {
        self.train.train.threads = threads;
    }
}

impl Estimator for StackedDae {
    /// Pretraining by `self.pretrain`, layer after layer (no validation);
    /// the epochs of every layer and phase are reported in turn.
    fn fit(
        &mut self,
        x: ArrayView2<f32>,
        _val: Option<ArrayView2<f32>>,
        obs: &mut dyn Observer,
    ) -> Result<FitReport> {
        let cfg = self.pretrain.clone();
        let t = std::time::Instant::now();
        let mut rec = Recorder {
            inner: obs,
            rows: Vec::new(),
        };
        let updates = self.pretrain(&owned(x), &cfg, &mut rec)?;
        Ok(FitReport {
            best_epoch: rec.rows.len(),
            history: rec.rows,
            stopped_early: false,
            train_seconds: t.elapsed().as_secs_f64(),
            updates,
        })
    }
    /// The top layer's codes.
    fn transform(&self, x: ArrayView2<f32>) -> Result<Array2<f32>> {
        crate::models::check_columns("examples", self.sizes[0], x.ncols())?;
        let xs: Vec<f32> = x.iter().copied().collect();
        let par = Par::from_threads(threads(self.pretrain.train.threads));
        Ok(array(x.nrows(), self.encode(&xs, x.nrows(), self.depth(), par)))
    }
    fn reconstruct(&self, _x: ArrayView2<f32>) -> Result<Array2<f32>> {
        Err(Error::config(
            "model",
            "a stack reconstructs only through its pretraining decoders: use score",
        ))
    }
    /// The mean cross-entropy of reconstructing `x` from the top layer.
    fn score(&self, x: ArrayView2<f32>) -> Result<f64> {
        crate::models::check_columns("examples", self.sizes[0], x.ncols())?;
        Ok(self.reconstruction_xent(&owned(x), Par::from_threads(threads(self.pretrain.train.threads))))
    }
    fn set_threads(&mut self, threads: usize) {
        self.pretrain.train.threads = threads;
    }
}

/// Passes everything on, keeping the epochs.
struct Recorder<'a> {
    inner: &'a mut dyn Observer,
    rows: Vec<EpochMetrics>,
}

impl Observer for Recorder<'_> {
    fn on_stage(&mut self, layer: usize, phase: &str) {
        self.inner.on_stage(layer, phase);
    }
    fn on_start(&mut self, epochs: usize, batches: usize) {
        self.inner.on_start(epochs, batches);
    }
    fn on_progress(&mut self, done: usize, total: usize) {
        self.inner.on_progress(done, total);
    }
    fn on_epoch(&mut self, m: &EpochMetrics) {
        self.rows.push(*m);
        self.inner.on_epoch(m);
    }
    fn on_end(&mut self) {
        self.inner.on_end();
    }
}

//! How a CAE is trained: its settings, its objective over the one flat
//! parameter vector, and the resumable Adam trainer.

use super::model::*;
use super::network::*;
use super::settings::*;
use crate::data::Dataset;
use crate::error::{Error, Result};
use crate::layers::Corruption;
use crate::layers::Loss;
use crate::optim::Adam;
use crate::tensor::gemm::Par;
use crate::tensor::rng::{seeded, Rng};
use crate::train::{
    fit_loop_with, Checkpointing, EpochMetrics, Finished, Fit, FitReport, Minibatches, Objective, Observer,
    Shuffle, State, TrainConfig,
};
use std::ops::Range;

/// Resumable Adam training of one CAE: epochs, or any number of batches
/// (for comparisons at equal wall-clock time). `seconds` counts training time
/// only, not evaluation between calls.
pub struct Trainer<'d> {
    pub model: ConvAutoencoder,
    pub adam: Adam,
    pub cfg: CaeTrainConfig,
    data: &'d Dataset,
    rng: Rng,
    batches: Minibatches<CaeBatch, Workspace<f32>>,
    /// Weight updates so far.
    pub updates: u64,
    /// Training seconds so far.
    pub seconds: f64,
    /// Whole epochs completed.
    pub epochs: usize,
}

impl<'d> Trainer<'d> {
    pub fn new(model: ConvAutoencoder, data: &'d Dataset, cfg: &CaeTrainConfig) -> Result<Trainer<'d>> {
        cfg.validate()?;
        model.check(data)?;
        if data.n == 0 {
            return Err(Error::config("data", "no training images"));
        }
        let batch = cfg.train.batch.min(data.n);
        let workers = cfg.train.resolved_threads().min(batch);
        cfg.check_memory(&model.net, batch)?;
        let o = CaeObjective::new(&model.net, model.loss, data, cfg);
        let batches = Minibatches::new(&o, batch, workers, Par::Seq, Shuffle::Carried);
        Ok(Trainer {
            adam: Adam::new(cfg.train.adam_config()),
            cfg: CaeTrainConfig {
                train: TrainConfig {
                    batch,
                    ..cfg.train.clone()
                },
                ..cfg.clone()
            },
            batches,
            model,
            data,
            rng: seeded(cfg.train.seed ^ 0xcae0_5eed),
            updates: 0,
            seconds: 0.0,
            epochs: 0,
        })
    }

    pub fn batches_per_epoch(&self) -> usize {
        self.batches.batches_per_epoch()
    }

    /// One Adam step on the next batch; returns the epoch's mean training
    /// loss when the step finished an epoch.
    pub fn step(&mut self) -> Option<f64> {
        let o = CaeObjective::new(&self.model.net, self.model.loss, self.data, &self.cfg);
        let done = self
            .batches
            .step(&o, &mut self.model.params, &mut self.adam, &mut self.rng);
        self.sync();
        done
    }

    /// Runs to the end of the current epoch; returns its mean training loss.
    pub fn run_epoch(&mut self, mut progress: impl FnMut(usize, usize)) -> f64 {
        let total = self.batches_per_epoch();
        let every = (total / 100).max(1);
        let mut k = 0;
        let _awake = crate::tensor::par::KeepAwake::new();
        loop {
            if let Some(l) = self.step() {
                progress(total, total);
                return l;
            }
            k += 1;
            if k % every == 0 {
                progress(k, total);
            }
        }
    }

    /// Trains until `seconds` of training time have been spent in all.
    pub fn run_until(&mut self, seconds: f64) {
        while self.seconds < seconds {
            self.step();
        }
    }

    fn sync(&mut self) {
        (self.updates, self.seconds, self.epochs) =
            (self.batches.updates, self.batches.seconds, self.batches.epochs);
    }
}

/// A CAE's training objective: the loss of reconstructing each clean image
/// from its corrupted copy, mean over the batch, plus ½·λ·‖W‖² on the
/// weights.
pub struct CaeObjective<'a> {
    net: &'a Network,
    loss: Loss,
    data: &'a Dataset,
    noise: Corruption,
    weight_decay: f32,
}

impl<'a> CaeObjective<'a> {
    pub fn new(net: &'a Network, loss: Loss, data: &'a Dataset, cfg: &CaeTrainConfig) -> CaeObjective<'a> {
        CaeObjective {
            net,
            loss,
            data,
            noise: cfg.noise,
            weight_decay: cfg.train.weight_decay,
        }
    }
}

/// A loaded batch of images: clean and corrupted, `[batch, C·H·W]`.
pub struct CaeBatch {
    clean: Vec<f32>,
    noisy: Vec<f32>,
}

impl Objective for CaeObjective<'_> {
    type Batch = CaeBatch;
    type Workspace = Workspace<f32>;

    fn n_params(&self) -> usize {
        self.net.n_params()
    }

    fn n_examples(&self) -> usize {
        self.data.n
    }

    fn new_batch(&self, cap: usize) -> CaeBatch {
        CaeBatch {
            clean: Vec::with_capacity(cap * self.data.dim),
            noisy: Vec::with_capacity(cap * self.data.dim),
        }
    }

    fn new_workspace(&self, rows: usize) -> Workspace<f32> {
        Workspace::new(self.net, rows)
    }

    /// Each image is corrupted on its own, in order.
    fn load(&self, idx: &[usize], b: &mut CaeBatch, rng: &mut Rng) {
        let d = self.data.dim;
        b.clean.clear();
        for &i in idx {
            b.clean.extend_from_slice(self.data.row(i));
        }
        b.noisy.resize(b.clean.len(), 0.0);
        for (o, c) in b.noisy.chunks_exact_mut(d).zip(b.clean.chunks_exact(d)) {
            self.noise.apply(o, c, rng);
        }
    }

    fn loss_grad_sum(
        &self,
        p: &[f32],
        grad: Option<&mut [f32]>,
        b: &CaeBatch,
        rows: Range<usize>,
        ws: &mut Workspace<f32>,
        _par: Par,
    ) -> f64 {
        let d = self.data.dim;
        let n = rows.len();
        ws.input_mut(d, n)
            .copy_from_slice(&b.noisy[rows.start * d..rows.end * d]);
        forward(self.net, p, ws, n, self.net.nodes.len());
        let target = &b.clean[rows.start * d..rows.end * d];
        match grad {
            // The backward pass adds into the workspace's own gradient; the
            // sum is then added into the caller's.
            Some(g) => {
                ws.grad.fill(0.0);
                let l = loss_backward(self.net, p, ws, target, n, self.loss, true);
                g.iter_mut().zip(&ws.grad).for_each(|(a, &v)| *a += v);
                l
            }
            None => loss_backward(self.net, p, ws, target, n, self.loss, false),
        }
    }

    fn finish(&self, p: &[f32], grad: &mut [f32], loss_sum: f64, n: usize) -> Finished {
        let inv = 1.0 / n as f32;
        crate::tensor::simd::scale(grad, inv);
        let mut penalty = 0.0f64;
        if self.weight_decay > 0.0 {
            let lambda = self.weight_decay;
            for node in &self.net.nodes {
                for (g, &w) in grad[node.w.clone()].iter_mut().zip(&p[node.w.clone()]) {
                    *g += lambda * w;
                    penalty += 0.5 * (lambda * w * w) as f64;
                }
            }
        }
        Finished {
            loss: loss_sum,
            objective: loss_sum / n as f64 + penalty,
        }
    }
}

impl ConvAutoencoder {
    /// Trains on `train` with Adam, validating on `val` (when not empty) after
    /// each epoch, checkpointed after each epoch and resumed from a
    /// checkpoint as `ck` says. With patience or an eager threshold, the best
    /// epoch's weights are kept.
    pub fn fit(
        &mut self,
        train: &Dataset,
        val: &Dataset,
        cfg: &CaeTrainConfig,
        observer: &mut dyn Observer,
        ck: Checkpointing<'_>,
    ) -> Result<FitReport> {
        cfg.validate()?;
        self.check(train)?;
        if cfg.standardize && self.scaler.is_none() {
            self.scaler = Some(crate::models::scaler::Scaler::fit(&train.x, train.dim));
        }
        if cfg.standardize && self.net.ends_in_sigmoid() {
            return Err(Error::config(
                "model.standardize",
                "needs a linear output; the decoder ends with a sigmoid (--output identity)",
            ));
        }
        let (train, val) = (&*self.input(train), &*self.input(val));
        let unit = self.loss == Loss::CrossEntropy;
        crate::models::check_values("training data", &train.x, train.dim, unit)?;
        if val.n > 0 {
            self.check(val)?;
            crate::models::check_values("validation data", &val.x, val.dim, unit)?;
        }
        if let crate::train::Device::Cuda(ordinal) = cfg.train.device {
            #[cfg(feature = "cuda")]
            return self.fit_gpu(ordinal, train, val, cfg, observer, ck);
            #[cfg(not(feature = "cuda"))]
            return Err(Error::config(
                "train.device",
                format!("cuda:{ordinal} needs an aekit built with the `cuda` feature"),
            ));
        }
        let mut run = CaeFit {
            trainer: Trainer::new(self.clone(), train, cfg)?,
            val,
            threads: cfg.train.resolved_threads(),
            min_improvement: cfg.min_improvement,
        };
        observer.on_start(cfg.train.epochs, run.trainer.batches_per_epoch());
        let report = fit_loop_with(
            &mut run,
            cfg.train.epochs,
            cfg.train.patience,
            observer,
            "train.lr",
            ck,
        )?;
        *self = run.trainer.model;
        Ok(report)
    }
}

/// The eager stop: an epoch that improved the validation loss by less than
/// `min_improvement` of the best before it ends training.
pub(crate) fn eager_stop(min_improvement: f64, m: &EpochMetrics, best_before: f64) -> bool {
    match m.val_loss {
        Some(v) => {
            min_improvement > 0.0
                && best_before.is_finite()
                && (best_before - v) < min_improvement * best_before
        }
        None => false,
    }
}

/// A CAE lent to the shared epoch loop.
struct CaeFit<'d> {
    trainer: Trainer<'d>,
    val: &'d Dataset,
    threads: usize,
    min_improvement: f64,
}

impl Fit for CaeFit<'_> {
    fn epoch(&mut self, obs: &mut dyn Observer) -> Result<(f64, u64)> {
        let before = self.trainer.updates;
        let loss = self.trainer.run_epoch(|done, total| obs.on_progress(done, total));
        Ok((loss, self.trainer.updates - before))
    }

    fn validate(&mut self) -> Result<Option<f64>> {
        if self.val.n == 0 {
            return Ok(None);
        }
        Ok(Some(self.trainer.model.score(self.val, self.threads)?))
    }

    fn params(&self) -> &[f32] {
        &self.trainer.model.params
    }

    fn set_params(&mut self, p: &[f32]) {
        self.trainer.model.params.copy_from_slice(p);
    }

    /// Training time only, not validation.
    fn seconds(&self, _wall: f64) -> f64 {
        self.trainer.seconds
    }

    fn after_epoch(&mut self, m: &EpochMetrics, best_before: f64) -> Result<bool> {
        Ok(eager_stop(self.min_improvement, m, best_before))
    }

    fn save_state(&self, s: &mut State) -> Result<()> {
        let t = &self.trainer;
        s.put_tensor("params", &t.model.params);
        s.put_rng("rng", &t.rng);
        let (m, v, steps) = t.adam.moments();
        s.put_tensor("adam.m", m);
        s.put_tensor("adam.v", v);
        s.put("adam.t", &steps);
        let mut b = State::new();
        t.batches.save_state(&mut b);
        s.nest("batches", b);
        Ok(())
    }

    fn load_state(&mut self, s: &State) -> Result<()> {
        let t = &mut self.trainer;
        let n = t.model.params.len();
        t.model.params.copy_from_slice(s.tensor("params", n)?);
        t.rng = s.rng("rng")?;
        let steps: u32 = s.get("adam.t")?;
        let len = if steps == 0 { 0 } else { n };
        t.adam
            .set_moments(s.tensor("adam.m", len)?, s.tensor("adam.v", len)?, steps);
        t.batches.load_state(&s.inner("batches").unwrap_or_default())?;
        t.sync();
        Ok(())
    }
}

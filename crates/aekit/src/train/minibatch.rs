//! Minibatch training over any [`Objective`]: shuffled epochs, each batch
//! split over data-parallel workers whose gradients are added in worker
//! order (so a run is deterministic for any worker count), then one
//! optimizer [`Step`]. Resumable step by step, so that several models can be
//! trained for equal wall-clock time.

use super::objective::{Objective, Step};
use super::Observer;
use crate::tensor::fused::StepWrite;
use crate::tensor::gemm::Par;
use crate::tensor::rng::{shuffle, Rng};
use crate::tensor::GradWrite;
use std::time::Instant;

/// How each epoch's order is drawn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shuffle {
    /// 0, 1, …, n−1 shuffled afresh at the start of every epoch.
    Fresh,
    /// One permutation, shuffled again at the start of every epoch (the
    /// convolutional autoencoders' order, kept so that their runs for a seed
    /// are unchanged).
    Carried,
}

/// The state of minibatch training: where in the epoch it is, the loaded
/// batch, one workspace and gradient per worker, and the counts so far.
pub struct Minibatches<B, W> {
    order: Vec<usize>,
    shuffle: Shuffle,
    pos: usize,
    batch: usize,
    loaded: B,
    /// Each worker's workspace, gradient and summed loss.
    workers: Vec<(W, Vec<f32>, f64)>,
    par: Par,
    epoch_loss: f64,
    /// Weight updates so far.
    pub updates: u64,
    /// Whole epochs completed.
    pub epochs: usize,
    /// Seconds spent in steps so far.
    pub seconds: f64,
}

impl<B: Send + Sync, W: Send> Minibatches<B, W> {
    /// Batches of `batch` examples (at most the training set) split over
    /// `workers` data-parallel workers (at most the batch); `par` is the
    /// parallelism inside each worker's matrix products.
    pub fn new<O: Objective<Batch = B, Workspace = W>>(
        o: &O,
        batch: usize,
        workers: usize,
        par: Par,
        shuffle: Shuffle,
    ) -> Minibatches<B, W> {
        let n = o.n_examples();
        let batch = batch.clamp(1, n.max(1));
        let workers = workers.clamp(1, batch);
        let chunk = batch.div_ceil(workers);
        Minibatches {
            order: (0..n).collect(),
            shuffle,
            pos: 0,
            batch,
            loaded: o.new_batch(batch),
            workers: (0..workers)
                .map(|_| (o.new_workspace(chunk), vec![0.0; o.n_params()], 0.0))
                .collect(),
            par,
            epoch_loss: 0.0,
            updates: 0,
            epochs: 0,
            seconds: 0.0,
        }
    }

    /// Examples per batch.
    pub fn batch(&self) -> usize {
        self.batch
    }

    /// Batches in one epoch.
    pub fn batches_per_epoch(&self) -> usize {
        self.order.len().div_ceil(self.batch)
    }

    /// One step on the next batch (the first of an epoch draws the epoch's
    /// order from `rng`); returns the epoch's mean training loss when the
    /// step finished an epoch.
    pub fn step<O: Objective<Batch = B, Workspace = W>>(
        &mut self,
        o: &O,
        params: &mut [f32],
        opt: &mut dyn Step,
        rng: &mut Rng,
    ) -> Option<f64> {
        let t0 = Instant::now();
        let n = self.order.len();
        if self.pos == 0 {
            if self.shuffle == Shuffle::Fresh {
                self.order.iter_mut().enumerate().for_each(|(i, v)| *v = i);
            }
            shuffle(&mut self.order, rng);
        }
        let end = (self.pos + self.batch).min(n);
        let b = end - self.pos;
        o.load(&self.order[self.pos..end], &mut self.loaded, rng);
        if let [(ws, g, _)] = &mut self.workers[..] {
            // One worker: the objective may write the finished gradient
            // straight into SGD's velocity, or at least over its buffer.
            let (loaded, par) = (&self.loaded, self.par);
            if let Some(lr) = opt.plain_lr().filter(|_| o.offers_sgd_step()) {
                let f = o.loss_grad_sgd_step(params, lr, loaded, b, ws, par);
                self.epoch_loss += f.expect("an objective that offers the SGD step takes it").loss;
                return self.advance(end, t0);
            }
            if o.offers_finished() {
                if let Some((v, beta, mu, lr)) = opt.velocity(params.len()) {
                    let write = GradWrite {
                        alpha: -lr,
                        beta: Some(beta),
                    };
                    if o.offers_step() {
                        let f = o.loss_grad_step(params, v, StepWrite { write, mu }, loaded, b, ws, par);
                        self.epoch_loss += f.expect("an objective that offers the step takes it").loss;
                        return self.advance(end, t0);
                    }
                    let f = o.loss_grad_finished(params, (v, write), loaded, b, ws, par);
                    let f = f.expect("an objective that offers the finished gradient gives it");
                    self.epoch_loss += f.loss;
                    crate::tensor::par::chunks2(params, v, |_, p, v| {
                        crate::tensor::simd::add_then_scale(p, v, mu)
                    });
                    return self.advance(end, t0);
                }
            }
            let over = GradWrite {
                alpha: 1.0,
                beta: None,
            };
            if let Some(f) = o.loss_grad_finished(params, (g, over), loaded, b, ws, par) {
                self.epoch_loss += f.loss;
                opt.step(params, g);
                return self.advance(end, t0);
            }
        }
        let chunk = b.div_ceil(self.workers.len());
        let (loaded, par, p) = (&self.loaded, self.par, &*params);
        let work = |k: usize, (ws, g, l): &mut (W, Vec<f32>, f64)| {
            let rows = (k * chunk).min(b)..((k + 1) * chunk).min(b);
            crate::tensor::par::chunks(g, |_, c| c.fill(0.0));
            *l = if rows.is_empty() {
                0.0
            } else {
                o.loss_grad_sum(p, Some(g), loaded, rows, ws, par)
            };
        };
        if self.workers.len() == 1 {
            work(0, &mut self.workers[0]);
        } else {
            use rayon::prelude::*;
            self.workers
                .par_iter_mut()
                .enumerate()
                .for_each(|(k, w)| work(k, w));
        }
        let (first, rest) = self.workers.split_first_mut().expect("one worker");
        let mut loss_sum = first.2;
        for (_, g, l) in rest.iter() {
            loss_sum += *l;
            first.1.iter_mut().zip(g).for_each(|(a, &v)| *a += v);
        }
        self.epoch_loss += o.finish(params, &mut first.1, loss_sum, b).loss;
        opt.step(params, &first.1);
        self.advance(end, t0)
    }

    /// Counts a step that ended at `end` and started at `t0`.
    fn advance(&mut self, end: usize, t0: Instant) -> Option<f64> {
        let n = self.order.len();
        self.updates += 1;
        self.pos = end;
        let mut done = None;
        if self.pos == n {
            done = Some(self.epoch_loss / n.max(1) as f64);
            self.epoch_loss = 0.0;
            self.pos = 0;
            self.epochs += 1;
        }
        self.seconds += t0.elapsed().as_secs_f64();
        done
    }

    /// The state at the end of an epoch (counters, and the carried order),
    /// into `s`.
    pub fn save_state(&self, s: &mut super::State) {
        debug_assert_eq!(self.pos, 0, "saved between epochs");
        s.put("epochs", &self.epochs);
        s.put("updates", &self.updates);
        s.put("seconds", &self.seconds);
        if self.shuffle == Shuffle::Carried {
            s.put("order", &self.order);
        }
    }

    /// Restores what [`Minibatches::save_state`] wrote.
    pub fn load_state(&mut self, s: &super::State) -> crate::Result<()> {
        self.epochs = s.get("epochs")?;
        self.updates = s.get("updates")?;
        self.seconds = s.get("seconds")?;
        if self.shuffle == Shuffle::Carried {
            let order: Vec<usize> = s.get("order")?;
            let mut seen = vec![false; self.order.len()];
            let ok = order.len() == self.order.len()
                && order
                    .iter()
                    .all(|&i| i < seen.len() && !std::mem::replace(&mut seen[i], true));
            if !ok {
                return Err(crate::Error::config(
                    "resume",
                    format!(
                        "the checkpoint's example order is not a permutation of this run's {} examples",
                        self.order.len()
                    ),
                ));
            }
            self.order = order;
        }
        self.pos = 0;
        self.epoch_loss = 0.0;
        Ok(())
    }

    /// Runs to the end of the current epoch, reporting progress about 100
    /// times; returns (the epoch's mean training loss, updates made). Stops
    /// early, mid-epoch, when a stop is requested
    /// ([`super::checkpoint::stop_requested`]); the caller checks for that.
    pub fn run_epoch<O: Objective<Batch = B, Workspace = W>>(
        &mut self,
        o: &O,
        params: &mut [f32],
        opt: &mut dyn Step,
        rng: &mut Rng,
        obs: &mut dyn Observer,
    ) -> (f64, u64) {
        self.run_epoch_with(o, params, opt, rng, obs, &mut |_| {})
    }

    /// [`Minibatches::run_epoch`], calling `after` with the parameters
    /// after every update (weight averaging reads them there; a max-norm
    /// bound rescales them).
    pub fn run_epoch_with<O: Objective<Batch = B, Workspace = W>>(
        &mut self,
        o: &O,
        params: &mut [f32],
        opt: &mut dyn Step,
        rng: &mut Rng,
        obs: &mut dyn Observer,
        after: &mut dyn FnMut(&mut [f32]),
    ) -> (f64, u64) {
        let total = self.batches_per_epoch();
        let every = (total / 100).max(1);
        let before = self.updates;
        let mut k = 0;
        let _awake = crate::tensor::par::KeepAwake::new();
        loop {
            if super::checkpoint::stop_requested() {
                return (f64::NAN, self.updates - before);
            }
            let done = self.step(o, params, opt, rng);
            after(params);
            k += 1;
            if k % every == 0 || done.is_some() {
                obs.on_progress(k.min(total), total);
            }
            if let Some(l) = done {
                return (l, self.updates - before);
            }
        }
    }
}

//! Fine-tuning on the shared loops: the reconstruction objective over
//! minibatches (with the input corruption) and the epoch driver, Adam/SGD
//! or a few L-BFGS iterations per batch.

use super::{DeepAutoencoder, Workspace};
use crate::error::Result;
use crate::layers::Corruption;
use crate::optim::lbfgs::{minimize_from, LbfgsConfig};
use crate::tensor::gemm::Par;
use crate::tensor::rng::{shuffle, Rng};
use crate::train::{Finished, Fit, Minibatches, Objective, Observer, StepRule};
use std::ops::Range;

/// A batch: the (masked) inputs and the clean targets.
pub struct AeBatch {
    pub(super) input: Vec<f32>,
    pub(super) target: Vec<f32>,
}

/// Reconstruction of the training rows as an objective of the shared loops.
pub struct AeObjective<'a> {
    pub(super) model: &'a DeepAutoencoder,
    pub(super) x: &'a [f32],
    pub(super) noise: Corruption,
    pub(super) weight_decay: f32,
}

impl Objective for AeObjective<'_> {
    type Batch = AeBatch;
    type Workspace = Workspace;

    fn n_params(&self) -> usize {
        self.model.params.len()
    }
    fn n_examples(&self) -> usize {
        self.x.len() / self.model.sizes[0]
    }
    fn new_batch(&self, cap: usize) -> AeBatch {
        let n0 = self.model.sizes[0];
        AeBatch {
            input: Vec::with_capacity(cap * n0),
            target: Vec::with_capacity(cap * n0),
        }
    }
    fn new_workspace(&self, rows: usize) -> Workspace {
        self.model.workspace(rows)
    }
    fn load(&self, idx: &[usize], b: &mut AeBatch, rng: &mut Rng) {
        let n0 = self.model.sizes[0];
        b.input.clear();
        b.target.clear();
        for &i in idx {
            let row = &self.x[i * n0..(i + 1) * n0];
            b.target.extend_from_slice(row);
            let at = b.input.len();
            b.input.resize(at + n0, 0.0);
            self.noise.apply(&mut b.input[at..], row, rng);
        }
    }
    fn loss_grad_sum(
        &self,
        p: &[f32],
        grad: Option<&mut [f32]>,
        b: &AeBatch,
        rows: Range<usize>,
        ws: &mut Workspace,
        par: Par,
    ) -> f64 {
        let n0 = self.model.sizes[0];
        let n = rows.len();
        let span = rows.start * n0..rows.end * n0;
        self.model
            .forward(p, &b.input[span.clone()], n, self.model.depth(), ws, par);
        match grad {
            Some(g) => {
                let mut wg = std::mem::take(&mut ws.grad);
                wg.fill(0.0);
                let l = self.model.backward(p, &b.target[span], n, ws, Some(&mut wg), par);
                g.iter_mut().zip(&wg).for_each(|(a, &v)| *a += v);
                ws.grad = wg;
                l
            }
            None => self.model.backward(p, &b.target[span], n, ws, None, par),
        }
    }
    fn finish(&self, p: &[f32], grad: &mut [f32], loss_sum: f64, n: usize) -> Finished {
        let inv = 1.0 / n.max(1) as f32;
        crate::tensor::simd::scale(grad, inv);
        let mut penalty = 0.0f64;
        if self.weight_decay > 0.0 {
            for l in 0..self.model.depth() {
                let (w, _) = self.model.layer(l);
                for (g, &v) in grad[w.clone()].iter_mut().zip(&p[w]) {
                    *g += self.weight_decay * v;
                    penalty += 0.5 * (self.weight_decay * v * v) as f64;
                }
            }
        }
        Finished {
            loss: loss_sum,
            objective: loss_sum / n.max(1) as f64 + penalty,
        }
    }
}

/// Fine-tuning lent to the shared epoch loop.
pub(super) struct AeFit<'a> {
    pub(super) o: &'a AeObjective<'a>,
    pub(super) batches: Minibatches<AeBatch, Workspace>,
    pub(super) params: Vec<f32>,
    pub(super) opt: StepRule,
    pub(super) rng: Rng,
    /// L-BFGS: (batch, iterations per batch).
    pub(super) lbfgs: Option<(usize, usize)>,
    /// (factor, epochs before it applies): the step size's decay.
    pub(super) decay: (f32, usize),
    pub(super) val: Option<&'a [f32]>,
    pub(super) par: Par,
}

impl AeFit<'_> {
    /// One epoch of L-BFGS on each batch in turn; (mean loss, iterations).
    fn lbfgs_epoch(&mut self, batch: usize, iters: usize, obs: &mut dyn Observer) -> Result<(f64, u64)> {
        let o = self.o;
        let n = o.n_examples();
        let mut order: Vec<usize> = (0..n).collect();
        shuffle(&mut order, &mut self.rng);
        let mut b = o.new_batch(batch.min(n));
        let mut ws = o.new_workspace(batch.min(n));
        let cfg = LbfgsConfig {
            max_iter: iters,
            grad_tol: 0.0,
            cost_tol: 0.0,
            ..LbfgsConfig::default()
        };
        let (mut loss, mut updates) = (0.0f64, 0u64);
        let total = n.div_ceil(batch);
        for (k, idx) in order.chunks(batch).enumerate() {
            if crate::train::checkpoint::stop_requested() {
                return Err(crate::train::checkpoint::interrupted(self.batches.epochs));
            }
            o.load(idx, &mut b, &mut self.rng);
            let rows = idx.len();
            let par = self.par;
            let f = |p: &[f32], g: &mut [f32]| {
                g.fill(0.0);
                let sum = o.loss_grad_sum(p, Some(g), &b, 0..rows, &mut ws, par);
                o.finish(p, g, sum, rows).objective
            };
            let report = minimize_from(&mut self.params, f, &cfg, None, &mut |_, _, _| true);
            loss += report.cost * rows as f64;
            updates += report.iterations as u64;
            obs.on_progress(k + 1, total);
        }
        self.batches.epochs += 1;
        self.batches.updates += updates;
        Ok((loss / n.max(1) as f64, updates))
    }
}

impl Fit for AeFit<'_> {
    fn epoch(&mut self, obs: &mut dyn Observer) -> Result<(f64, u64)> {
        match self.lbfgs {
            Some((batch, iters)) => self.lbfgs_epoch(batch, iters, obs),
            None => {
                // Epoch e runs at lr·factor^(e − from) once e > from; the
                // step size saved with the optimizer carries it over a resume.
                let (factor, from) = self.decay;
                if self.batches.epochs >= from {
                    self.opt.scale_lr(factor);
                }
                Ok(self
                    .batches
                    .run_epoch(self.o, &mut self.params, &mut self.opt, &mut self.rng, obs))
            }
        }
    }
    fn validate(&mut self) -> Result<Option<f64>> {
        let Some(v) = self.val else {
            return Ok(None);
        };
        let mut m = self.o.model.clone();
        m.params.copy_from_slice(&self.params);
        Ok(Some(m.squared_error(v, self.par)))
    }
    crate::train::minibatch_fit_state!(params, rng, opt, batches);
}

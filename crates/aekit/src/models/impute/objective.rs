//! The imputer's training objective for the shared minibatch loop: batches
//! of rows with observed cells dropped (and filled again by the linear
//! path), the loss on the observed cells, and validation on the held-out
//! ones.

use super::gaussian::{self, Gaussian};
use super::network::{Net, Workspace};
use super::LossOn;
use crate::error::Result;
use crate::tensor::gemm::Par;
use crate::tensor::rng::Rng;
use crate::train::{Finished, Fit, Minibatches, Objective, Observer, StepRule};
use rand::Rng as _;
use std::ops::Range;

/// The validation input is kept whole up to this many bytes (64 MiB), and
/// built a chunk at a time each epoch past it.
pub(super) const VAL_INPUT_KEPT: usize = 64 << 20;

/// Threads for a network's products on batches of `rows`: none when a batch
/// is too small a job to share out (a 64-wide network on batches of 32 spent
/// a third of its time handing work to threads and waiting).
pub(super) fn net_par(net: &Net, rows: usize, par: Par) -> Par {
    if net.n_params() * rows < 1 << 22 {
        Par::Seq
    } else {
        par
    }
}

/// The network's input rows, `[n, 2·width]`: `[values · mask, mask]`, or
/// with the linear path `[observed values and the fill of the others,
/// mask]` (the fill drawn from its conditional distribution when `rng` is
/// given).
pub(super) fn net_input(
    x: &[f32],
    mask: &[f32],
    width: usize,
    gauss: Option<&Gaussian>,
    mut rng: Option<&mut Rng>,
) -> Vec<f32> {
    let mut out = vec![0.0f32; 2 * x.len()];
    let mut s = gaussian::Scratch::default();
    for ((o, xr), mr) in out
        .chunks_exact_mut(2 * width)
        .zip(x.chunks_exact(width))
        .zip(mask.chunks_exact(width))
    {
        let (v, m) = o.split_at_mut(width);
        match gauss {
            Some(g) => g.fill(xr, mr, &mut s, v, rng.as_deref_mut()),
            None => v
                .iter_mut()
                .zip(xr.iter().zip(mr))
                .for_each(|(o, (&a, &b))| *o = a * b),
        }
        m.copy_from_slice(mr);
    }
    out
}

/// Training batches: the corrupted input, the target, the loss mask and
/// each hidden layer's dropout mask.
pub struct ImputeBatch {
    input: Vec<f32>,
    target: Vec<f32>,
    mask: Vec<f32>,
    drop: Vec<Vec<f32>>,
}

/// The imputer's objective for the shared minibatch loop.
pub struct ImputeObjective<'a> {
    pub(super) net: &'a Net,
    pub(super) target: &'a [f32],
    pub(super) mask: &'a [f32],
    pub(super) groups: &'a [Range<usize>],
    pub(super) width: usize,
    pub(super) corruption: f32,
    pub(super) dropout: f32,
    pub(super) loss_on: LossOn,
    pub(super) gauss: Option<&'a Gaussian>,
}

impl Objective for ImputeObjective<'_> {
    type Batch = ImputeBatch;
    type Workspace = Workspace;

    fn n_params(&self) -> usize {
        self.net.n_params()
    }

    fn n_examples(&self) -> usize {
        self.target.len() / self.width
    }

    fn new_batch(&self, cap: usize) -> ImputeBatch {
        ImputeBatch {
            input: Vec::with_capacity(cap * 2 * self.width),
            target: Vec::with_capacity(cap * self.width),
            mask: Vec::with_capacity(cap * self.width),
            drop: vec![Vec::new(); self.net.depth() - 1],
        }
    }

    fn new_workspace(&self, rows: usize) -> Workspace {
        self.net.workspace(rows)
    }

    fn load(&self, idx: &[usize], b: &mut ImputeBatch, rng: &mut Rng) {
        let w = self.width;
        b.input.clear();
        b.target.clear();
        b.mask.clear();
        let mut s = gaussian::Scratch::default();
        for &i in idx {
            let row = i * w..(i + 1) * w;
            let (start, at) = (b.target.len(), b.input.len());
            // Observed cells only (held-out cells hidden too), beside the mask.
            b.input.extend(
                self.target[row.clone()]
                    .iter()
                    .zip(&self.mask[row.clone()])
                    .map(|(&v, &m)| v * m),
            );
            b.input.extend_from_slice(&self.mask[row.clone()]);
            b.target.extend_from_slice(&self.target[row.clone()]);
            b.mask.extend_from_slice(&self.mask[row]);
            // Drop observed cells from the input (whole one-hot groups:
            // value and mask).
            for g in self.groups {
                if b.mask[start + g.start] != 1.0 {
                    continue;
                }
                if rng.random::<f32>() < self.corruption {
                    b.input[at + g.start..at + g.end].fill(0.0);
                    b.input[at + w + g.start..at + w + g.end].fill(0.0);
                } else if self.loss_on == LossOn::Hidden {
                    b.mask[start + g.start..start + g.end].fill(0.0);
                }
            }
            // The linear fill of the cells the input now lacks.
            if let Some(g) = self.gauss {
                let (v, m) = b.input[at..at + 2 * w].split_at_mut(w);
                g.fill(&self.target[i * w..(i + 1) * w], m, &mut s, v, None);
            }
        }
        for (j, m) in b.drop.iter_mut().enumerate() {
            crate::layers::dropout::draw_mask(m, idx.len() * self.net.sizes[j + 1], self.dropout, rng);
        }
    }

    fn loss_grad_sum(
        &self,
        p: &[f32],
        grad: Option<&mut [f32]>,
        b: &ImputeBatch,
        rows: Range<usize>,
        ws: &mut Workspace,
        par: Par,
    ) -> f64 {
        let w = self.width;
        let n = rows.len();
        let span = rows.start * w..rows.end * w;
        let in_span = 2 * rows.start * w..2 * rows.end * w;
        let drop: Vec<&[f32]> = b
            .drop
            .iter()
            .enumerate()
            .map(|(j, m)| {
                let h = self.net.sizes[j + 1];
                &m[rows.start * h..rows.end * h]
            })
            .collect();
        self.net.forward(p, &b.input[in_span], n, Some(&drop), ws, par);
        match grad {
            Some(g) => {
                ws.grad.fill(0.0);
                let mut wg = std::mem::take(&mut ws.grad);
                let l = self.net.loss_backward(
                    p,
                    &b.target[span.clone()],
                    &b.mask[span],
                    n,
                    &drop,
                    ws,
                    Some(&mut wg),
                    par,
                );
                g.iter_mut().zip(&wg).for_each(|(a, &v)| *a += v);
                ws.grad = wg;
                l
            }
            None => {
                self.net
                    .loss_backward(p, &b.target[span.clone()], &b.mask[span], n, &drop, ws, None, par)
            }
        }
    }

    fn finish(&self, _p: &[f32], grad: &mut [f32], loss_sum: f64, n: usize) -> Finished {
        let inv = 1.0 / n.max(1) as f32;
        crate::tensor::simd::scale(grad, inv);
        Finished {
            loss: loss_sum,
            objective: loss_sum / n.max(1) as f64,
        }
    }
}

/// Imputation lent to the shared epoch loop: validation is the loss per
/// held-out cell, predicted from the training input with dropout off.
pub(super) struct ImputeFit<'a> {
    pub(super) o: &'a ImputeObjective<'a>,
    pub(super) batches: Minibatches<ImputeBatch, Workspace>,
    pub(super) params: Vec<f32>,
    pub(super) opt: StepRule,
    pub(super) rng: Rng,
    /// Every observed cell's mask and how many are held out.
    pub(super) val: Option<(&'a Vec<f32>, usize)>,
    /// The validation input, when small enough to keep (it does not change
    /// from epoch to epoch; with the linear path it costs a Cholesky
    /// factorisation a row to build).
    pub(super) val_input: Option<&'a [f32]>,
    pub(super) par: Par,
}

impl Fit for ImputeFit<'_> {
    fn epoch(&mut self, obs: &mut dyn Observer) -> Result<(f64, u64)> {
        Ok(self
            .batches
            .run_epoch(self.o, &mut self.params, &mut self.opt, &mut self.rng, obs))
    }

    fn validate(&mut self) -> Result<Option<f64>> {
        let Some((observed, held)) = self.val else {
            return Ok(None);
        };
        let net = self.o.net;
        let (n, w) = (self.o.n_examples(), self.o.width);
        let chunk = 1024.min(n.max(1));
        let mut ws = net.workspace(chunk);
        let mut loss = 0.0;
        let mut held_out = Vec::with_capacity(chunk * w);
        let gauss = self.o.gauss;
        for start in (0..n).step_by(chunk) {
            let rows = chunk.min(n - start);
            let span = start * w..(start + rows) * w;
            held_out.clear();
            held_out.extend(
                observed[span.clone()]
                    .iter()
                    .zip(&self.o.mask[span.clone()])
                    .map(|(&o, &t)| o - t),
            );
            // The training input (held-out cells hidden): kept for a small
            // table, else built a chunk at a time.
            let built;
            let input = match self.val_input {
                Some(all) => &all[2 * start * w..2 * (start + rows) * w],
                None => {
                    built = net_input(
                        &self.o.target[span.clone()],
                        &self.o.mask[span.clone()],
                        w,
                        gauss,
                        None,
                    );
                    &built[..]
                }
            };
            net.forward(&self.params, input, rows, None, &mut ws, self.par);
            // No gradient: the dropout masks are not read.
            loss += net.loss_backward(
                &self.params,
                &self.o.target[span.clone()],
                &held_out,
                rows,
                &[],
                &mut ws,
                None,
                self.par,
            );
        }
        Ok(Some(loss / held as f64))
    }

    crate::train::minibatch_fit_state!(params, rng, opt, batches);
}

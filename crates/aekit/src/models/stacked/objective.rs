//! The deep trunk + head objective that gradual pretraining and
//! fine-tuning train through the shared minibatch loop.

use crate::models::deep::{
    deep_finish, deep_loss_grad, deep_loss_grad_step, deep_penalty, DeepBatch, DeepLayout, DeepWorkspace,
    DropMasks, HeadKind,
};
use crate::tensor::fused::StepWrite;
use crate::tensor::gemm::Par;
use crate::tensor::rng::Rng;
use crate::tensor::GradWrite;
use crate::train::{Finished, Objective};

/// A minibatch as the deep objective takes it: inputs, and the target or
/// the labels; with dropout, the hidden layers' masks
/// ([`crate::models::deep::DropMasks`]' layout; empty: no dropout).
#[derive(Default)]
pub(crate) struct Batch {
    pub(crate) input: Vec<f32>,
    pub(crate) target: Vec<f32>,
    pub(crate) labels: Vec<u8>,
    pub(crate) drop: Vec<f32>,
}

/// How a batch of the examples at some indices is loaded (and corrupted).
pub(crate) type Fill<'a> = dyn Fn(&[usize], &mut Batch, &mut Rng) + Sync + 'a;

/// A trunk + head objective: mean loss plus ½·λ·Σ‖W‖² over `n` examples
/// that `fill` loads.
pub(crate) struct DeepObjective<'a> {
    pub(crate) lay: &'a DeepLayout,
    pub(crate) n: usize,
    pub(crate) weight_decay: f32,
    pub(crate) fill: &'a Fill<'a>,
}

impl Objective for DeepObjective<'_> {
    type Batch = Batch;
    type Workspace = DeepWorkspace<f32>;

    fn n_params(&self) -> usize {
        self.lay.len
    }

    fn n_examples(&self) -> usize {
        self.n
    }

    fn new_batch(&self, _cap: usize) -> Batch {
        Batch::default()
    }

    fn new_workspace(&self, _rows: usize) -> DeepWorkspace<f32> {
        DeepWorkspace::default()
    }

    fn load(&self, idx: &[usize], b: &mut Batch, rng: &mut Rng) {
        (self.fill)(idx, b, rng)
    }

    fn loss_grad_sum(
        &self,
        p: &[f32],
        grad: Option<&mut [f32]>,
        b: &Batch,
        rows: std::ops::Range<usize>,
        ws: &mut DeepWorkspace<f32>,
        par: Par,
    ) -> f64 {
        let rows = self.rows(b, rows);
        deep_loss_grad(self.lay, p, grad.map(|g| (g, GradWrite::ADD)), rows, ws, par) as f64
    }

    fn finish(&self, p: &[f32], grad: &mut [f32], loss_sum: f64, n: usize) -> Finished {
        let (mean, objective) = deep_finish(self.lay, p, grad, loss_sum as f32, n, self.weight_decay);
        Finished::of_mean(mean, n, objective)
    }

    fn offers_finished(&self) -> bool {
        true
    }

    fn loss_grad_finished(
        &self,
        p: &[f32],
        (out, write): (&mut [f32], GradWrite<f32>),
        b: &Batch,
        n: usize,
        ws: &mut DeepWorkspace<f32>,
        par: Par,
    ) -> Option<Finished> {
        let inv = 1.0 / n as f32;
        let sum = deep_loss_grad(
            self.lay,
            p,
            Some((&mut *out, write.scaled(inv))),
            self.rows(b, 0..n),
            ws,
            par,
        );
        let mean = sum * inv;
        let objective = deep_penalty(self.lay, p, out, self.weight_decay, write.alpha, mean);
        Some(Finished::of_mean(mean, n, objective))
    }

    fn offers_step(&self) -> bool {
        // The fused step has no weight-decay term (the penalty's gradient
        // and value need the weights before the step).
        self.weight_decay == 0.0
    }

    fn loss_grad_step(
        &self,
        p: &mut [f32],
        v: &mut [f32],
        w: StepWrite,
        b: &Batch,
        n: usize,
        ws: &mut DeepWorkspace<f32>,
        par: Par,
    ) -> Option<Finished> {
        if !self.offers_step() {
            return None;
        }
        let inv = 1.0 / n as f32;
        let w = StepWrite {
            write: w.write.scaled(inv),
            ..w
        };
        let mean = deep_loss_grad_step(self.lay, p, v, w, self.rows(b, 0..n), ws, par) * inv;
        Some(Finished::of_mean(mean, n, mean))
    }
}

impl DeepObjective<'_> {
    /// The inputs, targets and labels of `rows` of a loaded batch.
    fn rows<'b>(&self, b: &'b Batch, rows: std::ops::Range<usize>) -> DeepBatch<'b, f32> {
        let nv = self.lay.sizes[0];
        let drop = (!b.drop.is_empty()).then(|| DropMasks {
            all: &b.drop,
            batch_rows: b.input.len() / nv,
            first_row: rows.start,
        });
        let x = &b.input[rows.start * nv..rows.end * nv];
        let target = match self.lay.head {
            HeadKind::Reconstruct { n_out, .. } => &b.target[rows.start * n_out..rows.end * n_out],
            HeadKind::Softmax { .. } => &b.target[..0],
        };
        let n = rows.len();
        let labels = if b.labels.is_empty() {
            &b.labels[..]
        } else {
            &b.labels[rows]
        };
        DeepBatch {
            x,
            target,
            labels,
            rows: n,
            drop,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layers::loss::Loss;
    use crate::models::deep::HeadKind;
    use crate::tensor::rng::seeded;
    use rand::Rng as _;

    #[test]
    fn the_one_call_gradient_is_the_cleared_summed_and_finished_one() {
        // A denoising head and a classifier, with and without weight decay,
        // inputs mostly zeros like MNIST (so the first layer's products take
        // the sparse path where the shape allows).
        for (head, wd) in [
            (
                HeadKind::Reconstruct {
                    n_out: 300,
                    loss: Loss::CrossEntropy,
                },
                0.0,
            ),
            (
                HeadKind::Reconstruct {
                    n_out: 300,
                    loss: Loss::Squared,
                },
                1e-3,
            ),
            (HeadKind::Softmax { classes: 10 }, 1e-3),
            (HeadKind::Softmax { classes: 10 }, 0.0),
        ] {
            let lay = DeepLayout::new(&[300, 200, 100], head);
            let n = 30;
            let mut rng = seeded(5);
            let x: Vec<f32> = (0..n * 300)
                .map(|_| {
                    if rng.random::<f32>() < 0.8 {
                        0.0
                    } else {
                        rng.random()
                    }
                })
                .collect();
            let labels: Vec<u8> = (0..n).map(|i| (i % 10) as u8).collect();
            let p: Vec<f32> = (0..lay.len).map(|_| rng.random_range(-0.1..0.1)).collect();
            // The classifier without weight decay trains with dropout.
            let drop = matches!(head, HeadKind::Softmax { .. }) && wd == 0.0;
            let fill = |idx: &[usize], b: &mut Batch, rng: &mut Rng| {
                b.input = idx
                    .iter()
                    .flat_map(|&i| x[i * 300..(i + 1) * 300].iter().copied())
                    .collect();
                b.target = b.input.clone();
                b.labels = idx.iter().map(|&i| labels[i]).collect();
                b.drop.clear();
                if drop {
                    crate::layers::dropout::extend_mask(&mut b.drop, idx.len() * (200 + 100), 0.5, rng);
                }
            };
            let o = DeepObjective {
                lay: &lay,
                n,
                weight_decay: wd,
                fill: &fill,
            };
            crate::train::assert_finished_matches_plain(&o, &p, &format!("{head:?}"));
        }
    }

    #[test]
    fn dropout_masks_follow_their_rows_when_a_batch_is_split() {
        // The gradient of a batch summed over two slices of its rows (as
        // the threads of a minibatch take them) is the whole batch's: each
        // slice reads its own rows of every layer's mask. And the masks
        // change the gradient.
        let lay = DeepLayout::new(&[20, 12, 8], HeadKind::Softmax { classes: 4 });
        let n = 9;
        let mut rng = seeded(8);
        let x: Vec<f32> = (0..n * 20).map(|_| rng.random()).collect();
        let p: Vec<f32> = (0..lay.len).map(|_| rng.random_range(-0.5..0.5)).collect();
        let fill = |idx: &[usize], b: &mut Batch, rng: &mut Rng| {
            b.input = idx
                .iter()
                .flat_map(|&i| x[i * 20..(i + 1) * 20].iter().copied())
                .collect();
            b.labels = idx.iter().map(|&i| (i % 4) as u8).collect();
            b.drop.clear();
            crate::layers::dropout::extend_mask(&mut b.drop, idx.len() * (12 + 8), 0.5, rng);
        };
        let o = DeepObjective {
            lay: &lay,
            n,
            weight_decay: 0.0,
            fill: &fill,
        };
        let mut b = o.new_batch(n);
        o.load(&(0..n).collect::<Vec<_>>(), &mut b, &mut seeded(3));
        let mut ws = o.new_workspace(n);
        // Summed over the slices of rows between consecutive `cuts`.
        let grad = |b: &Batch, cuts: &[usize], ws: &mut DeepWorkspace<f32>| {
            let mut g = vec![0.0f32; lay.len];
            let loss: f64 = cuts
                .windows(2)
                .map(|c| o.loss_grad_sum(&p, Some(&mut g), b, c[0]..c[1], ws, Par::Seq))
                .sum();
            (loss, g)
        };
        let (whole_loss, whole) = grad(&b, &[0, n], &mut ws);
        let (split_loss, split) = grad(&b, &[0, 4, n], &mut ws);
        assert!((whole_loss - split_loss).abs() < 1e-5 * whole_loss.abs());
        for (i, (a, s)) in whole.iter().zip(&split).enumerate() {
            assert!((a - s).abs() < 1e-5, "entry {i}: {a} against {s}");
        }
        b.drop.clear();
        let (_, plain) = grad(&b, &[0, n], &mut ws);
        let moved = plain
            .iter()
            .zip(&whole)
            .filter(|(a, b)| (*a - *b).abs() > 1e-4)
            .count();
        assert!(
            moved > lay.len / 4,
            "dropout moved {moved} of {} entries",
            lay.len
        );
    }
}

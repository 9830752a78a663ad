//! The deep trunk + head objective that gradual pretraining and
//! fine-tuning train through the shared minibatch loop.

use crate::models::deep::{
    deep_finish, deep_loss_grad_scaled, deep_penalty, DeepLayout, DeepWorkspace, HeadKind,
};
use crate::tensor::gemm::Par;
use crate::tensor::rng::Rng;
use crate::train::{Finished, Objective};

/// A minibatch as the deep objective takes it: inputs, and the target or
/// the labels.
#[derive(Default)]
pub(crate) struct Batch {
    pub(crate) input: Vec<f32>,
    pub(crate) target: Vec<f32>,
    pub(crate) labels: Vec<u8>,
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
        let (input, target, labels) = self.rows(b, rows);
        deep_loss_grad_scaled(
            self.lay,
            p,
            grad,
            input,
            target,
            labels,
            input.len() / self.lay.sizes[0],
            ws,
            par,
            1.0,
            Some(1.0),
        ) as f64
    }

    fn finish(&self, p: &[f32], grad: &mut [f32], loss_sum: f64, n: usize) -> Finished {
        let (mean, objective) = deep_finish(self.lay, p, grad, loss_sum as f32, n, self.weight_decay);
        Finished {
            loss: mean as f64 * n as f64,
            objective: objective as f64,
        }
    }

    fn offers_finished(&self) -> bool {
        true
    }

    fn loss_grad_finished(
        &self,
        p: &[f32],
        out: &mut [f32],
        b: &Batch,
        n: usize,
        ws: &mut DeepWorkspace<f32>,
        par: Par,
        scale: f32,
        beta: Option<f32>,
    ) -> Option<Finished> {
        let (input, target, labels) = self.rows(b, 0..n);
        let inv = 1.0 / n as f32;
        let sum = deep_loss_grad_scaled(
            self.lay,
            p,
            Some(out),
            input,
            target,
            labels,
            n,
            ws,
            par,
            scale * inv,
            beta,
        );
        let mean = sum * inv;
        let objective = deep_penalty(self.lay, p, out, self.weight_decay, scale, mean);
        Some(Finished {
            loss: mean as f64 * n as f64,
            objective: objective as f64,
        })
    }
}

impl DeepObjective<'_> {
    /// The inputs, targets and labels of `rows` of a loaded batch.
    fn rows<'b>(&self, b: &'b Batch, rows: std::ops::Range<usize>) -> (&'b [f32], &'b [f32], &'b [u8]) {
        let nv = self.lay.sizes[0];
        let input = &b.input[rows.start * nv..rows.end * nv];
        let target = match self.lay.head {
            HeadKind::Reconstruct { n_out, .. } => &b.target[rows.start * n_out..rows.end * n_out],
            HeadKind::Softmax { .. } => &b.target[..0],
        };
        let labels = if b.labels.is_empty() {
            &b.labels[..]
        } else {
            &b.labels[rows]
        };
        (input, target, labels)
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
            let fill = |idx: &[usize], b: &mut Batch, _: &mut Rng| {
                b.input = idx
                    .iter()
                    .flat_map(|&i| x[i * 300..(i + 1) * 300].iter().copied())
                    .collect();
                b.target = b.input.clone();
                b.labels = idx.iter().map(|&i| labels[i]).collect();
            };
            let o = DeepObjective {
                lay: &lay,
                n,
                weight_decay: wd,
                fill: &fill,
            };
            let mut b = o.new_batch(n);
            o.load(&(0..n).collect::<Vec<_>>(), &mut b, &mut seeded(1));
            let mut ws = o.new_workspace(n);
            let mut want = vec![0.0f32; lay.len];
            let sum = o.loss_grad_sum(&p, Some(&mut want), &b, 0..n, &mut ws, Par::Seq);
            let f_want = o.finish(&p, &mut want, sum, n);
            // Garbage in the buffer: the one call must overwrite all of it.
            let mut got = vec![7.0f32; lay.len];
            let f_got = o
                .loss_grad_finished(&p, &mut got, &b, n, &mut ws, Par::Seq, 1.0, None)
                .expect("offered");
            assert_eq!(f_got.loss, f_want.loss, "{head:?}");
            assert!((f_got.objective - f_want.objective).abs() <= 1e-6 * f_want.objective.abs());
            let scale = want.iter().fold(0.0f32, |m, v| m.max(v.abs()));
            for (i, (g, w)) in got.iter().zip(&want).enumerate() {
                assert!(
                    (g - w).abs() <= 1e-5 * scale,
                    "{head:?} entry {i}: {g} against {w}"
                );
            }
            // Written into SGD's velocity: v ← μ·v − η·g, then θ ← θ + v,
            // against the optimizer's own step from the gradient above.
            let (lr, mu) = (0.1f32, 0.9f32);
            let v0: Vec<f32> = (0..lay.len).map(|_| rng.random_range(-0.01..0.01)).collect();
            let mut sgd = crate::optim::Sgd::new(lr, mu);
            sgd.set_velocity(&v0);
            let mut p_want = p.clone();
            sgd.step(&mut p_want, &want);
            let mut v = v0.clone();
            o.loss_grad_finished(&p, &mut v, &b, n, &mut ws, Par::Seq, -lr, Some(mu))
                .expect("offered");
            let p_got: Vec<f32> = p.iter().zip(&v).map(|(p, v)| p + v).collect();
            for (i, ((v, vw), (q, qw))) in v
                .iter()
                .zip(sgd.velocity())
                .zip(p_got.iter().zip(&p_want))
                .enumerate()
            {
                assert!(
                    (v - vw).abs() <= 1e-5 * lr * scale,
                    "{head:?} velocity {i}: {v} against {vw}"
                );
                assert!(
                    (q - qw).abs() <= 1e-5 * lr * scale + 1e-7,
                    "{head:?} parameter {i}: {q} against {qw}"
                );
            }
        }
    }
}

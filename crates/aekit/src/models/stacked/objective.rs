//! The deep trunk + head objective that gradual pretraining and
//! fine-tuning train through the shared minibatch loop.

use crate::models::deep::{deep_finish, deep_loss_grad, DeepLayout, DeepWorkspace, HeadKind};
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
        let nv = self.lay.sizes[0];
        let input = &b.input[rows.start * nv..rows.end * nv];
        let target = match self.lay.head {
            HeadKind::Reconstruct { n_out, .. } => &b.target[rows.start * n_out..rows.end * n_out],
            HeadKind::Softmax { .. } => &b.target[..0],
        };
        let labels = if b.labels.is_empty() {
            &b.labels[..]
        } else {
            &b.labels[rows.clone()]
        };
        deep_loss_grad(self.lay, p, grad, input, target, labels, rows.len(), ws, par) as f64
    }

    fn finish(&self, p: &[f32], grad: &mut [f32], loss_sum: f64, n: usize) -> Finished {
        let (mean, objective) = deep_finish(self.lay, p, grad, loss_sum as f32, n, self.weight_decay);
        Finished {
            loss: mean as f64 * n as f64,
            objective: objective as f64,
        }
    }
}

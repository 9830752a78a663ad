//! The door between a model and the generic training loops: a model exposes
//! its objective (loss and gradient of a batch over one flat parameter
//! vector, and how a batch is drawn and corrupted), and any optimizer that
//! takes a step from a gradient ([`Step`]: SGD, Adam) trains it with
//! [`Minibatches`](super::Minibatches); full-batch L-BFGS with
//! [`lbfgs_fit`](super::lbfgs_fit). The coming genetic algorithm, other
//! data-parallel schemes and a GPU backend plug in at the same door.

use crate::optim::{Adam, Sgd};
use crate::tensor::gemm::Par;
use crate::tensor::rng::Rng;
use std::ops::Range;

/// A model's training objective over one flat parameter vector.
///
/// A batch is loaded once (`load`: gather the examples, draw their
/// corruption), then any number of workers each sum the loss and gradient
/// over their rows of it (`loss_grad_sum`, into their own workspace and
/// gradient), the sums are added in worker order, and `finish` turns them
/// into the objective's gradient (the batch mean plus any penalty).
pub trait Objective: Sync {
    /// A loaded batch (inputs, targets or labels), shared by the workers.
    type Batch: Send + Sync;
    /// One worker's activations, built once per batch size.
    type Workspace: Send;

    /// Length of the parameter vector.
    fn n_params(&self) -> usize;
    /// Examples in the training set.
    fn n_examples(&self) -> usize;
    /// An empty batch of up to `cap` examples.
    fn new_batch(&self, cap: usize) -> Self::Batch;
    /// A workspace for up to `rows` examples.
    fn new_workspace(&self, rows: usize) -> Self::Workspace;
    /// Loads the examples at `idx` into `batch`, drawing any corruption from
    /// `rng` (in example order, so a run is reproducible).
    fn load(&self, idx: &[usize], batch: &mut Self::Batch, rng: &mut Rng);
    /// The summed loss over `rows` of the loaded batch; when `grad` is given,
    /// adds the summed gradient into it.
    fn loss_grad_sum(
        &self,
        params: &[f32],
        grad: Option<&mut [f32]>,
        batch: &Self::Batch,
        rows: Range<usize>,
        ws: &mut Self::Workspace,
        par: Par,
    ) -> f64;
    /// Turns `grad`, summed over `n` examples with summed loss `loss_sum`,
    /// into the objective's gradient in place.
    fn finish(&self, params: &[f32], grad: &mut [f32], loss_sum: f64, n: usize) -> Finished;
}

/// What [`Objective::finish`] returns.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Finished {
    /// The batch's share of the epoch's summed training loss (penalties
    /// excluded), as the model has always counted it.
    pub loss: f64,
    /// The objective the gradient belongs to: mean loss plus penalties.
    pub objective: f64,
}

/// Full-batch L-BFGS on `o` from `params`: the whole training set is loaded
/// once (so its corruption is drawn once, from `rng`, and kept: the
/// objective is deterministic); each iteration is reported to `on_iter`.
pub fn lbfgs_fit<O: Objective>(
    o: &O,
    params: &mut [f32],
    cfg: &crate::optim::lbfgs::LbfgsConfig,
    rng: &mut Rng,
    par: Par,
    on_iter: &mut dyn FnMut(&crate::optim::lbfgs::IterInfo),
) -> crate::optim::lbfgs::LbfgsReport {
    let n = o.n_examples();
    let mut batch = o.new_batch(n);
    o.load(&(0..n).collect::<Vec<_>>(), &mut batch, rng);
    let mut ws = o.new_workspace(n);
    let f = |p: &[f32], g: &mut [f32]| {
        g.fill(0.0);
        let sum = o.loss_grad_sum(p, Some(g), &batch, 0..n, &mut ws, par);
        o.finish(p, g, sum, n).objective
    };
    crate::optim::lbfgs::minimize(params, f, cfg, on_iter)
}

/// An optimizer that steps from a gradient.
pub trait Step {
    fn step(&mut self, params: &mut [f32], grad: &[f32]);
}

impl Step for Sgd {
    fn step(&mut self, params: &mut [f32], grad: &[f32]) {
        Sgd::step(self, params, grad)
    }
}

impl Step for Adam {
    fn step(&mut self, params: &mut [f32], grad: &[f32]) {
        Adam::step(self, params, grad)
    }
}

/// The step of a [`TrainConfig`](super::TrainConfig): SGD with momentum or
/// Adam (L-BFGS does not step from one batch's gradient; it gets plain SGD
/// here and is run by [`lbfgs_fit`] instead).
#[derive(Debug, Clone)]
pub enum StepRule {
    Sgd(Sgd),
    Adam(Adam),
}

impl StepRule {
    pub fn new(cfg: &super::TrainConfig) -> StepRule {
        match cfg.optimizer {
            super::Optimizer::Adam => StepRule::Adam(Adam::new(cfg.adam_config())),
            super::Optimizer::Sgd | super::Optimizer::Lbfgs => StepRule::Sgd(Sgd::new(cfg.lr, cfg.momentum)),
        }
    }

    /// The optimizer's state (velocity, or Adam's moments and step count,
    /// and the step size, which a decay may have changed) into `s`.
    pub fn save_state(&self, s: &mut super::State) {
        match self {
            StepRule::Sgd(g) => {
                s.put("lr", &g.lr);
                s.put_tensor("velocity", g.velocity());
            }
            StepRule::Adam(a) => {
                let (m, v, t) = a.moments();
                s.put("lr", &a.config.lr);
                s.put_tensor("m", m);
                s.put_tensor("v", v);
                s.put("t", &t);
            }
        }
    }

    /// Restores what [`StepRule::save_state`] wrote, for `n` parameters.
    pub fn load_state(&mut self, s: &super::State, n: usize) -> crate::Result<()> {
        // A moment is empty until the first step that needs it.
        let len = |name: &str| {
            if s.tensor_any(name).is_ok_and(|t| t.is_empty()) {
                0
            } else {
                n
            }
        };
        match self {
            StepRule::Sgd(g) => {
                g.lr = s.get("lr")?;
                g.set_velocity(s.tensor("velocity", len("velocity"))?);
            }
            StepRule::Adam(a) => {
                a.config.lr = s.get("lr")?;
                let m = s.tensor("m", len("m"))?;
                let v = s.tensor("v", len("v"))?;
                a.set_moments(m, v, s.get("t")?);
            }
        }
        Ok(())
    }

    /// Multiplies the step size by `factor` (a learning-rate decay).
    pub fn scale_lr(&mut self, factor: f32) {
        match self {
            StepRule::Sgd(s) => s.lr *= factor,
            StepRule::Adam(a) => a.config.lr *= factor,
        }
    }
}

impl Step for StepRule {
    fn step(&mut self, params: &mut [f32], grad: &[f32]) {
        match self {
            StepRule::Sgd(s) => s.step(params, grad),
            StepRule::Adam(a) => a.step(params, grad),
        }
    }
}

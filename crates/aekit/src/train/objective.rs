//! The door between a model and the generic training loops: a model exposes
//! its objective (loss and gradient of a batch over one flat parameter
//! vector, and how a batch is drawn and corrupted), and any optimizer that
//! takes a step from a gradient ([`Step`]: SGD, Adam) trains it with
//! [`Minibatches`](super::Minibatches); full-batch L-BFGS with
//! [`lbfgs_fit`](super::lbfgs_fit). The coming genetic algorithm, other
//! data-parallel schemes and a GPU backend plug in at the same door.

use crate::optim::{Adam, Sgd};
use crate::tensor::fused::StepWrite;
use crate::tensor::gemm::Par;
use crate::tensor::rng::Rng;
use crate::tensor::GradWrite;
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

    /// The whole loaded batch (`n` examples) in one call, its finished
    /// gradient `g` (what clearing a buffer,
    /// [`loss_grad_sum`](Objective::loss_grad_sum) over every row and
    /// [`finish`](Objective::finish) give) written into `out.0` as `out.1`
    /// says: `out ← β·out + α·g`, or `α·g` written over. An objective whose
    /// products can write their results so spares one worker's step the
    /// clearing and rescaling of a model-sized buffer, and SGD with
    /// momentum its separate gradient buffer (the velocity is the buffer,
    /// β = μ, α = −η). `None` (the default), with the buffer untouched,
    /// when the objective does not offer it.
    fn loss_grad_finished(
        &self,
        params: &[f32],
        out: (&mut [f32], GradWrite<f32>),
        batch: &Self::Batch,
        n: usize,
        ws: &mut Self::Workspace,
        par: Par,
    ) -> Option<Finished> {
        let _ = (params, out, batch, n, ws, par);
        None
    }

    /// Whether [`loss_grad_finished`](Objective::loss_grad_finished) gives
    /// a result (asked before a step hands it SGD's velocity).
    fn offers_finished(&self) -> bool {
        false
    }

    /// The whole loaded batch (`n` examples) and SGD with momentum's step on
    /// it in one call: the finished gradient g enters the velocity `v` as
    /// `w` says (v ← β·v + α·g, α = −η), then θ ← θ + v and v ← μ·v, the
    /// same step as [`loss_grad_finished`](Objective::loss_grad_finished)
    /// into `v` followed by that pass over the whole vector. An objective
    /// that takes each layer's step as soon as its gradient is summed
    /// passes over the parameters and the velocity once instead of twice.
    /// `None` (the default), with nothing touched, when not offered.
    #[allow(clippy::too_many_arguments)]
    fn loss_grad_step(
        &self,
        params: &mut [f32],
        v: &mut [f32],
        w: StepWrite,
        batch: &Self::Batch,
        n: usize,
        ws: &mut Self::Workspace,
        par: Par,
    ) -> Option<Finished> {
        let _ = (params, v, w, batch, n, ws, par);
        None
    }

    /// Whether [`loss_grad_step`](Objective::loss_grad_step) gives a result
    /// (asked before a step hands it SGD's velocity).
    fn offers_step(&self) -> bool {
        false
    }

    /// The whole loaded batch (`n` examples) and plain SGD's step on it
    /// (θ ← θ − η·g, no momentum) taken in place: the objective adds −η
    /// times each share of the finished gradient straight into `params`
    /// once nothing it computes later reads them, so no gradient buffer is
    /// written, read back and stepped along. `None` (the default), with
    /// nothing touched, when not offered.
    fn loss_grad_sgd_step(
        &self,
        params: &mut [f32],
        lr: f32,
        batch: &Self::Batch,
        n: usize,
        ws: &mut Self::Workspace,
        par: Par,
    ) -> Option<Finished> {
        let _ = (params, lr, batch, n, ws, par);
        None
    }

    /// Whether [`loss_grad_sgd_step`](Objective::loss_grad_sgd_step) gives
    /// a result.
    fn offers_sgd_step(&self) -> bool {
        false
    }
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

impl Finished {
    /// From a batch of `n` examples' mean loss and its objective (f32, as
    /// the models compute them).
    pub fn of_mean(mean: f32, n: usize, objective: f32) -> Self {
        Finished {
            loss: mean as f64 * n as f64,
            objective: objective as f64,
        }
    }
}

/// Full-batch L-BFGS on `o` from `params`: the whole training set is loaded
/// once (so its corruption is drawn once, from `rng`, and kept: the
/// objective is deterministic); see [`lbfgs_run`].
pub fn lbfgs_fit<O: Objective>(
    o: &O,
    params: &mut [f32],
    cfg: &crate::optim::lbfgs::LbfgsConfig,
    rng: &mut Rng,
    par: Par,
    obs: &mut dyn super::Observer,
    ck: super::Checkpointing<'_>,
) -> crate::Result<crate::optim::lbfgs::LbfgsReport> {
    let n = o.n_examples();
    let mut batch = o.new_batch(n);
    o.load(&(0..n).collect::<Vec<_>>(), &mut batch, rng);
    let mut ws = o.new_workspace(n);
    let f = |p: &[f32], g: &mut [f32]| {
        g.fill(0.0);
        let sum = o.loss_grad_sum(p, Some(g), &batch, 0..n, &mut ws, par);
        o.finish(p, g, sum, n).objective
    };
    lbfgs_run(params, f, cfg, obs, ck)
}

/// A checkpoint write's outcome: the writer handed back, what it returned,
/// how long it took.
type Written<'w> = (
    &'w mut super::SaveState<'w>,
    crate::Result<()>,
    std::time::Duration,
);

/// Waits for the write in flight, if any: the writer goes back to `saver`
/// and its time into `last`.
fn finish<'w>(
    pending: &mut Option<std::thread::ScopedJoinHandle<'_, Written<'w>>>,
    saver: &mut Option<&'w mut super::SaveState<'w>>,
    last: &mut Option<(std::time::Instant, Option<std::time::Duration>)>,
) -> crate::Result<()> {
    let Some(h) = pending.take() else { return Ok(()) };
    let (s, r, took) = h.join().unwrap_or_else(|p| std::panic::resume_unwind(p));
    *saver = Some(s);
    if let Some((_, t)) = last.as_mut() {
        *t = Some(took);
    }
    r
}

/// Work between two L-BFGS checkpoints, in multiples of the time one took.
pub const SAVE_RATIO: u32 = 20;

/// Full-batch L-BFGS of `f` (cost, and gradient into its second argument)
/// from `params`, each iteration reported to `obs` as an epoch, and resumed
/// from a checkpoint as `ck` says (bit-for-bit: the cost is deterministic).
/// The state (parameters and the whole L-BFGS memory, tens of MB for a big
/// model) is saved after the first iteration, after the one a stop request
/// ends, and otherwise once [`SAVE_RATIO`] times as long as the last write
/// took has passed since it began: a kill loses at most that many times one
/// write. The state is copied on the fit's thread and written (and synced)
/// on a thread of its own while the iterations go on, one write at a time;
/// the fit returns once the last one is complete. A stop request ends the
/// fit after the current iteration with [`crate::Error::Interrupted`].
pub fn lbfgs_run(
    params: &mut [f32],
    f: impl FnMut(&[f32], &mut [f32]) -> f64,
    cfg: &crate::optim::lbfgs::LbfgsConfig,
    obs: &mut dyn super::Observer,
    mut ck: super::Checkpointing<'_>,
) -> crate::Result<crate::optim::lbfgs::LbfgsReport> {
    use super::{EpochMetrics, State};
    use crate::optim::lbfgs::{minimize_from, Memory, Stop};
    let n = params.len();
    let mut start = std::time::Instant::now();
    let mut history: Vec<EpochMetrics> = Vec::new();
    let from = match ck.resume.take() {
        None => None,
        Some(s) => {
            params.copy_from_slice(s.tensor("params", n)?);
            history = s.get("fit.history")?;
            let wall: f64 = s.get("fit.wall")?;
            start = std::time::Instant::now()
                .checked_sub(std::time::Duration::from_secs_f64(wall))
                .unwrap_or(start);
            let pairs: usize = s.get("lbfgs.pairs")?;
            let mut mem = Memory {
                iter: s.get("lbfgs.iter")?,
                evals: s.get("lbfgs.evals")?,
                cost: s.get("lbfgs.cost")?,
                g: s.tensor("lbfgs.g", n)?.to_vec(),
                s: Vec::new(),
                y: Vec::new(),
                rho: s.get("lbfgs.rho")?,
                stop: s.get("lbfgs.stop")?,
            };
            for i in 0..pairs {
                mem.s.push(s.tensor(&format!("lbfgs.s.{i}"), n)?.to_vec());
                mem.y.push(s.tensor(&format!("lbfgs.y.{i}"), n)?.to_vec());
            }
            obs.on_resume(&history);
            Some(mem)
        }
    };
    obs.on_start(cfg.max_iter, 1);
    let mut failed = None;
    let mut saver = ck.save.take();
    let report = std::thread::scope(|scope| {
        // The checkpoint being written, on a thread of its own, and when
        // the last write began and how long it took, once known.
        let mut pending: Option<std::thread::ScopedJoinHandle<'_, Written<'_>>> = None;
        let mut last: Option<(std::time::Instant, Option<std::time::Duration>)> = None;
        let report = minimize_from(params, f, cfg, from, &mut |it, mem, x| {
            let m = EpochMetrics::iteration(it, start.elapsed().as_secs_f64());
            obs.on_epoch(&m);
            history.push(m);
            let halting = super::checkpoint::stop_requested();
            if pending.as_ref().is_some_and(|h| h.is_finished()) {
                if let Err(e) = finish(&mut pending, &mut saver, &mut last) {
                    failed = Some(e);
                    return false;
                }
            }
            let due = match last {
                None => true,
                Some((at, Some(took))) => halting || at.elapsed() >= took * SAVE_RATIO,
                Some((_, None)) => halting,
            };
            if !due || (saver.is_none() && pending.is_none()) {
                return !halting;
            }
            // One write at a time, in order.
            if let Err(e) = finish(&mut pending, &mut saver, &mut last) {
                failed = Some(e);
                return false;
            }
            let save = saver.take().expect("the writer is back");
            let began = std::time::Instant::now();
            let mut s = State::new();
            s.put_tensor("params", x);
            s.put("fit.history", &history);
            s.put("fit.wall", &start.elapsed().as_secs_f64());
            s.put("lbfgs.iter", &mem.iter);
            s.put("lbfgs.evals", &mem.evals);
            s.put("lbfgs.cost", &mem.cost);
            s.put("lbfgs.rho", &mem.rho);
            s.put("lbfgs.stop", &mem.stop);
            s.put("lbfgs.pairs", &mem.s.len());
            s.put_tensor("lbfgs.g", &mem.g);
            for (i, (a, b)) in mem.s.iter().zip(&mem.y).enumerate() {
                s.put_tensor(&format!("lbfgs.s.{i}"), a);
                s.put_tensor(&format!("lbfgs.y.{i}"), b);
            }
            last = Some((began, None));
            pending = Some(scope.spawn(move || {
                let r = save(s, &m);
                (save, r, began.elapsed())
            }));
            !halting
        });
        // The last write is complete before the fit returns.
        if let Err(e) = finish(&mut pending, &mut saver, &mut last) {
            failed.get_or_insert(e);
        }
        report
    });
    obs.on_end();
    if let Some(e) = failed {
        return Err(e);
    }
    if report.stop == Stop::Halted {
        return Err(super::checkpoint::interrupted(report.iterations));
    }
    Ok(report)
}

/// An optimizer that steps from a gradient.
pub trait Step {
    fn step(&mut self, params: &mut [f32], grad: &[f32]);

    /// For a caller that takes the step itself: SGD with momentum gives
    /// its velocity buffer (sized for `len` parameters), β and μ, see
    /// [`Sgd::velocity_for`]; the caller sets buffer ← β·buffer − η·g, then
    /// θ ← θ + buffer and buffer ← μ·buffer. `None` for every other rule.
    fn velocity(&mut self, len: usize) -> Option<(&mut [f32], f32, f32, f32)> {
        let _ = len;
        None
    }

    /// η when the step is plain SGD (no momentum): a caller may then take
    /// it itself, θ ← θ − η·g. `None` for every other rule.
    fn plain_lr(&self) -> Option<f32> {
        None
    }
}

impl Step for Sgd {
    fn step(&mut self, params: &mut [f32], grad: &[f32]) {
        Sgd::step(self, params, grad)
    }

    fn velocity(&mut self, len: usize) -> Option<(&mut [f32], f32, f32, f32)> {
        Sgd::velocity_for(self, len)
    }

    fn plain_lr(&self) -> Option<f32> {
        (self.momentum == 0.0).then_some(self.lr)
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
            super::Optimizer::Sgd | super::Optimizer::Lbfgs | super::Optimizer::Ga | super::Optimizer::Es => {
                StepRule::Sgd(Sgd::new(cfg.lr, cfg.momentum))
            }
        }
    }

    /// The optimizer's state (velocity, or Adam's moments and step count,
    /// and the step size, which a decay may have changed) into `s`.
    pub fn save_state(&self, s: &mut super::State) {
        match self {
            StepRule::Sgd(g) => {
                s.put("lr", &g.lr);
                s.put_tensor("velocity", g.velocity());
                s.put("velocity_premultiplied", &g.premultiplied());
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
                // Absent from checkpoints written before it existed.
                g.set_premultiplied(s.get("velocity_premultiplied").unwrap_or(None));
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

    /// The step size now.
    pub fn lr(&self) -> f32 {
        match self {
            StepRule::Sgd(s) => s.lr,
            StepRule::Adam(a) => a.config.lr,
        }
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

    fn velocity(&mut self, len: usize) -> Option<(&mut [f32], f32, f32, f32)> {
        match self {
            StepRule::Sgd(s) => s.velocity_for(len),
            StepRule::Adam(_) => None,
        }
    }

    fn plain_lr(&self) -> Option<f32> {
        match self {
            StepRule::Sgd(s) => Step::plain_lr(s),
            StepRule::Adam(_) => None,
        }
    }
}

/// Checks an objective's [`Objective::loss_grad_finished`] against the
/// plain route (a cleared buffer, [`Objective::loss_grad_sum`] over every
/// row, [`Objective::finish`], then [`Sgd::step`](crate::optim::Sgd)): the
/// gradient written over a buffer of garbage, and written into SGD's
/// velocity. `case` names the objective in a failure.
#[cfg(test)]
pub(crate) fn assert_finished_matches_plain<O: Objective>(o: &O, p: &[f32], case: &str) {
    use crate::tensor::rng::seeded;
    use rand::Rng as _;
    let n = o.n_examples();
    let mut b = o.new_batch(n);
    o.load(&(0..n).collect::<Vec<_>>(), &mut b, &mut seeded(1));
    let mut ws = o.new_workspace(n);
    let mut want = vec![0.0f32; o.n_params()];
    let sum = o.loss_grad_sum(p, Some(&mut want), &b, 0..n, &mut ws, Par::Seq);
    let f_want = o.finish(p, &mut want, sum, n);
    // Garbage in the buffer: the one call must overwrite all of it.
    let mut got = vec![7.0f32; o.n_params()];
    let over = GradWrite {
        alpha: 1.0,
        beta: None,
    };
    let f_got = o
        .loss_grad_finished(p, (&mut got, over), &b, n, &mut ws, Par::Seq)
        .expect("offered");
    assert_eq!(f_got.loss, f_want.loss, "{case}");
    assert!((f_got.objective - f_want.objective).abs() <= 1e-6 * f_want.objective.abs());
    let scale = want.iter().fold(0.0f32, |m, v| m.max(v.abs()));
    for (i, (g, w)) in got.iter().zip(&want).enumerate() {
        assert!((g - w).abs() <= 1e-5 * scale, "{case} entry {i}: {g} against {w}");
    }
    // Written into SGD's velocity: v ← μ·v − η·g, then θ ← θ + v, against
    // the optimizer's own step from the gradient above.
    let (lr, mu) = (0.1f32, 0.9f32);
    let mut rng = seeded(2);
    let v0: Vec<f32> = (0..o.n_params()).map(|_| rng.random_range(-0.01..0.01)).collect();
    let mut sgd = Sgd::new(lr, mu);
    sgd.set_velocity(&v0);
    let mut p_want = p.to_vec();
    sgd.step(&mut p_want, &want);
    let mut v = v0.clone();
    let write = GradWrite {
        alpha: -lr,
        beta: Some(mu),
    };
    o.loss_grad_finished(p, (&mut v, write), &b, n, &mut ws, Par::Seq)
        .expect("offered");
    for (i, ((v, vw), (q, qw))) in v
        .iter()
        .zip(sgd.velocity())
        .zip(p.iter().zip(&p_want))
        .enumerate()
    {
        assert!(
            (v - vw).abs() <= 1e-5 * lr * scale,
            "{case} velocity {i}: {v} against {vw}"
        );
        assert!(
            (q + v - qw).abs() <= 1e-5 * lr * scale + 1e-7,
            "{case} parameter {i}: {} against {qw}",
            q + v
        );
    }
    // The step taken inside the backward pass: the same parameters, and the
    // velocity left premultiplied by μ; the same bits on one and on three
    // threads.
    if o.offers_step() {
        let w = StepWrite {
            write: GradWrite {
                alpha: -lr,
                beta: Some(mu),
            },
            mu,
        };
        let mut first: Option<(Vec<f32>, Vec<f32>)> = None;
        for par in [Par::Seq, Par::Threads(3)] {
            let (mut q, mut v) = (p.to_vec(), v0.clone());
            let f = o
                .loss_grad_step(&mut q, &mut v, w, &b, n, &mut ws, par)
                .expect("offered");
            assert_eq!(f.loss, f_want.loss, "{case}");
            for (i, ((q, qw), (v, vw))) in q
                .iter()
                .zip(&p_want)
                .zip(v.iter().zip(sgd.velocity()))
                .enumerate()
            {
                assert!(
                    (q - qw).abs() <= 1e-5 * lr * scale + 1e-7,
                    "{case} stepped parameter {i}: {q} against {qw}"
                );
                assert!(
                    (v - mu * vw).abs() <= 1e-5 * lr * scale,
                    "{case} premultiplied velocity {i}: {v} against {}",
                    mu * vw
                );
            }
            match &first {
                None => first = Some((q, v)),
                Some(f) => assert!(f.0 == q && f.1 == v, "{case}: the thread count changed the step"),
            }
        }
    } else {
        let (mut q, mut v) = (p.to_vec(), v0.clone());
        let w = StepWrite {
            write: GradWrite {
                alpha: -lr,
                beta: Some(mu),
            },
            mu,
        };
        assert!(o
            .loss_grad_step(&mut q, &mut v, w, &b, n, &mut ws, Par::Seq)
            .is_none());
        assert!(q == p && v == v0, "{case}: a step not offered touched nothing");
    }
    // Plain SGD's step taken in place, against the optimizer's own step
    // along the gradient above; the same bits on one and on three threads.
    let mut p_want = p.to_vec();
    Sgd::new(lr, 0.0).step(&mut p_want, &want);
    let mut first: Option<Vec<f32>> = None;
    for par in [Par::Seq, Par::Threads(3)] {
        let mut q = p.to_vec();
        let Some(f) = o.loss_grad_sgd_step(&mut q, lr, &b, n, &mut ws, par) else {
            assert!(!o.offers_sgd_step(), "{case}: the SGD step offered but not taken");
            assert!(q == p, "{case}: an SGD step not offered touched nothing");
            return;
        };
        assert!(o.offers_sgd_step(), "{case}: an SGD step taken but not offered");
        assert_eq!(f.loss, f_want.loss, "{case}");
        assert!((f.objective - f_want.objective).abs() <= 1e-6 * f_want.objective.abs());
        for (i, (q, qw)) in q.iter().zip(&p_want).enumerate() {
            assert!(
                (q - qw).abs() <= 1e-5 * lr * scale + 1e-7,
                "{case} SGD-stepped parameter {i}: {q} against {qw}"
            );
        }
        match &first {
            None => first = Some(q),
            Some(f) => assert!(*f == q, "{case}: the thread count changed the SGD step"),
        }
    }
}

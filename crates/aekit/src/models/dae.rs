//! The denoising autoencoder (Vincent et al. 2008; Theano `dA.py`).
//!
//! Forward, for a batch of corrupted inputs x̃ `[batch, n_vis]`:
//!   h = f(x̃·W + b)            W `[n_vis, n_hid]`, b `[n_hid]`
//!   a = h·Wᵀ + b′  (tied)  or  h·W′ + b′ (untied, W′ `[n_hid, n_vis]`)
//!   z = g(a)
//! Loss against the clean x: ½·Σ(x−z)² or −Σ[x ln z + (1−x) ln(1−z)] (from a).
//! Objective per batch: mean loss + ½·λ·(‖W‖² + ‖W′‖²).
//! Backward: δa = (z−x)·g′(a) (squared) or σ(a)−x (cross-entropy);
//!   δh = δa·W (tied) or δa·W′ᵀ, then ·f′; dW += x̃ᵀ·δh (+ δaᵀ·h when tied);
//!   dW′ += hᵀ·δa; db += Σ δh; db′ += Σ δa; weights add λ·W.
//!
//! Parameters live in one flat vector `[W | b | b′ | W′]`, so every optimizer
//! works on one slice.

use crate::error::{Error, Result};
use crate::io::safetensors::{self as st, NamedTensor};
use crate::layers::activation::Activation;
use crate::layers::dense::{dense_backward, dense_forward};
use crate::layers::loss::{self, Loss};
use crate::layers::Corruption;
use crate::per_example::{self, lockstep_workers, Plan, TiedParams, TiedParamsMut, TiedShape};
use crate::tensor::gemm::Par;
use crate::tensor::rng::{seeded, Rng};
use crate::tensor::Real;
use crate::train::{
    fit_loop, lbfgs_fit, EpochMetrics, Finished, Fit, FitReport, Minibatches, Objective, Observer, Optimizer,
    ParallelMode, Shuffle, StepRule, TrainConfig,
};
use ndarray::{Array2, ArrayView2};
use rand::Rng as _;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::ops::Range;
use std::path::Path;
use std::time::Instant;

/// A denoising autoencoder's shape and units.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DaeConfig {
    /// Visible units; 0 means "from the data" (set by `fit`).
    pub n_vis: usize,
    /// Hidden units.
    pub n_hid: usize,
    /// Decode with Wᵀ (true) or a separate W′.
    pub tied: bool,
    /// Hidden non-linearity f.
    pub hidden_activation: Activation,
    /// Output non-linearity g (cross-entropy needs sigmoid).
    pub output_activation: Activation,
    /// Reconstruction loss: `squared` or `xent`.
    pub loss: Loss,
    /// Input corruption during training: `none`, `mask:P`, `gauss:S`, `saltpepper:P`.
    pub noise: Corruption,
    /// Half-width r of the U(−r, r) initialisation of the weights; 0 picks
    /// 4·√(6/(n_vis+n_hid)) for sigmoid hidden units and √(6/(n_vis+n_hid))
    /// otherwise (Glorot & Bengio 2010). Biases start at 0.
    pub init_scale: f32,
}

impl Default for DaeConfig {
    fn default() -> Self {
        DaeConfig {
            n_vis: 0,
            n_hid: 500,
            tied: true,
            hidden_activation: Activation::Sigmoid,
            output_activation: Activation::Sigmoid,
            loss: Loss::CrossEntropy,
            noise: Corruption::Mask(0.25),
            init_scale: 0.0,
        }
    }
}

impl DaeConfig {
    pub fn validate(&self) -> Result<()> {
        if self.n_hid == 0 {
            return Err(Error::config("model.n_hid", "hidden units must be at least 1"));
        }
        if self.loss == Loss::CrossEntropy && self.output_activation != Activation::Sigmoid {
            return Err(Error::config(
                "model.loss",
                "cross-entropy needs a sigmoid output; use loss = \"squared\" for other outputs",
            ));
        }
        if !(self.init_scale.is_finite() && self.init_scale >= 0.0) {
            return Err(Error::config("model.init_scale", "must be ≥ 0 (0 = automatic)"));
        }
        self.noise.validate("model.noise")
    }

    /// The initialisation half-width in force.
    pub fn init_range(&self) -> f32 {
        if self.init_scale > 0.0 {
            return self.init_scale;
        }
        let r = (6.0 / (self.n_vis + self.n_hid) as f32).sqrt();
        if self.hidden_activation == Activation::Sigmoid {
            4.0 * r
        } else {
            r
        }
    }
}

/// Where each parameter lives in the flat vector.
#[derive(Debug, Clone, PartialEq)]
pub struct Layout {
    pub w: Range<usize>,
    pub b_hid: Range<usize>,
    pub b_vis: Range<usize>,
    pub w_dec: Option<Range<usize>>,
    pub len: usize,
}

impl Layout {
    pub fn new(cfg: &DaeConfig) -> Layout {
        let (v, h) = (cfg.n_vis, cfg.n_hid);
        let w = 0..v * h;
        let b_hid = w.end..w.end + h;
        let b_vis = b_hid.end..b_hid.end + v;
        let w_dec = (!cfg.tied).then(|| b_vis.end..b_vis.end + h * v);
        let len = w_dec.as_ref().map_or(b_vis.end, |r| r.end);
        Layout {
            w,
            b_hid,
            b_vis,
            w_dec,
            len,
        }
    }

    /// W, b and b′ of a tied model's flat vector, for the fused kernel.
    pub fn tied<'a>(&self, p: &'a [f32]) -> TiedParams<'a> {
        TiedParams {
            w: &p[self.w.clone()],
            b: &p[self.b_hid.clone()],
            c: &p[self.b_vis.clone()],
        }
    }

    /// [`Layout::tied`], to write into.
    pub fn tied_mut<'a>(&self, p: &'a mut [f32]) -> TiedParamsMut<'a> {
        let (w, rest) = p.split_at_mut(self.b_hid.start);
        let (b, rest) = rest.split_at_mut(self.b_hid.len());
        TiedParamsMut {
            w: &mut w[self.w.clone()],
            b,
            c: &mut rest[..self.b_vis.len()],
        }
    }

    /// Ranges that weight decay applies to.
    pub fn weight_ranges(&self) -> Vec<Range<usize>> {
        std::iter::once(self.w.clone())
            .chain(self.w_dec.clone())
            .collect()
    }
}

/// Activations of one batch, allocated once per batch size.
#[derive(Debug, Clone, Default)]
pub struct Workspace<T> {
    /// `[batch, n_hid]` hidden units, then δh.
    h: Vec<T>,
    dh: Vec<T>,
    /// `[batch, n_vis]` output pre-activations, outputs, δa.
    a: Vec<T>,
    z: Vec<T>,
    da: Vec<T>,
}

impl<T: Real> Workspace<T> {
    pub fn new(cfg: &DaeConfig, batch: usize) -> Self {
        let z = T::ZERO;
        Workspace {
            h: vec![z; batch * cfg.n_hid],
            dh: vec![z; batch * cfg.n_hid],
            a: vec![z; batch * cfg.n_vis],
            z: vec![z; batch * cfg.n_vis],
            da: vec![z; batch * cfg.n_vis],
        }
    }

    fn fit(&mut self, cfg: &DaeConfig, batch: usize) {
        if self.h.len() < batch * cfg.n_hid || self.a.len() < batch * cfg.n_vis {
            *self = Workspace::new(cfg, batch);
        }
    }
}

/// Encodes `input` into `h` (`[batch, n_hid]`).
fn encode<T: Real>(cfg: &DaeConfig, lay: &Layout, p: &[T], h: &mut [T], input: &[T], batch: usize, par: Par) {
    dense_forward(
        h,
        input,
        &p[lay.w.clone()],
        &p[lay.b_hid.clone()],
        batch,
        cfg.n_vis,
        cfg.n_hid,
        false,
        par,
    );
    cfg.hidden_activation.forward(h);
}

/// Decoder pre-activation `a` (`[batch, n_vis]`) from `h`.
fn decode_pre<T: Real>(cfg: &DaeConfig, lay: &Layout, p: &[T], a: &mut [T], h: &[T], batch: usize, par: Par) {
    let (w, trans) = match &lay.w_dec {
        None => (&p[lay.w.clone()], true),
        Some(r) => (&p[r.clone()], false),
    };
    dense_forward(
        a,
        h,
        w,
        &p[lay.b_vis.clone()],
        batch,
        cfg.n_hid,
        cfg.n_vis,
        trans,
        par,
    );
}

/// Sum over the batch of the loss of reconstructing `target` from `input`.
/// When `grad` is given, adds the gradient of that sum into it.
pub fn batch_loss_grad<T: Real>(
    cfg: &DaeConfig,
    lay: &Layout,
    p: &[T],
    grad: Option<&mut [T]>,
    input: &[T],
    target: &[T],
    batch: usize,
    ws: &mut Workspace<T>,
    par: Par,
) -> T {
    ws.fit(cfg, batch);
    let (nv, nh) = (cfg.n_vis, cfg.n_hid);
    let h = &mut ws.h[..batch * nh];
    let a = &mut ws.a[..batch * nv];
    let da = &mut ws.da[..batch * nv];
    encode(cfg, lay, p, h, input, batch, par);
    decode_pre(cfg, lay, p, a, h, batch, par);
    let with_grad = grad.is_some();
    let l = match cfg.loss {
        Loss::CrossEntropy => {
            if with_grad {
                loss::xent_backward(da, a, target);
            }
            loss::xent_forward(a, target)
        }
        Loss::Squared => {
            let z = &mut ws.z[..batch * nv];
            z.copy_from_slice(a);
            cfg.output_activation.forward(z);
            if with_grad {
                loss::squared_backward(da, z, target);
                cfg.output_activation.backward(da, z);
            }
            loss::squared_forward(z, target)
        }
    };
    let Some(grad) = grad else { return l };
    let (gw, rest) = grad.split_at_mut(lay.b_hid.start);
    let (gb_hid, rest) = rest.split_at_mut(nh);
    let (gb_vis, gw_dec) = rest.split_at_mut(nv);
    let dh = &mut ws.dh[..batch * nh];
    match &lay.w_dec {
        None => dense_backward(
            Some(dh),
            gw,
            gb_vis,
            da,
            h,
            &p[lay.w.clone()],
            batch,
            nh,
            nv,
            true,
            par,
        ),
        Some(r) => dense_backward(
            Some(dh),
            gw_dec,
            gb_vis,
            da,
            h,
            &p[r.clone()],
            batch,
            nh,
            nv,
            false,
            par,
        ),
    }
    cfg.hidden_activation.backward(dh, h);
    dense_backward(
        None,
        gw,
        gb_hid,
        dh,
        input,
        &p[lay.w.clone()],
        batch,
        nv,
        nh,
        false,
        par,
    );
    l
}

/// The training objective of one batch: mean loss + ½·λ·‖weights‖². Writes
/// its gradient into `grad` (overwriting); returns (mean loss, objective).
pub fn objective<T: Real>(
    cfg: &DaeConfig,
    lay: &Layout,
    p: &[T],
    grad: &mut [T],
    input: &[T],
    target: &[T],
    batch: usize,
    weight_decay: T,
    ws: &mut Workspace<T>,
    par: Par,
) -> (T, T) {
    grad.fill(T::ZERO);
    let loss_sum = batch_loss_grad(cfg, lay, p, Some(grad), input, target, batch, ws, par);
    finish_objective(lay, p, grad, loss_sum, batch, weight_decay)
}

/// Turns a summed loss and gradient over `batch` examples into the mean plus
/// weight decay (in place); returns (mean loss, objective).
pub fn finish_objective<T: Real>(
    lay: &Layout,
    p: &[T],
    grad: &mut [T],
    loss_sum: T,
    batch: usize,
    weight_decay: T,
) -> (T, T) {
    let inv = T::ONE / T::of(batch as f64);
    let mean_loss = loss_sum * inv;
    let mut obj = mean_loss;
    grad.iter_mut().for_each(|g| *g *= inv);
    if weight_decay > T::ZERO {
        for r in lay.weight_ranges() {
            let mut sq = T::ZERO;
            for (g, &w) in grad[r.clone()].iter_mut().zip(&p[r]) {
                *g += weight_decay * w;
                sq += w * w;
            }
            obj += T::of(0.5) * weight_decay * sq;
        }
    }
    (mean_loss, obj)
}

/// How one training epoch runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EpochPlan {
    /// Per-example SGD through the fused kernel (see [`crate::per_example`]).
    PerExample(Plan),
    /// Each minibatch split over this many threads.
    Minibatch(usize),
    /// The layer-by-layer path with this GEMM parallelism.
    Layers(Par),
}

/// Reconstruction quality on clean inputs, each a mean per example.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Metrics {
    /// The model's training loss (without weight decay).
    pub loss: f64,
    /// Σ(x − z)².
    pub squared_error: f64,
    /// −Σ[x ln z + (1−x) ln(1−z)] (from logits for a sigmoid output; outputs
    /// clamped to [1e-7, 1−1e-7] otherwise).
    pub cross_entropy: f64,
}

/// A denoising autoencoder with scikit-learn-like methods.
#[derive(Debug, Clone)]
pub struct DenoisingAutoencoder {
    pub config: DaeConfig,
    pub train: TrainConfig,
    layout: Layout,
    params: Vec<f32>,
    opt: StepRule,
    rng: Rng,
}

const EVAL_CHUNK: usize = 500;

impl DenoisingAutoencoder {
    /// A model with these hyperparameters; weights are drawn when `fit` first
    /// sees data (or now, if `config.n_vis` is set).
    pub fn new(config: DaeConfig, train: TrainConfig) -> DenoisingAutoencoder {
        let mut m = DenoisingAutoencoder {
            layout: Layout::new(&config),
            rng: seeded(train.seed),
            opt: StepRule::new(&train),
            config,
            train,
            params: Vec::new(),
        };
        if m.config.n_vis > 0 {
            m.initialise();
        }
        m
    }

    fn initialise(&mut self) {
        self.layout = Layout::new(&self.config);
        self.params = vec![0.0; self.layout.len];
        let r = self.config.init_range();
        let mut rng = seeded(self.train.seed ^ 0x1417_0001);
        for range in self.layout.weight_ranges() {
            for v in &mut self.params[range] {
                *v = rng.random_range(-r..r);
            }
        }
    }

    pub fn layout(&self) -> &Layout {
        &self.layout
    }

    /// The flat parameter vector `[W | b | b′ | W′]`.
    pub fn params(&self) -> &[f32] {
        &self.params
    }

    pub fn params_mut(&mut self) -> &mut [f32] {
        &mut self.params
    }

    /// W, `[n_vis, n_hid]`: column j is hidden unit j's filter.
    pub fn weights(&self) -> &[f32] {
        &self.params[self.layout.w.clone()]
    }

    fn par(&self) -> Par {
        Par::from_threads(self.train.resolved_threads())
    }

    fn check_input(&self, x: &ArrayView2<f32>, what: &str) -> Result<()> {
        if self.params.is_empty() {
            return Err(Error::config("model", "is not fitted yet"));
        }
        super::check_columns(what, self.config.n_vis, x.ncols())
    }

    /// What every way of training checks first: the settings, weights drawn
    /// (from the data's width) if there are none yet, and the data's shape.
    fn prepare_training(&mut self, x: &ArrayView2<f32>) -> Result<()> {
        self.config.validate()?;
        self.train.validate()?;
        if self.config.n_vis == 0 || self.params.is_empty() {
            self.config.n_vis = x.ncols();
            self.initialise();
        }
        self.check_input(x, "training data")
    }

    /// Trains from the current weights (drawn first if needed) for
    /// `train.epochs` epochs, with early stopping on `val` when given.
    pub fn fit(
        &mut self,
        x: ArrayView2<f32>,
        val: Option<ArrayView2<f32>>,
        obs: &mut dyn Observer,
    ) -> Result<FitReport> {
        self.prepare_training(&x)?;
        let plan = self.epoch_plan()?;
        if let Some(v) = &val {
            self.check_input(v, "validation data")?;
        }
        if x.nrows() == 0 {
            return Err(Error::config("train_size", "no training examples"));
        }
        self.rng = seeded(self.train.seed);
        self.opt = StepRule::new(&self.train);
        let xs = x.as_standard_layout();
        let vs = val.as_ref().map(|v| v.as_standard_layout());
        let x = xs.as_slice().expect("standard layout");
        let val = vs.as_ref().map(|v| v.as_slice().expect("standard layout"));
        let mut run = DaeFit {
            batches: self.minibatches(x, plan),
            model: self,
            x,
            val,
            plan,
        };
        obs.on_start(run.model.train.epochs, run.batches_per_epoch());
        let (epochs, patience) = (run.model.train.epochs, run.model.train.patience);
        fit_loop(&mut run, epochs, patience, obs, "train.lr")
    }

    /// Trains on the whole of `x` at once with L-BFGS. The corruption is drawn
    /// once (seeded) and kept, so the objective is deterministic; weight decay
    /// is part of it. Each iteration is reported as an "epoch" to `obs`.
    pub fn fit_lbfgs(
        &mut self,
        x: ArrayView2<f32>,
        lbfgs: &crate::optim::lbfgs::LbfgsConfig,
        obs: &mut dyn Observer,
    ) -> Result<crate::optim::lbfgs::LbfgsReport> {
        self.prepare_training(&x)?;
        if x.nrows() == 0 {
            return Err(Error::config("train_size", "no training examples"));
        }
        let xs = x.as_standard_layout();
        let par = self.par();
        let objective = DaeObjective::new(
            &self.config,
            &self.layout,
            xs.as_slice().expect("standard layout"),
            self.train.weight_decay,
        );
        let start = Instant::now();
        obs.on_start(lbfgs.max_iter, 1);
        let mut rng = seeded(self.train.seed);
        let report = lbfgs_fit(&objective, &mut self.params, lbfgs, &mut rng, par, &mut |it| {
            obs.on_epoch(&EpochMetrics {
                epoch: it.iter,
                train_loss: it.cost,
                val_loss: None,
                seconds: start.elapsed().as_secs_f64(),
                updates: it.iter as u64,
            });
        });
        obs.on_end();
        Ok(report)
    }

    /// One more epoch over `x` with the current weights, optimizer state and
    /// random stream; returns the mean training loss.
    pub fn partial_fit(&mut self, x: ArrayView2<f32>) -> Result<f64> {
        self.prepare_training(&x)?;
        let plan = self.epoch_plan()?;
        let xs = x.as_standard_layout();
        let x = xs.as_slice().expect("standard layout");
        let mut batches = self.minibatches(x, plan);
        Ok(self.run_epoch(x, plan, &mut batches, &mut crate::train::Silent).0)
    }

    /// Whether per-example epochs can run the fused kernel: batch 1, plain
    /// SGD (no momentum), a tied sigmoid autoencoder.
    pub fn uses_fused_kernel(&self) -> bool {
        self.train.batch == 1
            && self.train.optimizer == Optimizer::Sgd
            && self.train.momentum == 0.0
            && self.tied_shape().is_some()
    }

    /// The fused kernel's view of this model, if it is a tied sigmoid
    /// autoencoder.
    pub fn tied_shape(&self) -> Option<TiedShape> {
        let c = &self.config;
        (c.tied && c.hidden_activation == Activation::Sigmoid && c.output_activation == Activation::Sigmoid)
            .then_some(TiedShape {
                n_vis: c.n_vis,
                n_hid: c.n_hid,
                loss: c.loss,
            })
    }

    /// How an epoch will run, given the batch, model and `train.parallel`.
    /// Lock-step modes run at most one worker per core.
    pub fn epoch_plan(&self) -> Result<EpochPlan> {
        if self.train.optimizer == Optimizer::Lbfgs {
            return Err(Error::config(
                "train.optimizer",
                "lbfgs trains the whole batch at once: use fit_lbfgs",
            ));
        }
        let threads = self.train.resolved_threads();
        let fused = self.uses_fused_kernel();
        let need_fused = |mode: &str| {
            Error::config(
                "train.parallel",
                format!("`{mode}` needs per-example SGD on a tied sigmoid autoencoder: batch 1, momentum 0"),
            )
        };
        let lockstep = lockstep_workers(threads);
        Ok(match self.train.parallel {
            _ if threads == 1 && self.train.parallel != ParallelMode::Hogwild => {
                if fused {
                    EpochPlan::PerExample(Plan::Fused)
                } else {
                    EpochPlan::Layers(Par::Seq)
                }
            }
            ParallelMode::Auto if fused => EpochPlan::PerExample(Plan::Rows(lockstep)),
            ParallelMode::Balanced if fused => EpochPlan::PerExample(Plan::Balanced(lockstep)),
            ParallelMode::Balanced => return Err(need_fused("balanced")),
            ParallelMode::Auto | ParallelMode::Gemm => EpochPlan::Layers(Par::from_threads(threads)),
            ParallelMode::Split if fused => EpochPlan::PerExample(Plan::Split(lockstep)),
            ParallelMode::Split => return Err(need_fused("split")),
            ParallelMode::Rows if fused => EpochPlan::PerExample(Plan::Rows(lockstep)),
            ParallelMode::Rows => return Err(need_fused("rows")),
            ParallelMode::Hogwild if fused => EpochPlan::PerExample(Plan::Hogwild(threads)),
            ParallelMode::Hogwild => return Err(need_fused("hogwild")),
            ParallelMode::Minibatch if self.train.batch >= 2 => {
                EpochPlan::Minibatch(threads.min(self.train.batch))
            }
            ParallelMode::Minibatch => {
                return Err(Error::config(
                    "train.parallel",
                    "`minibatch` splits each batch: use --batch 2 or more",
                ))
            }
        })
    }

    /// The minibatch state for an epoch plan (`None` for per-example plans).
    fn minibatches(&self, x: &[f32], plan: EpochPlan) -> Option<DaeBatches> {
        let o = DaeObjective::new(&self.config, &self.layout, x, self.train.weight_decay);
        match plan {
            EpochPlan::PerExample(_) => None,
            EpochPlan::Minibatch(t) => Some(Minibatches::new(
                &o,
                self.train.batch,
                t,
                Par::Seq,
                Shuffle::Fresh,
            )),
            EpochPlan::Layers(par) => Some(Minibatches::new(&o, self.train.batch, 1, par, Shuffle::Fresh)),
        }
    }

    /// One shuffled epoch by `plan`; (mean loss, updates).
    fn run_epoch(
        &mut self,
        x: &[f32],
        plan: EpochPlan,
        batches: &mut Option<DaeBatches>,
        obs: &mut dyn Observer,
    ) -> (f64, u64) {
        let n = x.len() / self.config.n_vis;
        match (plan, batches) {
            (EpochPlan::PerExample(plan), _) => {
                let job = per_example::Job {
                    shape: self.tied_shape().expect("checked by epoch_plan"),
                    lr: self.train.lr,
                    weight_decay: self.train.weight_decay,
                    noise: self.config.noise,
                };
                let params = self.layout.tied_mut(&mut self.params);
                let loss = per_example::run_epoch(&job, plan, params, x, &mut self.rng, obs);
                (loss, n as u64)
            }
            (_, Some(b)) => {
                let o = DaeObjective::new(&self.config, &self.layout, x, self.train.weight_decay);
                b.run_epoch(&o, &mut self.params, &mut self.opt, &mut self.rng, obs)
            }
            (_, None) => unreachable!("minibatch plans carry their batches"),
        }
    }

    fn eval_slice(&self, x: &[f32], n: usize) -> Metrics {
        let nv = self.config.n_vis;
        let mut ws = Workspace::<f32>::new(&self.config, EVAL_CHUNK.min(n.max(1)));
        let (mut loss_sum, mut se, mut ce) = (0.0f64, 0.0f64, 0.0f64);
        let par = self.par();
        for start in (0..n).step_by(EVAL_CHUNK) {
            let b = EVAL_CHUNK.min(n - start);
            let xb = &x[start * nv..(start + b) * nv];
            loss_sum += batch_loss_grad(
                &self.config,
                &self.layout,
                &self.params,
                None,
                xb,
                xb,
                b,
                &mut ws,
                par,
            ) as f64;
            let a = &ws.a[..b * nv];
            let z = &mut ws.z[..b * nv];
            z.copy_from_slice(a);
            self.config.output_activation.forward(z);
            se += 2.0 * loss::squared_forward(z, xb) as f64;
            ce += if self.config.output_activation == Activation::Sigmoid {
                loss::xent_forward(a, xb) as f64
            } else {
                loss::xent_from_outputs(z, xb) as f64
            };
        }
        let k = n.max(1) as f64;
        Metrics {
            loss: loss_sum / k,
            squared_error: se / k,
            cross_entropy: ce / k,
        }
    }

    /// Reconstruction metrics on clean `x`, each a mean per example.
    pub fn evaluate(&self, x: ArrayView2<f32>) -> Result<Metrics> {
        self.check_input(&x, "evaluation data")?;
        let xs = x.as_standard_layout();
        Ok(self.eval_slice(xs.as_slice().expect("standard layout"), xs.nrows()))
    }

    /// Mean training loss per example on clean `x` (lower is better; unlike
    /// scikit-learn's higher-is-better `score`, aekit reports the loss itself).
    pub fn score(&self, x: ArrayView2<f32>) -> Result<f64> {
        Ok(self.evaluate(x)?.loss)
    }

    /// The hidden code h = f(x·W + b), `[n, n_hid]`.
    pub fn transform(&self, x: ArrayView2<f32>) -> Result<Array2<f32>> {
        self.check_input(&x, "input to transform")?;
        let xs = x.as_standard_layout();
        let n = xs.nrows();
        let mut h = vec![0.0f32; n * self.config.n_hid];
        encode(
            &self.config,
            &self.layout,
            &self.params,
            &mut h,
            xs.as_slice().expect("standard layout"),
            n,
            self.par(),
        );
        Ok(Array2::from_shape_vec((n, self.config.n_hid), h).expect("shape"))
    }

    /// The reconstruction z = g(h·Wᵀ + b′) of codes h, `[n, n_vis]`.
    pub fn inverse_transform(&self, h: ArrayView2<f32>) -> Result<Array2<f32>> {
        super::check_columns("codes", self.config.n_hid, h.ncols())?;
        let hs = h.as_standard_layout();
        let n = hs.nrows();
        let mut z = vec![0.0f32; n * self.config.n_vis];
        decode_pre(
            &self.config,
            &self.layout,
            &self.params,
            &mut z,
            hs.as_slice().expect("standard layout"),
            n,
            self.par(),
        );
        self.config.output_activation.forward(&mut z);
        Ok(Array2::from_shape_vec((n, self.config.n_vis), z).expect("shape"))
    }

    /// inverse_transform(transform(x)).
    pub fn reconstruct(&self, x: ArrayView2<f32>) -> Result<Array2<f32>> {
        self.inverse_transform(self.transform(x)?.view())
    }

    /// Corrupts `x` with the model's noise, seeded.
    pub fn corrupt(&self, x: ArrayView2<f32>, seed: u64) -> Array2<f32> {
        let mut out = x.to_owned();
        let src = x.as_standard_layout().to_owned();
        self.config.noise.apply(
            out.as_slice_mut().expect("owned"),
            src.as_slice().expect("owned"),
            &mut seeded(seed),
        );
        out
    }

    /// Saves weights and configuration as safetensors: `encoder.weight`
    /// `[n_vis, n_hid]` (h = f(x·W + b)), `encoder.bias`, `decoder.bias`, and
    /// for untied models `decoder.weight` `[n_hid, n_vis]`.
    pub fn save(&self, path: &Path) -> Result<()> {
        let (v, h) = (self.config.n_vis, self.config.n_hid);
        let p = &self.params;
        let l = &self.layout;
        let mut t = vec![
            NamedTensor {
                name: "encoder.weight",
                shape: vec![v, h],
                data: &p[l.w.clone()],
            },
            NamedTensor {
                name: "encoder.bias",
                shape: vec![h],
                data: &p[l.b_hid.clone()],
            },
            NamedTensor {
                name: "decoder.bias",
                shape: vec![v],
                data: &p[l.b_vis.clone()],
            },
        ];
        if let Some(r) = &l.w_dec {
            t.push(NamedTensor {
                name: "decoder.weight",
                shape: vec![h, v],
                data: &p[r.clone()],
            });
        }
        let mut meta = HashMap::new();
        meta.insert("format".into(), "aekit.dae".into());
        meta.insert("aekit_version".into(), env!("CARGO_PKG_VERSION").into());
        meta.insert(
            "config".into(),
            toml::to_string(&self.config).expect("config serialises"),
        );
        meta.insert(
            "train".into(),
            toml::to_string(&self.train).expect("config serialises"),
        );
        st::save(path, &t, meta)
    }

    /// Loads a model saved by [`save`](Self::save).
    pub fn load(path: &Path) -> Result<DenoisingAutoencoder> {
        let mut f = st::load(path)?;
        let fmt = f.meta("format")?;
        if fmt != "aekit.dae" {
            return Err(Error::format(
                path,
                format!("holds a `{fmt}` model, not a denoising autoencoder"),
            ));
        }
        let config: DaeConfig = toml::from_str(f.meta("config")?)
            .map_err(|e| Error::format(path, format!("bad model config in metadata: {e}")))?;
        let train: TrainConfig = toml::from_str(f.meta("train")?)
            .map_err(|e| Error::format(path, format!("bad training config in metadata: {e}")))?;
        config
            .validate()
            .map_err(|e| Error::format(path, e.to_string()))?;
        if config.n_vis == 0 {
            return Err(Error::format(path, "model config has n_vis = 0"));
        }
        let mut m = DenoisingAutoencoder::new(config, train);
        let (v, h) = (m.config.n_vis, m.config.n_hid);
        let l = m.layout.clone();
        m.params[l.w.clone()].copy_from_slice(&f.take("encoder.weight", &[v, h])?);
        m.params[l.b_hid.clone()].copy_from_slice(&f.take("encoder.bias", &[h])?);
        m.params[l.b_vis.clone()].copy_from_slice(&f.take("decoder.bias", &[v])?);
        if let Some(r) = &l.w_dec {
            m.params[r.clone()].copy_from_slice(&f.take("decoder.weight", &[h, v])?);
        }
        Ok(m)
    }
}

/// The DAE's training objective on the rows of `x`: mean loss plus
/// ½·λ·‖weights‖², each batch corrupted as it is loaded.
pub struct DaeObjective<'a> {
    cfg: &'a DaeConfig,
    lay: &'a Layout,
    x: &'a [f32],
    weight_decay: f32,
}

impl<'a> DaeObjective<'a> {
    pub fn new(cfg: &'a DaeConfig, lay: &'a Layout, x: &'a [f32], weight_decay: f32) -> DaeObjective<'a> {
        DaeObjective {
            cfg,
            lay,
            x,
            weight_decay,
        }
    }
}

/// A loaded batch: clean targets and corrupted inputs, `[batch, n_vis]`.
pub struct DaeBatch {
    clean: Vec<f32>,
    noisy: Vec<f32>,
}

impl Objective for DaeObjective<'_> {
    type Batch = DaeBatch;
    type Workspace = Workspace<f32>;

    fn n_params(&self) -> usize {
        self.lay.len
    }

    fn n_examples(&self) -> usize {
        self.x.len() / self.cfg.n_vis
    }

    fn new_batch(&self, cap: usize) -> DaeBatch {
        DaeBatch {
            clean: Vec::with_capacity(cap * self.cfg.n_vis),
            noisy: Vec::with_capacity(cap * self.cfg.n_vis),
        }
    }

    fn new_workspace(&self, rows: usize) -> Workspace<f32> {
        Workspace::new(self.cfg, rows)
    }

    fn load(&self, idx: &[usize], b: &mut DaeBatch, rng: &mut Rng) {
        let nv = self.cfg.n_vis;
        b.clean.clear();
        for &i in idx {
            b.clean.extend_from_slice(&self.x[i * nv..(i + 1) * nv]);
        }
        b.noisy.resize(b.clean.len(), 0.0);
        self.cfg.noise.apply(&mut b.noisy, &b.clean, rng);
    }

    fn loss_grad_sum(
        &self,
        p: &[f32],
        grad: Option<&mut [f32]>,
        b: &DaeBatch,
        rows: Range<usize>,
        ws: &mut Workspace<f32>,
        par: Par,
    ) -> f64 {
        let nv = self.cfg.n_vis;
        let (lo, hi) = (rows.start * nv, rows.end * nv);
        batch_loss_grad(
            self.cfg,
            self.lay,
            p,
            grad,
            &b.noisy[lo..hi],
            &b.clean[lo..hi],
            rows.len(),
            ws,
            par,
        ) as f64
    }

    fn finish(&self, p: &[f32], grad: &mut [f32], loss_sum: f64, n: usize) -> Finished {
        let (mean, objective) = finish_objective(self.lay, p, grad, loss_sum as f32, n, self.weight_decay);
        Finished {
            loss: mean as f64 * n as f64,
            objective: objective as f64,
        }
    }
}

/// Minibatch state over the DAE's objective.
type DaeBatches = Minibatches<DaeBatch, Workspace<f32>>;

/// The DAE lent to the shared epoch loop.
struct DaeFit<'m, 'x> {
    model: &'m mut DenoisingAutoencoder,
    x: &'x [f32],
    val: Option<&'x [f32]>,
    plan: EpochPlan,
    batches: Option<DaeBatches>,
}

impl DaeFit<'_, '_> {
    fn batches_per_epoch(&self) -> usize {
        self.batches
            .as_ref()
            .map_or(self.x.len() / self.model.config.n_vis, |b| b.batches_per_epoch())
    }
}

impl Fit for DaeFit<'_, '_> {
    fn epoch(&mut self, obs: &mut dyn Observer) -> Result<(f64, u64)> {
        Ok(self.model.run_epoch(self.x, self.plan, &mut self.batches, obs))
    }

    fn validate(&mut self) -> Result<Option<f64>> {
        Ok(self
            .val
            .map(|v| self.model.eval_slice(v, v.len() / self.model.config.n_vis).loss))
    }

    fn params(&self) -> &[f32] {
        &self.model.params
    }

    fn set_params(&mut self, p: &[f32]) {
        self.model.params.copy_from_slice(p);
    }
}

//! How a DAE trains: the epoch plan (per-example kernels, data-parallel
//! minibatches or the layer path), its objective for the shared loops, and
//! `fit`, `fit_lbfgs` and `partial_fit`.

use super::maths::*;
use super::model::*;
use crate::error::{Error, Result};
use crate::layers::activation::Activation;
use crate::per_example::{self, lockstep_workers, Plan, TiedShape, UntiedShape};
use crate::tensor::gemm::Par;
use crate::tensor::rng::{seeded, Rng};
use crate::tensor::GradWrite;
use crate::train::{
    fit_loop_with, lbfgs_fit, Checkpointing, Finished, Fit, FitReport, Minibatches, Objective, Observer,
    Optimizer, ParallelMode, Shuffle, State, StepRule,
};
use ndarray::ArrayView2;
use std::ops::Range;

/// How one training epoch runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EpochPlan {
    /// Per-example SGD through the fused kernel (see [`crate::per_example`]).
    PerExample(Plan),
    /// Per-example SGD on one thread for an untied model (its own decoder),
    /// see [`crate::per_example::run_epoch_untied`].
    PerExampleUntied,
    /// Each minibatch split over this many threads.
    Minibatch(usize),
    /// The layer-by-layer path with this GEMM parallelism.
    Layers(Par),
}

impl DenoisingAutoencoder {
    /// Trains from the current weights (drawn first if needed) for
    /// `train.epochs` epochs, with early stopping on `val` when given.
    pub fn fit(
        &mut self,
        x: ArrayView2<f32>,
        val: Option<ArrayView2<f32>>,
        obs: &mut dyn Observer,
    ) -> Result<FitReport> {
        self.fit_with(x, val, obs, Checkpointing::default())
    }

    /// [`DenoisingAutoencoder::fit`], checkpointed after each epoch and
    /// resumed from a checkpoint as `ck` says.
    pub fn fit_with(
        &mut self,
        x: ArrayView2<f32>,
        val: Option<ArrayView2<f32>>,
        obs: &mut dyn Observer,
        ck: Checkpointing<'_>,
    ) -> Result<FitReport> {
        self.prepare_training(&x)?;
        let plan = self.epoch_plan()?;
        if let Some(v) = &val {
            self.check_input(v, "validation data")?;
            self.check_data(v, "validation data")?;
        }
        if x.nrows() == 0 {
            return Err(Error::config("train_size", "no training examples"));
        }
        crate::train::check_lr_decay("lr_decay", self.lr_decay)?;
        self.rng = seeded(self.train.seed);
        self.opt = StepRule::new(&self.train);
        let xs = self.rows(&x);
        let vs = val.as_ref().map(|v| self.rows(v));
        let x: &[f32] = &xs;
        let val = vs.as_deref();
        if let crate::train::Device::Cuda(ordinal) = self.train.device {
            if self.lr_decay != 1.0 {
                return Err(Error::config(
                    "lr_decay",
                    "a decaying step size trains on the CPU only (train.device = \"cpu\")",
                ));
            }
            #[cfg(feature = "cuda")]
            return self.fit_gpu(ordinal, x, val, obs, ck);
            #[cfg(not(feature = "cuda"))]
            return Err(Error::config(
                "train.device",
                format!("cuda:{ordinal} needs an aekit built with the `cuda` feature"),
            ));
        }
        let mut run = DaeFit {
            batches: self.minibatches(x, plan),
            model: self,
            x,
            val,
            plan,
        };
        obs.on_start(run.model.train.epochs, run.batches_per_epoch());
        let (epochs, patience) = (run.model.train.epochs, run.model.train.patience);
        fit_loop_with(&mut run, epochs, patience, obs, "train.lr", ck)
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
        self.fit_lbfgs_with(x, lbfgs, obs, Checkpointing::default())
    }

    /// [`DenoisingAutoencoder::fit_lbfgs`], checkpointed after each
    /// iteration and resumed from a checkpoint as `ck` says.
    pub fn fit_lbfgs_with(
        &mut self,
        x: ArrayView2<f32>,
        lbfgs: &crate::optim::lbfgs::LbfgsConfig,
        obs: &mut dyn Observer,
        ck: Checkpointing<'_>,
    ) -> Result<crate::optim::lbfgs::LbfgsReport> {
        self.prepare_training(&x)?;
        self.train.require_cpu("L-BFGS")?;
        if x.nrows() == 0 {
            return Err(Error::config("train_size", "no training examples"));
        }
        let xs = self.rows(&x);
        let par = self.par();
        let objective = DaeObjective::new(&self.config, &self.layout, &xs, self.train.weight_decay);
        let mut rng = seeded(self.train.seed);
        lbfgs_fit(&objective, &mut self.params, lbfgs, &mut rng, par, obs, ck)
    }

    /// Trains by the genetic algorithm (`train.optimizer = "ga"`, settings
    /// `ga`) or the evolution strategy (`"es"`, settings `es`, Adam at
    /// `train.lr`): no gradients, the loss on a minibatch of `train.batch`
    /// drawn each generation; an epoch is a block of generations, and
    /// `val`'s clean loss is that of the best individual (GA) or the centre
    /// (ES). Returns the report and the examples run through the model.
    pub fn fit_evolve_with(
        &mut self,
        x: ArrayView2<f32>,
        val: Option<ArrayView2<f32>>,
        ga: &crate::train::evolve::GaConfig,
        es: &crate::train::evolve::EsConfig,
        obs: &mut dyn Observer,
        ck: Checkpointing<'_>,
    ) -> Result<(FitReport, u64)> {
        use crate::train::evolve::EvolveFit;
        self.prepare_training(&x)?;
        self.train
            .require_cpu("the genetic algorithm and the evolution strategy")?;
        if x.nrows() == 0 {
            return Err(Error::config("train_size", "no training examples"));
        }
        let xs = self.rows(&x);
        let objective = DaeObjective::new(&self.config, &self.layout, &xs, self.train.weight_decay);
        let vs = val.map(|v| self.rows(&v).into_owned());
        let probe = self.clone();
        let n_vis = self.config.n_vis;
        let score = |p: &[f32]| {
            let v = vs.as_ref().expect("validation data");
            let mut m = probe.clone();
            m.params.copy_from_slice(p);
            m.eval_slice(v, v.len() / n_vis).loss
        };
        let val_fn: Option<&crate::train::evolve::Score<'_>> = vs.as_ref().map(|_| &score as _);
        let (t, theta0) = (&self.train, self.params.clone());
        let mut run = match t.optimizer {
            Optimizer::Ga => EvolveFit::ga(&objective, theta0, ga.clone(), t.batch, t.seed, val_fn)?,
            Optimizer::Es => EvolveFit::es(
                &objective,
                theta0,
                es.clone(),
                t.adam_config(),
                t.batch,
                t.seed,
                val_fn,
            )?,
            o => {
                return Err(Error::config(
                    "train.optimizer",
                    format!("fit_evolve_with runs ga or es, not {o}"),
                ))
            }
        };
        let per = match t.optimizer {
            Optimizer::Ga => ga.generations_per_epoch,
            _ => es.generations_per_epoch,
        };
        obs.on_start(t.epochs, per);
        let report = crate::train::fit_loop_with(&mut run, t.epochs, t.patience, obs, "train.lr", ck)?;
        let evaluated = run.evaluated;
        self.params.copy_from_slice(crate::train::Fit::params(&run));
        Ok((report, evaluated))
    }

    /// One more epoch over `x` with the current weights, optimizer state and
    /// random stream; returns the mean training loss.
    pub fn partial_fit(&mut self, x: ArrayView2<f32>) -> Result<f64> {
        self.prepare_training(&x)?;
        let plan = self.epoch_plan()?;
        let xs = self.rows(&x);
        let x: &[f32] = &xs;
        let mut batches = self.minibatches(x, plan);
        Ok(self.run_epoch(x, plan, &mut batches, &mut crate::train::Silent).0)
    }

    /// Batch 1 and plain SGD (no momentum): the training the per-example
    /// steps take.
    fn plain_per_example(&self) -> bool {
        self.train.batch == 1 && self.train.optimizer == Optimizer::Sgd && self.train.momentum == 0.0
    }

    /// Whether per-example epochs can run the fused kernel: batch 1, plain
    /// SGD (no momentum), a tied sigmoid autoencoder.
    pub fn uses_fused_kernel(&self) -> bool {
        self.plain_per_example() && self.tied_shape().is_some()
    }

    /// Whether per-example epochs on one thread can run the untied step:
    /// batch 1, plain SGD (no momentum), an untied autoencoder.
    pub fn uses_untied_step(&self) -> bool {
        self.plain_per_example() && !self.config.tied
    }

    /// The untied step's view of this model.
    fn untied_shape(&self) -> UntiedShape {
        let c = &self.config;
        UntiedShape {
            n_vis: c.n_vis,
            n_hid: c.n_hid,
            hidden: c.hidden_activation,
            output: c.output_activation,
            loss: c.loss,
        }
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
        if matches!(self.train.optimizer, Optimizer::Ga | Optimizer::Es) {
            return Err(Error::config(
                "train.optimizer",
                format!(
                    "{} evolves a population: use fit_evolve_with",
                    self.train.optimizer
                ),
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
                } else if self.uses_untied_step() {
                    EpochPlan::PerExampleUntied
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
    pub(crate) fn minibatches(&self, x: &[f32], plan: EpochPlan) -> Option<DaeBatches> {
        let o = DaeObjective::new(&self.config, &self.layout, x, self.train.weight_decay);
        match plan {
            EpochPlan::PerExample(_) | EpochPlan::PerExampleUntied => None,
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
    pub(crate) fn run_epoch(
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
                    // The optimizer's step size: `train.lr`, decayed by
                    // the epochs before this one (and restored on resume).
                    lr: self.opt.lr(),
                    weight_decay: self.train.weight_decay,
                    noise: self.config.noise,
                };
                let params = self.layout.tied_mut(&mut self.params);
                let loss = per_example::run_epoch(&job, plan, params, x, &mut self.rng, obs);
                (loss, n as u64)
            }
            (EpochPlan::PerExampleUntied, _) => {
                let job = per_example::UntiedJob {
                    shape: self.untied_shape(),
                    lr: self.opt.lr(),
                    weight_decay: self.train.weight_decay,
                    noise: self.config.noise,
                };
                let params = self
                    .layout
                    .untied_mut(&mut self.params)
                    .expect("checked by epoch_plan");
                let loss = per_example::run_epoch_untied(&job, params, x, &mut self.rng, obs);
                (loss, n as u64)
            }
            (_, Some(b)) => {
                let o = DaeObjective::new(&self.config, &self.layout, x, self.train.weight_decay);
                b.run_epoch(&o, &mut self.params, &mut self.opt, &mut self.rng, obs)
            }
            (_, None) => unreachable!("minibatch plans carry their batches"),
        }
    }
}

impl DenoisingAutoencoder {
    /// The mean clean loss of the first (up to) `most` examples of `x`: the
    /// validation figure, and the scale a runaway loss is judged against.
    pub(crate) fn clean_loss(&self, x: &[f32], most: usize) -> f64 {
        let nv = self.config.n_vis;
        let n = (x.len() / nv).min(most);
        self.eval_slice(&x[..n * nv], n).loss
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

    /// The first `n` examples of `b`.
    fn examples<'b>(&self, b: &'b DaeBatch, n: usize) -> Examples<'b, f32> {
        let nv = self.cfg.n_vis;
        Examples {
            input: &b.noisy[..n * nv],
            target: &b.clean[..n * nv],
            n,
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
            grad.map(|g| (g, GradWrite::ADD)),
            Examples {
                input: &b.noisy[lo..hi],
                target: &b.clean[lo..hi],
                n: rows.len(),
            },
            ws,
            par,
        ) as f64
    }

    fn finish(&self, p: &[f32], grad: &mut [f32], loss_sum: f64, n: usize) -> Finished {
        let (mean, objective) = finish_objective(self.lay, p, grad, loss_sum as f32, n, self.weight_decay);
        Finished::of_mean(mean, n, objective)
    }

    fn offers_finished(&self) -> bool {
        true
    }

    fn loss_grad_finished(
        &self,
        p: &[f32],
        (out, write): (&mut [f32], GradWrite<f32>),
        b: &DaeBatch,
        n: usize,
        ws: &mut Workspace<f32>,
        par: Par,
    ) -> Option<Finished> {
        let inv = 1.0 / n as f32;
        let sum = batch_loss_grad(
            self.cfg,
            self.lay,
            p,
            Some((&mut *out, write.scaled(inv))),
            self.examples(b, n),
            ws,
            par,
        );
        let mean = sum * inv;
        let objective = penalty(self.lay, p, out, self.weight_decay, write.alpha, mean);
        Some(Finished::of_mean(mean, n, objective))
    }

    fn offers_sgd_step(&self) -> bool {
        self.weight_decay == 0.0
    }

    fn loss_grad_sgd_step(
        &self,
        p: &mut [f32],
        lr: f32,
        b: &DaeBatch,
        n: usize,
        ws: &mut Workspace<f32>,
        par: Par,
    ) -> Option<Finished> {
        if !self.offers_sgd_step() {
            return None;
        }
        let mean = batch_sgd_step(self.cfg, self.lay, p, lr, self.examples(b, n), ws, par);
        Some(Finished::of_mean(mean, n, mean))
    }
}

/// Minibatch state over the DAE's objective.
pub(crate) type DaeBatches = Minibatches<DaeBatch, Workspace<f32>>;

/// The DAE lent to the shared epoch loop.
pub(crate) struct DaeFit<'m, 'x> {
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
        let r = self.model.run_epoch(self.x, self.plan, &mut self.batches, obs);
        let decay = self.model.lr_decay;
        self.model.opt.scale_lr(decay);
        Ok(r)
    }

    fn validate(&mut self) -> Result<Option<f64>> {
        Ok(self.val.map(|v| self.model.clean_loss(v, usize::MAX)))
    }

    fn start_loss(&mut self) -> Result<Option<f64>> {
        Ok(Some(self.model.clean_loss(self.x, 500)))
    }

    fn params(&self) -> &[f32] {
        &self.model.params
    }

    fn set_params(&mut self, p: &[f32]) {
        self.model.params.copy_from_slice(p);
    }

    fn save_state(&self, s: &mut State) -> Result<()> {
        s.put_tensor("params", &self.model.params);
        s.put_rng("rng", &self.model.rng);
        let mut o = State::new();
        self.model.opt.save_state(&mut o);
        s.nest("opt", o);
        if let Some(b) = &self.batches {
            let mut bs = State::new();
            b.save_state(&mut bs);
            s.nest("batches", bs);
        }
        Ok(())
    }

    fn load_state(&mut self, s: &State) -> Result<()> {
        let n = self.model.params.len();
        self.model.params.copy_from_slice(s.tensor("params", n)?);
        self.model.rng = s.rng("rng")?;
        self.model
            .opt
            .load_state(&s.inner("opt").unwrap_or_default(), n)?;
        if let Some(b) = &mut self.batches {
            b.load_state(&s.inner("batches").unwrap_or_default())?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layers::{Corruption, Loss};
    use crate::tensor::rng::seeded;
    use rand::Rng as _;

    #[test]
    fn the_one_call_gradient_is_the_cleared_summed_and_finished_one() {
        // Tied and untied, both losses, with and without weight decay; the
        // inputs mostly zeros like MNIST's.
        for (tied, loss, wd) in [
            (true, Loss::CrossEntropy, 0.0),
            (true, Loss::Squared, 1e-3),
            (false, Loss::CrossEntropy, 1e-3),
        ] {
            let (nv, nh, n) = (300, 120, 30);
            let cfg = DaeConfig {
                n_vis: nv,
                n_hid: nh,
                tied,
                loss,
                noise: Corruption::Mask(0.25),
                ..Default::default()
            };
            let lay = Layout::new(&cfg);
            let mut rng = seeded(5);
            let x: Vec<f32> = (0..n * nv)
                .map(|_| {
                    if rng.random::<f32>() < 0.8 {
                        0.0
                    } else {
                        rng.random()
                    }
                })
                .collect();
            let p: Vec<f32> = (0..lay.len).map(|_| rng.random_range(-0.1..0.1)).collect();
            let o = DaeObjective::new(&cfg, &lay, &x, wd);
            let case = format!("tied {tied}, {loss:?}, λ {wd}");
            crate::train::assert_finished_matches_plain(&o, &p, &case);
        }
    }
}

//! Black-box training over any [`Objective`]: a genetic algorithm (the
//! parallel-SGD paper's Algorithm 2, with Such et al. 2017's seed-chain
//! genomes) and an evolution strategy (Salimans et al. 2017), the strongest
//! black-box baseline. Neither uses a gradient; both read the objective's
//! loss on a minibatch drawn anew each generation.
//!
//! **GA.** A population of N weight vectors. Each generation every
//! individual's fitness is its loss on the generation's minibatch
//! (survivors are evaluated again on it); the best `keep = max(E, N − ⌈αN⌉)`
//! survive unchanged and the worst are replaced by children: a parent drawn
//! uniformly from the best T, mutated by θ ← θ + σ·ε (ε ~ N(0, I) drawn from
//! the child's own seed), and with probability `crossover` first mixed
//! uniformly with a second parent. σ is constant, decays by a factor per
//! generation, or is self-adapted (each genome carries its σ, a child's is
//! its parent's times e^{τ·z}, τ = 1/√(2√P) for P parameters).
//!
//! A genome is stored as its seed chain: the mutations (seed, σ) applied to
//! the common starting weights θ₀, one per generation it descends through,
//! so the population costs O(N · generations) numbers, not O(N · P); its
//! weights are rebuilt (O(generations · P)) when it is evaluated. With
//! `materialise` the weights are kept instead (and crossover, which a chain
//! cannot express, becomes possible).
//!
//! **ES.** A centre θ; each generation K antithetic pairs θ ± σ·ε_k are
//! evaluated, the 2K losses replaced by centred ranks (best +½, worst −½),
//! and the gradient estimate ĝ = −Σ_k (u_k⁺ − u_k⁻)·ε_k / (2Kσ) handed to
//! Adam.
//!
//! Fitness is evaluated in parallel over the threads (rayon), each
//! evaluation on one thread and the results gathered in population order,
//! so a run is the same for a seed whatever the thread count.

use super::objective::Objective;
use super::{Fit, Observer, State};
use crate::error::{Error, Result};
use crate::optim::{Adam, AdamConfig};
use crate::tensor::gemm::Par;
use crate::tensor::rng::{seeded, Rng};
use rand::{Rng as _, RngCore};
use rand_distr::{Distribution, StandardNormal};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

/// The validation figure of a weight vector (lower is better).
pub type Score<'a> = dyn Fn(&[f32]) -> f64 + Sync + 'a;

/// How the GA's mutation step σ changes.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum SigmaMode {
    #[default]
    Constant,
    /// σ·decayᵍ at generation g.
    Decay,
    /// Each genome carries its σ (log-normal self-adaptation).
    SelfAdapt,
}

/// The genetic algorithm's settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GaConfig {
    /// N.
    pub population: usize,
    /// T: children's parents are drawn from the best T.
    pub parents: usize,
    /// E: the best E always survive unchanged.
    pub elites: usize,
    /// α: the fraction of the population replaced each generation.
    pub replace: f64,
    /// Mutation step σ (the starting one, for decay and self-adaptation).
    pub sigma: f32,
    pub sigma_mode: SigmaMode,
    /// Factor per generation with `sigma_mode = "decay"`.
    pub sigma_decay: f32,
    /// Probability that a child first mixes two parents (uniform crossover;
    /// needs `materialise`).
    pub crossover: f32,
    /// Keep every genome's weights instead of its seed chain.
    pub materialise: bool,
    /// Generations reported (and checkpointed) as one epoch.
    pub generations_per_epoch: usize,
}

impl Default for GaConfig {
    fn default() -> Self {
        GaConfig {
            population: 32,
            parents: 8,
            elites: 1,
            replace: 0.75,
            sigma: 0.01,
            sigma_mode: SigmaMode::Constant,
            sigma_decay: 0.999,
            crossover: 0.0,
            materialise: false,
            generations_per_epoch: 10,
        }
    }
}

/// The largest GA population, and twice the most ES pairs: fitness is
/// one minibatch loss per individual per generation, so more would take
/// hours a generation on the models aekit trains.
pub const MAX_POPULATION: usize = 100_000;

impl GaConfig {
    pub fn validate(&self) -> Result<()> {
        let bad = |f: &str, why: String| Err(Error::config(&format!("ga.{f}"), why));
        if !(2..=MAX_POPULATION).contains(&self.population) {
            return bad(
                "population",
                format!("{} individuals: give 2 to {MAX_POPULATION}", self.population),
            );
        }
        if self.parents == 0 || self.parents > self.population {
            return bad(
                "parents",
                format!("must be between 1 and the population ({})", self.population),
            );
        }
        if self.elites >= self.population {
            return bad("elites", "must leave room for children".into());
        }
        if !(self.replace > 0.0 && self.replace <= 1.0) {
            return bad("replace", "must be in (0, 1]".into());
        }
        if !(self.sigma.is_finite() && self.sigma > 0.0) {
            return bad("sigma", "must be positive".into());
        }
        if !(self.sigma_decay > 0.0 && self.sigma_decay <= 1.0) {
            return bad("sigma_decay", "must be in (0, 1]".into());
        }
        if !(0.0..=1.0).contains(&self.crossover) {
            return bad("crossover", "must be in [0, 1]".into());
        }
        if self.crossover > 0.0 && !self.materialise {
            return bad(
                "crossover",
                "a seed chain cannot express a crossover: set ga.materialise = true".into(),
            );
        }
        if self.generations_per_epoch == 0 {
            return bad("generations_per_epoch", "must be at least 1".into());
        }
        Ok(())
    }

    /// Survivors per generation.
    pub fn keep(&self) -> usize {
        let replaced = (self.replace * self.population as f64).ceil() as usize;
        self.elites.max(self.population.saturating_sub(replaced)).max(1)
    }
}

/// The evolution strategy's settings (Adam's step comes from `train.lr`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EsConfig {
    /// K antithetic pairs per generation (2K evaluations).
    pub pairs: usize,
    /// Perturbation scale σ.
    pub sigma: f32,
    pub generations_per_epoch: usize,
}

impl Default for EsConfig {
    fn default() -> Self {
        EsConfig {
            pairs: 16,
            sigma: 0.02,
            generations_per_epoch: 10,
        }
    }
}

impl EsConfig {
    pub fn validate(&self) -> Result<()> {
        if !(1..=MAX_POPULATION / 2).contains(&self.pairs) {
            return Err(Error::config(
                "es.pairs",
                format!("{} pairs: give 1 to {}", self.pairs, MAX_POPULATION / 2),
            ));
        }
        if !(self.sigma.is_finite() && self.sigma > 0.0) {
            return Err(Error::config("es.sigma", "must be positive"));
        }
        if self.generations_per_epoch == 0 {
            return Err(Error::config("es.generations_per_epoch", "must be at least 1"));
        }
        Ok(())
    }
}

/// The command line's `--population N` and `--sigma S`: N individuals
/// (the best quarter at most as parents, as in the defaults' 8 of 32) or
/// ⌈N/2⌉ antithetic pairs, and σ for both.
pub fn apply_flags(ga: &mut GaConfig, es: &mut EsConfig, population: Option<usize>, sigma: Option<f32>) {
    if let Some(n) = population {
        ga.population = n;
        ga.parents = ga.parents.min((n / 4).max(1));
        es.pairs = n.div_ceil(2);
    }
    if let Some(s) = sigma {
        ga.sigma = s;
        es.sigma = s;
    }
}

/// θ += σ·ε with ε ~ N(0, I) drawn from `seed`.
pub fn add_noise(p: &mut [f32], seed: u64, sigma: f32) {
    let mut r = seeded(seed);
    for v in p.iter_mut() {
        let z: f32 = StandardNormal.sample(&mut r);
        *v += sigma * z;
    }
}

/// One genome: its mutations from θ₀, its σ, and (materialised) weights.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Genome {
    pub chain: Vec<(u64, f32)>,
    pub sigma: f32,
    #[serde(skip)]
    pub weights: Option<Vec<f32>>,
}

impl Genome {
    /// The weights: θ₀ plus every mutation in order.
    pub fn rebuild(&self, theta0: &[f32]) -> Vec<f32> {
        let mut p = theta0.to_vec();
        for &(seed, s) in &self.chain {
            add_noise(&mut p, seed, s);
        }
        p
    }

    fn weights_or_rebuild(&self, theta0: &[f32]) -> std::borrow::Cow<'_, [f32]> {
        match &self.weights {
            Some(w) => std::borrow::Cow::Borrowed(w),
            None => std::borrow::Cow::Owned(self.rebuild(theta0)),
        }
    }
}

/// Losses of many weight vectors on one loaded batch, in parallel, each on
/// one thread (so the result does not depend on the thread count).
struct Evaluator<'a, O: Objective> {
    o: &'a O,
    batch: O::Batch,
    rows: usize,
}

impl<O: Objective> Evaluator<'_, O> {
    fn losses<'p>(
        &self,
        params: impl IndexedParallelIterator<Item = std::borrow::Cow<'p, [f32]>>,
    ) -> Vec<f64> {
        let n = self.o.n_params();
        params
            .map_init(
                || (self.o.new_workspace(self.rows), vec![0.0f32; n]),
                |(ws, scratch), p| {
                    let s = self
                        .o
                        .loss_grad_sum(&p, None, &self.batch, 0..self.rows, ws, Par::Seq);
                    self.o.finish(&p, scratch, s, self.rows).objective
                },
            )
            .collect()
    }
}

/// Draws the generation's minibatch (indices with replacement) and loads it.
fn draw_batch<O: Objective>(o: &O, batch: &mut O::Batch, size: usize, rng: &mut Rng) -> usize {
    let n = o.n_examples();
    let b = size.clamp(1, n.max(1));
    let idx: Vec<usize> = (0..b).map(|_| rng.random_range(0..n)).collect();
    o.load(&idx, batch, rng);
    b
}

/// The GA or ES over `o` from `theta0`, lent to the shared epoch loop: an
/// epoch is `generations_per_epoch` generations; its training loss is the
/// mean over them of the best (GA) or centre's estimated (ES) loss, its
/// updates the generations; `validate` (when given) scores the current best
/// (GA) or centre (ES).
pub struct EvolveFit<'a, O: Objective> {
    o: &'a O,
    method: Method,
    theta0: Vec<f32>,
    batch: usize,
    rng: Rng,
    /// The best weights so far (GA: of the last generation; ES: the centre).
    best: Vec<f32>,
    generation: u64,
    /// Examples run through the model so far (N·batch per GA generation).
    pub evaluated: u64,
    val: Option<&'a Score<'a>>,
}

enum Method {
    Ga { cfg: GaConfig, pop: Vec<Genome> },
    Es { cfg: EsConfig, adam: Adam },
}

impl<'a, O: Objective> EvolveFit<'a, O> {
    /// A GA whose population starts as θ₀ mutated once each (one elite left
    /// as θ₀).
    pub fn ga(
        o: &'a O,
        theta0: Vec<f32>,
        cfg: GaConfig,
        batch: usize,
        seed: u64,
        val: Option<&'a Score<'a>>,
    ) -> Result<Self> {
        cfg.validate()?;
        // Each individual's chain, and with `materialise` its weights.
        let per = if cfg.materialise { theta0.len() as u128 } else { 0 };
        crate::tensor::memory::check_f32s("ga.population", cfg.population as u128 * (per + 16))?;
        let mut rng = seeded(seed ^ 0x6a5e);
        let pop: Vec<Genome> = (0..cfg.population)
            .map(|i| {
                let chain = if i == 0 {
                    vec![]
                } else {
                    vec![(rng.next_u64(), cfg.sigma)]
                };
                let mut g = Genome {
                    chain,
                    sigma: cfg.sigma,
                    weights: None,
                };
                if cfg.materialise {
                    g.weights = Some(g.rebuild(&theta0));
                }
                g
            })
            .collect();
        Ok(EvolveFit {
            o,
            best: theta0.clone(),
            theta0,
            method: Method::Ga { cfg, pop },
            batch,
            rng,
            generation: 0,
            evaluated: 0,
            val,
        })
    }

    /// An ES from the centre θ₀ with Adam's settings `adam`.
    pub fn es(
        o: &'a O,
        theta0: Vec<f32>,
        cfg: EsConfig,
        adam: AdamConfig,
        batch: usize,
        seed: u64,
        val: Option<&'a Score<'a>>,
    ) -> Result<Self> {
        cfg.validate()?;
        adam.validate("train")?;
        Ok(EvolveFit {
            o,
            best: theta0.clone(),
            theta0,
            method: Method::Es {
                cfg,
                adam: Adam::new(adam),
            },
            batch,
            rng: seeded(seed ^ 0xe5e5),
            generation: 0,
            evaluated: 0,
            val,
        })
    }

    fn per_epoch(&self) -> usize {
        match &self.method {
            Method::Ga { cfg, .. } => cfg.generations_per_epoch,
            Method::Es { cfg, .. } => cfg.generations_per_epoch,
        }
    }

    /// The GA population's losses on a freshly drawn minibatch, without
    /// selection (for timing the parallel fitness evaluation; the run's
    /// random stream moves on).
    pub fn population_fitness(&mut self) -> Vec<f64> {
        let mut ev = Evaluator {
            o: self.o,
            batch: self.o.new_batch(self.batch.max(1)),
            rows: 0,
        };
        ev.rows = draw_batch(self.o, &mut ev.batch, self.batch, &mut self.rng);
        let theta0 = &self.theta0;
        match &self.method {
            Method::Ga { pop, .. } => ev.losses(pop.par_iter().map(|g| g.weights_or_rebuild(theta0))),
            Method::Es { .. } => ev.losses(rayon::iter::once(std::borrow::Cow::Borrowed(&self.best[..]))),
        }
    }

    /// One GA generation; returns the best loss on its batch.
    fn ga_generation(&mut self, ev: &mut Evaluator<'_, O>) -> f64 {
        let Method::Ga { cfg, pop } = &mut self.method else {
            unreachable!("a GA")
        };
        ev.rows = draw_batch(self.o, &mut ev.batch, self.batch, &mut self.rng);
        let theta0 = &self.theta0;
        let fit = ev.losses(pop.par_iter().map(|g| g.weights_or_rebuild(theta0)));
        self.evaluated += (pop.len() * ev.rows) as u64;
        let mut order: Vec<usize> = (0..pop.len()).collect();
        // NaN losses sort last.
        order.sort_by(|&a, &b| fit[a].total_cmp(&fit[b]).then(a.cmp(&b)));
        let best = fit[order[0]];
        self.best = pop[order[0]].weights_or_rebuild(theta0).into_owned();
        let keep = cfg.keep();
        let g = self.generation as i32 + 1;
        let p = self.theta0.len() as f32;
        let tau = 1.0 / (2.0 * p.sqrt()).sqrt();
        let mut next: Vec<Genome> = order[..keep].iter().map(|&i| pop[i].clone()).collect();
        while next.len() < cfg.population {
            let a = &pop[order[self.rng.random_range(0..cfg.parents)]];
            let sigma = match cfg.sigma_mode {
                SigmaMode::Constant => cfg.sigma,
                SigmaMode::Decay => cfg.sigma * cfg.sigma_decay.powi(g),
                SigmaMode::SelfAdapt => {
                    let z: f32 = StandardNormal.sample(&mut self.rng);
                    a.sigma * (tau * z).exp()
                }
            };
            let seed = self.rng.next_u64();
            let mut child = Genome {
                chain: a.chain.clone(),
                sigma,
                weights: None,
            };
            child.chain.push((seed, sigma));
            if cfg.materialise {
                let mut w = a.weights.clone().expect("materialised");
                if cfg.crossover > 0.0 && self.rng.random::<f32>() < cfg.crossover {
                    let b = &pop[order[self.rng.random_range(0..cfg.parents)]];
                    let bw = b.weights.as_ref().expect("materialised");
                    let mut mix = seeded(self.rng.next_u64());
                    for (x, &y) in w.iter_mut().zip(bw) {
                        if mix.random::<bool>() {
                            *x = y;
                        }
                    }
                }
                add_noise(&mut w, seed, sigma);
                child.weights = Some(w);
            }
            next.push(child);
        }
        *pop = next;
        best
    }

    /// One ES generation; returns the mean loss of its perturbations.
    fn es_generation(&mut self, ev: &mut Evaluator<'_, O>) -> f64 {
        let Method::Es { cfg, adam } = &mut self.method else {
            unreachable!("an ES")
        };
        ev.rows = draw_batch(self.o, &mut ev.batch, self.batch, &mut self.rng);
        let k = cfg.pairs;
        let seeds: Vec<u64> = (0..k).map(|_| self.rng.next_u64()).collect();
        let centre = &self.best;
        let sigma = cfg.sigma;
        let fit = ev.losses((0..2 * k).into_par_iter().map(|j| {
            let mut p = centre.clone();
            add_noise(&mut p, seeds[j / 2], if j % 2 == 0 { sigma } else { -sigma });
            std::borrow::Cow::Owned(p)
        }));
        self.evaluated += (2 * k * ev.rows) as u64;
        // Centred ranks: the lowest loss gets +½, the highest −½.
        let mut order: Vec<usize> = (0..2 * k).collect();
        order.sort_by(|&a, &b| fit[a].total_cmp(&fit[b]).then(a.cmp(&b)));
        let mut u = vec![0.0f32; 2 * k];
        let m = (2 * k - 1).max(1) as f32;
        for (r, &i) in order.iter().enumerate() {
            u[i] = 0.5 - r as f32 / m;
        }
        // The loss gradient estimate, accumulated pair by pair in order.
        let mut g = vec![0.0f32; centre.len()];
        let scale = -1.0 / (2.0 * k as f32 * sigma);
        for (j, &seed) in seeds.iter().enumerate() {
            let w = scale * (u[2 * j] - u[2 * j + 1]);
            let mut r = seeded(seed);
            for v in g.iter_mut() {
                let z: f32 = StandardNormal.sample(&mut r);
                *v += w * z;
            }
        }
        adam.step(&mut self.best, &g);
        fit.iter().sum::<f64>() / fit.len() as f64
    }
}

impl<O: Objective> Fit for EvolveFit<'_, O> {
    fn epoch(&mut self, obs: &mut dyn Observer) -> Result<(f64, u64)> {
        let per = self.per_epoch();
        let mut ev = Evaluator {
            o: self.o,
            batch: self.o.new_batch(self.batch.max(1)),
            rows: 0,
        };
        let mut sum = 0.0;
        for k in 0..per {
            if super::checkpoint::stop_requested() {
                return Err(super::checkpoint::interrupted(self.generation as usize / per));
            }
            sum += match self.method {
                Method::Ga { .. } => self.ga_generation(&mut ev),
                Method::Es { .. } => self.es_generation(&mut ev),
            };
            self.generation += 1;
            obs.on_progress(k + 1, per);
        }
        Ok((sum / per as f64, per as u64))
    }

    fn validate(&mut self) -> Result<Option<f64>> {
        Ok(self.val.map(|v| v(&self.best)))
    }

    fn params(&self) -> &[f32] {
        &self.best
    }

    fn set_params(&mut self, p: &[f32]) {
        self.best.copy_from_slice(p);
    }

    fn save_state(&self, s: &mut State) -> Result<()> {
        s.put_tensor("params", &self.best);
        s.put_rng("rng", &self.rng);
        s.put("generation", &self.generation);
        s.put("evaluated", &self.evaluated);
        match &self.method {
            Method::Ga { pop, .. } => {
                s.put("ga.population", pop);
                for (i, g) in pop.iter().enumerate() {
                    if let Some(w) = &g.weights {
                        s.put_tensor(&format!("ga.weights.{i}"), w);
                    }
                }
            }
            Method::Es { adam, .. } => {
                let (m, v, t) = adam.moments();
                s.put_tensor("es.m", m);
                s.put_tensor("es.v", v);
                s.put("es.t", &t);
            }
        }
        Ok(())
    }

    fn load_state(&mut self, s: &State) -> Result<()> {
        let n = self.best.len();
        self.best.copy_from_slice(s.tensor("params", n)?);
        self.rng = s.rng("rng")?;
        self.generation = s.get("generation")?;
        self.evaluated = s.get("evaluated")?;
        match &mut self.method {
            Method::Ga { cfg, pop } => {
                let mut p: Vec<Genome> = s.get("ga.population")?;
                if p.len() != cfg.population {
                    return Err(Error::config(
                        "resume",
                        format!(
                            "the checkpoint holds {} genomes, the settings {}",
                            p.len(),
                            cfg.population
                        ),
                    ));
                }
                if cfg.materialise {
                    for (i, g) in p.iter_mut().enumerate() {
                        g.weights = Some(s.tensor(&format!("ga.weights.{i}"), n)?.to_vec());
                    }
                }
                *pop = p;
            }
            Method::Es { adam, .. } => {
                let len = |name: &str| {
                    if s.tensor_any(name).is_ok_and(|t| t.is_empty()) {
                        0
                    } else {
                        n
                    }
                };
                let m = s.tensor("es.m", len("es.m"))?.to_vec();
                let v = s.tensor("es.v", len("es.v"))?.to_vec();
                adam.set_moments(&m, &v, s.get("es.t")?);
            }
        }
        Ok(())
    }
}

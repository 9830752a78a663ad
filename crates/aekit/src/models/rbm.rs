//! Restricted Boltzmann machines trained by contrastive divergence, the
//! original way to pretrain a deep network one layer at a time (Hinton &
//! Salakhutdinov, Science 2006).
//!
//! Visible units v ∈ {0, 1}ⁿ (real data in [0, 1] is read as their
//! probabilities), hidden units h either binary or Gaussian with unit
//! variance (the linear code layer of a deep autoencoder). Energy
//! E(v, h) = −b·v − c·h − vᵀWh (+ ½‖h‖² for Gaussian h), so
//! - binary:   p(h_j = 1 | v) = σ(c_j + v·W_j),
//! - Gaussian: h | v ~ N(c + vW, I),
//! - p(v_i = 1 | h) = σ(b_i + W_i·h).
//!
//! CD-k: from a data row v₀, h₀ ~ p(h | v₀), then k steps of the Gibbs chain
//! v_t ~ p(v | h_{t−1}), h_t ~ p(h | v_t). The update follows
//! ⟨v₀ E[h | v₀]ᵀ⟩ − ⟨v_k E[h | v_k]ᵀ⟩ (and the same for the biases), minus
//! a weight cost λ·W, with momentum: the objective handed to the shared
//! minibatch loop is the negative of that statistic, so SGD's step
//! v ← μv − η·g is Hinton's `vishidinc` update. As k grows the update's
//! expectation tends to the log-likelihood's gradient.
//!
//! The figure reported per epoch is the reconstruction error
//! Σ (v₀ − E[v₁ | h₀])² per row, as Hinton's code prints it.

use crate::error::{Error, Result};
use crate::tensor::gemm::{gemm, Par};
use crate::tensor::rng::{seeded, Rng};
use crate::tensor::{add_column_sums, add_row_bias};
use crate::train::{
    fit_loop_with, Checkpointing, Finished, Fit, FitReport, Minibatches, Objective, Observer, Shuffle,
    StepRule,
};
use rand::Rng as _;
use rand_distr::{Distribution, StandardNormal};
use serde::{Deserialize, Serialize};
use std::ops::Range;

/// The hidden units of an RBM.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Hidden {
    /// Logistic units with binary states.
    #[default]
    Binary,
    /// Linear units with unit-variance Gaussian noise.
    Gaussian,
}

impl std::str::FromStr for Hidden {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "binary" => Ok(Hidden::Binary),
            "gaussian" | "linear" => Ok(Hidden::Gaussian),
            _ => Err(format!("hidden units `{s}` should be binary or gaussian")),
        }
    }
}

/// How an RBM is trained (Hinton & Salakhutdinov's values by default).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RbmConfig {
    /// Gibbs steps of CD-k.
    pub k: usize,
    pub epochs: usize,
    pub batch: usize,
    /// Learning rate for binary hidden units.
    pub lr: f32,
    /// Learning rate for Gaussian hidden units (they need a smaller one).
    pub lr_gaussian: f32,
    /// Momentum for the first `momentum_after` epochs, then `momentum`.
    pub initial_momentum: f32,
    pub momentum: f32,
    pub momentum_after: usize,
    /// Weight cost λ (L2 on W, not on biases).
    pub weight_cost: f32,
    /// Standard deviation of the initial weights.
    pub init_scale: f32,
    pub seed: u64,
    /// Threads; 0 = all cores.
    pub threads: usize,
}

impl Default for RbmConfig {
    fn default() -> Self {
        RbmConfig {
            k: 1,
            epochs: 10,
            batch: 100,
            lr: 0.1,
            lr_gaussian: 0.001,
            initial_momentum: 0.5,
            momentum: 0.9,
            momentum_after: 5,
            weight_cost: 2e-4,
            init_scale: 0.1,
            seed: 1,
            threads: 1,
        }
    }
}

impl RbmConfig {
    pub fn validate(&self, field: &str) -> Result<()> {
        let bad = |k: &str, why: &str| Err(Error::config(&format!("{field}.{k}"), why));
        if self.k == 0 {
            return bad("k", "CD needs at least one Gibbs step");
        }
        if self.batch == 0 {
            return bad("batch", "must be at least 1");
        }
        for (k, v) in [("lr", self.lr), ("lr_gaussian", self.lr_gaussian)] {
            if !(v.is_finite() && v > 0.0) {
                return bad(k, "must be a positive number");
            }
        }
        for (k, v) in [
            ("initial_momentum", self.initial_momentum),
            ("momentum", self.momentum),
        ] {
            if !(0.0..1.0).contains(&v) {
                return bad(k, "must be in [0, 1)");
            }
        }
        crate::train::check_non_negative(&format!("{field}.weight_cost"), self.weight_cost, "none")?;
        crate::train::check_non_negative(&format!("{field}.init_scale"), self.init_scale, "")?;
        Ok(())
    }

    fn par(&self) -> Par {
        Par::from_threads(
            crate::train::TrainConfig {
                threads: self.threads,
                ..Default::default()
            }
            .resolved_threads(),
        )
    }
}

/// An RBM: `W [n_vis, n_hid]`, visible biases b and hidden biases c, in one
/// vector `[W | b | c]`.
#[derive(Debug, Clone, PartialEq)]
pub struct Rbm {
    pub n_vis: usize,
    pub n_hid: usize,
    pub hidden: Hidden,
    pub params: Vec<f32>,
}

impl Rbm {
    /// Weights drawn from N(0, scale²), zero biases.
    pub fn new(n_vis: usize, n_hid: usize, hidden: Hidden, scale: f32, rng: &mut Rng) -> Rbm {
        let mut params = vec![0.0f32; n_vis * n_hid + n_vis + n_hid];
        for w in &mut params[..n_vis * n_hid] {
            let z: f32 = StandardNormal.sample(rng);
            *w = scale * z;
        }
        Rbm {
            n_vis,
            n_hid,
            hidden,
            params,
        }
    }

    fn w_range(&self) -> Range<usize> {
        0..self.n_vis * self.n_hid
    }
    fn b_range(&self) -> Range<usize> {
        let s = self.n_vis * self.n_hid;
        s..s + self.n_vis
    }
    fn c_range(&self) -> Range<usize> {
        let s = self.n_vis * self.n_hid + self.n_vis;
        s..s + self.n_hid
    }
    pub fn weights(&self) -> &[f32] {
        &self.params[self.w_range()]
    }
    pub fn visible_bias(&self) -> &[f32] {
        &self.params[self.b_range()]
    }
    pub fn hidden_bias(&self) -> &[f32] {
        &self.params[self.c_range()]
    }

    /// E[h | v] for `rows` rows of `v` into `out` `[rows, n_hid]`.
    pub fn hidden_means(&self, v: &[f32], rows: usize, out: &mut [f32], par: Par) {
        hidden_means(
            &self.params,
            self.n_vis,
            self.n_hid,
            self.hidden,
            v,
            rows,
            out,
            par,
        );
    }

    /// p(v = 1 | h) for `rows` rows of `h` into `out` `[rows, n_vis]`.
    pub fn visible_probs(&self, h: &[f32], rows: usize, out: &mut [f32], par: Par) {
        visible_probs(&self.params, self.n_vis, self.n_hid, h, rows, out, par);
    }

    /// The free energy F(v) (up to a constant for Gaussian hidden units),
    /// with p(v) = e^{−F(v)} / Z.
    pub fn free_energy(&self, v: &[f32]) -> f64 {
        let (w, b, c) = (self.weights(), self.visible_bias(), self.hidden_bias());
        let mut f = -v.iter().zip(b).map(|(&v, &b)| v as f64 * b as f64).sum::<f64>();
        for j in 0..self.n_hid {
            let mut a = c[j] as f64;
            for i in 0..self.n_vis {
                a += v[i] as f64 * w[i * self.n_hid + j] as f64;
            }
            f -= match self.hidden {
                // ln(1 + eᵃ), stable.
                Hidden::Binary => a.max(0.0) + (-a.abs()).exp().ln_1p(),
                // ∫ e^{ah − h²/2} dh = √(2π)·e^{a²/2}; the √(2π) cancels in Z.
                Hidden::Gaussian => 0.5 * a * a,
            };
        }
        f
    }

    /// ln Z by summing e^{−F(v)} over all 2ⁿ visible vectors: only for
    /// small RBMs (at most 24 visible units).
    pub fn log_partition_exact(&self) -> Result<f64> {
        if self.n_vis > 24 {
            return Err(Error::config(
                "rbm",
                format!(
                    "the exact partition function enumerates 2^{} visible vectors: at most 24 visible units",
                    self.n_vis
                ),
            ));
        }
        let mut v = vec![0.0f32; self.n_vis];
        let neg: Vec<f64> = (0..1u64 << self.n_vis)
            .map(|s| {
                for (i, x) in v.iter_mut().enumerate() {
                    *x = ((s >> i) & 1) as f32;
                }
                -self.free_energy(&v)
            })
            .collect();
        let m = neg.iter().copied().fold(f64::MIN, f64::max);
        Ok(m + neg.iter().map(|&x| (x - m).exp()).sum::<f64>().ln())
    }

    /// The exact mean log-likelihood of the rows of `data` (small RBMs only,
    /// see [`Rbm::log_partition_exact`]).
    pub fn log_likelihood_exact(&self, data: &[f32]) -> Result<f64> {
        let lz = self.log_partition_exact()?;
        let n = data.len() / self.n_vis;
        let s: f64 = data.chunks(self.n_vis).map(|v| -self.free_energy(v) - lz).sum();
        Ok(s / n.max(1) as f64)
    }

    /// One CD-k estimate over the rows of `v` (drawing the chain from
    /// `rng`): the gradient of the negative log-likelihood it stands for,
    /// `[dW | db | dc]` averaged over rows (no weight cost), and the mean
    /// reconstruction error.
    pub fn cd_gradient(&self, v: &[f32], k: usize, rng: &mut Rng) -> (Vec<f32>, f64) {
        let o = CdObjective {
            rbm: self,
            data: v,
            k,
            weight_cost: 0.0,
        };
        let n = v.len() / self.n_vis;
        let mut batch = o.new_batch(n);
        o.load(&(0..n).collect::<Vec<_>>(), &mut batch, rng);
        let mut ws = o.new_workspace(n);
        let mut g = vec![0.0f32; self.params.len()];
        let sum = o.loss_grad_sum(&self.params, Some(&mut g), &batch, 0..n, &mut ws, Par::Seq);
        let f = o.finish(&self.params, &mut g, sum, n);
        (g, f.objective)
    }

    /// Trains on the rows of `data` (`[n, n_vis]`, values in [0, 1]) by
    /// CD-k with momentum and weight cost, checkpointed as `ck` says; the
    /// epoch's figure is the mean reconstruction error.
    pub fn fit(
        &mut self,
        data: &[f32],
        cfg: &RbmConfig,
        obs: &mut dyn Observer,
        ck: Checkpointing<'_>,
    ) -> Result<FitReport> {
        cfg.validate("rbm")?;
        crate::models::check_values("rbm data", data, self.n_vis, true)?;
        let n = data.len() / self.n_vis;
        if n == 0 {
            return Err(Error::config("data", "no rows to train the RBM on"));
        }
        let lr = match self.hidden {
            Hidden::Binary => cfg.lr,
            Hidden::Gaussian => cfg.lr_gaussian,
        };
        let model = self.clone();
        let o = CdObjective {
            rbm: &model,
            data,
            k: cfg.k,
            weight_cost: cfg.weight_cost,
        };
        let par = cfg.par();
        let mut run = RbmFit {
            batches: Minibatches::new(&o, cfg.batch, 1, par, Shuffle::Fresh),
            o: &o,
            params: self.params.clone(),
            opt: StepRule::Sgd(crate::optim::Sgd::new(lr, cfg.initial_momentum)),
            rng: seeded(cfg.seed ^ 0x5b3d),
            cfg,
        };
        obs.on_start(cfg.epochs, run.batches.batches_per_epoch());
        let report = fit_loop_with(&mut run, cfg.epochs, 0, obs, "rbm.lr", ck)?;
        self.params = run.params;
        Ok(report)
    }
}

#[allow(clippy::too_many_arguments)]
fn hidden_means(
    p: &[f32],
    nv: usize,
    nh: usize,
    hidden: Hidden,
    v: &[f32],
    rows: usize,
    out: &mut [f32],
    par: Par,
) {
    let out = &mut out[..rows * nh];
    gemm(
        rows,
        nh,
        nv,
        1.0,
        &v[..rows * nv],
        false,
        &p[..nv * nh],
        false,
        false,
        out,
        par,
    );
    add_row_bias(out, &p[nv * nh + nv..nv * nh + nv + nh], nh);
    if hidden == Hidden::Binary {
        out.iter_mut()
            .for_each(|a| *a = crate::layers::activation::sigmoid(*a));
    }
}

fn visible_probs(p: &[f32], nv: usize, nh: usize, h: &[f32], rows: usize, out: &mut [f32], par: Par) {
    let out = &mut out[..rows * nv];
    gemm(
        rows,
        nv,
        nh,
        1.0,
        &h[..rows * nh],
        false,
        &p[..nv * nh],
        true,
        false,
        out,
        par,
    );
    add_row_bias(out, &p[nv * nh..nv * nh + nv], nv);
    out.iter_mut()
        .for_each(|a| *a = crate::layers::activation::sigmoid(*a));
}

/// A loaded batch: the data rows and the chain's random draws, each row's
/// `k·(n_hid + n_vis)` draws together (uniforms for binary units, standard
/// normals for Gaussian hidden units) so that any split of the rows over
/// workers gives the same chains.
pub struct CdBatch {
    v: Vec<f32>,
    draws: Vec<f32>,
}

/// One worker's chain state.
pub struct CdWorkspace {
    ph0: Vec<f32>,
    h: Vec<f32>,
    pv: Vec<f32>,
    v: Vec<f32>,
    ph: Vec<f32>,
}

/// CD-k as an objective of the shared minibatch loop (see the module docs).
pub struct CdObjective<'a> {
    pub rbm: &'a Rbm,
    pub data: &'a [f32],
    pub k: usize,
    pub weight_cost: f32,
}

impl CdObjective<'_> {
    fn per_row(&self) -> usize {
        self.k * (self.rbm.n_hid + self.rbm.n_vis)
    }
}

impl Objective for CdObjective<'_> {
    type Batch = CdBatch;
    type Workspace = CdWorkspace;

    fn n_params(&self) -> usize {
        self.rbm.params.len()
    }
    fn n_examples(&self) -> usize {
        self.data.len() / self.rbm.n_vis
    }
    fn new_batch(&self, cap: usize) -> CdBatch {
        CdBatch {
            v: Vec::with_capacity(cap * self.rbm.n_vis),
            draws: Vec::with_capacity(cap * self.per_row()),
        }
    }
    fn new_workspace(&self, rows: usize) -> CdWorkspace {
        let (nv, nh) = (self.rbm.n_vis, self.rbm.n_hid);
        CdWorkspace {
            ph0: vec![0.0; rows * nh],
            h: vec![0.0; rows * nh],
            pv: vec![0.0; rows * nv],
            v: vec![0.0; rows * nv],
            ph: vec![0.0; rows * nh],
        }
    }
    fn load(&self, idx: &[usize], b: &mut CdBatch, rng: &mut Rng) {
        let (nv, nh) = (self.rbm.n_vis, self.rbm.n_hid);
        b.v.clear();
        b.draws.clear();
        for &i in idx {
            b.v.extend_from_slice(&self.data[i * nv..(i + 1) * nv]);
            for _ in 0..self.k {
                match self.rbm.hidden {
                    Hidden::Binary => b.draws.extend((0..nh).map(|_| rng.random::<f32>())),
                    Hidden::Gaussian => b.draws.extend((0..nh).map(|_| {
                        let z: f32 = StandardNormal.sample(rng);
                        z
                    })),
                }
                b.draws.extend((0..nv).map(|_| rng.random::<f32>()));
            }
        }
    }

    fn loss_grad_sum(
        &self,
        p: &[f32],
        grad: Option<&mut [f32]>,
        b: &CdBatch,
        rows: Range<usize>,
        ws: &mut CdWorkspace,
        par: Par,
    ) -> f64 {
        let (nv, nh, k) = (self.rbm.n_vis, self.rbm.n_hid, self.k);
        let hidden = self.rbm.hidden;
        let n = rows.len();
        let v0 = &b.v[rows.start * nv..rows.end * nv];
        let draws = &b.draws[rows.start * self.per_row()..rows.end * self.per_row()];
        hidden_means(p, nv, nh, hidden, v0, n, &mut ws.ph0, par);
        ws.ph[..n * nh].copy_from_slice(&ws.ph0[..n * nh]);
        let mut err = 0.0f64;
        for t in 0..k {
            // h_t from E[h | v_t], then v_{t+1} from p(v | h_t).
            for r in 0..n {
                let d = &draws[r * self.per_row() + t * (nh + nv)..];
                let (mean, h) = (&ws.ph[r * nh..(r + 1) * nh], &mut ws.h[r * nh..(r + 1) * nh]);
                match hidden {
                    Hidden::Binary => h
                        .iter_mut()
                        .zip(mean)
                        .zip(&d[..nh])
                        .for_each(|((h, &m), &u)| *h = if u < m { 1.0 } else { 0.0 }),
                    Hidden::Gaussian => h
                        .iter_mut()
                        .zip(mean)
                        .zip(&d[..nh])
                        .for_each(|((h, &m), &z)| *h = m + z),
                }
            }
            visible_probs(p, nv, nh, &ws.h, n, &mut ws.pv, par);
            if t == 0 {
                err = v0
                    .iter()
                    .zip(&ws.pv[..n * nv])
                    .map(|(&a, &b)| ((a - b) as f64).powi(2))
                    .sum();
            }
            for r in 0..n {
                let u = &draws[r * self.per_row() + t * (nh + nv) + nh..][..nv];
                let (pv, v) = (&ws.pv[r * nv..(r + 1) * nv], &mut ws.v[r * nv..(r + 1) * nv]);
                v.iter_mut()
                    .zip(pv)
                    .zip(u)
                    .for_each(|((v, &q), &u)| *v = if u < q { 1.0 } else { 0.0 });
            }
            hidden_means(p, nv, nh, hidden, &ws.v, n, &mut ws.ph, par);
        }
        if let Some(g) = grad {
            // g += v_kᵀ E[h | v_k] − v₀ᵀ E[h | v₀] (the negative statistic).
            let (gw, rest) = g.split_at_mut(nv * nh);
            let (gb, gc) = rest.split_at_mut(nv);
            gemm(
                nv,
                nh,
                n,
                1.0,
                &ws.v[..n * nv],
                true,
                &ws.ph[..n * nh],
                false,
                true,
                gw,
                par,
            );
            gemm(nv, nh, n, -1.0, v0, true, &ws.ph0[..n * nh], false, true, gw, par);
            add_column_sums(gb, &ws.v[..n * nv], n, nv);
            add_column_sums(gc, &ws.ph[..n * nh], n, nh);
            let mut neg_b = vec![0.0f32; nv];
            let mut neg_c = vec![0.0f32; nh];
            add_column_sums(&mut neg_b, v0, n, nv);
            add_column_sums(&mut neg_c, &ws.ph0[..n * nh], n, nh);
            gb.iter_mut().zip(&neg_b).for_each(|(g, &d)| *g -= d);
            gc.iter_mut().zip(&neg_c).for_each(|(g, &d)| *g -= d);
        }
        err
    }

    fn finish(&self, p: &[f32], grad: &mut [f32], loss_sum: f64, n: usize) -> Finished {
        let inv = 1.0 / n.max(1) as f32;
        crate::tensor::simd::scale(grad, inv);
        let nw = self.rbm.n_vis * self.rbm.n_hid;
        if self.weight_cost > 0.0 {
            grad[..nw]
                .iter_mut()
                .zip(&p[..nw])
                .for_each(|(g, &w)| *g += self.weight_cost * w);
        }
        Finished {
            loss: loss_sum,
            objective: loss_sum / n.max(1) as f64,
        }
    }
}

/// RBM training lent to the shared epoch loop: momentum switched by epoch,
/// no validation.
struct RbmFit<'a> {
    o: &'a CdObjective<'a>,
    batches: Minibatches<CdBatch, CdWorkspace>,
    params: Vec<f32>,
    opt: StepRule,
    rng: Rng,
    cfg: &'a RbmConfig,
}

impl Fit for RbmFit<'_> {
    fn epoch(&mut self, obs: &mut dyn Observer) -> Result<(f64, u64)> {
        if let StepRule::Sgd(s) = &mut self.opt {
            s.momentum = if self.batches.epochs < self.cfg.momentum_after {
                self.cfg.initial_momentum
            } else {
                self.cfg.momentum
            };
        }
        Ok(self
            .batches
            .run_epoch(self.o, &mut self.params, &mut self.opt, &mut self.rng, obs))
    }
    fn validate(&mut self) -> Result<Option<f64>> {
        Ok(None)
    }
    crate::train::minibatch_fit_state!(params, rng, opt, batches);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn free_energy_matches_a_sum_over_hidden_states() {
        let mut rng = seeded(3);
        let m = Rbm::new(3, 2, Hidden::Binary, 1.0, &mut rng);
        let v = [1.0f32, 0.0, 1.0];
        // e^{−F(v)} = Σ_h e^{−E(v, h)}.
        let (w, b, c) = (m.weights(), m.visible_bias(), m.hidden_bias());
        let mut z = 0.0f64;
        for s in 0..4u32 {
            let h = [(s & 1) as f64, ((s >> 1) & 1) as f64];
            let mut e = 0.0;
            for i in 0..3 {
                e += b[i] as f64 * v[i] as f64;
                for j in 0..2 {
                    e += v[i] as f64 * w[i * 2 + j] as f64 * h[j];
                }
            }
            e += c[0] as f64 * h[0] + c[1] as f64 * h[1];
            z += e.exp();
        }
        assert!((m.free_energy(&v) + z.ln()).abs() < 1e-9);
    }
}

//! The sparse autoencoder of the UFLDL exercise: untied sigmoid encoder,
//! sigmoid (data in [0, 1]) or linear (e.g. whitened data) decoder.
//!
//! For m examples X `[m, V]`:
//!   A = σ(X·W₁ + b₁)  `[m, H]`,   Z = g(A·W₂ + b₂)  `[m, V]`,
//!   ρ̂_j = (1/m)·Σ_i A_ij  (the mean activation over the whole batch),
//!   J = (1/2m)·Σ‖x − z‖² + (λ/2)·(‖W₁‖² + ‖W₂‖²) + β·Σ_j KL(ρ‖ρ̂_j),
//!   KL(ρ‖ρ̂) = ρ·ln(ρ/ρ̂) + (1−ρ)·ln((1−ρ)/(1−ρ̂)).
//! Gradient, all by GEMM over the batch (no per-example loop):
//!   δ₃ = (Z − X)⊙g′/m;   δ₂ = (δ₃·W₂ᵀ + (β/m)·(−ρ/ρ̂ + (1−ρ)/(1−ρ̂)))⊙A⊙(1−A);
//!   dW₂ = Aᵀδ₃ + λW₂;  db₂ = Σδ₃;  dW₁ = Xᵀδ₂ + λW₁;  db₁ = Σδ₂.
//! The sparsity term's gradient enters δ₂, ρ̂ is averaged over the batch, and
//! weight decay leaves the biases alone: the three bugs the exercise warns of.

#[cfg(feature = "cuda")]
pub mod gpu;

use crate::error::{Error, Result};
use crate::io::safetensors::{self as st, NamedTensor};
use crate::layers::activation::Activation;
use crate::layers::dense::Dense;
use crate::models::scaler::{self, Scaler};
use crate::optim::lbfgs::{LbfgsConfig, LbfgsReport};
use crate::tensor::gemm::{gemm, gemm_indexed, Par, SparseIndex};
use crate::tensor::par;
use crate::tensor::rng::seeded;
use crate::tensor::Real;
use crate::train::Observer;
use ndarray::ArrayView2;
use rand::Rng as _;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::ops::Range;
use std::path::Path;

/// A sparse autoencoder's shape and penalties.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SparseConfig {
    /// Visible units; 0 means "from the data".
    pub n_vis: usize,
    pub n_hid: usize,
    /// Target mean activation ρ.
    pub sparsity_target: f64,
    /// Weight β of the sparsity penalty.
    pub sparsity_weight: f64,
    /// Weight decay λ (weights only).
    pub weight_decay: f64,
    /// `sigmoid` for data in [0, 1], `identity` for real-valued data.
    pub output_activation: Activation,
    /// Standardise each input feature by the training data's mean and
    /// standard deviation, kept in the model (needs the identity output).
    pub standardize: bool,
    /// Seed of the initialisation U(±√(6/(n_vis + n_hid + 1))).
    pub seed: u64,
}

impl Default for SparseConfig {
    fn default() -> Self {
        SparseConfig {
            n_vis: 0,
            n_hid: 196,
            sparsity_target: 0.1,
            sparsity_weight: 3.0,
            weight_decay: 3e-3,
            output_activation: Activation::Sigmoid,
            standardize: false,
            seed: 1,
        }
    }
}

impl SparseConfig {
    pub fn validate(&self) -> Result<()> {
        if self.n_hid == 0 {
            return Err(Error::config("model.n_hid", "hidden units must be at least 1"));
        }
        if !(self.sparsity_target > 0.0 && self.sparsity_target < 1.0) {
            return Err(Error::config(
                "model.sparsity_target",
                format!("ρ = {} is not in (0, 1)", self.sparsity_target),
            ));
        }
        crate::train::check_non_negative("model.sparsity_weight", self.sparsity_weight, "no sparsity term")?;
        crate::train::check_non_negative("model.weight_decay", self.weight_decay, "no decay")?;
        if self.standardize && self.output_activation != Activation::Identity {
            return Err(Error::config(
                "model.standardize",
                "standardised data is real-valued: it needs output_activation = \"identity\" (--output identity)",
            ));
        }
        if !matches!(self.output_activation, Activation::Sigmoid | Activation::Identity) {
            return Err(Error::config(
                "model.output_activation",
                "a sparse autoencoder's output is sigmoid or identity",
            ));
        }
        Ok(())
    }
}

/// `[W₁ | b₁ | W₂ | b₂]` in one flat vector.
#[derive(Debug, Clone, PartialEq)]
pub struct SparseLayout {
    pub w1: Range<usize>,
    pub b1: Range<usize>,
    pub w2: Range<usize>,
    pub b2: Range<usize>,
    pub len: usize,
}

impl SparseLayout {
    pub fn new(v: usize, h: usize) -> SparseLayout {
        let w1 = 0..v * h;
        let b1 = w1.end..w1.end + h;
        let w2 = b1.end..b1.end + h * v;
        let b2 = w2.end..w2.end + v;
        SparseLayout {
            len: b2.end,
            w1,
            b1,
            w2,
            b2,
        }
    }
}

/// The cost's parts, for reporting.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct SparseCost {
    pub total: f64,
    pub reconstruction: f64,
    pub weight_decay: f64,
    pub sparsity: f64,
    /// Mean of ρ̂ over the hidden units.
    pub mean_activation: f64,
}

/// Buffers for one batch size.
#[derive(Debug, Clone, Default)]
pub struct SparseWorkspace<T> {
    a: Vec<T>,
    z: Vec<T>,
    d3: Vec<T>,
    d2: Vec<T>,
    rho_hat: Vec<T>,
    db2: Vec<T>,
    /// The inputs' non-zeros, when [`SparseWorkspace::index_inputs`] was
    /// given the `x` that every call then passes.
    x_index: SparseIndex,
}

impl<T: Real> SparseWorkspace<T> {
    /// Indexes the non-zeros of the inputs `x` (`[m, n_vis]`) once, for the
    /// many evaluations of one fit: the products with `x` then cost in
    /// proportion to its non-zeros (MNIST's pixels are 81% zeros). Calls
    /// with any other slice multiply densely; `x` must stay alive and
    /// unchanged while the workspace is used (the fit's own inputs).
    pub(crate) fn index_inputs(&mut self, x: &[T], m: usize, n_vis: usize) {
        self.x_index = SparseIndex::new(x, m, n_vis);
    }
}

/// Rows the fused element-wise passes take at a time inside a row block:
/// few enough that the activation and the δ step find them in L2.
const TILE_ROWS: usize = 16;

/// The cost of parameters `p` on `x` (`[m, V]`); writes the gradient into
/// `grad` when given (overwriting it).
///
/// Five products; everything element-wise runs in three passes, one after
/// each product that it follows, over blocks of rows: the bias and the
/// activation with the mean activation ρ̂; the output's bias and activation
/// with the squared error, δ₃ and db₂; the sparsity term and σ′ with db₁.
/// The weight gradients start as λW and the products add into them.
pub fn sparse_cost<T: Real>(
    cfg: &SparseConfig,
    p: &[T],
    grad: Option<&mut [T]>,
    x: &[T],
    m: usize,
    ws: &mut SparseWorkspace<T>,
    par: Par,
) -> SparseCost {
    let (v, h) = (cfg.n_vis, cfg.n_hid);
    let lay = SparseLayout::new(v, h);
    assert_eq!(p.len(), lay.len);
    assert_eq!(x.len(), m * v);
    let z0 = T::ZERO;
    ws.a.resize(m * h, z0);
    ws.z.resize(m * v, z0);
    ws.d3.resize(m * v, z0);
    ws.d2.resize(m * h, z0);
    ws.rho_hat.resize(h, z0);
    ws.db2.resize(v, z0);
    let (w1, b1, w2, b2) = (
        &p[lay.w1.clone()],
        &p[lay.b1.clone()],
        &p[lay.w2.clone()],
        &p[lay.b2.clone()],
    );
    let inv_m = T::ONE / T::of(m as f64);
    // A = σ(X·W₁ + b₁); ρ̂ = (1/m)·Σ_i A_i over the whole batch.
    gemm_indexed(&ws.x_index, m, h, v, T::ONE, x, false, w1, false, &mut ws.a, par);
    ws.rho_hat.fill(z0);
    if m > 0 {
        par::row_blocks(&mut ws.a, &mut [], h, &mut ws.rho_hat, |_, a, _, sums| {
            for tile in a.chunks_mut(TILE_ROWS * h) {
                tile.chunks_exact_mut(h).for_each(|row| add(row, b1));
                T::sigmoid_slice(tile);
                tile.chunks_exact(h).for_each(|row| add(sums, row));
            }
            0.0
        });
    }
    ws.rho_hat.iter_mut().for_each(|r| *r *= inv_m);
    // Z = g(A·W₂ + b₂); reconstruction (1/2m)·Σ‖x − z‖²; δ₃ = (z − x)/m ⊙ g′; db₂ = Σδ₃.
    gemm(m, v, h, T::ONE, &ws.a, false, w2, false, false, &mut ws.z, par);
    let out = cfg.output_activation;
    ws.db2.fill(z0);
    let rec = if m == 0 {
        0.0
    } else {
        par::row_blocks(&mut ws.z, &mut ws.d3, v, &mut ws.db2, |r0, z, d3, sums| {
            let mut sq = vec![z0; v];
            let xs = &x[r0 * v..r0 * v + z.len()];
            for ((zt, dt), xt) in z
                .chunks_mut(TILE_ROWS * v)
                .zip(d3.chunks_mut(TILE_ROWS * v))
                .zip(xs.chunks(TILE_ROWS * v))
            {
                zt.chunks_exact_mut(v).for_each(|row| add(row, b2));
                out.forward_seq(zt);
                for ((zr, dr), xr) in zt
                    .chunks_exact(v)
                    .zip(dt.chunks_exact_mut(v))
                    .zip(xt.chunks_exact(v))
                {
                    match out {
                        Activation::Sigmoid => output_delta::<T, true>(dr, zr, xr, &mut sq, inv_m),
                        _ => {
                            output_delta::<T, false>(dr, zr, xr, &mut sq, inv_m);
                            out.backward_seq(dr, zr);
                        }
                    }
                    add(sums, dr);
                }
            }
            sq.iter().map(|s| s.f64()).sum()
        })
    };
    let rec = T::of(0.5 * rec) * inv_m;
    let rho = T::of(cfg.sparsity_target);
    let beta = T::of(cfg.sparsity_weight);
    let lambda = T::of(cfg.weight_decay);
    let mut kl = T::ZERO;
    for &r in &ws.rho_hat {
        kl += rho * (rho / r).ln_() + (T::ONE - rho) * ((T::ONE - rho) / (T::ONE - r)).ln_();
    }
    let sq = |w: &[T]| par::ranges_sum(w.len(), |r| w[r].iter().map(|&v| (v * v).f64()).sum());
    let decay = T::of(0.5 * (sq(w1) + sq(w2))) * lambda;
    let sparsity = beta * kl;
    let mean_act = ws.rho_hat.iter().map(|r| r.f64()).sum::<f64>() / h.max(1) as f64;
    let cost = SparseCost {
        total: (rec + decay + sparsity).f64(),
        reconstruction: rec.f64(),
        weight_decay: decay.f64(),
        sparsity: sparsity.f64(),
        mean_activation: mean_act,
    };
    let Some(grad) = grad else { return cost };
    let (g1, rest) = grad.split_at_mut(lay.b1.start);
    let (gb1, rest) = rest.split_at_mut(h);
    let (g2, gb2) = rest.split_at_mut(h * v);
    // Weight decay (weights only): dW ← λW, then the products add to it.
    for (g, w) in [(&mut *g1, w1), (&mut *g2, w2)] {
        par::chunks(g, |off, g| {
            g.iter_mut().zip(&w[off..]).for_each(|(g, &w)| *g = lambda * w)
        });
    }
    // Decoder: dW₂ += Aᵀδ₃, db₂ = Σδ₃, and δ₃·W₂ᵀ into δ₂.
    gemm(h, v, m, T::ONE, &ws.a, true, &ws.d3, false, true, g2, par);
    gb2.copy_from_slice(&ws.db2);
    gemm(m, h, v, T::ONE, &ws.d3, false, w2, true, false, &mut ws.d2, par);
    // δ₂ = (δ₃·W₂ᵀ + the sparsity term's gradient, the same for every
    // example) ⊙ A ⊙ (1 − A); db₁ = Σδ₂.
    let sp: Vec<T> = ws
        .rho_hat
        .iter()
        .map(|&r| beta * inv_m * (-rho / r + (T::ONE - rho) / (T::ONE - r)))
        .collect();
    gb1.fill(z0);
    if m > 0 {
        let a = &ws.a;
        par::row_blocks(&mut ws.d2, &mut [], h, gb1, |r0, d2, _, sums| {
            let rows = &a[r0 * h..r0 * h + d2.len()];
            for (dr, ar) in d2.chunks_exact_mut(h).zip(rows.chunks_exact(h)) {
                for (((d, &a), &s), db) in dr.iter_mut().zip(ar).zip(&sp).zip(sums.iter_mut()) {
                    *d = (*d + s) * (a * (T::ONE - a));
                    *db += *d;
                }
            }
            0.0
        });
    }
    // Encoder: dW₁ += Xᵀδ₂.
    gemm_indexed(&ws.x_index, v, h, m, T::ONE, x, true, &ws.d2, true, g1, par);
    cost
}

/// dst += src, element by element.
#[inline]
fn add<T: Real>(dst: &mut [T], src: &[T]) {
    dst.iter_mut().zip(src).for_each(|(d, &s)| *d += s);
}

/// One output row: e = z − x, added as e² into `sq`; δ = e/m, times
/// z(1 − z) when `SIGMOID` (any other activation's g′ is the caller's).
#[inline]
fn output_delta<T: Real, const SIGMOID: bool>(d: &mut [T], z: &[T], x: &[T], sq: &mut [T], inv_m: T) {
    for (((d, &z), &x), sq) in d.iter_mut().zip(z).zip(x).zip(sq.iter_mut()) {
        let e = z - x;
        *sq += e * e;
        let g = e * inv_m;
        *d = if SIGMOID { g * (z * (T::ONE - z)) } else { g };
    }
}

/// A sparse autoencoder trained with L-BFGS on the full batch.
#[derive(Debug, Clone)]
pub struct SparseAutoencoder {
    pub config: SparseConfig,
    params: Vec<f32>,
    /// How [`Estimator::fit`](crate::models::Estimator::fit) trains it.
    pub lbfgs: LbfgsConfig,
    /// Threads for the matrix products; 0 = all cores.
    pub threads: usize,
    /// Where the cost and gradient are computed (L-BFGS stays on the host).
    pub device: crate::train::Device,
    /// The inputs' standardisation, when `config.standardize` (set from the
    /// training data by the first fit).
    pub scaler: Option<Scaler>,
}

impl SparseAutoencoder {
    pub fn new(config: SparseConfig) -> SparseAutoencoder {
        let mut m = SparseAutoencoder {
            config,
            params: Vec::new(),
            lbfgs: LbfgsConfig::default(),
            threads: 1,
            device: crate::train::Device::Cpu,
            scaler: None,
        };
        if m.config.n_vis > 0 {
            m.initialise();
        }
        m
    }

    fn initialise(&mut self) {
        let (v, h) = (self.config.n_vis, self.config.n_hid);
        let lay = SparseLayout::new(v, h);
        let r = (6.0 / (v + h + 1) as f32).sqrt();
        let mut rng = seeded(self.config.seed);
        self.params = vec![0.0; lay.len];
        for range in [lay.w1, lay.w2] {
            for w in &mut self.params[range] {
                *w = rng.random_range(-r..r);
            }
        }
    }

    pub fn params(&self) -> &[f32] {
        &self.params
    }

    /// Sets the parameters (as [`SparseAutoencoder::params`] gave them).
    pub fn set_params(&mut self, p: &[f32]) -> Result<()> {
        if p.len() != self.params.len() {
            return Err(Error::shape(
                "sparse autoencoder parameters",
                self.params.len(),
                p.len(),
            ));
        }
        self.params.copy_from_slice(p);
        Ok(())
    }

    pub fn layout(&self) -> SparseLayout {
        SparseLayout::new(self.config.n_vis, self.config.n_hid)
    }

    /// W₁, `[n_vis, n_hid]`: column j is hidden unit j's filter.
    pub fn weights(&self) -> &[f32] {
        &self.params[self.layout().w1]
    }

    fn check(&self, x: &ArrayView2<f32>) -> Result<()> {
        super::check_columns("data", self.config.n_vis, x.ncols())
    }

    /// Minimises the cost on `x` with L-BFGS; `obs` sees each iteration.
    pub fn fit(
        &mut self,
        x: ArrayView2<f32>,
        lbfgs: &LbfgsConfig,
        par: Par,
        obs: &mut dyn Observer,
    ) -> Result<LbfgsReport> {
        self.fit_with(x, lbfgs, par, obs, crate::train::Checkpointing::default())
    }

    /// [`SparseAutoencoder::fit`], checkpointed after each iteration and
    /// resumed from a checkpoint as `ck` says.
    pub fn fit_with(
        &mut self,
        x: ArrayView2<f32>,
        lbfgs: &LbfgsConfig,
        par: Par,
        obs: &mut dyn Observer,
        ck: crate::train::Checkpointing<'_>,
    ) -> Result<LbfgsReport> {
        self.config.validate()?;
        if self.config.n_vis == 0 || self.params.is_empty() {
            self.config.n_vis = x.ncols();
            self.initialise();
        }
        self.check(&x)?;
        if x.nrows() == 0 {
            return Err(Error::config("train_size", "no training examples"));
        }
        if self.config.standardize && self.scaler.is_none() {
            let xs = x.as_standard_layout();
            self.scaler = Some(Scaler::fit(xs.as_slice().expect("standard layout"), x.ncols()));
        }
        let xs = scaler::rows(self.scaler.as_ref(), &x);
        let (xd, m): (&[f32], usize) = (&xs, x.nrows());
        let cfg = self.config.clone();
        match self.device {
            crate::train::Device::Cpu => {
                let mut ws = SparseWorkspace::default();
                ws.index_inputs(xd, m, cfg.n_vis);
                let f = |p: &[f32], g: &mut [f32]| sparse_cost(&cfg, p, Some(g), xd, m, &mut ws, par).total;
                crate::train::lbfgs_run(&mut self.params, f, lbfgs, obs, ck)
            }
            crate::train::Device::Cuda(ordinal) => self.fit_gpu(ordinal, xd, m, lbfgs, obs, ck),
        }
    }

    /// L-BFGS on the host over the GPU's cost and gradient. A GPU error
    /// mid-fit makes the cost NaN, which ends the line search; the error is
    /// then returned.
    #[cfg(feature = "cuda")]
    fn fit_gpu(
        &mut self,
        ordinal: usize,
        x: &[f32],
        m: usize,
        lbfgs: &LbfgsConfig,
        obs: &mut dyn Observer,
        ck: crate::train::Checkpointing<'_>,
    ) -> Result<LbfgsReport> {
        let gpu = crate::gpu::open(ordinal)?;
        let mut sg = gpu::SparseGpu::new(&gpu, &self.config, x, m)?;
        let mut failed = None;
        let f = |p: &[f32], g: &mut [f32]| match sg.cost(p, Some(g)) {
            Ok(c) => c.total,
            Err(e) => {
                failed.get_or_insert(e);
                f64::NAN
            }
        };
        let report = crate::train::lbfgs_run(&mut self.params, f, lbfgs, obs, ck);
        match failed {
            Some(e) => Err(e),
            None => report,
        }
    }

    #[cfg(not(feature = "cuda"))]
    fn fit_gpu(
        &mut self,
        _: usize,
        _: &[f32],
        _: usize,
        _: &LbfgsConfig,
        _: &mut dyn Observer,
        _: crate::train::Checkpointing<'_>,
    ) -> Result<LbfgsReport> {
        Err(Error::config(
            "train.device",
            "the GPU needs an aekit built with the `cuda` feature (cargo build --release --features cuda)",
        ))
    }

    /// The cost and its parts on `x`.
    pub fn cost(&self, x: ArrayView2<f32>, par: Par) -> Result<SparseCost> {
        self.check(&x)?;
        let xs = scaler::rows(self.scaler.as_ref(), &x);
        let mut ws = SparseWorkspace::default();
        Ok(sparse_cost(
            &self.config,
            &self.params,
            None,
            &xs,
            x.nrows(),
            &mut ws,
            par,
        ))
    }

    /// Hidden activations σ(x·W₁ + b₁).
    pub fn transform(&self, x: ArrayView2<f32>) -> Result<ndarray::Array2<f32>> {
        self.check(&x)?;
        let (v, h) = (self.config.n_vis, self.config.n_hid);
        let lay = self.layout();
        let xs = scaler::rows(self.scaler.as_ref(), &x);
        let n = x.nrows();
        let mut a = vec![0.0f32; n * h];
        Dense::new(&self.params[lay.w1], v, h).forward(&mut a, &xs, &self.params[lay.b1], n, Par::Seq);
        Activation::Sigmoid.forward(&mut a);
        Ok(ndarray::Array2::from_shape_vec((n, h), a).expect("shape"))
    }

    /// Reconstructions z = g(σ(x·W₁ + b₁)·W₂ + b₂) of `x`'s rows.
    pub fn reconstruct(&self, x: ArrayView2<f32>) -> Result<ndarray::Array2<f32>> {
        let codes = self.transform(x)?;
        let (v, h, n) = (self.config.n_vis, self.config.n_hid, codes.nrows());
        let lay = self.layout();
        let mut z = vec![0.0f32; n * v];
        Dense::new(&self.params[lay.w2], h, v).forward(
            &mut z,
            codes.as_slice().expect("owned"),
            &self.params[lay.b2],
            n,
            Par::Seq,
        );
        self.config.output_activation.forward(&mut z);
        if let Some(s) = &self.scaler {
            s.undo(&mut z);
        }
        Ok(ndarray::Array2::from_shape_vec((n, v), z).expect("shape"))
    }

    /// Saves as safetensors: `encoder.weight` `[n_vis, n_hid]`, `encoder.bias`,
    /// `decoder.weight` `[n_hid, n_vis]`, `decoder.bias`, config in metadata.
    pub fn save(&self, path: &Path) -> Result<()> {
        let (v, h) = (self.config.n_vis, self.config.n_hid);
        let l = self.layout();
        let p = &self.params;
        let mut t = vec![
            NamedTensor {
                name: "encoder.weight",
                shape: vec![v, h],
                data: &p[l.w1],
            },
            NamedTensor {
                name: "encoder.bias",
                shape: vec![h],
                data: &p[l.b1],
            },
            NamedTensor {
                name: "decoder.weight",
                shape: vec![h, v],
                data: &p[l.w2],
            },
            NamedTensor {
                name: "decoder.bias",
                shape: vec![v],
                data: &p[l.b2],
            },
        ];
        if let Some(s) = &self.scaler {
            t.extend(s.tensors());
        }
        let mut meta = HashMap::new();
        meta.insert("format".into(), "aekit.sparse".into());
        meta.insert("aekit_version".into(), env!("CARGO_PKG_VERSION").into());
        meta.insert(
            "config".into(),
            toml::to_string(&self.config).expect("config serialises"),
        );
        st::save(path, &t, meta)
    }

    /// Loads a model written by [`SparseAutoencoder::save`] (what
    /// `aekit train --kind sparse` writes).
    pub fn load(path: &Path) -> Result<SparseAutoencoder> {
        let mut f = st::load(path)?;
        f.expect_kind("aekit.sparse")?;
        let config: SparseConfig = toml::from_str(f.meta("config")?)
            .map_err(|e| Error::format(path, format!("bad model config in metadata: {e}")))?;
        config
            .validate()
            .map_err(|e| Error::format(path, e.to_string()))?;
        let (v, h) = (config.n_vis, config.n_hid);
        if v == 0 || f.shape_of("encoder.weight") != Some(vec![v, h]) {
            return Err(Error::format(
                path,
                format!(
                    "its config declares {v}×{h} units but `encoder.weight` has shape {:?}",
                    f.shape_of("encoder.weight")
                ),
            ));
        }
        let mut m = SparseAutoencoder::new(config);
        let l = m.layout();
        m.params[l.w1].copy_from_slice(&f.take("encoder.weight", &[v, h])?);
        m.params[l.b1].copy_from_slice(&f.take("encoder.bias", &[h])?);
        m.params[l.w2].copy_from_slice(&f.take("decoder.weight", &[h, v])?);
        m.params[l.b2].copy_from_slice(&f.take("decoder.bias", &[v])?);
        m.scaler = Scaler::from_file(&mut f, v, m.config.standardize, path)?;
        Ok(m)
    }
}

/// The same cost and gradient computed the plain way: one example at a
/// time, with matrix-vector loops and no GEMM. The reference that
/// [`sparse_cost`] is tested and timed against.
pub fn sparse_cost_plain(cfg: &SparseConfig, p: &[f64], grad: &mut [f64], x: &[f64], m: usize) -> f64 {
    let (v, h) = (cfg.n_vis, cfg.n_hid);
    let lay = SparseLayout::new(v, h);
    let (w1, b1, w2, b2) = (
        &p[lay.w1.clone()],
        &p[lay.b1.clone()],
        &p[lay.w2.clone()],
        &p[lay.b2.clone()],
    );
    let sig = |a: f64| 1.0 / (1.0 + (-a).exp());
    let linear = cfg.output_activation == Activation::Identity;
    // First pass: ρ̂ needs every example's hidden activations.
    let mut acts = vec![0.0; m * h];
    let mut rho_hat = vec![0.0; h];
    for i in 0..m {
        for j in 0..h {
            let mut s = b1[j];
            for k in 0..v {
                s += x[i * v + k] * w1[k * h + j];
            }
            acts[i * h + j] = sig(s);
            rho_hat[j] += sig(s) / m as f64;
        }
    }
    let (rho, beta, lambda) = (cfg.sparsity_target, cfg.sparsity_weight, cfg.weight_decay);
    grad.fill(0.0);
    let mut rec = 0.0;
    let mut d3 = vec![0.0; v];
    let mut d2 = vec![0.0; h];
    for i in 0..m {
        let a = &acts[i * h..(i + 1) * h];
        for k in 0..v {
            let mut s = b2[k];
            for j in 0..h {
                s += a[j] * w2[j * v + k];
            }
            let z = if linear { s } else { sig(s) };
            let e = z - x[i * v + k];
            rec += 0.5 * e * e / m as f64;
            d3[k] = e / m as f64 * if linear { 1.0 } else { z * (1.0 - z) };
        }
        for j in 0..h {
            let mut s = beta / m as f64 * (-rho / rho_hat[j] + (1.0 - rho) / (1.0 - rho_hat[j]));
            for k in 0..v {
                s += w2[j * v + k] * d3[k];
            }
            d2[j] = s * a[j] * (1.0 - a[j]);
        }
        for j in 0..h {
            for k in 0..v {
                grad[lay.w2.start + j * v + k] += a[j] * d3[k];
                grad[lay.w1.start + k * h + j] += x[i * v + k] * d2[j];
            }
            grad[lay.b1.start + j] += d2[j];
        }
        for k in 0..v {
            grad[lay.b2.start + k] += d3[k];
        }
    }
    let mut wsq = 0.0;
    for r in [lay.w1.clone(), lay.w2.clone()] {
        for i in r {
            wsq += p[i] * p[i];
            grad[i] += lambda * p[i];
        }
    }
    let kl: f64 = rho_hat
        .iter()
        .map(|&r| rho * (rho / r).ln() + (1.0 - rho) * ((1.0 - rho) / (1.0 - r)).ln())
        .sum();
    rec + 0.5 * lambda * wsq + beta * kl
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_penalty_weight_is_refused_under_its_own_name_when_negative_or_not_finite() {
        for (bad, field) in [
            (f64::INFINITY, "model.weight_decay"),
            (-1.0, "model.weight_decay"),
            (f64::NAN, "model.sparsity_weight"),
        ] {
            let mut c = SparseConfig::default();
            if field.ends_with("decay") {
                c.weight_decay = bad;
            } else {
                c.sparsity_weight = bad;
            }
            let e = c.validate().unwrap_err().to_string();
            assert!(
                e.contains(field) && e.contains(&format!("{bad} must be ≥ 0 and finite")),
                "{e}"
            );
        }
        // Zero turns a term off.
        let off = SparseConfig {
            weight_decay: 0.0,
            sparsity_weight: 0.0,
            ..SparseConfig::default()
        };
        off.validate().unwrap();
    }

    #[test]
    fn a_saved_model_loads_back_whole_and_a_wrong_file_is_refused() {
        let mut m = SparseAutoencoder::new(SparseConfig {
            n_vis: 11,
            n_hid: 5,
            output_activation: Activation::Identity,
            ..SparseConfig::default()
        });
        let p: Vec<f32> = (0..m.params().len()).map(|i| (i as f32 * 0.7).sin()).collect();
        m.set_params(&p).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sparse.safetensors");
        m.save(&path).unwrap();
        let back = SparseAutoencoder::load(&path).unwrap();
        assert_eq!(back.config, m.config);
        assert_eq!(back.params(), m.params());
        // A DAE's file is not a sparse autoencoder's.
        let dae = crate::models::DenoisingAutoencoder::new(
            crate::models::DaeConfig {
                n_vis: 11,
                n_hid: 5,
                ..Default::default()
            },
            Default::default(),
        );
        let other = dir.path().join("dae.safetensors");
        dae.save(&other).unwrap();
        let e = SparseAutoencoder::load(&other).unwrap_err().to_string();
        assert!(e.contains("dae.safetensors"), "{e}");
    }

    #[test]
    fn gemm_path_matches_the_plain_per_example_path() {
        // 9 rows: one block; 549: three row blocks of the fused passes,
        // also on three threads, which must give the same bits as one.
        let pool = rayon::ThreadPoolBuilder::new().num_threads(3).build().unwrap();
        for (m, threads) in [(9, 1), (2 * crate::tensor::par::BLOCK_ROWS + 37, 3)] {
            for output in [Activation::Sigmoid, Activation::Identity] {
                let cfg = SparseConfig {
                    n_vis: 13,
                    n_hid: 6,
                    output_activation: output,
                    ..SparseConfig::default()
                };
                let lay = SparseLayout::new(13, 6);
                let mut rng = seeded(2);
                let p: Vec<f64> = (0..lay.len).map(|_| rng.random_range(-0.4..0.4)).collect();
                let x: Vec<f64> = (0..m * 13).map(|_| rng.random_range(0.0..1.0)).collect();
                let mut g_plain = vec![0.0; lay.len];
                let c_plain = sparse_cost_plain(&cfg, &p, &mut g_plain, &x, m);
                let run = |par: Par| {
                    let mut g = vec![0.0; lay.len];
                    let mut ws = SparseWorkspace::default();
                    let c = pool.install(|| sparse_cost(&cfg, &p, Some(&mut g), &x, m, &mut ws, par));
                    (c.total, g)
                };
                let (c, g) = run(Par::from_threads(threads));
                assert!((c - c_plain).abs() < 1e-12, "{c} vs {c_plain}");
                let worst = g
                    .iter()
                    .zip(&g_plain)
                    .map(|(a, b)| (a - b).abs())
                    .fold(0.0, f64::max);
                assert!(worst < 1e-12, "{output:?}, {m} rows: gradient differs by {worst}");
                if threads > 1 {
                    let (c1, g1) = run(Par::Seq);
                    assert_eq!(
                        (c1, &g1),
                        (c, &g),
                        "{output:?}: one thread differs from {threads}"
                    );
                }
            }
        }
    }

    #[test]
    fn the_three_classic_bugs_are_absent() {
        // ρ̂ averaged over the batch: with identical examples, ρ̂ equals one
        // example's activation whatever the batch size.
        let cfg = SparseConfig {
            n_vis: 4,
            n_hid: 3,
            ..SparseConfig::default()
        };
        let lay = SparseLayout::new(4, 3);
        let p: Vec<f64> = (0..lay.len).map(|i| (i as f64 * 0.37).sin() * 0.5).collect();
        let one = [0.2, 0.7, 0.1, 0.9];
        let many: Vec<f64> = one.iter().cycle().take(4 * 50).copied().collect();
        let mut ws = SparseWorkspace::default();
        let a = sparse_cost(&cfg, &p, None, &one, 1, &mut ws, Par::Seq);
        let b = sparse_cost(&cfg, &p, None, &many, 50, &mut ws, Par::Seq);
        assert!(
            (a.mean_activation - b.mean_activation).abs() < 1e-12 && (a.sparsity - b.sparsity).abs() < 1e-12
        );
        // Weight decay leaves biases alone: with data, β and the weights all
        // zero, every bias gradient comes from the reconstruction only.
        let cfg0 = SparseConfig {
            n_vis: 4,
            n_hid: 3,
            sparsity_weight: 0.0,
            weight_decay: 1.0,
            ..SparseConfig::default()
        };
        let mut p0 = vec![0.0; lay.len];
        p0[lay.b1.clone()].fill(5.0);
        let mut g = vec![0.0; lay.len];
        let mut g_plain = vec![0.0; lay.len];
        sparse_cost(&cfg0, &p0, Some(&mut g), &[0.0; 4], 1, &mut ws, Par::Seq);
        sparse_cost_plain(&cfg0, &p0, &mut g_plain, &[0.0; 4], 1);
        assert!(
            g[lay.b1.clone()].iter().all(|&v| v == 0.0),
            "no decay on b₁: {:?}",
            &g[lay.b1.clone()]
        );
        assert_eq!(g, g_plain);
        // The sparsity gradient reaches δ₂: with β > 0 the W₁ gradient changes.
        let mut g_beta = vec![0.0; lay.len];
        let mut g_none = vec![0.0; lay.len];
        let cfg_b = SparseConfig {
            weight_decay: 0.0,
            ..cfg.clone()
        };
        let cfg_n = SparseConfig {
            weight_decay: 0.0,
            sparsity_weight: 0.0,
            ..cfg.clone()
        };
        sparse_cost(&cfg_b, &p, Some(&mut g_beta), &one, 1, &mut ws, Par::Seq);
        sparse_cost(&cfg_n, &p, Some(&mut g_none), &one, 1, &mut ws, Par::Seq);
        assert!(g_beta[lay.w1.clone()]
            .iter()
            .zip(&g_none[lay.w1.clone()])
            .any(|(a, b)| (a - b).abs() > 1e-6));
    }

    #[test]
    fn every_variant_passes_the_exercise_gradient_check() {
        for (label, diff) in crate::models::gradcheck::sparse_suite(64, 25, 100, 3) {
            assert!(diff < 1e-9, "{label}: {diff:e}");
        }
        for (label, diff) in crate::models::gradcheck::dae_suite(7, 5, 4, 3) {
            assert!(diff < 1e-9, "{label}: {diff:e}");
        }
    }
}

//! Stacked denoising autoencoders: greedy (stacked), gradual and hybrid
//! pretraining (Kalmanovich & Chechik), then supervised fine-tuning with a
//! softmax on top (the SdA of Vincent et al. 2010 and the Theano tutorial).
//!
//! The trunk's weights `[W₁ b₁ … W_L b_L]` are one flat vector. Layer j's
//! pretraining DAE is tied: it encodes with (W_j, b_j), the very weights the
//! deep network then uses, and decodes with W_jᵀ and its own b′_j.
//!
//! Schedules, for layer k ≥ 2 with a budget of n epochs (layer 1 is a plain
//! DAE on x in every schedule):
//! - stacked: layers below are frozen; the clean representation h_{k−1} is
//!   corrupted and the tied DAE k reconstructs it;
//! - gradual: layers 1..k train jointly; noise goes on x only; x is
//!   reconstructed from h_k through a new decoder (W′, b′) that is dropped
//!   when the next layer comes;
//! - hybrid f: 2·n·f epochs of stacked training, then n·(1−f) of gradual
//!   (f = 1 is stacked, f = 0 gradual). Every weight update is counted.

use crate::data::Dataset;
use crate::error::{Error, Result};
use crate::io::safetensors::{self as st, NamedTensor};
use crate::layers::Corruption;
use crate::layers::Loss;
use crate::models::dae::{DaeConfig, DenoisingAutoencoder};
use crate::models::deep::{deep_finish, deep_loss_grad, trunk_forward, DeepLayout, DeepWorkspace, HeadKind};
use crate::optim::Sgd;
use crate::tensor::gemm::Par;
use crate::tensor::rng::{seeded, Rng};
use crate::train::{
    fit_loop, EpochMetrics, Finished, Fit, Minibatches, Objective, Observer, Optimizer, Shuffle, TrainConfig,
};
use rand::Rng as _;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::path::Path;
use std::time::Instant;

/// A pretraining schedule.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum Schedule {
    Stacked,
    Gradual,
    /// Fraction f of each new layer's budget spent stacked (see module docs).
    Hybrid(f64),
}

impl Schedule {
    /// (stacked epochs, gradual epochs) for a new layer's budget of n epochs.
    pub fn split(&self, n: usize) -> (usize, usize) {
        let f = match *self {
            Schedule::Stacked => 1.0,
            Schedule::Gradual => 0.0,
            Schedule::Hybrid(f) => f,
        };
        (
            (2.0 * n as f64 * f).round() as usize,
            (n as f64 * (1.0 - f)).round() as usize,
        )
    }
}

impl std::str::FromStr for Schedule {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "stacked" => Ok(Schedule::Stacked),
            "gradual" => Ok(Schedule::Gradual),
            _ => {
                let f = s
                    .strip_prefix("hybrid:")
                    .and_then(|f| f.parse::<f64>().ok())
                    .ok_or_else(|| format!("schedule `{s}` should be stacked, gradual or hybrid:F"))?;
                if (0.0..=1.0).contains(&f) {
                    Ok(Schedule::Hybrid(f))
                } else {
                    Err(format!("hybrid fraction {f} is not in [0, 1]"))
                }
            }
        }
    }
}

impl std::fmt::Display for Schedule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Schedule::Stacked => write!(f, "stacked"),
            Schedule::Gradual => write!(f, "gradual"),
            Schedule::Hybrid(x) => write!(f, "hybrid:{x}"),
        }
    }
}

impl TryFrom<String> for Schedule {
    type Error = String;
    fn try_from(s: String) -> std::result::Result<Self, String> {
        s.parse()
    }
}

impl From<Schedule> for String {
    fn from(s: Schedule) -> String {
        s.to_string()
    }
}

/// Pretraining settings: the stack, and the training loop of each layer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PretrainConfig {
    /// Hidden layer widths, bottom first.
    pub layers: Vec<usize>,
    pub schedule: Schedule,
    /// Corruption of each layer's input when that layer is trained stacked
    /// (one entry: the same for every layer). Gradual training corrupts x
    /// with the first entry.
    pub noise: Vec<Corruption>,
    pub loss: Loss,
    /// Budget n of each later layer (see [`Schedule::split`]).
    pub layer_epochs: usize,
    /// The loop of every layer (SGD): `train.epochs` is the first layer's
    /// epochs; patience is not used (pretraining has no validation).
    pub train: TrainConfig,
}

impl Default for PretrainConfig {
    fn default() -> Self {
        PretrainConfig {
            layers: vec![1000, 1000, 1000],
            schedule: Schedule::Stacked,
            noise: vec![
                Corruption::Mask(0.1),
                Corruption::Mask(0.2),
                Corruption::Mask(0.3),
            ],
            loss: Loss::CrossEntropy,
            layer_epochs: 15,
            train: TrainConfig {
                epochs: 15,
                batch: 20,
                lr: 0.01,
                momentum: 0.0,
                weight_decay: 0.0,
                patience: 0,
                seed: 1,
                threads: 1,
                ..TrainConfig::default()
            },
        }
    }
}

impl PretrainConfig {
    pub fn validate(&self) -> Result<()> {
        if self.layers.is_empty() || self.layers.contains(&0) {
            return Err(Error::config("layers", "give one or more widths of at least 1"));
        }
        if self.noise.is_empty() {
            return Err(Error::config("noise", "give at least one corruption"));
        }
        for n in &self.noise {
            n.validate("noise")?;
        }
        if self.train.optimizer != Optimizer::Sgd {
            return Err(Error::config("train.optimizer", "pretraining runs SGD"));
        }
        self.train.validate()
    }

    fn noise_for(&self, layer: usize) -> Corruption {
        self.noise[layer.min(self.noise.len() - 1)]
    }

    /// The loop of one layer's DAE: these settings with `epochs`, no early
    /// stopping.
    fn train_config(&self, epochs: usize) -> TrainConfig {
        TrainConfig {
            epochs,
            patience: 0,
            ..self.train.clone()
        }
    }
}

/// One epoch of pretraining, as `metrics.csv` lists it.
#[derive(Debug, Clone, Serialize)]
pub struct PretrainEpoch {
    pub layer: usize,
    /// `stacked` or `gradual`.
    pub phase: String,
    pub epoch: usize,
    pub train_loss: f64,
    /// Updates made so far, all layers.
    pub updates: u64,
    /// Seconds since pretraining began.
    pub seconds: f64,
}

/// An observer of [`StackedDae::pretrain`] that records every epoch as a
/// [`PretrainEpoch`] (updates counted over all layers, seconds since it was
/// made) and passes everything on to `inner`.
pub struct PretrainLog<'a> {
    pub rows: Vec<PretrainEpoch>,
    inner: &'a mut dyn Observer,
    stage: (usize, String),
    /// Updates of the stages before this one, and the last count seen.
    base: u64,
    last: u64,
    start: Instant,
}

impl<'a> PretrainLog<'a> {
    pub fn new(inner: &'a mut dyn Observer) -> PretrainLog<'a> {
        PretrainLog {
            rows: Vec::new(),
            inner,
            stage: (0, String::new()),
            base: 0,
            last: 0,
            start: Instant::now(),
        }
    }
}

impl Observer for PretrainLog<'_> {
    fn on_stage(&mut self, layer: usize, phase: &str) {
        self.base += self.last;
        self.last = 0;
        self.stage = (layer, phase.to_string());
        self.inner.on_stage(layer, phase);
    }
    fn on_start(&mut self, epochs: usize, batches: usize) {
        self.inner.on_start(epochs, batches);
    }
    fn on_progress(&mut self, done: usize, total: usize) {
        self.inner.on_progress(done, total);
    }
    fn on_epoch(&mut self, m: &EpochMetrics) {
        self.last = m.updates;
        self.rows.push(PretrainEpoch {
            layer: self.stage.0,
            phase: self.stage.1.clone(),
            epoch: m.epoch,
            train_loss: m.train_loss,
            updates: self.base + m.updates,
            seconds: self.start.elapsed().as_secs_f64(),
        });
        self.inner.on_epoch(m);
    }
    fn on_end(&mut self) {
        self.inner.on_end();
    }
}

/// A minibatch as the deep objective takes it: inputs, and the target or
/// the labels.
#[derive(Default)]
struct Batch {
    input: Vec<f32>,
    target: Vec<f32>,
    labels: Vec<u8>,
}

/// How a batch of the examples at some indices is loaded (and corrupted).
type Fill<'a> = dyn Fn(&[usize], &mut Batch, &mut Rng) + Sync + 'a;

/// A trunk + head objective: mean loss plus ½·λ·Σ‖W‖² over `n` examples
/// that `fill` loads.
struct DeepObjective<'a> {
    lay: &'a DeepLayout,
    n: usize,
    weight_decay: f32,
    fill: &'a Fill<'a>,
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

/// A deep sigmoid encoder with each layer's pretraining decoder bias.
#[derive(Debug, Clone)]
pub struct StackedDae {
    /// `[n_vis, n₁, …, n_L]`.
    pub sizes: Vec<usize>,
    /// `[W₁ b₁ … W_L b_L]`.
    pub trunk: Vec<f32>,
    /// b′_j of layer j's tied DAE, `[n_{j−1}]`.
    pub decoder_bias: Vec<Vec<f32>>,
    /// The decoder (W′ `[n_L, n_vis]`, b′) from the top layer to x, when the
    /// top layer's training ended gradually; otherwise x is reconstructed
    /// through the tied decoders, top down.
    pub top_decoder: Option<(Vec<f32>, Vec<f32>)>,
    /// The softmax layer from fine-tuning (W `[n_L, classes]`, b `[classes]`),
    /// saved with the model so that it can classify.
    pub classifier: Option<(Vec<f32>, Vec<f32>)>,
}

fn uniform(rng: &mut Rng, n: usize, r: f32) -> Vec<f32> {
    (0..n).map(|_| rng.random_range(-r..r)).collect()
}

/// The sigmoid-unit initialisation U(±4·√(6/(fan_in + fan_out))).
fn init_range(a: usize, b: usize) -> f32 {
    4.0 * (6.0 / (a + b) as f32).sqrt()
}

impl StackedDae {
    /// Random weights for widths `[n_vis, layers…]`.
    pub fn new(n_vis: usize, layers: &[usize], seed: u64) -> StackedDae {
        let sizes: Vec<usize> = std::iter::once(n_vis).chain(layers.iter().copied()).collect();
        let lay = DeepLayout::new(&sizes, HeadKind::Softmax { classes: 1 });
        let mut rng = seeded(seed ^ 0x57ac);
        let mut trunk = vec![0.0; lay.trunk_len()];
        for j in 0..lay.depth() {
            let w = lay.layers[j].0.clone();
            let r = init_range(sizes[j], sizes[j + 1]);
            trunk[w.clone()].copy_from_slice(&uniform(&mut rng, w.len(), r));
        }
        let decoder_bias = sizes[..sizes.len() - 1].iter().map(|&n| vec![0.0; n]).collect();
        StackedDae {
            sizes,
            trunk,
            decoder_bias,
            top_decoder: None,
            classifier: None,
        }
    }

    pub fn depth(&self) -> usize {
        self.sizes.len() - 1
    }

    fn layout(&self, upto: usize, head: HeadKind) -> DeepLayout {
        DeepLayout::new(&self.sizes[..=upto], head)
    }

    /// The top code of `x` through the first `upto` layers, `[n, n_upto]`.
    pub fn encode(&self, x: &[f32], n: usize, upto: usize, par: Par) -> Vec<f32> {
        if upto == 0 {
            return x.to_vec();
        }
        let lay = self.layout(upto, HeadKind::Softmax { classes: 1 });
        let mut ws = DeepWorkspace::default();
        let mut out = Vec::with_capacity(n * self.sizes[upto]);
        for start in (0..n).step_by(1000) {
            let b = 1000.min(n - start);
            let xb = &x[start * self.sizes[0]..(start + b) * self.sizes[0]];
            out.extend_from_slice(trunk_forward(&lay, &self.trunk, xb, b, &mut ws, par));
        }
        out
    }

    /// Trains layer `k` (1-based) as a tied DAE on the clean code of the
    /// layers below, corrupted; returns updates made.
    fn train_stacked(
        &mut self,
        x: &Dataset,
        k: usize,
        epochs: usize,
        cfg: &PretrainConfig,
        obs: &mut dyn Observer,
    ) -> Result<u64> {
        let par = cfg.train.par();
        let input = self.encode(&x.x, x.n, k - 1, par);
        let (n_in, n_out) = (self.sizes[k - 1], self.sizes[k]);
        let dae_cfg = DaeConfig {
            n_vis: n_in,
            n_hid: n_out,
            tied: true,
            loss: cfg.loss,
            noise: cfg.noise_for(k - 1),
            ..DaeConfig::default()
        };
        let mut tc = cfg.train_config(epochs);
        tc.seed = cfg.train.seed.wrapping_add(k as u64 * 7919);
        let mut dae = DenoisingAutoencoder::new(dae_cfg, tc);
        let lay = self.layout(k, HeadKind::Softmax { classes: 1 });
        let (w, b) = lay.layers[k - 1].clone();
        {
            let dl = dae.layout().clone();
            let p = dae.params_mut();
            p[dl.w.clone()].copy_from_slice(&self.trunk[w.clone()]);
            p[dl.b_hid.clone()].copy_from_slice(&self.trunk[b.clone()]);
            p[dl.b_vis.clone()].copy_from_slice(&self.decoder_bias[k - 1]);
        }
        let view = ndarray::ArrayView2::from_shape((x.n, n_in), &input).expect("shape");
        let report = dae.fit(view, None, obs)?;
        let dl = dae.layout().clone();
        let p = dae.params();
        self.trunk[w].copy_from_slice(&p[dl.w.clone()]);
        self.trunk[b].copy_from_slice(&p[dl.b_hid.clone()]);
        self.decoder_bias[k - 1].copy_from_slice(&p[dl.b_vis]);
        Ok(report.updates)
    }

    /// Trains layers 1..k jointly to reconstruct x from h_k through a new
    /// decoder; returns updates made.
    fn train_gradual(
        &mut self,
        x: &Dataset,
        k: usize,
        epochs: usize,
        cfg: &PretrainConfig,
        rng: &mut Rng,
        obs: &mut dyn Observer,
    ) -> Result<u64> {
        let par = cfg.train.par();
        let lay = self.layout(
            k,
            HeadKind::Reconstruct {
                n_out: self.sizes[0],
                loss: cfg.loss,
            },
        );
        let tl = lay.trunk_len();
        let mut p = vec![0.0f32; lay.len];
        p[..tl].copy_from_slice(&self.trunk[..tl]);
        let (hw, _) = lay.layers[k].clone();
        p[hw.clone()].copy_from_slice(&uniform(rng, hw.len(), init_range(self.sizes[k], self.sizes[0])));
        let noise = cfg.noise_for(0);
        let nv = self.sizes[0];
        let mut sgd = Sgd::new(cfg.train.lr, cfg.train.momentum);
        let mut updates = 0;
        // Noise on x only; the target is the clean x.
        let fill = |chunk: &[usize], bt: &mut Batch, rng: &mut Rng| {
            bt.target.clear();
            for &i in chunk {
                bt.target.extend_from_slice(x.row(i));
            }
            bt.input.resize(chunk.len() * nv, 0.0);
            noise.apply(&mut bt.input, &bt.target, rng);
        };
        let o = DeepObjective {
            lay: &lay,
            n: x.n,
            weight_decay: cfg.train.weight_decay,
            fill: &fill,
        };
        let mut batches = Minibatches::new(&o, cfg.train.batch, 1, par, Shuffle::Fresh);
        let start = Instant::now();
        obs.on_start(epochs, batches.batches_per_epoch());
        for epoch in 1..=epochs {
            let (mean, u) = batches.run_epoch(&o, &mut p, &mut sgd, rng, obs);
            updates += u;
            obs.on_epoch(&EpochMetrics {
                epoch,
                train_loss: mean,
                val_loss: None,
                seconds: start.elapsed().as_secs_f64(),
                updates,
            });
            if !mean.is_finite() {
                obs.on_end();
                return Err(Error::config(
                    "train.lr",
                    format!("gradual training diverged at layer {k}, epoch {epoch}"),
                ));
            }
        }
        obs.on_end();
        self.trunk[..tl].copy_from_slice(&p[..tl]);
        let (hw, hb) = lay.layers[k].clone();
        self.top_decoder = Some((p[hw].to_vec(), p[hb].to_vec()));
        Ok(updates)
    }

    /// Pretrains every layer by `cfg.schedule` on `x`. `obs` hears each
    /// layer's phases as stages (`on_stage`) and every epoch of them.
    /// Returns the total number of weight updates.
    pub fn pretrain(&mut self, x: &Dataset, cfg: &PretrainConfig, obs: &mut dyn Observer) -> Result<u64> {
        cfg.validate()?;
        if x.dim != self.sizes[0] {
            return Err(Error::shape(
                "pretraining data",
                format!("{} columns", self.sizes[0]),
                format!("{} columns", x.dim),
            ));
        }
        // The trunk will move: a softmax fitted to the old codes would be stale.
        self.classifier = None;
        let mut rng = seeded(cfg.train.seed ^ 0x6a4d);
        let mut updates = 0u64;
        for k in 1..=self.depth() {
            // A decoder from a lower layer's code no longer fits.
            self.top_decoder = None;
            let (s_epochs, g_epochs) = if k == 1 {
                (cfg.train.epochs, 0)
            } else {
                cfg.schedule.split(cfg.layer_epochs)
            };
            for (phase, epochs) in [("stacked", s_epochs), ("gradual", g_epochs)] {
                if epochs == 0 {
                    continue;
                }
                obs.on_stage(k, phase);
                updates += if phase == "stacked" {
                    self.train_stacked(x, k, epochs, cfg, obs)?
                } else {
                    self.train_gradual(x, k, epochs, cfg, &mut rng, obs)?
                };
            }
        }
        Ok(updates)
    }

    /// Mean per image of the cross-entropy −Σ[x ln z + (1−x) ln(1−z)] of
    /// reconstructing clean `x` from the top layer (see `top_decoder`).
    pub fn reconstruction_xent(&self, x: &Dataset, par: Par) -> f64 {
        let l = self.depth();
        let nv = self.sizes[0];
        let mut total = 0.0f64;
        for start in (0..x.n).step_by(1000) {
            let b = 1000.min(x.n - start);
            let xb = &x.x[start * nv..(start + b) * nv];
            let mut h = self.encode(xb, b, l, par);
            let lay = self.layout(l, HeadKind::Softmax { classes: 1 });
            let logits = match &self.top_decoder {
                Some((w, bias)) => {
                    let mut a = vec![0.0f32; b * nv];
                    crate::layers::dense::dense_forward(
                        &mut a,
                        &h,
                        w,
                        bias,
                        b,
                        self.sizes[l],
                        nv,
                        false,
                        par,
                    );
                    a
                }
                None => {
                    let mut a = Vec::new();
                    for j in (0..l).rev() {
                        let (n_lo, n_hi) = (self.sizes[j], self.sizes[j + 1]);
                        a = vec![0.0f32; b * n_lo];
                        let w = &self.trunk[lay.layers[j].0.clone()];
                        crate::layers::dense::dense_forward(
                            &mut a,
                            &h,
                            w,
                            &self.decoder_bias[j],
                            b,
                            n_hi,
                            n_lo,
                            true,
                            par,
                        );
                        if j > 0 {
                            h = a.clone();
                            crate::layers::Activation::Sigmoid.forward(&mut h);
                        }
                    }
                    a
                }
            };
            total += crate::layers::loss::xent_forward(&logits, xb) as f64;
        }
        total / x.n.max(1) as f64
    }

    /// Saves `layers.{j}.weight` `[n_{j−1}, n_j]`, `layers.{j}.bias` and
    /// `layers.{j}.decoder_bias` (j from 0), widths in the metadata.
    pub fn save(&self, path: &Path, metadata: HashMap<String, String>) -> Result<()> {
        let lay = self.layout(self.depth(), HeadKind::Softmax { classes: 1 });
        let names: Vec<(String, String, String)> = (0..self.depth())
            .map(|j| {
                (
                    format!("layers.{j}.weight"),
                    format!("layers.{j}.bias"),
                    format!("layers.{j}.decoder_bias"),
                )
            })
            .collect();
        let mut t = Vec::new();
        for (j, (wn, bn, dn)) in names.iter().enumerate() {
            let (w, b) = &lay.layers[j];
            t.push(NamedTensor {
                name: wn,
                shape: vec![self.sizes[j], self.sizes[j + 1]],
                data: &self.trunk[w.clone()],
            });
            t.push(NamedTensor {
                name: bn,
                shape: vec![self.sizes[j + 1]],
                data: &self.trunk[b.clone()],
            });
            t.push(NamedTensor {
                name: dn,
                shape: vec![self.sizes[j]],
                data: &self.decoder_bias[j],
            });
        }
        if let Some((w, b)) = &self.top_decoder {
            let (l, nv) = (self.depth(), self.sizes[0]);
            t.push(NamedTensor {
                name: "top_decoder.weight",
                shape: vec![self.sizes[l], nv],
                data: w,
            });
            t.push(NamedTensor {
                name: "top_decoder.bias",
                shape: vec![nv],
                data: b,
            });
        }
        if let Some((w, b)) = &self.classifier {
            t.push(NamedTensor {
                name: "classifier.weight",
                shape: vec![self.sizes[self.depth()], b.len()],
                data: w,
            });
            t.push(NamedTensor {
                name: "classifier.bias",
                shape: vec![b.len()],
                data: b,
            });
        }
        let mut meta = metadata;
        meta.insert("format".into(), "aekit.stacked".into());
        meta.insert(
            "sizes".into(),
            self.sizes
                .iter()
                .map(|s| s.to_string())
                .collect::<Vec<_>>()
                .join(","),
        );
        st::save(path, &t, meta)
    }

    /// Loads a model saved by [`save`](Self::save).
    pub fn load(path: &Path) -> Result<StackedDae> {
        let mut f = st::load(path)?;
        let fmt = f.meta("format")?.to_string();
        if fmt != "aekit.stacked" {
            return Err(Error::format(
                path,
                format!("holds a `{fmt}` model, not a stacked autoencoder (make one with `aekit pretrain`)"),
            ));
        }
        let sizes: Vec<usize> = f
            .meta("sizes")?
            .split(',')
            .map(|s| {
                s.parse()
                    .map_err(|_| Error::format(path, "bad `sizes` in metadata"))
            })
            .collect::<Result<_>>()?;
        if sizes.len() < 2 || sizes.contains(&0) {
            return Err(Error::format(path, format!("bad layer widths {sizes:?}")));
        }
        let mut m = StackedDae::new(sizes[0], &sizes[1..], 0);
        let lay = m.layout(m.depth(), HeadKind::Softmax { classes: 1 });
        for j in 0..m.depth() {
            let (w, b) = lay.layers[j].clone();
            m.trunk[w].copy_from_slice(&f.take(&format!("layers.{j}.weight"), &[sizes[j], sizes[j + 1]])?);
            m.trunk[b].copy_from_slice(&f.take(&format!("layers.{j}.bias"), &[sizes[j + 1]])?);
            m.decoder_bias[j] = f.take(&format!("layers.{j}.decoder_bias"), &[sizes[j]])?;
        }
        if f.has("top_decoder.weight") {
            let (l, nv) = (m.depth(), sizes[0]);
            m.top_decoder = Some((
                f.take("top_decoder.weight", &[sizes[l], nv])?,
                f.take("top_decoder.bias", &[nv])?,
            ));
        }
        if let Some(shape) = f.shape_of("classifier.bias") {
            let [k] = shape[..] else {
                return Err(Error::format(
                    path,
                    format!("`classifier.bias` has shape {shape:?}, not [classes]"),
                ));
            };
            let b = f.take("classifier.bias", &[k])?;
            let w = f.take("classifier.weight", &[sizes[m.depth()], k])?;
            m.classifier = Some((w, b));
        }
        Ok(m)
    }
}

/// Fine-tuning settings: the loop (SGD), and a learning-rate decay.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FinetuneConfig {
    /// The learning rate is multiplied by this after every epoch (1: constant).
    pub lr_decay: f32,
    /// The loop; patience counts epochs without a lower validation error.
    pub train: TrainConfig,
}

impl FinetuneConfig {
    /// The loop's ranges, plus the decay.
    pub fn validate(&self) -> Result<()> {
        if self.train.optimizer != Optimizer::Sgd {
            return Err(Error::config("train.optimizer", "fine-tuning runs SGD"));
        }
        self.train.validate()?;
        if !(self.lr_decay > 0.0 && self.lr_decay <= 1.0) {
            return Err(Error::config(
                "lr_decay",
                format!("{} is not in (0, 1]", self.lr_decay),
            ));
        }
        Ok(())
    }
}

impl Default for FinetuneConfig {
    fn default() -> Self {
        FinetuneConfig {
            lr_decay: 1.0,
            train: TrainConfig {
                epochs: 30,
                batch: 20,
                lr: 0.1,
                momentum: 0.0,
                weight_decay: 0.0,
                patience: 10,
                seed: 1,
                threads: 1,
                ..TrainConfig::default()
            },
        }
    }
}

/// One fine-tuning epoch.
#[derive(Debug, Clone, Serialize)]
pub struct FinetuneEpoch {
    pub epoch: usize,
    pub train_loss: f64,
    /// Classification error on the validation set, %.
    pub val_error: f64,
    pub seconds: f64,
}

/// The result of fine-tuning.
#[derive(Debug, Clone, Serialize)]
pub struct FinetuneReport {
    pub history: Vec<FinetuneEpoch>,
    pub best_epoch: usize,
    /// %, at the best epoch.
    pub valid_error: f64,
    pub test_error: f64,
    /// `confusion[true][predicted]` on the test set.
    pub confusion: Vec<Vec<u64>>,
    pub train_seconds: f64,
    pub updates: u64,
}

/// Predicted classes of `x` with trunk + softmax parameters `p`.
fn predict(lay: &DeepLayout, p: &[f32], x: &Dataset, par: Par) -> Vec<u8> {
    let mut ws = DeepWorkspace::default();
    let k = lay.head.n_out();
    let mut out = Vec::with_capacity(x.n);
    for start in (0..x.n).step_by(1000) {
        let b = 1000.min(x.n - start);
        let xb = &x.x[start * x.dim..(start + b) * x.dim];
        deep_loss_grad(lay, p, None, xb, &[], &vec![0u8; b], b, &mut ws, par);
        let logits = &crate::models::deep::head_output(&ws)[..b * k];
        out.extend(logits.chunks_exact(k).map(|r| {
            r.iter()
                .enumerate()
                .fold(
                    (0, f32::NEG_INFINITY),
                    |(bi, bv), (i, &v)| if v > bv { (i, v) } else { (bi, bv) },
                )
                .0 as u8
        }));
    }
    out
}

fn error_pct(pred: &[u8], labels: &[u8]) -> f64 {
    100.0 * pred.iter().zip(labels).filter(|(a, b)| a != b).count() as f64 / labels.len().max(1) as f64
}

impl StackedDae {
    /// The class of each example, by the trunk and the fine-tuned softmax.
    pub fn predict(&self, x: &Dataset, par: Par) -> Result<Vec<u8>> {
        let Some((w, b)) = &self.classifier else {
            return Err(Error::config(
                "model",
                "has no softmax layer: fine-tune it first (`aekit finetune`)",
            ));
        };
        crate::models::check_columns("examples", self.sizes[0], x.dim)?;
        let lay = self.layout(self.depth(), HeadKind::Softmax { classes: b.len() });
        let p: Vec<f32> = self.trunk.iter().chain(w).chain(b).copied().collect();
        Ok(predict(&lay, &p, x, par))
    }

    /// Fine-tunes trunk + a new softmax layer on labelled `train`, with early
    /// stopping on `val`'s classification error (the best weights are kept,
    /// trunk included), and reports on `test`. `obs` hears every epoch, its
    /// `val_loss` being the validation error in %.
    pub fn finetune(
        &mut self,
        train: &Dataset,
        val: &Dataset,
        test: &Dataset,
        cfg: &FinetuneConfig,
        obs: &mut dyn Observer,
    ) -> Result<FinetuneReport> {
        let labels = |d: &Dataset, what: &str| -> Result<Vec<u8>> {
            d.labels
                .clone()
                .ok_or_else(|| Error::config("data", format!("the {what} set has no labels")))
        };
        let (ytr, yva, yte) = (
            labels(train, "training")?,
            labels(val, "validation")?,
            labels(test, "test")?,
        );
        if val.n == 0 || train.n == 0 {
            return Err(Error::config(
                "val_size",
                "fine-tuning needs training and validation examples",
            ));
        }
        let classes = ytr
            .iter()
            .chain(&yva)
            .chain(&yte)
            .map(|&c| c as usize + 1)
            .max()
            .unwrap_or(1);
        cfg.validate()?;
        let par = cfg.train.par();
        let lay = self.layout(self.depth(), HeadKind::Softmax { classes });
        let tl = lay.trunk_len();
        let mut p = vec![0.0f32; lay.len];
        p[..tl].copy_from_slice(&self.trunk);
        let fill = |chunk: &[usize], bt: &mut Batch, _: &mut Rng| {
            bt.input.clear();
            bt.labels.clear();
            for &i in chunk {
                bt.input.extend_from_slice(train.row(i));
                bt.labels.push(ytr[i]);
            }
        };
        let o = DeepObjective {
            lay: &lay,
            n: train.n,
            weight_decay: cfg.train.weight_decay,
            fill: &fill,
        };
        let mut run = DeepFinetune {
            batches: Minibatches::new(&o, cfg.train.batch, 1, par, Shuffle::Fresh),
            o: &o,
            p,
            sgd: Sgd::new(cfg.train.lr, cfg.train.momentum),
            rng: seeded(cfg.train.seed ^ 0xf1e7),
            lr_decay: cfg.lr_decay,
            val,
            yva: &yva,
            par,
        };
        obs.on_start(cfg.train.epochs, run.batches.batches_per_epoch());
        let fit = fit_loop(&mut run, cfg.train.epochs, cfg.train.patience, obs, "train.lr")?;
        let best = run.p;
        let pred = predict(&lay, &best, test, par);
        let mut confusion = vec![vec![0u64; classes]; classes];
        for (&t, &pr) in yte.iter().zip(&pred) {
            confusion[t as usize][pr as usize] += 1;
        }
        self.trunk.copy_from_slice(&best[..tl]);
        let (hw, hb) = &lay.layers[self.depth()];
        self.classifier = Some((best[hw.clone()].to_vec(), best[hb.clone()].to_vec()));
        // The trunk has moved: a decoder trained for the old codes no longer fits.
        self.top_decoder = None;
        let history: Vec<FinetuneEpoch> = fit
            .history
            .iter()
            .map(|m| FinetuneEpoch {
                epoch: m.epoch,
                train_loss: m.train_loss,
                val_error: m.val_loss.unwrap_or(f64::NAN),
                seconds: m.seconds,
            })
            .collect();
        Ok(FinetuneReport {
            best_epoch: fit.best_epoch,
            valid_error: history
                .get(fit.best_epoch.wrapping_sub(1))
                .map_or(f64::NAN, |e| e.val_error),
            test_error: error_pct(&pred, &yte),
            confusion,
            history,
            train_seconds: fit.train_seconds,
            updates: fit.updates,
        })
    }
}

/// Fine-tuning lent to the shared epoch loop.
struct DeepFinetune<'a> {
    o: &'a DeepObjective<'a>,
    batches: Minibatches<Batch, DeepWorkspace<f32>>,
    p: Vec<f32>,
    sgd: Sgd,
    rng: Rng,
    lr_decay: f32,
    val: &'a Dataset,
    yva: &'a [u8],
    par: Par,
}

impl Fit for DeepFinetune<'_> {
    fn epoch(&mut self, obs: &mut dyn Observer) -> Result<(f64, u64)> {
        let r = self
            .batches
            .run_epoch(self.o, &mut self.p, &mut self.sgd, &mut self.rng, obs);
        self.sgd.lr *= self.lr_decay;
        Ok(r)
    }

    fn validate(&mut self) -> Result<Option<f64>> {
        Ok(Some(error_pct(
            &predict(self.o.lay, &self.p, self.val, self.par),
            self.yva,
        )))
    }

    fn params(&self) -> &[f32] {
        &self.p
    }

    fn set_params(&mut self, p: &[f32]) {
        self.p.copy_from_slice(p);
    }
}

//! The deep autoencoder of Hinton & Salakhutdinov (Science, 2006): an
//! encoder n₀-n₁-…-n_L (n_L the code) and its mirror image as decoder,
//! untied, logistic units everywhere except the code layer (linear by
//! default) and a logistic output.
//!
//! Pretraining (optional) fits one layer at a time on the codes of the
//! layers below: as an RBM (binary hidden units, Gaussian ones for a linear
//! code; its weights start encoder layer j and, transposed, decoder layer
//! 2L−1−j with the visible biases), or as a one-hidden-layer denoising
//! autoencoder (masking noise) whose encoder and decoder start the two
//! mirrored layers. Fine-tuning trains the whole by backpropagation of the
//! reconstruction loss (cross-entropy of the logistic output, or squared
//! error), with Adam or SGD on minibatches, or L-BFGS run for a few
//! iterations on each batch in turn (Hinton used conjugate gradients the
//! same way, three line searches per batch of 1000).
//!
//! Forward: a₀ = x, z_l = a_l·W_l + b_l, a_{l+1} = f_l(z_l); the output is
//! σ(z_{2L−1}). Backward: δ_{2L−1} = σ(z) − x (cross-entropy) or
//! (σ(z) − x)·σ′ (squared), δ_{l−1} = (δ_l·W_lᵀ) ⊙ f′_{l−1}. The error
//! reported is Hinton's: the squared error summed over pixels, averaged
//! over images.

mod config;
mod fit;

pub use config::{Code, DaePretrain, DeepAeConfig, Pretrain};
use fit::AeFit;
pub use fit::{AeBatch, AeObjective};

use crate::error::{Error, Result};
use crate::layers::activation::{sigmoid, Activation};
use crate::layers::dense::{Dense, Grads};
use crate::layers::{Corruption, Loss};
use crate::models::rbm::{Hidden, Rbm};
use crate::models::scaler::Scaler;
use crate::tensor::gemm::Par;
use crate::tensor::rng::{seeded, Rng};
use crate::train::{
    fit_loop_with, Checkpointing, EpochMetrics, FitReport, Minibatches, Objective, Observer, Optimizer,
    SaveState, Shuffle, State, StepRule, TrainConfig,
};
use rand::Rng as _;
use std::ops::Range;
use std::path::Path;

/// A deep autoencoder: widths from the input through the code and back,
/// `[n₀, n₁, …, n_L, …, n₁, n₀]`, and its weights `[W₀ b₀ W₁ b₁ …]`.
#[derive(Debug, Clone, PartialEq)]
pub struct DeepAutoencoder {
    pub sizes: Vec<usize>,
    pub code: Code,
    pub loss: Loss,
    pub params: Vec<f32>,
    /// The output units: logistic (data in [0, 1]) or linear (real-valued
    /// data, squared loss).
    pub output: Code,
    /// The inputs' standardisation, when trained with `standardize`.
    pub scaler: Option<Scaler>,
}

/// One batch's activations and gradient.
pub struct Workspace {
    a: Vec<Vec<f32>>,
    delta: Vec<f32>,
    back: Vec<f32>,
    grad: Vec<f32>,
}

impl DeepAutoencoder {
    /// The architecture `input`-`layers`-mirror, with zero weights.
    pub fn new(input: usize, layers: &[usize], code: Code, loss: Loss) -> DeepAutoencoder {
        let mut sizes = vec![input];
        sizes.extend_from_slice(layers);
        sizes.extend(layers.iter().rev().skip(1));
        sizes.push(input);
        let mut m = DeepAutoencoder {
            sizes,
            code,
            loss,
            params: Vec::new(),
            output: Code::Logistic,
            scaler: None,
        };
        m.params = vec![0.0; m.layer(m.depth() - 1).1.end];
        m
    }

    /// Weight matrices (encoder and decoder).
    pub fn depth(&self) -> usize {
        self.sizes.len() - 1
    }

    /// Encoder layers (the code is the output of layer `code_layer()`).
    pub fn code_layer(&self) -> usize {
        self.depth() / 2 - 1
    }

    pub fn code_width(&self) -> usize {
        self.sizes[self.depth() / 2]
    }

    /// Where layer `l`'s weight `[sizes[l], sizes[l+1]]` and bias sit.
    pub fn layer(&self, l: usize) -> (Range<usize>, Range<usize>) {
        let at: usize = (0..l)
            .map(|j| self.sizes[j] * self.sizes[j + 1] + self.sizes[j + 1])
            .sum();
        let w = at..at + self.sizes[l] * self.sizes[l + 1];
        (w.clone(), w.end..w.end + self.sizes[l + 1])
    }

    /// The activation after layer `l` (the output's logistic is the loss's).
    pub fn activation(&self, l: usize) -> Activation {
        if l == self.code_layer() && self.code == Code::Linear {
            Activation::Identity
        } else {
            Activation::Sigmoid
        }
    }

    /// Glorot-uniform weights (×4 for logistic units), zero biases.
    pub fn init_random(&mut self, rng: &mut Rng) {
        for l in 0..self.depth() {
            let (w, b) = self.layer(l);
            let mut r = (6.0 / (self.sizes[l] + self.sizes[l + 1]) as f32).sqrt();
            if self.activation(l) == Activation::Sigmoid {
                r *= 4.0;
            }
            self.params[w]
                .iter_mut()
                .for_each(|v| *v = rng.random_range(-r..r));
            self.params[b].fill(0.0);
        }
    }

    pub fn workspace(&self, rows: usize) -> Workspace {
        let width = self.sizes.iter().copied().max().unwrap_or(0);
        Workspace {
            a: self.sizes.iter().map(|&s| vec![0.0; rows * s]).collect(),
            delta: vec![0.0; rows * width],
            back: vec![0.0; rows * width],
            grad: vec![0.0; self.params.len()],
        }
    }

    /// Runs layers `0..upto` on `rows` rows of `x`; the last layer's output
    /// is left as logits (z), the others after their activation.
    fn forward(&self, p: &[f32], x: &[f32], rows: usize, upto: usize, ws: &mut Workspace, par: Par) {
        ws.a[0][..rows * self.sizes[0]].copy_from_slice(&x[..rows * self.sizes[0]]);
        for l in 0..upto {
            let (n_in, n_out) = (self.sizes[l], self.sizes[l + 1]);
            let (w, b) = self.layer(l);
            let (lo, hi) = ws.a.split_at_mut(l + 1);
            let y = &mut hi[0][..rows * n_out];
            Dense::new(&p[w], n_in, n_out).forward(y, &lo[l][..rows * n_in], &p[b], rows, par);
            if l + 1 < self.depth() {
                self.activation(l).forward(y);
            }
        }
    }

    /// After a full forward pass: the summed loss against `target` and,
    /// with `grad`, its gradient added in.
    fn backward(
        &self,
        p: &[f32],
        target: &[f32],
        rows: usize,
        ws: &mut Workspace,
        grad: Option<&mut [f32]>,
        par: Par,
    ) -> f64 {
        let d = self.depth();
        let n0 = self.sizes[d];
        let z = &ws.a[d][..rows * n0];
        let t = &target[..rows * n0];
        let delta = &mut ws.delta[..rows * n0];
        let loss = match self.loss {
            Loss::CrossEntropy => {
                crate::layers::loss::xent_backward(delta, z, t);
                crate::layers::loss::xent_forward(z, t) as f64
            }
            Loss::Squared if self.output == Code::Linear => {
                let mut s = 0.0f64;
                for ((d, &z), &x) in delta.iter_mut().zip(z).zip(t) {
                    let e = z - x;
                    s += 0.5 * (e as f64) * (e as f64);
                    *d = e;
                }
                s
            }
            Loss::Squared => {
                let mut s = 0.0f64;
                for ((d, &z), &x) in delta.iter_mut().zip(z).zip(t) {
                    let y = sigmoid(z);
                    let e = y - x;
                    s += 0.5 * (e as f64) * (e as f64);
                    *d = e * y * (1.0 - y);
                }
                s
            }
        };
        let Some(g) = grad else {
            return loss;
        };
        for l in (0..d).rev() {
            let (n_in, n_out) = (self.sizes[l], self.sizes[l + 1]);
            let (w, b) = self.layer(l);
            let (gw, gb) = {
                let (lo, hi) = g.split_at_mut(b.start);
                (&mut lo[w.clone()], &mut hi[..n_out])
            };
            let dx = (l > 0).then(|| &mut ws.back[..rows * n_in]);
            Dense::new(&p[w], n_in, n_out).backward(
                dx,
                Grads::add(gw, gb),
                &ws.delta[..rows * n_out],
                &ws.a[l][..rows * n_in],
                rows,
                par,
            );
            if l > 0 {
                self.activation(l - 1)
                    .backward(&mut ws.back[..rows * n_in], &ws.a[l][..rows * n_in]);
                std::mem::swap(&mut ws.delta, &mut ws.back);
            }
        }
        loss
    }

    /// Rows of `x` through layers `0..upto` (the code at
    /// `upto = code_layer() + 1`; the reconstruction, after the logistic,
    /// at `upto = depth()`), in chunks.
    fn run(&self, x: &[f32], upto: usize, par: Par) -> Vec<f32> {
        let n0 = self.sizes[0];
        let n = x.len() / n0;
        let w = self.sizes[upto];
        let chunk = 500.min(n.max(1));
        let mut ws = self.workspace(chunk);
        let mut out = vec![0.0f32; n * w];
        for s in (0..n).step_by(chunk) {
            let r = chunk.min(n - s);
            self.forward(&self.params, &x[s * n0..(s + r) * n0], r, upto, &mut ws, par);
            out[s * w..(s + r) * w].copy_from_slice(&ws.a[upto][..r * w]);
        }
        if upto == self.depth() && self.output == Code::Logistic {
            out.iter_mut().for_each(|v| *v = sigmoid(*v));
        }
        out
    }

    /// The codes of the rows of `x` (in the data's units; standardised here
    /// when the model is).
    pub fn encode(&self, x: &[f32], par: Par) -> Vec<f32> {
        let x = crate::models::scaler::standardised(self.scaler.as_ref(), x);
        self.run(&x, self.code_layer() + 1, par)
    }

    /// The reconstructions of the rows of `x`, in the data's units.
    pub fn reconstruct(&self, x: &[f32], par: Par) -> Vec<f32> {
        let xs = crate::models::scaler::standardised(self.scaler.as_ref(), x);
        let mut out = self.run(&xs, self.depth(), par);
        if let Some(s) = &self.scaler {
            s.undo(&mut out);
        }
        out
    }

    /// Hinton's error: squared error summed over the columns, averaged
    /// over the rows.
    pub fn squared_error(&self, x: &[f32], par: Par) -> f64 {
        let n = x.len() / self.sizes[0];
        let r = self.reconstruct(x, par);
        let s: f64 = x.iter().zip(&r).map(|(&a, &b)| ((a - b) as f64).powi(2)).sum();
        s / n.max(1) as f64
    }

    /// Layer `j` of the encoder and its mirror take an RBM's weights.
    fn take_rbm(&mut self, j: usize, rbm: &Rbm) {
        let m = self.depth() - 1 - j;
        let (w, b) = self.layer(j);
        let (mw, mb) = self.layer(m);
        let (nv, nh) = (rbm.n_vis, rbm.n_hid);
        self.params[w].copy_from_slice(rbm.weights());
        self.params[b].copy_from_slice(rbm.hidden_bias());
        let wt = &mut self.params[mw];
        let src = rbm.weights();
        for i in 0..nv {
            for h in 0..nh {
                wt[h * nv + i] = src[i * nh + h];
            }
        }
        self.params[mb].copy_from_slice(rbm.visible_bias());
    }

    /// Layer `j` of the encoder and its mirror take a one-layer
    /// autoencoder's encoder and decoder.
    fn take_pair(&mut self, j: usize, ae: &DeepAutoencoder) {
        let m = self.depth() - 1 - j;
        for (dst, src) in [(j, 0), (m, 1)] {
            let (w, b) = self.layer(dst);
            let (sw, sb) = ae.layer(src);
            self.params[w].copy_from_slice(&ae.params[sw]);
            self.params[b].copy_from_slice(&ae.params[sb]);
        }
    }

    /// The one-layer problem of stage `j`: the RBM or one-hidden-layer
    /// autoencoder that pretrains layer j.
    fn stage_rbm(&self, j: usize, cfg: &DeepAeConfig) -> Rbm {
        let hidden = if j == self.code_layer() && self.code == Code::Linear {
            Hidden::Gaussian
        } else {
            Hidden::Binary
        };
        let mut rng = seeded(cfg.rbm.seed.wrapping_add(7919 * j as u64));
        Rbm::new(
            self.sizes[j],
            self.sizes[j + 1],
            hidden,
            cfg.rbm.init_scale,
            &mut rng,
        )
    }

    fn stage_ae(&self, j: usize, cfg: &DeepAeConfig) -> DeepAutoencoder {
        let code = if self.activation(j) == Activation::Identity {
            Code::Linear
        } else {
            Code::Logistic
        };
        let mut ae = DeepAutoencoder::new(self.sizes[j], &[self.sizes[j + 1]], code, Loss::CrossEntropy);
        if j == 0 && self.output == Code::Linear {
            // The first layer's pair sees the (real-valued) data itself.
            ae.output = Code::Linear;
            ae.loss = Loss::Squared;
        }
        ae.init_random(&mut seeded(cfg.dae.train.seed.wrapping_add(7919 * j as u64)));
        ae
    }

    /// The model as a pretraining checkpoint `s` holds it: the layers done,
    /// and the stage's own weights where it was in the middle of one.
    pub fn snapshot(&self, s: &State, cfg: &DeepAeConfig) -> Result<DeepAutoencoder> {
        let mut m = self.clone();
        let n = m.params.len();
        m.params.copy_from_slice(s.tensor("stack.params", n)?);
        let stage: usize = s.get("stage")?;
        let inner = s.inner("inner").unwrap_or_default();
        if stage < m.code_layer() + 1 {
            match cfg.pretrain {
                Pretrain::Rbm => {
                    let mut rbm = m.stage_rbm(stage, cfg);
                    let len = rbm.params.len();
                    rbm.params.copy_from_slice(inner.tensor("params", len)?);
                    m.take_rbm(stage, &rbm);
                }
                Pretrain::Dae => {
                    let mut ae = m.stage_ae(stage, cfg);
                    let len = ae.params.len();
                    ae.params.copy_from_slice(inner.tensor("params", len)?);
                    m.take_pair(stage, &ae);
                }
                Pretrain::None => {}
            }
        } else {
            m.params.copy_from_slice(inner.tensor("params", n)?);
        }
        Ok(m)
    }

    /// Pretrains (as `cfg.pretrain` says) and fine-tunes on the rows of `x`
    /// (values in [0, 1]); `val` is watched after each fine-tuning epoch
    /// (its squared error per row) and keeps the best weights when
    /// `train.patience` is set. Every epoch of every stage is reported to
    /// `obs` (stages: `rbm`/`dae` per layer, then `finetune`) and
    /// checkpointed through `ck`, from which a stopped training resumes.
    pub fn train(
        &mut self,
        x: &[f32],
        val: Option<&[f32]>,
        cfg: &DeepAeConfig,
        obs: &mut dyn Observer,
        mut ck: Checkpointing<'_>,
    ) -> Result<FitReport> {
        cfg.validate()?;
        cfg.train.require_cpu("the deep autoencoder's fine-tuning")?;
        let n0 = self.sizes[0];
        self.output = cfg.output;
        let unit = self.output == Code::Logistic;
        crate::models::check_values("deep autoencoder data", x, n0, unit)?;
        if x.len() < n0 {
            return Err(Error::config("data", "no rows to train on"));
        }
        if cfg.standardize && self.scaler.is_none() {
            self.scaler = Some(Scaler::fit(x, n0));
        }
        // Every stage trains on the standardised rows; `val` stays in the
        // data's units (its error is measured through the scaler).
        let xs = crate::models::scaler::standardised(self.scaler.as_ref(), x);
        let x: &[f32] = &xs;
        let stages = self.code_layer() + 1;
        let mut from = 0usize;
        let mut epochs_before = 0usize;
        let mut inner = None;
        if let Some(s) = ck.resume.take() {
            let n = self.params.len();
            self.params.copy_from_slice(s.tensor("stack.params", n)?);
            from = s.get("stage")?;
            epochs_before = s.get("stage.epochs_before")?;
            inner = s.inner("inner");
        } else if cfg.pretrain == Pretrain::None {
            self.init_random(&mut seeded(cfg.train.seed));
        }
        let par = cfg.train.par();
        let pre_epochs = match cfg.pretrain {
            Pretrain::Rbm => cfg.rbm.epochs,
            Pretrain::Dae => cfg.dae.train.epochs,
            Pretrain::None => 0,
        };
        // The data of stage j: the codes of layers 0..j (hidden means).
        let mut input: Option<Vec<f32>> = None;
        for j in 0..stages {
            if pre_epochs == 0 || j < from {
                continue;
            }
            let data = match &input {
                Some(h) => h.clone(),
                None => self.run_encoder(x, j, par),
            };
            let resume = if j == from { inner.take() } else { None };
            let mut outer = State::new();
            outer.put_tensor("stack.params", &self.params);
            outer.put("stage", &j);
            outer.put("stage.epochs_before", &epochs_before);
            let mut save =
                |st: State, m: &EpochMetrics| stage_save(&mut ck.save, &outer, st, epochs_before, m);
            let stage_ck = Checkpointing {
                resume,
                save: Some(&mut save),
            };
            match cfg.pretrain {
                Pretrain::Rbm => {
                    obs.on_stage(j + 1, "rbm");
                    let mut rbm = self.stage_rbm(j, cfg);
                    let mut rc = cfg.rbm.clone();
                    rc.seed = rc.seed.wrapping_add(7919 * j as u64);
                    rbm.fit(&data, &rc, obs, stage_ck)?;
                    self.take_rbm(j, &rbm);
                    let mut h = vec![0.0f32; data.len() / self.sizes[j] * self.sizes[j + 1]];
                    // Hidden means in chunks (the next RBM's data).
                    let (nv, nh) = (self.sizes[j], self.sizes[j + 1]);
                    for (src, dst) in data.chunks(500 * nv).zip(h.chunks_mut(500 * nh)) {
                        rbm.hidden_means(src, src.len() / nv, dst, par);
                    }
                    input = Some(h);
                }
                Pretrain::Dae => {
                    obs.on_stage(j + 1, "dae");
                    let mut ae = self.stage_ae(j, cfg);
                    let dc = DeepAeConfig {
                        train: TrainConfig {
                            seed: cfg.dae.train.seed.wrapping_add(7919 * j as u64),
                            ..cfg.dae.train.clone()
                        },
                        ..cfg.clone()
                    };
                    ae.finetune(&data, None, &dc, Corruption::Mask(cfg.dae.noise), obs, stage_ck)?;
                    self.take_pair(j, &ae);
                    input = Some(ae.encode(&data, par));
                }
                Pretrain::None => unreachable!("no pretraining epochs"),
            }
            epochs_before += pre_epochs;
        }
        obs.on_stage(0, "finetune");
        let resume = if from == stages { inner.take() } else { None };
        let mut outer = State::new();
        outer.put_tensor("stack.params", &self.params);
        outer.put("stage", &stages);
        outer.put("stage.epochs_before", &epochs_before);
        let mut save = |st: State, m: &EpochMetrics| stage_save(&mut ck.save, &outer, st, epochs_before, m);
        let report = self.finetune(
            x,
            val,
            cfg,
            cfg.noise,
            obs,
            Checkpointing {
                resume,
                save: Some(&mut save),
            },
        )?;
        Ok(report)
    }

    /// Rows of `x` through encoder layers `0..j`.
    fn run_encoder(&self, x: &[f32], j: usize, par: Par) -> Vec<f32> {
        if j == 0 {
            return x.to_vec();
        }
        self.run(x, j, par)
    }

    /// Trains the whole network on `x` by `cfg.train` (inputs masked with
    /// probability `noise`, the target clean).
    pub fn finetune(
        &mut self,
        x: &[f32],
        val: Option<&[f32]>,
        cfg: &DeepAeConfig,
        noise: Corruption,
        obs: &mut dyn Observer,
        ck: Checkpointing<'_>,
    ) -> Result<FitReport> {
        let tc = &cfg.train;
        let par = tc.par();
        let model = self.clone();
        let o = AeObjective {
            model: &model,
            x,
            noise,
            weight_decay: tc.weight_decay,
        };
        let mut run = AeFit {
            o: &o,
            batches: Minibatches::new(&o, tc.batch, 1, par, Shuffle::Fresh),
            params: self.params.clone(),
            opt: StepRule::new(tc),
            rng: seeded(tc.seed ^ 0xdeae),
            lbfgs: (tc.optimizer == Optimizer::Lbfgs).then_some((tc.batch, cfg.line_searches)),
            decay: (cfg.lr_decay, cfg.decay_from),
            val,
            par,
        };
        let per_epoch = if tc.optimizer == Optimizer::Lbfgs {
            o.n_examples().div_ceil(tc.batch.max(1))
        } else {
            run.batches.batches_per_epoch()
        };
        obs.on_start(tc.epochs, per_epoch);
        let report = fit_loop_with(&mut run, tc.epochs, tc.patience, obs, "train.lr", ck)?;
        self.params = run.params;
        Ok(report)
    }

    /// Writes the model: format `aekit.deep_ae`, the widths, code units
    /// and loss in the metadata, `layer.<l>.weight` `[n_l, n_{l+1}]` and
    /// `layer.<l>.bias`.
    pub fn save(&self, path: &Path) -> Result<()> {
        use crate::io::safetensors::{save, NamedTensor};
        let mut meta = std::collections::HashMap::new();
        meta.insert("format".to_string(), "aekit.deep_ae".to_string());
        meta.insert(
            "sizes".into(),
            self.sizes
                .iter()
                .map(|s| s.to_string())
                .collect::<Vec<_>>()
                .join(","),
        );
        meta.insert("code".into(), format!("{:?}", self.code).to_lowercase());
        meta.insert("loss".into(), self.loss.to_string());
        meta.insert("output".into(), format!("{:?}", self.output).to_lowercase());
        if self.scaler.is_some() {
            meta.insert("standardize".into(), "true".into());
        }
        let names: Vec<(String, String)> = (0..self.depth())
            .map(|l| (format!("layer.{l}.weight"), format!("layer.{l}.bias")))
            .collect();
        let mut tensors = Vec::new();
        for (l, (wn, bn)) in names.iter().enumerate() {
            let (w, b) = self.layer(l);
            tensors.push(NamedTensor {
                name: wn,
                shape: vec![self.sizes[l], self.sizes[l + 1]],
                data: &self.params[w],
            });
            tensors.push(NamedTensor {
                name: bn,
                shape: vec![self.sizes[l + 1]],
                data: &self.params[b],
            });
        }
        if let Some(s) = &self.scaler {
            tensors.extend(s.tensors());
        }
        save(path, &tensors, meta)
    }

    /// Reads what [`DeepAutoencoder::save`] wrote.
    pub fn load(path: &Path) -> Result<DeepAutoencoder> {
        let mut f = crate::io::safetensors::load(path)?;
        f.expect_kind("aekit.deep_ae")?;
        let sizes: Vec<usize> = f
            .meta("sizes")?
            .split(',')
            .map(|s| s.trim().parse::<usize>())
            .collect::<std::result::Result<_, _>>()
            .map_err(|_| Error::format(path, "bad `sizes` in the metadata"))?;
        let mirrored = sizes.len() >= 3
            && sizes.len() % 2 == 1
            && sizes.iter().eq(sizes.iter().rev())
            && !sizes.contains(&0);
        if !mirrored {
            return Err(Error::format(
                path,
                format!("`sizes` {sizes:?} is not an autoencoder's mirrored widths"),
            ));
        }
        let code: Code = f
            .meta("code")?
            .parse()
            .map_err(|e: String| Error::format(path, e))?;
        let loss: Loss = f
            .meta("loss")?
            .parse()
            .map_err(|e: String| Error::format(path, e))?;
        let half = sizes.len() / 2;
        let mut m = DeepAutoencoder::new(sizes[0], &sizes[1..=half], code, loss);
        for l in 0..m.depth() {
            let (w, b) = m.layer(l);
            let tw = f.take(&format!("layer.{l}.weight"), &[m.sizes[l], m.sizes[l + 1]])?;
            let tb = f.take(&format!("layer.{l}.bias"), &[m.sizes[l + 1]])?;
            m.params[w].copy_from_slice(&tw);
            m.params[b].copy_from_slice(&tb);
        }
        if let Some(o) = f.metadata.get("output") {
            m.output = o.parse().map_err(|e: String| Error::format(path, e))?;
        }
        let wanted = f.metadata.get("standardize").is_some_and(|v| v == "true");
        m.scaler = Scaler::from_file(&mut f, m.sizes[0], wanted, path)?;
        Ok(m)
    }
}

/// A stage's fit state nested in the whole training's, reported with the
/// epoch counted over all stages.
fn stage_save(
    save: &mut Option<&mut SaveState<'_>>,
    outer: &State,
    inner: State,
    epochs_before: usize,
    m: &EpochMetrics,
) -> Result<()> {
    let Some(save) = save.as_mut() else {
        return Ok(());
    };
    let mut full = outer.clone();
    full.nest("inner", inner);
    save(
        full,
        &EpochMetrics {
            epoch: epochs_before + m.epoch,
            ..*m
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gradient_matches_finite_differences() {
        for (code, loss) in [
            (Code::Linear, Loss::CrossEntropy),
            (Code::Logistic, Loss::Squared),
        ] {
            let mut m = DeepAutoencoder::new(5, &[4, 2], code, loss);
            m.init_random(&mut seeded(2));
            let mut rng = seeded(3);
            let x: Vec<f32> = (0..15).map(|_| rng.random::<f32>()).collect();
            let o = AeObjective {
                model: &m,
                x: &x,
                noise: Corruption::None,
                weight_decay: 0.01,
            };
            let mut b = o.new_batch(3);
            o.load(&[0, 1, 2], &mut b, &mut rng);
            let mut ws = o.new_workspace(3);
            let mut f = |p: &[f32], g: &mut [f32]| {
                g.fill(0.0);
                let s = o.loss_grad_sum(p, Some(g), &b, 0..3, &mut ws, Par::Seq);
                o.finish(p, g, s, 3).objective
            };
            let p = m.params.clone();
            let mut g = vec![0.0f32; p.len()];
            f(&p, &mut g);
            let mut scratch = vec![0.0f32; p.len()];
            let h = 1e-2f32;
            let mut worst = 0.0f64;
            for i in 0..p.len() {
                let mut q = p.clone();
                q[i] += h;
                let up = f(&q, &mut scratch);
                q[i] -= 2.0 * h;
                let down = f(&q, &mut scratch);
                let num = (up - down) / (2.0 * h as f64);
                worst = worst.max((num - g[i] as f64).abs() / (num.abs() + g[i].abs() as f64).max(1e-2));
            }
            assert!(worst < 2e-2, "{code:?} {loss}: relative error {worst}");
        }
    }

    #[test]
    fn lr_decay_shrinks_the_steps_after_decay_from() {
        // With a decay of 1e-6 from epoch 1, epochs 2 and 3 barely move the
        // weights; without it they move them as much as epoch 1 did.
        let mut rng = seeded(4);
        let x: Vec<f32> = (0..40 * 6).map(|_| rng.random::<f32>()).collect();
        let fine_tune = |epochs: usize, lr_decay: f32| {
            let mut m = DeepAutoencoder::new(6, &[4, 2], Code::Linear, Loss::CrossEntropy);
            m.init_random(&mut seeded(5));
            let mut cfg = DeepAeConfig {
                pretrain: Pretrain::None,
                lr_decay,
                decay_from: 1,
                ..DeepAeConfig::default()
            };
            cfg.train.epochs = epochs;
            cfg.train.batch = 10;
            cfg.train.lr = 0.01;
            cfg.train.threads = 1;
            cfg.validate().unwrap();
            m.finetune(
                &x,
                None,
                &cfg,
                Corruption::None,
                &mut crate::train::Silent,
                Checkpointing::default(),
            )
            .unwrap();
            m.params
        };
        let dist = |a: &[f32], b: &[f32]| a.iter().zip(b).map(|(p, q)| (p - q).abs()).fold(0.0f32, f32::max);
        let one = fine_tune(1, 1.0);
        assert_eq!(fine_tune(1, 1e-6), one, "the first epoch runs at the full step");
        let moved = dist(&fine_tune(3, 1.0), &one);
        let decayed = dist(&fine_tune(3, 1e-6), &one);
        assert!(moved > 1e-3, "two more epochs moved the weights by {moved}");
        assert!(
            decayed < 1e-6 * moved.max(1.0) * 10.0,
            "decayed epochs moved them by {decayed}"
        );
        let bad = DeepAeConfig {
            lr_decay: 1.5,
            ..DeepAeConfig::default()
        };
        assert!(bad.validate().unwrap_err().to_string().contains("model.lr_decay"));
    }

    #[test]
    fn save_and_load_round_trip() {
        let mut m = DeepAutoencoder::new(6, &[4, 3, 2], Code::Linear, Loss::CrossEntropy);
        m.init_random(&mut seeded(5));
        let dir = std::env::temp_dir().join(format!("aekit-deepae-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("m.safetensors");
        m.save(&p).unwrap();
        assert_eq!(DeepAutoencoder::load(&p).unwrap(), m);
        std::fs::remove_dir_all(&dir).ok();
    }
}

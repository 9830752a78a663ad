//! The estimator: a DAE's hyperparameters and weights, with
//! scikit-learn-like methods to encode, decode, score and save.

use super::maths::*;
use crate::error::{Error, Result};
use crate::io::safetensors::{self as st, NamedTensor};
use crate::layers::activation::Activation;
use crate::layers::loss::{self, Loss};
use crate::models::scaler::Scaler;
use crate::tensor::gemm::Par;
use crate::tensor::rng::{seeded, Rng};
use crate::train::{StepRule, TrainConfig};
use ndarray::{Array2, ArrayView2};
use rand::Rng as _;
use serde::Serialize;
use std::borrow::Cow;
use std::collections::HashMap;
use std::path::Path;

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
    pub(crate) layout: Layout,
    pub(crate) params: Vec<f32>,
    pub(crate) opt: StepRule,
    pub(crate) rng: Rng,
    /// The step size's factor after each epoch of a fit (1: constant).
    pub(crate) lr_decay: f32,
    /// The inputs' standardisation, when `config.standardize` (set from the
    /// training data by the first fit).
    pub scaler: Option<Scaler>,
}

pub(crate) const EVAL_CHUNK: usize = 500;

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
            lr_decay: 1.0,
            scaler: None,
        };
        if m.config.n_vis > 0 {
            m.initialise();
        }
        m
    }

    /// The step size multiplied by `factor` in (0, 1] after every epoch of
    /// each fit by SGD or Adam (each fit starts again at `train.lr`); the
    /// factor is checked when a fit starts.
    pub fn with_lr_decay(mut self, factor: f32) -> DenoisingAutoencoder {
        self.lr_decay = factor;
        self
    }

    pub(crate) fn initialise(&mut self) {
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

    pub(crate) fn par(&self) -> Par {
        Par::from_threads(self.train.resolved_threads())
    }

    pub(crate) fn check_input(&self, x: &ArrayView2<f32>, what: &str) -> Result<()> {
        if self.params.is_empty() {
            return Err(Error::config("model", "is not fitted yet"));
        }
        crate::models::check_columns(what, self.config.n_vis, x.ncols())
    }

    /// What every way of training checks first: the settings, weights drawn
    /// (from the data's width) if there are none yet, and the data's shape.
    pub(crate) fn prepare_training(&mut self, x: &ArrayView2<f32>) -> Result<()> {
        self.config.validate()?;
        self.train.validate()?;
        if self.config.n_vis == 0 || self.params.is_empty() {
            self.config.n_vis = x.ncols();
            self.config.check_size()?;
            self.initialise();
        }
        self.check_input(x, "training data")?;
        self.check_data(x, "training data")?;
        if self.config.standardize && self.scaler.is_none() {
            let xs = x.as_standard_layout();
            self.scaler = Some(Scaler::fit(xs.as_slice().expect("standard layout"), x.ncols()));
        }
        Ok(())
    }

    /// The rows of `x` as the network takes them: row-major, and
    /// standardised when the model is.
    pub(crate) fn rows<'a>(&self, x: &'a ArrayView2<'_, f32>) -> Cow<'a, [f32]> {
        crate::models::scaler::rows(self.scaler.as_ref(), x)
    }

    /// Finite values, in [0, 1] under cross-entropy.
    pub(crate) fn check_data(&self, x: &ArrayView2<f32>, what: &str) -> Result<()> {
        let xs = x.as_standard_layout();
        let unit = self.config.loss == Loss::CrossEntropy;
        crate::models::check_values(what, xs.as_slice().expect("standard layout"), x.ncols(), unit)
    }
}

impl DenoisingAutoencoder {
    pub(crate) fn eval_slice(&self, x: &[f32], n: usize) -> Metrics {
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
                Examples {
                    input: xb,
                    target: xb,
                    n: b,
                },
                &mut ws,
                par,
            ) as f64;
            let a = &ws.a[..b * nv];
            let z = &mut ws.z[..b * nv];
            z.copy_from_slice(a);
            self.config.output_activation.forward(z);
            se += 2.0 * loss::squared_forward(z, xb) as f64;
            ce += if self.config.output_activation == Activation::Sigmoid {
                loss::xent(None, a, xb) as f64
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
        // The loss is defined on what training accepts: finite values, in
        // [0, 1] under cross-entropy (else a "loss" of −3.5e29).
        self.check_data(&x, "evaluation data")?;
        Ok(self.eval_slice(&self.rows(&x), x.nrows()))
    }

    /// Mean training loss per example on clean `x` (lower is better; unlike
    /// scikit-learn's higher-is-better `score`, aekit reports the loss itself).
    pub fn score(&self, x: ArrayView2<f32>) -> Result<f64> {
        Ok(self.evaluate(x)?.loss)
    }

    /// The hidden code h = f(x·W + b), `[n, n_hid]`.
    pub fn transform(&self, x: ArrayView2<f32>) -> Result<Array2<f32>> {
        self.check_input(&x, "input to transform")?;
        let xs = self.rows(&x);
        let n = x.nrows();
        let mut h = vec![0.0f32; n * self.config.n_hid];
        encode(
            &self.config,
            &self.layout,
            &self.params,
            &mut h,
            &xs,
            n,
            self.par(),
        );
        Ok(Array2::from_shape_vec((n, self.config.n_hid), h).expect("shape"))
    }

    /// The reconstruction z = g(h·Wᵀ + b′) of codes h, `[n, n_vis]`.
    pub fn inverse_transform(&self, h: ArrayView2<f32>) -> Result<Array2<f32>> {
        crate::models::check_columns("codes", self.config.n_hid, h.ncols())?;
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
        if let Some(s) = &self.scaler {
            s.undo(&mut z);
        }
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
        if let Some(s) = &self.scaler {
            t.extend(s.tensors());
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
        f.expect_kind("aekit.dae")?;
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
        // The sizes the metadata declares must be those of the tensors, before
        // a model of that size is allocated.
        let declared = vec![config.n_vis, config.n_hid];
        if f.shape_of("encoder.weight").as_ref() != Some(&declared) {
            return Err(Error::format(
                path,
                format!(
                    "its config declares {}×{} units but `encoder.weight` has shape {:?}",
                    config.n_vis,
                    config.n_hid,
                    f.shape_of("encoder.weight")
                ),
            ));
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
        m.scaler = Scaler::from_file(&mut f, v, m.config.standardize, path)?;
        Ok(m)
    }
}

//! The convolutional autoencoder: initialisation, encoding and
//! reconstruction, scoring, model files, training and supervised
//! fine-tuning of its encoder.

use super::network::*;
use super::settings::*;
use super::spec::*;
use crate::data::Dataset;
use crate::error::{Error, Result};
use crate::io::safetensors::{self as st, NamedTensor};
use crate::layers::Loss;
use crate::models::classifier::{error_percent, ClassifierConfig, FeatureClassifier};
use crate::models::scaler::Scaler;
use crate::optim::Adam;
use crate::tensor::rng::{seeded, shuffle};
use crate::train::{EarlyStopping, EpochMetrics, Observer};
use serde::Serialize;
use std::borrow::Cow;
use std::collections::HashMap;
use std::ops::Range;
use std::path::Path;
use std::time::Instant;

/// A convolutional autoencoder: a resolved network and its parameters.
#[derive(Debug, Clone)]
pub struct ConvAutoencoder {
    pub net: Network,
    /// The flat parameter vector, layer by layer (weight then bias).
    pub params: Vec<f32>,
    pub loss: Loss,
    /// How [`Estimator::fit`](crate::models::Estimator::fit) trains it
    /// (`loss` and the seed as given to `new`, otherwise the defaults).
    pub train: CaeTrainConfig,
    /// The inputs' standardisation, when trained with `standardize` (set
    /// from the training images by the first fit).
    pub scaler: Option<Scaler>,
}

impl ConvAutoencoder {
    /// A freshly initialised CAE.
    pub fn new(spec: &CaeSpec, loss: Loss, seed: u64) -> Result<ConvAutoencoder> {
        let net = Network::new(spec)?;
        if loss == Loss::CrossEntropy && !net.ends_in_sigmoid() {
            return Err(Error::config(
                "loss",
                "cross-entropy needs a decoder that ends with a sigmoid layer",
            ));
        }
        let params = net.init_params(seed);
        let mut train = CaeTrainConfig {
            loss,
            ..CaeTrainConfig::default()
        };
        train.train.seed = seed;
        Ok(ConvAutoencoder {
            net,
            params,
            loss,
            train,
            scaler: None,
        })
    }

    pub(crate) fn check(&self, data: &Dataset) -> Result<()> {
        let want = self.net.input_len();
        if data.dim != want {
            return Err(Error::shape(
                "images (features per example)",
                format!("{want} ({:?})", self.net.spec.input),
                data.dim,
            ));
        }
        Ok(())
    }

    /// Runs `f` over `data` in chunks of `batch` images, one workspace per
    /// worker, and collects each chunk's result in order.
    fn map_chunks<R: Send>(
        &self,
        data: &Dataset,
        batch: usize,
        threads: usize,
        upto: usize,
        f: impl Fn(&mut Workspace<f32>, Range<usize>) -> R + Sync,
    ) -> Vec<R> {
        let starts: Vec<usize> = (0..data.n).step_by(batch.max(1)).collect();
        let run = |ws: &mut Workspace<f32>, s: usize| {
            let e = (s + batch).min(data.n);
            let d = data.dim;
            ws.input_mut(d, e - s).copy_from_slice(&data.x[s * d..e * d]);
            forward(&self.net, &self.params, ws, e - s, upto);
            f(ws, s..e)
        };
        if threads <= 1 {
            let mut ws = Workspace::new(&self.net, batch);
            return starts.iter().map(|&s| run(&mut ws, s)).collect();
        }
        use rayon::prelude::*;
        starts
            .par_iter()
            .map_init(|| Workspace::new(&self.net, batch), |ws, &s| run(ws, s))
            .collect()
    }

    /// `data` as the network takes it: standardised when the model is.
    pub(crate) fn input<'a>(&self, data: &'a Dataset) -> Cow<'a, Dataset> {
        match &self.scaler {
            Some(s) if s.dim() == data.dim => Cow::Owned(Dataset {
                x: s.apply(&data.x),
                ..data.clone()
            }),
            _ => Cow::Borrowed(data),
        }
    }

    /// The codes `[n, code_len]` of `data` (the encoder's output, flattened).
    pub fn transform(&self, data: &Dataset, threads: usize) -> Result<Vec<f32>> {
        self.check(data)?;
        let data = &*self.input(data);
        let k = self.net.n_enc;
        let parts = self.map_chunks(data, 100, threads, k, |ws, r| {
            ws.out(&self.net, k - 1, r.len()).to_vec()
        });
        Ok(parts.concat())
    }

    /// The reconstructions `[n, dim]` of `data` (clean input).
    pub fn reconstruct(&self, data: &Dataset, threads: usize) -> Result<Vec<f32>> {
        self.check(data)?;
        let data = &*self.input(data);
        let last = self.net.nodes.len();
        let parts = self.map_chunks(data, 100, threads, last, |ws, r| {
            ws.out(&self.net, last - 1, r.len()).to_vec()
        });
        let mut out = parts.concat();
        if let Some(s) = &self.scaler {
            s.undo(&mut out);
        }
        Ok(out)
    }

    /// Mean loss per image on the clean `data`.
    pub fn score(&self, data: &Dataset, threads: usize) -> Result<f64> {
        self.check(data)?;
        let data = &*self.input(data);
        if data.n == 0 {
            return Ok(0.0);
        }
        let last = self.net.nodes.len();
        let parts = self.map_chunks(data, 100, threads, last, |ws, r| {
            let target = &data.x[r.start * data.dim..r.end * data.dim];
            loss_backward(&self.net, &self.params, ws, target, r.len(), self.loss, false)
        });
        Ok(parts.iter().sum::<f64>() / data.n as f64)
    }

    /// Saves the parameters (PyTorch layouts, keys `layers.{i}.weight` and
    /// `.bias` over encoder then decoder layers) and the spec, atomically.
    pub fn save(&self, path: &Path, mut metadata: HashMap<String, String>) -> Result<()> {
        let names: Vec<(String, String)> = (0..self.net.nodes.len())
            .map(|i| (format!("layers.{i}.weight"), format!("layers.{i}.bias")))
            .collect();
        let mut tensors = Vec::new();
        for (n, (wn, bn)) in self.net.nodes.iter().zip(&names) {
            if n.w.is_empty() {
                continue;
            }
            tensors.push(NamedTensor {
                name: wn,
                shape: n.w_shape.clone(),
                data: &self.params[n.w.clone()],
            });
            tensors.push(NamedTensor {
                name: bn,
                shape: vec![n.b.len()],
                data: &self.params[n.b.clone()],
            });
        }
        metadata.insert("model".into(), "cae".into());
        metadata.insert("spec".into(), self.net.spec.to_toml());
        metadata.insert("loss".into(), self.loss.to_string());
        if let Some(s) = &self.scaler {
            tensors.extend(s.tensors());
            metadata.insert("standardize".into(), "true".into());
        }
        st::save(path, &tensors, metadata)
    }

    /// Loads a file written by [`ConvAutoencoder::save`].
    pub fn load(path: &Path) -> Result<ConvAutoencoder> {
        let mut f = st::load(path)?;
        f.expect_kind("aekit.cae")?;
        let spec: CaeSpec = toml::from_str(f.meta("spec")?)
            .map_err(|e| Error::format(path, format!("bad `spec` metadata: {e}")))?;
        let loss: Loss = f
            .meta("loss")?
            .parse()
            .map_err(|e: String| Error::format(path, format!("bad `loss` metadata: {e}")))?;
        let mut m = ConvAutoencoder::new(&spec, loss, 0).map_err(|e| Error::format(path, e.to_string()))?;
        for i in 0..m.net.nodes.len() {
            let n = m.net.nodes[i].clone();
            if n.w.is_empty() {
                continue;
            }
            let w = f.take(&format!("layers.{i}.weight"), &n.w_shape)?;
            let b = f.take(&format!("layers.{i}.bias"), &[n.b.len()])?;
            m.params[n.w].copy_from_slice(&w);
            m.params[n.b].copy_from_slice(&b);
        }
        let wanted = f.metadata.get("standardize").is_some_and(|v| v == "true");
        m.scaler = Scaler::from_file(&mut f, m.net.input_len(), wanted, path)?;
        Ok(m)
    }
}

/// What [`ConvAutoencoder::finetune_encoder`] did.
#[derive(Debug, Clone, Serialize)]
pub struct FinetuneReport {
    /// Validation error (%) after each epoch.
    pub val_errors: Vec<f64>,
    /// The epoch whose weights were kept (0: none beat the starting point).
    pub best_epoch: usize,
    pub valid_error: f64,
    pub train_seconds: f64,
}

impl ConvAutoencoder {
    /// Supervised fine-tuning: the encoder and `clf` (already fitted on the
    /// codes, which fixes its standardisation) train together on the labels
    /// with Adam, softmax cross-entropy back-propagated through the
    /// classifier into the encoder (the decoder is left as it is). Stops
    /// after `patience` epochs without a lower validation error and keeps the
    /// best epoch's encoder and classifier.
    pub fn finetune_encoder(
        &mut self,
        clf: &mut FeatureClassifier,
        train: &Dataset,
        val: &Dataset,
        cfg: &ClassifierConfig,
        obs: &mut dyn Observer,
    ) -> Result<FinetuneReport> {
        cfg.validate()?;
        self.check(train)?;
        self.check(val)?;
        let (Some(ytr), Some(yva)) = (&train.labels, &val.labels) else {
            return Err(Error::config(
                "data",
                "fine-tuning needs labelled training and validation images",
            ));
        };
        let k = self.net.n_enc;
        let cl = self.net.code_len();
        if clf.inv_std.len() != cl {
            return Err(Error::shape("classifier inputs", cl, clf.inv_std.len()));
        }
        let t0 = Instant::now();
        let batch = cfg.train.batch.min(train.n).max(1);
        let mut ws = Workspace::<f32>::new(&self.net, batch);
        let mut rng = seeded(cfg.train.seed ^ 0xf1e7_0e5e);
        let mut order: Vec<usize> = (0..train.n).collect();
        let (mut adam_e, mut adam_c) = (
            Adam::new(cfg.train.adam_config()),
            Adam::new(cfg.train.adam_config()),
        );
        let mut gc = vec![0.0f32; clf.params.len()];
        let mut dxs = vec![0.0f32; batch * cl];
        let (mut scratch, mut xs) = (crate::models::classifier::Scratch::default(), Vec::new());
        let mut labels = Vec::with_capacity(batch);
        let val_error = |m: &ConvAutoencoder, c: &FeatureClassifier| -> Result<f64> {
            let codes = m.transform(val, 1)?;
            Ok(error_percent(&c.predict(&codes), yva))
        };
        // The starting point is the one to beat.
        let mut stop = EarlyStopping::new(cfg.train.patience);
        stop.best = val_error(self, clf)?;
        let mut best = (self.params.clone(), clf.params.clone());
        let mut val_errors = Vec::new();
        let mut updates = 0u64;
        for epoch in 1..=cfg.train.epochs {
            shuffle(&mut order, &mut rng);
            let mut loss_sum = 0.0f64;
            for chunk in order.chunks(batch) {
                let b = chunk.len();
                let d = train.dim;
                labels.clear();
                {
                    let input = ws.input_mut(d, b);
                    for (j, &i) in chunk.iter().enumerate() {
                        input[j * d..(j + 1) * d].copy_from_slice(train.row(i));
                        labels.push(ytr[i]);
                    }
                }
                forward(&self.net, &self.params, &mut ws, b, k);
                clf.standardise_into(ws.out(&self.net, k - 1, b), &mut xs);
                gc.fill(0.0);
                loss_sum += clf.batch_grad(&xs, &labels, &mut gc, &mut dxs[..b * cl], &mut scratch) as f64;
                // d(code) = d(standardised code) / σ
                for (row_d, row_s) in ws.d0[..b * cl].chunks_exact_mut(cl).zip(dxs.chunks_exact(cl)) {
                    for ((o, &v), &s) in row_d.iter_mut().zip(row_s).zip(&clf.inv_std) {
                        *o = v * s;
                    }
                }
                ws.grad.fill(0.0);
                backward_nodes(&self.net, &self.params, &mut ws, b, k);
                let inv = 1.0 / b as f32;
                let lambda = cfg.train.weight_decay;
                crate::tensor::simd::scale(&mut ws.grad, inv);
                crate::tensor::simd::scale(&mut gc, inv);
                for n in &self.net.nodes[..k] {
                    for (g, &w) in ws.grad[n.w.clone()].iter_mut().zip(&self.params[n.w.clone()]) {
                        *g += lambda * w;
                    }
                }
                for r in clf.weight_ranges() {
                    for (g, &w) in gc[r.clone()].iter_mut().zip(&clf.params[r]) {
                        *g += lambda * w;
                    }
                }
                // The decoder's gradient is zero; only the encoder moves.
                // (Layers are laid out in order, so the encoder's parameters
                // are the prefix up to its last layer's end.)
                let enc_end = self.net.nodes[k - 1].b.end;
                adam_e.step(&mut self.params[..enc_end], &ws.grad[..enc_end]);
                adam_c.step(&mut clf.params, &gc);
                updates += 1;
            }
            let err = val_error(self, clf)?;
            val_errors.push(err);
            obs.on_epoch(&EpochMetrics {
                epoch,
                train_loss: loss_sum / train.n as f64,
                val_loss: Some(err),
                seconds: t0.elapsed().as_secs_f64(),
                updates,
            });
            let (improved, halt) = stop.update(epoch, err);
            if improved {
                best = (self.params.clone(), clf.params.clone());
            }
            if halt {
                break;
            }
        }
        obs.on_end();
        (self.params, clf.params) = best;
        clf.valid_error = stop.best;
        Ok(FinetuneReport {
            val_errors,
            best_epoch: stop.best_epoch.unwrap_or(0),
            valid_error: stop.best,
            train_seconds: t0.elapsed().as_secs_f64(),
        })
    }
}

//! Pretraining layer by layer, by a schedule.

use super::model::*;
use super::objective::*;
use super::schedule::*;
use crate::data::Dataset;
use crate::error::{Error, Result};
use crate::models::dae::{DaeConfig, DenoisingAutoencoder};
use crate::models::deep::HeadKind;
use crate::optim::Sgd;
use crate::tensor::rng::{seeded, Rng};
use crate::train::{EpochMetrics, Minibatches, Observer, Shuffle};
use serde::Serialize;
use std::time::Instant;

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

impl StackedDae {
    /// Trains layer `k` (1-based) as a tied DAE on the clean code of the
    /// layers below, corrupted; returns updates made.
    pub(crate) fn train_stacked(
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
    pub(crate) fn train_gradual(
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
}

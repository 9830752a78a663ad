//! Pretraining layer by layer, by a schedule.

use super::model::*;
use super::objective::*;
use super::schedule::*;
use crate::data::Dataset;
use crate::error::{Error, Result};
use crate::models::dae::{DaeConfig, DenoisingAutoencoder};
use crate::models::deep::DeepLayout;
use crate::models::deep::HeadKind;
use crate::models::rbm::{Hidden, Rbm, RbmConfig};
use crate::optim::Sgd;
use crate::tensor::rng::{seeded, Rng};
use crate::train::{
    fit_loop_with, Checkpointing, EpochMetrics, Fit, Minibatches, Observer, SaveState, Shuffle, State,
    StepRule,
};
use serde::{Deserialize, Serialize};
use std::time::Instant;

/// One epoch of pretraining, as `metrics.csv` lists it.
#[derive(Debug, Clone, Serialize, Deserialize)]
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
    fn save_state(&self, s: &mut State) {
        s.put("log.rows", &self.rows);
        s.put("log.base", &self.base);
        s.put("log.last", &self.last);
        s.put("log.seconds", &self.start.elapsed().as_secs_f64());
    }
    fn load_state(&mut self, s: &State) -> Result<()> {
        self.rows = s.get("log.rows")?;
        self.base = s.get("log.base")?;
        self.last = s.get("log.last")?;
        let secs: f64 = s.get("log.seconds")?;
        self.start = Instant::now()
            .checked_sub(std::time::Duration::from_secs_f64(secs))
            .unwrap_or(self.start);
        Ok(())
    }
}

/// A stage's checkpointing: the state of the whole pretraining as the
/// stage began (`outer`), the epochs of the stages before it, the stage's
/// own state to resume from, and where complete states go.
struct StageCk<'s, 'a> {
    outer: State,
    epochs_before: usize,
    resume: Option<State>,
    save: &'s mut Option<&'a mut SaveState<'a>>,
}

impl StageCk<'_, '_> {
    /// The stage's fit state inside the whole, with the epoch counted over
    /// the whole pretraining, to `save`.
    fn save(&mut self, inner: State, m: &EpochMetrics) -> Result<()> {
        let Some(save) = self.save.as_mut() else {
            return Ok(());
        };
        let mut full = self.outer.clone();
        full.nest("inner", inner);
        save(
            full,
            &EpochMetrics {
                epoch: self.epochs_before + m.epoch,
                ..*m
            },
        )
    }
}

impl StackedDae {
    /// Layer `k`'s DAE for stacked training (tied unless `cfg.untied`),
    /// holding the layer's current weights.
    fn stacked_dae(&self, k: usize, epochs: usize, cfg: &PretrainConfig) -> DenoisingAutoencoder {
        let (n_in, n_out) = (self.sizes[k - 1], self.sizes[k]);
        let dae_cfg = DaeConfig {
            n_vis: n_in,
            n_hid: n_out,
            tied: !cfg.untied,
            loss: cfg.loss,
            noise: cfg.noise_for(k - 1),
            ..DaeConfig::default()
        };
        let mut tc = cfg.train_config(epochs);
        tc.seed = cfg.train.seed.wrapping_add(k as u64 * 7919);
        let mut dae = DenoisingAutoencoder::new(dae_cfg, tc).with_lr_decay(cfg.lr_decay);
        let lay = self.layout(k, HeadKind::Softmax { classes: 1 });
        let (w, b) = lay.layers[k - 1].clone();
        let dl = dae.layout().clone();
        let p = dae.params_mut();
        p[dl.w.clone()].copy_from_slice(&self.trunk[w]);
        p[dl.b_hid.clone()].copy_from_slice(&self.trunk[b]);
        p[dl.b_vis.clone()].copy_from_slice(&self.decoder_bias[k - 1]);
        // An untied decoder this layer already has; a new one keeps the
        // DAE's own initial weights.
        if let (Some(wd), Some(have)) = (dl.w_dec.clone(), &self.decoder_weight[k - 1]) {
            p[wd].copy_from_slice(have);
        }
        dae
    }

    /// Layer `k` takes the weights of its DAE.
    fn take_stacked(&mut self, k: usize, dae: &DenoisingAutoencoder) {
        let lay = self.layout(k, HeadKind::Softmax { classes: 1 });
        let (w, b) = lay.layers[k - 1].clone();
        let dl = dae.layout().clone();
        let p = dae.params();
        self.trunk[w].copy_from_slice(&p[dl.w.clone()]);
        self.trunk[b].copy_from_slice(&p[dl.b_hid.clone()]);
        self.decoder_bias[k - 1].copy_from_slice(&p[dl.b_vis]);
        self.decoder_weight[k - 1] = dl.w_dec.map(|wd| p[wd].to_vec());
    }

    /// Layer `k`'s RBM (binary hidden units), with fresh weights.
    fn stage_rbm(&self, k: usize, cfg: &PretrainConfig) -> (Rbm, RbmConfig) {
        let rc = RbmConfig {
            seed: cfg.train.seed.wrapping_add(k as u64 * 7919),
            threads: cfg.train.threads,
            ..cfg.rbm.clone()
        };
        let mut rng = seeded(rc.seed);
        let rbm = Rbm::new(
            self.sizes[k - 1],
            self.sizes[k],
            Hidden::Binary,
            rc.init_scale,
            &mut rng,
        );
        (rbm, rc)
    }

    /// Layer `k` takes its RBM's weights and hidden biases; its decoder
    /// bias is the visible bias.
    fn take_rbm(&mut self, k: usize, rbm: &Rbm) {
        let lay = self.layout(k, HeadKind::Softmax { classes: 1 });
        let (w, b) = lay.layers[k - 1].clone();
        self.trunk[w].copy_from_slice(rbm.weights());
        self.trunk[b].copy_from_slice(rbm.hidden_bias());
        self.decoder_bias[k - 1].copy_from_slice(rbm.visible_bias());
    }

    /// Trains layer `k` as an RBM on the codes of the layers below; returns
    /// updates made.
    fn train_rbm(
        &mut self,
        x: &Dataset,
        k: usize,
        epochs: usize,
        cfg: &PretrainConfig,
        obs: &mut dyn Observer,
        mut ck: StageCk<'_, '_>,
    ) -> Result<u64> {
        cfg.train.require_cpu("RBM pretraining")?;
        let par = cfg.train.par();
        let input = self.encode(&x.x, x.n, k - 1, par);
        let (mut rbm, mut rc) = self.stage_rbm(k, cfg);
        rc.epochs = epochs;
        let resume = ck.resume.take();
        let mut save = |inner: State, m: &EpochMetrics| ck.save(inner, m);
        let report = rbm.fit(
            &input,
            &rc,
            obs,
            Checkpointing {
                resume,
                save: Some(&mut save),
            },
        )?;
        self.take_rbm(k, &rbm);
        Ok(report.updates)
    }

    /// The layout of gradual training up to layer `k`: layers 1..k and a
    /// decoder from layer k to x.
    fn gradual_layout(&self, k: usize, cfg: &PretrainConfig) -> DeepLayout {
        self.layout(
            k,
            HeadKind::Reconstruct {
                n_out: self.sizes[0],
                loss: cfg.loss,
            },
        )
    }

    /// Layers 1..k and the top decoder take gradual training's parameters.
    fn take_gradual(&mut self, k: usize, lay: &DeepLayout, p: &[f32]) {
        let tl = lay.trunk_len();
        self.trunk[..tl].copy_from_slice(&p[..tl]);
        let (hw, hb) = lay.layers[k].clone();
        self.top_decoder = Some((p[hw].to_vec(), p[hb].to_vec()));
    }

    /// The stack's weights into `s` (under `stack.`).
    fn put_stack(&self, s: &mut State) {
        s.put_tensor("stack.trunk", &self.trunk);
        for (i, b) in self.decoder_bias.iter().enumerate() {
            s.put_tensor(&format!("stack.decoder_bias.{i}"), b);
        }
        for (i, w) in self.decoder_weight.iter().enumerate() {
            if let Some(w) = w {
                s.put_tensor(&format!("stack.decoder_weight.{i}"), w);
            }
        }
        if let Some((w, b)) = &self.top_decoder {
            s.put_tensor("stack.top_decoder.w", w);
            s.put_tensor("stack.top_decoder.b", b);
        }
    }

    /// Restores what [`StackedDae::put_stack`] wrote.
    fn take_stack(&mut self, s: &State) -> Result<()> {
        let n = self.trunk.len();
        self.trunk.copy_from_slice(s.tensor("stack.trunk", n)?);
        for (i, b) in self.decoder_bias.iter_mut().enumerate() {
            let n = b.len();
            b.copy_from_slice(s.tensor(&format!("stack.decoder_bias.{i}"), n)?);
        }
        for i in 0..self.depth() {
            let name = format!("stack.decoder_weight.{i}");
            self.decoder_weight[i] = if s.has_tensor(&name) {
                Some(s.tensor(&name, self.sizes[i] * self.sizes[i + 1])?.to_vec())
            } else {
                None
            };
        }
        // A lower layer's decoder (gradual training ended there) may stand
        // in the middle of pretraining.
        self.top_decoder = if s.has_tensor("stack.top_decoder.w") {
            let nv = self.sizes[0];
            let w = s.tensor_any("stack.top_decoder.w")?;
            if !self.sizes[1..].iter().any(|&h| h * nv == w.len()) {
                return Err(Error::config(
                    "resume",
                    "the checkpoint's top decoder fits no layer",
                ));
            }
            Some((w.to_vec(), s.tensor("stack.top_decoder.b", nv)?.to_vec()))
        } else {
            None
        };
        Ok(())
    }

    /// The stack a pretraining checkpoint's state holds, with the weights of
    /// the stage it was in the middle of (for the checkpoint's model file).
    pub fn pretrain_snapshot(&self, s: &State, cfg: &PretrainConfig) -> Result<StackedDae> {
        let mut m = self.clone();
        m.take_stack(s)?;
        let (k, phase): (usize, usize) = (s.get("stage.k")?, s.get("stage.phase")?);
        if k == 0 || k > m.depth() {
            return Err(Error::config(
                "resume",
                format!("the checkpoint's layer {k} is not in this stack"),
            ));
        }
        let inner = s.inner("inner").unwrap_or_default();
        if phase == 0 && cfg.schedule == Schedule::Rbm {
            let (mut rbm, _) = m.stage_rbm(k, cfg);
            let n = rbm.params.len();
            rbm.params.copy_from_slice(inner.tensor("params", n)?);
            m.take_rbm(k, &rbm);
        } else if phase == 0 {
            let mut dae = m.stacked_dae(k, 1, cfg);
            let n = dae.params().len();
            dae.params_mut().copy_from_slice(inner.tensor("params", n)?);
            m.take_stacked(k, &dae);
        } else {
            let lay = m.gradual_layout(k, cfg);
            m.take_gradual(k, &lay, inner.tensor("params", lay.len)?);
        }
        // The model file reconstructs through a decoder from the top layer
        // only; below it, through the tied decoders.
        let (top, nv) = (m.sizes[m.depth()], m.sizes[0]);
        if m.top_decoder.as_ref().is_some_and(|(w, _)| w.len() != top * nv) {
            m.top_decoder = None;
        }
        Ok(m)
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
        mut ck: StageCk<'_, '_>,
    ) -> Result<u64> {
        let par = cfg.train.par();
        let input = self.encode(&x.x, x.n, k - 1, par);
        let mut dae = self.stacked_dae(k, epochs, cfg);
        let view = ndarray::ArrayView2::from_shape((x.n, self.sizes[k - 1]), &input).expect("shape");
        let resume = ck.resume.take();
        let mut save = |inner: State, m: &EpochMetrics| ck.save(inner, m);
        let report = dae.fit_with(
            view,
            None,
            obs,
            Checkpointing {
                resume,
                save: Some(&mut save),
            },
        )?;
        self.take_stacked(k, &dae);
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
        mut ck: StageCk<'_, '_>,
    ) -> Result<u64> {
        let par = cfg.train.par();
        let lay = self.gradual_layout(k, cfg);
        let tl = lay.trunk_len();
        let mut p = vec![0.0f32; lay.len];
        p[..tl].copy_from_slice(&self.trunk[..tl]);
        let (hw, _) = lay.layers[k].clone();
        if ck.resume.is_none() {
            p[hw.clone()].copy_from_slice(&uniform(rng, hw.len(), init_range(self.sizes[k], self.sizes[0])));
        }
        let noise = cfg.noise_for(0);
        let nv = self.sizes[0];
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
        let resume = ck.resume.take();
        let mut save = |inner: State, m: &EpochMetrics| ck.save(inner, m);
        let ck = Checkpointing {
            resume,
            save: Some(&mut save),
        };
        let gradual_err = |e| match e {
            Error::Config { field, reason } if reason.starts_with("training diverged") => Error::Config {
                field,
                reason: format!("gradual training of layer {k}: {reason}"),
            },
            e => e,
        };
        #[cfg(feature = "cuda")]
        if let crate::train::Device::Cuda(ordinal) = cfg.train.device {
            use crate::gpu::fit::{NetFit, Rows};
            let gpu = crate::gpu::Gpu::open(ordinal)?;
            let rows = Rows {
                x: &x.x,
                dim: nv,
                labels: None,
            };
            let seed = cfg.train.seed ^ (k as u64) << 32;
            let mut run = NetFit::new(&gpu, lay.gpu_spec(), &p, &cfg.train, noise, seed, rows, None, rng)?;
            obs.on_start(epochs, run.batches_per_epoch());
            let report = fit_loop_with(&mut run, epochs, 0, obs, "train.lr", ck).map_err(gradual_err)?;
            self.take_gradual(k, &lay, &run.p);
            return Ok(report.updates);
        }
        let mut run = GradualFit {
            batches: Minibatches::new(&o, cfg.train.batch, 1, par, Shuffle::Fresh),
            o: &o,
            p,
            sgd: StepRule::Sgd(Sgd::new(cfg.train.lr, cfg.train.momentum)),
            rng,
        };
        obs.on_start(epochs, run.batches.batches_per_epoch());
        let report = fit_loop_with(&mut run, epochs, 0, obs, "train.lr", ck).map_err(gradual_err)?;
        let p = std::mem::take(&mut run.p);
        self.take_gradual(k, &lay, &p);
        Ok(report.updates)
    }

    /// Pretrains every layer by `cfg.schedule` on `x`. `obs` hears each
    /// layer's phases as stages (`on_stage`) and every epoch of them.
    /// Returns the total number of weight updates.
    pub fn pretrain(&mut self, x: &Dataset, cfg: &PretrainConfig, obs: &mut dyn Observer) -> Result<u64> {
        self.pretrain_with(x, cfg, obs, Checkpointing::default())
    }

    /// [`StackedDae::pretrain`], checkpointed after every epoch of every
    /// stage and resumed from a checkpoint as `ck` says. The epoch a saved
    /// state is reported with counts over the whole pretraining.
    pub fn pretrain_with(
        &mut self,
        x: &Dataset,
        cfg: &PretrainConfig,
        obs: &mut dyn Observer,
        mut ck: Checkpointing<'_>,
    ) -> Result<u64> {
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
        let mut epochs_before = 0usize;
        // Where a resumed pretraining starts: its stage, and that stage's state.
        let mut from = (1usize, 0usize);
        let mut inner = None;
        if let Some(s) = ck.resume.take() {
            self.take_stack(&s)?;
            from = (s.get("stage.k")?, s.get("stage.phase")?);
            updates = s.get("stage.updates")?;
            epochs_before = s.get("stage.epochs_before")?;
            rng = s.rng("stage.rng")?;
            inner = s.inner("inner");
        }
        for k in 1..=self.depth() {
            let (s_epochs, g_epochs) = match (k, cfg.later_epochs) {
                (1, _) => (cfg.train.epochs, 0),
                (_, Some(e)) => (e, 0),
                (_, None) => cfg.schedule.split(cfg.layer_epochs),
            };
            for (phase, epochs) in [(0, s_epochs), (1, g_epochs)] {
                if epochs == 0 || (k, phase) < from {
                    continue;
                }
                let resume = if (k, phase) == from { inner.take() } else { None };
                if resume.is_none() && phase == 0 {
                    // A decoder from a lower layer's code no longer fits.
                    self.top_decoder = None;
                }
                let name = match (phase, cfg.schedule) {
                    (0, Schedule::Rbm) => "rbm",
                    (0, _) => "stacked",
                    _ => "gradual",
                };
                obs.on_stage(k, name);
                let mut outer = State::new();
                self.put_stack(&mut outer);
                outer.put("stage.k", &k);
                outer.put("stage.phase", &phase);
                outer.put("stage.updates", &updates);
                outer.put("stage.epochs_before", &epochs_before);
                outer.put_rng("stage.rng", &rng);
                let stage = StageCk {
                    outer,
                    epochs_before,
                    resume,
                    save: &mut ck.save,
                };
                updates += if phase == 0 && cfg.schedule == Schedule::Rbm {
                    self.train_rbm(x, k, epochs, cfg, obs, stage)?
                } else if phase == 0 {
                    self.train_stacked(x, k, epochs, cfg, obs, stage)?
                } else {
                    self.train_gradual(x, k, epochs, cfg, &mut rng, obs, stage)?
                };
                epochs_before += epochs;
            }
        }
        Ok(updates)
    }
}

/// Gradual training lent to the shared epoch loop: no validation, the
/// pretraining's random stream.
struct GradualFit<'a, 'r> {
    o: &'a DeepObjective<'a>,
    batches: Minibatches<Batch, crate::models::deep::DeepWorkspace<f32>>,
    p: Vec<f32>,
    sgd: StepRule,
    rng: &'r mut Rng,
}

impl Fit for GradualFit<'_, '_> {
    fn epoch(&mut self, obs: &mut dyn Observer) -> Result<(f64, u64)> {
        Ok(self
            .batches
            .run_epoch(self.o, &mut self.p, &mut self.sgd, self.rng, obs))
    }

    fn validate(&mut self) -> Result<Option<f64>> {
        Ok(None)
    }

    crate::train::minibatch_fit_state!(p, rng, sgd, batches);
}

//! Supervised fine-tuning of the whole stack with a softmax layer.

use super::model::*;
use super::objective::*;
use crate::data::Dataset;
use crate::error::{Error, Result};
use crate::models::deep::{deep_loss_grad, DeepBatch, DeepLayout, DeepWorkspace, HeadKind};
use crate::optim::{MaxNorm, Sgd, WeightAverage};
use crate::tensor::gemm::Par;
use crate::tensor::rng::{seeded, Rng};
use crate::train::checkpoint::{load_minibatch_fit, save_minibatch_fit};
use crate::train::{
    fit_loop_with, Checkpointing, Fit, Minibatches, Observer, Optimizer, Shuffle, State, StepRule,
    TrainConfig,
};
use serde::{Deserialize, Serialize};

/// Fine-tuning settings: the loop (SGD), and a learning-rate decay.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FinetuneConfig {
    /// The learning rate is multiplied by this after every epoch (1: constant).
    pub lr_decay: f32,
    /// Dropout rate of every hidden unit in training (0: none; inverted
    /// dropout, a mask drawn per example and unit each minibatch; the
    /// validation and test predictions use every unit).
    pub dropout: f32,
    /// Weight averaging: the validation error, the weights kept and the
    /// test error are those of an exponential moving average of the
    /// weights along training, forgetting at this factor per update
    /// (0: none, the last weights; 0.999 averages over about the last
    /// 1,000 updates). See [`crate::optim::WeightAverage`].
    pub average: f32,
    /// The max-norm bound of Srivastava et al. (2014): after every update,
    /// each unit's incoming weight vector (the softmax layer's too) longer
    /// than this is scaled back to this length (0: none).
    pub max_norm: f32,
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
        crate::train::check_lr_decay("lr_decay", self.lr_decay)?;
        crate::train::check_below_one("dropout", self.dropout, "a rate")?;
        crate::train::check_below_one("average", self.average, "a decay")?;
        crate::train::check_non_negative("max_norm", self.max_norm, "no bound")?;
        Ok(())
    }
}

impl Default for FinetuneConfig {
    fn default() -> Self {
        FinetuneConfig {
            lr_decay: 1.0,
            dropout: 0.0,
            average: 0.0,
            max_norm: 0.0,
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
pub(crate) fn predict(lay: &DeepLayout, p: &[f32], x: &Dataset, par: Par) -> Vec<u8> {
    let mut ws = DeepWorkspace::default();
    let k = lay.head.n_out();
    let mut out = Vec::with_capacity(x.n);
    for start in (0..x.n).step_by(1000) {
        let b = 1000.min(x.n - start);
        let xb = &x.x[start * x.dim..(start + b) * x.dim];
        // The softmax head scores against labels; any will do for the logits.
        let zeros = vec![0u8; b];
        let batch = DeepBatch {
            x: xb,
            target: &[],
            labels: &zeros,
            rows: b,
            drop: None,
        };
        deep_loss_grad(lay, p, None, batch, &mut ws, par);
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

pub(crate) fn error_pct(pred: &[u8], labels: &[u8]) -> f64 {
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
    /// `val_loss` being the validation error in %. With an empty `val`
    /// (a refit on all the labelled data once the settings and the number
    /// of epochs are chosen) every epoch runs, the last weights are kept
    /// and the report's validation error is NaN.
    pub fn finetune(
        &mut self,
        train: &Dataset,
        val: &Dataset,
        test: &Dataset,
        cfg: &FinetuneConfig,
        obs: &mut dyn Observer,
    ) -> Result<FinetuneReport> {
        self.finetune_with(train, val, test, cfg, obs, Checkpointing::default())
    }

    /// [`StackedDae::finetune`], checkpointed after each epoch and resumed
    /// from a checkpoint as `ck` says (the state's `params` are the trunk
    /// and softmax layer: [`StackedDae::finetuned`] makes a model of them).
    pub fn finetune_with(
        &mut self,
        train: &Dataset,
        val: &Dataset,
        test: &Dataset,
        cfg: &FinetuneConfig,
        obs: &mut dyn Observer,
        ck: Checkpointing<'_>,
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
        if train.n == 0 {
            return Err(Error::config("data", "fine-tuning needs training examples"));
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
        let hidden: usize = self.sizes[1..].iter().sum();
        let fill = |chunk: &[usize], bt: &mut Batch, rng: &mut Rng| {
            bt.input.clear();
            bt.labels.clear();
            for &i in chunk {
                bt.input.extend_from_slice(train.row(i));
                bt.labels.push(ytr[i]);
            }
            // No draws without dropout, so such runs keep their order.
            bt.drop.clear();
            if cfg.dropout > 0.0 {
                crate::layers::dropout::extend_mask(&mut bt.drop, chunk.len() * hidden, cfg.dropout, rng);
            }
        };
        let o = DeepObjective {
            lay: &lay,
            n: train.n,
            weight_decay: cfg.train.weight_decay,
            fill: &fill,
        };
        let (fit, best) = match cfg.train.device {
            #[cfg(feature = "cuda")]
            crate::train::Device::Cuda(ordinal) => {
                use crate::gpu::fit::{NetFit, Rows};
                if cfg.dropout > 0.0 {
                    return Err(Error::config(
                        "dropout",
                        "fine-tuning with dropout runs on the CPU only: leave out the device or the dropout",
                    ));
                }
                if cfg.average > 0.0 {
                    return Err(Error::config(
                        "average",
                        "fine-tuning with weight averaging runs on the CPU only: leave out the device or the averaging",
                    ));
                }
                if cfg.max_norm > 0.0 {
                    return Err(Error::config(
                        "max_norm",
                        "fine-tuning with a max-norm bound runs on the CPU only: leave out the device or the bound",
                    ));
                }
                if val.n == 0 {
                    return Err(Error::config(
                        "val_size",
                        "fine-tuning without a validation set runs on the CPU only: leave out the device or give validation examples",
                    ));
                }
                let gpu = crate::gpu::Gpu::open(ordinal)?;
                let rows = Rows {
                    x: &train.x,
                    dim: train.dim,
                    labels: Some(&ytr),
                };
                let vrows = Rows {
                    x: &val.x,
                    dim: val.dim,
                    labels: Some(&yva),
                };
                let mut rng = seeded(cfg.train.seed ^ 0xf1e7);
                let none = crate::layers::Corruption::None;
                let mut run = NetFit::new(
                    &gpu,
                    lay.gpu_spec(),
                    &p,
                    &cfg.train,
                    none,
                    0,
                    rows,
                    Some(vrows),
                    &mut rng,
                )?
                .with_lr_decay(cfg.lr_decay)
                .with_error_validation();
                obs.on_start(cfg.train.epochs, run.batches_per_epoch());
                let fit = fit_loop_with(
                    &mut run,
                    cfg.train.epochs,
                    cfg.train.patience,
                    obs,
                    "train.lr",
                    ck,
                )?;
                (fit, run.p)
            }
            _ => {
                let avg = (cfg.average > 0.0).then(|| WeightAverage::new(&p, cfg.average));
                let max_norm = (cfg.max_norm > 0.0).then(|| {
                    let mats = lay.layers.iter().map(|(w, b)| (w.clone(), b.len())).collect();
                    MaxNorm::new(cfg.max_norm, mats)
                });
                let mut run = DeepFinetune {
                    batches: Minibatches::new(&o, cfg.train.batch, 1, par, Shuffle::Fresh),
                    o: &o,
                    p,
                    avg,
                    max_norm,
                    sgd: StepRule::Sgd(Sgd::new(cfg.train.lr, cfg.train.momentum)),
                    rng: seeded(cfg.train.seed ^ 0xf1e7),
                    lr_decay: cfg.lr_decay,
                    val,
                    yva: &yva,
                    par,
                };
                obs.on_start(cfg.train.epochs, run.batches.batches_per_epoch());
                let fit = fit_loop_with(
                    &mut run,
                    cfg.train.epochs,
                    cfg.train.patience,
                    obs,
                    "train.lr",
                    ck,
                )?;
                (fit, run.params().to_vec())
            }
        };
        let pred = predict(&lay, &best, test, par);
        let mut confusion = vec![vec![0u64; classes]; classes];
        for (&t, &pr) in yte.iter().zip(&pred) {
            confusion[t as usize][pr as usize] += 1;
        }
        *self = self.finetuned(&best)?;
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

impl StackedDae {
    /// This stack with the trunk and softmax layer of fine-tuning's
    /// parameter vector `p` (as [`StackedDae::finetune_with`]'s states hold
    /// it).
    pub fn finetuned(&self, p: &[f32]) -> Result<StackedDae> {
        let tl = self.trunk.len();
        let top = self.sizes[self.depth()];
        let classes = p.len().saturating_sub(tl) / (top + 1);
        if p.len() < tl || classes == 0 || tl + classes * (top + 1) != p.len() {
            return Err(Error::shape(
                "fine-tuned parameters",
                format!("{tl} trunk values and a softmax layer on {top} units"),
                format!("{} values", p.len()),
            ));
        }
        let lay = self.layout(self.depth(), HeadKind::Softmax { classes });
        let mut m = self.clone();
        m.trunk.copy_from_slice(&p[..tl]);
        let (hw, hb) = &lay.layers[self.depth()];
        m.classifier = Some((p[hw.clone()].to_vec(), p[hb.clone()].to_vec()));
        // The trunk has moved: a decoder trained for the old codes no longer fits.
        m.top_decoder = None;
        Ok(m)
    }
}

/// Fine-tuning lent to the shared epoch loop.
pub(crate) struct DeepFinetune<'a> {
    o: &'a DeepObjective<'a>,
    batches: Minibatches<Batch, DeepWorkspace<f32>>,
    p: Vec<f32>,
    /// The moving average of `p`, when averaging: what is validated and kept.
    avg: Option<WeightAverage>,
    /// The bound every update ends under, when one is set.
    max_norm: Option<MaxNorm>,
    sgd: StepRule,
    rng: Rng,
    lr_decay: f32,
    val: &'a Dataset,
    yva: &'a [u8],
    par: Par,
}

impl Fit for DeepFinetune<'_> {
    fn epoch(&mut self, obs: &mut dyn Observer) -> Result<(f64, u64)> {
        // Without a bound or averaging the hook does nothing, as
        // `run_epoch`'s own does.
        let (avg, bound) = (&mut self.avg, &mut self.max_norm);
        let r =
            self.batches
                .run_epoch_with(self.o, &mut self.p, &mut self.sgd, &mut self.rng, obs, &mut |p| {
                    if let Some(b) = bound.as_mut() {
                        b.apply(p);
                    }
                    if let Some(a) = avg.as_mut() {
                        a.observe(p);
                    }
                });
        self.sgd.scale_lr(self.lr_decay);
        Ok(r)
    }

    fn validate(&mut self) -> Result<Option<f64>> {
        if self.val.n == 0 {
            return Ok(None);
        }
        Ok(Some(error_pct(
            &predict(self.o.lay, self.params(), self.val, self.par),
            self.yva,
        )))
    }

    /// The averaged weights when averaging, else the last ones.
    fn params(&self) -> &[f32] {
        self.avg.as_ref().map_or(&self.p, |a| a.weights())
    }

    fn set_params(&mut self, p: &[f32]) {
        self.p.copy_from_slice(p);
        if let Some(a) = &mut self.avg {
            a.set(p);
        }
    }

    fn save_state(&self, s: &mut State) -> Result<()> {
        save_minibatch_fit(s, &self.p, &self.rng, &self.sgd, &self.batches);
        if let Some(a) = &self.avg {
            s.put_tensor("avg", a.weights());
            s.put("avg_seen", &a.seen());
        }
        Ok(())
    }

    fn load_state(&mut self, s: &State) -> Result<()> {
        load_minibatch_fit(s, &mut self.p, &mut self.rng, &mut self.sgd, &mut self.batches)?;
        let with = |w: &str| {
            Error::config(
                "resume",
                format!("the checkpoint was written {w} weight averaging: resume with the settings it was started with"),
            )
        };
        match &mut self.avg {
            Some(_) if !s.has_tensor("avg") => Err(with("without")),
            Some(a) => {
                a.restore(s.tensor("avg", self.p.len())?, s.get("avg_seen")?);
                Ok(())
            }
            None if s.has_tensor("avg") => Err(with("with")),
            None => Ok(()),
        }
    }
}

//! The training loops every model shares, knowing no model: the settings
//! ([`TrainConfig`]), the [`Objective`] a model exposes, minibatch training
//! over it ([`Minibatches`], any [`Step`]: SGD or Adam), full-batch L-BFGS
//! ([`lbfgs_fit`]), the epoch loop with early stopping ([`fit_loop`]), and
//! observers (progress bars, log lines, metric files).

/// The four [`Fit`] methods of a minibatch fit that keeps its parameters,
/// random stream, step rule and batch counters in the named fields.
macro_rules! minibatch_fit_state {
    ($params:ident, $rng:ident, $opt:ident, $batches:ident) => {
        fn params(&self) -> &[f32] {
            &self.$params
        }
        fn set_params(&mut self, p: &[f32]) {
            self.$params.copy_from_slice(p);
        }
        fn save_state(&self, s: &mut $crate::train::State) -> $crate::Result<()> {
            $crate::train::checkpoint::save_minibatch_fit(
                s,
                &self.$params,
                &self.$rng,
                &self.$opt,
                &self.$batches,
            );
            Ok(())
        }
        fn load_state(&mut self, s: &$crate::train::State) -> $crate::Result<()> {
            $crate::train::checkpoint::load_minibatch_fit(
                s,
                &mut self.$params,
                &mut self.$rng,
                &mut self.$opt,
                &mut self.$batches,
            )
        }
    };
}
pub(crate) use minibatch_fit_state;

pub mod checkpoint;
pub mod evolve;
mod fit;
mod minibatch;
mod objective;
mod settings;

pub use checkpoint::State;
pub use fit::{fit_loop, fit_loop_with, Checkpointing, Fit, SaveState};
pub use minibatch::{Minibatches, Shuffle};
#[cfg(test)]
pub(crate) use objective::assert_finished_matches_plain;
pub use objective::{lbfgs_fit, lbfgs_run, Finished, Objective, Step, StepRule};
pub use settings::{
    check_below_one, check_lr_decay, check_non_negative, Device, Optimizer, ParallelMode, TrainConfig,
};

use serde::Serialize;

/// What one epoch did.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, serde::Deserialize)]
pub struct EpochMetrics {
    /// 1-based.
    pub epoch: usize,
    /// Mean training loss per example over the epoch, on corrupted inputs,
    /// without weight decay.
    pub train_loss: f64,
    /// Mean loss per example on the clean validation set, after the epoch.
    pub val_loss: Option<f64>,
    /// Wall-clock seconds since training started, at the end of this epoch.
    pub seconds: f64,
    /// Weight updates made so far in this fit (iterations, for L-BFGS).
    pub updates: u64,
}

impl EpochMetrics {
    /// An L-BFGS iteration reported as an epoch (its cost as the training
    /// loss, iterations as updates).
    pub fn iteration(it: &crate::optim::lbfgs::IterInfo, seconds: f64) -> EpochMetrics {
        EpochMetrics {
            epoch: it.iter,
            train_loss: it.cost,
            val_loss: None,
            seconds,
            updates: it.iter as u64,
        }
    }
}

/// The result of `fit`.
#[derive(Debug, Clone, Serialize)]
pub struct FitReport {
    pub history: Vec<EpochMetrics>,
    /// The epoch whose weights were kept (the best validation loss).
    pub best_epoch: usize,
    pub stopped_early: bool,
    pub train_seconds: f64,
    /// Weight updates made.
    pub updates: u64,
}

/// Early stopping on a validation loss: stop after `patience` epochs without
/// a strictly lower loss. `patience == 0` never stops.
#[derive(Debug, Clone)]
pub struct EarlyStopping {
    pub patience: usize,
    pub best: f64,
    pub best_epoch: Option<usize>,
    pub(crate) bad_epochs: usize,
}

impl EarlyStopping {
    pub fn new(patience: usize) -> Self {
        EarlyStopping {
            patience,
            best: f64::INFINITY,
            best_epoch: None,
            bad_epochs: 0,
        }
    }

    /// Records an epoch's loss: (is it the best so far, should training stop).
    pub fn update(&mut self, epoch: usize, loss: f64) -> (bool, bool) {
        if loss < self.best {
            self.best = loss;
            self.best_epoch = Some(epoch);
            self.bad_epochs = 0;
            (true, false)
        } else {
            self.bad_epochs += 1;
            (false, self.patience > 0 && self.bad_epochs >= self.patience)
        }
    }
}

/// Watches training: the one way every model reports progress. Every
/// method has a do-nothing default.
pub trait Observer {
    /// A new stage of a training made of several fits (pretraining: layer
    /// `layer` trained by `phase`, `stacked` or `gradual`); the epochs that
    /// follow belong to it, and their `updates` count from its start.
    fn on_stage(&mut self, _layer: usize, _phase: &str) {}
    fn on_start(&mut self, _epochs: usize, _batches_per_epoch: usize) {}
    /// Called about 100 times an epoch with batches done so far.
    fn on_progress(&mut self, _done: usize, _total: usize) {}
    fn on_epoch(&mut self, _m: &EpochMetrics) {}
    /// A resumed fit's epochs before this run, reported once before the
    /// first new epoch (a metrics file takes them as its first rows).
    fn on_resume(&mut self, _history: &[EpochMetrics]) {}
    fn on_end(&mut self) {}
    /// What an observer that keeps a record across several fits (a
    /// pretraining log) needs to continue it, into a checkpoint's state.
    fn save_state(&self, _s: &mut State) {}
    /// Restores what [`Observer::save_state`] wrote.
    fn load_state(&mut self, _s: &State) -> crate::Result<()> {
        Ok(())
    }
}

/// Observes nothing.
pub struct Silent;
impl Observer for Silent {}

/// One line on stderr per epoch, after a label and the stage (a
/// pretraining's layer and phase): how a long experiment that runs many
/// fits shows where it is, without a progress bar.
pub struct EpochLines {
    label: String,
    stage: String,
    epochs: usize,
    /// The validation figure is an error in % (a classifier's fine-tuning).
    error_percent: bool,
}

impl EpochLines {
    pub fn new(label: impl Into<String>) -> Self {
        EpochLines {
            label: label.into(),
            stage: String::new(),
            epochs: 0,
            error_percent: false,
        }
    }

    /// Reads the validation figure as an error in % (what a fine-tuning
    /// with error validation reports).
    pub fn validation_error(mut self) -> Self {
        self.error_percent = true;
        self
    }
}

impl Observer for EpochLines {
    fn on_stage(&mut self, layer: usize, phase: &str) {
        self.stage = format!("layer {layer} {phase}, ");
    }

    fn on_start(&mut self, epochs: usize, _batches: usize) {
        self.epochs = epochs;
    }

    fn on_epoch(&mut self, m: &EpochMetrics) {
        let val = match m.val_loss {
            Some(v) if self.error_percent => format!(", validation error {v:.2}%"),
            Some(v) => format!(", validation loss {v:.4}"),
            None => String::new(),
        };
        eprintln!(
            "  {}: {}epoch {}/{}: train loss {:.4}{val} ({:.1} s)",
            self.label, self.stage, m.epoch, self.epochs, m.train_loss, m.seconds
        );
    }
}

/// A function called after each epoch.
pub type EpochCallback<'a> = Box<dyn FnMut(&EpochMetrics) + 'a>;

/// A progress bar on stderr (drawn only when stderr is a terminal) and one
/// log line per epoch, plus an optional callback per epoch.
pub struct Progress<'a> {
    bar: Option<indicatif::ProgressBar>,
    batches: usize,
    epochs: usize,
    pub on_epoch: Option<EpochCallback<'a>>,
}

impl<'a> Progress<'a> {
    pub fn new() -> Self {
        Progress {
            bar: None,
            batches: 0,
            epochs: 0,
            on_epoch: None,
        }
    }

    pub fn with_callback(f: impl FnMut(&EpochMetrics) + 'a) -> Self {
        Progress {
            on_epoch: Some(Box::new(f)),
            ..Progress::new()
        }
    }
}

impl Default for Progress<'_> {
    fn default() -> Self {
        Self::new()
    }
}

impl Observer for Progress<'_> {
    fn on_start(&mut self, epochs: usize, batches: usize) {
        self.epochs = epochs;
        self.batches = batches;
        let bar = indicatif::ProgressBar::with_draw_target(
            Some((epochs * batches) as u64),
            indicatif::ProgressDrawTarget::stderr(),
        );
        bar.set_style(
            indicatif::ProgressStyle::with_template(
                "{bar:40} {pos}/{len} batches [{elapsed_precise}<{eta_precise}] {msg}",
            )
            .expect("valid template"),
        );
        self.bar = Some(bar);
    }

    fn on_progress(&mut self, done: usize, _total: usize) {
        if let Some(b) = &self.bar {
            let epoch_base = b.position() / self.batches.max(1) as u64 * self.batches as u64;
            b.set_position(epoch_base + done as u64);
        }
    }

    fn on_epoch(&mut self, m: &EpochMetrics) {
        let val = m
            .val_loss
            .map(|v| format!(", val loss {v:.4}"))
            .unwrap_or_default();
        let line = format!(
            "epoch {}/{}: train loss {:.4}{val} ({:.1} s)",
            m.epoch, self.epochs, m.train_loss, m.seconds
        );
        match &self.bar {
            Some(b) => {
                b.set_position((m.epoch * self.batches) as u64);
                b.println(&line);
                if b.is_hidden() {
                    eprintln!("{line}");
                }
            }
            None => eprintln!("{line}"),
        }
        if let Some(f) = &mut self.on_epoch {
            f(m);
        }
    }

    fn on_end(&mut self) {
        if let Some(b) = self.bar.take() {
            b.finish_and_clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn early_stopping_waits_for_patience() {
        let mut s = EarlyStopping::new(2);
        assert_eq!(s.update(1, 1.0), (true, false));
        assert_eq!(s.update(2, 0.5), (true, false));
        assert_eq!(s.update(3, 0.6), (false, false));
        assert_eq!(s.update(4, 0.5), (false, true));
        assert_eq!(s.best_epoch, Some(2));
        let mut never = EarlyStopping::new(0);
        for e in 1..10 {
            assert!(!never.update(e, 1.0).1);
        }
    }
}

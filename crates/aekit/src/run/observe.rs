//! The observer of a run: a progress bar and a line per epoch on stderr, and
//! `metrics.csv` rewritten after every epoch.

use super::dir::{MetricsRow, RunDir};
use crate::error::Result;
use crate::models::stacked::{FinetuneEpoch, PretrainLog};
use crate::train::{EpochMetrics, Observer, Progress};

/// Shows progress and keeps `metrics.csv` (in the run directory, or in a
/// sub-folder's file) up to date, with rows made from each epoch by `row`.
/// The first error in writing is kept and returned by [`RunObserver::finish`],
/// so a full disk is reported, not ignored.
pub struct RunObserver<'a, R: MetricsRow> {
    run: &'a RunDir,
    file: String,
    progress: Progress<'a>,
    row: fn(&EpochMetrics) -> R,
    pub rows: Vec<R>,
    error: Option<crate::Error>,
}

impl<'a, R: MetricsRow> RunObserver<'a, R> {
    pub fn new(run: &'a RunDir, row: fn(&EpochMetrics) -> R) -> Self {
        Self::to_file(run, "metrics.csv", row)
    }

    /// Writes `file` (a path under the run directory) instead of `metrics.csv`.
    pub fn to_file(run: &'a RunDir, file: &str, row: fn(&EpochMetrics) -> R) -> Self {
        RunObserver {
            run,
            file: file.to_string(),
            progress: Progress::new(),
            row,
            rows: Vec::new(),
            error: None,
        }
    }

    /// The rows, or the first error in writing them.
    pub fn finish(self) -> Result<Vec<R>> {
        match self.error {
            Some(e) => Err(e),
            None => Ok(self.rows),
        }
    }
}

impl<R: MetricsRow> Observer for RunObserver<'_, R> {
    fn on_stage(&mut self, layer: usize, phase: &str) {
        self.progress.on_stage(layer, phase);
    }
    fn on_start(&mut self, epochs: usize, batches: usize) {
        self.progress.on_start(epochs, batches);
    }
    fn on_progress(&mut self, done: usize, total: usize) {
        self.progress.on_progress(done, total);
    }
    fn on_epoch(&mut self, m: &EpochMetrics) {
        self.progress.on_epoch(m);
        self.rows.push((self.row)(m));
        if let Err(e) = self.run.write_rows(&self.file, &self.rows) {
            self.error.get_or_insert(e);
        }
    }
    /// The file starts again from the checkpoint's rows (an epoch written
    /// after the checkpoint, by the run that was stopped, is dropped).
    fn on_resume(&mut self, history: &[EpochMetrics]) {
        self.rows = history.iter().map(self.row).collect();
        if let Some(m) = history.last() {
            eprintln!("resuming after epoch {}", m.epoch);
        }
        if let Err(e) = self.run.write_rows(&self.file, &self.rows) {
            self.error.get_or_insert(e);
        }
    }
    fn on_end(&mut self) {
        self.progress.on_end();
    }
}

/// Epochs as they are.
pub fn epoch_row(m: &EpochMetrics) -> EpochMetrics {
    *m
}

/// A fine-tuning epoch, whose validation figure is an error rate.
pub fn finetune_row(m: &EpochMetrics) -> FinetuneEpoch {
    FinetuneEpoch {
        epoch: m.epoch,
        train_loss: m.train_loss,
        val_error: m.val_loss.unwrap_or(f64::NAN),
        seconds: m.seconds,
    }
}

/// Pretraining's observer: progress on stderr and `metrics.csv` with a row
/// per epoch of every layer and phase.
pub struct PretrainObserver<'a> {
    run: &'a RunDir,
    log: PretrainLog<'a>,
    error: Option<crate::Error>,
}

impl<'a> PretrainObserver<'a> {
    pub fn new(run: &'a RunDir, progress: &'a mut Progress<'static>) -> Self {
        PretrainObserver {
            run,
            log: PretrainLog::new(progress),
            error: None,
        }
    }

    pub fn finish(self) -> Result<()> {
        self.error.map_or(Ok(()), Err)
    }
}

impl Observer for PretrainObserver<'_> {
    fn on_stage(&mut self, layer: usize, phase: &str) {
        eprintln!("layer {layer}, {phase}:");
        self.log.on_stage(layer, phase);
    }
    fn on_start(&mut self, epochs: usize, batches: usize) {
        self.log.on_start(epochs, batches);
    }
    fn on_progress(&mut self, done: usize, total: usize) {
        self.log.on_progress(done, total);
    }
    fn on_epoch(&mut self, m: &EpochMetrics) {
        self.log.on_epoch(m);
        if let Err(e) = self.run.write_metrics(&self.log.rows) {
            self.error.get_or_insert(e);
        }
    }
    fn on_end(&mut self) {
        self.log.on_end();
    }
    fn save_state(&self, s: &mut crate::train::State) {
        self.log.save_state(s);
    }
    /// The log starts again from the checkpoint's rows.
    fn load_state(&mut self, s: &crate::train::State) -> Result<()> {
        self.log.load_state(s)?;
        if let Err(e) = self.run.write_metrics(&self.log.rows) {
            self.error.get_or_insert(e);
        }
        Ok(())
    }
}

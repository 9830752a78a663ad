//! The epoch loop every model's `fit` shares: run an epoch, validate,
//! report, stop early on a validation figure that stopped improving (keeping
//! the best parameters), refuse a diverged run.

use super::{EarlyStopping, EpochMetrics, FitReport, Observer};
use crate::error::{Error, Result};
use std::time::Instant;

/// What a model lends the shared epoch loop.
pub trait Fit {
    /// One epoch over the training data: (mean training loss, updates).
    fn epoch(&mut self, obs: &mut dyn Observer) -> Result<(f64, u64)>;
    /// The figure early stopping watches (lower is better), or `None`
    /// without validation data.
    fn validate(&mut self) -> Result<Option<f64>>;
    /// The loss before any training, on (part of) the training data, where
    /// the model can tell it cheaply: the scale against which a runaway loss
    /// is judged from the first epoch on.
    fn start_loss(&mut self) -> Result<Option<f64>> {
        Ok(None)
    }
    /// The parameters, to keep the best epoch's.
    fn params(&self) -> &[f32];
    fn set_params(&mut self, p: &[f32]);
    /// The seconds to report after an epoch, given the wall-clock seconds
    /// since training began (a model may count training time only).
    fn seconds(&self, wall: f64) -> f64 {
        wall
    }
    /// Called after each epoch is reported, with the best validation figure
    /// before it: return `true` to stop now (an eager stop), or save a
    /// checkpoint.
    fn after_epoch(&mut self, _m: &EpochMetrics, _best_before: f64) -> Result<bool> {
        Ok(false)
    }
}

/// Runs up to `epochs` epochs of `f`, with early stopping after `patience`
/// epochs without a lower validation figure (0: never); the best epoch's
/// parameters are restored at the end. `lr_field` names the setting to blame
/// when the training loss stops being finite.
pub fn fit_loop(
    f: &mut dyn Fit,
    epochs: usize,
    patience: usize,
    obs: &mut dyn Observer,
    lr_field: &str,
) -> Result<FitReport> {
    let start = Instant::now();
    let mut history = Vec::new();
    let mut stop = EarlyStopping::new(patience);
    let mut best: Option<Vec<f32>> = None;
    let mut updates = 0u64;
    let mut stopped_early = false;
    // A loss that grows a million times past where it started (the loss
    // before training where the model tells it, else the first epoch's; and
    // at least past 10⁶) has run away even while it stays finite.
    let runaway = |start: f64| 1e6 * start.abs().max(1.0);
    let mut bound = f.start_loss()?.map_or(f64::INFINITY, runaway);
    for epoch in 1..=epochs {
        let (train_loss, u) = f.epoch(obs)?;
        updates += u;
        let val_loss = f.validate()?;
        let m = EpochMetrics {
            epoch,
            train_loss,
            val_loss,
            seconds: f.seconds(start.elapsed().as_secs_f64()),
            updates,
        };
        obs.on_epoch(&m);
        history.push(m);
        if !train_loss.is_finite() || train_loss > bound {
            obs.on_end();
            return Err(Error::config(
                lr_field,
                format!("training diverged at epoch {epoch} (loss {train_loss}); lower the learning rate"),
            ));
        }
        if epoch == 1 && bound.is_infinite() {
            bound = runaway(train_loss);
        }
        let best_before = stop.best;
        let mut halt = false;
        if let Some(v) = val_loss {
            let (improved, out_of_patience) = stop.update(epoch, v);
            if improved {
                best = Some(f.params().to_vec());
            }
            halt = out_of_patience;
        }
        if f.after_epoch(&m, best_before)? || halt {
            stopped_early = epoch < epochs;
            break;
        }
    }
    obs.on_end();
    if let Some(b) = best {
        f.set_params(&b);
    }
    let epochs_run = history.len();
    Ok(FitReport {
        best_epoch: stop.best_epoch.unwrap_or(epochs_run),
        history,
        stopped_early,
        train_seconds: f.seconds(start.elapsed().as_secs_f64()),
        updates,
    })
}

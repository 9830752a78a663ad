//! The epoch loop every model's `fit` shares: run an epoch, validate,
//! report, stop early on a validation figure that stopped improving (keeping
//! the best parameters), refuse a diverged run.

use super::{EarlyStopping, EpochMetrics, FitReport, Observer, State};
use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};
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
    /// Everything besides the loop's own counters that the next epoch
    /// depends on (parameters, optimizer state, random streams), into `s`.
    fn save_state(&self, _s: &mut State) -> Result<()> {
        Err(Error::config(
            "resume",
            "this model's training cannot be checkpointed",
        ))
    }
    /// Restores what [`Fit::save_state`] wrote.
    fn load_state(&mut self, _s: &State) -> Result<()> {
        Err(Error::config("resume", "this model's training cannot be resumed"))
    }
}

/// Where a fit's complete state goes after each epoch (with that epoch's
/// figures): a run directory's checkpoint writer.
pub type SaveState<'a> = dyn FnMut(State, &EpochMetrics) -> Result<()> + Send + 'a;

/// How a fit is checkpointed: the state to continue from, and where the
/// state goes after each epoch.
#[derive(Default)]
pub struct Checkpointing<'a> {
    /// A state an earlier run's `save` was given: the fit continues after
    /// its last epoch, exactly as if it had never stopped.
    pub resume: Option<State>,
    /// Called after each epoch (once it is reported and judged) with the
    /// complete state.
    pub save: Option<&'a mut SaveState<'a>>,
}

/// Early stopping's figures as a checkpoint keeps them (JSON has no ∞).
#[derive(Serialize, Deserialize)]
struct Judged {
    best: Option<f64>,
    best_epoch: Option<usize>,
    bad_epochs: usize,
    bound: Option<f64>,
    finished: bool,
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
    fit_loop_with(f, epochs, patience, obs, lr_field, Checkpointing::default())
}

/// [`fit_loop`], saving its state after each epoch and continuing from a
/// saved one as `ck` says. A stop request
/// ([`super::checkpoint::request_stop`]) ends it at the next step with
/// [`Error::Interrupted`], the last saved state untouched.
pub fn fit_loop_with(
    f: &mut dyn Fit,
    epochs: usize,
    patience: usize,
    obs: &mut dyn Observer,
    lr_field: &str,
    mut ck: Checkpointing<'_>,
) -> Result<FitReport> {
    let mut start = Instant::now();
    let mut history = Vec::new();
    let mut stop = EarlyStopping::new(patience);
    let mut best: Option<Vec<f32>> = None;
    let mut updates = 0u64;
    let mut stopped_early = false;
    let mut finished = false;
    // A loss that grows a million times past where it started (the loss
    // before training where the model tells it, else the first epoch's; and
    // at least past 10⁶) has run away even while it stays finite.
    let runaway = |start: f64| 1e6 * start.abs().max(1.0);
    let mut bound = f64::INFINITY;
    if let Some(s) = &ck.resume {
        f.load_state(s)?;
        history = s.get("fit.history")?;
        updates = s.get("fit.updates")?;
        let j: Judged = s.get("fit.judged")?;
        stop.best = j.best.unwrap_or(f64::INFINITY);
        stop.best_epoch = j.best_epoch;
        stop.bad_epochs = j.bad_epochs;
        bound = j.bound.unwrap_or(f64::INFINITY);
        finished = j.finished;
        stopped_early = finished && history.len() < epochs;
        if s.has_tensor("fit.best") {
            best = Some(s.tensor("fit.best", f.params().len())?.to_vec());
        }
        let wall: f64 = s.get("fit.wall")?;
        start = Instant::now()
            .checked_sub(std::time::Duration::from_secs_f64(wall))
            .unwrap_or(start);
        obs.load_state(s)?;
        obs.on_resume(&history);
    } else {
        bound = f.start_loss()?.map_or(bound, runaway);
    }
    for epoch in history.len() + 1..=epochs {
        if finished {
            break;
        }
        if super::checkpoint::stop_requested() {
            obs.on_end();
            return Err(super::checkpoint::interrupted(epoch - 1));
        }
        let (train_loss, u) = f.epoch(obs)?;
        if super::checkpoint::stop_requested() {
            obs.on_end();
            return Err(super::checkpoint::interrupted(epoch - 1));
        }
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
        // The training loss is summed while the weights move, so the last
        // step of an epoch can break them unseen: the validation loss,
        // taken after it, is checked too.
        let broken = if !train_loss.is_finite() || train_loss > bound {
            Some(format!("loss {train_loss}"))
        } else {
            val_loss
                .filter(|v| !v.is_finite())
                .map(|v| format!("validation loss {v}"))
        };
        if let Some(what) = broken {
            obs.on_end();
            return Err(Error::config(
                lr_field,
                format!("training diverged at epoch {epoch} ({what}); lower the learning rate"),
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
            finished = true;
        }
        if let Some(save) = ck.save.as_mut() {
            let mut s = State::new();
            f.save_state(&mut s)?;
            obs.save_state(&mut s);
            s.put("fit.history", &history);
            s.put("fit.updates", &updates);
            s.put(
                "fit.judged",
                &Judged {
                    best: stop.best.is_finite().then_some(stop.best),
                    best_epoch: stop.best_epoch,
                    bad_epochs: stop.bad_epochs,
                    bound: bound.is_finite().then_some(bound),
                    finished,
                },
            );
            s.put("fit.wall", &start.elapsed().as_secs_f64());
            if let Some(b) = &best {
                s.put_tensor("fit.best", b);
            }
            save(s, &m)?;
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

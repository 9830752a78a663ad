//! What a training run needs to continue exactly where it stopped: the
//! [`State`] a fit writes after each epoch (parameters, optimizer moments,
//! random streams, counters, the history so far), and the flag an interrupt
//! (Ctrl-C, SIGTERM) raises for the loops to stop at the next step.

use crate::error::{Error, Result};
use crate::tensor::rng::Rng;
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};

/// The metadata key a state file keeps its values under.
const VALUES: &str = "aekit_state";

/// A training run's state at the end of an epoch: named f32 tensors and
/// named values (any serde type, kept as JSON). Names are dotted paths
/// (`fit.best`, `opt.m`, `stage.rng`); a stage of a longer training puts
/// its fit's state under a prefix with [`State::nest`].
#[derive(Debug, Clone, Default, PartialEq)]
pub struct State {
    tensors: BTreeMap<String, Vec<f32>>,
    values: BTreeMap<String, serde_json::Value>,
}

impl State {
    pub fn new() -> State {
        State::default()
    }

    pub fn put_tensor(&mut self, name: &str, data: &[f32]) {
        self.tensors.insert(name.to_string(), data.to_vec());
    }

    /// The tensor `name`, which must hold `len` values.
    pub fn tensor(&self, name: &str, len: usize) -> Result<&[f32]> {
        let t = self.tensors.get(name).ok_or_else(|| missing(name))?;
        if t.len() != len {
            return Err(Error::config(
                "resume",
                format!(
                    "the checkpoint's `{name}` holds {} values, this run needs {len}",
                    t.len()
                ),
            ));
        }
        Ok(t)
    }

    /// The tensor `name`, whatever its length.
    pub fn tensor_any(&self, name: &str) -> Result<&[f32]> {
        self.tensors
            .get(name)
            .map(Vec::as_slice)
            .ok_or_else(|| missing(name))
    }

    pub fn has_tensor(&self, name: &str) -> bool {
        self.tensors.contains_key(name)
    }

    pub fn put<T: Serialize + ?Sized>(&mut self, name: &str, v: &T) {
        let v = serde_json::to_value(v).expect("checkpoint values serialise");
        self.values.insert(name.to_string(), v);
    }

    pub fn get<T: DeserializeOwned>(&self, name: &str) -> Result<T> {
        let v = self.values.get(name).ok_or_else(|| missing(name))?;
        serde_json::from_value(v.clone())
            .map_err(|e| Error::config("resume", format!("the checkpoint's `{name}` is not usable: {e}")))
    }

    pub fn has(&self, name: &str) -> bool {
        self.values.contains_key(name)
    }

    /// A random stream, exactly as it stands.
    pub fn put_rng(&mut self, name: &str, rng: &Rng) {
        self.put(name, rng);
    }

    pub fn rng(&self, name: &str) -> Result<Rng> {
        self.get(name)
    }

    /// Adds every entry of `inner` under `prefix.`.
    pub fn nest(&mut self, prefix: &str, inner: State) {
        for (k, v) in inner.tensors {
            self.tensors.insert(format!("{prefix}.{k}"), v);
        }
        for (k, v) in inner.values {
            self.values.insert(format!("{prefix}.{k}"), v);
        }
    }

    /// The entries under `prefix.`, with the prefix taken off (`None` when
    /// there are none).
    pub fn inner(&self, prefix: &str) -> Option<State> {
        let p = format!("{prefix}.");
        let mut s = State::new();
        for (k, v) in &self.tensors {
            if let Some(rest) = k.strip_prefix(&p) {
                s.tensors.insert(rest.to_string(), v.clone());
            }
        }
        for (k, v) in &self.values {
            if let Some(rest) = k.strip_prefix(&p) {
                s.values.insert(rest.to_string(), v.clone());
            }
        }
        (!s.tensors.is_empty() || !s.values.is_empty()).then_some(s)
    }

    /// Writes the state to `path` (safetensors: the tensors, and the values
    /// as JSON in the metadata), atomically.
    pub fn save(&self, path: &Path) -> Result<()> {
        let tensors: Vec<crate::io::safetensors::NamedTensor<'_>> = self
            .tensors
            .iter()
            .map(|(name, data)| crate::io::safetensors::NamedTensor {
                name,
                shape: vec![data.len()],
                data,
            })
            .collect();
        let mut meta = HashMap::new();
        meta.insert(
            VALUES.to_string(),
            serde_json::to_string(&self.values).expect("JSON values serialise"),
        );
        crate::io::safetensors::save(path, &tensors, meta)
    }

    /// Reads a state written by [`State::save`].
    pub fn load(path: &Path) -> Result<State> {
        let mut f = crate::io::safetensors::load(path)?;
        let values: BTreeMap<String, serde_json::Value> = serde_json::from_str(f.meta(VALUES)?)
            .map_err(|e| Error::format(path, format!("the checkpoint's values are not readable: {e}")))?;
        let mut tensors = BTreeMap::new();
        for name in f.names() {
            let len = f.shape_of(&name).map_or(0, |s| s.iter().product());
            let t = f.take(&name, &[len])?;
            tensors.insert(name, t);
        }
        Ok(State { tensors, values })
    }
}

fn missing(name: &str) -> Error {
    Error::config(
        "resume",
        format!("the checkpoint has no `{name}` (was it written by another kind of run?)"),
    )
}

/// The state a minibatch fit keeps beside its loop's: its parameters,
/// random stream, optimizer (under `opt.`) and batch counters (under
/// `batches.`).
pub fn save_minibatch_fit<B: Send + Sync, W: Send>(
    s: &mut State,
    params: &[f32],
    rng: &Rng,
    opt: &super::StepRule,
    batches: &super::Minibatches<B, W>,
) {
    s.put_tensor("params", params);
    s.put_rng("rng", rng);
    let mut o = State::new();
    opt.save_state(&mut o);
    s.nest("opt", o);
    let mut b = State::new();
    batches.save_state(&mut b);
    s.nest("batches", b);
}

/// Restores what [`save_minibatch_fit`] wrote.
pub fn load_minibatch_fit<B: Send + Sync, W: Send>(
    s: &State,
    params: &mut [f32],
    rng: &mut Rng,
    opt: &mut super::StepRule,
    batches: &mut super::Minibatches<B, W>,
) -> Result<()> {
    let n = params.len();
    params.copy_from_slice(s.tensor("params", n)?);
    *rng = s.rng("rng")?;
    opt.load_state(&s.inner("opt").unwrap_or_default(), n)?;
    batches.load_state(&s.inner("batches").unwrap_or_default())
}

static STOP: AtomicBool = AtomicBool::new(false);

/// Asks every training loop to stop at its next step (called from a Ctrl-C
/// or SIGTERM handler). The last complete checkpoint stays as it is.
pub fn request_stop() {
    STOP.store(true, Ordering::SeqCst);
}

/// Forgets a stop request (a library caller, such as the Python bindings,
/// that handled one and goes on).
pub fn clear_stop() {
    STOP.store(false, Ordering::SeqCst);
}

/// Whether a stop was asked for.
pub fn stop_requested() -> bool {
    STOP.load(Ordering::Relaxed)
}

/// The error a loop returns when it stopped on request.
pub fn interrupted(epochs_done: usize) -> Error {
    Error::Interrupted(format!(
        "stopped on request after {epochs_done} complete epoch(s)"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::RngCore;

    #[test]
    fn a_state_round_trips_through_its_file() {
        let tmp = tempfile::tempdir().unwrap();
        let mut rng = crate::tensor::rng::seeded(7);
        rng.next_u64();
        let mut s = State::new();
        s.put_tensor("params", &[1.5, -2.0, 3.25]);
        s.put("epoch", &4usize);
        s.put_rng("rng", &rng);
        let mut inner = State::new();
        inner.put_tensor("m", &[0.5]);
        inner.put("t", &9u32);
        s.nest("stage", inner.clone());
        let p = tmp.path().join("state.safetensors");
        s.save(&p).unwrap();
        let back = State::load(&p).unwrap();
        assert_eq!(back, s);
        assert_eq!(back.inner("stage").unwrap(), inner);
        assert!(back.inner("other").is_none());
        // The stream continues where it stood.
        let mut r2 = back.rng("rng").unwrap();
        assert_eq!(r2.next_u64(), rng.next_u64());
        let e = back.tensor("params", 4).unwrap_err().to_string();
        assert!(e.contains("holds 3 values"), "{e}");
        let e = back.get::<usize>("nothing").unwrap_err().to_string();
        assert!(e.contains("no `nothing`"), "{e}");
    }
}

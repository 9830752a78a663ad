//! The native core of the `aekit` Python package: thin classes over the
//! library's models that take and give NumPy arrays. The scikit-learn face
//! (parameters, validation, pickling) is the Python module `aekit`.
//!
//! Training releases the interpreter (other Python threads run meanwhile)
//! and looks for Ctrl-C about a hundred times an epoch: it stops at the
//! next step with `KeyboardInterrupt`, and the Python estimator keeps what
//! it had before that `fit` (its fitted attributes are set only when a fit
//! returns).

use aekit::data::Dataset;
use aekit::models::conv::{CaeSpec, CaeTrainConfig, ConvAutoencoder};
use aekit::models::impute::{Imputer, ImputerConfig};
use aekit::models::pca::{Pca, Solver};
use aekit::models::sparse_ae::{SparseAutoencoder, SparseConfig};
use aekit::models::stacked::{FinetuneConfig, PretrainConfig, StackedDae};
use aekit::models::{DaeConfig, DenoisingAutoencoder, Estimator};
use aekit::train::{EpochMetrics, Observer, TrainConfig};
use ndarray::{Array2, ArrayView2};
use numpy::{IntoPyArray, PyArray2, PyReadonlyArray2};
use pyo3::exceptions::{PyKeyboardInterrupt, PyRuntimeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::PyBytes;

/// A library error as the Python exception a user expects.
fn py_err(e: aekit::Error) -> PyErr {
    match e {
        aekit::Error::Interrupted(m) => PyKeyboardInterrupt::new_err(m),
        aekit::Error::Config { .. } | aekit::Error::Shape { .. } => PyValueError::new_err(e.to_string()),
        e => PyRuntimeError::new_err(e.to_string()),
    }
}

/// Reports epochs (when verbose) and checks for Ctrl-C from time to time.
struct PyObserver {
    verbose: bool,
    history: Vec<EpochMetrics>,
}

impl Observer for PyObserver {
    fn on_progress(&mut self, _done: usize, _total: usize) {
        let interrupted = Python::attach(|py| py.check_signals().is_err());
        if interrupted {
            aekit::train::checkpoint::request_stop();
        }
    }
    fn on_epoch(&mut self, m: &EpochMetrics) {
        // L-BFGS reports no progress inside an iteration: look here too.
        self.on_progress(0, 0);
        if self.verbose {
            match m.val_loss {
                Some(v) => eprintln!(
                    "epoch {}: train loss {:.4}, validation loss {v:.4} ({:.1} s)",
                    m.epoch, m.train_loss, m.seconds
                ),
                None => eprintln!(
                    "epoch {}: train loss {:.4} ({:.1} s)",
                    m.epoch, m.train_loss, m.seconds
                ),
            }
        }
        self.history.push(*m);
    }
}

/// Runs `f` (a training) with the interpreter released, a fresh stop flag,
/// and the observer; a Ctrl-C becomes `KeyboardInterrupt`.
fn train<T: Send>(
    py: Python<'_>,
    verbose: bool,
    f: impl FnOnce(&mut PyObserver) -> aekit::Result<T> + Send,
) -> PyResult<(T, Vec<EpochMetrics>)> {
    aekit::train::checkpoint::clear_stop();
    let mut obs = PyObserver {
        verbose,
        history: Vec::new(),
    };
    let r = py.detach(|| {
        // Subnormal results are 0 while it trains, and Python's own mode
        // comes back after (why: `aekit::tensor::ftz`).
        let _ftz = aekit::tensor::ftz::FlushToZero::on();
        f(&mut obs)
    });
    aekit::train::checkpoint::clear_stop();
    Ok((r.map_err(py_err)?, obs.history))
}

/// The epochs as a list of (epoch, train loss, validation loss or None,
/// seconds).
type History = Vec<(usize, f64, Option<f64>, f64)>;

fn history(h: &[EpochMetrics]) -> History {
    h.iter()
        .map(|m| (m.epoch, m.train_loss, m.val_loss, m.seconds))
        .collect()
}

/// A C-ordered float32 view of `x`, or an error naming `what`.
fn rows<'a>(x: &'a PyReadonlyArray2<'_, f32>, what: &str) -> PyResult<ArrayView2<'a, f32>> {
    let v = x.as_array();
    if !v.is_standard_layout() {
        return Err(PyValueError::new_err(format!(
            "{what}: expected a C-ordered array (the Python layer makes one)"
        )));
    }
    Ok(v)
}

fn out<'py>(py: Python<'py>, a: Array2<f32>) -> Bound<'py, PyArray2<f32>> {
    a.into_pyarray(py)
}

/// `f` of the rows of `x` (named `what` in errors), run with the
/// interpreter released, as a NumPy array.
fn map_rows<'py>(
    py: Python<'py>,
    x: &PyReadonlyArray2<'_, f32>,
    what: &str,
    f: impl FnOnce(ArrayView2<'_, f32>) -> aekit::Result<Array2<f32>> + Send,
) -> PyResult<Bound<'py, PyArray2<f32>>> {
    let v = rows(x, what)?;
    let r = py.detach(|| f(v)).map_err(py_err)?;
    Ok(out(py, r))
}

/// A model's safetensors bytes, written by `save` into a temporary file.
fn model_bytes<'py>(
    py: Python<'py>,
    save: impl FnOnce(&std::path::Path) -> aekit::Result<()>,
) -> PyResult<Bound<'py, PyBytes>> {
    let b = via_file(|p| {
        save(p)?;
        std::fs::read(p).map_err(|e| aekit::Error::io("cannot read back", p, e))
    })?;
    Ok(PyBytes::new(py, &b))
}

/// A model read by `load` from safetensors bytes (through a temporary file).
fn from_model_bytes<T>(b: &[u8], load: impl FnOnce(&std::path::Path) -> aekit::Result<T>) -> PyResult<T> {
    via_file(|p| {
        std::fs::write(p, b).map_err(|e| aekit::Error::io("cannot write", p, e))?;
        load(p)
    })
}

/// Runs `f` on a path in a fresh temporary folder (the library reads and
/// writes safetensors files), then removes the folder.
fn via_file<T>(f: impl FnOnce(&std::path::Path) -> aekit::Result<T>) -> PyResult<T> {
    let dir = std::env::temp_dir().join(format!(
        "aekit-py-{}-{:?}",
        std::process::id(),
        std::thread::current().id()
    ));
    std::fs::create_dir_all(&dir).map_err(|e| PyRuntimeError::new_err(e.to_string()))?;
    let path = dir.join("model.safetensors");
    let r = f(&path).map_err(py_err);
    let _ = std::fs::remove_dir_all(&dir);
    r
}

/// The dense denoising autoencoder.
#[pyclass(module = "aekit._aekit")]
struct Dae {
    model: DenoisingAutoencoder,
}

#[pymethods]
impl Dae {
    /// A model from JSON settings `{"model": {...}, "train": {...}}` (the
    /// `[model]` and `[train]` keys of `aekit train`).
    #[new]
    fn new(settings: &str) -> PyResult<Self> {
        #[derive(serde::Deserialize, Default)]
        #[serde(default, deny_unknown_fields)]
        struct Settings {
            model: DaeConfig,
            train: TrainConfig,
        }
        let s: Settings =
            serde_json::from_str(settings).map_err(|e| PyValueError::new_err(format!("settings: {e}")))?;
        s.model.validate().map_err(py_err)?;
        s.train.validate().map_err(py_err)?;
        Ok(Dae {
            model: DenoisingAutoencoder::new(s.model, s.train),
        })
    }

    /// Trains on `x` (validating on `val`); returns the epochs.
    #[pyo3(signature = (x, val=None, verbose=false))]
    fn fit(
        &mut self,
        py: Python<'_>,
        x: PyReadonlyArray2<'_, f32>,
        val: Option<PyReadonlyArray2<'_, f32>>,
        verbose: bool,
    ) -> PyResult<History> {
        let xv = rows(&x, "X")?;
        let vv = match &val {
            Some(v) => Some(rows(v, "validation X")?),
            None => None,
        };
        let model = &mut self.model;
        let (_, h) = train(py, verbose, move |obs| Estimator::fit(model, xv, vv, obs))?;
        Ok(history(&h))
    }

    fn transform<'py>(
        &self,
        py: Python<'py>,
        x: PyReadonlyArray2<'_, f32>,
    ) -> PyResult<Bound<'py, PyArray2<f32>>> {
        map_rows(py, &x, "X", |v| self.model.transform(v))
    }

    fn inverse_transform<'py>(
        &self,
        py: Python<'py>,
        h: PyReadonlyArray2<'_, f32>,
    ) -> PyResult<Bound<'py, PyArray2<f32>>> {
        map_rows(py, &h, "codes", |v| self.model.inverse_transform(v))
    }

    fn reconstruct<'py>(
        &self,
        py: Python<'py>,
        x: PyReadonlyArray2<'_, f32>,
    ) -> PyResult<Bound<'py, PyArray2<f32>>> {
        map_rows(py, &x, "X", |v| self.model.reconstruct(v))
    }

    /// The mean loss per example on clean `x` (lower is better).
    fn loss(&self, py: Python<'_>, x: PyReadonlyArray2<'_, f32>) -> PyResult<f64> {
        let v = rows(&x, "X")?;
        py.detach(|| self.model.score(v)).map_err(py_err)
    }

    fn weights<'py>(&self, py: Python<'py>) -> Bound<'py, PyArray2<f32>> {
        let c = &self.model.config;
        let w = Array2::from_shape_vec((c.n_vis, c.n_hid), self.model.weights().to_vec())
            .expect("W is n_vis × n_hid");
        out(py, w)
    }

    fn set_threads(&mut self, threads: usize) {
        Estimator::set_threads(&mut self.model, threads);
    }

    /// The model as safetensors bytes (what `aekit train` writes).
    fn to_bytes<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyBytes>> {
        model_bytes(py, |p| self.model.save(p))
    }

    #[staticmethod]
    fn from_bytes(b: &[u8]) -> PyResult<Self> {
        Ok(Dae {
            model: from_model_bytes(b, DenoisingAutoencoder::load)?,
        })
    }

    #[staticmethod]
    fn load(path: &str) -> PyResult<Self> {
        Ok(Dae {
            model: DenoisingAutoencoder::load(std::path::Path::new(path)).map_err(py_err)?,
        })
    }

    fn save(&self, path: &str) -> PyResult<()> {
        self.model.save(std::path::Path::new(path)).map_err(py_err)
    }

    #[getter]
    fn n_vis(&self) -> usize {
        self.model.config.n_vis
    }

    #[getter]
    fn n_hid(&self) -> usize {
        self.model.config.n_hid
    }
}

/// Principal components.
#[pyclass(module = "aekit._aekit")]
struct PcaCore {
    model: Pca,
}

#[pymethods]
impl PcaCore {
    #[new]
    #[pyo3(signature = (n_components, whiten=false, solver="exact", threads=1))]
    fn new(n_components: usize, whiten: bool, solver: &str, threads: usize) -> PyResult<Self> {
        let mut model = Pca::new(n_components, whiten);
        model.solver = match solver {
            "exact" | "full" | "auto" => Solver::Exact,
            "randomized" => Solver::Randomized,
            s => {
                return Err(PyValueError::new_err(format!(
                    "svd_solver `{s}` should be exact or randomized"
                )))
            }
        };
        model.threads = threads.max(1);
        Ok(PcaCore { model })
    }

    fn fit(&mut self, py: Python<'_>, x: PyReadonlyArray2<'_, f32>) -> PyResult<()> {
        let v = rows(&x, "X")?;
        let model = &mut self.model;
        py.detach(move || model.fit_rows(v)).map_err(py_err)
    }

    fn transform<'py>(
        &self,
        py: Python<'py>,
        x: PyReadonlyArray2<'_, f32>,
    ) -> PyResult<Bound<'py, PyArray2<f32>>> {
        map_rows(py, &x, "X", |v| Estimator::transform(&self.model, v))
    }

    fn inverse_transform<'py>(
        &self,
        py: Python<'py>,
        z: PyReadonlyArray2<'_, f32>,
    ) -> PyResult<Bound<'py, PyArray2<f32>>> {
        map_rows(py, &z, "codes", |v| Estimator::inverse_transform(&self.model, v))
    }

    /// Hinton's error: the squared error per row, summed over columns.
    fn error(&self, py: Python<'_>, x: PyReadonlyArray2<'_, f32>) -> PyResult<f64> {
        let v = rows(&x, "X")?;
        py.detach(|| Estimator::score(&self.model, v)).map_err(py_err)
    }

    fn components<'py>(&self, py: Python<'py>) -> Bound<'py, PyArray2<f32>> {
        let (k, d) = (self.model.k, self.model.dim());
        let c: Vec<f32> = self.model.components().iter().map(|&v| v as f32).collect();
        out(py, Array2::from_shape_vec((k, d), c).expect("k × d"))
    }

    fn mean(&self) -> Vec<f64> {
        self.model.mean().to_vec()
    }

    fn explained_variance(&self) -> Vec<f64> {
        self.model.explained_variance().to_vec()
    }

    fn total_variance(&self) -> f64 {
        self.model.total_variance()
    }

    fn to_bytes<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyBytes>> {
        model_bytes(py, |p| self.model.save(p))
    }

    #[staticmethod]
    fn from_bytes(b: &[u8]) -> PyResult<Self> {
        Ok(PcaCore {
            model: from_model_bytes(b, Pca::load)?,
        })
    }

    #[staticmethod]
    fn load(path: &str) -> PyResult<Self> {
        Ok(PcaCore {
            model: Pca::load(std::path::Path::new(path)).map_err(py_err)?,
        })
    }

    fn save(&self, path: &str) -> PyResult<()> {
        self.model.save(std::path::Path::new(path)).map_err(py_err)
    }

    /// The fitted state in full precision, for pickling: (k, whiten, mean,
    /// components, variances, total variance).
    #[allow(clippy::type_complexity)]
    fn state(&self) -> (usize, bool, Vec<f64>, Vec<f64>, Vec<f64>, f64) {
        let (m, c, v, t) = self.model.parts();
        (self.model.k, self.model.whiten, m, c, v, t)
    }

    #[staticmethod]
    fn from_state(
        k: usize,
        whiten: bool,
        mean: Vec<f64>,
        components: Vec<f64>,
        variance: Vec<f64>,
        total: f64,
    ) -> PyResult<Self> {
        Ok(PcaCore {
            model: Pca::from_parts(k, whiten, mean, components, variance, total).map_err(py_err)?,
        })
    }
}

/// The MIDAS imputer on arrays (NaN marks a missing cell; every column
/// continuous).
#[pyclass(module = "aekit._aekit")]
struct ImputerCore {
    model: Imputer,
}

#[pymethods]
impl ImputerCore {
    /// From JSON settings: the keys of `aekit impute`'s `[model]`, with
    /// `train` inside.
    #[new]
    fn new(settings: &str) -> PyResult<Self> {
        let c: ImputerConfig =
            serde_json::from_str(settings).map_err(|e| PyValueError::new_err(format!("settings: {e}")))?;
        c.validate().map_err(py_err)?;
        Ok(ImputerCore {
            model: Imputer::new(c),
        })
    }

    #[pyo3(signature = (x, verbose=false))]
    fn fit(&mut self, py: Python<'_>, x: PyReadonlyArray2<'_, f32>, verbose: bool) -> PyResult<History> {
        let v = rows(&x, "X")?;
        let model = &mut self.model;
        let (_, h) = train(py, verbose, move |obs| model.fit_array(v, obs))?;
        Ok(history(&h))
    }

    fn transform<'py>(
        &self,
        py: Python<'py>,
        x: PyReadonlyArray2<'_, f32>,
    ) -> PyResult<Bound<'py, PyArray2<f32>>> {
        map_rows(py, &x, "X", |v| self.model.transform_array(v))
    }

    fn to_bytes<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyBytes>> {
        model_bytes(py, |p| self.model.save(p))
    }

    #[staticmethod]
    fn from_bytes(b: &[u8]) -> PyResult<Self> {
        Ok(ImputerCore {
            model: from_model_bytes(b, Imputer::load)?,
        })
    }

    #[staticmethod]
    fn load(path: &str) -> PyResult<Self> {
        Ok(ImputerCore {
            model: Imputer::load(std::path::Path::new(path)).map_err(py_err)?,
        })
    }

    fn save(&self, path: &str) -> PyResult<()> {
        self.model.save(std::path::Path::new(path)).map_err(py_err)
    }

    /// Columns of the table it was fitted on (0 before a fit).
    #[getter]
    fn n_vis(&self) -> usize {
        self.model.schema.as_ref().map_or(0, |s| s.columns.len())
    }
}

/// The sparse autoencoder of the UFLDL exercise, trained by L-BFGS.
#[pyclass(module = "aekit._aekit")]
struct SparseCore {
    model: SparseAutoencoder,
}

#[pymethods]
impl SparseCore {
    /// From JSON settings `{"model": {...}, "max_iter": N, "threads": T}`
    /// (the `[sparse]` keys of `aekit train --kind sparse`).
    #[new]
    fn new(settings: &str) -> PyResult<Self> {
        #[derive(serde::Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Settings {
            model: SparseConfig,
            max_iter: usize,
            threads: usize,
        }
        let s: Settings =
            serde_json::from_str(settings).map_err(|e| PyValueError::new_err(format!("settings: {e}")))?;
        s.model.validate().map_err(py_err)?;
        let mut model = SparseAutoencoder::new(s.model);
        model.lbfgs.max_iter = s.max_iter;
        model.threads = s.threads;
        Ok(SparseCore { model })
    }

    /// Minimises the cost on `x`; returns the iterations as epochs.
    #[pyo3(signature = (x, verbose=false))]
    fn fit(&mut self, py: Python<'_>, x: PyReadonlyArray2<'_, f32>, verbose: bool) -> PyResult<History> {
        let v = rows(&x, "X")?;
        let model = &mut self.model;
        let (_, h) = train(py, verbose, move |obs| Estimator::fit(model, v, None, obs))?;
        Ok(history(&h))
    }

    fn transform<'py>(
        &self,
        py: Python<'py>,
        x: PyReadonlyArray2<'_, f32>,
    ) -> PyResult<Bound<'py, PyArray2<f32>>> {
        map_rows(py, &x, "X", |v| self.model.transform(v))
    }

    fn reconstruct<'py>(
        &self,
        py: Python<'py>,
        x: PyReadonlyArray2<'_, f32>,
    ) -> PyResult<Bound<'py, PyArray2<f32>>> {
        map_rows(py, &x, "X", |v| self.model.reconstruct(v))
    }

    /// The cost's parts on `x`: (total, reconstruction, weight decay,
    /// sparsity, mean activation).
    fn cost(&self, py: Python<'_>, x: PyReadonlyArray2<'_, f32>) -> PyResult<(f64, f64, f64, f64, f64)> {
        let v = rows(&x, "X")?;
        let par = aekit::tensor::gemm::Par::from_threads(self.model.threads);
        let c = py.detach(|| self.model.cost(v, par)).map_err(py_err)?;
        Ok((
            c.total,
            c.reconstruction,
            c.weight_decay,
            c.sparsity,
            c.mean_activation,
        ))
    }

    fn weights<'py>(&self, py: Python<'py>) -> Bound<'py, PyArray2<f32>> {
        let c = &self.model.config;
        let w = Array2::from_shape_vec((c.n_vis, c.n_hid), self.model.weights().to_vec())
            .expect("W₁ is n_vis × n_hid");
        out(py, w)
    }

    fn to_bytes<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyBytes>> {
        model_bytes(py, |p| self.model.save(p))
    }

    #[staticmethod]
    fn from_bytes(b: &[u8]) -> PyResult<Self> {
        Ok(SparseCore {
            model: from_model_bytes(b, SparseAutoencoder::load)?,
        })
    }

    #[staticmethod]
    fn load(path: &str) -> PyResult<Self> {
        Ok(SparseCore {
            model: SparseAutoencoder::load(std::path::Path::new(path)).map_err(py_err)?,
        })
    }

    /// The model's settings as `SparseCore::new` takes them (JSON).
    fn settings(&self) -> String {
        serde_json::json!({
            "model": self.model.config,
            "max_iter": self.model.lbfgs.max_iter,
            "threads": self.model.threads,
        })
        .to_string()
    }

    fn save(&self, path: &str) -> PyResult<()> {
        self.model.save(std::path::Path::new(path)).map_err(py_err)
    }

    #[getter]
    fn n_vis(&self) -> usize {
        self.model.config.n_vis
    }

    #[getter]
    fn n_hid(&self) -> usize {
        self.model.config.n_hid
    }
}

/// A convolutional autoencoder (rows are flattened `[C, H, W]` images).
#[pyclass(module = "aekit._aekit")]
struct ConvCore {
    model: ConvAutoencoder,
}

#[pymethods]
impl ConvCore {
    /// From JSON settings `{"architecture": preset name or spec, "loss",
    /// "seed", "train": {...}}` (`aekit cae`'s `[model]` and `[train]`).
    #[new]
    fn new(settings: &str) -> PyResult<Self> {
        #[derive(serde::Deserialize)]
        #[serde(untagged)]
        enum Architecture {
            Preset(String),
            Spec(CaeSpec),
        }
        #[derive(serde::Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Settings {
            architecture: Architecture,
            seed: u64,
            train: CaeTrainConfig,
        }
        let s: Settings =
            serde_json::from_str(settings).map_err(|e| PyValueError::new_err(format!("settings: {e}")))?;
        let spec = match s.architecture {
            Architecture::Spec(spec) => spec,
            Architecture::Preset(name) => CaeSpec::preset(&name).ok_or_else(|| {
                PyValueError::new_err(format!(
                    "architecture `{name}` is not one of {:?} (or give the layers as a dict)",
                    aekit::models::conv::PRESETS
                ))
            })?,
        };
        s.train.train.validate().map_err(py_err)?;
        let mut model = ConvAutoencoder::new(&spec, s.train.loss, s.seed).map_err(py_err)?;
        model.train = s.train;
        model.train.train.seed = s.seed;
        Ok(ConvCore { model })
    }

    /// The input shape `[C, H, W]` the architecture takes.
    #[getter]
    fn input_shape(&self) -> (usize, usize, usize) {
        let [c, h, w] = self.model.net.spec.input;
        (c, h, w)
    }

    #[getter]
    fn code_len(&self) -> usize {
        self.model.net.code_len()
    }

    /// Values per image, C·H·W.
    #[getter]
    fn n_vis(&self) -> usize {
        self.model.net.input_len()
    }

    /// Trains on `x` (validating on `val`); returns the epochs.
    #[pyo3(signature = (x, val=None, verbose=false))]
    fn fit(
        &mut self,
        py: Python<'_>,
        x: PyReadonlyArray2<'_, f32>,
        val: Option<PyReadonlyArray2<'_, f32>>,
        verbose: bool,
    ) -> PyResult<History> {
        let xv = rows(&x, "X")?;
        let vv = match &val {
            Some(v) => Some(rows(v, "validation X")?),
            None => None,
        };
        let model = &mut self.model;
        let (_, h) = train(py, verbose, move |obs| Estimator::fit(model, xv, vv, obs))?;
        Ok(history(&h))
    }

    fn transform<'py>(
        &self,
        py: Python<'py>,
        x: PyReadonlyArray2<'_, f32>,
    ) -> PyResult<Bound<'py, PyArray2<f32>>> {
        map_rows(py, &x, "X", |v| Estimator::transform(&self.model, v))
    }

    fn reconstruct<'py>(
        &self,
        py: Python<'py>,
        x: PyReadonlyArray2<'_, f32>,
    ) -> PyResult<Bound<'py, PyArray2<f32>>> {
        map_rows(py, &x, "X", |v| Estimator::reconstruct(&self.model, v))
    }

    /// The mean loss per image on clean `x` (lower is better).
    fn loss(&self, py: Python<'_>, x: PyReadonlyArray2<'_, f32>) -> PyResult<f64> {
        let v = rows(&x, "X")?;
        py.detach(|| Estimator::score(&self.model, v)).map_err(py_err)
    }

    fn set_threads(&mut self, threads: usize) {
        Estimator::set_threads(&mut self.model, threads);
    }

    fn to_bytes<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyBytes>> {
        model_bytes(py, |p| self.model.save(p, Default::default()))
    }

    #[staticmethod]
    fn from_bytes(b: &[u8]) -> PyResult<Self> {
        Ok(ConvCore {
            model: from_model_bytes(b, ConvAutoencoder::load)?,
        })
    }

    #[staticmethod]
    fn load(path: &str) -> PyResult<Self> {
        Ok(ConvCore {
            model: ConvAutoencoder::load(std::path::Path::new(path)).map_err(py_err)?,
        })
    }

    fn save(&self, path: &str) -> PyResult<()> {
        self.model
            .save(std::path::Path::new(path), Default::default())
            .map_err(py_err)
    }
}

/// The stacked denoising autoencoder: layer-wise pretraining, then
/// (optionally) supervised fine-tuning with a softmax layer.
#[pyclass(module = "aekit._aekit")]
struct StackedCore {
    model: StackedDae,
    finetune: FinetuneConfig,
}

/// Rows and class indices as the library's data set.
fn labelled(x: ArrayView2<'_, f32>, y: &[u8]) -> PyResult<Dataset> {
    if y.len() != x.nrows() {
        return Err(PyValueError::new_err(format!(
            "{} labels for {} rows",
            y.len(),
            x.nrows()
        )));
    }
    Ok(Dataset {
        x: x.iter().copied().collect(),
        labels: Some(y.to_vec()),
        n: x.nrows(),
        dim: x.ncols(),
        image: None,
    })
}

#[pymethods]
impl StackedCore {
    /// From JSON settings `{"n_vis", "seed", "pretrain": {...},
    /// "finetune": {...}}` (`aekit pretrain`'s and `aekit finetune`'s keys).
    #[new]
    fn new(settings: &str) -> PyResult<Self> {
        #[derive(serde::Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Settings {
            n_vis: usize,
            seed: u64,
            pretrain: PretrainConfig,
            finetune: FinetuneConfig,
        }
        let s: Settings =
            serde_json::from_str(settings).map_err(|e| PyValueError::new_err(format!("settings: {e}")))?;
        s.pretrain.validate().map_err(py_err)?;
        s.finetune.validate().map_err(py_err)?;
        if s.n_vis == 0 {
            return Err(PyValueError::new_err("n_vis must be at least 1"));
        }
        let mut model = StackedDae::new(s.n_vis, &s.pretrain.layers, s.seed);
        model.pretrain = s.pretrain;
        model.pretrain.train.seed = s.seed;
        Ok(StackedCore {
            model,
            finetune: s.finetune,
        })
    }

    /// Pretrains on `x`, layer after layer; returns every layer's epochs.
    #[pyo3(signature = (x, verbose=false))]
    fn pretrain(&mut self, py: Python<'_>, x: PyReadonlyArray2<'_, f32>, verbose: bool) -> PyResult<History> {
        let v = rows(&x, "X")?;
        let model = &mut self.model;
        let (_, h) = train(py, verbose, move |obs| Estimator::fit(model, v, None, obs))?;
        Ok(history(&h))
    }

    /// Fine-tunes the stack and a softmax layer on classes `y` (0, 1, …),
    /// stopping early on the validation rows' error; returns the epochs
    /// (their validation loss is the validation error in %).
    #[pyo3(signature = (x, y, x_val, y_val, verbose=false))]
    fn finetune(
        &mut self,
        py: Python<'_>,
        x: PyReadonlyArray2<'_, f32>,
        y: Vec<u8>,
        x_val: PyReadonlyArray2<'_, f32>,
        y_val: Vec<u8>,
        verbose: bool,
    ) -> PyResult<History> {
        let train_set = labelled(rows(&x, "X")?, &y)?;
        let val = labelled(rows(&x_val, "validation X")?, &y_val)?;
        let (model, cfg) = (&mut self.model, &self.finetune);
        let (_, h) = train(py, verbose, move |obs| {
            model.finetune(&train_set, &val, &val, cfg, obs)
        })?;
        Ok(history(&h))
    }

    /// The top layer's codes.
    fn transform<'py>(
        &self,
        py: Python<'py>,
        x: PyReadonlyArray2<'_, f32>,
    ) -> PyResult<Bound<'py, PyArray2<f32>>> {
        map_rows(py, &x, "X", |v| Estimator::transform(&self.model, v))
    }

    /// The class index of each row, by the fine-tuned softmax layer.
    fn predict(&self, py: Python<'_>, x: PyReadonlyArray2<'_, f32>) -> PyResult<Vec<u8>> {
        let d = labelled(rows(&x, "X")?, &vec![0; x.as_array().nrows()])?;
        let par = aekit::tensor::gemm::Par::from_threads(self.finetune.train.threads.max(1));
        py.detach(|| self.model.predict(&d, par)).map_err(py_err)
    }

    /// The softmax layer (W `[top width, classes]`, b), once fine-tuned.
    fn classifier<'py>(&self, py: Python<'py>) -> Option<(Bound<'py, PyArray2<f32>>, Vec<f32>)> {
        let (w, b) = self.model.classifier.as_ref()?;
        let top = *self.model.sizes.last().expect("a stack has layers");
        let w = Array2::from_shape_vec((top, b.len()), w.clone()).expect("top × classes");
        Some((out(py, w), b.clone()))
    }

    /// The mean cross-entropy of reconstructing `x` from the top layer.
    fn loss(&self, py: Python<'_>, x: PyReadonlyArray2<'_, f32>) -> PyResult<f64> {
        let v = rows(&x, "X")?;
        py.detach(|| Estimator::score(&self.model, v)).map_err(py_err)
    }

    fn to_bytes<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyBytes>> {
        model_bytes(py, |p| self.model.save(p, Default::default()))
    }

    #[staticmethod]
    fn from_bytes(b: &[u8]) -> PyResult<Self> {
        Ok(StackedCore {
            model: from_model_bytes(b, StackedDae::load)?,
            finetune: FinetuneConfig::default(),
        })
    }

    #[staticmethod]
    fn load(path: &str) -> PyResult<Self> {
        Ok(StackedCore {
            model: StackedDae::load(std::path::Path::new(path)).map_err(py_err)?,
            finetune: FinetuneConfig::default(),
        })
    }

    fn save(&self, path: &str) -> PyResult<()> {
        self.model
            .save(std::path::Path::new(path), Default::default())
            .map_err(py_err)
    }

    #[getter]
    fn n_vis(&self) -> usize {
        self.model.sizes[0]
    }

    /// The hidden layers' widths, bottom first.
    #[getter]
    fn layers(&self) -> Vec<usize> {
        self.model.sizes[1..].to_vec()
    }
}

/// The 10,000 MNIST test images shipped in aekit, `(X [10000, 784] in
/// [0, 1], labels)`.
#[pyfunction]
fn builtin_digits<'py>(py: Python<'py>) -> PyResult<(Bound<'py, PyArray2<f32>>, Vec<u8>)> {
    let d = aekit::data::builtin::builtin_mnist().map_err(py_err)?;
    let labels = d.labels.clone().unwrap_or_default();
    let x = Array2::from_shape_vec((d.n, d.dim), d.x).expect("n × dim");
    Ok((out(py, x), labels))
}

/// The kind of model a safetensors file written by aekit holds (its
/// `format` metadata: `aekit.dae`, `aekit.sparse`, ...).
#[pyfunction]
fn model_format(path: &str) -> PyResult<String> {
    let f = aekit::io::safetensors::load(std::path::Path::new(path)).map_err(py_err)?;
    // Convolutional autoencoders name themselves `model = cae`.
    if f.meta("model").is_ok_and(|m| m == "cae") {
        return Ok("aekit.cae".into());
    }
    Ok(f.meta("format").map_err(py_err)?.to_string())
}

#[pymodule]
fn _aekit(m: &Bound<'_, PyModule>) -> PyResult<()> {
    // rayon's global pool at its default size, its threads flushing
    // subnormal results to zero as the CLI's do.
    aekit::tensor::ftz::init_default_global_pool();
    m.add_class::<Dae>()?;
    m.add_class::<PcaCore>()?;
    m.add_class::<ImputerCore>()?;
    m.add_class::<SparseCore>()?;
    m.add_class::<ConvCore>()?;
    m.add_class::<StackedCore>()?;
    m.add_function(wrap_pyfunction!(builtin_digits, m)?)?;
    m.add_function(wrap_pyfunction!(model_format, m)?)?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}

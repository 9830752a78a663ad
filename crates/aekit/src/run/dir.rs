//! A run directory: `config.toml`, `metrics.csv`, `summary.json`, the model,
//! checkpoints and pictures. Every file is written atomically (a temporary
//! name, then a rename), and each of the three text files has one writer
//! here.

use crate::error::{Error, Result};
use crate::models::stacked::{FinetuneEpoch, PretrainEpoch};
use crate::train::EpochMetrics;
use std::path::{Path, PathBuf};

/// The folder a training command writes into.
#[derive(Debug, Clone)]
pub struct RunDir {
    pub path: PathBuf,
}

impl RunDir {
    /// Creates the folder (and parents) if needed.
    pub fn create(path: &Path) -> Result<RunDir> {
        std::fs::create_dir_all(path).map_err(|e| Error::io("cannot create run directory", path, e))?;
        Ok(RunDir {
            path: path.to_path_buf(),
        })
    }

    /// `runs/<prefix>-<unix time>` unless a folder is given.
    pub fn default_path(out: Option<&Path>, prefix: &str) -> PathBuf {
        out.map(Path::to_path_buf).unwrap_or_else(|| {
            let t = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs());
            PathBuf::from(format!("runs/{prefix}-{t}"))
        })
    }

    pub fn file(&self, name: &str) -> PathBuf {
        self.path.join(name)
    }

    /// A sub-folder (created if needed), e.g. `checkpoints` or `members/3`.
    pub fn folder(&self, name: &str) -> Result<PathBuf> {
        let p = self.file(name);
        std::fs::create_dir_all(&p).map_err(|e| Error::io("cannot create folder", &p, e))?;
        Ok(p)
    }

    pub fn write(&self, name: &str, bytes: &[u8]) -> Result<()> {
        crate::io::atomic_write(&self.file(name), bytes)
    }

    /// `config.toml`: the resolved configuration.
    pub fn write_config(&self, toml: &str) -> Result<()> {
        self.write("config.toml", toml.as_bytes())
    }

    /// `summary.json`: the run's final figures, with aekit's version added.
    pub fn write_summary(&self, summary: &serde_json::Value) -> Result<()> {
        let mut s = summary.clone();
        if let Some(o) = s.as_object_mut() {
            o.insert("aekit_version".into(), env!("CARGO_PKG_VERSION").into());
        }
        let text = serde_json::to_string_pretty(&s).expect("JSON values always serialise");
        self.write("summary.json", text.as_bytes())
    }

    /// Rewrites `name` (a metrics file) with every row so far: called after
    /// each epoch, so an interrupted run keeps its history.
    pub fn write_rows<R: MetricsRow>(&self, name: &str, rows: &[R]) -> Result<()> {
        self.write(name, metrics_csv(rows).as_bytes())
    }

    /// [`RunDir::write_rows`] into `metrics.csv`.
    pub fn write_metrics<R: MetricsRow>(&self, rows: &[R]) -> Result<()> {
        self.write_rows("metrics.csv", rows)
    }

    /// Where epoch `epoch`'s complete model is saved.
    pub fn checkpoint(&self, folder: &str, epoch: usize) -> Result<PathBuf> {
        Ok(self.folder(folder)?.join(format!("epoch-{epoch}.safetensors")))
    }
}

/// A row of a metrics file: its header and how it is written.
pub trait MetricsRow {
    const HEADER: &'static str;
    fn csv(&self) -> String;
}

/// The header, then one line per row.
pub fn metrics_csv<R: MetricsRow>(rows: &[R]) -> String {
    let mut s = format!("{}\n", R::HEADER);
    for r in rows {
        s.push_str(&r.csv());
        s.push('\n');
    }
    s
}

/// An empty field when there is no value.
fn opt(v: Option<f64>, digits: usize) -> String {
    v.map(|v| format!("{v:.digits$}")).unwrap_or_default()
}

impl MetricsRow for EpochMetrics {
    const HEADER: &'static str = "epoch,train_loss,val_loss,seconds";
    fn csv(&self) -> String {
        format!(
            "{},{:.6},{},{:.3}",
            self.epoch,
            self.train_loss,
            opt(self.val_loss, 6),
            self.seconds
        )
    }
}

impl MetricsRow for PretrainEpoch {
    const HEADER: &'static str = "layer,phase,epoch,train_loss,updates,seconds";
    fn csv(&self) -> String {
        format!(
            "{},{},{},{:.6},{},{:.3}",
            self.layer, self.phase, self.epoch, self.train_loss, self.updates, self.seconds
        )
    }
}

impl MetricsRow for FinetuneEpoch {
    const HEADER: &'static str = "epoch,train_loss,val_error,seconds";
    fn csv(&self) -> String {
        format!(
            "{},{:.6},{:.4},{:.3}",
            self.epoch, self.train_loss, self.val_error, self.seconds
        )
    }
}

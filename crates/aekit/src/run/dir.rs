//! A run directory: `config.toml`, `metrics.csv`, `summary.json`, the model
//! and pictures, each written atomically.

use crate::error::{Error, Result};
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

    pub fn file(&self, name: &str) -> PathBuf {
        self.path.join(name)
    }

    pub fn write(&self, name: &str, bytes: &[u8]) -> Result<()> {
        crate::io::atomic_write(&self.file(name), bytes)
    }

    /// Rewrites `metrics.csv` with every epoch so far (called after each
    /// epoch, so an interrupted run keeps its history).
    pub fn write_metrics(&self, history: &[EpochMetrics]) -> Result<()> {
        self.write("metrics.csv", metrics_csv(history).as_bytes())
    }
}

/// `epoch,train_loss,val_loss,seconds`; an empty val_loss means no validation.
pub fn metrics_csv(history: &[EpochMetrics]) -> String {
    let mut s = String::from("epoch,train_loss,val_loss,seconds\n");
    for m in history {
        let val = m.val_loss.map(|v| format!("{v:.6}")).unwrap_or_default();
        s.push_str(&format!(
            "{},{:.6},{},{:.3}\n",
            m.epoch, m.train_loss, val, m.seconds
        ));
    }
    s
}

//! Runs: one workflow per training verb (`train`, `pretrain`, `finetune`,
//! `cae`, `ensemble`), from a resolved configuration to a run directory
//! ([`RunDir`]: its configuration, metrics, summary, model, checkpoints and
//! pictures), reported by one observer ([`RunObserver`]).

pub mod cae;
pub mod config;
pub mod deep_ae;
pub mod denoise;
pub mod dir;
pub mod impute;
pub mod inpaint;
pub mod observe;
pub mod pca;
pub mod stacked;
pub mod train;

pub use config::{ModelKind, RunConfig, Sections};
pub use dir::{Out, RunDir};
pub use observe::RunObserver;

use crate::data::{DataConfig, Splits};
use crate::error::Result;

/// The training, validation and test parts of `data`, split with `seed`;
/// prints where each part came from.
pub fn load_splits(data: &DataConfig, seed: u64) -> Result<Splits> {
    let source = data.source()?;
    let s = crate::data::load_splits(
        &source,
        data.data_dir.as_deref(),
        data.train_size,
        data.val_size()?,
        seed,
    )?;
    eprintln!("data: {}", s.description);
    Ok(s)
}

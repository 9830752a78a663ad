//! The arguments of the verbs that apply a trained model to a dataset:
//! encode, reconstruct, eval, denoise and inpaint.

use super::{DataArgs, OutArgs};
use clap::{Args, ValueEnum};
use std::path::PathBuf;

#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum Split {
    Train,
    Test,
    /// Both parts, training pool first (every row of a user's file).
    All,
}

#[derive(Args, Debug)]
pub struct ModelData {
    /// A model.safetensors written by `aekit train`, a checkpoint folder, or
    /// a run folder (its model, or its last checkpoint's while it runs).
    #[arg(long)]
    pub model: PathBuf,
    #[command(flatten)]
    pub data: DataArgs,
    /// Which part of the data: the official test set (for builtin, its
    /// held-out last 2000 images), the training pool, or all of it. Default:
    /// all of a user's .npy, .csv or image folder, else the test set.
    #[arg(long, value_enum)]
    pub split: Option<Split>,
}

#[derive(Args, Debug)]
pub struct EncodeArgs {
    #[command(flatten)]
    pub input: ModelData,
    /// Output .npy file, shape [n, hidden], f32.
    #[arg(long)]
    pub out: PathBuf,
    /// Replace --out if it exists (never a file this command reads).
    #[arg(long)]
    pub force: bool,
}

#[derive(Args, Debug)]
pub struct ReconstructArgs {
    #[command(flatten)]
    pub input: ModelData,
    /// Output PNG.
    #[arg(long)]
    pub out: PathBuf,
    /// Replace --out if it exists (never a file this command reads).
    #[arg(long)]
    pub force: bool,
    /// Examples shown.
    #[arg(long, default_value_t = 10)]
    pub count: usize,
    /// Seed of the corruption shown.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
}

#[derive(Args, Debug)]
pub struct DenoiseArgs {
    #[command(flatten)]
    pub input: ModelData,
    #[command(flatten)]
    pub out: OutArgs,
    /// Corrupt the (clean) images first, e.g. gauss:0.5, gauss:0.5sd (0.5
    /// times the data's standard deviation), saltpepper:0.2 or mask:0.5,
    /// and report PSNR and SSIM against them; without it the images are
    /// taken as noisy already.
    #[arg(long)]
    pub noise: Option<String>,
    /// Seed of that corruption.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Images in the picture.
    #[arg(long, default_value_t = 10)]
    pub count: usize,
    /// Threads (a CAE's batches); 0 = all cores.
    #[arg(long, default_value_t = 1)]
    pub threads: usize,
}

#[derive(Args, Debug)]
pub struct InpaintArgs {
    #[command(flatten)]
    pub input: ModelData,
    #[command(flatten)]
    pub out: OutArgs,
    /// block:S (one S×S square), blocks:K:S, random:P or lines:K; or a file:
    /// an .npy with 1 where a pixel is missing ([h·w] or [h, w] for every
    /// image, or [n, h·w]), or an image whose white pixels are missing.
    #[arg(long, default_value = "block:12")]
    pub mask: String,
    /// Passes of the model, the known pixels put back after each.
    #[arg(long, default_value_t = 1)]
    pub iterations: usize,
    /// Seed of the masks.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Images in the picture.
    #[arg(long, default_value_t = 10)]
    pub count: usize,
    /// Threads (a CAE's batches); 0 = all cores.
    #[arg(long, default_value_t = 1)]
    pub threads: usize,
}

#[derive(Args, Debug)]
pub struct EvalArgs {
    #[command(flatten)]
    pub input: ModelData,
}

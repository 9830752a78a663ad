//! Command-line arguments (clap derive). Values are only parsed here, into
//! `Option`s that override a configuration file or the library's defaults;
//! they are checked once, by the library's `validate()`. The argument groups
//! every training verb shares are flattened: data, split, loop, output.

use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;

mod apply;
mod experiment;
pub use apply::*;
pub use experiment::*;

#[derive(Parser, Debug)]
#[command(
    name = "aekit",
    version,
    about = "Autoencoders for learning representations without labels"
)]
pub struct Cli {
    #[command(subcommand)]
    pub cmd: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Train a denoising autoencoder and write a run directory.
    Train(Box<TrainArgs>),
    /// Encode a dataset with a trained model into an .npy file of codes.
    Encode(EncodeArgs),
    /// Picture originals, corrupted inputs and reconstructions.
    Reconstruct(ReconstructArgs),
    /// Print a model's reconstruction metrics on a dataset as JSON.
    Eval(EvalArgs),
    /// Denoise images with a trained DAE or CAE: a user's noisy images, or
    /// clean ones corrupted first (--noise) with PSNR and SSIM against them.
    Denoise(DenoiseArgs),
    /// Fill missing pixels (a mask drawn per image) with a trained DAE or
    /// CAE, keeping the known ones, against mean and nearest-pixel fills.
    Inpaint(InpaintArgs),
    /// Pretrain a stacked denoising autoencoder: stacked, gradual or hybrid.
    Pretrain(Box<PretrainArgs>),
    /// Fine-tune a pretrained stack with a softmax layer on the labels.
    Finetune(Box<FinetuneArgs>),
    /// Train a convolutional autoencoder (Adam), optionally then a classifier
    /// on its codes.
    Cae(Box<CaeArgs>),
    /// Train K small CAEs at once, stop them eagerly, and classify with their
    /// joined codes and by majority vote.
    Ensemble(Box<EnsembleArgs>),
    /// Fill the missing cells of a CSV table with a denoising autoencoder
    /// (MIDAS); `impute fit` and `impute apply` split fitting from filling.
    Impute(Box<ImputeArgs>),
    /// Principal components of a dataset: explained variance, error against
    /// the number of components, a digit rebuilt from 1, 10, 50, 250.
    Pca(Box<PcaArgs>),
    /// Hinton & Salakhutdinov's deep autoencoder (784-1000-500-250-30),
    /// pretrained as RBMs or DAEs (or not), then fine-tuned; with PCA beside it.
    DeepAe(Box<DeepAeArgs>),
    /// Make datasets: the harder MNIST variants of Larochelle et al.
    #[command(subcommand)]
    Data(DataCommand),
    /// Experiments that reproduce the source papers.
    #[command(subcommand)]
    Experiment(ExperimentCommand),
    /// Compare analytic and numerical gradients (f64) on small models.
    Gradcheck(GradcheckArgs),
    /// Sample square patches from a folder of PNG or JPEG images into .npy.
    Patches(PatchesArgs),
    /// Benchmarks: per-example SGD against threads and hidden units.
    #[command(subcommand)]
    Bench(BenchCommand),
}

/// Where the data comes from.
#[derive(Args, Debug, Clone, Default)]
pub struct DataArgs {
    /// builtin (10k MNIST test images shipped in aekit), mnist, fashion-mnist,
    /// cifar10, cifar100, the original MNIST variants (mnist-basic,
    /// mnist-rot, mnist-bg-rand, mnist-bg-img, mnist-bg-img-rot), a directory
    /// of IDX, CIFAR binary or .amat files, a folder of PNG/JPEG images, an
    /// .npy file, or a .csv file of numbers.
    #[arg(long)]
    pub data: Option<String>,
    /// Resize every image of a folder to H,W (height, width); without it
    /// the images must share one size.
    #[arg(long, value_delimiter = ',', num_args = 1)]
    pub size: Option<Vec<usize>>,
    /// Where downloaded datasets are cached (default: $AEKIT_DATA, else
    /// ~/.cache/aekit).
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
}

/// How the data is split.
#[derive(Args, Debug, Clone, Default)]
pub struct SplitArgs {
    /// Training examples (a class-balanced subset); default: all but validation.
    #[arg(long)]
    pub train_size: Option<usize>,
    /// Validation examples; 0 turns validation and early stopping off.
    #[arg(long)]
    pub val_size: Option<usize>,
}

/// The training loop, shared by every training verb (`[train]` in a config
/// file). Unset flags keep the file's value, or the model's default.
#[derive(Args, Debug, Clone, Default)]
pub struct LoopArgs {
    /// Passes over the training set (the most, with early stopping).
    #[arg(long)]
    pub epochs: Option<usize>,
    /// Examples per update; 1 is per-example SGD.
    #[arg(long)]
    pub batch: Option<usize>,
    /// Learning rate (Adam's step size for the convolutional models).
    #[arg(long, allow_negative_numbers = true)]
    pub lr: Option<f32>,
    /// SGD momentum.
    #[arg(long, allow_negative_numbers = true)]
    pub momentum: Option<f32>,
    /// L2 penalty on weights (not biases).
    #[arg(long, allow_negative_numbers = true)]
    pub weight_decay: Option<f32>,
    /// Epochs without a better validation figure before stopping; 0 never stops.
    #[arg(long)]
    pub patience: Option<usize>,
    #[arg(long)]
    pub seed: Option<u64>,
    /// Threads; 0 = all cores. One thread is bit-for-bit reproducible.
    #[arg(long)]
    pub threads: Option<usize>,
    /// Where to train: cpu, or cuda / cuda:N (a build with the `cuda` feature).
    #[arg(long)]
    pub device: Option<aekit::train::Device>,
}

/// Where a run writes.
#[derive(Args, Debug, Clone, Default)]
pub struct OutArgs {
    /// Run directory (default: a new runs/<verb>-<unix time>). A folder that
    /// already holds files is refused.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Replace the earlier run in --out (its files are removed first).
    #[arg(long)]
    pub force: bool,
}

/// Continuing a stopped run.
#[derive(Args, Debug, Clone, Default)]
pub struct ResumeArgs {
    /// Continue the stopped run in this folder from its last checkpoint, with
    /// the settings in its config.toml (no other setting may be given).
    #[arg(long, value_name = "RUN_DIR", conflicts_with_all = ["out", "force"])]
    pub resume: Option<PathBuf>,
}

/// With `--resume`, every setting comes from the run's config.toml: a
/// setting also given on the command line is refused, not ignored.
pub fn check_resume(m: &clap::ArgMatches) -> Result<(), String> {
    use clap::parser::ValueSource;
    let Some((verb, sub)) = m.subcommand() else {
        return Ok(());
    };
    let given = |id: &str| sub.value_source(id) == Some(ValueSource::CommandLine);
    if !sub.try_contains_id("resume").unwrap_or(false) || !given("resume") {
        return Ok(());
    }
    // Argument ids only (flattened groups have ids too).
    let cmd = <Cli as clap::CommandFactory>::command();
    let args: Vec<String> = cmd
        .find_subcommand(verb)
        .map(|c| c.get_arguments().map(|a| a.get_id().to_string()).collect())
        .unwrap_or_default();
    let others: Vec<String> = sub
        .ids()
        .map(|id| id.as_str())
        .filter(|&id| id != "resume" && args.iter().any(|a| a == id) && given(id))
        .map(|id| format!("--{}", id.replace('_', "-")))
        .collect();
    if others.is_empty() {
        return Ok(());
    }
    Err(format!(
        "`aekit {verb} --resume` continues a run with the settings in its config.toml; drop {}",
        others.join(", ")
    ))
}

impl OutArgs {
    pub fn out(&self) -> aekit::run::Out {
        aekit::run::Out {
            path: self.out.clone(),
            force: self.force,
        }
    }
}

#[derive(Args, Debug)]
pub struct TrainArgs {
    /// A TOML file with [data], [model], [train] (and [sparse], [lbfgs])
    /// sections; flags override it.
    #[arg(long)]
    pub config: Option<PathBuf>,
    #[command(flatten)]
    pub data: DataArgs,
    #[command(flatten)]
    pub split: SplitArgs,
    #[command(flatten)]
    pub train: LoopArgs,
    #[command(flatten)]
    pub out: OutArgs,
    #[command(flatten)]
    pub resume: ResumeArgs,
    /// Hidden units.
    #[arg(long)]
    pub hidden: Option<usize>,
    /// none, mask:P, gauss:SIGMA, saltpepper:P, block:S or blocks:K:S (CPU).
    #[arg(long)]
    pub noise: Option<String>,
    /// squared or xent.
    #[arg(long)]
    pub loss: Option<String>,
    /// Give the decoder its own weights instead of Wᵀ.
    #[arg(long)]
    pub untied: bool,
    /// auto, rows (exact per-example SGD over blocks of visible units; auto's
    /// choice for batch 1), balanced (rows, re-shared by each core's measured
    /// speed as it runs: faster on unequal cores, not bit-reproducible), split
    /// (exact, over blocks of hidden units), hogwild (lock-free), minibatch
    /// (data-parallel batches) or gemm.
    #[arg(long)]
    pub parallel: Option<String>,
    /// dae (denoising autoencoder) or sparse (sparse autoencoder, L-BFGS).
    #[arg(long)]
    pub kind: Option<String>,
    /// sgd, adam, lbfgs (full batch), ga (genetic algorithm) or es
    /// (evolution strategy); ga and es use no gradients.
    #[arg(long)]
    pub optimizer: Option<String>,
    /// L-BFGS iterations at most.
    #[arg(long)]
    pub max_iter: Option<usize>,
    /// GA: individuals; ES: evaluations per generation (twice the pairs).
    #[arg(long)]
    pub population: Option<usize>,
    /// GA: mutation step; ES: perturbation scale.
    #[arg(long)]
    pub sigma: Option<f32>,
    /// Sparse autoencoder: target mean activation ρ.
    #[arg(long)]
    pub sparsity: Option<f64>,
    /// Sparse autoencoder: weight β of the sparsity penalty.
    #[arg(long)]
    pub beta: Option<f64>,
    /// Output units: sigmoid, or identity (linear, for real-valued data).
    #[arg(long)]
    pub output: Option<String>,
    /// Standardise each feature by the training data's mean and standard
    /// deviation, kept in the model (real-valued data; implies --output
    /// identity --loss squared).
    #[arg(long)]
    pub standardize: bool,
}

#[derive(Args, Debug)]
pub struct GradcheckArgs {
    /// sparse, dae, or all.
    #[arg(long, default_value = "sparse")]
    pub model: String,
    #[arg(long, default_value_t = 64)]
    pub n_vis: usize,
    #[arg(long, default_value_t = 25)]
    pub hidden: usize,
    #[arg(long, default_value_t = 100)]
    pub samples: usize,
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// The largest relative difference ‖g−ĝ‖/‖g+ĝ‖ that passes.
    #[arg(long, default_value_t = 1e-9)]
    pub tolerance: f64,
}

#[derive(Args, Debug)]
pub struct PatchesArgs {
    /// A folder of .png / .jpg / .jpeg images.
    #[arg(long)]
    pub images: PathBuf,
    /// Patch side in pixels.
    #[arg(long, default_value_t = 8)]
    pub size: usize,
    #[arg(long, default_value_t = 10000)]
    pub count: usize,
    /// Remove each patch's mean, clip at 3 standard deviations, scale to [0.1, 0.9].
    #[arg(long)]
    pub normalize: bool,
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Output .npy, shape [count, size²], f32.
    #[arg(long)]
    pub out: PathBuf,
    /// Also picture the first 100 patches into this PNG.
    #[arg(long)]
    pub picture: Option<PathBuf>,
    /// Replace --out and --picture if they exist (never an image read).
    #[arg(long)]
    pub force: bool,
}

#[derive(Args, Debug)]
pub struct PretrainArgs {
    /// A TOML file with [data], [model] and [train] sections; flags override it.
    #[arg(long)]
    pub config: Option<PathBuf>,
    #[command(flatten)]
    pub data: DataArgs,
    #[command(flatten)]
    pub split: SplitArgs,
    #[command(flatten)]
    pub train: LoopArgs,
    #[command(flatten)]
    pub out: OutArgs,
    #[command(flatten)]
    pub resume: ResumeArgs,
    /// Hidden layer widths, bottom first (default 1000,1000,1000).
    #[arg(long, value_delimiter = ',')]
    pub layers: Option<Vec<usize>>,
    /// stacked, gradual, rbm (a stack of RBMs) or hybrid:F.
    #[arg(long)]
    pub schedule: Option<String>,
    /// Corruption per layer (one value: every layer), e.g. mask:0.1,mask:0.2,mask:0.3.
    #[arg(long, value_delimiter = ',')]
    pub noise: Option<Vec<String>>,
    /// xent or squared.
    #[arg(long)]
    pub loss: Option<String>,
    /// Epochs of the first layer (the same as --epochs).
    #[arg(long)]
    pub first_epochs: Option<usize>,
    /// Epoch budget of each later layer.
    #[arg(long)]
    pub layer_epochs: Option<usize>,
    /// Multiply each layer's learning rate by this after every epoch of
    /// that layer (1: constant; the stacked schedule).
    #[arg(long)]
    pub lr_decay: Option<f32>,
    /// Give each layer's autoencoder its own decoder weights instead of Wᵀ
    /// (the stacked schedule).
    #[arg(long)]
    pub untied: bool,
}

#[derive(Args, Debug)]
pub struct FinetuneArgs {
    /// A model.safetensors written by `aekit pretrain` (or its run folder,
    /// or one of its checkpoints); or `pretrained` in the config file.
    #[arg(long)]
    pub model: Option<PathBuf>,
    /// A TOML file with [data], [model] and [train] sections; flags override it.
    #[arg(long)]
    pub config: Option<PathBuf>,
    #[command(flatten)]
    pub data: DataArgs,
    #[command(flatten)]
    pub split: SplitArgs,
    #[command(flatten)]
    pub train: LoopArgs,
    #[command(flatten)]
    pub out: OutArgs,
    #[command(flatten)]
    pub resume: ResumeArgs,
    /// Multiply the learning rate by this after every epoch (1: constant).
    #[arg(long)]
    pub lr_decay: Option<f32>,
    /// Drop each hidden unit with this probability in training (inverted
    /// dropout, a mask per example and unit each minibatch; 0: none; CPU
    /// only).
    #[arg(long)]
    pub dropout: Option<f32>,
    /// Validate and keep a moving average of the weights, forgetting at
    /// this factor per update (0.999: about the last 1,000 updates; 0:
    /// none, the last weights; CPU only).
    #[arg(long)]
    pub average: Option<f32>,
    /// After every update, scale each unit's incoming weight vector longer
    /// than this back to this length (max-norm, Srivastava et al. 2014; 0:
    /// none; CPU only).
    #[arg(long)]
    pub max_norm: Option<f32>,
}

/// How a CAE is built and trained (shared by `cae` and `ensemble`).
#[derive(Args, Debug, Clone, Default)]
pub struct CaeModelArgs {
    /// cae-mnist, cae-mnist-unpool, cae-mnist-upsample, cae-cifar, or a TOML
    /// file with `input`, `[[encoder]]` and `[[decoder]]`.
    #[arg(long)]
    pub arch: Option<String>,
    /// squared or xent (xent needs a final sigmoid).
    #[arg(long)]
    pub loss: Option<String>,
    /// Input corruption: none, mask:P, gauss:SIGMA, saltpepper:P, block:S or blocks:K:S.
    #[arg(long)]
    pub noise: Option<String>,
    /// Eager stop: end once an epoch improves the validation loss by less
    /// than this fraction (e.g. 0.01); 0 turns it off.
    #[arg(long)]
    pub min_improvement: Option<f64>,
    /// Output units: identity (linear, for real-valued images; replaces the
    /// decoder's last activation) or as the architecture says (arch).
    #[arg(long)]
    pub output: Option<String>,
    /// Standardise each input value by the training images' mean and
    /// standard deviation, kept in the model (implies --output identity
    /// --loss squared).
    #[arg(long)]
    pub standardize: bool,
}

/// The classifier on codes (`[classifier]` in a config file).
#[derive(Args, Debug, Clone, Default)]
pub struct ClassifierArgs {
    /// none, softmax, or mlp:H (one ReLU hidden layer of H units).
    #[arg(long)]
    pub classifier: Option<String>,
    #[arg(long)]
    pub classifier_epochs: Option<usize>,
    #[arg(long)]
    pub classifier_lr: Option<f32>,
    /// `aekit cae` only: after the classifier on frozen codes, fine-tune the
    /// encoder and classifier together on the labels for up to N epochs.
    #[arg(long)]
    pub finetune_epochs: Option<usize>,
    #[arg(long)]
    pub finetune_lr: Option<f32>,
}

#[derive(Args, Debug)]
pub struct CaeArgs {
    /// A TOML file with `arch` and [data], [model], [train] and [classifier]
    /// sections; flags override it.
    #[arg(long)]
    pub config: Option<PathBuf>,
    #[command(flatten)]
    pub data: DataArgs,
    #[command(flatten)]
    pub split: SplitArgs,
    #[command(flatten)]
    pub train: LoopArgs,
    #[command(flatten)]
    pub out: OutArgs,
    #[command(flatten)]
    pub resume: ResumeArgs,
    #[command(flatten)]
    pub model: CaeModelArgs,
    #[command(flatten)]
    pub cls: ClassifierArgs,
}

#[derive(Args, Debug)]
pub struct EnsembleArgs {
    /// A TOML file with `arch`, `members` and [data], [model], [train] and
    /// [classifier] sections; flags override it.
    #[arg(long)]
    pub config: Option<PathBuf>,
    #[command(flatten)]
    pub data: DataArgs,
    #[command(flatten)]
    pub split: SplitArgs,
    #[command(flatten)]
    pub train: LoopArgs,
    #[command(flatten)]
    pub out: OutArgs,
    #[command(flatten)]
    pub resume: ResumeArgs,
    #[command(flatten)]
    pub model: CaeModelArgs,
    #[command(flatten)]
    pub cls: ClassifierArgs,
    /// Members trained at once, one thread each (default 5).
    #[arg(long)]
    pub members: Option<usize>,
}

#[derive(Subcommand, Debug)]
pub enum BenchCommand {
    /// Seconds per epoch against threads and hidden units (the parallel-SGD
    /// paper's Fig. 3): bench.csv and bench.png.
    Threads(BenchThreadsArgs),
    /// Training error against elapsed time per thread count (its Fig. 2):
    /// curve.csv and curve.png.
    Curve(BenchCurveArgs),
    /// Sparse autoencoder: time per cost+gradient evaluation, GEMM path
    /// against the plain per-example path.
    Sparse(BenchSparseArgs),
}

/// The data a bench times on (default: mnist).
#[derive(Args, Debug, Clone)]
pub struct BenchDataArgs {
    #[arg(long, default_value = "mnist")]
    pub data: String,
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
}

#[derive(Args, Debug)]
pub struct BenchSparseArgs {
    #[arg(long, default_value_t = 196)]
    pub hidden: usize,
    #[arg(long, default_value_t = 10000)]
    pub examples: usize,
    #[arg(long, default_value_t = 2)]
    pub threads: usize,
    #[command(flatten)]
    pub data: BenchDataArgs,
}

#[derive(Args, Debug)]
pub struct BenchThreadsArgs {
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "100,200,300,400,500,600,700,800,900,1000"
    )]
    pub hidden: Vec<usize>,
    #[arg(long, value_delimiter = ',', default_value = "1,2,4,8")]
    pub threads: Vec<usize>,
    /// Examples per epoch (the first ones of the training set).
    #[arg(long, default_value_t = 60000)]
    pub examples: usize,
    /// Parallel modes to compare: split, rows, balanced, hogwild (and auto, gemm, minibatch).
    #[arg(long, value_delimiter = ',', default_value = "split,hogwild")]
    pub parallel: Vec<String>,
    #[command(flatten)]
    pub data: BenchDataArgs,
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Epochs timed per row: the thread counts take turns, round after round,
    /// and the table gives the median time and the median, lowest and highest
    /// speed-up within a round (this machine's speed drifts).
    #[arg(long, default_value_t = 1)]
    pub rounds: usize,
    #[command(flatten)]
    pub out: OutArgs,
}

#[derive(Args, Debug)]
pub struct BenchCurveArgs {
    #[arg(long, default_value_t = 500)]
    pub hidden: usize,
    #[arg(long, value_delimiter = ',', default_value = "1,2,4,8")]
    pub threads: Vec<usize>,
    #[arg(long, default_value_t = 5000)]
    pub examples: usize,
    #[arg(long, default_value_t = 15)]
    pub epochs: usize,
    /// Parallel mode for the runs with more than one thread.
    #[arg(long, default_value = "rows")]
    pub parallel: String,
    #[command(flatten)]
    pub data: BenchDataArgs,
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    #[command(flatten)]
    pub out: OutArgs,
}

/// `aekit impute`: fit and fill in one go, or `fit` / `apply`.
#[derive(Args, Debug)]
#[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
pub struct ImputeArgs {
    #[command(subcommand)]
    pub cmd: Option<ImputeCommand>,
    #[command(flatten)]
    pub fit: ImputeFitArgs,
    /// The filled table (with --m: FILE-1.csv, FILE-2.csv, …).
    #[arg(long, required = true)]
    pub out: Option<PathBuf>,
    #[command(flatten)]
    pub fill: FillArgs,
    /// First hide this fraction of the observed cells, fill them and report
    /// the error per column (OUT-overimpute.csv and .png).
    #[arg(long)]
    pub overimpute: Option<f64>,
}

#[derive(Subcommand, Debug)]
pub enum ImputeCommand {
    /// Fit an imputer to a table and write a run directory with its model.
    Fit(Box<ImputeFitCommand>),
    /// Fill a table with a fitted imputer.
    Apply(ImputeApplyArgs),
}

#[derive(Args, Debug)]
pub struct ImputeFitCommand {
    #[command(flatten)]
    pub fit: ImputeFitArgs,
    #[command(flatten)]
    pub out: OutArgs,
    #[command(flatten)]
    pub resume: ResumeArgs,
}

/// The table and how to fit to it.
#[derive(Args, Debug, Default)]
pub struct ImputeFitArgs {
    /// A TOML file with [data], [columns], [model] and [train]; flags override it.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// The CSV table (a header row, then one row per record).
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// `,`, `;` or `tab` (default: detected from the header line).
    #[arg(long)]
    pub delimiter: Option<String>,
    /// More texts that mean missing (besides empty, NA, NaN, ?, null).
    #[arg(long, value_delimiter = ',')]
    pub missing: Option<Vec<String>>,
    /// Columns to treat as categorical.
    #[arg(long, value_delimiter = ',')]
    pub categorical: Option<Vec<String>>,
    /// Columns to treat as binary.
    #[arg(long, value_delimiter = ',')]
    pub binary: Option<Vec<String>>,
    /// Columns to treat as continuous.
    #[arg(long, value_delimiter = ',')]
    pub continuous: Option<Vec<String>>,
    /// Columns to copy through unchanged.
    #[arg(long, value_delimiter = ',')]
    pub ignore: Option<Vec<String>>,
    /// Copy columns with no observed cell through (with a warning) instead of refusing them.
    #[arg(long)]
    pub drop_empty: bool,
    /// midas (layers mirrored) or mida (n+7, n+14, n+21, tanh).
    #[arg(long)]
    pub arch: Option<String>,
    /// Encoder widths, e.g. 256,256,256 (default: 64,64 with the linear path, 256,256,256 without).
    #[arg(long, value_delimiter = ',')]
    pub layers: Option<Vec<usize>>,
    /// Hidden activation: elu, relu or tanh.
    #[arg(long)]
    pub activation: Option<String>,
    /// Fraction of observed cells dropped from each training row's input.
    #[arg(long)]
    pub corruption: Option<f32>,
    /// Dropout rate after each hidden layer.
    #[arg(long)]
    pub dropout: Option<f32>,
    /// The loss counts every `observed` cell (MIDAS, the default) or the `hidden` ones only.
    #[arg(long)]
    pub loss_on: Option<String>,
    /// The linear path beside the network: auto (a Gaussian fitted by EM for
    /// rows up to 256 encoded values), gaussian, or none (the network alone).
    #[arg(long)]
    pub linear: Option<String>,
    #[command(flatten)]
    pub train: LoopArgs,
}

/// How filled tables are written.
#[derive(Args, Debug, Default)]
pub struct FillArgs {
    /// Write this many imputations (dropout on, levels drawn from their probabilities).
    #[arg(long)]
    pub m: Option<usize>,
    /// With --m: one long file with an `.imp` column instead of one file each.
    #[arg(long)]
    pub long: bool,
    /// With --m: binaries and categoricals take their most likely level.
    #[arg(long)]
    pub mode: bool,
    /// Refuse a level the model never saw (default: treat it as missing, with a warning).
    #[arg(long)]
    pub strict: bool,
    /// Replace output files that exist (never the table read).
    #[arg(long)]
    pub force: bool,
}

#[derive(Args, Debug)]
pub struct ImputeApplyArgs {
    /// A model.safetensors from `aekit impute fit` (or its run folder).
    #[arg(long)]
    pub model: PathBuf,
    /// The CSV table to fill.
    #[arg(long)]
    pub data: PathBuf,
    /// `,`, `;` or `tab` (default: detected).
    #[arg(long)]
    pub delimiter: Option<String>,
    /// More texts that mean missing.
    #[arg(long, value_delimiter = ',')]
    pub missing: Option<Vec<String>>,
    /// The filled table (with --m: FILE-1.csv, …).
    #[arg(long)]
    pub out: PathBuf,
    #[command(flatten)]
    pub fill: FillArgs,
    /// Seed of the draws.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
}

#[derive(Args, Debug)]
pub struct PcaArgs {
    /// A TOML file with [data] and [model]; flags override it.
    #[arg(long)]
    pub config: Option<PathBuf>,
    #[command(flatten)]
    pub data: DataArgs,
    #[command(flatten)]
    pub split: SplitArgs,
    /// Components to keep.
    #[arg(long)]
    pub components: Option<usize>,
    /// Scale each code to unit variance.
    #[arg(long)]
    pub whiten: bool,
    /// exact (the covariance's eigendecomposition) or randomized (for wide data, few components).
    #[arg(long)]
    pub solver: Option<String>,
    /// Threads; 0 = all cores.
    #[arg(long)]
    pub threads: Option<usize>,
    #[command(flatten)]
    pub out: OutArgs,
}

#[derive(Args, Debug)]
pub struct DeepAeArgs {
    /// A TOML file with [data] and [model] ([model.rbm], [model.dae],
    /// [model.train]); flags override it.
    #[arg(long)]
    pub config: Option<PathBuf>,
    #[command(flatten)]
    pub data: DataArgs,
    #[command(flatten)]
    pub split: SplitArgs,
    /// Fine-tuning's loop.
    #[command(flatten)]
    pub train: LoopArgs,
    #[command(flatten)]
    pub out: OutArgs,
    #[command(flatten)]
    pub resume: ResumeArgs,
    /// Encoder widths after the input, the code last (default 1000,500,250,30).
    #[arg(long, value_delimiter = ',')]
    pub layers: Option<Vec<usize>>,
    /// The code units: linear or logistic.
    #[arg(long)]
    pub code: Option<String>,
    /// rbm, dae or none.
    #[arg(long)]
    pub pretrain: Option<String>,
    /// Epochs of each RBM or DAE in pretraining.
    #[arg(long)]
    pub pretrain_epochs: Option<usize>,
    /// Gibbs steps of contrastive divergence (CD-k).
    #[arg(long)]
    pub cd_k: Option<usize>,
    /// Fine-tuning: adam, sgd or lbfgs (a few iterations per batch).
    #[arg(long)]
    pub optimizer: Option<String>,
    /// With lbfgs: iterations per batch.
    #[arg(long)]
    pub line_searches: Option<usize>,
    /// Fine-tuning loss: xent or squared.
    #[arg(long)]
    pub loss: Option<String>,
    /// Corrupt the inputs in fine-tuning (a deep denoising autoencoder):
    /// none, mask:P, gauss:SIGMA, saltpepper:P, block:S or blocks:K:S.
    #[arg(long)]
    pub noise: Option<String>,
    /// Output units: logistic (data in [0, 1]) or linear (real-valued data;
    /// squared loss, pretraining dae or none).
    #[arg(long)]
    pub output: Option<String>,
    /// Standardise each feature by the training data's mean and standard
    /// deviation, kept in the model (implies --output linear --loss squared).
    #[arg(long)]
    pub standardize: bool,
    /// Each fine-tuning epoch after the first --decay-from runs at this times the step of the one before (Adam, SGD).
    #[arg(long)]
    pub lr_decay: Option<f32>,
    /// Fine-tuning epochs at the full step size before --lr-decay starts.
    #[arg(long)]
    pub decay_from: Option<usize>,
    /// A run of a few minutes: 10,000 images, 2 pretraining and 5 fine-tuning epochs.
    #[arg(long)]
    pub quick: bool,
}

#[derive(Subcommand, Debug)]
pub enum DataCommand {
    /// Write an MNIST variant (rot, bg-rand, bg-img, bg-img-rot or basic) as
    /// IDX files that `--data DIR` reads, with Larochelle et al.'s sizes.
    Variants(VariantsArgs),
}

#[derive(Args, Debug)]
pub struct VariantsArgs {
    /// basic, rot, bg-rand, bg-img or bg-img-rot.
    #[arg(long)]
    pub kind: String,
    /// The digits: mnist (default), fashion-mnist, builtin or an IDX folder
    /// (also `--data`, as the other verbs spell it).
    #[arg(long, visible_alias = "data", default_value = "mnist")]
    pub source: String,
    /// Where downloaded datasets are cached.
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// The folder to write.
    #[arg(long)]
    pub out: PathBuf,
    /// Replace the files of an earlier variant in --out.
    #[arg(long)]
    pub force: bool,
    /// Training images: the first of the source's training set.
    #[arg(long, default_value_t = 12_000)]
    pub train: usize,
    /// Test images, drawn from the rest.
    #[arg(long, default_value_t = 50_000)]
    pub test: usize,
    /// How a digit and its background combine: max (the larger of the two at each pixel) or replace (the background only where the digit is zero)
    #[arg(long, default_value = "max")]
    pub blend: aekit::data::variants::Blend,
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
}

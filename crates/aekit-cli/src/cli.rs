//! Command-line arguments (clap derive). Values are only parsed here; they are
//! checked once, by the library's `validate()`.

use clap::{Args, Parser, Subcommand, ValueEnum};
use std::path::PathBuf;

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

#[derive(Args, Debug)]
pub struct BenchSparseArgs {
    #[arg(long, default_value_t = 196)]
    pub hidden: usize,
    #[arg(long, default_value_t = 10000)]
    pub examples: usize,
    #[arg(long, default_value_t = 2)]
    pub threads: usize,
    #[arg(long, default_value = "mnist")]
    pub data: String,
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
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
    /// Data source, as for `train` (default: mnist).
    #[arg(long, default_value = "mnist")]
    pub data: String,
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Epochs timed per row: the thread counts take turns, round after round,
    /// and the table gives the median time and the median, lowest and highest
    /// speed-up within a round (this machine's speed drifts).
    #[arg(long, default_value_t = 1)]
    pub rounds: usize,
    /// Output folder (default: runs/bench-threads-<unix time>).
    #[arg(long)]
    pub out: Option<PathBuf>,
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
    #[arg(long, default_value = "mnist")]
    pub data: String,
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Output folder (default: runs/bench-curve-<unix time>).
    #[arg(long)]
    pub out: Option<PathBuf>,
}

#[derive(Args, Debug, Clone)]
pub struct DataArgs {
    /// builtin (10k MNIST test images shipped in aekit), mnist, fashion-mnist,
    /// cifar10, cifar100, or a directory of IDX or CIFAR binary files.
    #[arg(long)]
    pub data: Option<String>,
    /// Where downloaded datasets are cached (default: $AEKIT_DATA, else
    /// ~/.cache/aekit).
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
}

#[derive(Args, Debug)]
pub struct TrainArgs {
    /// A TOML file with [data], [model] and [train] sections; flags override it.
    #[arg(long)]
    pub config: Option<PathBuf>,
    #[command(flatten)]
    pub data: DataArgs,
    /// Hidden units.
    #[arg(long)]
    pub hidden: Option<usize>,
    #[arg(long)]
    pub epochs: Option<usize>,
    /// Minibatch size; 1 is per-example SGD.
    #[arg(long)]
    pub batch: Option<usize>,
    /// Learning rate.
    #[arg(long, allow_negative_numbers = true)]
    pub lr: Option<f32>,
    #[arg(long, allow_negative_numbers = true)]
    pub momentum: Option<f32>,
    /// L2 penalty on weights (not biases).
    #[arg(long, allow_negative_numbers = true)]
    pub weight_decay: Option<f64>,
    /// none, mask:P, gauss:SIGMA or saltpepper:P.
    #[arg(long)]
    pub noise: Option<String>,
    /// squared or xent.
    #[arg(long)]
    pub loss: Option<String>,
    /// Give the decoder its own weights instead of Wᵀ.
    #[arg(long)]
    pub untied: bool,
    /// Training examples (a class-balanced subset).
    #[arg(long)]
    pub train_size: Option<usize>,
    /// Validation examples; 0 turns validation and early stopping off.
    #[arg(long)]
    pub val_size: Option<usize>,
    /// Epochs without improvement before stopping; 0 never stops early.
    #[arg(long)]
    pub patience: Option<usize>,
    #[arg(long)]
    pub seed: Option<u64>,
    /// Threads; 0 = all cores. One thread is bit-for-bit reproducible.
    #[arg(long)]
    pub threads: Option<usize>,
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
    /// sgd or lbfgs (full batch).
    #[arg(long)]
    pub optimizer: Option<String>,
    /// L-BFGS iterations at most.
    #[arg(long)]
    pub max_iter: Option<usize>,
    /// Sparse autoencoder: target mean activation ρ.
    #[arg(long)]
    pub sparsity: Option<f64>,
    /// Sparse autoencoder: weight β of the sparsity penalty.
    #[arg(long)]
    pub beta: Option<f64>,
    /// Output units: sigmoid, or identity (linear, for real-valued data).
    #[arg(long)]
    pub output: Option<String>,
    /// Run directory (default: runs/train-<unix time>).
    #[arg(long)]
    pub out: Option<PathBuf>,
}

#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum Split {
    Train,
    Test,
}

#[derive(Args, Debug)]
pub struct ModelData {
    /// A model.safetensors written by `aekit train`.
    #[arg(long)]
    pub model: PathBuf,
    #[command(flatten)]
    pub data: DataArgs,
    /// Which part of the data: the official test set (for builtin, its
    /// held-out last 2000 images) or the training pool.
    #[arg(long, value_enum, default_value_t = Split::Test)]
    pub split: Split,
}

#[derive(Args, Debug)]
pub struct EncodeArgs {
    #[command(flatten)]
    pub input: ModelData,
    /// Output .npy file, shape [n, hidden], f32.
    #[arg(long)]
    pub out: PathBuf,
}

#[derive(Args, Debug)]
pub struct ReconstructArgs {
    #[command(flatten)]
    pub input: ModelData,
    /// Output PNG.
    #[arg(long)]
    pub out: PathBuf,
    /// Examples shown.
    #[arg(long, default_value_t = 10)]
    pub count: usize,
    /// Seed of the corruption shown.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
}

#[derive(Args, Debug)]
pub struct EvalArgs {
    #[command(flatten)]
    pub input: ModelData,
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
}

#[derive(Args, Debug)]
pub struct PretrainArgs {
    #[command(flatten)]
    pub data: DataArgs,
    /// Hidden layer widths, bottom first.
    #[arg(long, value_delimiter = ',', default_value = "1000,1000,1000")]
    pub layers: Vec<usize>,
    /// stacked, gradual or hybrid:F.
    #[arg(long, default_value = "stacked")]
    pub schedule: String,
    /// Corruption per layer (one value: every layer), e.g. mask:0.1,mask:0.2,mask:0.3.
    #[arg(long, value_delimiter = ',', default_value = "mask:0.1,mask:0.2,mask:0.3")]
    pub noise: Vec<String>,
    /// xent or squared.
    #[arg(long, default_value = "xent")]
    pub loss: String,
    /// Epochs of the first layer.
    #[arg(long, default_value_t = 15)]
    pub first_epochs: usize,
    /// Epoch budget of each later layer.
    #[arg(long, default_value_t = 15)]
    pub layer_epochs: usize,
    #[arg(long, default_value_t = 20)]
    pub batch: usize,
    #[arg(long, default_value_t = 0.01, allow_negative_numbers = true)]
    pub lr: f32,
    #[arg(long, default_value_t = 0.0, allow_negative_numbers = true)]
    pub momentum: f32,
    #[arg(long, default_value_t = 0.0, allow_negative_numbers = true)]
    pub weight_decay: f32,
    /// Training examples (class-balanced subset); default: all but validation.
    #[arg(long)]
    pub train_size: Option<usize>,
    #[arg(long)]
    pub val_size: Option<usize>,
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    #[arg(long, default_value_t = 1)]
    pub threads: usize,
    #[arg(long)]
    pub out: Option<PathBuf>,
}

#[derive(Args, Debug)]
pub struct FinetuneArgs {
    /// A model.safetensors written by `aekit pretrain`.
    #[arg(long)]
    pub model: PathBuf,
    #[command(flatten)]
    pub data: DataArgs,
    #[arg(long)]
    pub train_size: Option<usize>,
    #[arg(long)]
    pub val_size: Option<usize>,
    #[arg(long, default_value_t = 30)]
    pub epochs: usize,
    #[arg(long, default_value_t = 20)]
    pub batch: usize,
    #[arg(long, default_value_t = 0.1, allow_negative_numbers = true)]
    pub lr: f32,
    #[arg(long, default_value_t = 0.0, allow_negative_numbers = true)]
    pub momentum: f32,
    #[arg(long, default_value_t = 0.0, allow_negative_numbers = true)]
    pub weight_decay: f32,
    /// Epochs without a lower validation error before stopping; 0 never stops.
    #[arg(long, default_value_t = 10)]
    pub patience: usize,
    /// Multiply the learning rate by this after every epoch (1: constant).
    #[arg(long, default_value_t = 1.0)]
    pub lr_decay: f32,
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    #[arg(long, default_value_t = 1)]
    pub threads: usize,
    #[arg(long)]
    pub out: Option<PathBuf>,
}

#[derive(Subcommand, Debug)]
pub enum ExperimentCommand {
    /// Kalmanovich & Chechik: gradual against stacked (and hybrid) training
    /// under one update budget, then fine-tuning on class-balanced subsets.
    GradualVsStacked(Box<GradualArgs>),
    /// The eager-training paper: a K-member CAE ensemble against one wider
    /// CAE at equal wall-clock time, on small and large MNIST splits.
    Eager(Box<EagerArgs>),
}

/// How a CAE trains (shared by `cae`, `ensemble` and `experiment eager`).
#[derive(Args, Debug, Clone)]
pub struct CaeTrainArgs {
    /// cae-mnist, cae-mnist-unpool, cae-mnist-upsample, cae-cifar, or a TOML
    /// file with `input`, `[[encoder]]` and `[[decoder]]`.
    #[arg(long, default_value = "cae-mnist")]
    pub arch: String,
    /// Most epochs (default: 10 for `cae`, 3 for `ensemble`).
    #[arg(long)]
    pub epochs: Option<usize>,
    #[arg(long, default_value_t = 100)]
    pub batch: usize,
    /// Adam's step size.
    #[arg(long, default_value_t = 1e-3, allow_negative_numbers = true)]
    pub lr: f32,
    /// squared or xent (xent needs a final sigmoid).
    #[arg(long, default_value = "squared")]
    pub loss: String,
    /// Input corruption: none, mask:P, gauss:SIGMA or saltpepper:P.
    #[arg(long, default_value = "none")]
    pub noise: String,
    #[arg(long, default_value_t = 0.0, allow_negative_numbers = true)]
    pub weight_decay: f32,
    /// Epochs without a lower validation loss before stopping; 0 never stops.
    #[arg(long, default_value_t = 0)]
    pub patience: usize,
    /// Eager stop: end once an epoch improves the validation loss by less
    /// than this fraction (e.g. 0.01); 0 turns it off.
    #[arg(long, default_value_t = 0.0)]
    pub min_improvement: f64,
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
}

/// The classifier on codes.
#[derive(Args, Debug, Clone)]
pub struct ClassifierArgs {
    /// none, softmax, or mlp:H (one ReLU hidden layer of H units).
    #[arg(long)]
    pub classifier: Option<String>,
    #[arg(long, default_value_t = 30)]
    pub classifier_epochs: usize,
    #[arg(long, default_value_t = 1e-3)]
    pub classifier_lr: f32,
    /// `aekit cae` only: after the classifier on frozen codes, fine-tune the
    /// encoder and classifier together on the labels for up to N epochs.
    #[arg(long, default_value_t = 0)]
    pub finetune_epochs: usize,
    #[arg(long, default_value_t = 2e-4)]
    pub finetune_lr: f32,
}

#[derive(Args, Debug)]
pub struct CaeArgs {
    #[command(flatten)]
    pub data: DataArgs,
    #[command(flatten)]
    pub train: CaeTrainArgs,
    #[command(flatten)]
    pub cls: ClassifierArgs,
    #[arg(long)]
    pub train_size: Option<usize>,
    /// Validation images; 0 turns validation (and early stopping) off.
    #[arg(long)]
    pub val_size: Option<usize>,
    /// Workers splitting each batch (data-parallel).
    #[arg(long, default_value_t = 1)]
    pub threads: usize,
    #[arg(long)]
    pub out: Option<PathBuf>,
}

#[derive(Args, Debug)]
pub struct EnsembleArgs {
    #[command(flatten)]
    pub data: DataArgs,
    #[command(flatten)]
    pub train: CaeTrainArgs,
    #[command(flatten)]
    pub cls: ClassifierArgs,
    /// Members trained at once, one thread each.
    #[arg(long, default_value_t = 5)]
    pub members: usize,
    #[arg(long)]
    pub train_size: Option<usize>,
    #[arg(long)]
    pub val_size: Option<usize>,
    /// Threads for encoding and classifying after training.
    #[arg(long, default_value_t = 2)]
    pub threads: usize,
    #[arg(long)]
    pub out: Option<PathBuf>,
}

#[derive(Args, Debug)]
pub struct EagerArgs {
    /// A small preset that runs in minutes: the small split only, 3 seeds,
    /// 3 epochs, 2000 test images.
    #[arg(long)]
    pub quick: bool,
    #[command(flatten)]
    pub data: DataArgs,
    /// Members of the ensemble.
    #[arg(long, default_value_t = 5)]
    pub members: usize,
    /// The monolithic CAE's channel multiplier (default: the member count,
    /// so its code is as wide as the ensemble's joined codes).
    #[arg(long)]
    pub mono_width: Option<usize>,
    /// Ensemble epochs; the monolithic CAE gets the same wall-clock time.
    #[arg(long)]
    pub epochs: Option<usize>,
    /// Seeds averaged per setting (the paper: 3).
    #[arg(long)]
    pub seeds: Option<usize>,
    /// Settings, as train/validation sizes (default: 4800/1200 and 48000/12000).
    #[arg(long, value_delimiter = ',')]
    pub settings: Option<Vec<String>>,
    /// Test images used (default: all).
    #[arg(long)]
    pub test_size: Option<usize>,
    #[arg(long, default_value_t = 2)]
    pub threads: usize,
    #[arg(long)]
    pub out: Option<PathBuf>,
}

#[derive(Args, Debug)]
pub struct GradualArgs {
    /// A small preset that runs in minutes: 6000 training images, 2×256
    /// units, 3 + 4 epochs, f ∈ {0, 0.5, 1}, one split, fine-tuning on 1000.
    #[arg(long)]
    pub quick: bool,
    #[command(flatten)]
    pub data: DataArgs,
    /// Hidden widths (the paper: 1000,1000).
    #[arg(long, value_delimiter = ',')]
    pub layers: Option<Vec<usize>>,
    /// Stacked fractions f to compare (the paper: 0,0.25,0.5,0.75,1).
    #[arg(long, value_delimiter = ',')]
    pub fractions: Option<Vec<f64>>,
    /// Train/validation splits to average over (the paper: 3).
    #[arg(long)]
    pub splits: Option<usize>,
    /// Epochs of layer 1 (the paper: 50).
    #[arg(long)]
    pub first_epochs: Option<usize>,
    /// Epoch budget of layer 2 (the paper: 80).
    #[arg(long)]
    pub layer_epochs: Option<usize>,
    /// Fine-tuning set sizes (the paper: 1000,5000,10000,20000,50000): class-balanced subsets, and the whole training set at its own size.
    #[arg(long, value_delimiter = ',')]
    pub finetune_sizes: Option<Vec<usize>>,
    #[arg(long)]
    pub finetune_epochs: Option<usize>,
    /// Training images drawn for pretraining (default: all but validation).
    #[arg(long)]
    pub train_size: Option<usize>,
    #[arg(long, default_value_t = 2)]
    pub threads: usize,
    #[arg(long)]
    pub out: Option<PathBuf>,
}

//! The arguments of `aekit experiment`: one verb per experiment of the
//! source papers, and the applied ones (imputation, denoising, inpainting).

use super::{DataArgs, LoopArgs, OutArgs};
use clap::{Args, Subcommand};
use std::path::PathBuf;

#[derive(Subcommand, Debug)]
pub enum ExperimentCommand {
    /// Kalmanovich & Chechik: gradual against stacked (and hybrid) training
    /// under one update budget, then fine-tuning on class-balanced subsets.
    GradualVsStacked(Box<GradualArgs>),
    /// The eager-training paper: a K-member CAE ensemble against one wider
    /// CAE at equal wall-clock time, on small and large MNIST splits.
    Eager(Box<EagerArgs>),
    /// Imputation: the MIDAS imputer against mean imputation and (through
    /// bench/impute_baselines.py) MICE and k-NN, on shipped tables and MNIST.
    Imputation(Box<ImputationArgs>),
    /// The parallel-SGD paper's plan: a genetic algorithm and an evolution
    /// strategy against per-example SGD on tied DAEs, at equal wall time.
    GaVsSgd(Box<GaVsSgdArgs>),
    /// The MNIST variants: SdA-3 on rot, bg-rand, bg-img, bg-img-rot beside
    /// Vincent et al.; depth 1-4 with and without pretraining on basic and rot.
    Variants(Box<VariantsExpArgs>),
    /// Denoising: a tied dense DAE, an untied deep DAE and a CAE, each
    /// trained with Gaussian (σ 0.3, 0.5) or salt-and-pepper (0.2) noise,
    /// against the median filter and a tuned Gaussian blur.
    Denoise(Box<RestoreArgs>),
    /// Inpainting: the same three models (trained with masking noise 0.5)
    /// filling 8×8 and 12×12 blocks and 50% missing pixels, against the mean
    /// and the nearest known pixel.
    Inpaint(Box<RestoreArgs>),
}

#[derive(Args, Debug)]
pub struct RestoreArgs {
    /// Built-in digits (1500 training, 300 validation, 500 test images),
    /// small models, 5 epochs: seconds.
    #[arg(long)]
    pub quick: bool,
    /// Datasets, comma-separated (default mnist,fashion-mnist, and cifar10
    /// when its files are in the data folder).
    #[arg(long, value_delimiter = ',')]
    pub data: Option<Vec<String>>,
    /// Where downloaded datasets are cached (default: $AEKIT_DATA, else
    /// ~/.cache/aekit).
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    #[command(flatten)]
    pub out: OutArgs,
    /// Training images per dataset (default 20000).
    #[arg(long)]
    pub train_size: Option<usize>,
    /// Test images per dataset (default 10000).
    #[arg(long)]
    pub test_size: Option<usize>,
    /// Epochs of each model (default 10).
    #[arg(long)]
    pub epochs: Option<usize>,
    /// Write the test images and their noisy copies or masks to inputs/ as
    /// .npy (for bench/denoise_baselines.py and bench/inpaint_baselines.py).
    #[arg(long)]
    pub save_inputs: bool,
    /// Threads; 0 = all cores.
    #[arg(long, default_value_t = 2)]
    pub threads: usize,
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
}

#[derive(Args, Debug)]
pub struct VariantsExpArgs {
    /// Built-in digits (2000/400/1000), 3×256 units, depths 1-2, 2 + 8 epochs.
    #[arg(long)]
    pub quick: bool,
    #[command(flatten)]
    pub data: DataArgs,
    #[command(flatten)]
    pub out: OutArgs,
    /// Units in every hidden layer, comma-separated (default 1000): with
    /// several, each net is pretrained and fine-tuned at each width, and the
    /// run with the lowest validation error is reported. One width a layer,
    /// bottom first: 3000x2000x1000 (nets of that depth only).
    #[arg(long, value_delimiter = ',')]
    pub width: Option<Vec<aekit::experiments::Width>>,
    /// Pretraining epochs per layer (default 10).
    #[arg(long)]
    pub pretrain_epochs: Option<usize>,
    /// Fine-tuning epochs at most (default 60).
    #[arg(long)]
    pub finetune_epochs: Option<usize>,
    /// Skip the depth table (SdA-3 and the DAE only).
    #[arg(long)]
    pub no_table: bool,
    /// The parts to run, comma-separated: sda (SdA-3 on the variants),
    /// table (depth 1-4 on basic and rot), dae (the tied 784→500 DAE).
    #[arg(long, value_delimiter = ',', default_value = "sda,table,dae")]
    pub parts: Vec<VariantsPart>,
    /// The sets to run, comma-separated: the variants of SdA-3 (default
    /// rot, bg-rand, bg-img, bg-img-rot) and the sets of the depth table
    /// (default basic, rot).
    #[arg(long, value_delimiter = ',')]
    pub sets: Option<Vec<aekit::data::variants::Variant>>,
    /// The depths of the table, comma-separated (default 1,2,3,4).
    #[arg(long, value_delimiter = ',')]
    pub depths: Option<Vec<usize>>,
    /// The table's rows, comma-separated: none, autoencoder, rbm (default all).
    #[arg(long, value_delimiter = ',')]
    pub pretrainings: Option<Vec<aekit::experiments::TablePretraining>>,
    /// Pretraining learning rate (default 0.01).
    #[arg(long)]
    pub pretrain_lr: Option<f32>,
    /// Pretraining minibatch size (default 20; 1 = one example at a time,
    /// as Vincent et al. pretrained).
    #[arg(long)]
    pub pretrain_batch: Option<usize>,
    /// Pretraining momentum (default 0.9).
    #[arg(long)]
    pub pretrain_momentum: Option<f32>,
    /// Pretraining learning rate factor per epoch of each layer (default 1:
    /// constant): a layer starts at --pretrain-lr and ends at
    /// --pretrain-lr × factor^(epochs-1). Autoencoder and SdA pretraining
    /// only (not with rbm in --pretrainings).
    #[arg(long)]
    pub pretrain_lr_decay: Option<f32>,
    /// Pretrain the autoencoders (and SdA) with untied decoders: each
    /// layer's decoder its own weights instead of Wᵀ.
    #[arg(long)]
    pub pretrain_untied: bool,
    /// Fine-tuning learning rates, comma-separated (default 0.05,0.1,0.2,0.4): each
    /// net is fine-tuned at each from the same pretrained weights, and the
    /// run with the lowest validation error is reported.
    #[arg(long, value_delimiter = ',')]
    pub finetune_lr: Option<Vec<f32>>,
    /// Fine-tuning learning rate factor per epoch (default 1: constant).
    #[arg(long)]
    pub lr_decay: Option<f32>,
    /// Fine-tuning minibatch sizes, comma-separated (default 20; 1 = one
    /// example at a time): each net is fine-tuned at each size and each
    /// --finetune-lr from the same pretrained weights, and the run with the
    /// lowest validation error is reported.
    #[arg(long, value_delimiter = ',')]
    pub finetune_batch: Option<Vec<usize>>,
    /// Fine-tuning momentum (default 0.9).
    #[arg(long)]
    pub finetune_momentum: Option<f32>,
    /// Fine-tuning L2 weight decay λ: adds ½·λ·‖W‖² to the loss, weights
    /// only (default 0: none).
    #[arg(long)]
    pub finetune_weight_decay: Option<f32>,
    /// Fine-tuning dropout: each hidden unit dropped with this probability
    /// in training, a mask per example and unit each minibatch (inverted
    /// dropout; default 0: none; CPU only).
    #[arg(long)]
    pub finetune_dropout: Option<f32>,
    /// Fine-tuning weight averaging: validate and keep a moving average of
    /// the weights, forgetting at this factor per update (0.999: about the
    /// last 1,000 updates; default 0: none, the last weights; CPU only).
    #[arg(long)]
    pub finetune_average: Option<f32>,
    /// Fine-tuning max-norm bound: after every update, each unit's incoming
    /// weight vector longer than this is scaled back to this length
    /// (Srivastava et al. 2014, with dropout; default 0: none; CPU only).
    #[arg(long)]
    pub finetune_max_norm: Option<f32>,
    /// Keep every pretrained stack in this folder, named by a digest of the
    /// training images and the pretraining settings, and load it from there
    /// when a later run asks for the same pretraining (a new fine-tuning
    /// setting then skips the pretraining).
    #[arg(long)]
    pub pretrained_cache: Option<PathBuf>,
    /// After choosing each net on validation, train it again on the
    /// training and validation sets together (pretraining too) at the
    /// chosen settings for the chosen number of epochs, and report that
    /// refit's test error beside the chosen run's.
    #[arg(long)]
    pub refit: bool,
    /// How a digit and its background combine: max (the larger of the two at each pixel) or replace (the background only where the digit is zero)
    #[arg(long, default_value = "max")]
    pub blend: aekit::data::variants::Blend,
    /// Threads; 0 = all cores.
    #[arg(long, default_value_t = 2)]
    pub threads: usize,
    /// Seed of the networks: first weights, corruption, example order.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Seed of the generated variants (angles, backgrounds), as `aekit data
    /// variants --seed`.
    #[arg(long, default_value_t = 1)]
    pub data_seed: u64,
}

/// A part of `aekit experiment variants`.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum VariantsPart {
    Sda,
    Table,
    Dae,
}

#[derive(Args, Debug)]
pub struct ImputationArgs {
    /// Datasets: wine, breast_cancer, diabetes, mnist.
    #[arg(long, value_delimiter = ',')]
    pub datasets: Option<Vec<String>>,
    /// MCAR rates.
    #[arg(long, value_delimiter = ',')]
    pub rates: Option<Vec<f64>>,
    /// Repeats per setting.
    #[arg(long)]
    pub repeats: Option<usize>,
    /// Leave MIDA's MNAR pattern out.
    #[arg(long)]
    pub no_mnar: bool,
    /// Leave the Python baselines (MICE, k-NN) out.
    #[arg(long)]
    pub no_baselines: bool,
    /// Epochs for MNIST (10,000 rows × 784 columns).
    #[arg(long)]
    pub mnist_epochs: Option<usize>,
    /// Encoder widths.
    #[arg(long, value_delimiter = ',')]
    pub layers: Option<Vec<usize>>,
    /// Dropout rate after each hidden layer.
    #[arg(long)]
    pub dropout: Option<f32>,
    /// Fraction of observed cells hidden from each training row's input.
    #[arg(long)]
    pub corruption: Option<f32>,
    /// The loss counts every `observed` cell (default) or the `hidden` ones only.
    #[arg(long)]
    pub loss_on: Option<String>,
    /// The linear path beside the network: auto (a Gaussian fitted by EM for
    /// rows up to 256 encoded values), gaussian, or none (the network alone).
    #[arg(long)]
    pub linear: Option<String>,
    #[command(flatten)]
    pub train: LoopArgs,
    #[command(flatten)]
    pub out: OutArgs,
}

#[derive(Args, Debug)]
pub struct GaVsSgdArgs {
    /// A preset that runs in under a minute: 7000 built-in images, the
    /// 784→64 DAE only, 8 s per method.
    #[arg(long)]
    pub quick: bool,
    #[command(flatten)]
    pub data: DataArgs,
    #[command(flatten)]
    pub out: OutArgs,
    /// Hidden widths of the tied DAEs compared (default 500,64).
    #[arg(long, value_delimiter = ',')]
    pub hidden: Option<Vec<usize>>,
    /// Seconds each method trains each model (default 120).
    #[arg(long)]
    pub seconds: Option<f64>,
    /// Training images (default: all).
    #[arg(long)]
    pub train_size: Option<usize>,
    /// GA: individuals; ES: evaluations per generation.
    #[arg(long)]
    pub population: Option<usize>,
    /// GA: mutation step (default 0.01); ES: perturbation scale (default 0.02).
    #[arg(long)]
    pub sigma: Option<f32>,
    /// Threads; 0 = all cores.
    #[arg(long, default_value_t = 2)]
    pub threads: usize,
}

#[derive(Args, Debug)]
pub struct EagerArgs {
    /// A small preset that runs in minutes: the small split only, 3 seeds,
    /// 3 epochs, 2000 test images.
    #[arg(long)]
    pub quick: bool,
    #[command(flatten)]
    pub data: DataArgs,
    #[command(flatten)]
    pub out: OutArgs,
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
    /// Threads; 0 = all cores.
    #[arg(long, default_value_t = 2)]
    pub threads: usize,
}

#[derive(Args, Debug)]
pub struct GradualArgs {
    /// A small preset that runs in minutes: 6000 training images, 2×256
    /// units, 3 + 4 epochs, f ∈ {0, 0.5, 1}, one split, fine-tuning on 1000.
    #[arg(long)]
    pub quick: bool,
    #[command(flatten)]
    pub data: DataArgs,
    #[command(flatten)]
    pub out: OutArgs,
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
    /// Threads; 0 = all cores.
    #[arg(long, default_value_t = 2)]
    pub threads: usize,
    /// Where to pretrain and fine-tune: cpu, or cuda / cuda:N.
    #[arg(long, default_value = "cpu")]
    pub device: aekit::train::Device,
}

//! One module per verb, each a thin face over the library: flags over a
//! config file over the library's defaults, then the library's workflow.

mod bench;
mod cae;
mod deep_ae;
mod experiment;
mod gradcheck;
mod impute;
mod model_data;
mod stacked;
mod train;

use crate::cli::{Cli, Command, DataArgs, LoopArgs, SplitArgs};
use aekit::data::DataConfig;
use aekit::train::TrainConfig;

pub fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.cmd {
        Command::Train(a) => train::run(*a),
        Command::Encode(a) => model_data::encode(a),
        Command::Reconstruct(a) => model_data::reconstruct(a),
        Command::Eval(a) => model_data::eval(a),
        Command::Denoise(a) => model_data::denoise(a),
        Command::Inpaint(a) => model_data::inpaint(a),
        Command::Pretrain(a) => stacked::pretrain(*a),
        Command::Finetune(a) => stacked::finetune(*a),
        Command::Experiment(crate::cli::ExperimentCommand::GradualVsStacked(a)) => {
            experiment::gradual_vs_stacked(*a)
        }
        Command::Experiment(crate::cli::ExperimentCommand::Eager(a)) => experiment::eager(*a),
        Command::Experiment(crate::cli::ExperimentCommand::Imputation(a)) => experiment::imputation(*a),
        Command::Experiment(crate::cli::ExperimentCommand::GaVsSgd(a)) => experiment::ga_vs_sgd(*a),
        Command::Experiment(crate::cli::ExperimentCommand::Denoise(a)) => {
            experiment::restoration(*a, aekit::experiments::Task::Denoise)
        }
        Command::Experiment(crate::cli::ExperimentCommand::Inpaint(a)) => {
            experiment::restoration(*a, aekit::experiments::Task::Inpaint)
        }
        Command::Experiment(crate::cli::ExperimentCommand::Variants(a)) => {
            use crate::cli::VariantsPart;
            let e = aekit::experiments::Variants {
                quick: a.quick,
                data: a.data.data,
                data_dir: a.data.data_dir,
                width: a.width,
                pretrain_epochs: a.pretrain_epochs,
                finetune_epochs: a.finetune_epochs,
                sda: a.parts.contains(&VariantsPart::Sda),
                sets: a.sets,
                depths: a.depths,
                pretrainings: a.pretrainings,
                table: !a.no_table && a.parts.contains(&VariantsPart::Table),
                dae: a.parts.contains(&VariantsPart::Dae),
                pretrain_lr: a.pretrain_lr,
                pretrain_batch: a.pretrain_batch,
                pretrain_momentum: a.pretrain_momentum,
                pretrain_lr_decay: a.pretrain_lr_decay,
                pretrain_untied: a.pretrain_untied,
                finetune_lr: a.finetune_lr,
                lr_decay: a.lr_decay,
                finetune_batch: a.finetune_batch,
                finetune_momentum: a.finetune_momentum,
                finetune_weight_decay: a.finetune_weight_decay,
                finetune_dropout: a.finetune_dropout,
                finetune_average: a.finetune_average,
                finetune_max_norm: a.finetune_max_norm,
                pretrained_cache: a.pretrained_cache,
                refit: a.refit,
                blend: a.blend,
                threads: a.threads,
                seed: a.seed,
                data_seed: a.data_seed,
            };
            aekit::experiments::variants(&e, &a.out.out())?;
            Ok(())
        }
        Command::Cae(a) => cae::cae(*a),
        Command::Ensemble(a) => cae::ensemble(*a),
        Command::Impute(a) => impute::run(*a),
        Command::Pca(a) => {
            use aekit::run::Sections;
            let mut c = match &a.config {
                Some(p) => aekit::run::pca::PcaRun::read(p)?,
                None => aekit::run::pca::PcaRun::default(),
            };
            apply_data(&mut c.data, &a.data, &a.split)?;
            if let Some(k) = a.components {
                c.model.components = k;
            }
            if a.whiten {
                c.model.whiten = true;
            }
            if let Some(sv) = parsed(&a.solver, "--solver")? {
                c.model.solver = sv;
            }
            if let Some(t) = a.threads {
                c.model.threads = t;
            }
            aekit::run::pca::pca(c, &a.out.out())?;
            Ok(())
        }
        Command::DeepAe(a) => deep_ae::run(*a),
        Command::Data(crate::cli::DataCommand::Variants(a)) => {
            let kind: aekit::data::variants::Variant = a
                .kind
                .parse()
                .map_err(|e: String| anyhow::anyhow!("--kind: {e}"))?;
            let source: aekit::data::DataSource = a
                .source
                .parse()
                .map_err(|e: String| anyhow::anyhow!("--source: {e}"))?;
            let recipe = aekit::data::variants::Recipe {
                variant: kind,
                blend: a.blend,
            };
            aekit::data::variants::write_variant(
                recipe,
                &source,
                a.data_dir.as_deref(),
                &a.out,
                a.train,
                a.test,
                a.seed,
                a.force,
            )?;
            eprintln!(
                "wrote {kind}: {} training and {} test images, and examples.png, to {}",
                a.train,
                a.test,
                a.out.display()
            );
            Ok(())
        }
        Command::Gradcheck(a) => gradcheck::run(a),
        Command::Patches(a) => gradcheck::patches(a),
        Command::Bench(crate::cli::BenchCommand::Threads(a)) => bench::threads(a),
        Command::Bench(crate::cli::BenchCommand::Curve(a)) => bench::curve(a),
        Command::Bench(crate::cli::BenchCommand::Sparse(a)) => bench::sparse(a),
    }
}

/// Parses a flag's text with the library's `FromStr`, naming the flag.
fn parsed<T: std::str::FromStr<Err = String>>(v: &Option<String>, flag: &str) -> anyhow::Result<Option<T>> {
    v.as_deref()
        .map(|s| s.parse().map_err(|e: String| anyhow::anyhow!("{flag}: {e}")))
        .transpose()
}

/// `--size H,W` as (height, width).
fn size_flag(data: &DataArgs) -> anyhow::Result<Option<[usize; 2]>> {
    match data.size.as_deref() {
        None => Ok(None),
        Some(&[h, w]) => Ok(Some([h, w])),
        Some(other) => anyhow::bail!(
            "--size: give height and width as H,W (got {} numbers)",
            other.len()
        ),
    }
}

/// The data and split flags, over `d`.
fn apply_data(d: &mut DataConfig, data: &DataArgs, split: &SplitArgs) -> anyhow::Result<()> {
    if let Some(s) = &data.data {
        d.source = s.clone();
    }
    if let Some(s) = size_flag(data)? {
        d.size = Some(s);
    }
    if let Some(dir) = &data.data_dir {
        d.data_dir = Some(dir.clone());
    }
    if split.train_size.is_some() {
        d.train_size = split.train_size;
    }
    if split.val_size.is_some() {
        d.val_size = split.val_size;
    }
    Ok(())
}

/// The loop flags, over `t`.
fn apply_loop(t: &mut TrainConfig, a: &LoopArgs) {
    macro_rules! set {
        ($($f:ident),*) => { $( if let Some(v) = a.$f { t.$f = v; } )* };
    }
    set!(
        epochs,
        batch,
        lr,
        momentum,
        weight_decay,
        patience,
        seed,
        threads,
        device
    );
}

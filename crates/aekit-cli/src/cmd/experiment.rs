//! `aekit experiment gradual-vs-stacked`, `eager`, `imputation`, `ga-vs-sgd`,
//! `denoise` and `inpaint`.

use crate::cli::{EagerArgs, GaVsSgdArgs, GradualArgs, ImputationArgs, RestoreArgs};
use aekit::experiments::{self, Eager, GradualVsStacked};
use anyhow::Result;

pub fn gradual_vs_stacked(a: GradualArgs) -> Result<()> {
    let e = GradualVsStacked {
        quick: a.quick,
        data: a.data.data,
        data_dir: a.data.data_dir,
        layers: a.layers,
        fractions: a.fractions,
        splits: a.splits,
        first_epochs: a.first_epochs,
        layer_epochs: a.layer_epochs,
        finetune_sizes: a.finetune_sizes,
        finetune_epochs: a.finetune_epochs,
        train_size: a.train_size,
        threads: a.threads,
        device: a.device,
    };
    experiments::gradual_vs_stacked(&e, &a.out.out())?;
    Ok(())
}

pub fn eager(a: EagerArgs) -> Result<()> {
    let e = Eager {
        quick: a.quick,
        data: a.data.data,
        data_dir: a.data.data_dir,
        members: a.members,
        mono_width: a.mono_width,
        epochs: a.epochs,
        seeds: a.seeds,
        settings: a.settings,
        test_size: a.test_size,
        threads: a.threads,
    };
    experiments::eager(&e, &a.out.out())?;
    Ok(())
}

pub fn imputation(a: ImputationArgs) -> Result<()> {
    let mut e = experiments::Imputation::default();
    if let Some(d) = a.datasets {
        e.datasets = d;
    }
    if let Some(r) = a.rates {
        e.rates = r;
    }
    if let Some(r) = a.repeats {
        e.repeats = r;
    }
    e.mnar = !a.no_mnar;
    e.baselines = !a.no_baselines;
    if let Some(m) = a.mnist_epochs {
        e.mnist_epochs = m;
    }
    if let Some(l) = a.layers {
        e.model.layers = l;
    }
    if let Some(d) = a.dropout {
        e.model.dropout = d;
    }
    if let Some(c) = a.corruption {
        e.model.corruption = c;
    }
    if let Some(l) = super::parsed(&a.loss_on, "--loss-on")? {
        e.model.loss_on = l;
    }
    if let Some(l) = super::parsed(&a.linear, "--linear")? {
        e.model.linear = l;
    }
    super::apply_loop(&mut e.model.train, &a.train);
    experiments::imputation(&e, &a.out.out())?;
    Ok(())
}

pub fn ga_vs_sgd(a: GaVsSgdArgs) -> Result<()> {
    let mut e = experiments::GaVsSgd {
        quick: a.quick,
        data: a.data.data,
        data_dir: a.data.data_dir,
        hidden: a.hidden,
        seconds: a.seconds,
        train_size: a.train_size,
        threads: a.threads,
        ..Default::default()
    };
    aekit::train::evolve::apply_flags(&mut e.ga, &mut e.es, a.population, a.sigma);
    experiments::ga_vs_sgd(&e, &a.out.out())?;
    Ok(())
}

pub fn restoration(a: RestoreArgs, task: experiments::Task) -> Result<()> {
    let threads = aekit::train::TrainConfig {
        threads: a.threads,
        ..Default::default()
    }
    .resolved_threads();
    let e = experiments::Restoration {
        task,
        quick: a.quick,
        data: a.data.unwrap_or_default(),
        data_dir: a.data_dir,
        train_size: a.train_size,
        test_size: a.test_size,
        epochs: a.epochs,
        save_inputs: a.save_inputs,
        threads,
        seed: a.seed,
    };
    experiments::restoration(&e, &a.out.out())?;
    Ok(())
}

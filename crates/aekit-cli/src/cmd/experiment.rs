//! `aekit experiment gradual-vs-stacked` and `aekit experiment eager`.

use crate::cli::{EagerArgs, GradualArgs};
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

//! `aekit bench threads`, `bench curve` and `bench sparse`.

use crate::cli::{BenchCurveArgs, BenchSparseArgs, BenchThreadsArgs};
use aekit::bench::{commands, BenchCurve, BenchSparse, BenchThreads};
use anyhow::Result;

pub fn threads(a: BenchThreadsArgs) -> Result<()> {
    let parallel = a
        .parallel
        .iter()
        .map(|m| m.parse().map_err(|e: String| anyhow::anyhow!("--parallel: {e}")))
        .collect::<Result<_>>()?;
    let b = BenchThreads {
        hidden: a.hidden,
        threads: a.threads,
        examples: a.examples,
        parallel,
        data: a.data.data,
        data_dir: a.data.data_dir,
        seed: a.seed,
        rounds: a.rounds,
    };
    commands::threads(&b, &a.out.out())?;
    Ok(())
}

pub fn curve(a: BenchCurveArgs) -> Result<()> {
    let b = BenchCurve {
        hidden: a.hidden,
        threads: a.threads,
        examples: a.examples,
        epochs: a.epochs,
        parallel: a
            .parallel
            .parse()
            .map_err(|e: String| anyhow::anyhow!("--parallel: {e}"))?,
        data: a.data.data,
        data_dir: a.data.data_dir,
        seed: a.seed,
    };
    commands::curve(&b, &a.out.out())?;
    Ok(())
}

pub fn sparse(a: BenchSparseArgs) -> Result<()> {
    let b = BenchSparse {
        hidden: a.hidden,
        examples: a.examples,
        threads: a.threads,
        data: a.data.data,
        data_dir: a.data.data_dir,
    };
    commands::sparse(&b)?;
    Ok(())
}

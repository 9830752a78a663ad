//! The benchmark commands: `aekit bench threads` (the parallel-SGD paper's
//! Fig. 3), `bench curve` (its Fig. 2) and `bench sparse`, each timing on the
//! first examples of a data source and writing a run directory.

use crate::bench;
use crate::data::{load_train_test, DataSource, Dataset};
use crate::error::{Error, Result};
use crate::run::{Out, RunDir};
use crate::train::ParallelMode;
use crate::viz::plot::{save_line_chart, Series};
use std::path::{Path, PathBuf};

/// `aekit bench threads`: seconds per epoch against threads and hidden units.
#[derive(Debug, Clone, PartialEq)]
pub struct BenchThreads {
    pub hidden: Vec<usize>,
    pub threads: Vec<usize>,
    /// Examples per epoch (the first ones of the training set).
    pub examples: usize,
    /// Parallel modes to compare.
    pub parallel: Vec<ParallelMode>,
    /// Data source and download cache.
    pub data: String,
    pub data_dir: Option<PathBuf>,
    pub seed: u64,
    /// Epochs timed per row, the thread counts taking turns.
    pub rounds: usize,
}

/// `aekit bench curve`: training error against elapsed time per thread count.
#[derive(Debug, Clone, PartialEq)]
pub struct BenchCurve {
    pub hidden: usize,
    pub threads: Vec<usize>,
    pub examples: usize,
    pub epochs: usize,
    /// The mode of the runs with more than one thread.
    pub parallel: ParallelMode,
    pub data: String,
    pub data_dir: Option<PathBuf>,
    pub seed: u64,
}

/// `aekit bench sparse`: one cost+gradient evaluation of the sparse
/// autoencoder, GEMM path against the plain per-example path.
#[derive(Debug, Clone, PartialEq)]
pub struct BenchSparse {
    pub hidden: usize,
    pub examples: usize,
    pub threads: usize,
    pub data: String,
    pub data_dir: Option<PathBuf>,
}

/// The first `examples` training images of `data`.
fn training_examples(data: &str, dir: Option<&Path>, examples: usize) -> Result<Dataset> {
    let source: DataSource = data.parse().map_err(|e: String| Error::config("data", e))?;
    if examples == 0 {
        return Err(Error::config("examples", "must be at least 1"));
    }
    let (train, _) = load_train_test(&source, dir)?;
    if examples > train.n {
        return Err(Error::config(
            "examples",
            format!("{examples}: data `{data}` has only {} training images", train.n),
        ));
    }
    Ok(train.select(&(0..examples).collect::<Vec<_>>()))
}

fn check_threads(threads: &[usize]) -> Result<()> {
    if threads.is_empty() || threads.contains(&0) {
        return Err(Error::config("threads", "give one or more counts of at least 1"));
    }
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    if let Some(t) = threads.iter().find(|&&t| t > cores) {
        eprintln!(
            "note: {t} threads oversubscribe this machine's {cores} cores; hogwild runs them all, \
             split, rows and balanced run at most {cores} workers (one per core)"
        );
    }
    crate::tensor::init_threads(*threads.iter().max().expect("non-empty"));
    Ok(())
}

const TWO_CORE_HEADER: &str = "when,alone_us,together_us_a,together_us_b,scaling\n";

/// Prints the machine's two-core scaling at this moment (see
/// [`bench::two_core_check`]) and returns it as a line of
/// `two_core_check.csv`.
fn two_core(data: &Dataset, when: &str) -> Result<String> {
    let c = bench::two_core_check(data.view())?;
    eprintln!(
        "two-core check ({when}): two independent 256-unit workers at once took {:.1} and {:.1} µs a step, \
         one alone {:.1} µs: this machine scales {:.2}× right now (a quiet host gives about 2×)",
        c.together_us[0], c.together_us[1], c.alone_us, c.scaling
    );
    Ok(format!(
        "{when},{:.2},{:.2},{:.2},{:.3}\n",
        c.alone_us, c.together_us[0], c.together_us[1], c.scaling
    ))
}

/// Runs `aekit bench threads`, writing `bench.csv`, `bench.png` and
/// `two_core_check.csv` into the run directory at `out`.
pub fn threads(a: &BenchThreads, out: &Out) -> Result<RunDir> {
    check_threads(&a.threads)?;
    if a.hidden.is_empty() || a.hidden.contains(&0) {
        return Err(Error::config("hidden", "give one or more sizes of at least 1"));
    }
    if a.rounds == 0 {
        return Err(Error::config("rounds", "must be at least 1"));
    }
    let modes = a.parallel.clone();
    let data = training_examples(&a.data, a.data_dir.as_deref(), a.examples)?;
    let run = RunDir::claim(out, "bench-threads")?;
    let gemm = bench::gemm_gflops_one_core();
    eprintln!("GEMM (100×784·784×500, f32, one core): {gemm:.1} GFLOP/s");
    eprintln!(
        "per-example SGD, tied sigmoid {}→H, squared loss, masking 0.25, {} examples",
        data.dim, data.n
    );
    let mut checks = String::from(TWO_CORE_HEADER);
    checks.push_str(&two_core(&data, "before")?);
    println!("mode,hidden,threads,seconds,gflops,gemm_ratio,speedup,speedup_min,speedup_max");
    let mut csv = String::from(
        "mode,hidden,threads,examples,rounds,seconds,seconds_per_60k,gflops,gemm_gflops,gemm_ratio,speedup,speedup_min,speedup_max\n",
    );
    let rows = bench::threads_grid(
        data.view(),
        &a.hidden,
        &a.threads,
        &modes,
        a.seed,
        a.rounds,
        gemm,
        &mut |mode, h, t, round, s| {
            if a.rounds > 1 {
                eprintln!("  round {round}: {mode}, {h} hidden, {t} thread(s): {s:.3} s");
            }
        },
        &mut |r| {
            println!(
                "{},{},{},{:.3},{:.2},{:.3},{:.2},{:.2},{:.2}",
                r.mode,
                r.hidden,
                r.threads,
                r.seconds,
                r.gflops,
                r.gemm_ratio,
                r.speedup,
                r.speedup_min,
                r.speedup_max
            );
            csv.push_str(&format!(
                "{},{},{},{},{},{:.4},{:.4},{:.3},{:.2},{:.4},{:.3},{:.3},{:.3}\n",
                r.mode,
                r.hidden,
                r.threads,
                r.examples,
                r.rounds,
                r.seconds,
                r.seconds * 60_000.0 / r.examples as f64,
                r.gflops,
                gemm,
                r.gemm_ratio,
                r.speedup,
                r.speedup_min,
                r.speedup_max
            ));
        },
    )?;
    run.write("bench.csv", csv.as_bytes())?;
    checks.push_str(&two_core(&data, "after")?);
    run.write("two_core_check.csv", checks.as_bytes())?;
    let mut series = Vec::new();
    for m in &modes {
        for &t in &a.threads {
            let points: Vec<(f64, f64)> = rows
                .iter()
                .filter(|r| r.mode == m.to_string() && r.threads == t)
                .map(|r| (r.hidden as f64, r.seconds))
                .collect();
            series.push(Series {
                label: format!("{m}, {t} thread(s)"),
                points,
            });
        }
    }
    save_line_chart(
        &run.file("bench.png"),
        &format!("Per-example SGD, {} examples per epoch", data.n),
        "hidden units",
        "seconds per epoch",
        &series,
    )?;
    eprintln!(
        "wrote {}, bench.png and two_core_check.csv",
        run.file("bench.csv").display()
    );
    Ok(run)
}

/// Runs `aekit bench curve`, writing `curve.csv`, `curve.png` and
/// `two_core_check.csv` into the run directory at `out`.
pub fn curve(a: &BenchCurve, out: &Out) -> Result<RunDir> {
    check_threads(&a.threads)?;
    if a.epochs == 0 || a.hidden == 0 {
        return Err(Error::config("epochs, hidden", "must be at least 1"));
    }
    let mode = a.parallel;
    let data = training_examples(&a.data, a.data_dir.as_deref(), a.examples)?;
    let run = RunDir::claim(out, "bench-curve")?;
    let gemm = bench::gemm_gflops_one_core();
    eprintln!("GEMM (100×784·784×500, f32, one core): {gemm:.1} GFLOP/s");
    let mut checks = String::from(TWO_CORE_HEADER);
    checks.push_str(&two_core(&data, "before")?);
    println!("threads,mode,epoch,seconds,train_error");
    let mut csv = String::from("threads,mode,epoch,seconds,train_error\n");
    let points = bench::curves(
        data.view(),
        a.hidden,
        &a.threads,
        mode,
        a.epochs,
        a.seed,
        &mut |p| {
            println!(
                "{},{},{},{:.3},{:.4}",
                p.threads, p.mode, p.epoch, p.seconds, p.train_error
            );
            csv.push_str(&format!(
                "{},{},{},{:.4},{:.6}\n",
                p.threads, p.mode, p.epoch, p.seconds, p.train_error
            ));
        },
    )?;
    run.write("curve.csv", csv.as_bytes())?;
    checks.push_str(&two_core(&data, "after")?);
    run.write("two_core_check.csv", checks.as_bytes())?;
    let flops = bench::step_flops(data.dim, a.hidden) * data.n as f64 * a.epochs as f64;
    let one = points
        .iter()
        .filter(|p| p.threads == a.threads[0])
        .map(|p| p.seconds)
        .fold(0.0, f64::max);
    for &t in &a.threads {
        let secs = points
            .iter()
            .filter(|p| p.threads == t)
            .map(|p| p.seconds)
            .fold(0.0, f64::max);
        let gf = flops / secs / 1e9;
        eprintln!(
            "{t} thread(s): {secs:.2} s for {} epochs, {gf:.2} GFLOP/s (dense-equivalent), {:.3} of GEMM, speedup {:.2} against {} thread(s)",
            a.epochs,
            gf / gemm,
            one / secs,
            a.threads[0]
        );
    }
    let series: Vec<Series> = a
        .threads
        .iter()
        .map(|&t| Series {
            label: format!("{t} thread(s)"),
            // Epoch 0 (the untrained model) stays in the CSV; on the plot its
            // error would flatten everything after it.
            points: points
                .iter()
                .filter(|p| p.threads == t && p.epoch > 0)
                .map(|p| (p.seconds, p.train_error))
                .collect(),
        })
        .collect();
    save_line_chart(
        &run.file("curve.png"),
        &format!(
            "Training error, {}→{} tied DAE, {} examples, {mode}",
            data.dim, a.hidden, data.n
        ),
        "training seconds",
        "mean squared-error loss per example",
        &series,
    )?;
    eprintln!(
        "wrote {}, curve.png and two_core_check.csv",
        run.file("curve.csv").display()
    );
    Ok(run)
}

/// Runs `aekit bench sparse`, printing its figures.
pub fn sparse(a: &BenchSparse) -> Result<()> {
    check_threads(&[a.threads])?;
    if a.hidden == 0 {
        return Err(Error::config("hidden", "must be at least 1"));
    }
    let data = training_examples(&a.data, a.data_dir.as_deref(), a.examples)?;
    let gemm = bench::gemm_gflops_one_core();
    let t = bench::sparse_eval_times(data.view(), a.hidden, a.threads, 5);
    let flops = bench::step_flops(data.dim, a.hidden) * data.n as f64;
    let gf = |s: f64| flops / s / 1e9;
    println!(
        "sparse autoencoder {}→{}, {} examples, one cost+gradient evaluation:",
        data.dim, a.hidden, data.n
    );
    println!(
        "  GEMM path, 1 thread:   {:8.1} ms  {:6.1} GFLOP/s  ({:.2} of one-core GEMM)",
        t.gemm_one_thread * 1e3,
        gf(t.gemm_one_thread),
        gf(t.gemm_one_thread) / gemm
    );
    println!(
        "  GEMM path, {} threads:  {:8.1} ms  {:6.1} GFLOP/s",
        t.threads,
        t.gemm_threads * 1e3,
        gf(t.gemm_threads)
    );
    println!(
        "  plain per-example path: {:8.1} ms  {:6.2} GFLOP/s  (f64 loops, timed on {} examples and scaled)",
        t.plain * 1e3,
        gf(t.plain),
        t.plain_examples
    );
    println!(
        "  GEMM one-core rate: {gemm:.1} GFLOP/s; GEMM path is {:.0}× the plain path",
        t.plain / t.gemm_one_thread
    );
    Ok(())
}

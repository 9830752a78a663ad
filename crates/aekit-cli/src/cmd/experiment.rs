//! `aekit experiment gradual-vs-stacked`: the gradual-training paper's
//! protocol (MNIST, two hidden layers, 15% masking, cross-entropy; layer 1 for
//! a fixed number of epochs, then one update budget for layer 2 split between
//! stacked and gradual training by f; the test reconstruction cross-entropy
//! relative to its minimum; then fine-tuning on class-balanced subsets, and
//! on the whole training set at its own size).

use crate::cli::GradualArgs;
use aekit::data::{balanced_subset, load_splits, DataSource, Dataset};
use aekit::layers::loss::xent_minimum;
use aekit::layers::Corruption;
use aekit::layers::Loss;
use aekit::models::stacked::{FinetuneConfig, PretrainConfig, Schedule, StackedDae};
use aekit::run::RunDir;
use aekit::tensor::gemm::Par;
use aekit::viz::plot::{save_line_chart, Series};
use anyhow::{bail, Context, Result};
use std::cmp::Ordering;
use std::fmt::Write as _;

struct Plan {
    layers: Vec<usize>,
    fractions: Vec<f64>,
    splits: usize,
    first: usize,
    budget: usize,
    sizes: Vec<usize>,
    ft_epochs: usize,
    train_size: Option<usize>,
}

fn plan(a: &GradualArgs) -> Plan {
    let (layers, fractions, splits, first, budget, sizes, ft, ts) = if a.quick {
        (
            vec![256, 256],
            vec![0.0, 0.5, 1.0],
            1,
            3,
            4,
            vec![1000],
            10,
            Some(6000),
        )
    } else {
        (
            vec![1000, 1000],
            vec![0.0, 0.25, 0.5, 0.75, 1.0],
            3,
            50,
            80,
            vec![1000, 5000, 10000, 20000, 50000],
            30,
            None,
        )
    };
    Plan {
        layers: a.layers.clone().unwrap_or(layers),
        fractions: a.fractions.clone().unwrap_or(fractions),
        splits: a.splits.unwrap_or(splits),
        first: a.first_epochs.unwrap_or(first),
        budget: a.layer_epochs.unwrap_or(budget),
        sizes: a.finetune_sizes.clone().unwrap_or(sizes),
        ft_epochs: a.finetune_epochs.unwrap_or(ft),
        train_size: a.train_size.or(ts),
    }
}

fn schedule(f: f64) -> Schedule {
    if f >= 1.0 {
        Schedule::Stacked
    } else if f <= 0.0 {
        Schedule::Gradual
    } else {
        Schedule::Hybrid(f)
    }
}

/// The fine-tuning sets of one split, drawn before any training so that a
/// size that cannot be drawn stops the run at once: a class-balanced subset
/// for each size below the training set's, the whole training set for its
/// own size (the paper's 50k: balance is then impossible, as the classes
/// are not equally common), and `None` (skipped, with a message) above it.
fn finetune_subsets(train: &Dataset, sizes: &[usize], seed: u64) -> Result<Vec<Option<Vec<usize>>>> {
    let labels = train.labels.as_ref().context("fine-tuning needs labels")?;
    sizes
        .iter()
        .map(|&size| {
            Ok(match size.cmp(&train.n) {
                Ordering::Less => Some(
                    balanced_subset(labels, size, seed)
                        .with_context(|| format!("--finetune-sizes {size}"))?,
                ),
                Ordering::Equal => {
                    eprintln!("  fine-tuning on {size}: the whole training set (not class-balanced)");
                    Some((0..size).collect())
                }
                Ordering::Greater => {
                    eprintln!(
                        "  skipping fine-tuning on {size}: only {} training images",
                        train.n
                    );
                    None
                }
            })
        })
        .collect()
}

pub fn gradual_vs_stacked(a: GradualArgs) -> Result<()> {
    let p = plan(&a);
    if p.splits == 0 || p.fractions.iter().any(|f| !(0.0..=1.0).contains(f)) {
        bail!("--splits must be at least 1 and every fraction in [0, 1]");
    }
    aekit::tensor::init_threads(a.threads);
    let name = a.data.data.as_deref().unwrap_or("mnist");
    let source: DataSource = name.parse().map_err(|e: String| anyhow::anyhow!("--data: {e}"))?;
    let run = RunDir::create(&super::out_dir(a.out.clone(), "gradual-vs-stacked"))?;
    let par = Par::from_threads(a.threads);
    let mut pre_csv = String::from("split,f,schedule,updates,test_xent,min_xent,relative_xent,seconds\n");
    let mut ft_csv = String::from("split,f,train_size,test_error,valid_error\n");
    let mut rel: Vec<Vec<f64>> = vec![Vec::new(); p.fractions.len()];
    let mut err: Vec<Vec<Vec<f64>>> = vec![vec![Vec::new(); p.sizes.len()]; p.fractions.len()];
    for split in 0..p.splits {
        let seed = 1 + split as u64;
        let s = load_splits(
            &source,
            a.data.data_dir.as_deref(),
            p.train_size,
            aekit::data::default_val_size(&source),
            seed,
        )
        .with_context(|| format!("loading data `{name}`"))?;
        eprintln!("split {split}: {}", s.description);
        let subsets = finetune_subsets(&s.train, &p.sizes, seed)?;
        let min = xent_minimum(&s.test.x) as f64 / s.test.n as f64;
        for (fi, &f) in p.fractions.iter().enumerate() {
            let cfg = PretrainConfig {
                layers: p.layers.clone(),
                schedule: schedule(f),
                noise: vec![Corruption::Mask(0.15)],
                loss: Loss::CrossEntropy,
                first_epochs: p.first,
                layer_epochs: p.budget,
                batch: 20,
                lr: 0.01,
                momentum: 0.9,
                weight_decay: 0.0,
                seed,
                threads: a.threads,
            };
            let t = std::time::Instant::now();
            let mut m = StackedDae::new(s.train.dim, &p.layers, seed);
            let updates = m.pretrain(&s.train, &cfg, &mut |_| {})?;
            let xent = m.reconstruction_xent(&s.test, par);
            let secs = t.elapsed().as_secs_f64();
            eprintln!(
                "split {split}, f = {f}: {updates} updates, test cross-entropy {xent:.3} (minimum {min:.3}, relative {:.3}), {secs:.0} s",
                xent - min
            );
            writeln!(
                pre_csv,
                "{split},{f},{},{updates},{xent:.5},{min:.5},{:.5},{secs:.1}",
                cfg.schedule,
                xent - min
            )?;
            run.write("pretrain.csv", pre_csv.as_bytes())?;
            rel[fi].push(xent - min);
            for (si, (&size, subset)) in p.sizes.iter().zip(&subsets).enumerate() {
                let Some(idx) = subset else {
                    continue;
                };
                let sub = s.train.select(idx);
                let mut ft = m.clone();
                let fc = FinetuneConfig {
                    epochs: p.ft_epochs,
                    lr: 0.1,
                    momentum: 0.9,
                    patience: 5,
                    seed,
                    threads: a.threads,
                    ..FinetuneConfig::default()
                };
                let r = ft.finetune(&sub, &s.val, &s.test, &fc, &mut |_| {})?;
                eprintln!(
                    "  fine-tuned on {size}: test error {:.2}% (validation {:.2}%)",
                    r.test_error, r.valid_error
                );
                writeln!(
                    ft_csv,
                    "{split},{f},{size},{:.4},{:.4}",
                    r.test_error, r.valid_error
                )?;
                run.write("finetune.csv", ft_csv.as_bytes())?;
                err[fi][si].push(r.test_error);
            }
        }
    }
    let mean = |v: &[f64]| {
        if v.is_empty() {
            f64::NAN
        } else {
            v.iter().sum::<f64>() / v.len() as f64
        }
    };
    let mut md = format!(
        "# Gradual vs stacked\n\nLayers {:?}, 15% masking, cross-entropy; layer 1: {} epochs; layer 2 budget: {} epochs; {} split(s).\n\n",
        p.layers, p.first, p.budget, p.splits
    );
    md.push_str("| f (stacked fraction) | relative test cross-entropy |");
    for s in &p.sizes {
        write!(md, " error % ({s}) |")?;
    }
    md.push_str("\n|---|---|");
    md.push_str(&"---|".repeat(p.sizes.len()));
    md.push('\n');
    for (fi, f) in p.fractions.iter().enumerate() {
        write!(md, "| {f} | {:.3} |", mean(&rel[fi]))?;
        for si in 0..p.sizes.len() {
            write!(md, " {:.2} |", mean(&err[fi][si]))?;
        }
        md.push('\n');
    }
    run.write("results.md", md.as_bytes())?;
    let pts = p.fractions.iter().zip(&rel).map(|(&f, r)| (f, mean(r))).collect();
    save_line_chart(
        &run.file("relative-xent.png"),
        "Test reconstruction cross-entropy above its minimum",
        "f (fraction of the budget trained stacked)",
        "cross-entropy − minimum, per image",
        &[Series {
            label: "mean over splits".into(),
            points: pts,
        }],
    )?;
    let series: Vec<Series> = p
        .fractions
        .iter()
        .enumerate()
        .map(|(fi, f)| Series {
            label: format!("f = {f}"),
            points: p
                .sizes
                .iter()
                .enumerate()
                .map(|(si, &s)| (s as f64, mean(&err[fi][si])))
                .filter(|(_, e)| e.is_finite())
                .collect(),
        })
        .filter(|s| !s.points.is_empty())
        .collect();
    if !series.is_empty() {
        save_line_chart(
            &run.file("finetune-error.png"),
            "Test error after fine-tuning",
            "training images",
            "test error, %",
            &series,
        )?;
    }
    println!("{md}");
    eprintln!("wrote {}", run.path.display());
    Ok(())
}

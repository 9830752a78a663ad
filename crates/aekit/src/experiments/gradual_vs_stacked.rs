//! `aekit experiment gradual-vs-stacked`: the gradual-training paper's
//! protocol (MNIST, two hidden layers, 15% masking, cross-entropy; layer 1 for
//! a fixed number of epochs, then one update budget for layer 2 split between
//! stacked and gradual training by f; the test reconstruction cross-entropy
//! relative to its minimum; then fine-tuning on class-balanced subsets, and
//! on the whole training set at its own size).

use crate::data::DataConfig;
use crate::data::{balanced_subset, load_splits, DataSource, Dataset};
use crate::error::{Error, Result};
use crate::layers::loss::xent_minimum;
use crate::layers::Corruption;
use crate::layers::Loss;
use crate::models::stacked::{FinetuneConfig, PretrainConfig, Schedule, StackedDae};
use crate::run::{Out, RunDir};
use crate::tensor::gemm::Par;
use crate::train::{Silent, TrainConfig};
use crate::viz::plot::{save_line_chart, Series};
use std::cmp::Ordering;
use std::fmt::Write as _;
use std::path::PathBuf;

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

fn plan(a: &GradualVsStacked) -> Plan {
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
    let labels = train
        .labels
        .as_ref()
        .ok_or_else(|| Error::config("data", "fine-tuning needs labels"))?;
    sizes
        .iter()
        .map(|&size| {
            Ok(match size.cmp(&train.n) {
                Ordering::Less => Some(
                    balanced_subset(labels, size, seed)
                        .map_err(|e| Error::config("finetune_sizes", format!("{size}: {e}")))?,
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

/// The experiment's settings; `None` takes the paper's value (or, with
/// `quick`, a small preset that runs in minutes: 6000 training images,
/// 2×256 units, 3 + 4 epochs, f ∈ {0, 0.5, 1}, one split, fine-tuning on 1000).
#[derive(Debug, Clone, PartialEq)]
pub struct GradualVsStacked {
    pub quick: bool,
    /// Data source (default `mnist`) and download cache.
    pub data: Option<String>,
    pub data_dir: Option<PathBuf>,
    /// Hidden widths (the paper: 1000,1000).
    pub layers: Option<Vec<usize>>,
    /// Stacked fractions f to compare (the paper: 0,0.25,0.5,0.75,1).
    pub fractions: Option<Vec<f64>>,
    /// Train/validation splits to average over (the paper: 3).
    pub splits: Option<usize>,
    /// Epochs of layer 1 (the paper: 50).
    pub first_epochs: Option<usize>,
    /// Epoch budget of layer 2 (the paper: 80).
    pub layer_epochs: Option<usize>,
    /// Fine-tuning set sizes (the paper: 1000,5000,10000,20000,50000).
    pub finetune_sizes: Option<Vec<usize>>,
    pub finetune_epochs: Option<usize>,
    /// Training images drawn for pretraining (default: all but validation).
    pub train_size: Option<usize>,
    /// Threads; 0 = all cores.
    pub threads: usize,
    /// Where pretraining and fine-tuning run.
    pub device: crate::train::Device,
}

impl Default for GradualVsStacked {
    fn default() -> Self {
        GradualVsStacked {
            quick: false,
            data: None,
            data_dir: None,
            layers: None,
            fractions: None,
            splits: None,
            first_epochs: None,
            layer_epochs: None,
            finetune_sizes: None,
            finetune_epochs: None,
            train_size: None,
            threads: 2,
            device: crate::train::Device::Cpu,
        }
    }
}

/// Runs the experiment, writing `pretrain.csv`, `finetune.csv`,
/// `results.md` and two charts into the run directory at `out` (default
/// `runs/gradual-vs-stacked-<unix time>`).
pub fn gradual_vs_stacked(a: &GradualVsStacked, out: &Out) -> Result<RunDir> {
    let p = plan(a);
    if p.splits == 0 || p.fractions.iter().any(|f| !(0.0..=1.0).contains(f)) {
        return Err(Error::config(
            "splits, fractions",
            "give at least one split and every fraction in [0, 1]",
        ));
    }
    let threads = TrainConfig {
        threads: a.threads,
        ..TrainConfig::default()
    }
    .resolved_threads();
    crate::tensor::init_threads(threads);
    let data = DataConfig {
        source: a.data.clone().unwrap_or_else(|| "mnist".into()),
        data_dir: a.data_dir.clone(),
        ..DataConfig::default()
    };
    let source: DataSource = data.source()?;
    let run = RunDir::claim(out, "gradual-vs-stacked")?;
    let par = Par::from_threads(threads);
    let mut pre_csv = String::from("split,f,schedule,updates,test_xent,min_xent,relative_xent,seconds\n");
    let mut ft_csv = String::from("split,f,train_size,test_error,valid_error\n");
    let mut rel: Vec<Vec<f64>> = vec![Vec::new(); p.fractions.len()];
    let mut err: Vec<Vec<Vec<f64>>> = vec![vec![Vec::new(); p.sizes.len()]; p.fractions.len()];
    for split in 0..p.splits {
        let seed = 1 + split as u64;
        let s = load_splits(
            &source,
            data.data_dir.as_deref(),
            p.train_size,
            crate::data::default_val_size(&source),
            seed,
        )?;
        eprintln!("split {split}: {}", s.description);
        let subsets = finetune_subsets(&s.train, &p.sizes, seed)?;
        let min = xent_minimum(&s.test.x) as f64 / s.test.n as f64;
        for (fi, &f) in p.fractions.iter().enumerate() {
            let cfg = PretrainConfig {
                layers: p.layers.clone(),
                schedule: schedule(f),
                noise: vec![Corruption::Mask(0.15)],
                loss: Loss::CrossEntropy,
                layer_epochs: p.budget,
                train: TrainConfig {
                    epochs: p.first,
                    batch: 20,
                    lr: 0.01,
                    momentum: 0.9,
                    weight_decay: 0.0,
                    patience: 0,
                    seed,
                    threads,
                    device: a.device,
                    ..TrainConfig::default()
                },
                ..PretrainConfig::default()
            };
            let t = std::time::Instant::now();
            let mut m = StackedDae::new(s.train.dim, &p.layers, seed);
            let updates = m.pretrain(&s.train, &cfg, &mut Silent)?;
            let xent = m.reconstruction_xent(&s.test, par);
            let secs = t.elapsed().as_secs_f64();
            eprintln!(
                "split {split}, f = {f}: {updates} updates, test cross-entropy {xent:.3} (minimum {min:.3}, relative {:.3}), {secs:.0} s",
                xent - min
            );
            let _ = writeln!(
                pre_csv,
                "{split},{f},{},{updates},{xent:.5},{min:.5},{:.5},{secs:.1}",
                cfg.schedule,
                xent - min
            );
            run.write("pretrain.csv", pre_csv.as_bytes())?;
            rel[fi].push(xent - min);
            for (si, (&size, subset)) in p.sizes.iter().zip(&subsets).enumerate() {
                let Some(idx) = subset else {
                    continue;
                };
                let sub = s.train.select(idx);
                let mut ft = m.clone();
                let fc = FinetuneConfig {
                    train: TrainConfig {
                        epochs: p.ft_epochs,
                        lr: 0.1,
                        momentum: 0.9,
                        patience: 5,
                        seed,
                        threads,
                        device: a.device,
                        ..FinetuneConfig::default().train
                    },
                    ..FinetuneConfig::default()
                };
                let r = ft.finetune(&sub, &s.val, &s.test, &fc, &mut Silent)?;
                eprintln!(
                    "  fine-tuned on {size}: test error {:.2}% (validation {:.2}%)",
                    r.test_error, r.valid_error
                );
                let _ = writeln!(
                    ft_csv,
                    "{split},{f},{size},{:.4},{:.4}",
                    r.test_error, r.valid_error
                );
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
        let _ = write!(md, " error % ({s}) |");
    }
    md.push_str("\n|---|---|");
    md.push_str(&"---|".repeat(p.sizes.len()));
    md.push('\n');
    for (fi, f) in p.fractions.iter().enumerate() {
        let _ = write!(md, "| {f} | {:.3} |", mean(&rel[fi]));
        for si in 0..p.sizes.len() {
            let _ = write!(md, " {:.2} |", mean(&err[fi][si]));
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
    Ok(run)
}

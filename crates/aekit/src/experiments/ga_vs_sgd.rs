//! The parallel-SGD paper's plan to train the autoencoder's weights with a
//! genetic algorithm, measured: per-example SGD, the GA and the evolution
//! strategy train the same tied DAE from the same initial weights for the
//! same wall-clock time, and the clean test loss is recorded after every
//! epoch (a pass for SGD, a block of generations for GA and ES) against the
//! seconds spent and the examples run through the model.

use crate::data::{load_splits, DataSource};
use crate::error::Result;
use crate::models::dae::DaeObjective;
use crate::models::{DaeConfig, DenoisingAutoencoder};
use crate::run::{Out, RunDir};
use crate::train::evolve::{EsConfig, EvolveFit, GaConfig};
use crate::train::{Fit, Silent, TrainConfig};
use crate::viz;
use serde_json::json;
use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::Instant;

/// The experiment's settings.
#[derive(Debug, Clone, PartialEq)]
pub struct GaVsSgd {
    /// 7000 built-in images, the 784→64 DAE only, 8 s per method.
    pub quick: bool,
    /// Data source (default `mnist`) and download cache.
    pub data: Option<String>,
    pub data_dir: Option<PathBuf>,
    /// Hidden widths of the tied DAEs compared (default 500 and 64).
    pub hidden: Option<Vec<usize>>,
    /// Wall-clock seconds each method trains each model (default 120).
    pub seconds: Option<f64>,
    /// Training images (default: all).
    pub train_size: Option<usize>,
    /// Test images the loss is measured on (default 2000).
    pub test_size: usize,
    /// Per-example SGD's learning rate.
    pub sgd_lr: f32,
    /// GA and ES minibatch per generation.
    pub batch: usize,
    pub ga: GaConfig,
    pub es: EsConfig,
    /// The ES's Adam step.
    pub es_lr: f32,
    pub threads: usize,
    pub seed: u64,
}

impl Default for GaVsSgd {
    fn default() -> Self {
        GaVsSgd {
            quick: false,
            data: None,
            data_dir: None,
            hidden: None,
            seconds: None,
            train_size: None,
            test_size: 2000,
            sgd_lr: 0.01,
            batch: 100,
            ga: GaConfig {
                sigma: 0.01,
                materialise: true,
                ..GaConfig::default()
            },
            es: EsConfig::default(),
            es_lr: 0.01,
            threads: 2,
            seed: 1,
        }
    }
}

/// One measurement.
struct Point {
    hidden: usize,
    method: &'static str,
    epoch: usize,
    seconds: f64,
    examples: u64,
    test_loss: f64,
}

/// Runs the comparison and writes `points.csv`, `results.md`,
/// `loss-vs-seconds-<h>.png`, `loss-vs-examples-<h>.png` and
/// `summary.json`.
pub fn ga_vs_sgd(e: &GaVsSgd, out: &Out) -> Result<RunDir> {
    e.ga.validate()?;
    e.es.validate()?;
    let source: DataSource = match &e.data {
        Some(s) => s.parse().map_err(|m: String| crate::Error::config("data", m))?,
        None if e.quick => DataSource::Builtin,
        None => DataSource::Mnist,
    };
    let hidden = e
        .hidden
        .clone()
        .unwrap_or_else(|| if e.quick { vec![64] } else { vec![500, 64] });
    let budget = e.seconds.unwrap_or(if e.quick { 8.0 } else { 120.0 });
    crate::tensor::init_threads(e.threads);
    let s = load_splits(&source, e.data_dir.as_deref(), e.train_size, 0, e.seed)?;
    eprintln!("data: {}", s.description);
    let test_n = e.test_size.min(s.test.n);
    let test = &s.test.x[..test_n * s.test.dim];
    let run = RunDir::claim(out, "ga-vs-sgd")?;
    let mut points = Vec::new();
    for &h in &hidden {
        let cfg = DaeConfig {
            n_vis: s.train.dim,
            n_hid: h,
            ..DaeConfig::default()
        };
        for method in ["sgd", "ga", "es"] {
            let train = TrainConfig {
                batch: if method == "sgd" { 1 } else { e.batch },
                lr: if method == "es" { e.es_lr } else { e.sgd_lr },
                patience: 0,
                seed: e.seed,
                threads: e.threads,
                ..TrainConfig::default()
            };
            let mut model = DenoisingAutoencoder::new(cfg.clone(), train.clone());
            model.prepare_training(&s.train.view())?;
            let loss = |m: &DenoisingAutoencoder| m.eval_slice(test, test_n).loss;
            points.push(Point {
                hidden: h,
                method,
                epoch: 0,
                seconds: 0.0,
                examples: 0,
                test_loss: loss(&model),
            });
            eprintln!("784→{h}, {method}: {budget} s");
            let mut spent = 0.0;
            let mut epoch = 0;
            if method == "sgd" {
                while spent < budget {
                    let t = Instant::now();
                    model.partial_fit(s.train.view())?;
                    spent += t.elapsed().as_secs_f64();
                    epoch += 1;
                    points.push(Point {
                        hidden: h,
                        method,
                        epoch,
                        seconds: spent,
                        examples: (epoch * s.train.n) as u64,
                        test_loss: loss(&model),
                    });
                }
            } else {
                let o = DaeObjective::new(&model.config, model.layout(), &s.train.x, 0.0);
                let theta0 = model.params().to_vec();
                let mut fit = if method == "ga" {
                    EvolveFit::ga(&o, theta0, e.ga.clone(), e.batch, e.seed, None)?
                } else {
                    EvolveFit::es(
                        &o,
                        theta0,
                        e.es.clone(),
                        train.adam_config(),
                        e.batch,
                        e.seed,
                        None,
                    )?
                };
                let mut probe = model.clone();
                while spent < budget {
                    let t = Instant::now();
                    fit.epoch(&mut Silent)?;
                    spent += t.elapsed().as_secs_f64();
                    epoch += 1;
                    probe.params_mut().copy_from_slice(fit.params());
                    points.push(Point {
                        hidden: h,
                        method,
                        epoch,
                        seconds: spent,
                        examples: fit.evaluated,
                        test_loss: loss(&probe),
                    });
                }
            }
            let last = points.last().expect("a point");
            eprintln!(
                "  {epoch} epochs, {:.0} s, {} examples: test loss {:.2}",
                last.seconds, last.examples, last.test_loss
            );
        }
    }
    // The GA's fitness evaluation on 1 and on 2 threads, in turns (median of 5).
    let speed = {
        let h = hidden[0];
        let cfg = DaeConfig {
            n_vis: s.train.dim,
            n_hid: h,
            ..DaeConfig::default()
        };
        let mut model = DenoisingAutoencoder::new(cfg, TrainConfig::default());
        model.prepare_training(&s.train.view())?;
        let o = DaeObjective::new(&model.config, model.layout(), &s.train.x, 0.0);
        let mut fit = EvolveFit::ga(&o, model.params().to_vec(), e.ga.clone(), e.batch, e.seed, None)?;
        let pools: Vec<rayon::ThreadPool> = [1, 2]
            .iter()
            .map(|&t| crate::tensor::ftz::pool_builder(t).build().expect("a pool"))
            .collect();
        let mut times = [Vec::new(), Vec::new()];
        for _ in 0..5 {
            for (k, pool) in pools.iter().enumerate() {
                let t = Instant::now();
                pool.install(|| fit.population_fitness());
                times[k].push(t.elapsed().as_secs_f64());
            }
        }
        let median = |v: &mut Vec<f64>| {
            v.sort_by(f64::total_cmp);
            v[v.len() / 2]
        };
        let (one, two) = (median(&mut times[0]), median(&mut times[1]));
        eprintln!(
            "GA fitness of {} individuals on {} images, 784→{h}: {one:.3} s on 1 thread, {two:.3} s on 2 ({:.2}×)",
            e.ga.population,
            e.batch,
            one / two
        );
        (h, one, two)
    };
    let mut csv = String::from("hidden,method,epoch,seconds,examples,test_loss\n");
    for p in &points {
        writeln!(
            csv,
            "{},{},{},{:.3},{},{:.4}",
            p.hidden, p.method, p.epoch, p.seconds, p.examples, p.test_loss
        )
        .expect("a string");
    }
    run.write("points.csv", csv.as_bytes())?;
    let mut md = format!(
        "# GA and ES against per-example SGD\n\nTied DAEs (masking noise 0.25, cross-entropy), the same initial weights, {budget} s of training each on {} threads; test loss = clean cross-entropy per image on {test_n} test images.\n\n| DAE | method | epochs | examples run | test loss at start | test loss at the end |\n|---|---|---|---|---|---|\n",
        e.threads
    );
    let mut summary = serde_json::Map::new();
    for &h in &hidden {
        let mut by_time = Vec::new();
        let mut by_examples = Vec::new();
        for method in ["sgd", "ga", "es"] {
            let ps: Vec<&Point> = points
                .iter()
                .filter(|p| p.hidden == h && p.method == method)
                .collect();
            let (first, last) = (ps[0], ps[ps.len() - 1]);
            writeln!(
                md,
                "| 784→{h} | {method} | {} | {} | {:.2} | {:.2} |",
                last.epoch, last.examples, first.test_loss, last.test_loss
            )
            .expect("a string");
            summary.insert(format!("{h}_{method}_test_loss"), json!(last.test_loss));
            summary.insert(format!("{h}_{method}_examples"), json!(last.examples));
            by_time.push(viz::plot::Series {
                label: method.into(),
                points: ps.iter().map(|p| (p.seconds, p.test_loss)).collect(),
            });
            by_examples.push(viz::plot::Series {
                label: method.into(),
                points: ps
                    .iter()
                    .filter(|p| p.examples > 0)
                    .map(|p| ((p.examples as f64).log10(), p.test_loss))
                    .collect(),
            });
        }
        viz::plot::save_line_chart(
            &run.file(&format!("loss-vs-seconds-{h}.png")),
            &format!("784→{h} tied DAE: test loss against training time"),
            "seconds",
            "test cross-entropy per image",
            &by_time,
        )?;
        viz::plot::save_line_chart(
            &run.file(&format!("loss-vs-examples-{h}.png")),
            &format!("784→{h} tied DAE: test loss against examples run"),
            "log10(examples run through the model)",
            "test cross-entropy per image",
            &by_examples,
        )?;
    }
    summary.insert(
        "ga_fitness_seconds".into(),
        json!({"hidden": speed.0, "one_thread": speed.1, "two_threads": speed.2, "speedup": speed.1 / speed.2}),
    );
    writeln!(
        md,
        "\nThe GA's fitness evaluation ({} individuals, {} images, 784→{}): {:.3} s on 1 thread, {:.3} s on 2, {:.2}× faster.",
        e.ga.population, e.batch, speed.0, speed.1, speed.2, speed.1 / speed.2
    )
    .expect("a string");
    run.write("results.md", md.as_bytes())?;
    summary.insert("seconds_per_method".into(), json!(budget));
    summary.insert("threads".into(), json!(e.threads));
    summary.insert("data".into(), json!(s.description));
    summary.insert("ga".into(), serde_json::to_value(&e.ga).expect("serialisable"));
    summary.insert("es".into(), serde_json::to_value(&e.es).expect("serialisable"));
    run.write_summary(&serde_json::Value::Object(summary))?;
    eprint!("{md}");
    eprintln!("run directory {}", run.path.display());
    Ok(run)
}

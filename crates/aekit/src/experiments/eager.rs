//! The eager-training paper's comparison: a K-member ensemble of small CAEs
//! (one thread each, stopped eagerly) against one CAE with K× the channels
//! on all cores, at equal wall-clock time, on small and large MNIST splits.

use crate::data::{load_splits, DataSource};
use crate::error::{Error, Result};
use crate::layers::Loss;
use crate::models::classifier::ClassifierConfig;
use crate::models::conv::{CaeSpec, CaeTrainConfig, ConvAutoencoder, Trainer};
use crate::models::ensemble::{self, classify, member_seed};
use crate::run::{Out, RunDir};
use crate::train::TrainConfig;
use crate::viz;
use serde_json::json;
use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::Instant;

/// One evaluation point of the eager experiment.
struct Point {
    setting: String,
    seed: u64,
    model: &'static str,
    step: usize,
    seconds: f64,
    recon: f64,
    error: f64,
    vote: f64,
}

fn parse_setting(s: &str) -> Result<(usize, usize)> {
    let bad = || Error::config("settings", format!("`{s}` is not TRAIN/VAL, e.g. 4800/1200"));
    let (t, v) = s.split_once('/').ok_or_else(bad)?;
    Ok((
        t.trim().parse().map_err(|_| bad())?,
        v.trim().parse().map_err(|_| bad())?,
    ))
}

/// The experiment's settings; `None` takes the default (or, with `quick`, a
/// small preset that runs in minutes: the small split only, 3 seeds, 3
/// epochs, 2000 test images).
#[derive(Debug, Clone, PartialEq)]
pub struct Eager {
    pub quick: bool,
    /// Data source (default `mnist`) and download cache.
    pub data: Option<String>,
    pub data_dir: Option<PathBuf>,
    /// Members of the ensemble.
    pub members: usize,
    /// The monolithic CAE's channel multiplier (default: the member count,
    /// so its code is as wide as the ensemble's joined codes).
    pub mono_width: Option<usize>,
    /// Ensemble epochs; the monolithic CAE gets the same wall-clock time.
    pub epochs: Option<usize>,
    /// Seeds averaged per setting (the paper: 3).
    pub seeds: Option<usize>,
    /// Settings, as train/validation sizes (default: 4800/1200 and 48000/12000).
    pub settings: Option<Vec<String>>,
    /// Test images used (default: all).
    pub test_size: Option<usize>,
    /// Threads; 0 = all cores.
    pub threads: usize,
}

impl Default for Eager {
    fn default() -> Self {
        Eager {
            quick: false,
            data: None,
            data_dir: None,
            members: 5,
            mono_width: None,
            epochs: None,
            seeds: None,
            settings: None,
            test_size: None,
            threads: 2,
        }
    }
}

/// Runs the experiment, writing `eager.csv`, `eager.md` and charts into the
/// run directory at `out` (default `runs/eager-<unix time>`).
pub fn eager(a: &Eager, out: &Out) -> Result<RunDir> {
    let settings: Vec<String> = a.settings.clone().unwrap_or_else(|| {
        if a.quick {
            vec!["4800/1200".into()]
        } else {
            vec!["4800/1200".into(), "48000/12000".into()]
        }
    });
    let parsed: Vec<(usize, usize)> = settings.iter().map(|s| parse_setting(s)).collect::<Result<_>>()?;
    let epochs = a.epochs.unwrap_or(if a.quick { 3 } else { 5 });
    let seeds = a.seeds.unwrap_or(3);
    let k = a.members;
    let width = a.mono_width.unwrap_or(k);
    let test_size = a.test_size.or(a.quick.then_some(2000));
    if k == 0 || width == 0 || epochs == 0 || seeds == 0 {
        return Err(Error::config(
            "members, mono_width, epochs, seeds",
            "must each be at least 1",
        ));
    }
    let threads = TrainConfig {
        threads: a.threads,
        ..TrainConfig::default()
    }
    .resolved_threads();
    let spec = CaeSpec::preset("cae-mnist").expect("preset");
    let mono_spec = spec.widen(width);
    let mut base = CaeTrainConfig::default();
    base.train.epochs = epochs;
    let mut cls = ClassifierConfig::default();
    (cls.train.epochs, cls.train.patience, cls.train.threads) = (if a.quick { 10 } else { 20 }, 3, threads);
    crate::tensor::init_threads(threads);
    let run = RunDir::claim(out, "eager")?;
    let name = a.data.as_deref().unwrap_or("mnist");
    let source: DataSource = name
        .parse()
        .map_err(|e: String| Error::config("data.source", e))?;
    let mut points: Vec<Point> = Vec::new();
    let mut csv = String::from("setting,seed,model,step,seconds,test_recon_loss,test_error,vote_error\n");
    let started = Instant::now();
    for (setting, &(tr, va)) in settings.iter().zip(&parsed) {
        for seed in 1..=seeds as u64 {
            // A class-balanced subset when the setting asks for fewer images
            // than remain after validation; otherwise all of them (48000 of
            // MNIST's 60000 cannot be balanced: class 5 has 5421 images).
            let load = |size| load_splits(&source, a.data_dir.as_deref(), size, va, seed);
            let mut s = load(None)?;
            if s.train.n > tr {
                s = load(Some(tr))?;
            } else if s.train.n < tr {
                return Err(Error::config(
                    "settings",
                    format!(
                        "setting {setting}: only {} training images remain after validation",
                        s.train.n
                    ),
                ));
            }
            if let Some(n) = test_size {
                s.test = s.test.select(&(0..n.min(s.test.n)).collect::<Vec<_>>());
            }
            if s.train.dim != 784 {
                return Err(Error::shape(
                    "the eager experiment's images (cae-mnist)",
                    "28×28 grey (784 values)",
                    s.train.dim,
                ));
            }
            eprintln!("[{setting}, seed {seed}] {}", s.description);
            // The ensemble: K members, one thread each, one epoch at a time.
            let models: Vec<ConvAutoencoder> = (0..k)
                .map(|m| ConvAutoencoder::new(&spec, Loss::Squared, member_seed(seed * 100, m)))
                .collect::<Result<_>>()?;
            let mut trainers: Vec<Trainer> = models
                .into_iter()
                .enumerate()
                .map(|(m, model)| {
                    let mut c = base.clone();
                    (c.train.seed, c.train.threads) = (member_seed(seed * 100, m), 1);
                    Trainer::new(model, &s.train, &c)
                })
                .collect::<Result<_>>()?;
            let mut budget = Vec::new();
            let mut clock = 0.0;
            for e in 1..=epochs {
                let t = Instant::now();
                ensemble::epoch_in_parallel(&mut trainers);
                clock += t.elapsed().as_secs_f64();
                budget.push(clock);
                let refs: Vec<&ConvAutoencoder> = trainers.iter().map(|t| &t.model).collect();
                let recon = refs
                    .iter()
                    .map(|m| m.score(&s.test, threads))
                    .sum::<Result<f64>>()?
                    / k as f64;
                let r = classify(&refs, &s.train, &s.val, &s.test, &cls, threads)?;
                eprintln!(
                    "  ensemble epoch {e} at {clock:.1} s: recon {recon:.3}, error {:.2}% (vote {:.2}%)",
                    r.concat_test_error, r.vote_test_error
                );
                points.push(Point {
                    setting: setting.clone(),
                    seed,
                    model: "ensemble",
                    step: e,
                    seconds: clock,
                    recon,
                    error: r.concat_test_error,
                    vote: r.vote_test_error,
                });
            }
            // The monolithic CAE: all cores on one model, the same clock.
            let mut c = base.clone();
            (c.train.seed, c.train.threads) = (seed * 100 + 99, threads);
            let mono = ConvAutoencoder::new(&mono_spec, Loss::Squared, c.train.seed)?;
            let mut tm = Trainer::new(mono, &s.train, &c)?;
            for (i, &limit) in budget.iter().enumerate() {
                tm.run_until(limit);
                let recon = tm.model.score(&s.test, threads)?;
                let r = classify(&[&tm.model], &s.train, &s.val, &s.test, &cls, threads)?;
                let done = tm.updates as f64 / tm.batches_per_epoch() as f64;
                eprintln!(
                    "  monolithic ×{width} at {:.1} s ({done:.2} epochs): recon {recon:.3}, error {:.2}%",
                    tm.seconds, r.concat_test_error
                );
                points.push(Point {
                    setting: setting.clone(),
                    seed,
                    model: "monolithic",
                    step: i + 1,
                    seconds: tm.seconds,
                    recon,
                    error: r.concat_test_error,
                    vote: f64::NAN,
                });
            }
            for p in points.iter().filter(|p| p.seed == seed && &p.setting == setting) {
                let vote = if p.vote.is_nan() {
                    String::new()
                } else {
                    format!("{:.4}", p.vote)
                };
                let _ = writeln!(
                    csv,
                    "{},{},{},{},{:.3},{:.5},{:.4},{vote}",
                    p.setting, p.seed, p.model, p.step, p.seconds, p.recon, p.error
                );
            }
            run.write("eager.csv", csv.as_bytes())?;
        }
    }
    // Means over seeds, per setting, model and step.
    let mut md = format!(
        "# Eager ensemble (K = {k} × cae-mnist) against one CAE with ×{width} channels, equal wall-clock time\n\n\
         Means over {seeds} seeds. Time is training time on this machine ({} threads); classification is a softmax \
         on the codes (the ensemble's joined codes, and a majority vote over one softmax per member).\n\n\
         | setting | point | seconds | ensemble error % | vote error % | monolithic error % | ensemble recon | monolithic recon |\n\
         |---|---|---|---|---|---|---|---|\n",
        threads
    );
    for setting in &settings {
        let mut series: HashMap<&str, Vec<(f64, f64, f64, f64)>> = HashMap::new();
        for step in 1..=epochs {
            let mean = |model: &str, f: &dyn Fn(&Point) -> f64| {
                let v: Vec<f64> = points
                    .iter()
                    .filter(|p| &p.setting == setting && p.model == model && p.step == step)
                    .map(f)
                    .collect();
                v.iter().sum::<f64>() / v.len().max(1) as f64
            };
            let (es, ee, ev, er) = (
                mean("ensemble", &|p| p.seconds),
                mean("ensemble", &|p| p.error),
                mean("ensemble", &|p| p.vote),
                mean("ensemble", &|p| p.recon),
            );
            let (ms, me, mr) = (
                mean("monolithic", &|p| p.seconds),
                mean("monolithic", &|p| p.error),
                mean("monolithic", &|p| p.recon),
            );
            let _ = writeln!(
                md,
                "| {setting} | {step} | {es:.1} | {ee:.2} | {ev:.2} | {me:.2} | {er:.3} | {mr:.3} |"
            );
            series.entry("ensemble").or_default().push((es, ee, ev, er));
            series
                .entry("monolithic")
                .or_default()
                .push((ms, me, f64::NAN, mr));
        }
        let tag = setting.replace('/', "-");
        let ens = &series["ensemble"];
        let mono = &series["monolithic"];
        let pts = |v: &[(f64, f64, f64, f64)], f: fn(&(f64, f64, f64, f64)) -> f64| -> Vec<(f64, f64)> {
            v.iter().map(|p| (p.0, f(p))).collect()
        };
        viz::plot::save_line_chart(
            &run.file(&format!("error-{tag}.png")),
            &format!("Test error against training time ({setting})"),
            "seconds",
            "test error, %",
            &[
                viz::plot::Series {
                    label: format!("ensemble of {k}, joined codes"),
                    points: pts(ens, |p| p.1),
                },
                viz::plot::Series {
                    label: format!("ensemble of {k}, majority vote"),
                    points: pts(ens, |p| p.2),
                },
                viz::plot::Series {
                    label: format!("one CAE, ×{width} channels"),
                    points: pts(mono, |p| p.1),
                },
            ],
        )?;
        viz::plot::save_line_chart(
            &run.file(&format!("recon-{tag}.png")),
            &format!("Test reconstruction loss against training time ({setting})"),
            "seconds",
            "½·Σ(x − z)² per image",
            &[
                viz::plot::Series {
                    label: format!("ensemble of {k} (member mean)"),
                    points: pts(ens, |p| p.3),
                },
                viz::plot::Series {
                    label: format!("one CAE, ×{width} channels"),
                    points: pts(mono, |p| p.3),
                },
            ],
        )?;
    }
    run.write("eager.md", md.as_bytes())?;
    let summary = json!({
        "members": k,
        "mono_width": width,
        "epochs": epochs,
        "seeds": seeds,
        "settings": settings,
        "total_seconds": started.elapsed().as_secs_f64(),
    });
    run.write_summary(&summary)?;
    print!("{md}");
    eprintln!("run directory {}", run.path.display());
    Ok(run)
}

//! `aekit cae`, `aekit ensemble` and `aekit experiment eager`: convolutional
//! autoencoders, eager ensembles of them, and the eager-training paper's
//! comparison at equal wall-clock time.

use crate::cli::{CaeArgs, CaeTrainArgs, ClassifierArgs, DataArgs, EagerArgs, EnsembleArgs};
use aekit::data::{load_splits, DataSource, Dataset, Splits};
use aekit::layers::Loss;
use aekit::models::classifier::{error_percent, ClassifierConfig, FeatureClassifier};
use aekit::models::conv_ae::{CaeSpec, CaeTrainConfig, ConvAutoencoder, Trainer};
use aekit::models::ensemble::{self, classify, member_seed};
use aekit::optim::AdamConfig;
use aekit::run::dir::{metrics_csv, RunDir};
use aekit::train::{EpochMetrics, Progress};
use aekit::viz;
use anyhow::{bail, Context, Result};
use serde_json::json;
use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::time::Instant;

fn train_config(
    a: &CaeTrainArgs,
    default_epochs: usize,
    threads: usize,
) -> Result<(CaeSpec, CaeTrainConfig)> {
    let spec = CaeSpec::load(&a.arch).context("--arch")?;
    let cfg = CaeTrainConfig {
        epochs: a.epochs.unwrap_or(default_epochs),
        batch: a.batch,
        adam: AdamConfig {
            lr: a.lr,
            ..AdamConfig::default()
        },
        loss: a
            .loss
            .parse()
            .map_err(|e: String| anyhow::anyhow!("--loss: {e}"))?,
        noise: a
            .noise
            .parse()
            .map_err(|e: String| anyhow::anyhow!("--noise: {e}"))?,
        weight_decay: a.weight_decay,
        patience: a.patience,
        min_improvement: a.min_improvement,
        seed: a.seed,
        threads,
    };
    cfg.validate()?;
    // Refuse a spec that does not build (or a loss it cannot take) before
    // any data is loaded or folder made.
    ConvAutoencoder::new(&spec, cfg.loss, cfg.seed)?;
    Ok((spec, cfg))
}

fn classifier_config(
    a: &ClassifierArgs,
    default: &str,
    seed: u64,
    threads: usize,
) -> Result<Option<ClassifierConfig>> {
    let kind = a.classifier.as_deref().unwrap_or(default);
    let hidden = match kind {
        "none" => return Ok(None),
        "softmax" => 0,
        k => match k.strip_prefix("mlp:").and_then(|h| h.parse::<usize>().ok()) {
            Some(h) if h > 0 => h,
            _ => bail!("--classifier: `{k}` is not none, softmax or mlp:H with H ≥ 1"),
        },
    };
    let cfg = ClassifierConfig {
        hidden,
        epochs: a.classifier_epochs,
        adam: AdamConfig {
            lr: a.classifier_lr,
            ..AdamConfig::default()
        },
        seed,
        threads,
        ..ClassifierConfig::default()
    };
    cfg.validate()?;
    Ok(Some(cfg))
}

/// `--data` split as for the other verbs, checked against the architecture.
fn splits(
    data: &DataArgs,
    train_size: Option<usize>,
    val_size: Option<usize>,
    seed: u64,
    spec: &CaeSpec,
) -> Result<Splits> {
    let s = super::stacked::splits(data, train_size, val_size, seed)?;
    let want: usize = spec.input.iter().product();
    if s.train.dim != want {
        bail!(
            "the architecture takes images of shape {:?} ({want} values) but the data has {} values per image",
            spec.input,
            s.train.dim
        );
    }
    Ok(s)
}

/// Originals above their reconstructions, for grey or RGB images.
fn reconstructions(model: &ConvAutoencoder, data: &Dataset, count: usize) -> Result<viz::RgbImage> {
    let n = count.min(data.n);
    let sample = data.select(&(0..n).collect::<Vec<_>>());
    let recon = model.reconstruct(&sample, 1)?;
    let [c, h, w] = model.net.spec.input;
    let d = sample.dim;
    let tiles: Vec<&[f32]> = (0..n)
        .map(|i| sample.row(i))
        .chain(recon.chunks_exact(d).take(n))
        .collect();
    Ok(viz::chw_grid(&tiles, c, h, w, n.max(1), 2))
}

/// The resolved configuration as TOML (which has no null: unset options are
/// left out).
fn config_toml(mut v: serde_json::Value) -> Result<String> {
    fn strip(v: &mut serde_json::Value) {
        match v {
            serde_json::Value::Object(m) => {
                m.retain(|_, x| !x.is_null());
                m.values_mut().for_each(strip);
            }
            serde_json::Value::Array(a) => a.iter_mut().for_each(strip),
            _ => {}
        }
    }
    strip(&mut v);
    Ok(toml::to_string_pretty(&v)?)
}

fn gflops(model: &ConvAutoencoder, images: f64, seconds: f64) -> f64 {
    // forward + the two backward products per layer ≈ 3× the forward FLOPs
    3.0 * model.net.flops_per_image() * images / seconds.max(1e-9) / 1e9
}

pub fn train(a: CaeArgs) -> Result<()> {
    let (spec, cfg) = train_config(&a.train, 10, a.threads)?;
    let cls = classifier_config(&a.cls, "none", cfg.seed, a.threads)?;
    aekit::tensor::init_threads(a.threads);
    let s = splits(&a.data, a.train_size, a.val_size, cfg.seed, &spec)?;
    let run = RunDir::create(&super::out_dir(a.out, "cae"))?;
    let config =
        json!({ "arch": a.train.arch, "spec": spec, "train": cfg, "classifier": cls, "data": s.description });
    run.write("config.toml", config_toml(config)?.as_bytes())?;
    std::fs::create_dir_all(run.file("checkpoints")).context("creating checkpoints/")?;
    let mut model = ConvAutoencoder::new(&spec, cfg.loss, cfg.seed)?;
    eprintln!(
        "training {} ({} parameters, code {:?}) for up to {} epochs on {} images, {} worker(s)",
        a.train.arch,
        model.net.n_params(),
        model.net.code_shape(),
        cfg.epochs,
        s.train.n,
        a.threads
    );
    let mut history: Vec<EpochMetrics> = Vec::new();
    let mut progress = Progress::new();
    let report = model.fit(&s.train, &s.val, &cfg, &mut progress, &mut |m, e| {
        history.push(*e);
        m.save(
            &run.file(&format!("checkpoints/epoch-{}.safetensors", e.epoch)),
            HashMap::new(),
        )?;
        run.write_metrics(&history)
    })?;
    model.save(&run.file("model.safetensors"), HashMap::new())?;
    let test_loss = model.score(&s.test, a.threads)?;
    viz::save_rgb_png(
        &run.file("reconstructions.png"),
        &reconstructions(&model, &s.test, 10)?,
    )?;
    let epochs = report.history.len();
    let per_epoch = report.train_seconds / epochs.max(1) as f64;
    let rate = gflops(&model, (s.train.n * epochs) as f64, report.train_seconds);
    eprintln!(
        "test loss {test_loss:.4} per image; {per_epoch:.2} s per epoch ({rate:.1} GFLOP/s in the convolutions)"
    );
    let mut summary = json!({
        "arch": a.train.arch,
        "test_loss": test_loss,
        "best_epoch": report.best_epoch,
        "epochs": epochs,
        "stopped_early": report.stopped_early,
        "updates": report.updates,
        "train_seconds": report.train_seconds,
        "seconds_per_epoch": per_epoch,
        "gflops": rate,
        "threads": a.threads,
        "n_train": s.train.n,
        "n_val": s.val.n,
        "n_test": s.test.n,
        "data": s.description,
        "aekit_version": env!("CARGO_PKG_VERSION"),
    });
    if let Some(c) = cls {
        // Without a validation split (the CAE saw every training image), the
        // classifier holds out the last tenth of the training images.
        let held;
        let (ctrain, cval) = if s.val.n > 0 {
            (&s.train, &s.val)
        } else {
            let cut = s.train.n - (s.train.n / 10).max(1);
            held = (
                s.train.select(&(0..cut).collect::<Vec<_>>()),
                s.train.select(&(cut..s.train.n).collect::<Vec<_>>()),
            );
            (&held.0, &held.1)
        };
        let t = Instant::now();
        let labels = |d: &Dataset| d.labels.clone().context("classifying needs labelled images");
        let (ytr, yva, yte) = (labels(ctrain)?, labels(cval)?, labels(&s.test)?);
        let classes = ctrain.n_classes().max(s.test.n_classes());
        let code = |d: &Dataset, m: &ConvAutoencoder| m.transform(d, a.threads);
        let cl = model.net.code_len();
        let mut clf = FeatureClassifier::fit(
            &code(ctrain, &model)?,
            &ytr,
            &code(cval, &model)?,
            &yva,
            cl,
            classes,
            &c,
        )?;
        let frozen = error_percent(&clf.predict(&code(&s.test, &model)?), &yte);
        eprintln!(
            "classifier on the frozen codes: test error {frozen:.2}% (validation {:.2}%), {:.1} s",
            clf.valid_error,
            t.elapsed().as_secs_f64()
        );
        summary["frozen_test_error"] = json!(frozen);
        summary["test_error"] = json!(frozen);
        summary["valid_error"] = json!(clf.valid_error);
        summary["classifier"] = json!(a.cls.classifier);
        if a.cls.finetune_epochs > 0 {
            let fc = ClassifierConfig {
                epochs: a.cls.finetune_epochs,
                adam: AdamConfig {
                    lr: a.cls.finetune_lr,
                    ..AdamConfig::default()
                },
                ..c.clone()
            };
            let r = model.finetune_encoder(&mut clf, ctrain, cval, &fc, |e, err| {
                eprintln!("fine-tuning epoch {e}: validation error {err:.2}%")
            })?;
            let tuned = error_percent(&clf.predict(&code(&s.test, &model)?), &yte);
            eprintln!(
                "fine-tuned encoder + classifier: test error {tuned:.2}% (validation {:.2}% at epoch {}), {:.1} s",
                r.valid_error, r.best_epoch, r.train_seconds
            );
            model.save(&run.file("model-finetuned.safetensors"), HashMap::new())?;
            summary["test_error"] = json!(tuned);
            summary["valid_error"] = json!(r.valid_error);
            summary["finetuned_test_error"] = json!(tuned);
            summary["finetune"] = json!(r);
        }
    }
    run.write("summary.json", serde_json::to_string_pretty(&summary)?.as_bytes())?;
    eprintln!("run directory {}", run.path.display());
    Ok(())
}

pub fn ensemble(a: EnsembleArgs) -> Result<()> {
    let (spec, cfg) = train_config(&a.train, 3, 1)?;
    let cls = classifier_config(&a.cls, "softmax", cfg.seed, a.threads)?
        .context("--classifier none: an ensemble needs a classifier")?;
    if a.members == 0 {
        bail!("--members must be at least 1");
    }
    aekit::tensor::init_threads(a.threads);
    let s = splits(&a.data, a.train_size, a.val_size, cfg.seed, &spec)?;
    if s.val.n == 0 {
        bail!("an ensemble needs a validation split (--val-size > 0) for its eager stop and classifiers");
    }
    let run = RunDir::create(&super::out_dir(a.out, "ensemble"))?;
    let config = json!({ "arch": a.train.arch, "members": a.members, "spec": spec, "train": cfg, "classifier": cls, "data": s.description });
    run.write("config.toml", config_toml(config)?.as_bytes())?;
    for k in 0..a.members {
        std::fs::create_dir_all(run.file(&format!("members/{k}"))).context("creating members/")?;
    }
    eprintln!(
        "training {} members of {} at once for up to {} epochs (eager threshold {}, patience {})",
        a.members, a.train.arch, cfg.epochs, cfg.min_improvement, cfg.patience
    );
    let histories = Mutex::new(vec![Vec::new(); a.members]);
    let t = Instant::now();
    let members = ensemble::train_members(&spec, cfg.loss, a.members, &s.train, &s.val, &cfg, &|k, m, e| {
        eprintln!(
            "member {k} epoch {}: train loss {:.4}, validation loss {:.4} ({:.1} s)",
            e.epoch,
            e.train_loss,
            e.val_loss.unwrap_or(f64::NAN),
            e.seconds
        );
        m.save(
            &run.file(&format!("members/{k}/epoch-{}.safetensors", e.epoch)),
            HashMap::new(),
        )?;
        let csv = {
            let mut h = histories.lock().expect("not poisoned");
            h[k].push(*e);
            metrics_csv(&h[k])
        };
        run.write(&format!("members/{k}/metrics.csv"), csv.as_bytes())
    })?;
    let train_seconds = t.elapsed().as_secs_f64();
    for (k, (m, _)) in members.iter().enumerate() {
        m.save(
            &run.file(&format!("members/{k}/model.safetensors")),
            HashMap::new(),
        )?;
    }
    let refs: Vec<&ConvAutoencoder> = members.iter().map(|(m, _)| m).collect();
    let test_losses: Vec<f64> = refs
        .iter()
        .map(|m| m.score(&s.test, a.threads))
        .collect::<aekit::Result<_>>()?;
    viz::save_rgb_png(
        &run.file("reconstructions.png"),
        &reconstructions(refs[0], &s.test, 10)?,
    )?;
    let t = Instant::now();
    let e = classify(&refs, &s.train, &s.val, &s.test, &cls, a.threads)?;
    let classify_seconds = t.elapsed().as_secs_f64();
    eprintln!(
        "joined codes: test error {:.2}%; majority vote: {:.2}%; members alone: {:?}",
        e.concat_test_error, e.vote_test_error, e.member_test_errors
    );
    let summary = json!({
        "test_error": e.concat_test_error,
        "valid_error": e.concat_valid_error,
        "vote_test_error": e.vote_test_error,
        "member_test_errors": e.member_test_errors,
        "member_test_losses": test_losses,
        "member_epochs": members.iter().map(|(_, r)| r.history.len()).collect::<Vec<_>>(),
        "members": a.members,
        "train_seconds": train_seconds,
        "classify_seconds": classify_seconds,
        "n_train": s.train.n,
        "n_val": s.val.n,
        "n_test": s.test.n,
        "data": s.description,
        "aekit_version": env!("CARGO_PKG_VERSION"),
    });
    run.write("summary.json", serde_json::to_string_pretty(&summary)?.as_bytes())?;
    eprintln!("run directory {}", run.path.display());
    Ok(())
}

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
    let (t, v) = s
        .split_once('/')
        .context("a setting is TRAIN/VAL, e.g. 4800/1200")?;
    Ok((
        t.trim().parse().context("training size")?,
        v.trim().parse().context("validation size")?,
    ))
}

pub fn eager(a: EagerArgs) -> Result<()> {
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
        bail!("--members, --mono-width, --epochs and --seeds must be at least 1");
    }
    let spec = CaeSpec::preset("cae-mnist").expect("preset");
    let mono_spec = spec.widen(width);
    let base = CaeTrainConfig {
        epochs,
        ..CaeTrainConfig::default()
    };
    let cls = ClassifierConfig {
        epochs: if a.quick { 10 } else { 20 },
        patience: 3,
        threads: a.threads,
        ..ClassifierConfig::default()
    };
    aekit::tensor::init_threads(a.threads);
    let run = RunDir::create(&super::out_dir(a.out, "eager"))?;
    let name = a.data.data.as_deref().unwrap_or("mnist");
    let source: DataSource = name.parse().map_err(|e: String| anyhow::anyhow!("--data: {e}"))?;
    let mut points: Vec<Point> = Vec::new();
    let mut csv = String::from("setting,seed,model,step,seconds,test_recon_loss,test_error,vote_error\n");
    let started = Instant::now();
    for (setting, &(tr, va)) in settings.iter().zip(&parsed) {
        for seed in 1..=seeds as u64 {
            // A class-balanced subset when the setting asks for fewer images
            // than remain after validation; otherwise all of them (48000 of
            // MNIST's 60000 cannot be balanced: class 5 has 5421 images).
            let load = |size| {
                load_splits(&source, a.data.data_dir.as_deref(), size, va, seed)
                    .with_context(|| format!("loading data `{name}`"))
            };
            let mut s = load(None)?;
            if s.train.n > tr {
                s = load(Some(tr))?;
            } else if s.train.n < tr {
                bail!(
                    "setting {setting}: only {} training images remain after validation",
                    s.train.n
                );
            }
            if let Some(n) = test_size {
                s.test = s.test.select(&(0..n.min(s.test.n)).collect::<Vec<_>>());
            }
            if s.train.dim != 784 {
                bail!("the eager experiment uses cae-mnist and needs 28×28 grey images");
            }
            eprintln!("[{setting}, seed {seed}] {}", s.description);
            // The ensemble: K members, one thread each, one epoch at a time.
            let models: Vec<ConvAutoencoder> = (0..k)
                .map(|m| ConvAutoencoder::new(&spec, Loss::Squared, member_seed(seed * 100, m)))
                .collect::<aekit::Result<_>>()?;
            let mut trainers: Vec<Trainer> = models
                .into_iter()
                .enumerate()
                .map(|(m, model)| {
                    let c = CaeTrainConfig {
                        seed: member_seed(seed * 100, m),
                        threads: 1,
                        ..base.clone()
                    };
                    Trainer::new(model, &s.train, &c)
                })
                .collect::<aekit::Result<_>>()?;
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
                    .map(|m| m.score(&s.test, a.threads))
                    .sum::<aekit::Result<f64>>()?
                    / k as f64;
                let r = classify(&refs, &s.train, &s.val, &s.test, &cls, a.threads)?;
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
            let c = CaeTrainConfig {
                seed: seed * 100 + 99,
                threads: a.threads,
                ..base.clone()
            };
            let mono = ConvAutoencoder::new(&mono_spec, Loss::Squared, c.seed)?;
            let mut tm = Trainer::new(mono, &s.train, &c)?;
            for (i, &limit) in budget.iter().enumerate() {
                tm.run_until(limit);
                let recon = tm.model.score(&s.test, a.threads)?;
                let r = classify(&[&tm.model], &s.train, &s.val, &s.test, &cls, a.threads)?;
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
                writeln!(
                    csv,
                    "{},{},{},{},{:.3},{:.5},{:.4},{vote}",
                    p.setting, p.seed, p.model, p.step, p.seconds, p.recon, p.error
                )?;
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
        a.threads
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
            writeln!(
                md,
                "| {setting} | {step} | {es:.1} | {ee:.2} | {ev:.2} | {me:.2} | {er:.3} | {mr:.3} |"
            )?;
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
        "aekit_version": env!("CARGO_PKG_VERSION"),
    });
    run.write("summary.json", serde_json::to_string_pretty(&summary)?.as_bytes())?;
    print!("{md}");
    eprintln!("run directory {}", run.path.display());
    Ok(())
}

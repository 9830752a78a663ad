//! `aekit pretrain` and `aekit finetune`.

use crate::cli::{FinetuneArgs, PretrainArgs};
use aekit::data::{default_val_size, load_splits, DataSource, Splits};
use aekit::models::stacked::{FinetuneConfig, PretrainConfig, StackedDae};
use aekit::run::RunDir;
use aekit::viz;
use anyhow::{Context, Result};
use serde_json::json;
use std::collections::HashMap;

/// Loads and splits `--data`, printing where each part came from.
pub(super) fn splits(
    data: &crate::cli::DataArgs,
    train_size: Option<usize>,
    val_size: Option<usize>,
    seed: u64,
) -> Result<Splits> {
    let name = data.data.as_deref().unwrap_or("builtin");
    let source: DataSource = name.parse().map_err(|e: String| anyhow::anyhow!("--data: {e}"))?;
    let val = val_size.unwrap_or_else(|| default_val_size(&source));
    let s = load_splits(&source, data.data_dir.as_deref(), train_size, val, seed)
        .with_context(|| format!("loading data `{name}`"))?;
    eprintln!("data: {}", s.description);
    Ok(s)
}

pub fn pretrain(a: PretrainArgs) -> Result<()> {
    let cfg = PretrainConfig {
        layers: a.layers.clone(),
        schedule: a
            .schedule
            .parse()
            .map_err(|e: String| anyhow::anyhow!("--schedule: {e}"))?,
        noise: a
            .noise
            .iter()
            .map(|n| n.parse().map_err(|e: String| anyhow::anyhow!("--noise: {e}")))
            .collect::<Result<_>>()?,
        loss: a
            .loss
            .parse()
            .map_err(|e: String| anyhow::anyhow!("--loss: {e}"))?,
        first_epochs: a.first_epochs,
        layer_epochs: a.layer_epochs,
        batch: a.batch,
        lr: a.lr,
        momentum: a.momentum,
        weight_decay: a.weight_decay,
        seed: a.seed,
        threads: a.threads,
    };
    cfg.validate()?;
    aekit::tensor::init_threads(cfg.threads);
    let s = splits(&a.data, a.train_size, a.val_size, a.seed)?;
    let run = RunDir::create(&super::out_dir(a.out, "pretrain"))?;
    run.write("config.toml", toml::to_string_pretty(&cfg)?.as_bytes())?;
    let mut model = StackedDae::new(s.train.dim, &cfg.layers, cfg.seed);
    eprintln!(
        "pretraining {:?} with the {} schedule ({} epochs for layer 1, a budget of {} for each later layer)",
        model.sizes, cfg.schedule, cfg.first_epochs, cfg.layer_epochs
    );
    let mut csv = String::from("layer,phase,epoch,train_loss,updates,seconds\n");
    let start = std::time::Instant::now();
    let mut write_err = None;
    let updates = model.pretrain(&s.train, &cfg, &mut |e| {
        csv.push_str(&format!(
            "{},{},{},{:.6},{},{:.3}\n",
            e.layer, e.phase, e.epoch, e.train_loss, e.updates, e.seconds
        ));
        if let Err(err) = run.write("metrics.csv", csv.as_bytes()) {
            write_err.get_or_insert(err);
        }
    })?;
    if let Some(e) = write_err {
        return Err(e.into());
    }
    let secs = start.elapsed().as_secs_f64();
    let mut meta = HashMap::new();
    meta.insert("pretrain".into(), toml::to_string(&cfg)?);
    model.save(&run.file("model.safetensors"), meta)?;
    let first = viz::filter_tiles(
        &model.trunk[..s.train.dim * cfg.layers[0]],
        s.train.dim,
        cfg.layers[0],
        100,
    );
    let (h, w) = viz::tile_shape(s.train.dim, s.train.image);
    viz::save_png(
        &run.file("filters.png"),
        &viz::tile_grid(&first, h, w, 10, viz::Scale::PerTile, 2),
    )?;
    let summary = json!({
        "schedule": cfg.schedule.to_string(),
        "sizes": model.sizes,
        "updates": updates,
        "train_seconds": secs,
        "n_train": s.train.n,
        "data": s.description,
        "aekit_version": env!("CARGO_PKG_VERSION"),
    });
    run.write("summary.json", serde_json::to_string_pretty(&summary)?.as_bytes())?;
    eprintln!(
        "done in {secs:.1} s, {updates} weight updates; run directory {}",
        run.path.display()
    );
    Ok(())
}

pub fn finetune(a: FinetuneArgs) -> Result<()> {
    let cfg = FinetuneConfig {
        epochs: a.epochs,
        batch: a.batch,
        lr: a.lr,
        momentum: a.momentum,
        weight_decay: a.weight_decay,
        patience: a.patience,
        seed: a.seed,
        threads: a.threads,
        lr_decay: a.lr_decay,
    };
    cfg.validate()?;
    aekit::tensor::init_threads(cfg.threads);
    let mut model = StackedDae::load(&a.model)?;
    let s = splits(&a.data, a.train_size, a.val_size, a.seed)?;
    if s.train.dim != model.sizes[0] {
        anyhow::bail!(
            "{} expects {} inputs but the data has {}",
            a.model.display(),
            model.sizes[0],
            s.train.dim
        );
    }
    let run = RunDir::create(&super::out_dir(a.out, "finetune"))?;
    run.write("config.toml", toml::to_string_pretty(&cfg)?.as_bytes())?;
    eprintln!(
        "fine-tuning {:?} + softmax for up to {} epochs",
        model.sizes, cfg.epochs
    );
    let mut csv = String::from("epoch,train_loss,val_error,seconds\n");
    let mut write_err = None;
    let r = model.finetune(&s.train, &s.val, &s.test, &cfg, &mut |e| {
        eprintln!(
            "epoch {}: train loss {:.4}, validation error {:.2}% ({:.1} s)",
            e.epoch, e.train_loss, e.val_error, e.seconds
        );
        csv.push_str(&format!(
            "{},{:.6},{:.4},{:.3}\n",
            e.epoch, e.train_loss, e.val_error, e.seconds
        ));
        if let Err(err) = run.write("metrics.csv", csv.as_bytes()) {
            write_err.get_or_insert(err);
        }
    })?;
    if let Some(e) = write_err {
        return Err(e.into());
    }
    model.save(&run.file("model.safetensors"), HashMap::new())?;
    let curve: Vec<(f64, f64)> = r.history.iter().map(|e| (e.epoch as f64, e.val_error)).collect();
    viz::plot::save_line_chart(
        &run.file("curve.png"),
        "Fine-tuning: validation error",
        "epoch",
        "validation error, %",
        &[viz::plot::Series {
            label: format!("test error {:.2}% at epoch {}", r.test_error, r.best_epoch),
            points: curve,
        }],
    )?;
    let summary = json!({
        "test_error": r.test_error,
        "valid_error": r.valid_error,
        "best_epoch": r.best_epoch,
        "epochs": r.history.len(),
        "updates": r.updates,
        "train_seconds": r.train_seconds,
        "confusion": r.confusion,
        "n_train": s.train.n,
        "n_val": s.val.n,
        "n_test": s.test.n,
        "data": s.description,
        "aekit_version": env!("CARGO_PKG_VERSION"),
    });
    run.write("summary.json", serde_json::to_string_pretty(&summary)?.as_bytes())?;
    eprintln!(
        "test error {:.2}% (validation {:.2}% at epoch {}); run directory {}",
        r.test_error,
        r.valid_error,
        r.best_epoch,
        run.path.display()
    );
    Ok(())
}

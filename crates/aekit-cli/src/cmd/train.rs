//! `aekit train`: config file, then flags, then one validation; data; fit;
//! the run directory.

use crate::cli::TrainArgs;
use aekit::config::RunConfig;
use aekit::data::load_splits;
use aekit::io::run_dir::RunDir;
use aekit::models::DenoisingAutoencoder;
use aekit::train::Progress;
use aekit::viz;
use anyhow::{Context, Result};
use std::cell::RefCell;

/// The config file (or defaults) with the flags applied on top.
pub fn resolve_config(a: &TrainArgs) -> Result<RunConfig> {
    let mut c = match &a.config {
        Some(p) => RunConfig::read(p)?,
        None => RunConfig::default(),
    };
    if let Some(d) = &a.data.data {
        c.data.source = d.clone();
    }
    if let Some(d) = &a.data.data_dir {
        c.data.data_dir = Some(d.clone());
    }
    if a.train_size.is_some() {
        c.data.train_size = a.train_size;
    }
    if a.val_size.is_some() {
        c.data.val_size = a.val_size;
    }
    let m = &mut c.model;
    if let Some(h) = a.hidden {
        m.n_hid = h;
    }
    if let Some(n) = &a.noise {
        m.noise = n.parse().map_err(|e: String| anyhow::anyhow!("--noise: {e}"))?;
    }
    if let Some(l) = &a.loss {
        m.loss = l.parse().map_err(|e: String| anyhow::anyhow!("--loss: {e}"))?;
    }
    if a.untied {
        m.tied = false;
    }
    if let Some(p) = &a.parallel {
        c.train.parallel = p
            .parse()
            .map_err(|e: String| anyhow::anyhow!("--parallel: {e}"))?;
    }
    let t = &mut c.train;
    macro_rules! set {
        ($($f:ident),*) => { $( if let Some(v) = a.$f { t.$f = v; } )* };
    }
    set!(epochs, batch, lr, momentum, weight_decay, patience, seed, threads);
    c.validate()?;
    Ok(c)
}

pub fn run(a: TrainArgs) -> Result<()> {
    let mut cfg = resolve_config(&a)?;
    aekit::tensor::init_threads(cfg.train.resolved_threads());
    let source = cfg.data.source()?;
    let val_size = cfg.data.val_size()?;
    let splits = load_splits(
        &source,
        cfg.data.data_dir.as_deref(),
        cfg.data.train_size,
        val_size,
        cfg.train.seed,
    )
    .with_context(|| format!("loading data `{}`", cfg.data.source))?;
    eprintln!("data: {}", splits.description);
    cfg.model.n_vis = splits.train.dim;
    cfg.data.val_size = Some(val_size);

    let out = super::out_dir(a.out.clone(), "train");
    let run = RunDir::create(&out)?;
    run.write("config.toml", cfg.to_toml().as_bytes())?;
    eprintln!(
        "training a {} {}→{} denoising autoencoder ({} loss, noise {}) for up to {} epochs, batch {}, on {} thread(s); writing {}",
        if cfg.model.tied { "tied" } else { "untied" },
        cfg.model.n_vis,
        cfg.model.n_hid,
        cfg.model.loss,
        cfg.model.noise,
        cfg.train.epochs,
        cfg.train.batch,
        cfg.train.resolved_threads(),
        out.display()
    );

    let mut model = DenoisingAutoencoder::new(cfg.model.clone(), cfg.train.clone());
    let history = RefCell::new(Vec::new());
    let write_err = RefCell::new(None);
    let mut progress = Progress::with_callback(|m| {
        history.borrow_mut().push(*m);
        if let Err(e) = run.write_metrics(&history.borrow()) {
            write_err.borrow_mut().get_or_insert(e);
        }
    });
    let val = (splits.val.n > 0).then(|| splits.val.view());
    let report = model.fit(splits.train.view(), val, &mut progress)?;
    drop(progress);
    if let Some(e) = write_err.into_inner() {
        return Err(e.into());
    }

    let test = model.evaluate(splits.test.view())?;
    model.save(&run.file("model.safetensors"))?;
    viz::save_png(
        &run.file("filters.png"),
        &viz::filters_picture(&model, splits.train.image),
    )?;
    let recon =
        viz::reconstructions_picture(&model, splits.test.view(), 10, cfg.train.seed, splits.test.image)?;
    viz::save_png(&run.file("reconstructions.png"), &recon)?;

    let epochs = report.history.len();
    let mut summary = super::test_metrics_json(&test, splits.test.n);
    let extra = serde_json::json!({
        "train_seconds": report.train_seconds,
        "seconds_per_epoch": report.train_seconds / epochs.max(1) as f64,
        "epochs": epochs,
        "best_epoch": report.best_epoch,
        "stopped_early": report.stopped_early,
        "updates": report.updates,
        "n_train": splits.train.n,
        "n_val": splits.val.n,
        "best_val_loss": report.history.iter().filter_map(|m| m.val_loss).fold(None, |b: Option<f64>, v| Some(b.map_or(v, |b| b.min(v)))),
        "final_train_loss": report.history.last().map(|m| m.train_loss),
        "data": splits.description,
        "seed": cfg.train.seed,
        "threads": cfg.train.resolved_threads(),
        "parallel": format!("{:?}", model.epoch_plan()?),
        "aekit_version": env!("CARGO_PKG_VERSION"),
    });
    summary
        .as_object_mut()
        .expect("object")
        .extend(extra.as_object().expect("object").clone());
    let text = serde_json::to_string_pretty(&summary)?;
    run.write("summary.json", text.as_bytes())?;
    eprintln!(
        "done in {:.1} s ({} epochs, best {}): test loss {:.4}, squared error {:.4}, cross-entropy {:.4} per image; run directory {}",
        report.train_seconds,
        epochs,
        report.best_epoch,
        test.loss,
        test.squared_error,
        test.cross_entropy,
        out.display()
    );
    Ok(())
}

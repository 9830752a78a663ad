//! `aekit train`: config file, then flags, then one validation; data; fit;
//! the run directory.

use crate::cli::TrainArgs;
use aekit::data::{load_splits, Splits};
use aekit::models::sparse_ae::SparseAutoencoder;
use aekit::models::DenoisingAutoencoder;
use aekit::run::RunDir;
use aekit::run::{ModelKind, RunConfig};
use aekit::tensor::gemm::Par;
use aekit::train::Optimizer;
use aekit::train::{EpochMetrics, FitReport, Observer, Progress};
use aekit::viz;
use anyhow::{Context, Result};
use serde_json::{json, Value};
use std::cell::RefCell;

fn parsed<T: std::str::FromStr<Err = String>>(v: &Option<String>, flag: &str) -> Result<Option<T>> {
    v.as_deref()
        .map(|s| s.parse().map_err(|e: String| anyhow::anyhow!("{flag}: {e}")))
        .transpose()
}

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
    if let Some(k) = parsed(&a.kind, "--kind")? {
        c.kind = k;
    }
    if let Some(o) = parsed(&a.optimizer, "--optimizer")? {
        c.train.optimizer = o;
    }
    if c.kind == ModelKind::Sparse && a.optimizer.is_none() {
        c.train.optimizer = Optimizer::Lbfgs;
    }
    if let Some(p) = parsed(&a.parallel, "--parallel")? {
        c.train.parallel = p;
    }
    let m = &mut c.model;
    if let Some(h) = a.hidden {
        m.n_hid = h;
        c.sparse.n_hid = h;
    }
    if let Some(n) = parsed(&a.noise, "--noise")? {
        m.noise = n;
    }
    if let Some(l) = parsed(&a.loss, "--loss")? {
        m.loss = l;
    }
    if a.untied {
        m.tied = false;
    }
    let s = &mut c.sparse;
    if let Some(r) = a.sparsity {
        s.sparsity_target = r;
    }
    if let Some(b) = a.beta {
        s.sparsity_weight = b;
    }
    if let Some(o) = parsed(&a.output, "--output")? {
        s.output_activation = o;
        c.model.output_activation = o;
    }
    if let Some(w) = a.weight_decay {
        s.weight_decay = w;
        c.train.weight_decay = w as f32;
    }
    if let Some(i) = a.max_iter {
        c.lbfgs.max_iter = i;
    }
    let t = &mut c.train;
    macro_rules! set {
        ($($f:ident),*) => { $( if let Some(v) = a.$f { t.$f = v; } )* };
    }
    set!(epochs, batch, lr, momentum, patience, seed, threads);
    if let Some(seed) = a.seed {
        c.sparse.seed = seed;
    }
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
    cfg.sparse.n_vis = splits.train.dim;
    cfg.data.val_size = Some(val_size);
    if cfg.kind == ModelKind::Dae && cfg.train.optimizer == Optimizer::Sgd {
        // A parallel mode that does not fit is refused before any file is written.
        DenoisingAutoencoder::new(cfg.model.clone(), cfg.train.clone()).epoch_plan()?;
    }
    let run = RunDir::create(&super::out_dir(a.out.clone(), "train"))?;
    run.write("config.toml", cfg.to_toml().as_bytes())?;
    let mut summary = match cfg.kind {
        ModelKind::Dae => train_dae(&cfg, &splits, &run)?,
        ModelKind::Sparse => train_sparse(&cfg, &splits, &run)?,
    };
    let extra = json!({
        "n_train": splits.train.n,
        "n_val": splits.val.n,
        "data": splits.description,
        "seed": cfg.train.seed,
        "threads": cfg.train.resolved_threads(),
        "aekit_version": env!("CARGO_PKG_VERSION"),
    });
    summary
        .as_object_mut()
        .expect("object")
        .extend(extra.as_object().expect("object").clone());
    run.write("summary.json", serde_json::to_string_pretty(&summary)?.as_bytes())?;
    eprintln!("run directory {}", run.path.display());
    Ok(())
}

/// A progress observer that also rewrites metrics.csv after every epoch.
fn with_metrics<T>(
    run: &RunDir,
    f: impl FnOnce(&mut Progress<'_>) -> aekit::Result<T>,
) -> Result<(T, Vec<EpochMetrics>)> {
    let history = RefCell::new(Vec::new());
    let write_err = RefCell::new(None);
    let out = {
        let mut progress = Progress::with_callback(|m| {
            history.borrow_mut().push(*m);
            if let Err(e) = run.write_metrics(&history.borrow()) {
                write_err.borrow_mut().get_or_insert(e);
            }
        });
        f(&mut progress)?
    };
    if let Some(e) = write_err.into_inner() {
        return Err(e.into());
    }
    Ok((out, history.into_inner()))
}

fn train_dae(cfg: &RunConfig, splits: &Splits, run: &RunDir) -> Result<Value> {
    let mut model = DenoisingAutoencoder::new(cfg.model.clone(), cfg.train.clone());
    eprintln!(
        "training a {} {}→{} denoising autoencoder ({} loss, noise {}) with {}, on {} thread(s)",
        if cfg.model.tied { "tied" } else { "untied" },
        cfg.model.n_vis,
        cfg.model.n_hid,
        cfg.model.loss,
        cfg.model.noise,
        match cfg.train.optimizer {
            Optimizer::Sgd => format!(
                "SGD for up to {} epochs, batch {}",
                cfg.train.epochs, cfg.train.batch
            ),
            Optimizer::Lbfgs => format!("full-batch L-BFGS for up to {} iterations", cfg.lbfgs.max_iter),
        },
        cfg.train.resolved_threads(),
    );
    let mut summary = match cfg.train.optimizer {
        Optimizer::Sgd => {
            let val = (splits.val.n > 0).then(|| splits.val.view());
            let (report, _) = with_metrics(run, |p| model.fit(splits.train.view(), val, p))?;
            sgd_summary(&report, &model)?
        }
        Optimizer::Lbfgs => {
            let t = std::time::Instant::now();
            let (report, _) = with_metrics(run, |p| model.fit_lbfgs(splits.train.view(), &cfg.lbfgs, p))?;
            let secs = t.elapsed().as_secs_f64();
            json!({
                "optimizer": "lbfgs",
                "train_seconds": secs,
                "epochs": report.iterations,
                "iterations": report.iterations,
                "evaluations": report.evaluations,
                "seconds_per_evaluation": secs / report.evaluations.max(1) as f64,
                "final_cost": report.cost,
                "stop": report.stop,
            })
        }
    };
    let test = model.evaluate(splits.test.view())?;
    model.save(&run.file("model.safetensors"))?;
    viz::save_png(
        &run.file("filters.png"),
        &viz::filters_picture(&model, splits.train.image),
    )?;
    let recon =
        viz::reconstructions_picture(&model, splits.test.view(), 10, cfg.train.seed, splits.test.image)?;
    viz::save_png(&run.file("reconstructions.png"), &recon)?;
    let obj = summary.as_object_mut().expect("object");
    obj.extend(
        super::test_metrics_json(&test, splits.test.n)
            .as_object()
            .expect("object")
            .clone(),
    );
    let plan = model.epoch_plan()?;
    use aekit::models::dae::EpochPlan;
    use aekit::per_example::Plan;
    if let EpochPlan::PerExample(Plan::Split(w) | Plan::Rows(w) | Plan::Balanced(w)) = plan {
        let t = cfg.train.resolved_threads();
        if w < t {
            eprintln!("note: {plan:?} ran {w} workers for {t} threads (at most one per core)");
        }
    }
    obj.insert("parallel".into(), format!("{plan:?}").into());
    eprintln!(
        "test loss {:.4}, squared error {:.4}, cross-entropy {:.4} per image",
        test.loss, test.squared_error, test.cross_entropy
    );
    Ok(summary)
}

fn sgd_summary(report: &FitReport, model: &DenoisingAutoencoder) -> Result<Value> {
    let epochs = report.history.len();
    let best_val = report.history.iter().filter_map(|m| m.val_loss).reduce(f64::min);
    eprintln!(
        "done in {:.1} s ({} epochs, best {})",
        report.train_seconds, epochs, report.best_epoch
    );
    Ok(json!({
        "optimizer": "sgd",
        "train_seconds": report.train_seconds,
        "seconds_per_epoch": report.train_seconds / epochs.max(1) as f64,
        "epochs": epochs,
        "best_epoch": report.best_epoch,
        "stopped_early": report.stopped_early,
        "updates": report.updates,
        "best_val_loss": best_val,
        "final_train_loss": report.history.last().map(|m| m.train_loss),
        "fused_kernel": model.uses_fused_kernel(),
    }))
}

fn train_sparse(cfg: &RunConfig, splits: &Splits, run: &RunDir) -> Result<Value> {
    let s = &cfg.sparse;
    eprintln!(
        "training a sparse {}→{} autoencoder (ρ = {}, β = {}, λ = {}, {} output) with full-batch L-BFGS, up to {} iterations",
        s.n_vis,
        s.n_hid,
        s.sparsity_target,
        s.sparsity_weight,
        s.weight_decay,
        format!("{:?}", s.output_activation).to_lowercase(),
        cfg.lbfgs.max_iter
    );
    let par = Par::from_threads(cfg.train.resolved_threads());
    let mut model = SparseAutoencoder::new(s.clone());
    let t = std::time::Instant::now();
    let (report, _) = with_metrics(run, |p| {
        p.on_start(cfg.lbfgs.max_iter, 1);
        let start = std::time::Instant::now();
        let r = model.fit(splits.train.view(), &cfg.lbfgs, par, &mut |it| {
            Observer::on_epoch(
                p,
                &EpochMetrics {
                    epoch: it.iter,
                    train_loss: it.cost,
                    val_loss: None,
                    seconds: start.elapsed().as_secs_f64(),
                },
            )
        });
        p.on_end();
        r
    })?;
    let secs = t.elapsed().as_secs_f64();
    let cost = model.cost(splits.train.view(), par)?;
    let test = model.cost(splits.test.view(), par)?;
    model.save(&run.file("model.safetensors"))?;
    let pic = viz::weights_picture(model.weights(), s.n_vis, s.n_hid, splits.train.image);
    viz::save_png(&run.file("filters.png"), &pic)?;
    let per_eval = secs / report.evaluations.max(1) as f64;
    let flops = aekit::bench::step_flops(s.n_vis, s.n_hid) * splits.train.n as f64;
    eprintln!(
        "done in {secs:.1} s: {} iterations, {} evaluations ({:.1} ms each, {:.1} GFLOP/s), stop: {:?}",
        report.iterations,
        report.evaluations,
        per_eval * 1e3,
        flops / per_eval / 1e9,
        report.stop
    );
    eprintln!(
        "cost {:.6} = reconstruction {:.6} + weight decay {:.6} + sparsity {:.6}; mean activation {:.4} (ρ = {})",
        cost.total, cost.reconstruction, cost.weight_decay, cost.sparsity, cost.mean_activation, s.sparsity_target
    );
    Ok(json!({
        "optimizer": "lbfgs",
        "train_seconds": secs,
        "epochs": report.iterations,
        "iterations": report.iterations,
        "evaluations": report.evaluations,
        "seconds_per_evaluation": per_eval,
        "gflops_per_evaluation": flops / per_eval / 1e9,
        "stop": report.stop,
        "final_cost": cost.total,
        "reconstruction": cost.reconstruction,
        "weight_decay_term": cost.weight_decay,
        "sparsity_term": cost.sparsity,
        "mean_activation": cost.mean_activation,
        "n_test": splits.test.n,
        "test_cost": test.total,
        "test_reconstruction": test.reconstruction,
    }))
}

//! `aekit train`: a dense denoising autoencoder (SGD, Adam or L-BFGS) or a
//! sparse autoencoder (L-BFGS), from its resolved configuration to a run
//! directory.

use super::config::{ModelKind, RunConfig};
use super::dir::{resume_hint, Out, RunDir};
use super::observe::{epoch_row, RunObserver};
use crate::data::{load_splits, Splits};
use crate::error::Result;
use crate::models::dae::EpochPlan;
use crate::models::sparse_ae::SparseAutoencoder;
use crate::models::{DenoisingAutoencoder, Metrics};
use crate::per_example::Plan;
use crate::tensor::gemm::Par;
use crate::train::{Checkpointing, EpochMetrics, FitReport, Optimizer, State};
use crate::viz;
use serde_json::{json, Value};
use std::path::Path;

/// The test figures shared by `train`'s summary.json and `eval`.
pub fn test_metrics_json(m: &Metrics, n: usize) -> Value {
    json!({
        "n_test": n,
        "test_loss": m.loss,
        "test_squared_error": m.squared_error,
        "test_cross_entropy": m.cross_entropy,
    })
}

/// Trains as `cfg` says (validated here), writing the run directory at
/// `out` (default `runs/train-<unix time>`).
pub fn train(cfg: RunConfig, out: &Out) -> Result<RunDir> {
    let (cfg, splits) = prepare(cfg)?;
    let run = RunDir::claim(out, "train")?;
    run.write_config(&cfg.to_toml())?;
    finish(cfg, &splits, run, None)
}

/// Continues the stopped `train` run in `dir` with the settings in its
/// `config.toml`, from its last checkpoint (from the start when it has none,
/// as L-BFGS runs never do). A one-thread run ends bit-for-bit as it would
/// have without the stop.
pub fn resume(dir: &Path) -> Result<RunDir> {
    let run = RunDir::reopen(dir, "train")?;
    let cfg = super::dir::read_config(&run, RunConfig::read)?;
    let (cfg, splits) = prepare(cfg)?;
    let state = super::dir::resume_state(&run.path, "train")?;
    finish(cfg, &splits, run, state)
}

/// Validates `cfg` and loads its data, before any file is written.
fn prepare(mut cfg: RunConfig) -> Result<(RunConfig, Splits)> {
    cfg.validate()?;
    cfg.train.hold_threads_to_cores()?;
    crate::tensor::init_threads(cfg.train.resolved_threads());
    let source = cfg.data.source()?;
    let val_size = cfg.data.val_size()?;
    let splits = load_splits(
        &source,
        cfg.data.data_dir.as_deref(),
        cfg.data.train_size,
        val_size,
        cfg.train.seed,
    )?;
    eprintln!("data: {}", splits.description);
    cfg.model.n_vis = splits.train.dim;
    cfg.sparse.n_vis = splits.train.dim;
    match cfg.kind {
        ModelKind::Dae => cfg.model.check_size()?,
        ModelKind::Sparse => crate::tensor::memory::check_f32s(
            "sparse.n_hid",
            6 * 2 * cfg.sparse.n_vis as u128 * cfg.sparse.n_hid as u128,
        )?,
    }
    cfg.data.val_size = Some(val_size);
    if cfg.kind == ModelKind::Dae
        && !matches!(
            cfg.train.optimizer,
            Optimizer::Lbfgs | Optimizer::Ga | Optimizer::Es
        )
    {
        // A parallel mode that does not fit is refused before any file is written.
        DenoisingAutoencoder::new(cfg.model.clone(), cfg.train.clone()).epoch_plan()?;
    }
    Ok((cfg, splits))
}

/// Trains (from `state` when resuming) into `run`, then writes the model,
/// pictures and summary.
fn finish(cfg: RunConfig, splits: &Splits, run: RunDir, state: Option<State>) -> Result<RunDir> {
    let summary = match cfg.kind {
        ModelKind::Dae => train_dae(&cfg, splits, &run, state),
        ModelKind::Sparse => train_sparse(&cfg, splits, &run, state),
    };
    let mut summary = summary.map_err(|e| resume_hint(e, &run, "train"))?;
    let extra = json!({
        "n_train": splits.train.n,
        "n_val": splits.val.n,
        "data": splits.description,
        "seed": cfg.train.seed,
        "threads": cfg.train.resolved_threads(),
    });
    summary
        .as_object_mut()
        .expect("object")
        .extend(extra.as_object().expect("object").clone());
    run.write_summary(&summary)?;
    eprintln!("run directory {}", run.path.display());
    Ok(run)
}

/// Runs `f` with the run's observer; returns what `f` returned and the
/// epochs it reported (an error in writing `metrics.csv` is an error here).
fn with_metrics<T>(
    run: &RunDir,
    f: impl FnOnce(&mut RunObserver<'_, EpochMetrics>) -> Result<T>,
) -> Result<(T, Vec<EpochMetrics>)> {
    let mut obs = RunObserver::new(run, epoch_row);
    let out = f(&mut obs)?;
    Ok((out, obs.finish()?))
}

fn train_dae(cfg: &RunConfig, splits: &Splits, run: &RunDir, resume: Option<State>) -> Result<Value> {
    let mut model = DenoisingAutoencoder::new(cfg.model.clone(), cfg.train.clone());
    eprintln!(
        "training a {} {}→{} denoising autoencoder ({} loss, noise {}) with {}, on {}",
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
            Optimizer::Adam => format!(
                "Adam for up to {} epochs, batch {}",
                cfg.train.epochs, cfg.train.batch
            ),
            Optimizer::Lbfgs => format!("full-batch L-BFGS for up to {} iterations", cfg.lbfgs.max_iter),
            Optimizer::Ga => format!(
                "a genetic algorithm ({} individuals, {} generations per epoch, {} epochs, minibatch {})",
                cfg.ga.population, cfg.ga.generations_per_epoch, cfg.train.epochs, cfg.train.batch
            ),
            Optimizer::Es => format!(
                "an evolution strategy ({} antithetic pairs, {} generations per epoch, {} epochs, minibatch {})",
                cfg.es.pairs, cfg.es.generations_per_epoch, cfg.train.epochs, cfg.train.batch
            ),
        },
        match cfg.train.device {
            crate::train::Device::Cpu => format!("{} thread(s)", cfg.train.resolved_threads()),
            gpu => gpu.to_string(),
        },
    );
    let n = model.params().len();
    let mut save = |mut s: State, m: &EpochMetrics| {
        s.put("verb", "train");
        let mut snap = DenoisingAutoencoder::new(cfg.model.clone(), cfg.train.clone());
        snap.params_mut().copy_from_slice(s.tensor("params", n)?);
        run.save_checkpoint(m.epoch, |p| snap.save(p), &s).map(drop)
    };
    let ck = Checkpointing {
        resume,
        save: Some(&mut save),
    };
    let mut summary = match cfg.train.optimizer {
        Optimizer::Sgd | Optimizer::Adam => {
            let val = (splits.val.n > 0).then(|| splits.val.view());
            let (report, _) = with_metrics(run, |p| model.fit_with(splits.train.view(), val, p, ck))?;
            sgd_summary(&report, &model, cfg.train.optimizer)?
        }
        Optimizer::Ga | Optimizer::Es => {
            let val = (splits.val.n > 0).then(|| splits.val.view());
            let ((report, evaluated), _) = with_metrics(run, |p| {
                model.fit_evolve_with(splits.train.view(), val, &cfg.ga, &cfg.es, p, ck)
            })?;
            json!({
                "optimizer": cfg.train.optimizer.to_string(),
                "train_seconds": report.train_seconds,
                "epochs": report.history.len(),
                "best_epoch": report.best_epoch,
                "generations": report.updates,
                "examples_evaluated": evaluated,
            })
        }
        Optimizer::Lbfgs => {
            let t = std::time::Instant::now();
            let (report, _) = with_metrics(run, |p| {
                model.fit_lbfgs_with(splits.train.view(), &cfg.lbfgs, p, ck)
            })?;
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
        test_metrics_json(&test, splits.test.n)
            .as_object()
            .expect("object")
            .clone(),
    );
    if !matches!(
        cfg.train.optimizer,
        Optimizer::Lbfgs | Optimizer::Ga | Optimizer::Es
    ) {
        let plan = model.epoch_plan()?;
        if let EpochPlan::PerExample(Plan::Split(w) | Plan::Rows(w) | Plan::Balanced(w)) = plan {
            let t = cfg.train.resolved_threads();
            if w < t {
                eprintln!("note: {plan:?} ran {w} workers for {t} threads (at most one per core)");
            }
        }
        obj.insert("parallel".into(), format!("{plan:?}").into());
    }
    eprintln!(
        "test loss {:.4}, squared error {:.4}, cross-entropy {:.4} per image",
        test.loss, test.squared_error, test.cross_entropy
    );
    Ok(summary)
}

fn sgd_summary(report: &FitReport, model: &DenoisingAutoencoder, optimizer: Optimizer) -> Result<Value> {
    let epochs = report.history.len();
    let best_val = report.history.iter().filter_map(|m| m.val_loss).reduce(f64::min);
    eprintln!(
        "done in {:.1} s ({} epochs, best {})",
        report.train_seconds, epochs, report.best_epoch
    );
    Ok(json!({
        "optimizer": optimizer.to_string(),
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

fn train_sparse(cfg: &RunConfig, splits: &Splits, run: &RunDir, resume: Option<State>) -> Result<Value> {
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
    model.device = cfg.train.device;
    let t = std::time::Instant::now();
    let mut save = |mut st: State, m: &EpochMetrics| {
        st.put("verb", "train");
        let mut snap = SparseAutoencoder::new(s.clone());
        snap.set_params(st.tensor_any("params")?)?;
        run.save_checkpoint(m.epoch, |p| snap.save(p), &st).map(drop)
    };
    let ck = Checkpointing {
        resume,
        save: Some(&mut save),
    };
    let (report, _) = with_metrics(run, |p| {
        model.fit_with(splits.train.view(), &cfg.lbfgs, par, p, ck)
    })?;

    let secs = t.elapsed().as_secs_f64();
    let cost = model.cost(splits.train.view(), par)?;
    let test = model.cost(splits.test.view(), par)?;
    model.save(&run.file("model.safetensors"))?;
    let pic = viz::weights_picture(model.weights(), s.n_vis, s.n_hid, splits.train.image);
    viz::save_png(&run.file("filters.png"), &pic)?;
    let per_eval = secs / report.evaluations.max(1) as f64;
    let flops = crate::per_example::step_flops(s.n_vis, s.n_hid) * splits.train.n as f64;
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

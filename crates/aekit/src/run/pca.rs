//! `aekit pca`: principal components of a dataset, the linear baseline of
//! compression, with the explained variance, the error against the number
//! of components and the lecture's picture of one digit rebuilt from
//! p = 1, 10, 50 and 250 components.

use super::config::Sections;
use super::dir::{Out, RunDir};
use crate::data::DataConfig;
use crate::error::Result;
use crate::models::pca::Pca;
use crate::viz;
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::fmt::Write as _;

/// `[model]` of `aekit pca`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PcaSettings {
    pub components: usize,
    /// `exact` (the covariance's eigendecomposition) or `randomized`.
    pub solver: crate::models::pca::Solver,
    pub whiten: bool,
    /// Threads for the covariance product; 0 = all cores.
    pub threads: usize,
}

impl Default for PcaSettings {
    fn default() -> Self {
        PcaSettings {
            components: 30,
            solver: crate::models::pca::Solver::Exact,
            whiten: false,
            threads: 1,
        }
    }
}

/// Everything `aekit pca` needs: `[data]` and `[model]`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PcaRun {
    pub data: DataConfig,
    pub model: PcaSettings,
}

impl Sections for PcaRun {}

/// Fits the PCA and writes the run directory: `model.safetensors`,
/// `explained-variance.csv` and `.png`, `error-vs-components.csv`,
/// `reconstructions.png` and `summary.json`.
pub fn pca(mut cfg: PcaRun, out: &Out) -> Result<RunDir> {
    cfg.data.source()?;
    let threads = crate::train::TrainConfig {
        threads: cfg.model.threads,
        ..Default::default()
    }
    .resolved_threads()
    .min(std::thread::available_parallelism().map_or(1, |n| n.get()));
    cfg.model.threads = threads;
    crate::tensor::init_threads(threads);
    let s = super::load_splits(&cfg.data, 1)?;
    let mut model = Pca::new(cfg.model.components, cfg.model.whiten);
    model.threads = threads;
    model.solver = cfg.model.solver;
    if cfg.model.components == 0 || cfg.model.components > s.train.dim {
        return Err(crate::Error::config(
            "model.components",
            format!(
                "must be between 1 and the {} columns, got {}",
                s.train.dim, cfg.model.components
            ),
        ));
    }
    let run = RunDir::claim(out, "pca")?;
    run.write_config(&cfg.to_toml()?)?;
    let t = std::time::Instant::now();
    model.fit_rows(s.train.view())?;
    let fit_seconds = t.elapsed().as_secs_f64();
    model.save(&run.file("model.safetensors"))?;
    let total = model.total_variance();
    let mut csv = String::from("component,variance,ratio,cumulative_ratio\n");
    let mut cum = 0.0;
    let mut points = Vec::new();
    for (i, v) in model.explained_variance().iter().enumerate() {
        cum += v / total;
        writeln!(csv, "{},{v:.6},{:.6},{cum:.6}", i + 1, v / total).expect("a string");
        points.push(((i + 1) as f64, cum));
    }
    run.write("explained-variance.csv", csv.as_bytes())?;
    viz::plot::save_line_chart(
        &run.file("explained-variance.png"),
        "PCA: cumulative explained variance",
        "components",
        "fraction of the variance",
        &[viz::plot::Series {
            label: "training data".into(),
            points,
        }],
    )?;
    let k = cfg.model.components;
    let mut errs = String::from("components,train_error,test_error\n");
    let ps: Vec<usize> = [1, 2, 5, 10, 20, 30, 50, 100, 250, 500]
        .into_iter()
        .filter(|&p| p < k)
        .chain([k])
        .collect();
    let (mut test_error, mut train_error) = (f64::NAN, f64::NAN);
    for &p in &ps {
        let (a, b) = (
            model.error_p(s.train.view(), p)?,
            model.error_p(s.test.view(), p)?,
        );
        writeln!(errs, "{p},{a:.4},{b:.4}").expect("a string");
        (train_error, test_error) = (a, b);
    }
    run.write("error-vs-components.csv", errs.as_bytes())?;
    // One test image, then its rebuilds from p = 1, 10, 50, 250 components (those ≤ k).
    if s.test.n > 0 {
        let first = s.test.view().slice_move(ndarray::s![0..1, ..]);
        let mut tiles = vec![first.iter().copied().collect::<Vec<f32>>()];
        for p in [1, 10, 50, 250].into_iter().filter(|&p| p <= k) {
            let z = model.transform_p(first, p)?;
            tiles.push(model.inverse_p(z.view())?.iter().copied().collect());
        }
        let (h, w) = viz::tile_shape(s.test.dim, s.test.image);
        viz::save_png(
            &run.file("reconstructions.png"),
            &viz::tile_grid(&tiles, h, w, tiles.len(), viz::Scale::Unit, 4),
        )?;
    }
    run.write_summary(&json!({
        "components": k,
        "whiten": cfg.model.whiten,
        "solver": cfg.model.solver,
        "explained_variance_ratio": cum,
        "train_error": train_error,
        "test_error": test_error,
        "fit_seconds": fit_seconds,
        "n_train": s.train.n,
        "n_test": s.test.n,
        "data": s.description,
        "threads": threads,
    }))?;
    eprintln!(
        "PCA with {k} components: {:.1}% of the variance; squared error per image {train_error:.3} (train), {test_error:.3} (test); fitted in {fit_seconds:.1} s",
        100.0 * cum
    );
    eprintln!("run directory {}", run.path.display());
    Ok(run)
}

//! `aekit experiment denoise` and `aekit experiment inpaint`: the lecture's
//! applied uses of autoencoders measured side by side with the classical
//! filters, on MNIST, Fashion-MNIST (and CIFAR-10 when its files are in the
//! data folder).
//!
//! Three models per dataset, each trained on the training images with the
//! corruption of the task: the tied dense DAE (784→1000), an untied deep
//! one (784-1000-500-1000-784, logistic units, Adam) and the CAE preset of
//! the images' shape (`cae-mnist`, `cae-cifar`).
//!
//! - **denoise**: Gaussian noise σ = 0.3 and 0.5 and salt-and-pepper 0.2,
//!   one training per noise and model; against the noisy input, the 3×3
//!   median filter and a Gaussian blur whose σ is tuned on validation
//!   images; mean PSNR and SSIM over the test images.
//! - **inpaint**: one 8×8 block, one 12×12 block and 50% of the pixels
//!   missing; the models are trained once with masking noise 0.5 (pixel
//!   dropout: trained on blocks they learn to copy, see
//!   docs/results/denoising.md) and fill the holes in 1 and in 3 passes
//!   (the known pixels put back after each); against each image's mean and
//!   the nearest known pixel; mean squared error over the missing pixels.
//!
//! Writes `results.csv`, `results.md`, a labelled picture per dataset and
//! corruption, and `summary.json`; with `save_inputs`, `inputs/` holds the
//! test images and their noisy copies or masks as `.npy` (for the
//! scikit-image baselines in `bench/`).

use crate::data::cifar::{self, CifarKind};
use crate::data::{download, load_train_test, split_pool, DataSource, Dataset};
use crate::error::{Error, Result};
use crate::layers::{Corruption, Loss};
use crate::models::conv::{CaeSpec, CaeTrainConfig, ConvAutoencoder};
use crate::models::deep_ae::{Code, DeepAeConfig, DeepAutoencoder, Pretrain};
use crate::models::{DaeConfig, DenoisingAutoencoder};
use crate::run::denoise::{self, Restorer};
use crate::run::inpaint::{self, MaskKind, MaskSource};
use crate::run::{Out, RunDir};
use crate::tensor::rng::seeded;
use crate::train::{Checkpointing, Silent, TrainConfig};
use crate::viz;
use serde_json::json;
use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::Instant;

/// Which experiment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Task {
    Denoise,
    Inpaint,
}

/// The experiment's settings; unset sizes take the defaults of the module
/// (or of `quick`).
#[derive(Debug, Clone, PartialEq)]
pub struct Restoration {
    pub task: Task,
    /// The built-in digits (1500 training, 300 validation, 500 test), small
    /// models (200 units; 200-100 deep), 5 epochs each.
    pub quick: bool,
    /// Datasets; default MNIST and Fashion-MNIST, and CIFAR-10 when its
    /// files are in the data folder (the built-in digits with `quick`).
    pub data: Vec<String>,
    pub data_dir: Option<PathBuf>,
    /// Training images (default 20,000).
    pub train_size: Option<usize>,
    /// Test images (default all of the test set, at most 10,000).
    pub test_size: Option<usize>,
    /// Epochs of each model (default 10).
    pub epochs: Option<usize>,
    /// Write the test images and their corrupted copies or masks to
    /// `inputs/` as `.npy`, for baselines run elsewhere on the same files.
    pub save_inputs: bool,
    pub threads: usize,
    pub seed: u64,
}

impl Default for Restoration {
    fn default() -> Self {
        Restoration {
            task: Task::Denoise,
            quick: false,
            data: Vec::new(),
            data_dir: None,
            train_size: None,
            test_size: None,
            epochs: None,
            save_inputs: false,
            threads: 2,
            seed: 1,
        }
    }
}

/// One row of the results.
struct Row {
    data: String,
    corruption: String,
    method: String,
    /// PSNR and SSIM (denoise), or masked MSE and masked PSNR (inpaint).
    a: f64,
    b: f64,
    /// A trained model's (else a classical method's).
    model: bool,
    train_seconds: f64,
    apply_seconds: f64,
}

/// The three models trained with `noise` on `train`.
fn train_models(
    e: &Restoration,
    train: &Dataset,
    shape: [usize; 3],
    noise: Corruption,
    epochs: usize,
) -> Result<Vec<(&'static str, Restorer, f64)>> {
    let (dim, seed, threads) = (train.dim, e.seed, e.threads);
    let mut out = Vec::new();
    // The tied dense DAE: squared loss, SGD, batch 20, lr 0.1.
    let t = Instant::now();
    let mut dae = DenoisingAutoencoder::new(
        DaeConfig {
            n_hid: if e.quick { 200 } else { 1000 },
            tied: true,
            loss: Loss::Squared,
            noise,
            ..DaeConfig::default()
        },
        TrainConfig {
            epochs,
            patience: 0,
            seed,
            threads,
            ..TrainConfig::default()
        },
    );
    dae.fit(train.view(), None, &mut Silent)?;
    out.push((
        "dense DAE",
        Restorer::Dae(Box::new(dae)),
        t.elapsed().as_secs_f64(),
    ));
    // The deep DAE and the CAE: Adam 1e-3, batch 100.
    let adam = TrainConfig {
        epochs,
        batch: 100,
        patience: 0,
        seed,
        threads,
        ..TrainConfig::adam(1e-3)
    };
    // The untied deep one: logistic units, cross-entropy.
    let t = Instant::now();
    let layers = if e.quick { vec![200, 100] } else { vec![1000, 500] };
    let cfg = DeepAeConfig {
        layers: layers.clone(),
        code: Code::Logistic,
        loss: Loss::CrossEntropy,
        pretrain: Pretrain::None,
        noise,
        train: adam.clone(),
        ..DeepAeConfig::default()
    };
    let mut deep = DeepAutoencoder::new(dim, &layers, Code::Logistic, Loss::CrossEntropy);
    deep.init_random(&mut seeded(seed ^ 0xdee9));
    deep.train(&train.x, None, &cfg, &mut Silent, Checkpointing::default())?;
    out.push((
        "deep DAE",
        Restorer::Deep(Box::new(deep)),
        t.elapsed().as_secs_f64(),
    ));
    // The CAE of the images' shape, when there is one.
    let preset = match shape {
        [1, 28, 28] => Some("cae-mnist"),
        [3, 32, 32] => Some("cae-cifar"),
        _ => None,
    };
    if let Some(p) = preset {
        let t = Instant::now();
        let spec = CaeSpec::preset(p).expect("a preset");
        let mut cae = ConvAutoencoder::new(&spec, Loss::Squared, seed)?;
        let cfg = CaeTrainConfig {
            loss: Loss::Squared,
            noise,
            train: adam,
            ..CaeTrainConfig::default()
        };
        cae.fit(
            train,
            &train.select(&[]),
            &cfg,
            &mut Silent,
            Checkpointing::default(),
        )?;
        out.push(("CAE", Restorer::Cae(Box::new(cae)), t.elapsed().as_secs_f64()));
    }
    Ok(out)
}

/// The datasets to run: the named ones, else the defaults.
fn datasets(e: &Restoration) -> Vec<String> {
    if !e.data.is_empty() {
        return e.data.clone();
    }
    if e.quick {
        return vec!["builtin".into()];
    }
    let mut d = vec!["mnist".to_string(), "fashion-mnist".to_string()];
    let root = e.data_dir.clone().unwrap_or_else(download::default_data_dir);
    if cifar::find_cifar_dir(&root.join(download::cifar10().name), CifarKind::Cifar10).is_some() {
        d.push("cifar10".into());
    }
    d
}

/// A dataset's name in the tables and file names: a folder's own name,
/// with anything but letters, digits, `-` and `_` replaced.
fn label(name: &str) -> String {
    let base = std::path::Path::new(name)
        .file_name()
        .map_or_else(|| name.to_string(), |f| f.to_string_lossy().into_owned());
    base.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// Runs the experiment into a run directory.
pub fn restoration(e: &Restoration, out: &Out) -> Result<RunDir> {
    let names = datasets(e);
    let sources = names
        .iter()
        .map(|n| n.parse::<DataSource>().map_err(|m| Error::config("data", m)))
        .collect::<Result<Vec<_>>>()?;
    let (n_train, n_val, n_test) = if e.quick {
        (1500, 300, 500)
    } else {
        (20_000, 500, 10_000)
    };
    let n_train = e.train_size.unwrap_or(n_train);
    let n_test = e.test_size.unwrap_or(n_test);
    let epochs = e.epochs.unwrap_or(if e.quick { 5 } else { 10 });
    if n_train == 0 || n_test == 0 || epochs == 0 {
        return Err(Error::config(
            "experiment",
            "training and test sizes and epochs must be at least 1",
        ));
    }
    crate::tensor::init_threads(e.threads);
    let verb = match e.task {
        Task::Denoise => "experiment-denoise",
        Task::Inpaint => "experiment-inpaint",
    };
    let run = RunDir::claim(out, verb)?;
    let mut rows: Vec<Row> = Vec::new();
    let t0 = Instant::now();
    for (name, source) in names.iter().zip(&sources) {
        let (pool, test) = load_train_test(source, e.data_dir.as_deref())?;
        let name = &label(name);
        // A small pool keeps a fifth for validation.
        let n_val = n_val.min(pool.n / 5).max(1);
        let n_train = n_train.min(pool.n.saturating_sub(n_val));
        // A seeded shuffle, then the first n_train (no class balance needed).
        let (train, val) = split_pool(&pool, None, n_val, e.seed)?;
        let train = train.select(&(0..n_train).collect::<Vec<_>>());
        let test = test.select(&(0..n_test.min(test.n)).collect::<Vec<_>>());
        let Some((h, w)) = test.image else {
            return Err(Error::config("data", format!("`{name}` is not a set of images")));
        };
        let shape = [test.dim / (h * w), h, w];
        eprintln!(
            "{name}: {} training, {} validation and {} test images of {shape:?}",
            train.n, val.n, test.n
        );
        save_input(e, &run, &format!("{name}-clean"), &test.x, test.dim)?;
        let set = Set {
            e,
            name,
            train: &train,
            val: &val,
            test: &test,
            shape,
            epochs,
            run: &run,
        };
        match e.task {
            Task::Denoise => denoise_set(&set, &mut rows)?,
            Task::Inpaint => inpaint_set(&set, &mut rows)?,
        }
    }
    write_results(e, &run, &rows, n_train, epochs, t0.elapsed().as_secs_f64())?;
    Ok(run)
}

/// Tiles shown per picture.
const SHOWN: usize = 8;

/// One dataset's parts and where its results go.
struct Set<'a> {
    e: &'a Restoration,
    name: &'a str,
    train: &'a Dataset,
    val: &'a Dataset,
    test: &'a Dataset,
    shape: [usize; 3],
    epochs: usize,
    run: &'a RunDir,
}

impl Set<'_> {
    /// A result row of this dataset; a method with training seconds is a
    /// model.
    #[allow(clippy::too_many_arguments)]
    fn row(&self, corruption: String, method: String, a: f64, b: f64, train_s: f64, apply_s: f64) -> Row {
        Row {
            data: self.name.into(),
            corruption,
            method,
            a,
            b,
            model: train_s > 0.0,
            train_seconds: train_s,
            apply_seconds: apply_s,
        }
    }
}

fn denoise_set(set: &Set<'_>, rows: &mut Vec<Row>) -> Result<()> {
    let Set {
        e,
        name,
        train,
        val,
        test,
        shape,
        epochs,
        run,
    } = *set;
    let noises = [
        Corruption::Gauss(0.3),
        Corruption::Gauss(0.5),
        Corruption::SaltPepper(0.2),
    ];
    for (k, &noise) in noises.iter().enumerate() {
        let seed = e.seed.wrapping_add(1000 + k as u64);
        let noisy = denoise::corrupt_rows(&test.x, test.dim, noise, seed);
        let noisy_val = denoise::corrupt_rows(&val.x, val.dim, noise, seed ^ 0x7a1);
        save_input(
            e,
            run,
            &format!("{name}-{}", file_part(&noise.to_string())),
            &noisy,
            test.dim,
        )?;
        let sigma = denoise::tune_blur(&val.x, &noisy_val, shape);
        let mut push = |method: String, x: &[f32], train_s: f64, apply_s: f64| {
            let (p, s) = denoise::quality(&test.x, x, shape);
            eprintln!("  {noise}: {method}: PSNR {p:.2} dB, SSIM {s:.3}");
            rows.push(set.row(noise.to_string(), method, p, s, train_s, apply_s));
        };
        push("noisy input".into(), &noisy, 0.0, 0.0);
        let t = Instant::now();
        let median = denoise::median_rows(&noisy, shape);
        push("median 3×3".into(), &median, 0.0, t.elapsed().as_secs_f64());
        let t = Instant::now();
        let blurred = denoise::blur_rows(&noisy, shape, sigma);
        push(
            format!("Gaussian blur (σ {sigma})"),
            &blurred,
            0.0,
            t.elapsed().as_secs_f64(),
        );
        let mut pic: Vec<(Vec<f32>, bool)> = vec![(test.x.clone(), false), (noisy.clone(), true)];
        pic.push((blurred, true));
        let noisy_set = Dataset {
            x: noisy,
            ..test.clone()
        };
        for (label, model, train_s) in train_models(e, train, shape, noise, epochs)? {
            let t = Instant::now();
            let restored = model.restore(&noisy_set, e.threads)?;
            push(label.into(), &restored, train_s, t.elapsed().as_secs_f64());
            pic.push((restored, true));
        }
        save_picture(run, name, &noise.to_string(), &pic, test, shape)?;
    }
    Ok(())
}

fn inpaint_set(set: &Set<'_>, rows: &mut Vec<Row>) -> Result<()> {
    let Set {
        e,
        name,
        train,
        test,
        shape,
        epochs,
        run,
        ..
    } = *set;
    let models = train_models(e, train, shape, Corruption::Mask(0.5), epochs)?;
    let masks = [MaskKind::Block(8), MaskKind::Block(12), MaskKind::Random(0.5)];
    for (k, kind) in masks.iter().enumerate() {
        let missing =
            MaskSource::Drawn(*kind).missing_values(test.n, shape, e.seed.wrapping_add(2000 + k as u64))?;
        let masked = inpaint::masked_rows(&test.x, &missing);
        let ones: Vec<f32> = missing.iter().map(|&m| m as u8 as f32).collect();
        save_input(
            e,
            run,
            &format!("{name}-{}-mask", file_part(&kind.to_string())),
            &ones,
            test.dim,
        )?;
        let mut push = |method: String, x: &[f32], train_s: f64, apply_s: f64| {
            let (mse, p) = inpaint::masked_error(&test.x, x, &missing);
            eprintln!("  {kind}: {method}: masked MSE {mse:.4} ({p:.2} dB)");
            rows.push(set.row(kind.to_string(), method, mse, p, train_s, apply_s));
        };
        let t = Instant::now();
        let (mean_fill, nearest) = inpaint::classical_fills(&masked, &missing, shape);
        let fills_s = t.elapsed().as_secs_f64();
        push("image mean".into(), &mean_fill, 0.0, fills_s);
        push("nearest known pixel".into(), &nearest, 0.0, fills_s);
        let mut pic: Vec<(Vec<f32>, bool)> = vec![(test.x.clone(), false), (masked, true), (nearest, true)];
        for (label, model, train_s) in &models {
            let t = Instant::now();
            let (one, _) = inpaint::fill(model, test, &missing, 1, e.threads)?;
            let one_s = t.elapsed().as_secs_f64();
            push(format!("{label} (1 pass)"), &one, *train_s, one_s);
            let t = Instant::now();
            let (three, _) = inpaint::fill(model, test, &missing, 3, e.threads)?;
            push(
                format!("{label} (3 passes)"),
                &three,
                *train_s,
                t.elapsed().as_secs_f64(),
            );
            pic.push((three, true));
        }
        save_picture(run, name, &kind.to_string(), &pic, test, shape)?;
    }
    Ok(())
}

/// A corruption's name in a file name (`gauss:0.5` → `gauss0.5`).
fn file_part(corruption: &str) -> String {
    corruption.replace(':', "")
}

/// `inputs/<stem>.npy` (rows of `dim`), when the inputs are kept.
fn save_input(e: &Restoration, run: &RunDir, stem: &str, x: &[f32], dim: usize) -> Result<()> {
    if !e.save_inputs {
        return Ok(());
    }
    let dir = run.file("inputs");
    std::fs::create_dir_all(&dir).map_err(|err| Error::io("cannot create", &dir, err))?;
    crate::data::npy::write_npy(&dir.join(format!("{stem}.npy")), &[x.len() / dim.max(1), dim], x)
}

/// `<data>-<corruption>.png`: rows of clean, corrupted, a classical
/// restoration and each model's, the first [`SHOWN`] test images, each tile
/// but the clean ones labelled with its PSNR.
fn save_picture(
    run: &RunDir,
    name: &str,
    corruption: &str,
    pic: &[(Vec<f32>, bool)],
    test: &Dataset,
    shape: [usize; 3],
) -> Result<()> {
    if !matches!(shape[0], 1 | 3) {
        return Ok(());
    }
    let rows: Vec<(&[f32], bool)> = pic.iter().map(|(x, l)| (x.as_slice(), *l)).collect();
    let img = denoise::picture(&rows, &test.x, SHOWN.min(test.n), shape);
    let file = format!("{name}-{}.png", file_part(corruption));
    viz::save_rgb_png(&run.file(&file), &img)
}

fn write_results(
    e: &Restoration,
    run: &RunDir,
    rows: &[Row],
    n_train: usize,
    epochs: usize,
    seconds: f64,
) -> Result<()> {
    let (a, b) = match e.task {
        Task::Denoise => ("psnr", "ssim"),
        Task::Inpaint => ("masked_mse", "masked_psnr"),
    };
    let mut csv = format!("data,corruption,method,{a},{b},train_seconds,apply_seconds\n");
    for r in rows {
        writeln!(
            csv,
            "{},{},\"{}\",{:.6},{:.6},{:.2},{:.3}",
            r.data, r.corruption, r.method, r.a, r.b, r.train_seconds, r.apply_seconds
        )
        .expect("a string");
    }
    crate::io::atomic_write(&run.file("results.csv"), csv.as_bytes())?;
    let mut md = match e.task {
        Task::Denoise => format!(
            "# Denoising\n\nMean PSNR (dB, peak 1) and SSIM over the test images against the clean ones; models trained \
             with the same noise on {n_train} training images for {epochs} epochs.\n"
        ),
        Task::Inpaint => format!(
            "# Inpainting\n\nMean squared error over the missing pixels (lower is better), the known pixels kept; models \
             trained with masking noise 0.5 on {n_train} training images for {epochs} epochs.\n"
        ),
    };
    let mut summary = serde_json::Map::new();
    let mut data: Vec<&str> = rows.iter().map(|r| r.data.as_str()).collect();
    data.dedup();
    for d in data {
        let mine: Vec<&Row> = rows.iter().filter(|r| r.data == d).collect();
        let mut corruptions: Vec<&str> = mine.iter().map(|r| r.corruption.as_str()).collect();
        corruptions.dedup();
        let mut methods: Vec<&str> = Vec::new();
        for r in &mine {
            // Method names without the tuned σ, so the rows line up.
            let m = r.method.split(" (σ").next().unwrap_or(&r.method);
            if !methods.contains(&m) {
                methods.push(m);
            }
        }
        writeln!(md, "\n## {d}\n\n| method | {} |", corruptions.join(" | ")).expect("a string");
        writeln!(md, "|---|{}", "---|".repeat(corruptions.len())).expect("a string");
        for m in &methods {
            let cells: Vec<String> = corruptions
                .iter()
                .map(|c| {
                    mine.iter()
                        .find(|r| r.corruption == *c && r.method.split(" (σ").next() == Some(m))
                        .map_or("".into(), |r| match e.task {
                            Task::Denoise => format!("{:.2} ({:.3})", r.a, r.b),
                            Task::Inpaint => format!("{:.4}", r.a),
                        })
                })
                .collect();
            writeln!(md, "| {m} | {} |", cells.join(" | ")).expect("a string");
        }
        // The best model against the best classical method, per corruption.
        let mut margins = serde_json::Map::new();
        for c in &corruptions {
            let of = |model: bool| {
                mine.iter()
                    .filter(|r| r.corruption == *c && r.model == model)
                    .filter(|r| r.method != "noisy input")
                    .map(|r| (r.method.clone(), r.a))
                    .reduce(|x, y| match e.task {
                        Task::Denoise if y.1 > x.1 => y,
                        Task::Inpaint if y.1 < x.1 => y,
                        _ => x,
                    })
            };
            if let (Some(best), Some(classical)) = (of(true), of(false)) {
                margins.insert(
                    c.to_string(),
                    json!({ "best_model": best.0, "best_model_value": best.1,
                            "best_classical": classical.0, "best_classical_value": classical.1 }),
                );
            }
        }
        summary.insert(d.to_string(), serde_json::Value::Object(margins));
    }
    crate::io::atomic_write(&run.file("results.md"), md.as_bytes())?;
    run.write_summary(&json!({
        "task": format!("{:?}", e.task).to_lowercase(),
        "train_size": n_train,
        "epochs": epochs,
        "threads": e.threads,
        "seconds": seconds,
        "best": summary,
    }))?;
    eprintln!("{md}\nrun directory {}", run.path.display());
    Ok(())
}

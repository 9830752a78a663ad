//! `aekit experiment imputation`: how well the MIDAS imputer fills cells
//! hidden on purpose, against mean imputation (here) and scikit-learn's
//! MICE and k-NN imputers (`bench/impute_baselines.py`, on the very same
//! masks), on the shipped wine, breast-cancer and diabetes tables and on
//! 10,000 MNIST digits (784 columns).
//!
//! Missingness: MCAR, each cell hidden with probability r; MNAR by MIDA's
//! rule as stated here: two columns c1, c2 are drawn (seeded), with medians
//! m1, m2 over all rows; in every row where x[c1] ≤ m1 or x[c2] ≥ m2, each
//! cell is hidden with probability 0.2 (rows outside keep every cell).
//! The error: RMSE over the hidden cells on the standardised scale (each
//! column centred and scaled by its mean and standard deviation over the
//! complete table), and MIDA's sum over columns of the per-column RMSE. The
//! MNIST pixels share one scale, on which they are compared and fed to the
//! imputer as they are ([0, 1]): standardising a border pixel that is 0 in
//! all but a few images would blow its few other values up a hundredfold.

use crate::error::{Error, Result};
use crate::models::impute::schema::{Column, Encoded, Kind, Schema};
use crate::models::impute::{Imputer, ImputerConfig};
use crate::run::{Out, RunDir};
use crate::tensor::rng::seeded;
use crate::train::Silent;
use rand::Rng as _;
use std::fmt::Write as _;
use std::path::Path;
use std::time::Instant;

/// The experiment's settings.
#[derive(Debug, Clone)]
pub struct Imputation {
    /// `wine`, `breast_cancer`, `diabetes`, `mnist` (10,000 digits).
    pub datasets: Vec<String>,
    /// MCAR rates.
    pub rates: Vec<f64>,
    pub repeats: usize,
    /// Also MIDA's MNAR pattern.
    pub mnar: bool,
    /// The imputer's settings (its loop included).
    pub model: ImputerConfig,
    /// Epochs for the MNIST case (wide and 10,000 rows).
    pub mnist_epochs: usize,
    /// Run `bench/impute_baselines.py` (MICE, k-NN) on the masks when
    /// Python with scikit-learn is there.
    pub baselines: bool,
}

impl Default for Imputation {
    fn default() -> Self {
        Imputation {
            datasets: ["wine", "breast_cancer", "diabetes", "mnist"]
                .map(String::from)
                .to_vec(),
            rates: vec![0.1, 0.2, 0.3, 0.5],
            repeats: 5,
            mnar: true,
            model: ImputerConfig::default(),
            mnist_epochs: 20,
            baselines: true,
        }
    }
}

/// A complete numeric table: `[n, d]` row-major, and its column names.
pub struct Complete {
    pub name: String,
    pub names: Vec<String>,
    pub x: Vec<f64>,
    pub n: usize,
    pub d: usize,
}

const WINE: &str = include_str!("../../../../data/tables/wine.csv");
const BREAST: &str = include_str!("../../../../data/tables/breast_cancer.csv");
const DIABETES: &str = include_str!("../../../../data/tables/diabetes.csv");

/// A shipped table's numeric columns (the class columns left out).
fn shipped(name: &str, text: &str, drop: &str) -> Result<Complete> {
    let mut lines = text.lines();
    let header: Vec<String> = lines.next().unwrap_or("").split(',').map(String::from).collect();
    let keep: Vec<usize> = (0..header.len()).filter(|&i| header[i] != drop).collect();
    let mut x = Vec::new();
    let mut n = 0;
    for (r, l) in lines.enumerate() {
        let cells: Vec<&str> = l.split(',').collect();
        for &i in &keep {
            let v: f64 = cells.get(i).and_then(|c| c.parse().ok()).ok_or_else(|| {
                Error::format(
                    Path::new(name),
                    format!("row {}, column {}: not a number", r + 1, header[i]),
                )
            })?;
            x.push(v);
        }
        n += 1;
    }
    Ok(Complete {
        name: name.into(),
        names: keep.iter().map(|&i| header[i].clone()).collect(),
        x,
        n,
        d: keep.len(),
    })
}

/// A dataset by name.
pub fn complete(name: &str) -> Result<Complete> {
    match name {
        "wine" => shipped("wine", WINE, "cultivar"),
        "breast_cancer" => shipped("breast_cancer", BREAST, "diagnosis"),
        "diabetes" => shipped("diabetes", DIABETES, "progression"),
        "mnist" => {
            let all = crate::data::builtin::builtin_mnist()?;
            Ok(Complete {
                name: "mnist".into(),
                names: (0..all.dim).map(|i| format!("p{i}")).collect(),
                x: all.x.iter().map(|&v| v as f64).collect(),
                n: all.n,
                d: all.dim,
            })
        }
        _ => Err(Error::config(
            "datasets",
            format!("unknown dataset `{name}` (wine, breast_cancer, diabetes, mnist)"),
        )),
    }
}

/// Column means and standard deviations over the rows where `keep` is true
/// (a constant column gets 1; MNIST's pixels 0 and 1: one shared scale).
fn moments(c: &Complete, keep: &[bool]) -> (Vec<f64>, Vec<f64>) {
    if c.name == "mnist" {
        return (vec![0.0; c.d], vec![1.0; c.d]);
    }
    let (mut mean, mut sd) = (vec![0.0; c.d], vec![0.0; c.d]);
    for j in 0..c.d {
        let vals: Vec<f64> = (0..c.n)
            .filter(|&r| keep[r * c.d + j])
            .map(|r| c.x[r * c.d + j])
            .collect();
        let m = vals.iter().sum::<f64>() / vals.len().max(1) as f64;
        let v = vals.iter().map(|x| (x - m).powi(2)).sum::<f64>() / vals.len().max(1) as f64;
        mean[j] = m;
        sd[j] = if v.sqrt() > 1e-12 { v.sqrt() } else { 1.0 };
    }
    (mean, sd)
}

/// The hidden cells (`true` = hidden) of a mask, MCAR at `rate` or MNAR.
pub fn mask(c: &Complete, mech: &str, rate: f64, seed: u64) -> Vec<bool> {
    let mut rng = seeded(seed);
    let mut hidden = vec![false; c.n * c.d];
    match mech {
        "mcar" => hidden.iter_mut().for_each(|h| *h = rng.random::<f64>() < rate),
        _ => {
            let c1 = rng.random_range(0..c.d);
            let c2 = rng.random_range(0..c.d);
            let median = |j: usize| {
                let mut v: Vec<f64> = (0..c.n).map(|r| c.x[r * c.d + j]).collect();
                v.sort_by(|a, b| a.partial_cmp(b).expect("finite"));
                v[v.len() / 2]
            };
            let (m1, m2) = (median(c1), median(c2));
            for r in 0..c.n {
                if c.x[r * c.d + c1] <= m1 || c.x[r * c.d + c2] >= m2 {
                    for j in 0..c.d {
                        hidden[r * c.d + j] = rng.random::<f64>() < 0.2;
                    }
                }
            }
        }
    }
    // Every column keeps at least one observed cell.
    for j in 0..c.d {
        if (0..c.n).all(|r| hidden[r * c.d + j]) {
            hidden[j] = false;
        }
    }
    hidden
}

/// RMSE over the hidden cells on the complete table's standardised scale,
/// and the sum over columns of each column's RMSE.
pub fn errors(c: &Complete, hidden: &[bool], fill: &[f64], sd: &[f64]) -> (f64, f64) {
    let (mut se, mut count) = (0.0, 0usize);
    let mut per = vec![(0.0, 0usize); c.d];
    for k in 0..c.n * c.d {
        if hidden[k] {
            let j = k % c.d;
            let e = (fill[k] - c.x[k]) / sd[j];
            se += e * e;
            count += 1;
            per[j].0 += e * e;
            per[j].1 += 1;
        }
    }
    let sum_cols = per
        .iter()
        .filter(|p| p.1 > 0)
        .map(|p| (p.0 / p.1 as f64).sqrt())
        .sum();
    ((se / count.max(1) as f64).sqrt(), sum_cols)
}

/// Fills the hidden cells with each column's observed mean.
pub fn mean_fill(c: &Complete, hidden: &[bool]) -> Vec<f64> {
    let mut m = vec![0.0; c.d];
    for j in 0..c.d {
        let v: Vec<f64> = (0..c.n)
            .filter(|&r| !hidden[r * c.d + j])
            .map(|r| c.x[r * c.d + j])
            .collect();
        m[j] = v.iter().sum::<f64>() / v.len().max(1) as f64;
    }
    (0..c.n * c.d)
        .map(|k| if hidden[k] { m[k % c.d] } else { c.x[k] })
        .collect()
}

/// Fills the hidden cells with the MIDAS imputer (every column continuous);
/// with `draws`, also the share of hidden cells whose true value lies in the
/// 5–95% range of that many multiple-imputation draws (dropout on).
/// Returns the filled table, the seconds of fitting and filling (the draws
/// apart), and the coverage.
pub fn midas_fill(
    c: &Complete,
    hidden: &[bool],
    cfg: &ImputerConfig,
    draws: usize,
) -> Result<(Vec<f64>, f64, Option<f64>)> {
    let t = Instant::now();
    let keep: Vec<bool> = hidden.iter().map(|h| !h).collect();
    let (m, s) = moments(c, &keep);
    let schema = Schema {
        columns: (0..c.d)
            .map(|j| Column {
                name: c.names[j].clone(),
                kind: Kind::Continuous {
                    mean: m[j],
                    sd: s[j],
                    decimals: 6,
                },
            })
            .collect(),
        missing: Vec::new(),
    };
    let data = Encoded {
        x: (0..c.n * c.d)
            .map(|k| {
                if hidden[k] {
                    0.0
                } else {
                    ((c.x[k] - m[k % c.d]) / s[k % c.d]) as f32
                }
            })
            .collect(),
        mask: keep.iter().map(|&o| o as u8 as f32).collect(),
        n: c.n,
        width: c.d,
    };
    let mut imp = Imputer::new(cfg.clone());
    imp.fit(schema, &data, &mut Silent, Default::default())?;
    let out = imp.predict(&data, None)?;
    let fill = (0..c.n * c.d)
        .map(|k| {
            if hidden[k] {
                out[k] as f64 * s[k % c.d] + m[k % c.d]
            } else {
                c.x[k]
            }
        })
        .collect();
    let secs = t.elapsed().as_secs_f64();
    let coverage = if draws > 1 {
        let mut rng = seeded(cfg.train.seed ^ 0xd7a5);
        let runs: Vec<Vec<f32>> = (0..draws)
            .map(|_| imp.predict(&data, Some(&mut rng)))
            .collect::<Result<_>>()?;
        let (mut inside, mut count) = (0usize, 0usize);
        for k in (0..c.n * c.d).filter(|&k| hidden[k]) {
            let mut v: Vec<f64> = runs
                .iter()
                .map(|r| r[k] as f64 * s[k % c.d] + m[k % c.d])
                .collect();
            v.sort_by(|a, b| a.partial_cmp(b).expect("finite"));
            let (lo, hi) = (
                v[(0.05 * (draws - 1) as f64).round() as usize],
                v[(0.95 * (draws - 1) as f64).round() as usize],
            );
            inside += (lo..=hi).contains(&c.x[k]) as usize;
            count += 1;
        }
        Some(inside as f64 / count.max(1) as f64)
    } else {
        None
    };
    Ok((fill, secs, coverage))
}

/// Ten digits in three rows: as they are, with their hidden pixels grey,
/// and as the imputer filled them.
fn digits(run: &RunDir, c: &Complete, hidden: &[bool], filled: &[f64], file: &str) -> Result<()> {
    let n = 10.min(c.n);
    let row = |r: usize, f: &dyn Fn(usize) -> f64| -> Vec<f32> {
        (0..c.d).map(|j| f(r * c.d + j) as f32).collect()
    };
    let mut tiles = Vec::with_capacity(3 * n);
    tiles.extend((0..n).map(|r| row(r, &|k| c.x[k])));
    tiles.extend((0..n).map(|r| row(r, &|k| if hidden[k] { 0.5 } else { c.x[k] })));
    tiles.extend((0..n).map(|r| row(r, &|k| filled[k])));
    let (h, w) = crate::viz::tile_shape(c.d, Some((28, 28)));
    crate::viz::save_png(
        &run.file(file),
        &crate::viz::tile_grid(&tiles, h, w, n, crate::viz::Scale::Unit, 3),
    )
}

/// The masked table as CSV (hidden cells empty) and the complete one, for
/// the Python baselines.
fn write_csv(path: &Path, c: &Complete, hidden: Option<&[bool]>) -> Result<()> {
    let mut s = c.names.join(",");
    s.push('\n');
    for r in 0..c.n {
        for j in 0..c.d {
            if j > 0 {
                s.push(',');
            }
            let k = r * c.d + j;
            if !hidden.is_some_and(|h| h[k]) {
                write!(s, "{}", c.x[k]).expect("a string");
            }
        }
        s.push('\n');
    }
    crate::io::atomic_write(path, s.as_bytes())
}

/// Runs the experiment into a run directory: `results.csv` (one row per
/// dataset, mechanism, rate, method and repeat), `summary.csv` (mean ± sd),
/// `results.md`, `rmse-<dataset>.png`, the masks under `masks/`, and for
/// MNIST `digits-<mechanism>-<rate>.png` (original, masked, filled).
pub fn imputation(e: &Imputation, out: &Out) -> Result<RunDir> {
    e.model.validate()?;
    crate::tensor::init_threads(e.model.train.resolved_threads());
    let run = RunDir::claim(out, "experiment-imputation")?;
    run.write_config(&format!(
        "datasets = {:?}\nrates = {:?}\nrepeats = {}\nmnar = {}\nmnist_epochs = {}\n\n{}",
        e.datasets,
        e.rates,
        e.repeats,
        e.mnar,
        e.mnist_epochs,
        crate::run::config::sections_to_toml(&ImputeModel {
            model: e.model.clone()
        })?
    ))?;
    let masks = run.folder("masks")?;
    let mut rows = String::from("dataset,mechanism,rate,method,repeat,rmse,rmse_sum_columns,seconds\n");
    let mut coverage_rows = String::from("dataset,repeat,draws,coverage90\n");
    for name in &e.datasets {
        let c = complete(name)?;
        write_csv(&masks.join(format!("{name}-truth.csv")), &c, None)?;
        let (_, sd) = moments(&c, &vec![true; c.n * c.d]);
        let mut cfg = e.model.clone();
        if name == "mnist" {
            cfg.train.epochs = e.mnist_epochs;
        }
        let mut settings: Vec<(&str, f64)> = e.rates.iter().map(|&r| ("mcar", r)).collect();
        if e.mnar {
            settings.push(("mnar", 0.2));
        }
        for (mech, rate) in settings {
            for rep in 0..e.repeats {
                let seed = 1000 * rep as u64 + (rate * 100.0) as u64 + if mech == "mnar" { 7 } else { 0 };
                let hidden = mask(&c, mech, rate, seed);
                write_csv(
                    &masks.join(format!("{name}-{mech}-{rate}-{rep}.csv")),
                    &c,
                    Some(&hidden),
                )?;
                let t = Instant::now();
                let f = mean_fill(&c, &hidden);
                let (r1, s1) = errors(&c, &hidden, &f, &sd);
                writeln!(
                    rows,
                    "{name},{mech},{rate},mean,{rep},{r1:.6},{s1:.6},{:.4}",
                    t.elapsed().as_secs_f64()
                )
                .expect("a string");
                cfg.train.seed = rep as u64 + 1;
                // The spread of 20 draws, at MCAR 20% (timed apart).
                let draws = if mech == "mcar" && (rate - 0.2).abs() < 1e-9 {
                    20
                } else {
                    0
                };
                let (f, secs, coverage) = midas_fill(&c, &hidden, &cfg, draws)?;
                if let Some(cov) = coverage {
                    writeln!(coverage_rows, "{name},{rep},{draws},{cov:.4}").expect("a string");
                    run.write("coverage.csv", coverage_rows.as_bytes())?;
                }
                if name == "mnist" && rep == 0 {
                    digits(&run, &c, &hidden, &f, &format!("digits-{mech}-{rate}.png"))?;
                }
                let (r2, s2) = errors(&c, &hidden, &f, &sd);
                writeln!(rows, "{name},{mech},{rate},aekit,{rep},{r2:.6},{s2:.6},{secs:.4}")
                    .expect("a string");
                eprintln!("{name} {mech} {rate} #{rep}: mean {r1:.4}, aekit {r2:.4} ({secs:.1} s)");
                run.write("results.csv", rows.as_bytes())?;
            }
        }
    }
    if e.baselines {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../bench/impute_baselines.py");
        let status = std::process::Command::new("python3")
            .arg(&script)
            .arg(&masks)
            .arg(run.file("baselines.csv"))
            .status();
        match status {
            Ok(s) if s.success() => {
                let b = std::fs::read_to_string(run.file("baselines.csv"))
                    .map_err(|err| Error::io("cannot read", &run.file("baselines.csv"), err))?;
                rows.extend(b.lines().skip(1).map(|l| format!("{l}\n")));
                run.write("results.csv", rows.as_bytes())?;
            }
            _ => eprintln!(
                "note: the MICE and k-NN baselines did not run (python3 {} needs scikit-learn); results.csv has aekit and mean only",
                script.display()
            ),
        }
    }
    summarise(&run, &rows)?;
    eprintln!("run directory {}", run.path.display());
    Ok(run)
}

/// The imputer's settings as `config.toml` holds them.
#[derive(serde::Serialize)]
struct ImputeModel {
    model: ImputerConfig,
}

/// (dataset, mechanism, rate, method).
type Setting = (String, String, String, String);

/// `summary.csv`, `results.md` and one chart per dataset from the rows.
fn summarise(run: &RunDir, rows: &str) -> Result<()> {
    use std::collections::BTreeMap;
    // (dataset, mechanism, rate, method) → (rmse values, seconds)
    let mut groups: BTreeMap<Setting, (Vec<f64>, Vec<f64>)> = BTreeMap::new();
    for l in rows.lines().skip(1) {
        let f: Vec<&str> = l.split(',').collect();
        if f.len() < 8 {
            continue;
        }
        let g = groups
            .entry((f[0].into(), f[1].into(), f[2].into(), f[3].into()))
            .or_default();
        g.0.push(f[5].parse().unwrap_or(f64::NAN));
        g.1.push(f[7].parse().unwrap_or(f64::NAN));
    }
    let stats = |v: &[f64]| {
        let m = v.iter().sum::<f64>() / v.len() as f64;
        let sd = (v.iter().map(|x| (x - m).powi(2)).sum::<f64>() / (v.len().max(2) - 1) as f64).sqrt();
        (m, sd)
    };
    let mut csv = String::from("dataset,mechanism,rate,method,rmse_mean,rmse_sd,seconds_mean,repeats\n");
    let mut md = String::from(
        "| dataset | missing | method | RMSE (standardised), mean ± sd | seconds |\n|---|---|---|---|---|\n",
    );
    for ((d, mech, rate, method), (r, s)) in &groups {
        let (m, sd) = stats(r);
        let (sm, _) = stats(s);
        writeln!(
            csv,
            "{d},{mech},{rate},{method},{m:.6},{sd:.6},{sm:.4},{}",
            r.len()
        )
        .expect("a string");
        writeln!(
            md,
            "| {d} | {mech} {rate} | {method} | {m:.4} ± {sd:.4} | {sm:.2} |"
        )
        .expect("a string");
    }
    run.write("summary.csv", csv.as_bytes())?;
    run.write("results.md", md.as_bytes())?;
    let datasets: Vec<String> = groups
        .keys()
        .map(|k| k.0.clone())
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    for d in datasets {
        let methods: Vec<String> = groups
            .keys()
            .filter(|k| k.0 == d)
            .map(|k| k.3.clone())
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .collect();
        let series: Vec<crate::viz::plot::Series> = methods
            .iter()
            .map(|m| crate::viz::plot::Series {
                label: m.clone(),
                points: groups
                    .iter()
                    .filter(|(k, _)| k.0 == d && &k.3 == m && k.1 == "mcar")
                    .map(|(k, v)| (k.2.parse().unwrap_or(0.0), stats(&v.0).0))
                    .collect(),
            })
            .collect();
        crate::viz::plot::save_line_chart(
            &run.file(&format!("rmse-{d}.png")),
            &format!("{d}: imputation error against the MCAR rate"),
            "fraction of cells missing (MCAR)",
            "RMSE on hidden cells (standardised)",
            &series,
        )?;
    }
    Ok(())
}

//! `aekit impute`: fit an imputer to a CSV table with holes and write the
//! table filled (once, or several times), or fit into a run directory and
//! fill other tables with the saved model later; `--overimpute` measures
//! the fill on observed cells hidden on purpose.

use super::config::Sections;
use super::dir::{resume_hint, Out, RunDir};
use super::observe::{epoch_row, RunObserver};
use crate::data::table::{CsvOptions, Table};
use crate::error::{Error, Result};
use crate::models::impute::schema::{Declared, Kind, Schema};
use crate::models::impute::{Filled, Imputer, ImputerConfig};
use crate::tensor::rng::seeded;
use crate::train::{Checkpointing, EpochMetrics, FitReport, Observer, Progress, State};
use rand::Rng as _;
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::path::{Path, PathBuf};

/// Where the table comes from and how it is read (`[data]`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TableData {
    /// The CSV file.
    pub path: Option<PathBuf>,
    /// `,`, `;`, `tab` (or a tab character); detected when unset.
    pub delimiter: Option<String>,
    /// Texts that mean "missing" besides empty, NA, NaN, ?, null.
    pub missing: Vec<String>,
}

impl TableData {
    pub fn options(&self) -> Result<CsvOptions> {
        let delimiter = match self.delimiter.as_deref() {
            None => None,
            Some("tab" | "\t" | "\\t") => Some(b'\t'),
            Some(d) if d.len() == 1 && d.is_ascii() => Some(d.as_bytes()[0]),
            Some(d) => {
                return Err(Error::config(
                    "data.delimiter",
                    format!("`{d}` is not one character (use `,`, `;` or `tab`)"),
                ))
            }
        };
        Ok(CsvOptions {
            delimiter,
            missing: self.missing.clone(),
        })
    }

    /// Reads the table.
    pub fn read(&self) -> Result<Table> {
        let path = self
            .path
            .as_deref()
            .ok_or_else(|| Error::config("data.path", "give the table to impute (--data FILE.csv)"))?;
        Table::read(path, &self.options()?)
    }
}

/// Everything `aekit impute` needs to fit: `[data]`, `[columns]`,
/// `[model]` and `[train]` (the model's loop).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ImputeRun {
    pub data: TableData,
    pub columns: Declared,
    pub model: ImputerConfig,
}

impl Sections for ImputeRun {}

/// How filled tables are written.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Fill {
    /// Several imputations (dropout on, levels drawn), or one (`None`).
    pub m: Option<usize>,
    /// All imputations in one file with an `.imp` column, not one file each.
    pub long: bool,
    /// Binaries and categoricals take their most likely level in every draw.
    pub mode: bool,
    /// A level never seen in fitting is an error, not a missing cell.
    pub strict: bool,
    /// Replace output files that exist (never the table read).
    pub force: bool,
}

/// The most imputations one fill draws (`--m`).
pub const MAX_IMPUTATIONS: usize = 1000;

/// Checks `fill` and every file it would write for `out` (with
/// `overimpute`, the report's two files too) before any work: --m within
/// 1..=[`MAX_IMPUTATIONS`], and no output over the table `data` or the
/// model read, nor over another existing file without `force`.
pub fn check_fill_outputs(out: &Path, fill: &Fill, overimpute: bool, inputs: &[&Path]) -> Result<()> {
    if let Some(m) = fill.m {
        if !(1..=MAX_IMPUTATIONS).contains(&m) {
            return Err(Error::config(
                "m",
                format!("{m} imputations: give 1 to {MAX_IMPUTATIONS}"),
            ));
        }
    }
    let mut files = output_files(out, fill);
    if overimpute {
        files.extend(overimpute_files(out));
    }
    for (k, f) in files.iter().enumerate() {
        if files[..k].contains(f) {
            return Err(Error::format(f, "would be written twice"));
        }
        crate::io::check_output_file(f, fill.force, inputs)?;
    }
    Ok(())
}

/// The overimputation report's CSV and PNG for the filled table `out`.
fn overimpute_files(out: &Path) -> [PathBuf; 2] {
    let base = out.with_extension("");
    ["csv", "png"].map(|e| PathBuf::from(format!("{}-overimpute.{e}", base.display())))
}

/// Encodes the table by `schema` (inferred from it when `None`), then
/// fits; returns the fitted imputer.
fn fit_table(
    cfg: &ImputeRun,
    t: &Table,
    schema: Option<Schema>,
    obs: &mut dyn Observer,
    ck: Checkpointing<'_>,
) -> Result<(Imputer, FitReport)> {
    cfg.model.validate()?;
    let schema = match schema {
        Some(s) => s,
        None => Schema::infer(t, &cfg.columns, &cfg.data.missing)?,
    };
    let data = schema.encode(t, false)?;
    describe(&schema, t, &data);
    let mut imp = Imputer::new(cfg.model.clone());
    let report = imp.fit(schema, &data, obs, ck)?;
    Ok((imp, report))
}

fn describe(schema: &Schema, t: &Table, data: &crate::models::impute::schema::Encoded) {
    let count = |f: fn(&Kind) -> bool| schema.columns.iter().filter(|c| f(&c.kind)).count();
    let observed = data.mask.iter().filter(|&&m| m == 1.0).count();
    eprintln!(
        "{}: {} rows; {} continuous, {} binary, {} categorical and {} ignored columns; {:.1}% of the encoded cells missing",
        t.path.display(),
        t.n_rows(),
        count(|k| matches!(k, Kind::Continuous { .. })),
        count(|k| matches!(k, Kind::Binary { .. })),
        count(|k| matches!(k, Kind::Categorical { .. })),
        count(|k| matches!(k, Kind::Ignored)),
        100.0 * (1.0 - observed as f64 / data.mask.len().max(1) as f64)
    );
}

/// `aekit impute fit`: fits to the table of `cfg` and writes the run
/// directory (model, metrics, checkpoints, summary) at `out`.
pub fn fit(cfg: ImputeRun, out: &Out) -> Result<RunDir> {
    let t = cfg.data.read()?;
    cfg.model.validate()?;
    // Inferred before the run directory is made: a bad table writes nothing.
    let schema = Schema::infer(&t, &cfg.columns, &cfg.data.missing)?;
    let run = RunDir::claim(out, "impute")?;
    run.write_config(&cfg.to_toml()?)?;
    fit_in(&cfg, &t, schema, run, None)
}

/// Continues the stopped `impute fit` run in `dir` from its last checkpoint.
pub fn resume_fit(dir: &Path) -> Result<RunDir> {
    let run = RunDir::reopen(dir, "impute")?;
    let cfg = super::dir::read_config(&run, ImputeRun::read)?;
    let t = cfg.data.read()?;
    let schema = Schema::infer(&t, &cfg.columns, &cfg.data.missing)?;
    let state = super::dir::resume_state(&run.path, "impute")?;
    fit_in(&cfg, &t, schema, run, state)
}

fn fit_in(cfg: &ImputeRun, t: &Table, schema: Schema, run: RunDir, state: Option<State>) -> Result<RunDir> {
    let mut obs = RunObserver::new(&run, epoch_row);
    let mut save = |mut st: State, e: &EpochMetrics| {
        st.put("verb", "impute");
        let mut snap = Imputer::new(cfg.model.clone());
        snap.schema = Some(schema.clone());
        snap.set_params(st.tensor_any("params")?)?;
        run.save_checkpoint(e.epoch, |p| snap.save(p), &st).map(drop)
    };
    let ck = Checkpointing {
        resume: state,
        save: Some(&mut save),
    };
    let t0 = std::time::Instant::now();
    let (imp, report) = fit_table(cfg, t, Some(schema.clone()), &mut obs, ck)
        .map_err(|e| resume_hint(e, &run, "impute fit"))?;
    obs.finish()?;
    imp.save(&run.file("model.safetensors"))?;
    let best = report.history.iter().filter_map(|m| m.val_loss).reduce(f64::min);
    run.write_summary(&json!({
        "rows": t.n_rows(),
        "columns": imp.schema.as_ref().map(|s| s.columns.len()),
        "epochs": report.history.len(),
        "best_epoch": report.best_epoch,
        "best_val_loss_per_cell": best,
        "train_seconds": t0.elapsed().as_secs_f64(),
        "data": t.path.display().to_string(),
    }))?;
    eprintln!(
        "fitted in {:.1} s ({} epochs, best {}); model in {}",
        t0.elapsed().as_secs_f64(),
        report.history.len(),
        report.best_epoch,
        run.file("model.safetensors").display()
    );
    Ok(run)
}

/// The files `fill` writes for `out`: `out` itself for one imputation or a
/// long file, else `<stem>-1.csv`, `<stem>-2.csv`, ….
pub fn output_files(out: &Path, fill: &Fill) -> Vec<PathBuf> {
    match fill.m {
        Some(m) if !fill.long => {
            let stem = out
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default();
            let ext = out
                .extension()
                .map_or("csv".to_string(), |e| e.to_string_lossy().into_owned());
            (1..=m)
                .map(|k| out.with_file_name(format!("{stem}-{k}.{ext}")))
                .collect()
        }
        _ => vec![out.to_path_buf()],
    }
}

/// Fills `t` with `imp` and writes the result(s) for `out` as `fill` says.
pub fn write_filled(imp: &Imputer, t: &Table, out: &Path, fill: &Fill, seed: u64) -> Result<Vec<PathBuf>> {
    check_fill_outputs(out, fill, false, &[&t.path])?;
    let tables = imp.impute(t, fill.m, fill.mode, seed, fill.strict)?;
    write_tables(t, &tables, out, fill)
}

/// Writes the fillings `tables` of `t` for `out` as `fill` says.
fn write_tables(t: &Table, tables: &[Filled], out: &Path, fill: &Fill) -> Result<Vec<PathBuf>> {
    let files = output_files(out, fill);
    if fill.m.is_some() && fill.long {
        let mut header = vec![".imp".to_string()];
        header.extend(t.header.iter().cloned());
        let marks: Vec<String> = (1..=tables.len()).map(|k| k.to_string()).collect();
        let rows = tables.iter().enumerate().flat_map(|(k, filled)| {
            let mark = marks[k].as_str();
            filled.rows(t).map(move |row| {
                let mut r = vec![mark];
                r.extend(row);
                r
            })
        });
        t.write_rows(&files[0], &header, rows)?;
    } else {
        for (filled, f) in tables.iter().zip(&files) {
            t.write_rows(f, &t.header, filled.rows(t))?;
        }
    }
    Ok(files)
}

/// `aekit impute apply`: fills the table `data` with the model at
/// `model` (a model file, run folder or checkpoint).
pub fn apply(model: &Path, data: &TableData, out: &Path, fill: &Fill, seed: u64) -> Result<Vec<PathBuf>> {
    let model = super::dir::model_file(model)?;
    if let Some(p) = &data.path {
        check_fill_outputs(out, fill, false, &[p, &model])?;
    }
    let imp = Imputer::load(&model)?;
    let mut data = data.clone();
    // The markers the model was fitted with, and any given now.
    if let Some(s) = &imp.schema {
        data.missing.extend(s.missing.iter().cloned());
    }
    let t = data.read()?;
    let files = write_filled(&imp, &t, out, fill, seed)?;
    for f in &files {
        eprintln!("wrote {}", f.display());
    }
    Ok(files)
}

/// `aekit impute` in one go: fits to the table, fills it, writes `out`;
/// with `overimpute`, first measures the fill on that fraction of the
/// observed cells, hidden (see [`overimpute`]).
pub fn impute(
    cfg: ImputeRun,
    csv_out: &Path,
    fill: &Fill,
    overimpute_frac: Option<f64>,
) -> Result<Vec<PathBuf>> {
    cfg.model.validate()?;
    if let Some(p) = &cfg.data.path {
        check_fill_outputs(csv_out, fill, overimpute_frac.is_some(), &[p])?;
    }
    crate::tensor::init_threads(cfg.model.train.resolved_threads());
    let t = cfg.data.read()?;
    if let Some(f) = overimpute_frac {
        let report = overimpute(&cfg, &t, f)?;
        let [csv, png] = overimpute_files(csv_out);
        report.write(&csv, &png)?;
        eprintln!("overimputation: {} and {}", csv.display(), png.display());
    }
    // A table with no hole to fill is written as it is, without fitting
    // (after the same checks of its columns).
    let schema = Schema::infer(&t, &cfg.columns, &cfg.data.missing)?;
    let holes = schema
        .columns
        .iter()
        .enumerate()
        .any(|(c, col)| col.kind != Kind::Ignored && (0..t.n_rows()).any(|r| t.is_missing(t.cell(r, c))));
    if !holes && overimpute_frac.is_none() {
        eprintln!("no cell of {} is missing: writing it as it is", t.path.display());
        let tables = vec![Filled::default(); fill.m.unwrap_or(1)];
        let files = write_tables(&t, &tables, csv_out, fill)?;
        for f in &files {
            eprintln!("wrote {}", f.display());
        }
        return Ok(files);
    }
    let mut progress = Progress::new();
    let (imp, report) = fit_table(&cfg, &t, Some(schema), &mut progress, Checkpointing::default())?;
    eprintln!(
        "fitted: {} epochs, best {}",
        report.history.len(),
        report.best_epoch
    );
    let files = write_filled(&imp, &t, csv_out, fill, cfg.model.train.seed)?;
    for f in &files {
        eprintln!("wrote {}", f.display());
    }
    Ok(files)
}

/// Overimputation's figures: per column, the cells hidden and the error of
/// their fill (RMSE on the standardised scale and in the column's units for
/// continuous columns; the share filled right for binaries and
/// categoricals).
#[derive(Debug, Clone, Serialize)]
pub struct OverimputeRow {
    pub column: String,
    pub kind: String,
    pub hidden: usize,
    pub rmse_standardised: Option<f64>,
    pub rmse: Option<f64>,
    pub accuracy: Option<f64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct OverimputeReport {
    pub rows: Vec<OverimputeRow>,
}

impl OverimputeReport {
    pub fn write(&self, csv: &Path, png: &Path) -> Result<()> {
        let mut s = String::from("column,kind,hidden,rmse_standardised,rmse,accuracy\n");
        let f = |v: Option<f64>| v.map(|v| format!("{v:.6}")).unwrap_or_default();
        for r in &self.rows {
            s.push_str(&format!(
                "{},{},{},{},{},{}\n",
                r.column,
                r.kind,
                r.hidden,
                f(r.rmse_standardised),
                f(r.rmse),
                f(r.accuracy)
            ));
        }
        crate::io::atomic_write(csv, s.as_bytes())?;
        // One point per column: its error (RMSE standardised, or 1 − accuracy).
        let points: Vec<(f64, f64)> = self
            .rows
            .iter()
            .enumerate()
            .filter_map(|(i, r)| {
                r.rmse_standardised
                    .or(r.accuracy.map(|a| 1.0 - a))
                    .map(|v| (i as f64 + 1.0, v))
            })
            .collect();
        crate::viz::plot::save_line_chart(
            png,
            "Overimputation: error on hidden observed cells, per column",
            "column (as in the CSV)",
            "RMSE (standardised) or 1 − accuracy",
            &[crate::viz::plot::Series {
                label: "hidden cells".into(),
                points,
            }],
        )
    }
}

/// Hides `frac` of `t`'s observed cells (seeded), fits to what is left,
/// fills, and compares the fill with the hidden text.
pub fn overimpute(cfg: &ImputeRun, t: &Table, frac: f64) -> Result<OverimputeReport> {
    if !(0.0..1.0).contains(&frac) || frac == 0.0 {
        return Err(Error::config(
            "overimpute",
            format!("must be in (0, 1), got {frac}"),
        ));
    }
    let schema = Schema::infer(t, &cfg.columns, &cfg.data.missing)?;
    let mut rng = seeded(cfg.model.train.seed ^ 0x0e1a);
    let (n, c) = (t.n_rows(), t.n_cols());
    let mut rows: Vec<Vec<String>> = Vec::with_capacity(n);
    let mut hidden = Vec::new();
    for r in 0..n {
        let mut row = Vec::with_capacity(c);
        for (j, col) in schema.columns.iter().enumerate() {
            let text = t.cell(r, j);
            if !matches!(col.kind, Kind::Ignored) && !t.is_missing(text) && rng.random::<f64>() < frac {
                hidden.push((r, j));
                row.push(String::new());
            } else {
                row.push(text.to_string());
            }
        }
        rows.push(row);
    }
    let mut masked = Table::from_rows(t.header.clone(), &rows, &t.path)?;
    masked.delimiter = t.delimiter;
    let masked = masked.with_missing(&cfg.data.missing);
    eprintln!("overimputation: {} observed cells hidden", hidden.len());
    let mut quiet = crate::train::Silent;
    // Fitted on the masked table, whose own schema may differ a little
    // (fewer cells); the comparison is in the full table's terms.
    let (imp, _) = fit_table(cfg, &masked, None, &mut quiet, Checkpointing::default())?;
    let filled = imp.impute(&masked, None, false, cfg.model.train.seed, false)?;
    let mut out = Vec::new();
    for (j, col) in schema.columns.iter().enumerate() {
        let cells: Vec<usize> = hidden.iter().filter(|h| h.1 == j).map(|h| h.0).collect();
        if cells.is_empty() || matches!(col.kind, Kind::Ignored) {
            continue;
        }
        let got = |r: usize| filled[0].get(r * c + j).unwrap_or("");
        let row = match &col.kind {
            Kind::Continuous { sd, .. } => {
                let se: f64 = cells
                    .iter()
                    .map(|&r| {
                        let truth: f64 = t.cell(r, j).trim().parse().unwrap_or(0.0);
                        let fill: f64 = got(r).parse().unwrap_or(f64::NAN);
                        (truth - fill).powi(2)
                    })
                    .sum();
                let rmse = (se / cells.len() as f64).sqrt();
                OverimputeRow {
                    column: col.name.clone(),
                    kind: "continuous".into(),
                    hidden: cells.len(),
                    rmse_standardised: Some(rmse / sd),
                    rmse: Some(rmse),
                    accuracy: None,
                }
            }
            _ => {
                let right = cells.iter().filter(|&&r| t.cell(r, j).trim() == got(r)).count();
                OverimputeRow {
                    column: col.name.clone(),
                    kind: if matches!(col.kind, Kind::Binary { .. }) {
                        "binary"
                    } else {
                        "categorical"
                    }
                    .into(),
                    hidden: cells.len(),
                    rmse_standardised: None,
                    rmse: None,
                    accuracy: Some(right as f64 / cells.len() as f64),
                }
            }
        };
        out.push(row);
    }
    for r in &out {
        match (r.rmse_standardised, r.accuracy) {
            (Some(e), _) => eprintln!(
                "  {}: RMSE {:.4} (standardised {:.4}) over {} cells",
                r.column,
                r.rmse.unwrap_or(0.0),
                e,
                r.hidden
            ),
            (_, Some(a)) => eprintln!("  {}: {:.1}% right over {} cells", r.column, 100.0 * a, r.hidden),
            _ => {}
        }
    }
    Ok(OverimputeReport { rows: out })
}

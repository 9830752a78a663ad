//! A table's columns as the imputer sees them: their kinds (inferred, or
//! given), levels and scaling, and how a row becomes numbers (continuous
//! columns standardised, binaries 0/1, categoricals one-hot, missing cells 0
//! with a mask) and numbers become cell text again. Saved with the model, so
//! that new tables are encoded the same way.

use crate::data::table::Table;
use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};

/// Integer columns with at most this many distinct values are categorical.
pub const CATEGORICAL_MAX_INT_LEVELS: usize = 10;
/// Text columns with more distinct values than this are refused (ignore
/// them with `--ignore`, or declare them).
pub const MAX_LEVELS: usize = 1000;

/// What a column holds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Kind {
    /// Numbers, standardised with the observed mean and standard deviation;
    /// imputed values are written with `decimals` digits after the point
    /// (the most seen in the column).
    Continuous { mean: f64, sd: f64, decimals: usize },
    /// Two values, as 0 and 1.
    Binary { levels: [String; 2] },
    /// Several values, one-hot.
    Categorical { levels: Vec<String> },
    /// Copied through unchanged.
    Ignored,
}

/// A column's name and kind.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Column {
    pub name: String,
    #[serde(flatten)]
    pub kind: Kind,
}

/// The kinds a user declares, by column name.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Declared {
    pub categorical: Vec<String>,
    pub binary: Vec<String>,
    pub continuous: Vec<String>,
    pub ignore: Vec<String>,
    /// Drop (ignore, with a warning) columns with no observed cell instead
    /// of refusing them.
    pub drop_empty: bool,
}

/// The columns of a table and where each sits in an encoded row.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Schema {
    pub columns: Vec<Column>,
    /// Extra missing markers the table was read with.
    pub missing: Vec<String>,
}

/// A table as numbers: `x` and `mask` are `[n, width]`; `mask` is 1 where
/// the cell was observed (for a categorical, on its whole one-hot group).
#[derive(Debug, Clone, PartialEq)]
pub struct Encoded {
    pub x: Vec<f32>,
    pub mask: Vec<f32>,
    pub n: usize,
    pub width: usize,
}

impl Column {
    /// Encoded values of this column.
    pub fn width(&self) -> usize {
        match &self.kind {
            Kind::Continuous { .. } | Kind::Binary { .. } => 1,
            Kind::Categorical { levels } => levels.len(),
            Kind::Ignored => 0,
        }
    }
}

/// The scale a continuous column is standardised by: its standard
/// deviation, but at least a tenth of its range (a column that is nearly
/// constant, such as a border pixel that is 0 in all but a few images, would
/// otherwise turn its rare values into hundreds of units and swamp the loss),
/// and 1 for a constant column.
pub fn scale(sd: f64, range: f64, mean: f64) -> f64 {
    let s = sd.max(range / 10.0);
    if s > 1e-12 * mean.abs().max(1.0) {
        s
    } else {
        1.0
    }
}

/// Digits after the decimal point in a number's text (none for `1e3`).
fn decimals(t: &str) -> usize {
    let mant = t.split(['e', 'E']).next().unwrap_or("");
    mant.split_once('.').map_or(0, |(_, f)| f.len())
}

fn parse_num(t: &str) -> Option<f64> {
    t.trim().parse::<f64>().ok().filter(|v| v.is_finite())
}

/// Levels in a stable order: numeric order when all are numbers, else text order.
fn sorted_levels(mut levels: Vec<String>) -> Vec<String> {
    if levels.iter().all(|l| parse_num(l).is_some()) {
        levels.sort_by(|a, b| parse_num(a).partial_cmp(&parse_num(b)).expect("finite"));
    } else {
        levels.sort();
    }
    levels
}

impl Schema {
    /// Infers each column's kind from its observed cells (numbers: two
    /// values binary, integers with at most
    /// [`CATEGORICAL_MAX_INT_LEVELS`] values categorical, else continuous;
    /// text: two values binary, else categorical), except where `declared`
    /// says otherwise.
    pub fn infer(t: &Table, declared: &Declared, missing: &[String]) -> Result<Schema> {
        for name in declared
            .categorical
            .iter()
            .chain(&declared.binary)
            .chain(&declared.continuous)
            .chain(&declared.ignore)
        {
            if t.column(name).is_none() {
                return Err(Error::config(
                    "columns",
                    format!(
                        "{} has no column named `{name}` (it has: {})",
                        t.path.display(),
                        t.header.join(", ")
                    ),
                ));
            }
        }
        let lists = [
            ("categorical", &declared.categorical),
            ("binary", &declared.binary),
            ("continuous", &declared.continuous),
            ("ignore", &declared.ignore),
        ];
        for (i, (a, first)) in lists.iter().enumerate() {
            for (b, second) in &lists[i + 1..] {
                if let Some(name) = first.iter().find(|n| second.contains(n)) {
                    return Err(Error::config(
                        "columns",
                        format!("column `{name}` is given both --{a} and --{b}: give it one kind"),
                    ));
                }
            }
        }
        let mut columns = Vec::with_capacity(t.n_cols());
        for (c, name) in t.header.iter().enumerate() {
            let is = |list: &[String]| list.iter().any(|n| n == name);
            if is(&declared.ignore) {
                columns.push(Column {
                    name: name.clone(),
                    kind: Kind::Ignored,
                });
                continue;
            }
            let mut seen: Vec<String> = Vec::new();
            let mut set = std::collections::HashSet::new();
            let mut numeric = true;
            let mut integer = true;
            let (mut sum, mut sum2, mut count, mut dec) = (0.0f64, 0.0f64, 0usize, 0usize);
            let mut first_text: Option<(usize, String)> = None;
            // `inf`, `-inf`, `Nan`: numbers to Rust, but none a network can take in.
            let mut first_non_finite: Option<(usize, String)> = None;
            let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
            for r in 0..t.n_rows() {
                let cell = t.cell(r, c);
                if t.is_missing(cell) {
                    continue;
                }
                let v = cell.trim();
                if set.len() <= MAX_LEVELS && set.insert(v.to_string()) {
                    seen.push(v.to_string());
                }
                match parse_num(v) {
                    Some(x) => {
                        integer &= x.fract() == 0.0;
                        sum += x;
                        sum2 += x * x;
                        lo = lo.min(x);
                        hi = hi.max(x);
                        count += 1;
                        dec = dec.max(decimals(v));
                    }
                    None if v.parse::<f64>().is_ok() => {
                        first_non_finite.get_or_insert((r, v.to_string()));
                    }
                    None => {
                        numeric = false;
                        first_text.get_or_insert((r, v.to_string()));
                    }
                }
            }
            // In a column of numbers a non-finite one is an error in the data;
            // among words (`Infinity` a level like any other) it is a word.
            if let Some((r, v)) = first_non_finite {
                if first_text.is_none() && !is(&declared.categorical) && !is(&declared.binary) {
                    return Err(Error::format(
                        &t.path,
                        format!(
                            "data row {}, column `{name}`: `{v}` is not a finite number; mark it missing (--missing {v}) or fix it",
                            r + 1
                        ),
                    ));
                }
                numeric = false;
                first_text.get_or_insert((r, v));
            }
            if seen.is_empty() {
                if declared.drop_empty {
                    eprintln!(
                        "warning: column `{name}` has no observed cell; it is copied through unchanged"
                    );
                    columns.push(Column {
                        name: name.clone(),
                        kind: Kind::Ignored,
                    });
                    continue;
                }
                return Err(Error::format(
                    &t.path,
                    format!("column `{name}` has no observed cell: nothing to learn it from (--drop-empty copies it through, --ignore {name} too)"),
                ));
            }
            let continuous = || -> Result<Kind> {
                if let Some((r, v)) = &first_text {
                    return Err(Error::format(
                        &t.path,
                        format!(
                            "data row {}, column `{name}`: `{v}` is not a number, but the column is continuous",
                            r + 1
                        ),
                    ));
                }
                let mean = sum / count as f64;
                let var = (sum2 / count as f64 - mean * mean).max(0.0);
                let sd = scale(var.sqrt(), hi - lo, mean);
                Ok(Kind::Continuous {
                    mean,
                    sd,
                    decimals: dec.min(12),
                })
            };
            let too_many = || {
                Error::format(
                    &t.path,
                    format!(
                        "column `{name}` has more than {MAX_LEVELS} distinct values: declare it --continuous, or --ignore it"
                    ),
                )
            };
            let kind = if is(&declared.continuous) {
                continuous()?
            } else if is(&declared.binary) {
                if seen.len() != 2 {
                    return Err(Error::format(
                        &t.path,
                        format!(
                            "column `{name}` is declared binary but has {} distinct values",
                            seen.len()
                        ),
                    ));
                }
                let l = sorted_levels(seen);
                Kind::Binary {
                    levels: [l[0].clone(), l[1].clone()],
                }
            } else if is(&declared.categorical) {
                if seen.len() > MAX_LEVELS {
                    return Err(too_many());
                }
                Kind::Categorical {
                    levels: sorted_levels(seen),
                }
            } else if seen.len() == 2 {
                let l = sorted_levels(seen);
                Kind::Binary {
                    levels: [l[0].clone(), l[1].clone()],
                }
            } else if numeric && !(integer && seen.len() <= CATEGORICAL_MAX_INT_LEVELS && seen.len() >= 3) {
                continuous()?
            } else if seen.len() > MAX_LEVELS {
                return Err(too_many());
            } else {
                Kind::Categorical {
                    levels: sorted_levels(seen),
                }
            };
            columns.push(Column {
                name: name.clone(),
                kind,
            });
        }
        if columns.iter().all(|c| c.kind == Kind::Ignored) {
            return Err(Error::format(&t.path, "has no column left to impute"));
        }
        Ok(Schema {
            columns,
            missing: missing.to_vec(),
        })
    }

    /// Encoded values per row.
    pub fn width(&self) -> usize {
        self.columns.iter().map(Column::width).sum()
    }

    /// Where each column starts in an encoded row.
    pub fn offsets(&self) -> Vec<usize> {
        let mut o = Vec::with_capacity(self.columns.len());
        let mut at = 0;
        for c in &self.columns {
            o.push(at);
            at += c.width();
        }
        o
    }

    /// Checks that `t` has this schema's columns, by name, in order.
    pub fn check_table(&self, t: &Table) -> Result<()> {
        let want: Vec<&str> = self.columns.iter().map(|c| c.name.as_str()).collect();
        let got: Vec<&str> = t.header.iter().map(String::as_str).collect();
        if want != got {
            return Err(Error::format(
                &t.path,
                format!(
                    "has columns [{}], but the model was fitted on [{}]",
                    got.join(", "),
                    want.join(", ")
                ),
            ));
        }
        Ok(())
    }

    /// `t` as numbers. A level never seen in fitting is treated as missing
    /// (with one warning per column), or refused when `strict`; text in a
    /// continuous column is refused.
    pub fn encode(&self, t: &Table, strict: bool) -> Result<Encoded> {
        self.check_table(t)?;
        let (n, width) = (t.n_rows(), self.width());
        let mut x = vec![0.0f32; n * width];
        let mut mask = vec![0.0f32; n * width];
        let offsets = self.offsets();
        for (c, col) in self.columns.iter().enumerate() {
            let o = offsets[c];
            let mut unseen = 0usize;
            let mut example = None;
            for r in 0..n {
                let cell = t.cell(r, c);
                if matches!(col.kind, Kind::Ignored) || t.is_missing(cell) {
                    continue;
                }
                let v = cell.trim();
                let row = r * width + o;
                let level = |levels: &[String]| levels.iter().position(|l| l == v);
                match &col.kind {
                    Kind::Continuous { mean, sd, .. } => {
                        let Some(num) = parse_num(v) else {
                            return Err(Error::format(
                                &t.path,
                                format!(
                                    "data row {}, column `{}`: `{v}` is not a number, but the column is continuous",
                                    r + 1,
                                    col.name
                                ),
                            ));
                        };
                        x[row] = ((num - mean) / sd) as f32;
                        mask[row] = 1.0;
                    }
                    Kind::Binary { levels } => match level(levels) {
                        Some(k) => {
                            x[row] = k as f32;
                            mask[row] = 1.0;
                        }
                        None => {
                            unseen += 1;
                            example.get_or_insert((r, v.to_string()));
                        }
                    },
                    Kind::Categorical { levels } => match level(levels) {
                        Some(k) => {
                            x[row + k] = 1.0;
                            mask[row..row + levels.len()].fill(1.0);
                        }
                        None => {
                            unseen += 1;
                            example.get_or_insert((r, v.to_string()));
                        }
                    },
                    Kind::Ignored => {}
                }
            }
            if let Some((r, v)) = example {
                let what = format!(
                    "column `{}`: {unseen} cell(s) hold a value never seen in fitting (first: `{v}` in data row {})",
                    col.name,
                    r + 1
                );
                if strict {
                    return Err(Error::format(&t.path, what));
                }
                eprintln!("warning: {}: {what}; treated as missing", t.path.display());
            }
        }
        Ok(Encoded { x, mask, n, width })
    }

    /// The text of column `c` for an imputed cell whose network outputs are
    /// `out` (the column's encoded slice, after the output heads: a value
    /// for a continuous column, a probability for a binary, probabilities
    /// for a categorical); with `draw`, binaries and categoricals are drawn
    /// from their probabilities with `u` ∈ [0, 1) instead of taking the most
    /// likely value.
    pub fn cell_text(&self, c: usize, out: &[f32], draw: Option<f64>) -> String {
        match &self.columns[c].kind {
            Kind::Continuous { mean, sd, decimals } => {
                let v = out[0] as f64 * sd + mean;
                format!("{v:.decimals$}")
            }
            Kind::Binary { levels } => {
                let p = out[0] as f64;
                let one = match draw {
                    Some(u) => u < p,
                    None => p >= 0.5,
                };
                levels[one as usize].clone()
            }
            Kind::Categorical { levels } => {
                let k = match draw {
                    Some(u) => {
                        let mut acc = 0.0;
                        out.iter()
                            .position(|&p| {
                                acc += p as f64;
                                u < acc
                            })
                            .unwrap_or(out.len() - 1)
                    }
                    None => out
                        .iter()
                        .enumerate()
                        .fold(0, |best, (i, &p)| if p > out[best] { i } else { best }),
                };
                levels[k].clone()
            }
            Kind::Ignored => String::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn table(rows: &[&[&str]]) -> Table {
        let header = rows[0].iter().map(|s| s.to_string()).collect();
        let body: Vec<Vec<String>> = rows[1..]
            .iter()
            .map(|r| r.iter().map(|s| s.to_string()).collect())
            .collect();
        Table::from_rows(header, &body, Path::new("t.csv")).unwrap()
    }

    #[test]
    fn kinds_are_inferred_and_can_be_declared() {
        let t = table(&[
            &["x", "yes", "grade", "city", "id"],
            &["1.5", "yes", "1", "Oslo", "7"],
            &["2.25", "no", "2", "Rome", "8"],
            &["", "NA", "3", "?", "9"],
            &["3", "yes", "2", "Oslo", "10"],
        ]);
        let s = Schema::infer(&t, &Declared::default(), &[]).unwrap();
        let kinds: Vec<&Kind> = s.columns.iter().map(|c| &c.kind).collect();
        assert!(
            matches!(kinds[0], Kind::Continuous { decimals: 2, .. }),
            "{kinds:?}"
        );
        assert_eq!(
            kinds[1],
            &Kind::Binary {
                levels: ["no".into(), "yes".into()]
            }
        );
        assert_eq!(
            kinds[2],
            &Kind::Categorical {
                levels: vec!["1".into(), "2".into(), "3".into()]
            }
        );
        assert_eq!(
            kinds[3],
            &Kind::Binary {
                levels: ["Oslo".into(), "Rome".into()]
            }
        );
        // Few distinct integers read as categories (an id column wants --ignore).
        assert!(matches!(kinds[4], Kind::Categorical { .. }), "{kinds:?}");
        let d = Declared {
            continuous: vec!["grade".into()],
            ignore: vec!["id".into()],
            ..Declared::default()
        };
        let s = Schema::infer(&t, &d, &[]).unwrap();
        assert!(matches!(s.columns[2].kind, Kind::Continuous { .. }));
        assert_eq!(s.columns[4].kind, Kind::Ignored);
        assert_eq!(s.width(), 1 + 1 + 1 + 1);
        let e = Schema::infer(
            &t,
            &Declared {
                binary: vec!["grade".into()],
                ..Declared::default()
            },
            &[],
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("declared binary") && e.contains("3 distinct"), "{e}");
    }

    #[test]
    fn encoding_masks_missing_cells_and_unseen_levels() {
        let t = table(&[
            &["x", "c"],
            &["1.5", "a"],
            &["3.5", "b"],
            &["NA", "c"],
            &["2.5", "a"],
        ]);
        let s = Schema::infer(&t, &Declared::default(), &[]).unwrap();
        let e = s.encode(&t, false).unwrap();
        assert_eq!((e.n, e.width), (4, 4));
        // x: mean 2.5, sd √(2/3); row 2 missing.
        assert!((e.x[0] + 1.224_744_9).abs() < 1e-5, "{:?}", &e.x[..4]);
        assert_eq!(&e.mask[8..12], &[0.0, 1.0, 1.0, 1.0]);
        assert_eq!(&e.x[9..12], &[0.0, 0.0, 1.0]);
        let new = table(&[&["x", "c"], &["1.5", "zebra"]]);
        let e = s.encode(&new, false).unwrap();
        assert_eq!(&e.mask[..4], &[1.0, 0.0, 0.0, 0.0]);
        let err = s.encode(&new, true).unwrap_err().to_string();
        assert!(
            err.contains("never seen") && err.contains("zebra") && err.contains("row 1"),
            "{err}"
        );
        let text = table(&[&["x", "c"], &["one", "a"]]);
        let err = s.encode(&text, false).unwrap_err().to_string();
        assert!(
            err.contains("`one` is not a number") && err.contains("column `x`"),
            "{err}"
        );
        let other = table(&[&["y", "c"], &["1.5", "a"]]);
        assert!(s
            .encode(&other, false)
            .unwrap_err()
            .to_string()
            .contains("fitted on [x, c]"));
    }

    #[test]
    fn a_nearly_constant_column_is_scaled_by_a_tenth_of_its_range() {
        let mut rows: Vec<Vec<&str>> = vec![vec!["p"]];
        rows.extend(std::iter::repeat_n(vec!["0"], 999));
        rows.push(vec!["0.5"]);
        let refs: Vec<&[&str]> = rows.iter().map(Vec::as_slice).collect();
        let t = table(&refs);
        let s = Schema::infer(
            &t,
            &Declared {
                continuous: vec!["p".into()],
                ..Declared::default()
            },
            &[],
        )
        .unwrap();
        let Kind::Continuous { sd, .. } = s.columns[0].kind else {
            panic!()
        };
        assert!((sd - 0.05).abs() < 1e-12, "{sd}");
        assert_eq!(scale(0.0, 0.0, 3.0), 1.0, "constant");
        assert_eq!(scale(2.0, 10.0, 0.0), 2.0, "an ordinary column keeps its sd");
    }

    #[test]
    fn infinities_and_a_column_of_two_kinds_are_refused() {
        let t = table(&[
            &["x", "word"],
            &["1.5", "Infinity"],
            &["inf", "low"],
            &["2", "high"],
            &["3.25", "low"],
        ]);
        let e = Schema::infer(&t, &Declared::default(), &[])
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("data row 2, column `x`") && e.contains("`inf` is not a finite number"),
            "{e}"
        );
        // Marked missing, it is a hole; among words, `Infinity` is a level.
        let s = Schema::infer(
            &t.clone().with_missing(&["inf".into()]),
            &Declared::default(),
            &[],
        )
        .unwrap();
        assert!(matches!(s.columns[0].kind, Kind::Continuous { .. }));
        assert_eq!(
            s.columns[1].kind,
            Kind::Categorical {
                levels: vec!["Infinity".into(), "high".into(), "low".into()]
            }
        );
        let d = Declared {
            binary: vec!["word".into()],
            categorical: vec!["word".into()],
            ..Declared::default()
        };
        let e = Schema::infer(&t, &d, &[]).unwrap_err().to_string();
        assert!(
            e.contains("column `word` is given both --categorical and --binary"),
            "{e}"
        );
    }

    #[test]
    fn an_empty_column_is_refused_or_dropped() {
        let t = table(&[&["x", "e"], &["1", ""], &["2", "NA"]]);
        let e = Schema::infer(&t, &Declared::default(), &[])
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("column `e` has no observed cell") && e.contains("--drop-empty"),
            "{e}"
        );
        let s = Schema::infer(
            &t,
            &Declared {
                drop_empty: true,
                ..Declared::default()
            },
            &[],
        )
        .unwrap();
        assert_eq!(s.columns[1].kind, Kind::Ignored);
    }

    #[test]
    fn imputed_cells_are_written_in_the_column_s_terms() {
        let t = table(&[&["x", "c"], &["1.50", "a"], &["2.00", "b"], &["2.50", "c"]]);
        let s = Schema::infer(&t, &Declared::default(), &[]).unwrap();
        let Kind::Continuous { mean, sd, .. } = s.columns[0].kind else {
            panic!()
        };
        assert_eq!(s.cell_text(0, &[((1.75 - mean) / sd) as f32], None), "1.75");
        assert_eq!(s.cell_text(1, &[0.2, 0.7, 0.1], None), "b");
        assert_eq!(s.cell_text(1, &[0.2, 0.7, 0.1], Some(0.95)), "c");
        assert_eq!(s.cell_text(1, &[0.2, 0.7, 0.1], Some(0.1)), "a");
    }
}

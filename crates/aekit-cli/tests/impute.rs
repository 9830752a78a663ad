//! `aekit impute`: tables with holes filled, on the shipped wine table
//! (178 × 14: 13 continuous columns and the cultivar, categorical).

mod common;

use common::{aekit, aekit_env, fails_with, stderr, tmp};
use std::path::{Path, PathBuf};

fn wine() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data/tables/wine.csv")
}

/// The wine table with `frac` of its cells blanked (a seeded pattern), and
/// a `tag` column of text that must be copied through (`--ignore tag`).
fn holes(dir: &Path, frac: f64) -> PathBuf {
    let text = std::fs::read_to_string(wine()).unwrap();
    let mut out = String::new();
    let mut state = 12345u64;
    for (i, line) in text.lines().enumerate() {
        let cells: Vec<&str> = line.split(',').collect();
        let mut row: Vec<String> = Vec::new();
        for c in &cells {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let u = (state >> 11) as f64 / (1u64 << 53) as f64;
            row.push(if i > 0 && u < frac {
                String::new()
            } else {
                c.to_string()
            });
        }
        row.push(if i == 0 {
            "tag".into()
        } else {
            format!("\"w {i}, ok\"")
        });
        out.push_str(&row.join(","));
        out.push('\n');
    }
    let p = dir.join("holes.csv");
    std::fs::write(&p, out).unwrap();
    p
}

fn rows(p: &Path) -> Vec<Vec<String>> {
    let mut r = csv_rows(&std::fs::read_to_string(p).unwrap());
    r.remove(0);
    r
}

/// A small CSV reader for the tests: commas, double quotes.
fn csv_rows(text: &str) -> Vec<Vec<String>> {
    text.lines()
        .map(|l| {
            let mut cells = Vec::new();
            let (mut cur, mut q) = (String::new(), false);
            for ch in l.chars() {
                match ch {
                    '"' => q = !q,
                    ',' if !q => cells.push(std::mem::take(&mut cur)),
                    c => cur.push(c),
                }
            }
            cells.push(cur);
            cells
        })
        .collect()
}

const FAST: [&str; 6] = ["--epochs", "30", "--layers", "64,32", "--threads", "1"];

/// `aekit impute` of `src` (its `tag` column copied through) into `out`,
/// with `extra` flags, fast.
fn impute_tagged(src: &Path, out: &Path, extra: &[&str]) -> std::process::Output {
    let base = [
        "impute",
        "--data",
        src.to_str().unwrap(),
        "--ignore",
        "tag",
        "--out",
        out.to_str().unwrap(),
    ];
    aekit(&[&base[..], extra, &FAST[..]].concat())
}

#[test]
fn observed_cells_are_written_back_exactly_and_holes_are_filled() {
    let d = tmp("impute-exact");
    let src = holes(d.path(), 0.2);
    let out = d.path().join("filled.csv");
    let o = impute_tagged(&src, &out, &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    let (a, b) = (rows(&src), rows(&out));
    assert_eq!(a.len(), b.len(), "row order and count kept");
    let mut filled = 0;
    for (ra, rb) in a.iter().zip(&b) {
        for (x, y) in ra.iter().zip(rb) {
            if x.is_empty() {
                assert!(!y.is_empty(), "a hole left empty");
                filled += 1;
            } else {
                assert_eq!(x, y, "an observed cell changed");
            }
        }
    }
    assert!(filled > 300, "{filled}");
    // Imputed cultivars are levels of the column; lines with no hole are
    // byte for byte the source's lines (quotes kept where CSV needs them).
    assert!(b.iter().all(|r| r[13].starts_with("class_")));
    let src_text = std::fs::read_to_string(&src).unwrap();
    let out_text = std::fs::read_to_string(&out).unwrap();
    for (x, y) in src_text.lines().zip(out_text.lines()) {
        if !x.split(',').any(str::is_empty) {
            assert_eq!(x, y);
        }
    }
}

#[test]
fn multiple_imputations_differ_exactly_on_the_missing_cells() {
    let d = tmp("impute-m");
    let src = holes(d.path(), 0.2);
    let out = d.path().join("imp.csv");
    let o = impute_tagged(&src, &out, &["--m", "3"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let a = rows(&src);
    let draws: Vec<Vec<Vec<String>>> = (1..=3)
        .map(|k| rows(&d.path().join(format!("imp-{k}.csv"))))
        .collect();
    let (mut missing, mut varied) = (0, 0);
    for (r, row) in a.iter().enumerate() {
        for (c, x) in row.iter().enumerate() {
            let vals: Vec<&String> = draws.iter().map(|t| &t[r][c]).collect();
            if x.is_empty() {
                missing += 1;
                varied += (vals[0] != vals[1] || vals[1] != vals[2]) as usize;
            } else {
                assert!(vals.iter().all(|v| *v == x), "observed cell ({r}, {c}) varies");
            }
        }
    }
    // Continuous cells differ between dropout draws almost always.
    assert!(varied as f64 > 0.8 * missing as f64, "{varied} of {missing}");
    // One long file holds them all, with an .imp column.
    let long = d.path().join("long.csv");
    let o = impute_tagged(&src, &long, &["--m", "2", "--long"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let l = std::fs::read_to_string(&long).unwrap();
    assert!(l.starts_with(".imp,alcohol,"));
    assert_eq!(l.lines().count(), 1 + 2 * a.len());
}

#[test]
fn a_table_without_holes_is_written_as_it_is_without_fitting() {
    let d = tmp("impute-whole");
    let src = holes(d.path(), 0.0);
    let out = d.path().join("same.csv");
    let o = impute_tagged(&src, &out, &["--m", "2"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let e = stderr(&o);
    assert!(
        e.contains("is missing: writing it as it is") && !e.contains("fitted"),
        "{e}"
    );
    for k in [1, 2] {
        assert_eq!(rows(&d.path().join(format!("same-{k}.csv"))), rows(&src));
    }
    // Its columns are still checked: an infinity is refused, nothing written.
    let bad = d.path().join("inf.csv");
    std::fs::write(&bad, "a,b\n1,2\ninf,3\n4,5\n2,6\n").unwrap();
    let o = aekit(&[
        "impute",
        "--data",
        bad.to_str().unwrap(),
        "--out",
        d.path().join("x.csv").to_str().unwrap(),
    ]);
    fails_with(&o, &["data row 2, column `a`", "`inf` is not a finite number"]);
    assert!(!d.path().join("x.csv").exists());
}

#[test]
fn fit_then_apply_to_a_new_table_and_resume_a_killed_fit() {
    let d = tmp("impute-fit");
    let src = holes(d.path(), 0.1);
    let run = d.path().join("run");
    let args = [
        "impute",
        "fit",
        "--data",
        src.to_str().unwrap(),
        "--ignore",
        "tag",
        "--layers",
        "64,32",
        "--threads",
        "1",
    ];
    let o = aekit(&[&args[..], &["--epochs", "30", "--out", run.to_str().unwrap()]].concat());
    assert!(o.status.success(), "{}", stderr(&o));
    for f in ["config.toml", "metrics.csv", "summary.json", "model.safetensors"] {
        assert!(run.join(f).is_file(), "missing {f}");
    }
    // A new table with a level never seen: a warning (treated as missing), or refused with --strict.
    let new = d.path().join("new.csv");
    let mut t = std::fs::read_to_string(&src).unwrap();
    t = t.replacen("class_0", "class_9", 1);
    std::fs::write(&new, &t).unwrap();
    let out = d.path().join("new-filled.csv");
    // `impute apply` of the fitted run to the new table, into `to`.
    let apply = |to: &Path, extra: &[&str]| {
        let base = [
            "impute",
            "apply",
            "--model",
            run.to_str().unwrap(),
            "--data",
            new.to_str().unwrap(),
            "--out",
            to.to_str().unwrap(),
        ];
        aekit(&[&base[..], extra].concat())
    };
    let o = apply(&out, &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("never seen") && stderr(&o).contains("class_9"),
        "{}",
        stderr(&o)
    );
    assert!(!std::fs::read_to_string(&out).unwrap().contains("class_9"));
    let strict = d.path().join("strict.csv");
    fails_with(
        &apply(&strict, &["--strict"]),
        &["cultivar", "class_9", "never seen"],
    );
    assert!(!strict.exists(), "nothing written");
    // Neither the model nor the table is ever written over, nor the last
    // fill without --force; each refused before any filling.
    let model = run.join("model.safetensors");
    let (model_bytes, table_bytes, out_bytes) = (
        std::fs::read(&model).unwrap(),
        std::fs::read(&new).unwrap(),
        std::fs::read(&out).unwrap(),
    );
    for (target, force, want) in [
        (&model, true, "a file this command reads"),
        (&new, true, "a file this command reads"),
        (&out, false, "--force"),
    ] {
        let extra: &[&str] = if force { &["--force"] } else { &[] };
        fails_with(&apply(target, extra), &[want]);
    }
    assert_eq!(std::fs::read(&model).unwrap(), model_bytes);
    assert_eq!(std::fs::read(&new).unwrap(), table_bytes);
    assert_eq!(std::fs::read(&out).unwrap(), out_bytes);
    // Killed after epoch 3 and resumed: the same model, byte for byte.
    let cut = d.path().join("cut");
    let o = aekit_env(
        &[
            &args[..],
            &["--out", cut.to_str().unwrap(), "--patience", "0", "--epochs", "6"],
        ]
        .concat(),
        &[(aekit::run::dir::KILL_AFTER, "3")],
    );
    assert!(!o.status.success());
    assert!(cut.join("checkpoints/epoch-3").is_dir(), "{}", stderr(&o));
    let o = aekit(&["impute", "fit", "--resume", cut.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    let full = d.path().join("full");
    let o = aekit(
        &[
            &args[..],
            &[
                "--out",
                full.to_str().unwrap(),
                "--patience",
                "0",
                "--epochs",
                "6",
            ],
        ]
        .concat(),
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        std::fs::read(full.join("model.safetensors")).unwrap()
            == std::fs::read(cut.join("model.safetensors")).unwrap()
    );
}

#[test]
fn overimputation_reports_every_column_and_beats_the_mean() {
    let d = tmp("impute-over");
    let out = d.path().join("w.csv");
    let o = aekit(
        &[
            &[
                "impute",
                "--data",
                wine().to_str().unwrap(),
                "--overimpute",
                "0.2",
                "--out",
                out.to_str().unwrap(),
            ][..],
            &["--epochs", "60", "--threads", "1"][..],
        ]
        .concat(),
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let report = std::fs::read_to_string(d.path().join("w-overimpute.csv")).unwrap();
    assert!(report.starts_with("column,kind,hidden,rmse_standardised,rmse,accuracy"));
    assert_eq!(report.lines().count(), 1 + 14, "{report}");
    assert!(d.path().join("w-overimpute.png").is_file());
    // Filling with the column mean scores a standardised RMSE of about 1;
    // the autoencoder, using the other columns, must do better on average.
    let rmse: Vec<f64> = report
        .lines()
        .skip(1)
        .filter_map(|l| l.split(',').nth(3).and_then(|v| v.parse().ok()))
        .collect();
    let mean = rmse.iter().sum::<f64>() / rmse.len() as f64;
    assert!(
        rmse.len() == 13 && mean < 0.9,
        "mean standardised RMSE {mean}: {rmse:?}"
    );
}

#[test]
fn bad_tables_are_refused_naming_the_row_and_column_and_nothing_is_written() {
    let d = tmp("impute-bad");
    let out = d.path().join("o.csv");
    let o_str = out.to_str().unwrap();
    let cases: [(&str, &[u8], &[&str]); 6] = [
        ("ragged.csv", b"a,b\n1,2\n3\n", &["line 3", "1 fields"]),
        ("text.csv", b"a,b\n1,2\n2,3\nx,4\n", &[]),
        (
            "empty.csv",
            b"a,b\n1,\n2,NA\n3,?\n",
            &["column `b` has no observed cell", "--drop-empty"],
        ),
        ("norows.csv", b"a,b\n", &["no data rows"]),
        ("dup.csv", b"a,a\n1,2\n", &["both named `a`"]),
        ("latin1.csv", b"a,b\n1,caf\xe9\n", &["line 2", "UTF-8"]),
    ];
    for (name, bytes, needles) in cases {
        let p = d.path().join(name);
        std::fs::write(&p, bytes).unwrap();
        let o = aekit(&[
            "impute",
            "--data",
            p.to_str().unwrap(),
            "--out",
            o_str,
            "--epochs",
            "2",
        ]);
        if needles.is_empty() {
            // `x` among numbers makes a categorical column, which is fine.
            assert!(o.status.success(), "{name}: {}", stderr(&o));
            std::fs::remove_file(&out).unwrap();
            continue;
        }
        fails_with(&o, needles);
        assert!(stderr(&o).contains(name), "{name}: {}", stderr(&o));
        assert!(!out.exists(), "{name}: something was written");
    }
    // Text in a column declared continuous.
    let p = d.path().join("text.csv");
    fails_with(
        &aekit(&[
            "impute",
            "--data",
            p.to_str().unwrap(),
            "--continuous",
            "a",
            "--out",
            o_str,
        ]),
        &["data row 3", "column `a`", "`x` is not a number"],
    );
    // An empty column dropped on request.
    let p = d.path().join("empty.csv");
    let o = aekit(&[
        "impute",
        "--data",
        p.to_str().unwrap(),
        "--drop-empty",
        "--out",
        o_str,
        "--epochs",
        "2",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains("warning") && stderr(&o).contains("`b`"));
    assert_eq!(std::fs::read_to_string(&out).unwrap(), "a,b\n1,\n2,NA\n3,?\n");
}

#[test]
fn the_imputation_experiment_writes_its_tables_and_charts() {
    let d = tmp("impute-experiment");
    let out = d.path().join("ex");
    let o = aekit(&[
        "experiment",
        "imputation",
        "--datasets",
        "wine,diabetes",
        "--rates",
        "0.2",
        "--repeats",
        "1",
        "--no-baselines",
        "--epochs",
        "5",
        "--layers",
        "32",
        "--threads",
        "1",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let results = std::fs::read_to_string(out.join("results.csv")).unwrap();
    // mean and aekit, for MCAR 0.2 and MNAR, on two tables.
    assert_eq!(results.lines().count(), 1 + 2 * 2 * 2, "{results}");
    for f in [
        "summary.csv",
        "results.md",
        "rmse-wine.png",
        "rmse-diabetes.png",
        "masks/wine-truth.csv",
        "masks/wine-mcar-0.2-0.csv",
    ] {
        assert!(out.join(f).is_file(), "missing {f}");
    }
    // The masked table hides about a fifth of the cells.
    let masked = std::fs::read_to_string(out.join("masks/wine-mcar-0.2-0.csv")).unwrap();
    let cells: Vec<&str> = masked.lines().skip(1).flat_map(|l| l.split(',')).collect();
    let empty = cells.iter().filter(|c| c.is_empty()).count() as f64 / cells.len() as f64;
    assert!((0.15..0.25).contains(&empty), "{empty}");
}

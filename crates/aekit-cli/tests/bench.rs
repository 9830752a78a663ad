//! `aekit bench threads` and `aekit bench curve`.

mod common;

use common::{aekit, fails_with, stderr, tmp};
use std::path::Path;

#[test]
fn bench_threads_and_curve_write_csv_and_png() {
    let dir = tmp("bench");
    let d = dir.path();
    let out = d.join("threads");
    let o = aekit(&[
        "bench",
        "threads",
        "--data",
        "builtin",
        "--hidden",
        "16,40",
        "--threads",
        "1,2",
        "--examples",
        "150",
        "--rounds",
        "2",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains("GFLOP/s"));
    assert!(stderr(&o).contains("round 2: hogwild, 40 hidden, 2 thread(s)"));
    let csv = std::fs::read_to_string(out.join("bench.csv")).unwrap();
    let lines: Vec<&str> = csv.lines().collect();
    assert!(lines[0].starts_with("mode,hidden,threads,examples,rounds,seconds"));
    assert_eq!(lines.len(), 1 + 2 * 2 * 2, "2 modes × 2 sizes × 2 thread counts");
    assert!(lines[1..].iter().any(|l| l.starts_with("hogwild,40,2,150,2,")));
    // One thread against itself, round by round: exactly 1.
    for l in lines[1..].iter().filter(|l| l.split(',').nth(2) == Some("1")) {
        assert!(l.ends_with(",1.000,1.000,1.000"), "{l}");
    }
    assert_eq!(image::open(out.join("bench.png")).unwrap().width(), 900);
    two_core_checked(&out, &o);

    let out = d.join("curve");
    let o = aekit(&[
        "bench",
        "curve",
        "--data",
        "builtin",
        "--hidden",
        "24",
        "--threads",
        "1,2",
        "--examples",
        "120",
        "--epochs",
        "2",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let csv = std::fs::read_to_string(out.join("curve.csv")).unwrap();
    assert_eq!(
        csv.lines().count(),
        1 + 2 * 3,
        "epochs 0..=2 for each thread count"
    );
    assert!(stderr(&o).contains("speedup"));
    assert!(out.join("curve.png").is_file());
    two_core_checked(&out, &o);
}

/// A bench printed the machine's two-core scaling before and after its
/// timings and wrote both to two_core_check.csv.
fn two_core_checked(out: &Path, o: &std::process::Output) {
    for when in ["before", "after"] {
        assert!(
            stderr(o).contains(&format!("two-core check ({when})")),
            "{}",
            stderr(o)
        );
    }
    let csv = std::fs::read_to_string(out.join("two_core_check.csv")).unwrap();
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines[0], "when,alone_us,together_us_a,together_us_b,scaling");
    assert_eq!(lines.len(), 3, "{csv}");
    for (l, when) in lines[1..].iter().zip(["before", "after"]) {
        let f: Vec<&str> = l.split(',').collect();
        assert_eq!(f[0], when);
        let v: Vec<f64> = f[1..].iter().map(|x| x.parse().unwrap()).collect();
        assert!(v.iter().all(|x| x.is_finite() && *x > 0.0), "{l}");
        // The file holds what the bench printed. (No bound on the figure
        // itself: with other tests running, "alone" may be timed while the
        // machine is busier than "together".)
        let err = stderr(o);
        let line = err
            .lines()
            .find(|s| s.contains(&format!("two-core check ({when})")))
            .unwrap();
        let printed: f64 = line
            .split("scales ")
            .nth(1)
            .and_then(|r| r.split('×').next())
            .and_then(|x| x.parse().ok())
            .unwrap_or_else(|| panic!("no scaling in {line}"));
        assert!(
            (printed - v[3]).abs() <= 0.006,
            "printed {printed}, file {}",
            v[3]
        );
        assert!(v[3] > 0.0, "{l}");
    }
}

#[test]
fn bench_refuses_bad_arguments() {
    fails_with(
        &aekit(&["bench", "threads", "--data", "builtin", "--threads", "0"]),
        &["`threads`", "at least 1"],
    );
    fails_with(
        &aekit(&["bench", "threads", "--data", "builtin", "--examples", "20000"]),
        &["only 8000"],
    );
    fails_with(
        &aekit(&["bench", "curve", "--data", "builtin", "--parallel", "fast"]),
        &["unknown parallel mode"],
    );
    fails_with(
        &aekit(&["bench", "threads", "--data", "builtin", "--rounds", "0"]),
        &["`rounds`", "at least 1"],
    );
}

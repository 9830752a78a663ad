//! `aekit pca` on the built-in digits.

mod common;

use common::{aekit, fails_with, json, stderr, tmp};

#[test]
fn pca_writes_variance_errors_picture_and_a_model_that_loads() {
    let d = tmp("pca");
    let out = d.path().join("run");
    let o = aekit(&["pca", "--components", "60", "--out", out.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    for f in [
        "model.safetensors",
        "explained-variance.csv",
        "explained-variance.png",
        "error-vs-components.csv",
        "reconstructions.png",
        "summary.json",
    ] {
        assert!(out.join(f).is_file(), "missing {f}");
    }
    // The error falls as components are added; the variance ratio rises to
    // what the summary reports.
    let errs: Vec<f64> = std::fs::read_to_string(out.join("error-vs-components.csv"))
        .unwrap()
        .lines()
        .skip(1)
        .map(|l| l.split(',').nth(2).unwrap().parse().unwrap())
        .collect();
    assert!(errs.windows(2).all(|w| w[1] < w[0]), "{errs:?}");
    let s = json(&out.join("summary.json"));
    assert!((s["test_error"].as_f64().unwrap() - errs[errs.len() - 1]).abs() < 1e-3);
    let ratio = s["explained_variance_ratio"].as_f64().unwrap();
    assert!((0.5..1.0).contains(&ratio), "{ratio}");
    let m = aekit::models::pca::Pca::load(&out.join("model.safetensors")).unwrap();
    assert_eq!((m.k, m.dim()), (60, 784));
    // 1, 10 and 50 components beside the original (250 > 60 is left out).
    let png = image::open(out.join("reconstructions.png")).unwrap();
    assert_eq!(png.width(), 4 * (28 * 4 + 1) + 1);
    fails_with(
        &aekit(&[
            "pca",
            "--components",
            "785",
            "--out",
            d.path().join("x").to_str().unwrap(),
        ]),
        &["between 1 and the 784"],
    );
}

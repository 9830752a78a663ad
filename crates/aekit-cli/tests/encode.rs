//! `aekit encode`, `reconstruct` and `eval` on a model `aekit train` just wrote.

mod common;

use common::{aekit, json, stderr, tmp};

#[test]
fn train_then_encode_reconstruct_and_eval_on_builtin_data() {
    let dir = tmp("builtin");
    let d = dir.path();
    let run = d.join("run");
    let o = aekit(&[
        "train",
        "--train-size",
        "300",
        "--val-size",
        "100",
        "--epochs",
        "3",
        "--hidden",
        "16",
        "--noise",
        "saltpepper:0.1",
        "--out",
        run.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("held out as the test part"),
        "the default job says how it split"
    );
    for f in [
        "config.toml",
        "metrics.csv",
        "summary.json",
        "model.safetensors",
        "filters.png",
        "reconstructions.png",
    ] {
        assert!(run.join(f).is_file(), "missing {f}");
    }
    let s = json(&run.join("summary.json"));
    for k in [
        "train_seconds",
        "epochs",
        "n_train",
        "n_test",
        "test_loss",
        "test_squared_error",
        "test_cross_entropy",
    ] {
        assert!(s.get(k).is_some(), "summary.json lacks {k}");
    }
    assert_eq!(s["n_train"], 300);
    assert_eq!(s["n_test"], 2000);
    let metrics = std::fs::read_to_string(run.join("metrics.csv")).unwrap();
    assert!(metrics.starts_with("epoch,train_loss,val_loss,seconds\n"));
    assert_eq!(
        metrics.lines().count(),
        1 + s["epochs"].as_u64().unwrap() as usize
    );
    let cfg = std::fs::read_to_string(run.join("config.toml")).unwrap();
    assert!(
        cfg.contains("n_hid = 16")
            && cfg.contains("noise = \"saltpepper:0.1\"")
            && cfg.contains("n_vis = 784")
    );
    // 100 filters (16 exist) in one row of 16 tiles of 56+1 px, 3 rows of 10 digits.
    let f = image::open(run.join("filters.png")).unwrap();
    assert_eq!((f.width(), f.height()), (10 * 57 + 1, 2 * 57 + 1));
    let r = image::open(run.join("reconstructions.png")).unwrap();
    assert_eq!((r.width(), r.height()), (10 * 57 + 1, 3 * 57 + 1));

    let model = run.join("model.safetensors");
    let m = model.to_str().unwrap();
    let codes = d.join("codes.npy");
    let o = aekit(&["encode", "--model", m, "--out", codes.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    let (shape, values) = aekit::data::npy::read_npy(&codes).unwrap();
    assert_eq!(shape, vec![2000, 16]);
    assert!(values.iter().all(|v| (0.0..=1.0).contains(v)));

    let png = d.join("recon.png");
    let o = aekit(&[
        "reconstruct",
        "--model",
        m,
        "--out",
        png.to_str().unwrap(),
        "--count",
        "4",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(image::open(&png).unwrap().width(), 4 * 57 + 1);

    let o = aekit(&["eval", "--model", m]);
    assert!(o.status.success(), "{}", stderr(&o));
    let e: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let close = |a: &serde_json::Value, b: &serde_json::Value| {
        (a.as_f64().unwrap() - b.as_f64().unwrap()).abs() < 1e-6
    };
    assert!(
        close(&e["test_loss"], &s["test_loss"]),
        "eval agrees with the run's summary"
    );
    assert!(close(&e["test_squared_error"], &s["test_squared_error"]));
}

//! `aekit deep-ae` on the built-in digits: a small deep autoencoder with a
//! 2-d code, every stage, the pictures, the saved model and the figures in
//! the summary.

mod common;

use aekit::models::deep_ae::DeepAutoencoder;
use common::{aekit, fails_with, json, stderr, tmp};

#[test]
fn deep_ae_trains_every_stage_and_writes_the_pictures() {
    let d = tmp("deep-ae");
    let out = d.path().join("run");
    let o = aekit(&[
        "deep-ae",
        "--train-size",
        "1000",
        "--layers",
        "64,32,2",
        "--pretrain-epochs",
        "10",
        "--epochs",
        "60",
        "--batch",
        "50",
        "--threads",
        "2",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    for f in [
        "model.safetensors",
        "metrics.csv",
        "summary.json",
        "reconstructions.png",
        "filters.png",
        "codes.png",
        "config.toml",
    ] {
        assert!(out.join(f).is_file(), "missing {f}");
    }
    let metrics = std::fs::read_to_string(out.join("metrics.csv")).unwrap();
    let rows: Vec<Vec<&str>> = metrics.lines().skip(1).map(|l| l.split(',').collect()).collect();
    // Three RBMs of 10 epochs, then 60 epochs of fine-tuning whose loss falls.
    assert_eq!(rows.len(), 90, "{metrics}");
    for (i, r) in rows.iter().take(30).enumerate() {
        assert_eq!((r[0], r[1]), ("rbm", ["1", "2", "3"][i / 10]), "{metrics}");
    }
    let ft: Vec<f64> = rows[30..].iter().map(|r| r[3].parse().unwrap()).collect();
    assert!(rows[30..].iter().all(|r| r[0] == "finetune"));
    assert!(ft[59] < 0.9 * ft[0], "fine-tuning loss {ft:?}");
    // The summary's test error is the saved model's on the test images.
    let s = json(&out.join("summary.json"));
    let m = DeepAutoencoder::load(&out.join("model.safetensors")).unwrap();
    assert_eq!(m.sizes, vec![784, 64, 32, 2, 32, 64, 784]);
    let reported = s["test_error"].as_f64().unwrap();
    let o = aekit(&["eval", "--model", out.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    let e: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let err = e["test_squared_error"].as_f64().unwrap();
    assert!(
        (err - reported).abs() < 1e-3 * reported,
        "{err} against {reported}"
    );
    assert_eq!(
        e["n_test"].as_u64().unwrap() as usize,
        s["n_test"].as_u64().unwrap() as usize
    );
    // encode writes the 2-d codes of every test image.
    let npy = d.path().join("codes.npy");
    let o = aekit(&[
        "encode",
        "--model",
        out.to_str().unwrap(),
        "--out",
        npy.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stderr(&o).contains(&format!("wrote {}×2 codes", s["n_test"])),
        "{}",
        stderr(&o)
    );
    // Two linear code units beat two principal components (Hinton's Fig. 3
    // point: the codes separate where PCA's overlap), even this small.
    let pca = s["pca_test_error"].as_f64().unwrap();
    assert!(reported < pca, "deep AE {reported} against PCA-2 {pca}");
    // Fig. 2 layout: 10 digits (one per class) in three rows.
    let png = image::open(out.join("reconstructions.png")).unwrap();
    assert_eq!(
        (png.width(), png.height()),
        (10 * (28 * 3 + 1) + 1, 3 * (28 * 3 + 1) + 1)
    );
}

#[test]
fn deep_ae_refuses_bad_settings_before_writing() {
    let d = tmp("deep-ae-bad");
    let out = d.path().join("run");
    let o = aekit(&["deep-ae", "--layers", "64,0", "--out", out.to_str().unwrap()]);
    fails_with(&o, &["model.layers"]);
    let o = aekit(&[
        "deep-ae",
        "--pretrain",
        "boltzmann",
        "--out",
        out.to_str().unwrap(),
    ]);
    fails_with(&o, &["--pretrain", "rbm, dae or none"]);
    let o = aekit(&["deep-ae", "--cd-k", "0", "--out", out.to_str().unwrap()]);
    fails_with(&o, &["model.rbm.k"]);
    assert!(!out.exists(), "nothing written for bad settings");
}

//! `aekit cae`, `aekit ensemble` and `aekit experiment eager`.

mod common;

use common::{aekit, fails_with, generated_cifar10, json, stderr, tmp};

#[test]
fn cae_trains_checkpoints_and_classifies_on_builtin_data() {
    let dir = tmp("cae");
    let d = dir.path();
    let out = d.join("run");
    let o = aekit(&[
        "cae",
        "--train-size",
        "300",
        "--val-size",
        "100",
        "--epochs",
        "2",
        "--batch",
        "50",
        "--lr",
        "0.003",
        "--threads",
        "2",
        "--noise",
        "mask:0.2",
        "--classifier",
        "softmax",
        "--classifier-epochs",
        "5",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    for f in [
        "config.toml",
        "metrics.csv",
        "summary.json",
        "model.safetensors",
        "reconstructions.png",
        "checkpoints/epoch-1/model.safetensors",
        "checkpoints/epoch-2/model.safetensors",
        "checkpoints/epoch-2/state.safetensors",
    ] {
        assert!(out.join(f).is_file(), "missing {f}");
    }
    let metrics = std::fs::read_to_string(out.join("metrics.csv")).unwrap();
    assert_eq!(metrics.lines().count(), 3, "{metrics}");
    assert!(metrics.starts_with("epoch,train_loss,val_loss,seconds"));
    let s = json(&out.join("summary.json"));
    let err = s["test_error"].as_f64().unwrap();
    assert!(err > 0.0 && err < 60.0, "test error {err}");
    assert!(s["test_loss"].as_f64().unwrap() > 0.0);
    // A checkpoint is a complete model: the library loads it.
    let m = aekit::models::conv::ConvAutoencoder::load(&out.join("checkpoints/epoch-1/model.safetensors"))
        .unwrap();
    assert_eq!(m.net.code_shape(), [32, 7, 7]);
}

#[test]
fn cae_refuses_bad_architectures_and_mismatched_data() {
    let dir = tmp("cae-bad");
    let d = dir.path();
    let arch = d.join("arch.toml");
    std::fs::write(
        &arch,
        "input = [1, 28, 28]\n[[encoder]]\ntype = \"conv\"\nout = 4\nkernel = 3\n[[decoder]]\ntype = \"sigmoid\"\n",
    )
    .unwrap();
    let o = aekit(&[
        "cae",
        "--arch",
        arch.to_str().unwrap(),
        "--out",
        d.join("r").to_str().unwrap(),
    ]);
    fails_with(&o, &["arch.decoder", "input shape"]);
    assert!(!d.join("r").exists(), "no run folder for a refused spec");
    let o = aekit(&[
        "cae",
        "--arch",
        "cae-cifar",
        "--epochs",
        "1",
        "--out",
        d.join("r").to_str().unwrap(),
    ]);
    fails_with(&o, &["[3, 32, 32]", "784 values"]);
    let o = aekit(&["cae", "--arch", "no-such-preset"]);
    fails_with(&o, &["cae-mnist", "neither a preset"]);
    let o = aekit(&[
        "cae",
        "--arch",
        "cae-mnist-upsample",
        "--loss",
        "xent",
        "--lr",
        "-1",
    ]);
    fails_with(&o, &["train.lr", "positive"]);
    // One epoch whose last steps break the weights: its training loss,
    // summed before, is finite, its validation loss is not. A diverged
    // run, not a model with NaN test figures.
    let run = d.join("diverged");
    let o = aekit(&[
        "cae",
        "--epochs",
        "1",
        "--train-size",
        "50",
        "--val-size",
        "10",
        "--lr",
        "1e30",
        "--out",
        run.to_str().unwrap(),
    ]);
    fails_with(&o, &["train.lr", "diverged at epoch 1", "validation loss NaN"]);
    assert!(!run.join("model.safetensors").exists(), "no model saved");
}

#[test]
fn ensemble_saves_every_member_epoch_and_reports_both_errors() {
    let dir = tmp("ensemble");
    let d = dir.path();
    let out = d.join("run");
    let o = aekit(&[
        "ensemble",
        "--members",
        "3",
        "--train-size",
        "300",
        "--val-size",
        "100",
        "--epochs",
        "2",
        "--batch",
        "50",
        "--lr",
        "0.003",
        "--classifier-epochs",
        "5",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    for k in 0..3 {
        for f in [
            "checkpoints/epoch-1/model.safetensors",
            "checkpoints/epoch-2/state.safetensors",
            "metrics.csv",
            "model.safetensors",
        ] {
            assert!(
                out.join(format!("members/{k}/{f}")).is_file(),
                "member {k} lacks {f}"
            );
        }
    }
    let s = json(&out.join("summary.json"));
    for key in ["test_error", "vote_test_error"] {
        let e = s[key].as_f64().unwrap();
        assert!(e > 0.0 && e < 60.0, "{key} {e}");
    }
    assert_eq!(s["member_test_errors"].as_array().unwrap().len(), 3);
}

#[test]
fn eager_experiment_writes_its_table_and_plots() {
    let dir = tmp("eager");
    let d = dir.path();
    let out = d.join("run");
    let o = aekit(&[
        "experiment",
        "eager",
        "--data",
        "builtin",
        "--settings",
        "300/100",
        "--members",
        "2",
        "--mono-width",
        "2",
        "--epochs",
        "2",
        "--seeds",
        "2",
        "--test-size",
        "200",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    for f in [
        "eager.csv",
        "eager.md",
        "error-300-100.png",
        "recon-300-100.png",
        "summary.json",
    ] {
        assert!(out.join(f).is_file(), "missing {f}");
    }
    let csv = std::fs::read_to_string(out.join("eager.csv")).unwrap();
    // 2 seeds × 2 models × 2 points, plus the header.
    assert_eq!(csv.lines().count(), 9, "{csv}");
    let md = std::fs::read_to_string(out.join("eager.md")).unwrap();
    assert!(md.contains("| 300/100 | 2 |"), "{md}");
}

#[test]
fn cae_cifar_trains_on_a_generated_cifar10_folder_with_rgb_pictures() {
    let dir = tmp("cae-cifar");
    let d = dir.path();
    generated_cifar10(d);
    let out = d.join("run");
    let o = aekit(&[
        "cae",
        "--arch",
        "cae-cifar",
        "--data",
        d.to_str().unwrap(),
        "--val-size",
        "20",
        "--epochs",
        "2",
        "--batch",
        "20",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let png = image::open(out.join("reconstructions.png")).unwrap();
    assert_eq!(png.color(), image::ColorType::Rgb8, "RGB pictures for RGB data");
    let s = json(&out.join("summary.json"));
    assert_eq!(s["n_train"].as_u64(), Some(80));
    assert!(s["test_loss"].as_f64().unwrap() > 0.0);
}

#[test]
fn cae_reads_its_config_file_and_takes_all_cores_with_threads_0() {
    let dir = tmp("cae-config");
    let d = dir.path();
    let cfg = d.join("cae.toml");
    std::fs::write(
        &cfg,
        "arch = \"cae-mnist\"\n\n[data]\ntrain_size = 200\nval_size = 100\n\n\
         [model]\nnoise = \"mask:0.1\"\n\n[train]\nepochs = 1\nbatch = 50\nlr = 0.003\nthreads = 0\n\n\
         [classifier]\nkind = \"softmax\"\n\n[classifier.train]\nepochs = 3\n",
    )
    .unwrap();
    let out = d.join("run");
    let o = aekit(&[
        "cae",
        "--config",
        cfg.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let s = json(&out.join("summary.json"));
    // threads = 0 means every core, as for every other verb.
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    assert_eq!(s["threads"], cores as u64);
    assert_eq!(s["epochs"], 1);
    assert!(s["test_error"].as_f64().unwrap() < 90.0, "{s}");
    let written = std::fs::read_to_string(out.join("config.toml")).unwrap();
    assert!(
        written.contains("[classifier]") && written.contains("[train]"),
        "{written}"
    );
    std::fs::write(d.join("bad.toml"), "[classifier]\nkind = \"forest\"\n").unwrap();
    fails_with(
        &aekit(&["cae", "--config", d.join("bad.toml").to_str().unwrap()]),
        &["classifier.kind", "forest"],
    );
}

//! `aekit pretrain`, `aekit finetune` and `aekit experiment gradual-vs-stacked`.

mod common;

use common::{aekit, fails_with, json, stderr, tmp};

#[test]
fn pretrain_then_finetune_on_builtin_data() {
    let dir = tmp("stacked");
    let d = dir.path();
    let pre = d.join("pre");
    let o = aekit(&[
        "pretrain",
        "--layers",
        "32,16",
        "--schedule",
        "hybrid:0.5",
        "--noise",
        "mask:0.15",
        "--first-epochs",
        "1",
        "--layer-epochs",
        "2",
        "--train-size",
        "400",
        "--val-size",
        "100",
        "--lr",
        "0.05",
        "--out",
        pre.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let s = json(&pre.join("summary.json"));
    // 400 examples in batches of 20: layer 1 one epoch, layer 2 two stacked + one gradual.
    assert_eq!(s["updates"], 20 * (1 + 2 + 1));
    let metrics = std::fs::read_to_string(pre.join("metrics.csv")).unwrap();
    assert!(
        metrics.contains("2,stacked,2,") && metrics.contains("2,gradual,1,"),
        "{metrics}"
    );
    let ft = d.join("ft");
    let o = aekit(&[
        "finetune",
        "--model",
        pre.join("model.safetensors").to_str().unwrap(),
        "--train-size",
        "400",
        "--val-size",
        "100",
        "--epochs",
        "3",
        "--lr",
        "0.5",
        "--out",
        ft.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let s = json(&ft.join("summary.json"));
    assert!(s["test_error"].as_f64().unwrap() < 90.0 && s["valid_error"].is_number());
    assert_eq!(s["confusion"].as_array().unwrap().len(), 10);
    assert!(ft.join("curve.png").is_file() && ft.join("metrics.csv").is_file());
    fails_with(
        &aekit(&["pretrain", "--schedule", "hybrid:3"]),
        &["--schedule", "not in [0, 1]"],
    );
    fails_with(&aekit(&["pretrain", "--layers", "0"]), &["layers"]);
    let m0 = pre.join("model.safetensors");
    fails_with(
        &aekit(&["finetune", "--model", m0.to_str().unwrap(), "--lr-decay", "1.5"]),
        &["lr_decay"],
    );
    let m = pre.join("model.safetensors");
    fails_with(
        &aekit(&["eval", "--model", m.to_str().unwrap()]),
        &["aekit.stacked", "not a denoising autoencoder"],
    );
}

#[test]
fn gradual_vs_stacked_experiment_writes_its_tables() {
    let dir = tmp("gvs");
    let d = dir.path();
    let o = aekit(&[
        "experiment",
        "gradual-vs-stacked",
        "--data",
        "builtin",
        "--train-size",
        "400",
        "--layers",
        "16,8",
        "--first-epochs",
        "1",
        "--layer-epochs",
        "2",
        "--fractions",
        "0,0.5,1",
        "--finetune-sizes",
        "200,400",
        "--finetune-epochs",
        "2",
        "--splits",
        "1",
        "--out",
        d.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    // 400 is the whole training set: fine-tuned on all of it.
    assert!(stderr(&o).contains("fine-tuning on 400: the whole training set"));
    let pre = std::fs::read_to_string(d.join("pretrain.csv")).unwrap();
    assert_eq!(pre.lines().count(), 1 + 3);
    // Updates: layer 1 one epoch (20 batches), layer 2: gradual 2, hybrid 2+1, stacked 4 epochs.
    for (line, updates) in pre.lines().skip(1).zip([60, 80, 100]) {
        assert_eq!(
            line.split(',').nth(3).unwrap().parse::<u64>().unwrap(),
            updates,
            "{line}"
        );
        assert!(
            line.split(',').nth(6).unwrap().parse::<f64>().unwrap() > 0.0,
            "above the minimum: {line}"
        );
    }
    assert_eq!(
        std::fs::read_to_string(d.join("finetune.csv"))
            .unwrap()
            .lines()
            .count(),
        1 + 3 * 2
    );
    assert!(std::fs::read_to_string(d.join("results.md"))
        .unwrap()
        .contains("| 0.5 |"));
    assert!(d.join("relative-xent.png").is_file() && d.join("finetune-error.png").is_file());
    fails_with(
        &aekit(&["experiment", "gradual-vs-stacked", "--fractions", "1.5"]),
        &["fraction"],
    );
    // 6990 of the 7000 built-in training images cannot be class-balanced:
    // refused before any training, with nothing written.
    let bad = d.join("bad");
    fails_with(
        &aekit(&[
            "experiment",
            "gradual-vs-stacked",
            "--data",
            "builtin",
            "--finetune-sizes",
            "1000,6990",
            "--out",
            bad.to_str().unwrap(),
        ]),
        &["finetune_sizes", "6990", "class-balanced subset of 6990"],
    );
    assert!(!bad.join("pretrain.csv").exists());
}

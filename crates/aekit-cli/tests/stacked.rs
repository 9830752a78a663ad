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
        "--dropout",
        "0.2",
        "--out",
        ft.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let s = json(&ft.join("summary.json"));
    assert!(s["test_error"].as_f64().unwrap() < 90.0 && s["valid_error"].is_number());
    assert_eq!(s["confusion"].as_array().unwrap().len(), 10);
    // The run's config.toml keeps the dropout, so a resumed run drops too.
    let cfg = std::fs::read_to_string(ft.join("config.toml")).unwrap();
    assert!(cfg.contains("dropout = 0.2"), "{cfg}");
    assert!(ft.join("curve.png").is_file() && ft.join("metrics.csv").is_file());
    fails_with(
        &aekit(&["pretrain", "--schedule", "hybrid:3"]),
        &["--schedule", "not in [0, 1]"],
    );
    fails_with(&aekit(&["pretrain", "--layers", "0"]), &["layers"]);
    // Without validation examples every epoch runs (patience cannot stop
    // it) and the last weights are kept: a refit once the epochs are chosen.
    let refit = d.join("refit");
    let o = aekit(&[
        "finetune",
        "--model",
        pre.join("model.safetensors").to_str().unwrap(),
        "--train-size",
        "500",
        "--val-size",
        "0",
        "--epochs",
        "3",
        "--patience",
        "1",
        "--lr",
        "0.5",
        "--out",
        refit.to_str().unwrap(),
    ]);
    let err = stderr(&o);
    assert!(o.status.success(), "{err}");
    assert!(
        err.contains("after 3 epochs (no validation set: the last weights)"),
        "{err}"
    );
    let s = json(&refit.join("summary.json"));
    assert_eq!(
        (
            s["epochs"].as_u64(),
            s["best_epoch"].as_u64(),
            s["n_val"].as_u64()
        ),
        (Some(3), Some(3), Some(0))
    );
    assert!(
        s["valid_error"].is_null() && s["test_error"].as_f64().unwrap() < 90.0,
        "{s}"
    );
    assert!(refit.join("curve.png").is_file());
    let m0 = pre.join("model.safetensors");
    fails_with(
        &aekit(&["finetune", "--model", m0.to_str().unwrap(), "--lr-decay", "1.5"]),
        &["lr_decay"],
    );
    fails_with(
        &aekit(&["finetune", "--model", m0.to_str().unwrap(), "--dropout", "1.5"]),
        &["dropout", "1.5 is not a rate in [0, 1)"],
    );
    fails_with(
        &aekit(&["finetune", "--model", m0.to_str().unwrap(), "--average", "1.5"]),
        &["average", "1.5 is not a decay in [0, 1)"],
    );
    let m = pre.join("model.safetensors");
    fails_with(
        &aekit(&["eval", "--model", m.to_str().unwrap()]),
        &["is a stacked autoencoder", "needs a dense denoising autoencoder"],
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

#[test]
fn pretrain_and_finetune_read_data_model_and_train_sections() {
    let dir = tmp("stacked-config");
    let d = dir.path();
    let cfg = d.join("pre.toml");
    std::fs::write(
        &cfg,
        "[data]\ntrain_size = 300\nval_size = 100\n\n\
         [model]\nlayers = [24, 12]\nschedule = \"gradual\"\nnoise = [\"mask:0.2\"]\nlayer_epochs = 1\n\n\
         [train]\nepochs = 1\nbatch = 30\nlr = 0.05\n",
    )
    .unwrap();
    let pre = d.join("pre");
    let o = aekit(&[
        "pretrain",
        "--config",
        cfg.to_str().unwrap(),
        "--out",
        pre.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    // 300 examples in batches of 30: layer 1 one epoch, layer 2 one gradual epoch.
    assert_eq!(json(&pre.join("summary.json"))["updates"], 10 * 2);
    // The run's resolved config has the same sections, and runs again as given.
    let written = std::fs::read_to_string(pre.join("config.toml")).unwrap();
    for section in ["[data]", "[model]", "[train]"] {
        assert!(written.contains(section), "{written}");
    }
    let again = d.join("again");
    let o = aekit(&[
        "pretrain",
        "--config",
        pre.join("config.toml").to_str().unwrap(),
        "--out",
        again.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(json(&again.join("summary.json"))["updates"], 10 * 2);
    // A flag overrides the file: batches of 15 double the updates.
    let flags = d.join("flags");
    let o = aekit(&[
        "pretrain",
        "--config",
        cfg.to_str().unwrap(),
        "--batch",
        "15",
        "--out",
        flags.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(json(&flags.join("summary.json"))["updates"], 20 * 2);
    // Unknown keys, and a loop given twice, are refused naming the file.
    std::fs::write(d.join("bad.toml"), "[model]\nlayerz = [3]\n").unwrap();
    fails_with(
        &aekit(&["pretrain", "--config", d.join("bad.toml").to_str().unwrap()]),
        &["bad.toml", "layerz"],
    );
    std::fs::write(
        d.join("twice.toml"),
        "[model.train]\nepochs = 2\n[train]\nepochs = 3\n",
    )
    .unwrap();
    fails_with(
        &aekit(&[
            "finetune",
            "--model",
            "x",
            "--config",
            d.join("twice.toml").to_str().unwrap(),
        ]),
        &["twice.toml", "[train] section"],
    );
    // Fine-tuning takes its [model] and [train] from a file too.
    let ft_cfg = d.join("ft.toml");
    std::fs::write(
        &ft_cfg,
        "[data]\ntrain_size = 300\nval_size = 100\n[model]\nlr_decay = 0.9\n[train]\nepochs = 2\npatience = 0\n",
    )
    .unwrap();
    let ft = d.join("ft");
    let o = aekit(&[
        "finetune",
        "--model",
        pre.join("model.safetensors").to_str().unwrap(),
        "--config",
        ft_cfg.to_str().unwrap(),
        "--out",
        ft.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(json(&ft.join("summary.json"))["epochs"], 2);
    // Fine-tuning may not write over the model it starts from.
    fails_with(
        &aekit(&[
            "finetune",
            "--model",
            pre.join("model.safetensors").to_str().unwrap(),
            "--config",
            ft_cfg.to_str().unwrap(),
            "--out",
            pre.to_str().unwrap(),
        ]),
        &["holds the pretrained model", "would overwrite"],
    );
}

#[test]
fn pretrain_refuses_what_it_would_ignore_and_files_it_cannot_read() {
    let dir = tmp("stacked-bad");
    let d = dir.path();
    // More corruptions than layers used to be dropped silently.
    fails_with(
        &aekit(&[
            "pretrain",
            "--layers",
            "8,4",
            "--noise",
            "mask:0.1,mask:0.2,mask:0.3",
        ]),
        &["noise", "3 corruptions for 2 layers"],
    );
    // No first-layer epochs would write an untrained model.
    fails_with(
        &aekit(&["pretrain", "--first-epochs", "0"]),
        &["train.epochs", "at least 1"],
    );
    // The default corruptions follow a --layers given without --noise.
    let out = d.join("two");
    let o = aekit(&[
        "pretrain",
        "--layers",
        "8,4",
        "--first-epochs",
        "1",
        "--layer-epochs",
        "1",
        "--train-size",
        "100",
        "--val-size",
        "20",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    // A model path that is not a regular file is refused, not read without end.
    fails_with(
        &aekit(&[
            "finetune",
            "--model",
            "/dev/zero",
            "--out",
            d.join("ft").to_str().unwrap(),
        ]),
        &["/dev/zero", "not a regular file"],
    );
    // A folder is read as a run: its model, or its last checkpoint's.
    fails_with(
        &aekit(&["eval", "--model", d.to_str().unwrap()]),
        &["folder with no model.safetensors and no checkpoint"],
    );
}

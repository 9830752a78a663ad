//! `aekit train`: config files and flags, refused settings, the parallel modes
//! and L-BFGS.

mod common;

use common::{aekit, aekit_env, fails_with, json, stderr, tmp};

#[test]
fn config_file_then_flags_override_it() {
    let dir = tmp("config");
    let d = dir.path();
    let cfg = d.join("c.toml");
    std::fs::write(
        &cfg,
        "[model]\nn_hid = 12\nloss = \"squared\"\n[train]\nepochs = 1\nbatch = 7\n",
    )
    .unwrap();
    let run = d.join("run");
    let o = aekit(&[
        "train",
        "--config",
        cfg.to_str().unwrap(),
        "--batch",
        "5",
        "--train-size",
        "100",
        "--val-size",
        "0",
        "--untied",
        "--out",
        run.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let resolved = std::fs::read_to_string(run.join("config.toml")).unwrap();
    assert!(
        resolved.contains("n_hid = 12")
            && resolved.contains("batch = 5")
            && resolved.contains("tied = false")
    );
    assert!(resolved.contains("loss = \"squared\""));
    let s = json(&run.join("summary.json"));
    assert_eq!(s["updates"], 20, "100 examples in batches of 5");
    assert!(s["best_val_loss"].is_null());
}

#[test]
fn unknown_config_key_is_refused() {
    let dir = tmp("badkey");
    let d = dir.path();
    let cfg = d.join("bad.toml");
    std::fs::write(&cfg, "[train]\nepochs = 2\nlearning_rate = 0.1\n").unwrap();
    fails_with(
        &aekit(&["train", "--config", cfg.to_str().unwrap()]),
        &["bad.toml", "unknown field `learning_rate`"],
    );
}

#[test]
fn negative_learning_rate_and_zero_hidden_units_are_refused() {
    fails_with(
        &aekit(&["train", "--lr", "-0.1"]),
        &["train.lr", "-0.1", "positive"],
    );
    fails_with(&aekit(&["train", "--hidden", "0"]), &["n_hid", "at least 1"]);
    fails_with(
        &aekit(&["train", "--noise", "mask:1.5"]),
        &["--noise", "not in [0, 1]"],
    );
    fails_with(&aekit(&["train", "--loss", "hinge"]), &["--loss", "unknown loss"]);
    fails_with(
        &aekit(&["train", "--val-size", "8000"]),
        &["val_size", "no training examples"],
    );
}

#[test]
fn train_with_two_threads_in_each_parallel_mode() {
    let dir = tmp("parallel");
    let d = dir.path();
    // `aekit train` on 2 threads in `mode` with `batch`, then `extra`.
    let train = |mode: &str, batch: &str, out: &std::path::Path, extra: &[&str]| {
        let mut args = vec![
            "train",
            "--threads",
            "2",
            "--parallel",
            mode,
            "--batch",
            batch,
            "--out",
            out.to_str().unwrap(),
        ];
        args.extend_from_slice(extra);
        aekit(&args)
    };
    for (mode, batch) in [
        ("split", "1"),
        ("rows", "1"),
        ("balanced", "1"),
        ("hogwild", "1"),
        ("minibatch", "10"),
        ("gemm", "10"),
    ] {
        let run = d.join(mode);
        let small = [
            "--train-size",
            "200",
            "--val-size",
            "50",
            "--epochs",
            "1",
            "--hidden",
            "32",
        ];
        let o = train(mode, batch, &run, &small);
        assert!(o.status.success(), "{mode}: {}", stderr(&o));
        assert!(json(&run.join("summary.json"))["test_loss"]
            .as_f64()
            .unwrap()
            .is_finite());
    }
    for mode in ["split", "balanced"] {
        let out = d.join(format!("refused-{mode}"));
        let o = train(mode, "10", &out, &[]);
        fails_with(&o, &["train.parallel", mode, "batch 1"]);
        assert!(!out.exists(), "a refused run writes nothing");
    }
}

#[test]
fn lbfgs_trains_the_denoising_autoencoder_too() {
    let dir = tmp("lbfgs");
    let d = dir.path();
    let run = d.join("run");
    let o = aekit(&[
        "train",
        "--optimizer",
        "lbfgs",
        "--max-iter",
        "15",
        "--train-size",
        "200",
        "--val-size",
        "0",
        "--hidden",
        "16",
        "--out",
        run.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let s = json(&run.join("summary.json"));
    assert_eq!(s["optimizer"], "lbfgs");
    assert!(s["iterations"].as_u64().unwrap() >= 10, "{s}");
    assert!(s["test_loss"].as_f64().unwrap() < 200.0, "{s}");
    fails_with(
        &aekit(&["train", "--kind", "sparse", "--optimizer", "sgd"]),
        &["sparse autoencoder trains with lbfgs"],
    );
    fails_with(
        &aekit(&["train", "--kind", "sparse", "--sparsity", "1.5"]),
        &["sparsity_target"],
    );
}

#[test]
fn a_run_directory_is_never_overwritten_unless_forced() {
    let dir = tmp("one-run");
    let d = dir.path();
    let out = d.join("run");
    let args = |hidden: &'static str, extra: &[&'static str]| -> Vec<String> {
        let mut v: Vec<String> = [
            "train",
            "--epochs",
            "1",
            "--train-size",
            "200",
            "--val-size",
            "50",
            "--hidden",
            hidden,
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        v.extend(["--out".to_string(), out.to_str().unwrap().to_string()]);
        v.extend(extra.iter().map(|s| s.to_string()));
        v
    };
    let run = |a: Vec<String>| aekit(&a.iter().map(String::as_str).collect::<Vec<_>>());
    let o = run(args("8", &[]));
    assert!(o.status.success(), "{}", stderr(&o));
    let model = std::fs::read(out.join("model.safetensors")).unwrap();
    // A second run into the same folder is refused, and the first is intact.
    let o = run(args("24", &[]));
    fails_with(&o, &["already holds a run", "--force"]);
    assert_eq!(std::fs::read(out.join("model.safetensors")).unwrap(), model);
    assert!(!out.join(".lock").exists(), "a finished run leaves no lock");
    // --force replaces it, stale files of a run included; a file no run
    // writes, such as the data it was given, is kept and named.
    std::fs::create_dir_all(out.join("checkpoints/epoch-99")).unwrap();
    std::fs::write(out.join("notes.txt"), b"mine").unwrap();
    let o = run(args("24", &["--force"]));
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(!out.join("checkpoints/epoch-99").exists());
    assert_eq!(std::fs::read(out.join("notes.txt")).unwrap(), b"mine");
    assert!(stderr(&o).contains("--force: kept notes.txt"), "{}", stderr(&o));
    let config = std::fs::read_to_string(out.join("config.toml")).unwrap();
    assert!(config.contains("n_hid = 24"), "{config}");
}

#[test]
fn sizes_the_machine_cannot_hold_are_refused_before_allocating() {
    let dir = tmp("huge");
    let d = dir.path();
    let out = d.join("run");
    let o = aekit(&["train", "--hidden", "1000000000", "--out", out.to_str().unwrap()]);
    fails_with(&o, &["model.n_hid", "GiB", "more than this machine"]);
    assert!(!out.exists(), "nothing written");
    let o = aekit(&[
        "pretrain",
        "--layers",
        "1000000000",
        "--out",
        out.to_str().unwrap(),
    ]);
    fails_with(&o, &["model.layers", "GiB"]);
    let arch = d.join("wide.toml");
    std::fs::write(
        &arch,
        "input = [1, 28, 28]\nencoder = [ { type = \"conv\", out = 100000, kernel = 3, pad = 1 }, { type = \"relu\" } ]\n\
         decoder = [ { type = \"conv\", out = 1, kernel = 3, pad = 1 }, { type = \"sigmoid\" } ]\n",
    )
    .unwrap();
    let o = aekit(&[
        "cae",
        "--arch",
        arch.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    fails_with(&o, &["train.batch", "GiB"]);
    assert!(!out.exists(), "nothing written");
}

#[test]
fn threads_beyond_the_cores_are_refused_for_lock_step_modes_and_capped_elsewhere() {
    let dir = tmp("threads");
    let d = dir.path();
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let out = d.join("rows");
    let o = aekit(&[
        "train",
        "--batch",
        "1",
        "--lr",
        "0.01",
        "--threads",
        "100000",
        "--parallel",
        "rows",
        "--out",
        out.to_str().unwrap(),
    ]);
    fails_with(&o, &["train.threads", "100000", "cores"]);
    assert!(!out.exists(), "nothing written");
    let out = d.join("capped");
    let o = aekit(&[
        "train",
        "--epochs",
        "1",
        "--train-size",
        "200",
        "--val-size",
        "50",
        "--hidden",
        "8",
        "--threads",
        "100000",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains("capped"), "{}", stderr(&o));
    assert_eq!(json(&out.join("summary.json"))["threads"], cores as u64);
}

#[test]
fn gradient_free_training_lowers_the_validation_loss_on_digits() {
    // The GA (seed chains) and the ES on 1000 built-in digits, a 784→16 DAE.
    for (opt, extra) in [
        ("ga", &["--sigma", "0.05"][..]),
        ("es", &["--sigma", "0.05", "--lr", "0.01"][..]),
    ] {
        let d = tmp(&format!("train-{opt}"));
        let out = d.path().join("run");
        let mut args = vec![
            "train",
            "--optimizer",
            opt,
            "--hidden",
            "16",
            "--epochs",
            "6",
            "--batch",
            "50",
            "--train-size",
            "1000",
            "--val-size",
            "200",
            "--threads",
            "2",
            "--out",
            out.to_str().unwrap(),
        ];
        args.extend_from_slice(extra);
        let o = aekit(&args);
        assert!(o.status.success(), "{}", stderr(&o));
        let val: Vec<f64> = std::fs::read_to_string(out.join("metrics.csv"))
            .unwrap()
            .lines()
            .skip(1)
            .map(|l| l.split(',').nth(2).unwrap().parse().unwrap())
            .collect();
        assert_eq!(val.len(), 6);
        assert!(val[5] < val[0] - 10.0, "{opt}: validation loss {val:?}");
        let s = json(&out.join("summary.json"));
        assert_eq!(s["optimizer"], opt);
        assert_eq!(s["generations"], 60);
        // 32 individuals (GA) or 16 antithetic pairs (ES) a generation, 50 examples each.
        assert_eq!(s["examples_evaluated"].as_u64().unwrap(), 60 * 32 * 50);
    }
}

#[test]
fn ga_vs_sgd_experiment_writes_every_method_and_chart() {
    let d = tmp("ga-vs-sgd");
    let out = d.path().join("run");
    let o = aekit(&[
        "experiment",
        "ga-vs-sgd",
        "--quick",
        "--seconds",
        "1",
        "--train-size",
        "500",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    for f in [
        "points.csv",
        "results.md",
        "loss-vs-seconds-64.png",
        "loss-vs-examples-64.png",
        "summary.json",
    ] {
        assert!(out.join(f).is_file(), "missing {f}");
    }
    let csv = std::fs::read_to_string(out.join("points.csv")).unwrap();
    for m in ["sgd", "ga", "es"] {
        let losses: Vec<f64> = csv
            .lines()
            .filter(|l| l.split(',').nth(1) == Some(m))
            .map(|l| l.rsplit(',').next().unwrap().parse().unwrap())
            .collect();
        assert!(losses.len() >= 2, "{m}: {csv}");
        // Every method starts from the same weights.
        assert_eq!(
            losses[0],
            csv.lines()
                .nth(1)
                .unwrap()
                .rsplit(',')
                .next()
                .unwrap()
                .parse::<f64>()
                .unwrap()
        );
        assert!(
            losses[losses.len() - 1] < losses[0],
            "{m} lowered the test loss: {losses:?}"
        );
    }
    let s = json(&out.join("summary.json"));
    assert!(s["ga_fitness_seconds"]["speedup"].as_f64().unwrap() > 0.0);
}

#[test]
fn a_gpu_that_cannot_be_used_is_a_clear_error() {
    // Without the `cuda` feature the setting is refused when read; with it,
    // on a machine without CUDA, opening the GPU says what is missing. A
    // device name that is not one is refused either way.
    let dir = tmp("device");
    let run = dir.path().join("run");
    let o = aekit(&[
        "train",
        "--device",
        "cuda",
        "--epochs",
        "1",
        "--train-size",
        "100",
        "--val-size",
        "0",
        "--out",
        run.to_str().unwrap(),
    ]);
    let e = stderr(&o);
    if cfg!(feature = "cuda") && o.status.success() {
        return; // a machine with a GPU
    }
    assert!(!o.status.success());
    assert!(
        e.contains("`cuda` feature") || e.contains("GPU: cannot use cuda:0"),
        "{e}"
    );
    assert!(!e.contains("panicked"), "{e}");
    let o = aekit(&["train", "--device", "tpu", "--epochs", "1"]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("unknown device `tpu`"), "{}", stderr(&o));
}

/// The element-wise kernels (the sigmoid, the cross-entropy, the gradient's
/// scaling, the SGD and Adam updates, the momentum step fused into a weight
/// gradient's product) are compiled for AVX-512, AVX2 + FMA
/// and portable code (on x86 with FMA where the CPU has it: the same
/// operations, as Rust never contracts a·b + c into a fused multiply-add),
/// and `AEKIT_ISA` holds the choice lower. Each gives the
/// same bits: training writes the same model under every setting (GEMMs
/// are faer's whatever the setting, so any difference is ours).
#[test]
fn every_instruction_set_trains_the_same_bits() {
    let d = tmp("isa");
    // The gradual schedule trains the deep trunk, whose momentum step is
    // fused into its weight gradients' products.
    let runs: [&[&str]; 4] = [
        &["train", "--hidden", "64", "--momentum", "0.9"],
        &["train", "--hidden", "64", "--optimizer", "adam", "--lr", "0.01"],
        &[
            "pretrain",
            "--layers",
            "64,32",
            "--schedule",
            "stacked",
            "--momentum",
            "0.9",
        ],
        &[
            "pretrain",
            "--layers",
            "64,32",
            "--schedule",
            "gradual",
            "--momentum",
            "0.9",
        ],
    ];
    for (i, run) in runs.iter().enumerate() {
        let mut models = Vec::new();
        for isa in ["portable", "avx2", "avx512"] {
            let out = d.path().join(format!("{i}-{isa}"));
            let mut args = run.to_vec();
            args.extend([
                "--data",
                "builtin",
                "--train-size",
                "600",
                "--val-size",
                "100",
                "--batch",
                "20",
                "--epochs",
                "2",
                "--threads",
                "1",
                "--out",
                out.to_str().unwrap(),
            ]);
            let o = aekit_env(&args, &[("AEKIT_ISA", isa)]);
            assert!(o.status.success(), "{run:?} {isa}: {}", stderr(&o));
            models.push(std::fs::read(out.join("model.safetensors")).unwrap());
        }
        assert!(
            models.windows(2).all(|w| w[0] == w[1]),
            "{run:?}: the instruction sets disagree"
        );
    }
}

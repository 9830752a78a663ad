//! Runs that never lose work: every training verb checkpoints each epoch,
//! and a run killed at a checkpoint (`kill -9`, here by the fault-injection
//! variable) or stopped by SIGTERM and then resumed ends bit-for-bit as the
//! same run left alone.

mod common;

use common::{aekit, aekit_env, fails_with, shared_datasets, stderr, tmp};
use std::path::Path;

const KILL: &str = aekit::run::dir::KILL_AFTER;

/// `metrics.csv` without its last column (seconds differ between runs).
fn rows(dir: &Path, file: &str) -> Vec<String> {
    std::fs::read_to_string(dir.join(file))
        .unwrap()
        .lines()
        .map(|l| l.rsplit_once(',').unwrap().0.to_string())
        .collect()
}

fn bytes(p: &Path) -> Vec<u8> {
    std::fs::read(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// Runs `args` (a training verb) to the end into `full`; then again into
/// `cut`, killed right after checkpoint `kill_at`; then resumes `cut`.
/// The two runs' `files` must be equal byte for byte, and their metrics
/// equal but for the seconds.
fn killed_and_resumed_equals_uninterrupted(
    verb: &str,
    args: &[&str],
    kill_at: usize,
    files: &[&str],
    metrics: &[&str],
) {
    let dir = tmp(&format!("resume-{verb}"));
    let (full, cut) = (dir.path().join("full"), dir.path().join("cut"));
    let with = |out: &Path| -> Vec<String> {
        let mut a = vec![verb.to_string()];
        a.extend(args.iter().map(|s| s.to_string()));
        a.extend(["--out".into(), out.to_str().unwrap().into()]);
        a
    };
    let a = with(&full);
    let o = aekit(&a.iter().map(String::as_str).collect::<Vec<_>>());
    assert!(o.status.success(), "{}", stderr(&o));
    let a = with(&cut);
    let k = kill_at.to_string();
    let o = aekit_env(&a.iter().map(String::as_str).collect::<Vec<_>>(), &[(KILL, &k)]);
    assert!(!o.status.success(), "the run should have died at checkpoint {k}");
    assert!(!cut.join("summary.json").exists() && !cut.join("model.safetensors").exists());
    // An ensemble's members keep their own checkpoints (the first member
    // to write checkpoint `kill_at` dies with the run).
    let folders = if verb == "ensemble" {
        vec![cut.join("members/0"), cut.join("members/1")]
    } else {
        vec![cut.clone()]
    };
    let held = folders
        .into_iter()
        .find(|f| {
            aekit::run::dir::checkpoints(f)
                .unwrap()
                .iter()
                .any(|c| c.0 == kill_at)
        })
        .expect("checkpoint written before the kill");
    // A checkpoint being written when the process died is left half-made;
    // resuming must not take it.
    let partial = held.join(format!("checkpoints/.epoch-{}.partial", kill_at + 1));
    std::fs::create_dir_all(&partial).unwrap();
    std::fs::write(partial.join("state.safetensors"), b"torn").unwrap();
    let o = aekit(&[verb, "--resume", cut.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    if verb != "ensemble" {
        assert!(
            stderr(&o).contains(&format!("resuming from checkpoint {kill_at}")),
            "{}",
            stderr(&o)
        );
    }
    for f in files {
        assert!(
            bytes(&full.join(f)) == bytes(&cut.join(f)),
            "{verb}: {f} differs after the resume at checkpoint {kill_at}"
        );
    }
    for m in metrics {
        assert_eq!(rows(&full, m), rows(&cut, m), "{verb}: {m}");
    }
}

#[test]
fn train_resumed_after_a_kill_is_bit_for_bit_the_same() {
    let data = common::idx_dir("resume-train-data", false);
    let d = data.path().to_str().unwrap();
    // The fused per-example kernel, then minibatch Adam (moments saved).
    for extra in [
        &[][..],
        &["--optimizer", "adam", "--batch", "8", "--lr", "0.01"][..],
    ] {
        let mut args = vec![
            "--data",
            d,
            "--val-size",
            "12",
            "--epochs",
            "6",
            "--hidden",
            "8",
            "--threads",
            "1",
        ];
        args.extend_from_slice(extra);
        killed_and_resumed_equals_uninterrupted("train", &args, 3, &["model.safetensors"], &["metrics.csv"]);
    }
}

#[test]
fn genetic_and_evolution_strategy_runs_resume_bit_for_bit() {
    let data = common::idx_dir("resume-evolve-data", false);
    let d = data.path().to_str().unwrap();
    for extra in [
        &["--optimizer", "ga", "--sigma", "0.05", "--population", "6"][..],
        &[
            "--optimizer",
            "es",
            "--sigma",
            "0.05",
            "--population",
            "6",
            "--lr",
            "0.01",
        ][..],
    ] {
        let mut args = vec![
            "--data",
            d,
            "--val-size",
            "12",
            "--epochs",
            "4",
            "--hidden",
            "8",
            "--batch",
            "10",
            "--threads",
            "2",
        ];
        args.extend_from_slice(extra);
        killed_and_resumed_equals_uninterrupted("train", &args, 2, &["model.safetensors"], &["metrics.csv"]);
    }
}

#[test]
fn pretrain_resumed_inside_and_across_layers_is_bit_for_bit_the_same() {
    let data = common::idx_dir("resume-pretrain-data", false);
    let d = data.path().to_str().unwrap();
    let with = |schedule: &[&'static str]| {
        let mut a = vec![
            "--data",
            d,
            "--val-size",
            "12",
            "--layers",
            "16,12,8",
            "--epochs",
            "2",
            "--batch",
            "6",
            "--threads",
            "1",
        ];
        a.extend_from_slice(schedule);
        a
    };
    // Epochs: layer 1 stacked 1-2; layer 2 stacked 3-4, gradual 5-6; layer 3
    // stacked 7-8, gradual 9-10. Killed at the end of layer 1, inside layer
    // 2's gradual phase, and between layer 2 and layer 3.
    let hybrid = with(&["--schedule", "hybrid:0.5", "--layer-epochs", "4"]);
    // Untied stacked layers: each layer 2 epochs (1-2, 3-4, 5-6), killed
    // inside layer 2 and between layers 2 and 3; the untied decoders are in
    // the checkpoint and the model file.
    let untied = with(&["--schedule", "stacked", "--untied", "--layer-epochs", "1"]);
    for (args, at) in [
        (&hybrid, 2),
        (&hybrid, 5),
        (&hybrid, 6),
        (&untied, 3),
        (&untied, 4),
    ] {
        killed_and_resumed_equals_uninterrupted(
            "pretrain",
            args,
            at,
            &["model.safetensors"],
            &["metrics.csv"],
        );
    }
}

#[test]
fn deep_ae_resumed_inside_and_across_stages_is_bit_for_bit_the_same() {
    let base = [
        "--train-size",
        "200",
        "--layers",
        "24,12,3",
        "--pretrain-epochs",
        "2",
        "--epochs",
        "3",
        "--threads",
        "1",
    ];
    // Epochs: layers 1-3 pretrained in 1-2, 3-4, 5-6; fine-tuning 7-9.
    // RBMs killed inside the first, at its end and in fine-tuning; the DAE
    // stack inside its second layer; L-BFGS fine-tuning in its middle.
    let cases: [(&[&str], &[usize]); 3] = [
        (&["--pretrain", "rbm", "--batch", "50"], &[1, 2, 7]),
        (&["--pretrain", "dae", "--batch", "50"], &[3]),
        (
            &["--pretrain", "none", "--optimizer", "lbfgs", "--batch", "100"],
            &[1],
        ),
    ];
    for (extra, kills) in cases {
        let mut args = base.to_vec();
        args.extend_from_slice(extra);
        for &at in kills {
            killed_and_resumed_equals_uninterrupted(
                "deep-ae",
                &args,
                at,
                &["model.safetensors"],
                &["metrics.csv"],
            );
        }
    }
}

#[test]
fn rbm_pretraining_resumed_inside_a_layer_is_bit_for_bit_the_same() {
    let data = common::idx_dir("resume-pretrain-rbm-data", false);
    let d = data.path().to_str().unwrap();
    let args = [
        "--data",
        d,
        "--val-size",
        "12",
        "--layers",
        "16,8",
        "--schedule",
        "rbm",
        "--epochs",
        "2",
        "--layer-epochs",
        "2",
        "--threads",
        "1",
    ];
    // Layer 1: epochs 1-2 (an RBM each); layer 2: epochs 3-6 (the stacked
    // schedule's 2n). Killed inside layer 2.
    killed_and_resumed_equals_uninterrupted("pretrain", &args, 4, &["model.safetensors"], &["metrics.csv"]);
    let dir = tmp("pretrain-rbm-phases");
    let out = dir.path().join("run");
    let mut a = args.to_vec();
    a.extend(["--out", out.to_str().unwrap()]);
    let mut full = vec!["pretrain"];
    full.extend(a);
    let o = aekit(&full);
    assert!(o.status.success(), "{}", stderr(&o));
    let phases: Vec<String> = rows(&out, "metrics.csv")
        .iter()
        .skip(1)
        .map(|r| r.split(',').take(2).collect::<Vec<_>>().join(","))
        .collect();
    assert_eq!(phases, ["1,rbm", "1,rbm", "2,rbm", "2,rbm", "2,rbm", "2,rbm"]);
}

#[test]
fn finetune_resumed_after_a_kill_is_bit_for_bit_the_same() {
    let data = common::idx_dir("resume-finetune-data", false);
    let d = data.path().to_str().unwrap();
    let dir = tmp("resume-finetune");
    let pre = dir.path().join("pre");
    let o = aekit(&[
        "pretrain",
        "--data",
        d,
        "--val-size",
        "12",
        "--layers",
        "16,8",
        "--epochs",
        "2",
        "--layer-epochs",
        "2",
        "--out",
        pre.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let model = pre.to_str().unwrap();
    let args = [
        "--model",
        model,
        "--data",
        d,
        "--val-size",
        "12",
        "--epochs",
        "5",
        "--batch",
        "6",
        "--momentum",
        "0.5",
        "--lr-decay",
        "0.9",
        "--threads",
        "1",
    ];
    killed_and_resumed_equals_uninterrupted("finetune", &args, 2, &["model.safetensors"], &["metrics.csv"]);
    // With dropout the masks come from the checkpointed stream too.
    let with_dropout = [&args[..], &["--dropout", "0.3"]].concat();
    killed_and_resumed_equals_uninterrupted(
        "finetune",
        &with_dropout,
        2,
        &["model.safetensors"],
        &["metrics.csv"],
    );
    // With weight averaging the average and its count are checkpointed.
    let with_average = [&args[..], &["--average", "0.9"]].concat();
    killed_and_resumed_equals_uninterrupted(
        "finetune",
        &with_average,
        2,
        &["model.safetensors"],
        &["metrics.csv"],
    );
}

#[test]
fn cae_and_ensemble_resumed_after_a_kill_are_bit_for_bit_the_same() {
    let mut args = vec![
        "--train-size",
        "150",
        "--val-size",
        "50",
        "--batch",
        "50",
        "--lr",
        "0.003",
        "--threads",
        "1",
    ];
    let cae = [&args[..], &["--epochs", "3"]].concat();
    killed_and_resumed_equals_uninterrupted("cae", &cae, 2, &["model.safetensors"], &["metrics.csv"]);
    args.extend(["--members", "2", "--epochs", "2", "--classifier-epochs", "2"]);
    killed_and_resumed_equals_uninterrupted(
        "ensemble",
        &args,
        1,
        &["members/0/model.safetensors", "members/1/model.safetensors"],
        &["members/0/metrics.csv", "members/1/metrics.csv"],
    );
}

#[test]
fn sigterm_stops_at_a_step_keeps_the_checkpoint_and_says_how_to_resume() {
    let data = common::idx_dir("resume-signal-data", false);
    let d = data.path().to_str().unwrap();
    let dir = tmp("resume-signal");
    let (full, cut) = (dir.path().join("full"), dir.path().join("cut"));
    let args = |out: &Path| {
        vec![
            "train".to_string(),
            "--data".into(),
            d.into(),
            "--val-size".into(),
            "12".into(),
            "--epochs".into(),
            "400".into(),
            "--hidden".into(),
            "8".into(),
            "--patience".into(),
            "0".into(),
            "--threads".into(),
            "1".into(),
            "--out".into(),
            out.to_str().unwrap().into(),
        ]
    };
    let o = aekit(&args(&full).iter().map(String::as_str).collect::<Vec<_>>());
    assert!(o.status.success(), "{}", stderr(&o));
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_aekit"))
        .args(args(&cut))
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let t = std::time::Instant::now();
    while aekit::run::dir::checkpoints(&cut).map_or(true, |c| c.len() < 2) {
        assert!(t.elapsed().as_secs() < 60, "no checkpoint written");
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    let pid = child.id().to_string();
    let sent = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap();
    assert!(sent.success());
    let o = child.wait_with_output().unwrap();
    let e = stderr(&o);
    if o.status.success() {
        // The run finished before the signal arrived: nothing to test.
        eprintln!("skipped: the run ended before SIGTERM");
        return;
    }
    assert_eq!(o.status.code(), Some(130), "{e}");
    assert!(e.contains("interrupted") && e.contains("--resume"), "{e}");
    assert!(
        !cut.join(aekit::run::dir::LOCK).exists(),
        "the lock goes with the run"
    );
    let o = aekit(&["train", "--resume", cut.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(bytes(&full.join("model.safetensors")) == bytes(&cut.join("model.safetensors")));
    assert_eq!(rows(&full, "metrics.csv"), rows(&cut, "metrics.csv"));
}

#[test]
fn a_real_kill_9_mid_run_on_mnist_loses_at_most_one_epoch() {
    let Some(shared) = shared_datasets("mnist") else {
        return;
    };
    let s = shared.to_str().unwrap();
    let dir = tmp("resume-kill9");
    let (full, cut) = (dir.path().join("full"), dir.path().join("cut"));
    let args = |out: &Path| {
        [
            "train",
            "--data",
            "mnist",
            "--data-dir",
            s,
            "--train-size",
            "2000",
            "--val-size",
            "200",
            "--epochs",
            "8",
            "--hidden",
            "32",
            "--threads",
            "1",
            "--out",
            out.to_str().unwrap(),
        ]
        .map(String::from)
    };
    let o = aekit(&args(&full).iter().map(String::as_str).collect::<Vec<_>>());
    assert!(o.status.success(), "{}", stderr(&o));
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_aekit"))
        .args(args(&cut))
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let t = std::time::Instant::now();
    while aekit::run::dir::checkpoints(&cut).map_or(true, |c| c.is_empty()) {
        assert!(t.elapsed().as_secs() < 60, "no checkpoint written");
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
    // Somewhere inside the next epochs: whatever is being written.
    std::thread::sleep(std::time::Duration::from_millis(37));
    child.kill().unwrap();
    child.wait().unwrap();
    if cut.join("summary.json").exists() {
        eprintln!("skipped: the run ended before the kill");
        return;
    }
    let o = aekit(&["train", "--resume", cut.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(bytes(&full.join("model.safetensors")) == bytes(&cut.join("model.safetensors")));
    assert_eq!(rows(&full, "metrics.csv"), rows(&cut, "metrics.csv"));
}

#[test]
fn resume_refuses_what_it_cannot_continue() {
    let data = common::idx_dir("resume-refuse-data", false);
    let d = data.path().to_str().unwrap();
    let dir = tmp("resume-refuse");
    let run = dir.path().join("run");
    let r = run.to_str().unwrap();
    let train = [
        "train",
        "--data",
        d,
        "--val-size",
        "12",
        "--epochs",
        "3",
        "--hidden",
        "8",
        "--threads",
        "1",
    ];
    let o = aekit_env(&[&train[..], &["--out", r]].concat(), &[(KILL, "2")]);
    assert!(!o.status.success());
    assert_eq!(
        aekit::run::dir::checkpoints(&run).unwrap().len(),
        2,
        "{}",
        stderr(&o)
    );
    // Settings come from the run's config.toml: a flag beside --resume is refused.
    fails_with(
        &aekit(&["train", "--resume", r, "--epochs", "9", "--lr", "1"]),
        &["config.toml", "--epochs", "--lr"],
    );
    fails_with(&aekit(&["train", "--resume", r, "--out", "x"]), &["--out"]);
    // Another verb's run is named as such, with the command that continues it.
    let again = format!("aekit train --resume {r}");
    for verb in [&["pretrain"][..], &["cae"], &["deep-ae"], &["impute", "fit"]] {
        fails_with(
            &aekit(&[verb, &["--resume", r]].concat()),
            &["holds a run of `aekit train`", &again],
        );
    }
    // While it is stopped, eval reads its last checkpoint.
    let o = aekit(&["eval", "--model", r, "--data", d]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains("checkpoint 2"), "{}", stderr(&o));
    let o = aekit(&[
        "eval",
        "--model",
        &format!("{r}/checkpoints/epoch-2"),
        "--data",
        d,
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    // The state file is not a model, and says where the model is.
    fails_with(
        &aekit(&[
            "eval",
            "--model",
            &format!("{r}/checkpoints/epoch-2/state.safetensors"),
            "--data",
            d,
        ]),
        &["resume state", "model.safetensors beside it"],
    );
    let o = aekit(&["train", "--resume", r]);
    assert!(o.status.success(), "{}", stderr(&o));
    // A finished run has nothing to resume; a folder without a run neither.
    fails_with(&aekit(&["train", "--resume", r]), &["finished"]);
    fails_with(
        &aekit(&["train", "--resume", dir.path().to_str().unwrap()]),
        &["no run to resume"],
    );
}

#[test]
fn a_model_of_another_kind_is_named_as_such() {
    let dir = tmp("resume-kinds");
    let out = dir.path().join("cae");
    let o = aekit(&[
        "cae",
        "--train-size",
        "100",
        "--val-size",
        "0",
        "--epochs",
        "1",
        "--batch",
        "50",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    fails_with(
        &aekit(&["eval", "--model", out.join("model.safetensors").to_str().unwrap()]),
        &[
            "convolutional autoencoder",
            "aekit cae",
            "needs a dense denoising autoencoder",
        ],
    );
}

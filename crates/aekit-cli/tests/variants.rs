//! `aekit data variants` writes IDX folders that every verb reads.

mod common;

use aekit::data::{load_train_test, DataSource};
use common::{aekit, fails_with, stderr, tmp};
use std::path::Path;

#[test]
fn every_variant_is_written_readable_and_labelled_as_its_source() {
    let d = tmp("variants");
    let (src_train, _) = load_train_test(&DataSource::Builtin, None).unwrap();
    for kind in ["basic", "rot", "bg-rand", "bg-img", "bg-img-rot"] {
        let out = d.path().join(kind);
        let o = aekit(&[
            "data",
            "variants",
            "--kind",
            kind,
            "--source",
            "builtin",
            "--train",
            "500",
            "--test",
            "300",
            "--out",
            out.to_str().unwrap(),
        ]);
        assert!(o.status.success(), "{}", stderr(&o));
        assert!(out.join("examples.png").is_file());
        let (train, test) = load_train_test(&DataSource::Dir(out.clone()), None).unwrap();
        assert_eq!((train.n, test.n, train.dim), (500, 300, 784));
        // The first 500 source digits, in order, with their labels.
        assert_eq!(
            train.labels.as_deref(),
            Some(&src_train.labels.as_ref().unwrap()[..500])
        );
        let changed = train
            .x
            .iter()
            .zip(&src_train.x[..500 * 784])
            .filter(|(a, b)| (**a - **b).abs() > 1.0 / 255.0)
            .count();
        if kind == "basic" {
            assert_eq!(changed, 0);
        } else {
            assert!(changed > 500 * 784 / 20, "{kind}: {changed} pixels changed");
        }
        if kind.starts_with("bg") {
            // The background fills in: far fewer black pixels than in MNIST.
            let black = train.x.iter().filter(|&&v| v == 0.0).count() as f64 / train.x.len() as f64;
            assert!(black < 0.3, "{kind}: {black} of the pixels are black");
        }
    }
    // A model trains on a variant folder like on any IDX folder.
    let out = d.path().join("bg-img-rot");
    let run = d.path().join("run");
    let o = aekit(&[
        "train",
        "--data",
        out.to_str().unwrap(),
        "--val-size",
        "100",
        "--epochs",
        "1",
        "--hidden",
        "16",
        "--out",
        run.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
}

#[test]
fn bad_variant_requests_are_refused() {
    let d = tmp("variants-bad");
    let out = d.path().join("x");
    let o = aekit(&[
        "data",
        "variants",
        "--kind",
        "upside-down",
        "--source",
        "builtin",
        "--out",
        out.to_str().unwrap(),
    ]);
    fails_with(&o, &["--kind", "basic, rot, bg-rand, bg-img or bg-img-rot"]);
    let o = aekit(&[
        "data",
        "variants",
        "--kind",
        "rot",
        // `--data`, as every other verb spells it, names the digits too.
        "--data",
        "builtin",
        "--train",
        "500",
        "--test",
        "100000",
        "--out",
        out.to_str().unwrap(),
    ]);
    fails_with(&o, &["test", "left after the training ones"]);
    let o = aekit(&[
        "data",
        "variants",
        "--kind",
        "bg-rand",
        "--blend",
        "mean",
        "--source",
        "builtin",
        "--out",
        out.to_str().unwrap(),
    ]);
    fails_with(&o, &["--blend", "max or replace"]);
    assert!(!out.exists());
}

/// Runs `aekit experiment variants --quick ARGS --out OUT` and returns the
/// rows of its CSV (the header left out).
fn experiment_rows(args: &[&str], out: &Path) -> Vec<Vec<String>> {
    let mut a = vec!["experiment", "variants", "--quick"];
    a.extend(args);
    a.extend(["--out", out.to_str().unwrap()]);
    let o = aekit(&a);
    let err = stderr(&o);
    assert!(o.status.success(), "{err}");
    // Every epoch of every fit shows on stderr, after its net and stage.
    for want in [
        ", pretraining: layer 1 stacked, epoch 1/",
        ", fine-tuning lr ",
        "validation error ",
    ] {
        assert!(err.contains(want), "no `{want}` in\n{err}");
    }
    let csv = std::fs::read_to_string(out.join("variants.csv")).unwrap();
    csv.lines()
        .skip(1)
        .map(|l| l.split(',').map(String::from).collect())
        .collect()
}

/// The rows of a run's `runs.csv` (the header left out).
fn runs_rows(out: &Path) -> Vec<Vec<String>> {
    let csv = std::fs::read_to_string(out.join("runs.csv")).unwrap();
    csv.lines()
        .skip(1)
        .map(|l| l.split(',').map(String::from).collect())
        .collect()
}

/// The one run of `net` marked chosen, checked to have the lowest
/// validation error of them all.
fn chosen_run(net: &[Vec<String>]) -> &[String] {
    let chosen: Vec<&Vec<String>> = net.iter().filter(|q| q[16] == "true").collect();
    assert_eq!(chosen.len(), 1, "{net:?}");
    let lowest = net
        .iter()
        .map(|q| q[15].parse::<f64>().unwrap())
        .fold(f64::MAX, f64::min);
    assert_eq!(chosen[0][15].parse::<f64>().unwrap(), lowest, "{net:?}");
    chosen[0]
}

#[test]
fn the_variants_experiment_reports_each_variant_beside_the_published_error() {
    let d = tmp("variants-exp");
    let out = d.path().join("run");
    let rows = experiment_rows(&["--no-table", "--finetune-epochs", "3"], &out);
    let names: Vec<&str> = rows.iter().map(|r| r[1].as_str()).collect();
    assert_eq!(names, ["rot", "bg-rand", "bg-img", "bg-img-rot"]);
    for r in &rows {
        // The learning rate chosen on the validation error, of the four.
        assert!(["0.05", "0.1", "0.2", "0.4"].contains(&r[5].as_str()), "{r:?}");
        let err: f64 = r[6].parse().unwrap();
        // Better than chance (90% ± 1% on 1000 test digits) after three
        // epochs on 2000 digits; bg-rand, the hardest to start on, is near 83%.
        assert!(err < 87.0, "{r:?}");
    }
    for f in [
        "results.md",
        "summary.json",
        "examples-rot.png",
        "dae-bg-rand-filters.png",
        "dae-bg-img-rot-reconstructions.png",
    ] {
        assert!(out.join(f).is_file(), "missing {f}");
    }
    let md = std::fs::read_to_string(out.join("results.md")).unwrap();
    assert!(
        md.contains("| rot | mask 0.25 |") && md.contains("| 9.53% |"),
        "{md}"
    );
    // runs.csv: every rate of every net with its settings, the chosen one
    // (lowest validation error) the row of variants.csv.
    let runs = runs_rows(&out);
    assert_eq!(runs.len(), 16, "four variants, four rates each: {runs:?}");
    for (k, r) in rows.iter().enumerate() {
        let net = &runs[4 * k..4 * k + 4];
        let rates: Vec<&str> = net.iter().map(|q| q[12].as_str()).collect();
        assert_eq!(rates, ["0.05", "0.1", "0.2", "0.4"], "{net:?}");
        let c = chosen_run(net);
        // The same net, settings as given (quick: 256 units, 2 pretraining epochs, batch 20).
        assert_eq!((&*c[0], &c[1], &c[4]), ("sda3", &r[1], &r[4]), "{c:?}");
        assert_eq!(
            (&*c[5], &*c[7], &*c[8], &*c[11]),
            ("256", "2", "20", "max"),
            "{c:?}"
        );
        assert_eq!((&c[12], &c[14], &c[15]), (&r[5], &r[6], &r[7]), "{c:?}");
    }
}

#[test]
fn the_variants_experiment_runs_the_parts_and_sets_asked_for() {
    let d = tmp("variants-parts");
    let out = d.path().join("run");
    let rows = experiment_rows(
        &[
            "--parts",
            "sda",
            "--sets",
            "bg-img",
            "--pretrain-epochs",
            "1",
            "--finetune-epochs",
            "2",
            "--finetune-lr",
            "0.1",
        ],
        &out,
    );
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(
        (&*rows[0][0], &*rows[0][1], &*rows[0][5]),
        ("sda3", "bg-img", "0.1")
    );
    assert!(!out.join("dae-bg-rand-filters.png").exists());
    assert!(!out.join("examples-rot.png").exists());
    // A learning rate that is not positive is refused before any training.
    let bad = d.path().join("bad");
    let o = aekit(&[
        "experiment",
        "variants",
        "--quick",
        "--finetune-lr",
        "0.1,0",
        "--out",
        bad.to_str().unwrap(),
    ]);
    fails_with(&o, &["finetune_lr", "not a positive learning rate"]);
}

#[test]
fn the_depth_table_runs_the_rows_asked_for_with_per_example_fine_tuning() {
    let d = tmp("variants-rows");
    let out = d.path().join("run");
    let rows = experiment_rows(
        &[
            "--parts",
            "table",
            "--sets",
            "basic",
            "--depths",
            "1",
            "--pretrainings",
            "autoencoder",
            "--pretrain-epochs",
            "1",
            "--pretrain-batch",
            "1",
            "--pretrain-momentum",
            "0",
            "--pretrain-lr-decay",
            "0.5",
            "--pretrain-untied",
            "--finetune-epochs",
            "1",
            "--finetune-batch",
            "1",
            "--finetune-momentum",
            "0",
            "--finetune-weight-decay",
            "0.0001",
            "--finetune-dropout",
            "0.2",
            "--finetune-average",
            "0.99",
            "--finetune-max-norm",
            "3",
            "--finetune-lr",
            "0.05",
        ],
        &out,
    );
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0][..4], ["table", "basic", "1", "autoencoder"]);
    // One epoch of per-example steps on 2000 digits is far past chance.
    let err: f64 = rows[0][6].parse().unwrap();
    assert!(err < 30.0, "{rows:?}");
    let md = std::fs::read_to_string(out.join("results.md")).unwrap();
    assert!(
        md.contains(
            "batch 1, momentum 0, weight decay 0.0001, dropout 0.2, weight averaging 0.99, max-norm 3,"
        ),
        "{md}"
    );
    assert!(
        md.contains("(SGD, batch 1, lr 0.01, momentum 0, lr factor 0.5 per epoch, untied decoders)"),
        "{md}"
    );
    assert!(md.contains("| basic | 1 | — | 4.14% |"), "{md}");
    // runs.csv ends with the pretraining's batch, momentum and decay, the
    // fine-tuning's weight decay, dropout and weight averaging, whether
    // the pretraining was untied, and the fine-tuning's max-norm bound.
    let run = runs_rows(&out).swap_remove(0);
    assert_eq!(
        run[run.len() - 8..],
        ["1", "0", "0.5", "0.0001", "0.2", "0.99", "true", "3"],
        "{run:?}"
    );
    // A row the table does not have, and a batch of none, are refused
    // before any training.
    for (args, words) in [
        (["--pretrainings", "dbn"], &["unknown pretraining 'dbn'"][..]),
        (["--finetune-batch", "0"], &["batch", "at least 1"][..]),
        (["--finetune-batch", "20,0"], &["batch", "at least 1"][..]),
        (["--pretrain-batch", "0"], &["batch", "at least 1"][..]),
        (
            ["--finetune-weight-decay", "nan"],
            &["weight_decay", "NaN must be ≥ 0"][..],
        ),
        (
            ["--finetune-dropout", "1"],
            &["dropout", "1 is not a rate in [0, 1)"][..],
        ),
        (
            ["--finetune-average", "1"],
            &["average", "1 is not a decay in [0, 1)"][..],
        ),
        (
            ["--finetune-max-norm", "nan"],
            &["max_norm", "NaN must be ≥ 0 and finite (0 = no bound)"][..],
        ),
        (
            ["--pretrain-momentum", "1.5"],
            &["momentum", "1.5 is not in [0, 1)"][..],
        ),
        (
            ["--pretrain-lr-decay", "1.5"],
            &["lr_decay", "1.5 is not in (0, 1]"][..],
        ),
        // --quick runs the RBM row too, whose rate does not decay.
        (["--pretrain-lr-decay", "0.5"], &["pretrain_lr_decay", "rbm"][..]),
        // and an RBM has no decoder to untie.
        (
            ["--pretrain-untied", "--threads=1"],
            &["pretrain_untied", "rbm"][..],
        ),
    ] {
        let bad = d.path().join("bad");
        let mut a = vec![
            "experiment",
            "variants",
            "--quick",
            "--out",
            bad.to_str().unwrap(),
        ];
        a.extend(args);
        fails_with(&aekit(&a), words);
        assert!(!bad.exists());
    }
}

#[test]
fn several_widths_are_each_trained_and_the_validation_error_chooses_among_them() {
    let d = tmp("variants-widths");
    let out = d.path().join("run");
    let rows = experiment_rows(
        &[
            "--parts",
            "table",
            "--sets",
            "basic",
            "--depths",
            "2",
            "--pretrainings",
            "autoencoder",
            "--width",
            "16,64",
            "--pretrain-epochs",
            "1",
            "--finetune-epochs",
            "2",
            "--finetune-lr",
            "0.1,0.2",
        ],
        &out,
    );
    assert_eq!(rows.len(), 1, "{rows:?}");
    // runs.csv: both widths at both rates, each with its own width.
    let runs = runs_rows(&out);
    let settings: Vec<(&str, &str)> = runs.iter().map(|q| (&*q[5], &*q[12])).collect();
    assert_eq!(
        settings,
        [("16", "0.1"), ("16", "0.2"), ("64", "0.1"), ("64", "0.2")],
        "{runs:?}"
    );
    // Sixteen units a layer are not the same net as sixty-four: the runs
    // differ, so the choice below is a real one.
    assert_ne!(runs[0][15], runs[2][15], "{runs:?}");
    let c = chosen_run(&runs);
    // variants.csv reports the chosen run with its width (tenth column).
    let r = &rows[0];
    assert_eq!(
        (&r[5], &r[6], &r[7], &r[9]),
        (&c[12], &c[14], &c[15], &c[5]),
        "{r:?} {c:?}"
    );
    let md = std::fs::read_to_string(out.join("results.md")).unwrap();
    assert!(md.contains(&format!("% ({} units) |", c[5])), "{md}");
    // A width of no units is refused before any work.
    let bad = d.path().join("bad");
    let o = aekit(&[
        "experiment",
        "variants",
        "--quick",
        "--width",
        "64,0",
        "--out",
        bad.to_str().unwrap(),
    ]);
    fails_with(&o, &["width", "at least one unit"]);
    assert!(!bad.exists());
}

/// One small autoencoder-pretrained net of the depth table, one epoch of
/// pretraining and two of fine-tuning (the set and depth to be added).
const SMALL_NET: [&str; 10] = [
    "--parts",
    "table",
    "--pretrainings",
    "autoencoder",
    "--width",
    "32",
    "--pretrain-epochs",
    "1",
    "--finetune-epochs",
    "2",
];

#[test]
fn several_minibatch_sizes_are_each_fine_tuned_from_one_pretraining() {
    let d = tmp("variants-batches");
    let out = d.path().join("run");
    let mut args = SMALL_NET.to_vec();
    args.extend([
        "--sets",
        "basic",
        "--depths",
        "1",
        "--finetune-batch",
        "5,40",
        "--finetune-lr",
        "0.1,0.2",
    ]);
    let rows = experiment_rows(&args, &out);
    assert_eq!(rows.len(), 1, "{rows:?}");
    // runs.csv: both sizes at both rates, size by size, each row its own size.
    let runs = runs_rows(&out);
    let settings: Vec<(&str, &str)> = runs.iter().map(|q| (&*q[8], &*q[12])).collect();
    assert_eq!(
        settings,
        [("5", "0.1"), ("5", "0.2"), ("40", "0.1"), ("40", "0.2")],
        "{runs:?}"
    );
    // Eight times as many steps an epoch in minibatches of 5: another
    // fine-tuning, so the choice below is a real one.
    assert_ne!(
        (&runs[0][14], &runs[0][15]),
        (&runs[2][14], &runs[2][15]),
        "{runs:?}"
    );
    let c = chosen_run(&runs);
    // variants.csv reports the chosen run with its size (last column).
    let r = &rows[0];
    assert_eq!(
        (&r[5], &r[6], &r[7], &r[9], &r[10]),
        (&c[12], &c[14], &c[15], &c[5], &c[8]),
        "{r:?} {c:?}"
    );
    let md = std::fs::read_to_string(out.join("results.md")).unwrap();
    assert!(md.contains("(SGD, batch 5 or 40, momentum 0.9,"), "{md}");
    assert!(md.contains(&format!("% (batch {}) |", c[8])), "{md}");
}

#[test]
fn one_width_a_layer_builds_that_stack_and_refuses_another_depth() {
    let d = tmp("variants-layers");
    let out = d.path().join("run");
    let o = aekit(&[
        "experiment",
        "variants",
        "--quick",
        "--parts",
        "table",
        "--sets",
        "basic",
        "--depths",
        "2",
        "--pretrainings",
        "autoencoder",
        "--width",
        "48x16",
        "--pretrain-epochs",
        "1",
        "--finetune-epochs",
        "1",
        "--finetune-lr",
        "0.1",
        "--out",
        out.to_str().unwrap(),
    ]);
    let err = stderr(&o);
    assert!(o.status.success(), "{err}");
    // The net built and trained is 48 units, then 16.
    assert!(
        err.contains("2 layers of 48x16 units, pretraining: layer 2 stacked, epoch 1/1"),
        "{err}"
    );
    let runs = runs_rows(&out);
    assert_eq!((&*runs[0][2], &*runs[0][5]), ("2", "48x16"), "{runs:?}");
    // Its width is variants.csv's `width` column, before the minibatch size.
    let csv = std::fs::read_to_string(out.join("variants.csv")).unwrap();
    assert!(csv.lines().nth(1).unwrap().ends_with(",48x16,20,"), "{csv}");
    // Widths for two layers at depth 3 (here the SdA-3's) are refused
    // before any work, as is a width that is not a number.
    for (args, want) in [
        (["--parts", "sda", "--width", "48x16"], "gives 2 layers"),
        (
            ["--parts", "table", "--width", "48xa"],
            "one a layer as 3000x2000x1000",
        ),
    ] {
        let bad = d.path().join("bad");
        let mut a = vec!["experiment", "variants", "--quick"];
        a.extend(args);
        a.extend(["--out", bad.to_str().unwrap()]);
        let o = aekit(&a);
        fails_with(&o, &["width", want]);
        assert!(!bad.exists());
    }
}

#[test]
fn the_networks_seed_and_the_variants_seed_are_apart() {
    let d = tmp("variants-seeds");
    // One small SdA-3 on bg-img; returns its examples picture and runs.csv.
    let run = |name: &str, seeds: &[&str]| {
        let out = d.path().join(name);
        let mut a = vec![
            "--parts",
            "sda",
            "--sets",
            "bg-img",
            "--width",
            "32",
            "--pretrain-epochs",
            "1",
            "--finetune-epochs",
            "1",
            "--finetune-lr",
            "0.1",
        ];
        a.extend(seeds);
        experiment_rows(&a, &out);
        let png = std::fs::read(out.join("examples-bg-img.png")).unwrap();
        let row = runs_rows(&out).swap_remove(0);
        (png, row)
    };
    let (png1, row1) = run("default", &[]);
    let (png2, row2) = run("net-seed", &["--seed", "2"]);
    let (png3, _) = run("data-seed", &["--data-seed", "2"]);
    // The seeds are written beside each run.
    assert_eq!((&*row1[17], &*row1[18]), ("1", "1"), "{row1:?}");
    assert_eq!((&*row2[17], &*row2[18]), ("2", "1"), "{row2:?}");
    // Another networks' seed trains other nets on the same images...
    assert_eq!(png1, png2);
    assert_ne!(
        (&row1[14], &row1[15]),
        (&row2[14], &row2[15]),
        "{row1:?} {row2:?}"
    );
    // ...and another variants' seed draws other backgrounds.
    assert_ne!(png1, png3);
}

#[test]
fn a_pretrained_cache_keeps_each_pretraining_and_a_later_run_loads_it() {
    let d = tmp("variants-cache");
    let cache = d.path().join("cache");
    let args = |out: &Path, lr: &str, pre_lr: &str| {
        let mut a: Vec<String> = ["experiment", "variants", "--quick"]
            .iter()
            .chain(&SMALL_NET)
            .chain(&["--sets", "rot", "--depths", "2", "--threads", "1"])
            .map(|s| s.to_string())
            .collect();
        for (k, v) in [
            ("--finetune-lr", lr),
            ("--pretrain-lr", pre_lr),
            ("--pretrained-cache", cache.to_str().unwrap()),
            ("--out", out.to_str().unwrap()),
        ] {
            a.extend([k.to_string(), v.to_string()]);
        }
        a
    };
    let run = |out: &Path, lr: &str, pre_lr: &str| {
        let a = args(out, lr, pre_lr);
        let o = aekit(&a.iter().map(String::as_str).collect::<Vec<_>>());
        let err = stderr(&o);
        assert!(o.status.success(), "{err}");
        err
    };
    let cached = || {
        let mut f: Vec<_> = std::fs::read_dir(&cache)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        f.sort();
        f
    };
    // The first run pretrains and keeps the stack.
    let (a, b) = (d.path().join("a"), d.path().join("b"));
    let err = run(&a, "0.1", "0.01");
    assert!(err.contains("pretraining: layer 1 stacked, epoch 1/1"), "{err}");
    assert!(err.contains("pretrained stack kept in"), "{err}");
    let files = cached();
    assert_eq!(files.len(), 1, "{files:?}");
    assert!(files[0].starts_with("pretrained-") && files[0].ends_with(".safetensors"));
    // The same pretraining again is loaded, not run, and fine-tunes to the
    // same bits.
    let err = run(&b, "0.1", "0.01");
    assert!(!err.contains("pretraining: layer 1"), "{err}");
    assert!(
        err.contains(&format!("loaded from {}", cache.join(&files[0]).display())),
        "{err}"
    );
    assert_eq!(runs_rows(&a), runs_rows(&b));
    // Another fine-tuning rate reuses it; another pretraining rate is
    // another file.
    let c = d.path().join("c");
    assert!(run(&c, "0.2", "0.01").contains("loaded from"));
    let err = run(&d.path().join("d"), "0.1", "0.02");
    assert!(err.contains("pretraining: layer 1 stacked"), "{err}");
    assert_eq!(cached().len(), 2);
    // A damaged file is named, not pretrained over or used.
    std::fs::write(cache.join(&files[0]), b"not a model").unwrap();
    let a = args(&d.path().join("e"), "0.1", "0.01");
    let o = aekit(&a.iter().map(String::as_str).collect::<Vec<_>>());
    fails_with(&o, &[&files[0]]);
    // A cache that cannot be a folder is refused before any work.
    let file = d.path().join("a-file");
    std::fs::write(&file, b"").unwrap();
    let mut a = args(&d.path().join("f"), "0.1", "0.01");
    let at = a.iter().position(|s| s == "--pretrained-cache").unwrap();
    a[at + 1] = file.to_str().unwrap().to_string();
    let o = aekit(&a.iter().map(String::as_str).collect::<Vec<_>>());
    fails_with(&o, &["a-file"]);
    assert!(!d.path().join("f").exists());
}

#[test]
fn a_refit_trains_the_chosen_net_again_on_training_and_validation_for_its_epochs() {
    let d = tmp("variants-refit");
    let (out, cache) = (d.path().join("out"), d.path().join("cache"));
    let mut a = vec!["experiment", "variants", "--quick"];
    a.extend(SMALL_NET);
    a.extend([
        "--sets",
        "basic",
        "--depths",
        "1",
        "--finetune-lr",
        "0.1,0.3",
        "--threads",
        "1",
        "--refit",
        "--pretrained-cache",
        cache.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    let o = aekit(&a);
    let err = stderr(&o);
    assert!(o.status.success(), "{err}");
    // The chosen run (lowest validation error) names the rate and epochs.
    let runs = runs_rows(&out);
    let c = chosen_run(&runs);
    let (lr, epochs) = (&c[12], c[13].parse::<usize>().unwrap());
    assert!((1..=2).contains(&epochs), "{c:?}");
    // The refit pretrains again on the 2,400 joined images (a second
    // cached stack), then fine-tunes at that rate for exactly those epochs.
    assert!(
        err.contains("refit, 1 layer of 32 units, pretraining: layer 1 stacked, epoch 1/1"),
        "{err}"
    );
    let refit =
        format!("refit, 1 layer of 32 units, fine-tuning lr {lr} for {epochs} epochs on 2400 examples");
    assert!(
        err.contains(&format!("{refit}: epoch {epochs}/{epochs}")),
        "{err}"
    );
    assert!(!err.contains(&format!("{refit}: epoch {}/", epochs + 1)), "{err}");
    assert_eq!(std::fs::read_dir(&cache).unwrap().count(), 2);
    // Its test error is variants.csv's last column and follows the chosen
    // run's in results.md.
    let csv = std::fs::read_to_string(out.join("variants.csv")).unwrap();
    assert!(
        csv.lines().next().unwrap().ends_with(",refit_test_error"),
        "{csv}"
    );
    let row: Vec<&str> = csv.lines().nth(1).unwrap().split(',').collect();
    let te: f64 = row[11].parse().unwrap();
    assert!((0.0..60.0).contains(&te), "{row:?}");
    assert!(err.contains(&format!("{refit}: test error {te:.2}%")), "{err}");
    let md = std::fs::read_to_string(out.join("results.md")).unwrap();
    assert!(md.contains(&format!("(refit {epochs} epochs: {te:.2}%)")), "{md}");
    assert!(
        md.contains("training and validation sets together (2400 images)"),
        "{md}"
    );
}

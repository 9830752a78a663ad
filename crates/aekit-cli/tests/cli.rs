//! Runs the built `aekit` binary as a user would, on small data.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Output};
use tempfile::TempDir;

/// A fresh scratch directory, removed when the guard drops (also when the test panics).
fn tmp(name: &str) -> TempDir {
    tempfile::Builder::new()
        .prefix(&format!("aekit-cli-{name}-"))
        .tempdir()
        .unwrap()
}

fn aekit(args: &[&str]) -> Output {
    aekit_env(args, &[])
}

fn aekit_env(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_aekit"));
    c.args(args);
    for (k, v) in env {
        c.env(k, v);
    }
    c.output().unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Asserts a clean failure: non-zero exit, no panic, and every `needle` in stderr.
fn fails_with(o: &Output, needles: &[&str]) {
    let e = stderr(o);
    assert!(!o.status.success(), "should fail; stderr: {e}");
    assert!(!e.contains("panicked"), "panicked: {e}");
    for n in needles {
        assert!(e.contains(n), "stderr lacks `{n}`: {e}");
    }
}

fn gz(bytes: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(bytes).unwrap();
    e.finish().unwrap()
}

fn idx(dims: &[usize], data: &[u8]) -> Vec<u8> {
    aekit::data::idx::encode_idx(dims, data)
}

/// A tiny 8×8 IDX dataset: 60 training and 20 test images of 3 classes.
fn write_idx_dir(dir: &Path, gzip: bool) {
    let img = |n: usize| -> Vec<u8> {
        (0..n * 64)
            .map(|i| ((i * 37 + i / 64 * 11) % 256) as u8)
            .collect()
    };
    let lab = |n: usize| -> Vec<u8> { (0..n).map(|i| (i % 3) as u8).collect() };
    let files = [
        ("train-images-idx3-ubyte", idx(&[60, 8, 8], &img(60))),
        ("train-labels-idx1-ubyte", idx(&[60], &lab(60))),
        ("t10k-images-idx3-ubyte", idx(&[20, 8, 8], &img(20))),
        ("t10k-labels-idx1-ubyte", idx(&[20], &lab(20))),
    ];
    for (name, bytes) in files {
        if gzip {
            std::fs::write(dir.join(format!("{name}.gz")), gz(&bytes)).unwrap();
        } else {
            std::fs::write(dir.join(name), bytes).unwrap();
        }
    }
}

fn json(path: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

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
fn reads_a_directory_of_idx_files_raw_or_gzipped() {
    for gzip in [false, true] {
        let dir = tmp(&format!("dir{gzip}"));
        let d = dir.path();
        write_idx_dir(d, gzip);
        let run = d.join("run");
        let o = aekit(&[
            "train",
            "--data",
            d.to_str().unwrap(),
            "--val-size",
            "10",
            "--epochs",
            "2",
            "--hidden",
            "5",
            "--out",
            run.to_str().unwrap(),
        ]);
        assert!(o.status.success(), "{}", stderr(&o));
        let s = json(&run.join("summary.json"));
        assert_eq!(
            (s["n_train"].as_u64(), s["n_val"].as_u64(), s["n_test"].as_u64()),
            (Some(50), Some(10), Some(20))
        );
    }
}

#[test]
fn downloads_mnist_from_a_mirror_into_the_cache() {
    let shared = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/datasets");
    if !shared.join("mnist").is_dir() {
        eprintln!("skipped: {} is absent", shared.display());
        return;
    }
    let dir = tmp("download");
    let d = dir.path();
    let cache = d.join("cache");
    let mirror = format!("file://{}", shared.canonicalize().unwrap().display());
    let run = d.join("run");
    let o = aekit_env(
        &[
            "train",
            "--data",
            "mnist",
            "--train-size",
            "200",
            "--val-size",
            "100",
            "--epochs",
            "1",
            "--hidden",
            "8",
            "--out",
            run.to_str().unwrap(),
        ],
        &[("AEKIT_DATA", cache.to_str().unwrap()), ("AEKIT_MIRROR", &mirror)],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(cache.join("mnist/train-images-idx3-ubyte.gz").is_file());
    assert_eq!(json(&run.join("summary.json"))["n_test"], 10_000);
}

#[test]
fn offline_download_fails_with_a_clear_message() {
    let dir = tmp("offline");
    let d = dir.path();
    let o = aekit_env(
        &[
            "train",
            "--data",
            "fashion-mnist",
            "--data-dir",
            d.to_str().unwrap(),
            "--out",
            d.join("run").to_str().unwrap(),
        ],
        &[("AEKIT_MIRROR", "http://127.0.0.1:9")],
    );
    fails_with(
        &o,
        &[
            "could not fetch fashion-mnist file train-images-idx3-ubyte.gz",
            "offline",
        ],
    );
}

#[test]
fn missing_file_names_the_path() {
    let o = aekit(&["train", "--data", "/no/such/dir"]);
    fails_with(&o, &["/no/such/dir", "not a directory"]);
    let dir = tmp("missing");
    let d = dir.path();
    write_idx_dir(d, true);
    std::fs::remove_file(d.join("t10k-labels-idx1-ubyte.gz")).unwrap();
    fails_with(
        &aekit(&["train", "--data", d.to_str().unwrap()]),
        &["t10k-labels-idx1-ubyte", "not found"],
    );
    let o = aekit(&["eval", "--model", "/no/such/model.safetensors"]);
    fails_with(&o, &["/no/such/model.safetensors", "No such file"]);
    let o = aekit(&["train", "--config", "/no/such/config.toml"]);
    fails_with(&o, &["/no/such/config.toml"]);
}

#[test]
fn truncated_gzip_is_reported_with_its_file() {
    let dir = tmp("truncated");
    let d = dir.path();
    write_idx_dir(d, true);
    let f = d.join("train-images-idx3-ubyte.gz");
    let bytes = std::fs::read(&f).unwrap();
    std::fs::write(&f, &bytes[..bytes.len() / 2]).unwrap();
    fails_with(
        &aekit(&["train", "--data", d.to_str().unwrap()]),
        &["train-images-idx3-ubyte.gz", "truncated or corrupt gzip"],
    );
}

#[test]
fn wrong_magic_is_reported_with_its_file() {
    let dir = tmp("magic");
    let d = dir.path();
    write_idx_dir(d, false);
    let f = d.join("train-labels-idx1-ubyte");
    let mut bytes = std::fs::read(&f).unwrap();
    bytes[0] = 0x50;
    bytes[1] = 0x4b;
    std::fs::write(&f, bytes).unwrap();
    fails_with(
        &aekit(&["train", "--data", d.to_str().unwrap()]),
        &["train-labels-idx1-ubyte", "magic bytes 50 4b"],
    );
}

#[test]
fn label_count_mismatch_is_reported() {
    let dir = tmp("labels");
    let d = dir.path();
    write_idx_dir(d, false);
    std::fs::write(d.join("t10k-labels-idx1-ubyte"), idx(&[19], &[0; 19])).unwrap();
    fails_with(
        &aekit(&["train", "--data", d.to_str().unwrap()]),
        &["t10k-labels-idx1-ubyte", "19 labels", "20 images"],
    );
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
        // The scaling is 2·alone over the slower of the two together.
        let want = 2.0 * v[0] / v[1].max(v[2]);
        assert!((v[3] - want).abs() < 0.01 * want, "{l}");
    }
}

#[test]
fn bench_refuses_bad_arguments() {
    fails_with(
        &aekit(&["bench", "threads", "--data", "builtin", "--threads", "0"]),
        &["--threads"],
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
        &["--rounds"],
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
fn gradcheck_passes_and_fails_with_the_right_exit_code() {
    let o = aekit(&[
        "gradcheck",
        "--model",
        "all",
        "--n-vis",
        "9",
        "--hidden",
        "4",
        "--samples",
        "6",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        out.lines().count() >= 8 && out.lines().all(|l| l.starts_with("ok")),
        "{out}"
    );
    // A tolerance no finite-difference check can meet must fail, non-zero.
    let o = aekit(&[
        "gradcheck",
        "--n-vis",
        "9",
        "--hidden",
        "4",
        "--samples",
        "6",
        "--tolerance",
        "1e-30",
    ]);
    fails_with(&o, &["gradient checks exceeded"]);
    fails_with(&aekit(&["gradcheck", "--model", "cnn"]), &["unknown model"]);
}

/// Writes a few generated images (PNG and JPEG) with strokes and gradients.
fn write_images(dir: &Path) {
    for k in 0..3u32 {
        let img = image::RgbImage::from_fn(40 + 7 * k, 32, |x, y| {
            let v = ((x * 5 + y * 3 + k * 40) % 256) as u8;
            let stroke = if (x + k * 3) % 11 < 2 { 255 } else { v };
            image::Rgb([stroke, v / 2, 255 - v])
        });
        let ext = if k == 1 { "jpg" } else { "png" };
        img.save(dir.join(format!("img{k}.{ext}"))).unwrap();
    }
    std::fs::write(dir.join("notes.txt"), "not an image").unwrap();
}

#[test]
fn patches_then_a_sparse_autoencoder_on_them() {
    let dir = tmp("patches");
    let d = dir.path();
    let imgs = d.join("imgs");
    std::fs::create_dir_all(&imgs).unwrap();
    write_images(&imgs);
    let npy = d.join("patches.npy");
    let pic = d.join("patches.png");
    let o = aekit(&[
        "patches",
        "--images",
        imgs.to_str().unwrap(),
        "--size",
        "8",
        "--count",
        "600",
        "--normalize",
        "--out",
        npy.to_str().unwrap(),
        "--picture",
        pic.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let (shape, x) = aekit::data::npy::read_npy(&npy).unwrap();
    assert_eq!(shape, vec![600, 64]);
    assert!(x.iter().all(|&v| (0.1..=0.9).contains(&v)));
    assert!(pic.is_file());

    let run = d.join("run");
    let o = aekit(&[
        "train",
        "--kind",
        "sparse",
        "--data",
        npy.to_str().unwrap(),
        "--hidden",
        "25",
        "--max-iter",
        "60",
        "--out",
        run.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let s = json(&run.join("summary.json"));
    let parts = s["reconstruction"].as_f64().unwrap()
        + s["weight_decay_term"].as_f64().unwrap()
        + s["sparsity_term"].as_f64().unwrap();
    assert!((parts - s["final_cost"].as_f64().unwrap()).abs() < 1e-6, "{s}");
    assert!(s["iterations"].as_u64().unwrap() > 5);
    assert_eq!(s["n_test"], 60, "the last tenth of the rows is the test part");
    // 25 tiles of 8×8 at zoom 4, in 5 columns.
    assert_eq!(image::open(run.join("filters.png")).unwrap().width(), 5 * 33 + 1);
    let metrics = std::fs::read_to_string(run.join("metrics.csv")).unwrap();
    let costs: Vec<f64> = metrics
        .lines()
        .skip(1)
        .map(|l| l.split(',').nth(1).unwrap().parse().unwrap())
        .collect();
    assert!(
        costs.last().unwrap() < &costs[0],
        "L-BFGS lowers the cost: {costs:?}"
    );

    let empty = d.join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    fails_with(
        &aekit(&[
            "patches",
            "--images",
            empty.to_str().unwrap(),
            "--out",
            npy.to_str().unwrap(),
        ]),
        &["no .png"],
    );
    std::fs::write(empty.join("bad.png"), b"not a png").unwrap();
    fails_with(
        &aekit(&[
            "patches",
            "--images",
            empty.to_str().unwrap(),
            "--out",
            npy.to_str().unwrap(),
        ]),
        &["bad.png", "cannot decode"],
    );
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
        &["--finetune-sizes 6990", "class-balanced subset of 6990"],
    );
    assert!(!bad.join("pretrain.csv").exists());
}

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
        "checkpoints/epoch-1.safetensors",
        "checkpoints/epoch-2.safetensors",
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
    let m =
        aekit::models::conv_ae::ConvAutoencoder::load(&out.join("checkpoints/epoch-1.safetensors")).unwrap();
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
    fails_with(&o, &["train.adam.lr"]);
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
            "epoch-1.safetensors",
            "epoch-2.safetensors",
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
    use aekit::data::cifar::{encode_cifar, CifarKind, CIFAR10_TEST, CIFAR10_TRAIN};
    let dir = tmp("cae-cifar");
    let d = dir.path();
    let data = d.join("cifar-10-batches-bin");
    std::fs::create_dir_all(&data).unwrap();
    // Smooth colour gradients, different per image and channel.
    let image = |i: usize| -> Vec<u8> {
        (0..3072)
            .map(|p| ((p % 32) * 4 + (p / 1024) * 40 + i * 7) as u8)
            .collect()
    };
    let write = |name: &str, n: usize, first: usize| {
        let ims: Vec<Vec<u8>> = (first..first + n).map(image).collect();
        let refs: Vec<&[u8]> = ims.iter().map(Vec::as_slice).collect();
        let labels: Vec<(u8, u8)> = (0..n).map(|i| (0, ((first + i) % 10) as u8)).collect();
        std::fs::write(data.join(name), encode_cifar(CifarKind::Cifar10, &labels, &refs)).unwrap();
    };
    for (k, name) in CIFAR10_TRAIN.iter().enumerate() {
        write(name, 20, k * 20);
    }
    write(CIFAR10_TEST, 20, 100);
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

//! Where the data comes from: IDX folders (raw or gzipped), downloads from a
//! mirror, and the errors for missing, truncated or malformed files.

mod common;

use common::{aekit, aekit_env, fails_with, idx, idx_dir, json, shared_datasets, stderr, tmp};

#[test]
fn reads_a_directory_of_idx_files_raw_or_gzipped() {
    for gzip in [false, true] {
        let dir = idx_dir(&format!("dir{gzip}"), gzip);
        let d = dir.path();
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
    let Some(shared) = shared_datasets("mnist") else {
        return;
    };
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
fn an_original_mnist_variant_offline_says_where_to_put_its_files() {
    let dir = tmp("offline-rot");
    let d = dir.path();
    let o = aekit_env(
        &[
            "train",
            "--data",
            "mnist-rot",
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
            "could not fetch mnist-rot archive mnist_rotation_new.zip",
            "mnist_all_rotation_normalized_float_test.amat",
            "offline",
        ],
    );
    assert!(!d.join("run").exists());
    // With the two files put there by hand, the same command reads them.
    let cache = d.join("mnist-rot");
    std::fs::create_dir_all(&cache).unwrap();
    let row = |label: u8| format!("{} {label}\n", vec!["0.5"; 784].join(" "));
    let train: String = (0..30).map(|i| row(i % 10)).collect();
    let test: String = (0..10).map(row).collect();
    std::fs::write(
        cache.join("mnist_all_rotation_normalized_float_train_valid.amat"),
        train,
    )
    .unwrap();
    std::fs::write(cache.join("mnist_all_rotation_normalized_float_test.amat"), test).unwrap();
    let o = aekit_env(
        &[
            "train",
            "--data",
            "mnist-rot",
            "--data-dir",
            d.to_str().unwrap(),
            "--val-size",
            "10",
            "--epochs",
            "1",
            "--hidden",
            "4",
            "--out",
            d.join("run").to_str().unwrap(),
        ],
        &[("AEKIT_MIRROR", "http://127.0.0.1:9")],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(json(&d.join("run/summary.json"))["n_test"], 10);
}

#[test]
fn missing_file_names_the_path() {
    let o = aekit(&["train", "--data", "/no/such/dir"]);
    fails_with(&o, &["/no/such/dir", "not found"]);
    let dir = idx_dir("missing", true);
    let d = dir.path();
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
    let dir = idx_dir("truncated", true);
    let d = dir.path();
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
    let dir = idx_dir("magic", false);
    let d = dir.path();
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
    let dir = idx_dir("labels", false);
    let d = dir.path();
    std::fs::write(d.join("t10k-labels-idx1-ubyte"), idx(&[19], &[0; 19])).unwrap();
    fails_with(
        &aekit(&["train", "--data", d.to_str().unwrap()]),
        &["t10k-labels-idx1-ubyte", "19 labels", "20 images"],
    );
}

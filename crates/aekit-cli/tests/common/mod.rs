//! Helpers shared by the CLI tests, which run the built `aekit` binary as a
//! user would, on small data. Each test file does `mod common;` and uses what
//! it needs, so some helpers go unused in some test binaries.
#![allow(dead_code)]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use tempfile::TempDir;

/// A fresh scratch directory, removed when the guard drops (also when the test panics).
pub fn tmp(name: &str) -> TempDir {
    tempfile::Builder::new()
        .prefix(&format!("aekit-cli-{name}-"))
        .tempdir()
        .unwrap()
}

/// Runs `aekit` with `args` and waits for it.
pub fn aekit(args: &[&str]) -> Output {
    aekit_env(args, &[])
}

/// Runs `aekit` with `args` and the extra environment variables `env`.
pub fn aekit_env(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_aekit"));
    c.args(args);
    for (k, v) in env {
        c.env(k, v);
    }
    c.output().unwrap()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Asserts a clean failure: non-zero exit, no panic, and every `needle` in stderr.
pub fn fails_with(o: &Output, needles: &[&str]) {
    let e = stderr(o);
    assert!(!o.status.success(), "should fail; stderr: {e}");
    assert!(!e.contains("panicked"), "panicked: {e}");
    for n in needles {
        assert!(e.contains(n), "stderr lacks `{n}`: {e}");
    }
}

pub fn json(path: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// The shared datasets folder (`../shared/datasets` beside the workspace) if
/// it holds `name`; otherwise prints why the calling test is skipped and
/// returns `None`, and the test returns early:
///
/// ```ignore
/// let Some(shared) = shared_datasets("mnist") else { return };
/// ```
pub fn shared_datasets(name: &str) -> Option<PathBuf> {
    let shared = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/datasets");
    if shared.join(name).is_dir() {
        Some(shared)
    } else {
        eprintln!("skipped: {} not found", shared.join(name).display());
        None
    }
}

pub fn gz(bytes: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(bytes).unwrap();
    e.finish().unwrap()
}

pub fn idx(dims: &[usize], data: &[u8]) -> Vec<u8> {
    aekit::data::idx::encode_idx(dims, data)
}

/// A scratch directory (see [`tmp`]) holding a tiny 8×8 IDX dataset: 60
/// training and 20 test images of 3 classes, in the four MNIST file names,
/// each gzipped (`name.gz`) when `gzip`.
pub fn idx_dir(name: &str, gzip: bool) -> TempDir {
    let dir = tmp(name);
    write_idx_dir(dir.path(), gzip);
    dir
}

/// A tiny 8×8 IDX dataset: 60 training and 20 test images of 3 classes.
pub fn write_idx_dir(dir: &Path, gzip: bool) {
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

/// A CIFAR-10 folder in `dir/cifar-10-batches-bin`: five training batches of
/// 20 images and a test batch of 20, smooth colour gradients that differ
/// per image and channel, labels cycling through the classes.
pub fn generated_cifar10(dir: &Path) {
    use aekit::data::cifar::{encode_cifar, CifarKind, CIFAR10_TEST, CIFAR10_TRAIN};
    let data = dir.join("cifar-10-batches-bin");
    std::fs::create_dir_all(&data).unwrap();
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
}

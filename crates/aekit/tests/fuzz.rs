//! Mutated inputs fed to every reader: valid IDX, CIFAR, NPY, tar,
//! safetensors model and TOML config files, with bytes flipped, cut, inserted
//! or appended. A reader must answer with a value or an error, never a panic
//! or an abort. The suite runs a few cases of each; for a longer run:
//!
//! ```sh
//! PROPTEST_CASES=20000 cargo test --release -p aekit --test fuzz
//! ```

use aekit::data::cifar::{encode_cifar, parse_cifar, CifarKind};
use aekit::data::idx::{encode_idx, parse_idx};
use aekit::data::npy::{npy_bytes, read_npy};
use aekit::data::tar::read_tar;
use aekit::models::conv::{CaeSpec, ConvAutoencoder};
use aekit::models::stacked::StackedDae;
use aekit::models::{DaeConfig, DenoisingAutoencoder};
use aekit::run::{RunConfig, Sections};
use aekit::train::TrainConfig;
use proptest::prelude::*;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// One way of damaging a file.
#[derive(Debug, Clone)]
enum Edit {
    /// Sets byte `at` (modulo the length) to `to`.
    Set(usize, u8),
    /// Cuts the file to `keep` bytes (modulo the length + 1).
    Cut(usize),
    /// Inserts `bytes` at `at`.
    Insert(usize, Vec<u8>),
    /// Appends `bytes`.
    Append(Vec<u8>),
}

fn edits() -> impl Strategy<Value = Vec<Edit>> {
    let one = prop_oneof![
        4 => (any::<usize>(), any::<u8>()).prop_map(|(a, b)| Edit::Set(a, b)),
        1 => any::<usize>().prop_map(Edit::Cut),
        1 => (any::<usize>(), proptest::collection::vec(any::<u8>(), 1..16)).prop_map(|(a, b)| Edit::Insert(a, b)),
        1 => proptest::collection::vec(any::<u8>(), 1..64).prop_map(Edit::Append),
    ];
    proptest::collection::vec(one, 1..6)
}

fn apply(mut b: Vec<u8>, edits: &[Edit]) -> Vec<u8> {
    for e in edits {
        match e {
            Edit::Set(at, to) if !b.is_empty() => {
                let i = at % b.len();
                b[i] = *to;
            }
            Edit::Set(..) => {}
            Edit::Cut(keep) => b.truncate(keep % (b.len() + 1)),
            Edit::Insert(at, bytes) => {
                let i = at % (b.len() + 1);
                b.splice(i..i, bytes.iter().copied());
            }
            Edit::Append(bytes) => b.extend_from_slice(bytes),
        }
    }
    b
}

/// A scratch folder for the files the readers take by path.
fn scratch() -> &'static Path {
    static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();
    DIR.get_or_init(|| tempfile::tempdir().unwrap()).path()
}

fn scratch_file(name: &str, bytes: &[u8]) -> PathBuf {
    // Cases run one after another within a test, but tests run in parallel.
    let p = scratch().join(format!("{name}-{:?}", std::thread::current().id()));
    std::fs::write(&p, bytes).unwrap();
    p
}

fn idx_images() -> Vec<u8> {
    encode_idx(&[3, 4, 5], &(0..60).map(|i| i as u8).collect::<Vec<_>>())
}

fn cifar_file() -> Vec<u8> {
    let img = vec![7u8; 3072];
    encode_cifar(CifarKind::Cifar100, &[(1, 2), (3, 4)], &[&img, &img])
}

fn tar_file() -> Vec<u8> {
    let mut b = Vec::new();
    let header = |name: &str, size: usize| {
        let mut h = [0u8; 512];
        h[..name.len()].copy_from_slice(name.as_bytes());
        h[100..107].copy_from_slice(b"0000644");
        h[124..135].copy_from_slice(format!("{size:011o}").as_bytes());
        h[156] = b'0';
        h[257..263].copy_from_slice(b"ustar\0");
        h[263..265].copy_from_slice(b"00");
        h[148..156].copy_from_slice(b"        ");
        let sum: u32 = h.iter().map(|&v| v as u32).sum();
        h[148..155].copy_from_slice(format!("{sum:06o}\0").as_bytes());
        h
    };
    for (name, body) in [("a.bin", &b"hello"[..]), ("dir/b.bin", &[9u8; 700][..])] {
        b.extend_from_slice(&header(name, body.len()));
        b.extend_from_slice(body);
        b.resize(b.len().div_ceil(512) * 512, 0);
    }
    b.resize(b.len() + 1024, 0);
    b
}

/// Small model files of each kind, written once.
fn model_files() -> &'static [(String, Vec<u8>)] {
    static FILES: OnceLock<Vec<(String, Vec<u8>)>> = OnceLock::new();
    FILES.get_or_init(|| {
        let dir = scratch();
        let dae = DenoisingAutoencoder::new(
            DaeConfig {
                n_vis: 12,
                n_hid: 5,
                ..DaeConfig::default()
            },
            TrainConfig::default(),
        );
        dae.save(&dir.join("dae.safetensors")).unwrap();
        StackedDae::new(12, &[6, 3], 1)
            .save(&dir.join("stack.safetensors"), Default::default())
            .unwrap();
        let spec = CaeSpec::preset("cae-mnist").unwrap();
        ConvAutoencoder::new(&spec, aekit::layers::Loss::Squared, 1)
            .unwrap()
            .save(&dir.join("cae.safetensors"), Default::default())
            .unwrap();
        ["dae", "stack", "cae"]
            .iter()
            .map(|k| {
                (
                    k.to_string(),
                    std::fs::read(dir.join(format!("{k}.safetensors"))).unwrap(),
                )
            })
            .collect()
    })
}

const CONFIG: &str = "kind = \"dae\"\n[data]\nsource = \"builtin\"\nval_size = 100\n\
                      [model]\nn_hid = 16\nnoise = \"mask:0.2\"\nloss = \"xent\"\n\
                      [train]\nepochs = 2\nbatch = 10\nlr = 0.1\n[lbfgs]\nmax_iter = 5\n";

const SECTIONS: &str = "arch = \"cae-mnist\"\n[data]\ntrain_size = 200\n[model]\nnoise = \"mask:0.1\"\n\
                        [train]\nepochs = 1\nlr = 0.003\n[classifier]\nkind = \"mlp:8\"\n";

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn idx_reader_never_panics(e in edits()) {
        let b = apply(idx_images(), &e);
        let _ = parse_idx(&b, Path::new("fuzz.idx"));
    }

    #[test]
    fn cifar_reader_never_panics(e in edits(), ten in any::<bool>()) {
        let b = apply(cifar_file(), &e);
        let kind = if ten { CifarKind::Cifar10 } else { CifarKind::Cifar100 };
        let _ = parse_cifar(&b, kind, Path::new("fuzz.bin"));
    }

    #[test]
    fn npy_reader_never_panics(e in edits()) {
        let good = npy_bytes(&[4, 3], &[0.5; 12]);
        let p = scratch_file("fuzz.npy", &apply(good, &e));
        let _ = read_npy(&p);
    }

    #[test]
    fn tar_reader_never_panics(e in edits()) {
        let b = apply(tar_file(), &e);
        let _ = read_tar(&mut &b[..], Path::new("fuzz.tar"), &mut |_| true);
    }

    #[test]
    fn model_readers_never_panic(e in edits(), which in 0usize..3) {
        let (kind, good) = &model_files()[which];
        let p = scratch_file(&format!("fuzz-{kind}.safetensors"), &apply(good.clone(), &e));
        let _ = DenoisingAutoencoder::load(&p);
        let _ = StackedDae::load(&p);
        let _ = ConvAutoencoder::load(&p);
    }

    #[test]
    fn config_readers_never_panic(e in edits()) {
        let b = apply(CONFIG.as_bytes().to_vec(), &e);
        if let Ok(text) = std::str::from_utf8(&b) {
            if let Ok(c) = RunConfig::from_toml(text, Path::new("fuzz.toml")) {
                let _ = c.validate();
            }
        }
        let b = apply(SECTIONS.as_bytes().to_vec(), &e);
        let p = scratch_file("fuzz-sections.toml", &b);
        if let Ok(c) = aekit::run::cae::CaeRun::read(&p) {
            let _ = c.spec();
        }
    }
}

#[test]
fn the_unmutated_inputs_are_read() {
    // The fuzzed files start out valid, so mutations explore near real data.
    assert_eq!(
        parse_idx(&idx_images(), Path::new("x")).unwrap().dims,
        vec![3, 4, 5]
    );
    assert_eq!(
        parse_cifar(&cifar_file(), CifarKind::Cifar100, Path::new("x"))
            .unwrap()
            .n,
        2
    );
    assert_eq!(
        read_npy(&scratch_file("ok.npy", &npy_bytes(&[4, 3], &[0.5; 12])))
            .unwrap()
            .0,
        vec![4, 3]
    );
    assert_eq!(
        read_tar(&mut &tar_file()[..], Path::new("x"), &mut |_| true)
            .unwrap()
            .len(),
        2
    );
    for (kind, bytes) in model_files() {
        let p = scratch_file(&format!("ok-{kind}.safetensors"), bytes);
        let ok = match kind.as_str() {
            "dae" => DenoisingAutoencoder::load(&p).is_ok(),
            "stack" => StackedDae::load(&p).is_ok(),
            _ => ConvAutoencoder::load(&p).is_ok(),
        };
        assert!(ok, "{kind}");
    }
    RunConfig::from_toml(CONFIG, Path::new("x"))
        .unwrap()
        .validate()
        .unwrap();
    let p = scratch_file("ok.toml", SECTIONS.as_bytes());
    aekit::run::cae::CaeRun::read(&p).unwrap().spec().unwrap();
}

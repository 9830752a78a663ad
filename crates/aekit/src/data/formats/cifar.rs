//! The CIFAR-10 and CIFAR-100 binary formats (Krizhevsky, 2009).
//!
//! A file is a plain sequence of fixed-size records with no header:
//!
//! - CIFAR-10 (`data_batch_1.bin` .. `data_batch_5.bin`, `test_batch.bin`):
//!   1 label byte in 0..=9, then 3072 pixel bytes; 3073 bytes a record.
//! - CIFAR-100 (`train.bin`, `test.bin`): a coarse label byte in 0..=19, a
//!   fine label byte in 0..=99, then 3072 pixel bytes; 3074 bytes a record.
//!   aekit uses the fine label.
//!
//! The pixels of a 32×32 colour image are stored channel by channel (CHW):
//! 1024 red bytes, then 1024 green, then 1024 blue, each channel row by row.
//! aekit keeps that order, so a row of the [`Dataset`] is `[3, 32, 32]` scaled
//! to [0, 1], with `image: Some((32, 32))` and [`Dataset::channels`] 3.
//!
//! As with IDX files, the whole file is checked before anything is built: its
//! length must be a positive multiple of the record size and every label must
//! be in range; every error names the file.

use crate::data::Dataset;
use crate::error::{Error, Result};
use std::path::{Path, PathBuf};

/// Image side in pixels.
pub const SIDE: usize = 32;
/// Colour channels (red, green, blue).
pub const CHANNELS: usize = 3;
/// Pixel bytes per record: `3 · 32 · 32`.
pub const PIXELS: usize = CHANNELS * SIDE * SIDE;

/// The CIFAR-10 training batches, in order.
pub const CIFAR10_TRAIN: [&str; 5] = [
    "data_batch_1.bin",
    "data_batch_2.bin",
    "data_batch_3.bin",
    "data_batch_4.bin",
    "data_batch_5.bin",
];
/// The CIFAR-10 test batch.
pub const CIFAR10_TEST: &str = "test_batch.bin";
/// The folder that `cifar-10-binary.tar.gz` unpacks into.
pub const CIFAR10_FOLDER: &str = "cifar-10-batches-bin";
/// The CIFAR-100 training file.
pub const CIFAR100_TRAIN: &str = "train.bin";
/// The CIFAR-100 test file.
pub const CIFAR100_TEST: &str = "test.bin";
/// The folder that `cifar-100-binary.tar.gz` unpacks into.
pub const CIFAR100_FOLDER: &str = "cifar-100-binary";

/// Which of the two binary formats a file is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CifarKind {
    /// One label byte (10 classes).
    Cifar10,
    /// A coarse (20 classes) and a fine (100 classes) label byte.
    Cifar100,
}

impl CifarKind {
    /// Label bytes before each record's pixels.
    pub fn label_bytes(self) -> usize {
        match self {
            CifarKind::Cifar10 => 1,
            CifarKind::Cifar100 => 2,
        }
    }

    /// Bytes per record: 3073 for CIFAR-10, 3074 for CIFAR-100.
    pub fn record_len(self) -> usize {
        self.label_bytes() + PIXELS
    }

    /// Number of classes of the label aekit keeps (10, or 100 fine classes).
    pub fn classes(self) -> usize {
        match self {
            CifarKind::Cifar10 => 10,
            CifarKind::Cifar100 => 100,
        }
    }

    /// The dataset's name in messages.
    pub fn name(self) -> &'static str {
        match self {
            CifarKind::Cifar10 => "CIFAR-10",
            CifarKind::Cifar100 => "CIFAR-100",
        }
    }

    /// The training and test file names.
    pub fn train_files(self) -> &'static [&'static str] {
        match self {
            CifarKind::Cifar10 => &CIFAR10_TRAIN,
            CifarKind::Cifar100 => &[CIFAR100_TRAIN],
        }
    }

    /// The test file name.
    pub fn test_file(self) -> &'static str {
        match self {
            CifarKind::Cifar10 => CIFAR10_TEST,
            CifarKind::Cifar100 => CIFAR100_TEST,
        }
    }

    /// The folder the official archive unpacks into.
    pub fn folder(self) -> &'static str {
        match self {
            CifarKind::Cifar10 => CIFAR10_FOLDER,
            CifarKind::Cifar100 => CIFAR100_FOLDER,
        }
    }

    /// Every file of the binary distribution that aekit reads.
    pub fn all_files(self) -> Vec<&'static str> {
        let mut v = self.train_files().to_vec();
        v.push(self.test_file());
        v
    }
}

/// Checks one file's bytes and appends its images (scaled to [0, 1], CHW)
/// to `x` and its labels to `labels`; returns the number of records. Nothing
/// is appended when the file is invalid. `path` only names the file in errors.
fn append_records(
    bytes: &[u8],
    kind: CifarKind,
    path: &Path,
    x: &mut Vec<f32>,
    labels: &mut Vec<u8>,
) -> Result<usize> {
    let rec = kind.record_len();
    if bytes.is_empty() || !bytes.len().is_multiple_of(rec) {
        return Err(Error::format(
            path,
            format!(
                "{} file is {} bytes, not a positive multiple of the {rec}-byte record \
                 ({} label byte{} + {PIXELS} pixel bytes){}",
                kind.name(),
                bytes.len(),
                kind.label_bytes(),
                if kind.label_bytes() == 1 { "" } else { "s" },
                if bytes.is_empty() {
                    String::new()
                } else {
                    format!(
                        ": {} whole records and {} bytes left over",
                        bytes.len() / rec,
                        bytes.len() % rec
                    )
                }
            ),
        ));
    }
    let n = bytes.len() / rec;
    for (i, r) in bytes.chunks_exact(rec).enumerate() {
        let check = |what: &str, v: u8, classes: usize| {
            if usize::from(v) < classes {
                Ok(())
            } else {
                Err(Error::format(
                    path,
                    format!(
                        "record {i} has {what}label {v}; {} {what}labels are 0..={}",
                        kind.name(),
                        classes - 1
                    ),
                ))
            }
        };
        match kind {
            CifarKind::Cifar10 => check("", r[0], 10)?,
            CifarKind::Cifar100 => {
                check("coarse ", r[0], 20)?;
                check("fine ", r[1], 100)?;
            }
        }
    }
    x.reserve(n * PIXELS);
    labels.reserve(n);
    for r in bytes.chunks_exact(rec) {
        labels.push(r[kind.label_bytes() - 1]);
        x.extend(r[kind.label_bytes()..].iter().map(|&p| f32::from(p) / 255.0));
    }
    Ok(n)
}

/// Parses the bytes of one CIFAR binary file; `path` only names it in errors.
pub fn parse_cifar(bytes: &[u8], kind: CifarKind, path: &Path) -> Result<Dataset> {
    let (mut x, mut labels) = (Vec::new(), Vec::new());
    let n = append_records(bytes, kind, path, &mut x, &mut labels)?;
    Ok(cifar_dataset(x, labels, n))
}

fn cifar_dataset(x: Vec<f32>, labels: Vec<u8>, n: usize) -> Dataset {
    Dataset {
        x,
        labels: Some(labels),
        n,
        dim: PIXELS,
        image: Some((SIDE, SIDE)),
    }
}

/// Reads the given files, in order, into one dataset.
pub fn read_cifar_files(paths: &[PathBuf], kind: CifarKind) -> Result<Dataset> {
    let (mut x, mut labels, mut n) = (Vec::new(), Vec::new(), 0);
    for p in paths {
        let bytes = std::fs::read(p).map_err(|e| Error::io("cannot read", p, e))?;
        n += append_records(&bytes, kind, p, &mut x, &mut labels)?;
    }
    Ok(cifar_dataset(x, labels, n))
}

/// Where the files of `kind` are under `dir`: `dir` itself, or the archive's
/// own sub-folder (`cifar-10-batches-bin/`, `cifar-100-binary/`), whichever
/// holds the first training file. `None` when neither does.
pub fn find_cifar_dir(dir: &Path, kind: CifarKind) -> Option<PathBuf> {
    let first = kind.train_files()[0];
    [dir.to_path_buf(), dir.join(kind.folder())]
        .into_iter()
        .find(|d| d.join(first).is_file())
}

/// Whether [`find_cifar_dir`] finds every file of `kind` under `dir` (a
/// complete unpacked download).
pub fn has_all_files(dir: &Path, kind: CifarKind) -> bool {
    find_cifar_dir(dir, kind).is_some_and(|d| kind.all_files().iter().all(|f| d.join(f).is_file()))
}

/// The official training and test sets of a CIFAR directory (see
/// [`find_cifar_dir`]): for CIFAR-10 the five training batches (50000
/// images) and the test batch (10000); for CIFAR-100 `train.bin` and
/// `test.bin`.
pub fn read_cifar_dir(dir: &Path, kind: CifarKind) -> Result<(Dataset, Dataset)> {
    let Some(base) = find_cifar_dir(dir, kind) else {
        let first = kind.train_files()[0];
        return Err(Error::format(
            dir,
            format!(
                "no {} binary files found (looked for {first} in {} and in {})",
                kind.name(),
                dir.display(),
                dir.join(kind.folder()).display()
            ),
        ));
    };
    let path = |f: &str| -> Result<PathBuf> {
        let p = base.join(f);
        if p.is_file() {
            Ok(p)
        } else {
            Err(Error::format(
                &p,
                format!(
                    "not found: a {} folder needs {}",
                    kind.name(),
                    kind.all_files().join(", ")
                ),
            ))
        }
    };
    let train_paths = kind
        .train_files()
        .iter()
        .map(|f| path(f))
        .collect::<Result<Vec<_>>>()?;
    let test_path = path(kind.test_file())?;
    let train = read_cifar_files(&train_paths, kind)?;
    let test = read_cifar_files(&[test_path], kind)?;
    Ok((train, test))
}

/// [`read_cifar_dir`] for CIFAR-10.
pub fn read_cifar10_dir(dir: &Path) -> Result<(Dataset, Dataset)> {
    read_cifar_dir(dir, CifarKind::Cifar10)
}

/// [`read_cifar_dir`] for CIFAR-100 (fine labels).
pub fn read_cifar100_dir(dir: &Path) -> Result<(Dataset, Dataset)> {
    read_cifar_dir(dir, CifarKind::Cifar100)
}

/// Encodes images and labels as a CIFAR binary file (for tests and for
/// users' own data). Each image is [`PIXELS`] bytes in CHW order; for
/// CIFAR-100 `labels` holds `(coarse, fine)` pairs, for CIFAR-10 the coarse
/// part is ignored. Panics when an image has the wrong length.
pub fn encode_cifar(kind: CifarKind, labels: &[(u8, u8)], images: &[&[u8]]) -> Vec<u8> {
    assert_eq!(labels.len(), images.len(), "one label per image");
    let mut out = Vec::with_capacity(images.len() * kind.record_len());
    for (&(coarse, fine), im) in labels.iter().zip(images) {
        assert_eq!(im.len(), PIXELS, "a CIFAR image has {PIXELS} bytes");
        if kind == CifarKind::Cifar100 {
            out.push(coarse);
        }
        out.push(fine);
        out.extend_from_slice(im);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Image `k`: channel c, pixel p holds `(k + 7c + p) mod 256`, so the first
    /// pixel of channel c is `k + 7c` and pixel (row 1, col 2) is `k + 7c + 34`.
    fn image(k: u8) -> Vec<u8> {
        (0..PIXELS)
            .map(|i| {
                let (c, p) = (i / (SIDE * SIDE), i % (SIDE * SIDE));
                (usize::from(k) + 7 * c + p) as u8
            })
            .collect()
    }

    /// A fresh scratch directory, removed when the guard drops (also on panic).
    fn tmp(name: &str) -> tempfile::TempDir {
        tempfile::Builder::new()
            .prefix(&format!("aekit-cifar-{name}-"))
            .tempdir()
            .unwrap()
    }

    fn err(bytes: &[u8], kind: CifarKind) -> String {
        parse_cifar(bytes, kind, Path::new("batch.bin"))
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn golden_cifar10_records() {
        let (a, b) = (image(10), image(200));
        let bytes = encode_cifar(CifarKind::Cifar10, &[(0, 3), (0, 9)], &[&a, &b]);
        assert_eq!(bytes.len(), 2 * 3073);
        assert_eq!(bytes[0], 3);
        let d = parse_cifar(&bytes, CifarKind::Cifar10, Path::new("x")).unwrap();
        assert_eq!((d.n, d.dim, d.image), (2, 3072, Some((32, 32))));
        assert_eq!(d.channels(), 3);
        assert_eq!(d.labels, Some(vec![3, 9]));
        // First pixel of R, G, B of image 0: bytes 10, 17, 24 (offsets 0,
        // 1024, 2048 of the row), divided by 255.
        let r = d.row(0);
        assert_eq!(
            (r[0], r[1024], r[2048]),
            (10.0 / 255.0, 17.0 / 255.0, 24.0 / 255.0)
        );
        // Image 1, green channel, row 1, column 2: CHW offset 1024 + 32 + 2,
        // byte (200 + 7 + 34) mod 256 = 241.
        assert_eq!(d.row(1)[1024 + 32 + 2], 241.0 / 255.0);
        // Image 1, blue, first pixel: (200 + 14) = 214.
        assert_eq!(d.row(1)[2048], 214.0 / 255.0);
    }

    #[test]
    fn cifar100_uses_the_fine_label() {
        let (a, b) = (image(1), image(2));
        let bytes = encode_cifar(CifarKind::Cifar100, &[(19, 99), (4, 30)], &[&a, &b]);
        assert_eq!(bytes.len(), 2 * 3074);
        assert_eq!(&bytes[3074..3076], &[4, 30]);
        let d = parse_cifar(&bytes, CifarKind::Cifar100, Path::new("x")).unwrap();
        assert_eq!(d.labels, Some(vec![99, 30]));
        assert_eq!(d.n_classes(), 100);
        // Image 1's red, green, blue first pixels: 2, 9, 16.
        let r = d.row(1);
        assert_eq!((r[0], r[1024], r[2048]), (2.0 / 255.0, 9.0 / 255.0, 16.0 / 255.0));
    }

    #[test]
    fn wrong_lengths_are_refused_with_the_record_size() {
        let im = image(0);
        let one = encode_cifar(CifarKind::Cifar10, &[(0, 1)], &[&im]);
        let e = err(&one[..3072], CifarKind::Cifar10);
        assert!(
            e.starts_with("batch.bin: ") && e.contains("3072 bytes") && e.contains("3073-byte record"),
            "{e}"
        );
        let mut long = one.clone();
        long.push(0);
        let e = err(&long, CifarKind::Cifar10);
        assert!(e.contains("1 whole records and 1 bytes left over"), "{e}");
        let e = err(&[], CifarKind::Cifar10);
        assert!(e.contains("0 bytes, not a positive multiple"), "{e}");
        // A CIFAR-10 record read as CIFAR-100 is one byte short.
        let e = err(&one, CifarKind::Cifar100);
        assert!(e.contains("3074-byte record (2 label bytes"), "{e}");
    }

    #[test]
    fn out_of_range_labels_name_the_record() {
        let im = image(0);
        let bytes = encode_cifar(CifarKind::Cifar10, &[(0, 1), (0, 2), (0, 10)], &[&im, &im, &im]);
        let e = err(&bytes, CifarKind::Cifar10);
        assert!(
            e.contains("record 2 has label 10; CIFAR-10 labels are 0..=9"),
            "{e}"
        );
        let bytes = encode_cifar(CifarKind::Cifar100, &[(0, 1), (0, 100)], &[&im, &im]);
        let e = err(&bytes, CifarKind::Cifar100);
        assert!(
            e.contains("record 1 has fine label 100; CIFAR-100 fine labels are 0..=99"),
            "{e}"
        );
        let bytes = encode_cifar(CifarKind::Cifar100, &[(20, 1)], &[&im]);
        let e = err(&bytes, CifarKind::Cifar100);
        assert!(e.contains("record 0 has coarse label 20"), "{e}");
    }

    #[test]
    fn reads_a_cifar10_folder_and_its_archive_subfolder() {
        let scratch = tmp("c10");
        let root = scratch.path().to_path_buf();
        let sub = root.join(CIFAR10_FOLDER);
        std::fs::create_dir_all(&sub).unwrap();
        for (k, f) in CIFAR10_TRAIN.iter().enumerate() {
            let (a, b) = (image(k as u8), image(100 + k as u8));
            let bytes = encode_cifar(CifarKind::Cifar10, &[(0, k as u8), (0, 9)], &[&a, &b]);
            std::fs::write(sub.join(f), bytes).unwrap();
        }
        let t = image(50);
        std::fs::write(
            sub.join(CIFAR10_TEST),
            encode_cifar(CifarKind::Cifar10, &[(0, 7)], &[&t]),
        )
        .unwrap();
        for dir in [&root, &sub] {
            assert!(has_all_files(dir, CifarKind::Cifar10));
            let (train, test) = read_cifar10_dir(dir).unwrap();
            assert_eq!((train.n, test.n), (10, 1));
            assert_eq!(train.labels, Some(vec![0, 9, 1, 9, 2, 9, 3, 9, 4, 9]));
            // Batches in order: row 4 is batch 3's first image, red 2/255.
            assert_eq!(train.row(4)[0], 2.0 / 255.0);
            assert_eq!(test.row(0)[1024], 57.0 / 255.0);
        }
        std::fs::remove_file(sub.join("data_batch_4.bin")).unwrap();
        assert!(!has_all_files(&root, CifarKind::Cifar10));
        let e = read_cifar10_dir(&root).unwrap_err().to_string();
        assert!(e.contains("data_batch_4.bin: not found"), "{e}");
        let e = read_cifar100_dir(&root).unwrap_err().to_string();
        assert!(
            e.contains("no CIFAR-100 binary files found") && e.contains("cifar-100-binary"),
            "{e}"
        );
    }

    #[test]
    fn reads_a_cifar100_folder() {
        let scratch = tmp("c100");
        let root = scratch.path();
        let a = image(0);
        std::fs::write(
            root.join(CIFAR100_TRAIN),
            encode_cifar(CifarKind::Cifar100, &[(3, 42), (3, 43)], &[&a, &a]),
        )
        .unwrap();
        let e = read_cifar100_dir(root).unwrap_err().to_string();
        assert!(e.contains("test.bin: not found"), "{e}");
        std::fs::write(
            root.join(CIFAR100_TEST),
            encode_cifar(CifarKind::Cifar100, &[(1, 5)], &[&a]),
        )
        .unwrap();
        let (train, test) = read_cifar100_dir(root).unwrap();
        assert_eq!((train.labels, test.labels), (Some(vec![42, 43]), Some(vec![5])));
    }
}

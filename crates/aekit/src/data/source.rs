//! Where a run's data comes from: the sources (built-in, MNIST,
//! Fashion-MNIST, CIFAR, a folder, an `.npy` file), which format a folder
//! holds, and how a source is split into training, validation and test parts.

use crate::data::builtin;
use crate::data::cifar::{self, CifarKind};
use crate::data::download;
use crate::data::formats::idx::IDX_NAMES;
use crate::data::formats::images;
use crate::data::variants::Variant;
use crate::data::Dataset;
use crate::error::{Error, Result};
use crate::tensor::rng::{seeded, shuffle};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// Where the data comes from and how it is split.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DataConfig {
    /// `builtin` (10k MNIST test images in the binary), `mnist`,
    /// `fashion-mnist`, `cifar10`, `cifar100`, a directory of IDX, CIFAR or
    /// PNG/JPEG files, an `.npy` or a `.csv` file.
    pub source: String,
    /// `[height, width]` every image of a folder is resized to; unset, the
    /// images must share one size.
    pub size: Option<[usize; 2]>,
    /// Cache folder for downloads; unset means `$AEKIT_DATA`, else the user's
    /// cache directory.
    pub data_dir: Option<PathBuf>,
    /// Training examples (class-balanced subset); unset means all that remain
    /// after validation.
    pub train_size: Option<usize>,
    /// Validation examples; unset means 1000 (built-in) or 10000. 0 disables
    /// validation and early stopping.
    pub val_size: Option<usize>,
}

impl Default for DataConfig {
    fn default() -> Self {
        DataConfig {
            source: "builtin".into(),
            size: None,
            data_dir: None,
            train_size: None,
            val_size: None,
        }
    }
}

impl DataConfig {
    pub fn source(&self) -> Result<DataSource> {
        let s: DataSource = self
            .source
            .parse()
            .map_err(|e: String| Error::config("data.source", e))?;
        s.resolve(self.size.map(|[h, w]| (h, w)))
    }

    /// The validation size in force.
    pub fn val_size(&self) -> Result<usize> {
        Ok(self
            .val_size
            .unwrap_or_else(|| default_val_size(&self.source().unwrap_or(DataSource::Builtin))))
    }
}

/// Indices of a class-balanced subset of `size` examples: `size / classes`
/// of each class (the first `size % classes` classes get one more), drawn at
/// random with `seed`, then shuffled. Fails when a class has too few.
pub fn balanced_subset(labels: &[u8], size: usize, seed: u64) -> Result<Vec<usize>> {
    let classes = labels.iter().map(|&l| l as usize + 1).max().unwrap_or(0);
    if classes == 0 {
        return Err(Error::config("train_size", "no labelled examples to draw from"));
    }
    let mut rng = seeded(seed);
    let mut by_class: Vec<Vec<usize>> = vec![Vec::new(); classes];
    for (i, &l) in labels.iter().enumerate() {
        by_class[l as usize].push(i);
    }
    let mut out = Vec::with_capacity(size);
    for (c, members) in by_class.iter_mut().enumerate() {
        let want = size / classes + usize::from(c < size % classes);
        if members.len() < want {
            return Err(Error::config(
                "train_size",
                format!(
                    "a class-balanced subset of {size} needs {want} examples of class {c}, but only {} exist",
                    members.len()
                ),
            ));
        }
        shuffle(members, &mut rng);
        out.extend_from_slice(&members[..want]);
    }
    shuffle(&mut out, &mut rng);
    Ok(out)
}

/// A user's file split: all rows but the last tenth (at least one) for
/// training, those for testing; refused when it has under 2 rows or no
/// columns.
fn last_tenth_is_test(all: Dataset, f: &Path) -> Result<(Dataset, Dataset)> {
    if all.n < 2 {
        return Err(Error::format(f, "needs at least 2 rows (training and test)"));
    }
    if all.dim == 0 {
        return Err(Error::format(f, "has 0 columns: there is nothing to learn from"));
    }
    let n = all.n;
    let cut = n - (n / 10).max(1);
    Ok((
        all.select(&(0..cut).collect::<Vec<_>>()),
        all.select(&(cut..n).collect::<Vec<_>>()),
    ))
}

/// Training, validation and test parts of one data source.
#[derive(Debug, Clone)]
pub struct Splits {
    pub train: Dataset,
    pub val: Dataset,
    pub test: Dataset,
    /// A sentence saying where each part came from.
    pub description: String,
}

/// Where a run's data comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DataSource {
    /// The 10k MNIST test images compiled into aekit.
    Builtin,
    /// MNIST, from the cache or downloaded.
    Mnist,
    /// Fashion-MNIST, from the cache or downloaded.
    FashionMnist,
    /// CIFAR-10 (binary version), from the cache or downloaded.
    Cifar10,
    /// CIFAR-100 (binary version, fine labels), from the cache or downloaded.
    Cifar100,
    /// An original MNIST variant of Larochelle et al. (2007) (`mnist-basic`,
    /// `mnist-rot`, `mnist-bg-rand`, `mnist-bg-img`, `mnist-bg-img-rot`),
    /// from the cache or downloaded.
    MnistVariant(Variant),
    /// A directory of CIFAR-10 or CIFAR-100 binary files, or else of IDX
    /// files, under their usual names (see [`read_data_dir`]).
    Dir(PathBuf),
    /// An `.npy` file of f32 rows (e.g. from `aekit patches`); its last tenth
    /// is the test part.
    Npy(PathBuf),
    /// A `.csv` file of numbers with a header row; its last tenth is the
    /// test part.
    Csv(PathBuf),
    /// A folder of PNG/JPEG images (see [`crate::data::formats::images`]),
    /// resized to (height, width) when a size is given.
    Images(PathBuf, Option<(usize, usize)>),
}

impl std::str::FromStr for DataSource {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        Ok(match s {
            "builtin" => DataSource::Builtin,
            "mnist" => DataSource::Mnist,
            "fashion-mnist" | "fashion_mnist" => DataSource::FashionMnist,
            "cifar10" | "cifar-10" => DataSource::Cifar10,
            "cifar100" | "cifar-100" => DataSource::Cifar100,
            v if v.starts_with("mnist-") && v[6..].parse::<Variant>().is_ok() => {
                DataSource::MnistVariant(v[6..].parse()?)
            }
            "" => return Err("empty data source".into()),
            f if f.ends_with(".npy") => DataSource::Npy(PathBuf::from(f)),
            f if f.to_ascii_lowercase().ends_with(".csv") => DataSource::Csv(PathBuf::from(f)),
            dir => DataSource::Dir(PathBuf::from(dir)),
        })
    }
}

impl DataSource {
    /// A folder that holds images (and no IDX, CIFAR or `.amat` files)
    /// becomes [`DataSource::Images`], resized to `size` when given; a size
    /// for any other source is refused.
    pub fn resolve(self, size: Option<(usize, usize)>) -> Result<DataSource> {
        let resolved = match self {
            DataSource::Dir(d) if !holds_dataset_files(&d) && images::holds_images(&d) => {
                DataSource::Images(d, size)
            }
            DataSource::Images(d, s) => DataSource::Images(d, size.or(s)),
            other => other,
        };
        if let Some((h, w)) = size {
            match &resolved {
                DataSource::Images(..) if h > 0 && w > 0 => {}
                DataSource::Images(..) => {
                    return Err(Error::config("size", "height and width must be at least 1"));
                }
                other => {
                    return Err(Error::config(
                        "size",
                        format!("--size H,W resizes a folder of PNG/JPEG images; `{other}` is not one"),
                    ))
                }
            }
        }
        Ok(resolved)
    }
}

/// Whether `dir` holds `.amat`, CIFAR or IDX files (what [`read_data_dir`]
/// reads before it looks for images).
fn holds_dataset_files(dir: &Path) -> bool {
    crate::data::formats::amat::find_amat_pair(dir).is_some()
        || [CifarKind::Cifar10, CifarKind::Cifar100]
            .into_iter()
            .any(|k| cifar::find_cifar_dir(dir, k).is_some())
        || find_idx_file(dir, IDX_NAMES[0]).is_ok()
}

impl std::fmt::Display for DataSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DataSource::Builtin => write!(f, "builtin"),
            DataSource::Mnist => write!(f, "mnist"),
            DataSource::FashionMnist => write!(f, "fashion-mnist"),
            DataSource::Cifar10 => write!(f, "cifar10"),
            DataSource::Cifar100 => write!(f, "cifar100"),
            DataSource::MnistVariant(v) => write!(f, "mnist-{v}"),
            DataSource::Dir(p) | DataSource::Npy(p) | DataSource::Csv(p) | DataSource::Images(p, _) => {
                write!(f, "{}", p.display())
            }
        }
    }
}

/// Finds `name`, `name.gz`, or the dotted variant (`train-images.idx3-ubyte`)
/// in `dir`.
pub fn find_idx_file(dir: &Path, name: &str) -> Result<PathBuf> {
    let dotted = name.replacen("-idx", ".idx", 1);
    for cand in [
        name.to_string(),
        format!("{name}.gz"),
        dotted.clone(),
        format!("{dotted}.gz"),
    ] {
        let p = dir.join(&cand);
        if p.is_file() {
            return Ok(p);
        }
    }
    Err(Error::format(
        &dir.join(name),
        format!("not found (looked for {name} and {name}.gz in {})", dir.display()),
    ))
}

/// The official train and test sets of an IDX directory; `classes`, when
/// the dataset is known (MNIST, Fashion-MNIST: 10), bounds the labels.
pub fn read_idx_dir(dir: &Path, classes: Option<usize>) -> Result<(Dataset, Dataset)> {
    if !dir.exists() {
        return Err(Error::format(
            dir,
            "not found (a dataset name, a folder, or an .npy or .csv file)",
        ));
    }
    if !dir.is_dir() {
        return Err(Error::format(dir, "is not a directory of IDX files"));
    }
    let p: Vec<PathBuf> = IDX_NAMES
        .iter()
        .map(|n| find_idx_file(dir, n))
        .collect::<Result<_>>()?;
    let train = Dataset::read_idx_pair(&p[0], Some(&p[1]))?;
    let test = Dataset::read_idx_pair(&p[2], Some(&p[3]))?;
    if train.dim != test.dim {
        let shape = |d: &Dataset| match d.image {
            Some((h, w)) => format!("{h}×{w} images"),
            None => format!("rows of {}", d.dim),
        };
        return Err(Error::format(
            dir,
            format!(
                "the training images ({}) are {} but the test images ({}) are {}: the files come from different datasets",
                p[0].display(),
                shape(&train),
                p[2].display(),
                shape(&test)
            ),
        ));
    }
    check_labels(&train, &p[1], &test, &p[3], classes)?;
    Ok((train, test))
}

/// Labels must name classes: below `classes` when the dataset's class count
/// is known; otherwise counted from 0 without gaps wider than the classes
/// that appear (labels up to 200 with 4 distinct values are a broken file,
/// not a 201-class problem).
fn check_labels(
    train: &Dataset,
    train_path: &Path,
    test: &Dataset,
    test_path: &Path,
    classes: Option<usize>,
) -> Result<()> {
    let (Some(a), Some(b)) = (&train.labels, &test.labels) else {
        return Ok(());
    };
    let mut seen = [false; 256];
    a.iter().chain(b).for_each(|&l| seen[l as usize] = true);
    let distinct = seen.iter().filter(|&&s| s).count();
    let max = seen.iter().rposition(|&s| s).unwrap_or(0);
    let limit = match classes {
        Some(c) => c,
        None if max >= 10 && max + 1 > 2 * distinct => distinct,
        None => return Ok(()),
    };
    for (labels, path) in [(a, train_path), (b, test_path)] {
        if let Some(i) = labels.iter().position(|&l| l as usize >= limit) {
            let why = match classes {
                Some(c) => format!("this dataset has {c} classes (0 to {})", c - 1),
                None => format!(
                    "labels run up to {max} but only {distinct} distinct values appear: \
                     classes must be numbered from 0 without gaps"
                ),
            };
            return Err(Error::format(
                path,
                format!("label {} at position {i} is out of range: {why}", labels[i]),
            ));
        }
    }
    Ok(())
}

/// The official train and test sets of a data directory: CIFAR-10 when it
/// holds `data_batch_1.bin` (directly or in `cifar-10-batches-bin/`),
/// CIFAR-100 when it holds `train.bin` (directly or in `cifar-100-binary/`),
/// IDX files otherwise.
pub fn read_data_dir(dir: &Path) -> Result<(Dataset, Dataset)> {
    if crate::data::formats::amat::find_amat_pair(dir).is_some() {
        return crate::data::formats::amat::read_amat_dir(dir);
    }
    for kind in [CifarKind::Cifar10, CifarKind::Cifar100] {
        if cifar::find_cifar_dir(dir, kind).is_some() {
            return cifar::read_cifar_dir(dir, kind);
        }
    }
    if dir.is_dir() && !holds_dataset_files(dir) {
        // Images, or an error saying the folder holds none of the kinds.
        return images::read_image_dir(dir, None);
    }
    read_idx_dir(dir, None)
}

/// Splits a training pool into training and validation parts: a seeded
/// shuffle, the last `val_size` to validation, then `train_size` (all the
/// rest when `None`) to training, class-balanced when a size is given and
/// labels exist.
pub fn split_pool(
    pool: &Dataset,
    train_size: Option<usize>,
    val_size: usize,
    seed: u64,
) -> Result<(Dataset, Dataset)> {
    if val_size >= pool.n {
        return Err(Error::config(
            "val_size",
            format!("{val_size} leaves no training examples out of {}", pool.n),
        ));
    }
    let mut idx: Vec<usize> = (0..pool.n).collect();
    shuffle(&mut idx, &mut seeded(seed ^ 0x5eed_5711));
    let (rest, val_idx) = idx.split_at(pool.n - val_size);
    let val = pool.select(val_idx);
    let rest = pool.select(rest);
    let train = match train_size {
        None => rest,
        Some(0) => return Err(Error::config("train_size", "must be at least 1")),
        Some(s) if s > rest.n => {
            return Err(Error::config(
                "train_size",
                format!(
                    "{s} is more than the {} examples left of {} after holding {val_size} out for validation \
                     (val_size; set it with --val-size)",
                    rest.n, pool.n
                ),
            ))
        }
        Some(s) => match &rest.labels {
            Some(l) => rest.select(&balanced_subset(l, s, seed)?),
            None => rest.select(&(0..s).collect::<Vec<_>>()),
        },
    };
    Ok((train, val))
}

/// Default validation size: 1000 for the built-in data, none for an `.npy`
/// file, 10000 otherwise (the usual 50k/10k split of MNIST's 60k training
/// images, and 10000 of CIFAR's 50000, leaving 40000 for training).
pub fn default_val_size(source: &DataSource) -> usize {
    match source {
        DataSource::Builtin => 1000,
        DataSource::MnistVariant(_) => 2000,
        DataSource::Npy(_) | DataSource::Csv(_) | DataSource::Images(..) => 0,
        DataSource::Mnist
        | DataSource::FashionMnist
        | DataSource::Cifar10
        | DataSource::Cifar100
        | DataSource::Dir(_) => 10_000,
    }
}

/// The official train and test sets of a source (for the built-in data, the
/// first 8000 and last 2000 of the 10k images; for CIFAR-10, the five
/// training batches and the test batch; for a directory, CIFAR-10, CIFAR-100
/// or IDX files as [`read_data_dir`] finds them).
pub fn load_train_test(source: &DataSource, data_dir: Option<&Path>) -> Result<(Dataset, Dataset)> {
    let root = || {
        data_dir
            .map(Path::to_path_buf)
            .unwrap_or_else(download::default_data_dir)
    };
    match source {
        DataSource::Builtin => {
            let all = builtin::builtin_mnist()?;
            let s = builtin::BUILTIN_TEST_START;
            let train = all.select(&(0..s).collect::<Vec<_>>());
            let test = all.select(&(s..all.n).collect::<Vec<_>>());
            Ok((train, test))
        }
        DataSource::Mnist => read_idx_dir(&download::ensure_dataset(&download::mnist(), &root())?, Some(10)),
        DataSource::FashionMnist => read_idx_dir(
            &download::ensure_dataset(&download::fashion_mnist(), &root())?,
            Some(10),
        ),
        DataSource::Cifar10 => cifar::read_cifar10_dir(&download::ensure_cifar10(&root())?),
        DataSource::Cifar100 => cifar::read_cifar100_dir(&download::ensure_cifar100(&root())?),
        DataSource::MnistVariant(v) => crate::data::formats::amat::read_amat_dir(&download::ensure_zip(
            &download::lisa_variant(*v),
            &root(),
        )?),
        DataSource::Dir(d) => read_data_dir(d),
        DataSource::Images(d, size) => images::read_image_dir(d, *size),
        DataSource::Csv(f) => last_tenth_is_test(crate::data::table::read_numeric_csv(f)?, f),
        DataSource::Npy(f) => last_tenth_is_test(read_npy_rows(f)?, f),
    }
}

/// Every row of a user's file or image folder, unsplit, as applying a model
/// to all of it reads them (a single row or image is enough); `None` for a
/// named dataset or a folder of IDX, CIFAR or `.amat` files, which come
/// split.
pub fn load_whole(source: &DataSource) -> Result<Option<Dataset>> {
    Ok(match source {
        DataSource::Csv(f) => Some(crate::data::table::read_numeric_csv(f)?),
        DataSource::Npy(f) => Some(read_npy_rows(f)?),
        DataSource::Images(d, size) => Some(images::read_images(&images::all_files(d)?, *size)?),
        _ => None,
    })
}

/// A 2-d `.npy` file of finite values as rows.
fn read_npy_rows(f: &Path) -> Result<Dataset> {
    let (shape, x) = crate::data::formats::npy::read_npy(f)?;
    let [n, dim] = shape[..] else {
        return Err(crate::Error::format(
            f,
            format!("expected a 2-d array of rows, got shape {shape:?}"),
        ));
    };
    if let Some(i) = x.iter().position(|v| !v.is_finite()) {
        return Err(crate::Error::format(
            f,
            format!(
                "row {}, column {} is {} (data must be finite)",
                i / dim.max(1),
                i % dim.max(1),
                x[i]
            ),
        ));
    }
    Ok(Dataset {
        x,
        labels: None,
        n,
        dim,
        image: None,
    })
}

/// Training, validation and test parts; see [`split_pool`].
pub fn load_splits(
    source: &DataSource,
    data_dir: Option<&Path>,
    train_size: Option<usize>,
    val_size: usize,
    seed: u64,
) -> Result<Splits> {
    let (pool, test) = load_train_test(source, data_dir)?;
    let pool_n = pool.n;
    let (train, val) = split_pool(&pool, train_size, val_size, seed)?;
    let description = match source {
        DataSource::Builtin => format!(
            "built-in data (the 10k MNIST test images): {} for training and {} for validation drawn from images 0..{pool_n}, \
             and images {pool_n}..10000 ({}) held out as the test part",
            train.n, val.n, test.n
        ),
        DataSource::Npy(f) | DataSource::Csv(f) | DataSource::Images(f, _) => format!(
            "{}: {} training and {} validation rows drawn from its first {pool_n} rows; the last {} rows are the test part",
            f.display(),
            train.n,
            val.n,
            test.n
        ),
        DataSource::Cifar10 => format!(
            "CIFAR-10: {} training and {} validation images drawn from the {pool_n} official training images \
             (data_batch_1..5.bin); the {} images of test_batch.bin are the test part",
            train.n, val.n, test.n
        ),
        DataSource::Cifar100 => format!(
            "CIFAR-100 (fine labels): {} training and {} validation images drawn from the {pool_n} official training \
             images (train.bin); the {} images of test.bin are the test part",
            train.n, val.n, test.n
        ),
        other => format!(
            "{other}: {} training and {} validation images drawn from the {pool_n} official training images; \
             the {} official test images are the test part",
            train.n, val.n, test.n
        ),
    };
    Ok(Splits {
        train,
        val,
        test,
        description,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::idx::IdxArray;

    fn labelled(labels: Vec<u8>) -> Dataset {
        let n = labels.len();
        Dataset {
            x: (0..n).map(|i| i as f32).collect(),
            labels: Some(labels),
            n,
            dim: 1,
            image: None,
        }
    }

    #[test]
    fn balanced_subset_is_uniform_over_classes() {
        let labels: Vec<u8> = (0..1000)
            .map(|i| [0, 0, 0, 1, 2, 2, 3, 3, 3, 3][i % 10])
            .collect();
        let idx = balanced_subset(&labels, 102, 1).unwrap();
        assert_eq!(idx.len(), 102);
        let mut counts = [0; 4];
        for &i in &idx {
            counts[labels[i] as usize] += 1;
        }
        assert_eq!(counts, [26, 26, 25, 25]);
        let mut sorted = idx.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(sorted.len(), 102, "no example drawn twice");
        assert!(balanced_subset(&labels, 900, 1)
            .unwrap_err()
            .to_string()
            .contains("class 1"));
    }

    #[test]
    fn split_is_disjoint_and_seeded() {
        let pool = labelled((0..100).map(|i| (i % 5) as u8).collect());
        let (tr, va) = split_pool(&pool, Some(50), 20, 3).unwrap();
        assert_eq!((tr.n, va.n), (50, 20));
        for v in &va.x {
            assert!(!tr.x.contains(v));
        }
        let (tr2, _) = split_pool(&pool, Some(50), 20, 3).unwrap();
        assert_eq!(tr.x, tr2.x);
        assert!(split_pool(&pool, None, 100, 3).is_err());
        assert!(split_pool(&pool, Some(81), 20, 3).is_err());
    }

    #[test]
    fn channels_follow_the_image_shape() {
        let mut d = labelled(vec![0, 1]);
        assert_eq!(d.channels(), 1);
        d.dim = 3 * 4 * 5;
        d.image = Some((4, 5));
        assert_eq!(d.channels(), 3);
        d.dim = 28 * 28;
        d.image = Some((28, 28));
        assert_eq!(d.channels(), 1);
    }

    #[test]
    fn cifar_sources_parse_and_display() {
        for (s, want, shown) in [
            ("cifar10", DataSource::Cifar10, "cifar10"),
            ("cifar-10", DataSource::Cifar10, "cifar10"),
            ("cifar100", DataSource::Cifar100, "cifar100"),
            ("cifar-100", DataSource::Cifar100, "cifar100"),
        ] {
            let got: DataSource = s.parse().unwrap();
            assert_eq!(got, want);
            assert_eq!(got.to_string(), shown);
            assert_eq!(shown.parse::<DataSource>().unwrap(), want);
        }
        assert_eq!(
            "cifar".parse::<DataSource>().unwrap(),
            DataSource::Dir("cifar".into())
        );
    }

    #[test]
    fn a_data_dir_is_read_as_cifar10_cifar100_or_idx() {
        use crate::data::cifar::{encode_cifar, CIFAR100_FOLDER, CIFAR10_TEST, CIFAR10_TRAIN};
        use crate::data::idx::encode_idx;
        let scratch = tempfile::Builder::new()
            .prefix("aekit-datadir-")
            .tempdir()
            .unwrap();
        let root = scratch.path();
        let px = vec![255u8; cifar::PIXELS];

        // CIFAR-10, flat: labels 0..5 for the batches, 6 for the test batch.
        let c10 = root.join("c10");
        std::fs::create_dir_all(&c10).unwrap();
        for (k, f) in CIFAR10_TRAIN.iter().chain([&CIFAR10_TEST]).enumerate() {
            let bytes = encode_cifar(CifarKind::Cifar10, &[(0, k as u8)], &[&px]);
            std::fs::write(c10.join(f), bytes).unwrap();
        }
        let (train, test) = read_data_dir(&c10).unwrap();
        assert_eq!(train.labels, Some(vec![0, 1, 2, 3, 4]));
        assert_eq!(test.labels, Some(vec![5]));
        assert_eq!((train.dim, train.channels(), train.x[0]), (3072, 3, 1.0));

        // CIFAR-100 in the archive's sub-folder.
        let c100 = root.join("c100");
        std::fs::create_dir_all(c100.join(CIFAR100_FOLDER)).unwrap();
        for (f, fine) in [("train.bin", 77), ("test.bin", 88)] {
            let bytes = encode_cifar(CifarKind::Cifar100, &[(1, fine)], &[&px]);
            std::fs::write(c100.join(CIFAR100_FOLDER).join(f), bytes).unwrap();
        }
        let (train, test) = read_data_dir(&c100).unwrap();
        assert_eq!((train.labels, test.labels), (Some(vec![77]), Some(vec![88])));

        // IDX otherwise.
        let idx = root.join("idx");
        std::fs::create_dir_all(&idx).unwrap();
        for (name, bytes) in IDX_NAMES.iter().zip([
            encode_idx(&[2, 2, 2], &[0, 51, 102, 153, 204, 255, 0, 0]),
            encode_idx(&[2], &[1, 2]),
            encode_idx(&[1, 2, 2], &[255; 4]),
            encode_idx(&[1], &[3]),
        ]) {
            std::fs::write(idx.join(name), bytes).unwrap();
        }
        let (train, test) = read_data_dir(&idx).unwrap();
        assert_eq!((train.n, train.image, test.n), (2, Some((2, 2)), 1));
        assert_eq!((train.x[1], train.channels()), (0.2, 1));

        // None of them: a message naming every kind it looked for.
        let empty = root.join("empty");
        std::fs::create_dir_all(&empty).unwrap();
        let e = read_data_dir(&empty).unwrap_err().to_string();
        assert!(e.contains("train-images-idx3-ubyte"), "{e}");
    }

    #[test]
    fn label_count_mismatch_names_both_files() {
        let im = IdxArray {
            dims: vec![3, 2, 2],
            data: vec![0; 12],
        };
        let lb = IdxArray {
            dims: vec![4],
            data: vec![0; 4],
        };
        let e = Dataset::from_idx(im, Some(lb), Path::new("imgs"), Path::new("lbls"))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("lbls") && e.contains("4 labels") && e.contains("imgs has 3 images"),
            "{e}"
        );
    }

    /// An IDX folder: 8×8 training images with `train` labels, `test_hw`
    /// test images with `test` labels.
    fn idx_folder(train: &[u8], test: &[u8], test_hw: usize) -> tempfile::TempDir {
        use crate::data::idx::encode_idx;
        let d = tempfile::tempdir().unwrap();
        let (a, b) = (train.len(), test.len());
        let files = [
            (IDX_NAMES[0], encode_idx(&[a, 8, 8], &vec![7; a * 64])),
            (IDX_NAMES[1], encode_idx(&[a], train)),
            (
                IDX_NAMES[2],
                encode_idx(&[b, test_hw, test_hw], &vec![7; b * test_hw * test_hw]),
            ),
            (IDX_NAMES[3], encode_idx(&[b], test)),
        ];
        for (name, bytes) in files {
            std::fs::write(d.path().join(name), bytes).unwrap();
        }
        d
    }

    #[test]
    fn labels_outside_the_classes_are_refused_with_file_and_position() {
        // A known dataset: 10 classes.
        let d = idx_folder(&[0, 1, 2, 12], &[0, 1], 8);
        let e = read_idx_dir(d.path(), Some(10)).unwrap_err().to_string();
        assert!(
            e.contains("train-labels") && e.contains("label 12 at position 3") && e.contains("10 classes"),
            "{e}"
        );
        // A folder of unknown data: labels with wide gaps are a broken file…
        let d = idx_folder(&[0, 1, 200, 2], &[0, 1], 8);
        let e = read_idx_dir(d.path(), None).unwrap_err().to_string();
        assert!(
            e.contains("label 200 at position 2") && e.contains("4 distinct"),
            "{e}"
        );
        // …but 47 classes, all present, are fine.
        let many: Vec<u8> = (0..47).collect();
        let (train, _) = read_idx_dir(idx_folder(&many, &[0, 46], 8).path(), None).unwrap();
        assert_eq!(train.n_classes(), 47);
    }

    #[test]
    fn a_train_test_width_mismatch_names_both_files() {
        let d = idx_folder(&[0, 1], &[0, 1], 5);
        let e = read_idx_dir(d.path(), None).unwrap_err().to_string();
        assert!(
            e.contains("train-images") && e.contains("8×8") && e.contains("t10k-images") && e.contains("5×5"),
            "{e}"
        );
    }

    #[test]
    fn a_train_size_too_large_names_the_validation_hold_out() {
        let pool = labelled((0..100).map(|i| (i % 4) as u8).collect());
        let e = split_pool(&pool, Some(95), 10, 1).unwrap_err().to_string();
        assert!(
            e.contains("90 examples left of 100 after holding 10 out") && e.contains("--val-size"),
            "{e}"
        );
    }

    #[test]
    fn npy_data_that_is_not_finite_or_has_no_columns_is_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let f = tmp.path().join("x.npy");
        let mut v = vec![0.25f32; 20 * 3];
        v[3 * 3 + 2] = f32::INFINITY;
        crate::data::npy::write_npy(&f, &[20, 3], &v).unwrap();
        let e = load_train_test(&DataSource::Npy(f.clone()), None)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("x.npy") && e.contains("row 3, column 2") && e.contains("finite"),
            "{e}"
        );
        crate::data::npy::write_npy(&f, &[20, 0], &[]).unwrap();
        let e = load_train_test(&DataSource::Npy(f), None)
            .unwrap_err()
            .to_string();
        assert!(e.contains("0 columns"), "{e}");
    }
}

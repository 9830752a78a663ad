//! Datasets: IDX files, CIFAR binary files, the built-in MNIST sample,
//! downloads, splits and corruption.

pub mod builtin;
pub mod cifar;
pub mod corruption;
pub mod dataset;
pub mod download;
pub mod idx;
pub mod patches;
pub mod tar;

pub use corruption::Corruption;
pub use dataset::{balanced_subset, DataSource, Dataset, Splits};

use crate::error::Result;
use std::path::Path;

/// Default validation size: 1000 for the built-in data, none for an `.npy`
/// file, 10000 otherwise (the usual 50k/10k split of MNIST's 60k training
/// images, and 10000 of CIFAR's 50000, leaving 40000 for training).
pub fn default_val_size(source: &DataSource) -> usize {
    match source {
        DataSource::Builtin => 1000,
        DataSource::Npy(_) => 0,
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
/// or IDX files as [`dataset::read_data_dir`] finds them).
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
        DataSource::Mnist => dataset::read_idx_dir(&download::ensure_dataset(&download::mnist(), &root())?),
        DataSource::FashionMnist => {
            dataset::read_idx_dir(&download::ensure_dataset(&download::fashion_mnist(), &root())?)
        }
        DataSource::Cifar10 => cifar::read_cifar10_dir(&download::ensure_cifar10(&root())?),
        DataSource::Cifar100 => cifar::read_cifar100_dir(&download::ensure_cifar100(&root())?),
        DataSource::Dir(d) => dataset::read_data_dir(d),
        DataSource::Npy(f) => {
            let (shape, x) = crate::io::npy::read_npy(f)?;
            let [n, dim] = shape[..] else {
                return Err(crate::Error::format(
                    f,
                    format!("expected a 2-d array of rows, got shape {shape:?}"),
                ));
            };
            if n < 2 {
                return Err(crate::Error::format(
                    f,
                    "needs at least 2 rows (training and test)",
                ));
            }
            let all = Dataset {
                x,
                labels: None,
                n,
                dim,
                image: None,
            };
            let cut = n - (n / 10).max(1);
            Ok((
                all.select(&(0..cut).collect::<Vec<_>>()),
                all.select(&(cut..n).collect::<Vec<_>>()),
            ))
        }
    }
}

/// Training, validation and test parts; see [`dataset::split_pool`].
pub fn load_splits(
    source: &DataSource,
    data_dir: Option<&Path>,
    train_size: Option<usize>,
    val_size: usize,
    seed: u64,
) -> Result<Splits> {
    let (pool, test) = load_train_test(source, data_dir)?;
    let pool_n = pool.n;
    let (train, val) = dataset::split_pool(&pool, train_size, val_size, seed)?;
    let description = match source {
        DataSource::Builtin => format!(
            "built-in data (the 10k MNIST test images): {} for training and {} for validation drawn from images 0..{pool_n}, \
             and images {pool_n}..10000 ({}) held out as the test part",
            train.n, val.n, test.n
        ),
        DataSource::Npy(f) => format!(
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

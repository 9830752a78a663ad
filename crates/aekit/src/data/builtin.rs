//! The built-in dataset: the 10,000 MNIST test images and labels (LeCun,
//! Cortes and Burges), compiled into the binary so the main job runs on a
//! fresh machine with no download.

use crate::data::idx::parse_idx;
use crate::data::Dataset;
use crate::error::Result;
use std::path::Path;

static IMAGES: &[u8] = include_bytes!("../../data/t10k-images-idx3-ubyte.gz");
static LABELS: &[u8] = include_bytes!("../../data/t10k-labels-idx1-ubyte.gz");

/// Images 8000..10000 are held out as the built-in test part; the first 8000
/// are the pool that training and validation are drawn from.
pub const BUILTIN_TEST_START: usize = 8000;

/// All 10k built-in images with labels.
pub fn builtin_mnist() -> Result<Dataset> {
    let im = parse_idx(IMAGES, Path::new("<builtin>/t10k-images-idx3-ubyte.gz"))?;
    let lb = parse_idx(LABELS, Path::new("<builtin>/t10k-labels-idx1-ubyte.gz"))?;
    Dataset::from_idx(
        im,
        Some(lb),
        Path::new("<builtin images>"),
        Path::new("<builtin labels>"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_data_is_the_mnist_test_set() {
        let d = builtin_mnist().unwrap();
        assert_eq!((d.n, d.dim, d.image), (10_000, 784, Some((28, 28))));
        let l = d.labels.as_ref().unwrap();
        // The first MNIST test labels are 7, 2, 1, 0, 4 (a well-known sequence).
        assert_eq!(&l[..5], &[7, 2, 1, 0, 4]);
        assert!(d.x.iter().all(|&v| (0.0..=1.0).contains(&v)));
        assert_eq!(d.n_classes(), 10);
    }
}

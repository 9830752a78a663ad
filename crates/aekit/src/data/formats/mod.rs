//! File formats, one reader (and writer, where aekit writes it) per file:
//! IDX (MNIST), the CIFAR binary batches, NumPy `.npy` and tar archives.

pub mod cifar;
pub mod idx;
pub mod npy;
pub mod tar;

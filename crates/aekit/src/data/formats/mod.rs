//! File formats, one reader (and writer, where aekit writes it) per file:
//! IDX (MNIST), the CIFAR binary batches, NumPy `.npy`, tar archives and
//! the LISA `.amat` text files of the MNIST variants.

pub mod amat;
pub mod cifar;
pub mod idx;
pub mod images;
pub mod npy;
pub mod tar;
pub mod zip;

//! Data: the in-memory [`Dataset`], where it comes from and how it is split
//! ([`source`]), the file formats (IDX, CIFAR, tar), downloads, the built-in
//! MNIST sample and image patches.

pub mod builtin;
pub mod dataset;
pub mod download;
pub mod formats;
pub mod patches;
pub mod source;
pub mod table;
pub mod variants;

pub use formats::{cifar, idx, npy, tar};

pub use dataset::Dataset;
pub use source::{
    balanced_subset, default_val_size, load_splits, load_train_test, load_whole, split_pool, DataConfig,
    DataSource, Splits,
};

//! # sinew-data
//!
//! Data loading for the sinew deep-learning library, with PyTorch's and scikit-learn's
//! names: a [`Dataset`] trait with [`TensorDataset`] and [`Subset`]; a [`DataLoader`] that
//! batches with a seeded, per-epoch shuffle (or the order of a [`Sampler`], such as one
//! rank's shard from a [`DistributedSampler`]) and can prepare batches on background threads;
//! seeded (optionally stratified) train/validation/test splits; [`StandardScaler`] and
//! [`MinMaxScaler`] fitted on the training split; readers for CSV and IDX (MNIST) files;
//! and two small real data sets bundled in the crate ([`datasets::digits`],
//! [`datasets::iris`]).
//!
//! ```
//! use sinew_data::{DataLoader, StandardScaler, datasets, stratified_train_test_split};
//!
//! let iris = datasets::iris();                                    // 150 × 4, labels 0..3
//! let (train, test) = stratified_train_test_split(iris.targets(), 0.2, 0);
//! let (train, test) = (iris.select(&train), iris.select(&test));
//! let scaler = StandardScaler::fit(train.features());            // fit on training rows only
//! let train = train.map_features(|x| scaler.transform(x));
//! let test = test.map_features(|x| scaler.transform(x));
//!
//! let loader = DataLoader::new(train, 16).shuffle(true).seed(42).num_workers(1);
//! for _epoch in 0..3 {
//!     for (x, y) in &loader {
//!         assert_eq!(x.dims()[1], 4);     // a batch of features, [≤16, 4]
//!         assert_eq!(y.ndim(), 1);        // and its labels, [≤16]
//!         // ... forward, loss, backward, step ...
//!     }
//! }
//! assert_eq!(test.features().dims(), &[30, 4]);
//! ```
//!
//! ## Conventions
//! - A sample, and a batch, is a `(features, target)` pair of tensors ([`Sample`]).
//! - Everything random takes a seed and depends on nothing else: the same seed gives the
//!   same splits and the same batches, with or without background threads.
//! - Reading the outside world returns [`Result`] with a [`DataError`] that says where the
//!   input is wrong (CSV line and column); no input makes a reader panic. Misuse of the
//!   API (a zero batch size, fractions that do not add up to 1) panics with a message.

mod csv;
mod dataset;
pub mod datasets;
mod error;
mod idx;
mod loader;
mod preprocess;
mod sampler;
mod split;

pub use csv::{CsvData, CsvOptions, read_csv, read_csv_bytes, read_csv_str};
pub use dataset::{Dataset, Sample, Subset, TensorDataset, default_collate};
pub use error::{DataError, Result};
pub use idx::{read_idx, read_idx_bytes};
pub use loader::{Batches, DataLoader};
pub use preprocess::{MinMaxScaler, StandardScaler, one_hot};
pub use sampler::{DistributedSampler, Sampler};
pub use split::{
    random_split, split_indices, split_sizes, stratified_split_indices, stratified_train_test_split,
    stratified_train_val_test_split, train_test_split, train_val_test_split,
};

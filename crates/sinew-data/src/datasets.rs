//! Small real data sets bundled with sinew (loaded with no network and no files), and a
//! loader for MNIST files the user has downloaded.
//!
//! The bundled files live in this crate's `data/` folder; see `data/README.md` there
//! for their origin and licence (both as shipped with scikit-learn, from the UCI Machine
//! Learning Repository).

use std::path::Path;

use sinew_tensor::{DType, Tensor};

use crate::csv::{CsvOptions, read_csv_str};
use crate::dataset::TensorDataset;
use crate::error::{DataError, Result};
use crate::idx::read_idx;

const DIGITS_CSV: &str = include_str!("../data/digits.csv");
const IRIS_CSV: &str = include_str!("../data/iris.csv");

/// The optical handwritten digits (UCI, as in `sklearn.datasets.load_digits`): 1797
/// images of 8×8 pixels.
///
/// Features are `f32` `[1797, 64]`, the pixels row by row, **unscaled**: whole numbers
/// `0..=16` (divide by 16, or fit a [`MinMaxScaler`](crate::MinMaxScaler), for `[0, 1]`).
/// Targets are `i64` `[1797]`, the digit `0..=9`.
///
/// ```
/// let digits = sinew_data::datasets::digits();
/// assert_eq!(digits.features().dims(), &[1797, 64]);
/// assert_eq!(digits.features().max_all().item(), 16.0);
/// assert_eq!(digits.targets().max_all().item(), 9.0);
/// // as images for a convolutional network
/// let images = digits.features().reshape(&[1797, 1, 8, 8]).div_scalar(16.0);
/// # let _ = images;
/// ```
pub fn digits() -> TensorDataset {
    read_csv_str(DIGITS_CSV, &CsvOptions::new())
        .expect("the bundled data/digits.csv is well formed")
        .into_dataset()
}

/// Fisher's iris flowers (UCI, as in `sklearn.datasets.load_iris`): 150 flowers, 50 of
/// each of three species.
///
/// Features are `f32` `[150, 4]`: sepal length, sepal width, petal length, petal width,
/// in cm, unscaled. Targets are `i64` `[150]`: 0 setosa, 1 versicolor, 2 virginica (see
/// [`IRIS_CLASSES`]).
///
/// ```
/// let iris = sinew_data::datasets::iris();
/// assert_eq!(iris.features().dims(), &[150, 4]);
/// assert_eq!(iris.targets().to_vec::<i64>().iter().filter(|&&c| c == 2).count(), 50);
/// ```
pub fn iris() -> TensorDataset {
    read_csv_str(IRIS_CSV, &CsvOptions::new().header(true))
        .expect("the bundled data/iris.csv is well formed")
        .into_dataset()
}

/// The iris species, indexed by class label.
///
/// ```
/// use sinew_data::datasets::IRIS_CLASSES;
/// assert_eq!(IRIS_CLASSES[2], "virginica");
/// ```
pub const IRIS_CLASSES: [&str; 3] = ["setosa", "versicolor", "virginica"];

/// The iris feature names, in column order.
///
/// ```
/// assert_eq!(sinew_data::datasets::IRIS_FEATURES.len(), 4);
/// ```
pub const IRIS_FEATURES: [&str; 4] =
    ["sepal length (cm)", "sepal width (cm)", "petal length (cm)", "petal width (cm)"];

/// Finds `name` or `name.gz` in `dir`.
fn find(dir: &Path, name: &str) -> Result<std::path::PathBuf> {
    let plain = dir.join(name);
    if plain.is_file() {
        return Ok(plain);
    }
    let gz = dir.join(format!("{name}.gz"));
    if gz.is_file() {
        return Ok(gz);
    }
    Err(DataError::Io {
        path: plain,
        source: std::io::Error::new(
            std::io::ErrorKind::NotFound,
            format!("neither {name} nor {name}.gz found"),
        ),
    })
}

/// Loads MNIST (or Fashion-MNIST, which uses the same file names) from the IDX files
/// in `dir`: `train-images-idx3-ubyte` and `train-labels-idx1-ubyte` when `train`, else
/// the `t10k-` pair, each plain or with a `.gz` suffix. sinew downloads nothing: fetch the
/// files yourself.
///
/// Features are `f32` `[n, 1, rows, cols]` scaled to `[0, 1]` (pixel / 255), ready for a
/// convolution (`Flatten` them for a perceptron); targets are `i64` `[n]`.
///
/// # Errors
/// [`DataError::Io`] if a file is missing or unreadable; [`DataError::Idx`] if a file is
/// malformed, the images are not 3-D or the labels not 1-D, or their counts differ.
///
/// ```
/// use sinew_data::datasets::mnist;
/// assert!(mnist("/no/such/dir", true).is_err());
/// ```
pub fn mnist(dir: impl AsRef<Path>, train: bool) -> Result<TensorDataset> {
    let dir = dir.as_ref();
    let prefix = if train { "train" } else { "t10k" };
    let images = read_idx(find(dir, &format!("{prefix}-images-idx3-ubyte"))?, Some(DType::F32))?;
    let labels = read_idx(find(dir, &format!("{prefix}-labels-idx1-ubyte"))?, Some(DType::I64))?;
    mnist_from_tensors(images, labels)
}

/// Checks and shapes MNIST tensors as [`mnist`] returns them.
fn mnist_from_tensors(images: Tensor, labels: Tensor) -> Result<TensorDataset> {
    if images.ndim() != 3 {
        return Err(DataError::idx(format!(
            "wrong dimension count: MNIST images need 3 dimensions (count, rows, columns), found {:?}",
            images.dims()
        )));
    }
    if labels.ndim() != 1 {
        return Err(DataError::idx(format!(
            "wrong dimension count: MNIST labels need 1 dimension, found {:?}",
            labels.dims()
        )));
    }
    let (n, h, w) = (images.dims()[0], images.dims()[1], images.dims()[2]);
    if labels.dims()[0] != n {
        return Err(DataError::idx(format!("{n} images but {} labels", labels.dims()[0])));
    }
    Ok(TensorDataset::new(images.reshape(&[n, 1, h, w]).div_scalar(255.0), labels))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Dataset;

    #[test]
    fn digits_shapes_and_ranges() {
        let d = digits();
        assert_eq!(d.len(), 1797);
        assert_eq!(d.features().dims(), &[1797, 64]);
        assert_eq!(d.features().dtype(), DType::F32);
        assert_eq!(d.targets().dtype(), DType::I64);
        assert_eq!(d.features().min_all().item(), 0.0);
        assert_eq!(d.features().max_all().item(), 16.0);
        let y = d.targets().to_vec::<i64>();
        for c in 0..10 {
            let n = y.iter().filter(|&&v| v == c).count();
            assert!((170..=185).contains(&n), "class {c}: {n}");
        }
        assert!(y.iter().all(|v| (0..10).contains(v)));
        // first row of the file
        assert_eq!(&d.get(0).0.to_vec::<f32>()[..6], &[0.0, 0.0, 5.0, 13.0, 9.0, 1.0]);
        assert_eq!(y[..3], [0, 1, 2]);
    }

    #[test]
    fn iris_shapes_and_ranges() {
        let d = iris();
        assert_eq!(d.features().dims(), &[150, 4]);
        let y = d.targets().to_vec::<i64>();
        for c in 0..3 {
            assert_eq!(y.iter().filter(|&&v| v == c).count(), 50);
        }
        assert_eq!(d.get(0).0.to_vec::<f32>(), vec![5.1, 3.5, 1.4, 0.2]);
        let x = d.features();
        assert!(x.min_all().item() > 0.0 && x.max_all().item() < 8.0);
    }

    #[test]
    fn mnist_from_idx_files() {
        let dir = std::env::temp_dir().join(format!("sinew-data-mnist-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        // 2 images of 2×3 pixels, plain; labels gzip-compressed
        let mut images = vec![0, 0, 8, 3, 0, 0, 0, 2, 0, 0, 0, 2, 0, 0, 0, 3];
        images.extend([0u8, 51, 102, 153, 204, 255, 255, 0, 0, 0, 0, 0]);
        std::fs::write(dir.join("t10k-images-idx3-ubyte"), &images).unwrap();
        let labels = [0u8, 0, 8, 1, 0, 0, 0, 2, 7, 3];
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        std::io::Write::write_all(&mut gz, &labels).unwrap();
        std::fs::write(dir.join("t10k-labels-idx1-ubyte.gz"), gz.finish().unwrap()).unwrap();
        let ds = mnist(&dir, false).unwrap();
        assert_eq!(ds.features().dims(), &[2, 1, 2, 3]);
        assert_eq!(ds.features().to_vec::<f32>()[..3], [0.0, 0.2, 0.4]);
        assert_eq!(ds.targets().to_vec::<i64>(), vec![7, 3]);
        assert!(matches!(mnist(&dir, true), Err(DataError::Io { .. })));
        // labels that are 2-D: a wrong dimension count
        std::fs::write(dir.join("t10k-labels-idx1-ubyte"), [0u8, 0, 8, 2, 0, 0, 0, 2, 0, 0, 0, 1, 7, 3])
            .unwrap();
        let err = mnist(&dir, false).unwrap_err().to_string();
        assert!(err.contains("wrong dimension count"), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

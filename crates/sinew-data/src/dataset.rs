//! The [`Dataset`] trait and the two datasets everything else builds on:
//! [`TensorDataset`] and [`Subset`].

use std::sync::Arc;

use sinew_tensor::Tensor;

/// One example, or one batch of them: `(features, target)`.
///
/// ```
/// use sinew_data::Sample;
/// use sinew_tensor::Tensor;
/// let s: Sample = (Tensor::zeros(&[4]), Tensor::scalar(1i64));
/// assert_eq!(s.0.dims(), &[4]);
/// ```
pub type Sample = (Tensor, Tensor);

/// A collection of samples indexed `0..len()` (`torch.utils.data.Dataset`).
///
/// Implement [`len`](Dataset::len) and [`get`](Dataset::get); a
/// [`DataLoader`](crate::DataLoader) batches samples with
/// [`get_batch`](Dataset::get_batch), whose default fetches each sample and stacks them
/// ([`default_collate`]). Datasets that can gather a batch at once (as [`TensorDataset`]
/// does with one `index_select`) override it. Datasets are shared with the loader's
/// background threads, hence `Send + Sync`.
///
/// ```
/// use sinew_data::{DataLoader, Dataset, Sample};
/// use sinew_tensor::Tensor;
///
/// /// The squares: x -> x².
/// struct Squares(usize);
///
/// impl Dataset for Squares {
///     fn len(&self) -> usize {
///         self.0
///     }
///     fn get(&self, index: usize) -> Sample {
///         let x = index as f32;
///         (Tensor::from_vec(vec![x], &[1]).unwrap(), Tensor::scalar(x * x))
///     }
/// }
///
/// let loader = DataLoader::new(Squares(5), 2);
/// let (x, y) = loader.iter().last().unwrap();
/// assert_eq!(x.dims(), &[1, 1]); // the last, partial batch
/// assert_eq!(y.to_vec::<f32>(), vec![16.0]);
/// ```
pub trait Dataset: Send + Sync {
    /// The number of samples.
    fn len(&self) -> usize;

    /// Whether the dataset has no samples.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The sample at `index` (`0..len()`; implementations may panic outside it).
    fn get(&self, index: usize) -> Sample;

    /// The samples at `indices` collated into one batch. The default fetches each with
    /// [`get`](Dataset::get) and stacks them ([`default_collate`]).
    ///
    /// # Panics
    /// If `indices` is empty.
    fn get_batch(&self, indices: &[usize]) -> Sample {
        let samples: Vec<Sample> = indices.iter().map(|&i| self.get(i)).collect();
        default_collate(&samples)
    }
}

/// Stacks samples along a new dimension 0: `n` samples of shapes `(f, t)` become one
/// batch of shapes `([n, f...], [n, t...])` (PyTorch's `default_collate` for tensor pairs).
///
/// # Panics
/// If `samples` is empty, or their shapes or dtypes differ.
///
/// ```
/// use sinew_data::default_collate;
/// use sinew_tensor::Tensor;
/// let a = (Tensor::zeros(&[3]), Tensor::scalar(0i64));
/// let b = (Tensor::ones(&[3]), Tensor::scalar(1i64));
/// let (x, y) = default_collate(&[a, b]);
/// assert_eq!(x.dims(), &[2, 3]);
/// assert_eq!(y.to_vec::<i64>(), vec![0, 1]);
/// ```
#[track_caller]
pub fn default_collate(samples: &[Sample]) -> Sample {
    assert!(!samples.is_empty(), "default_collate: no samples to collate");
    let xs: Vec<&Tensor> = samples.iter().map(|s| &s.0).collect();
    let ys: Vec<&Tensor> = samples.iter().map(|s| &s.1).collect();
    (Tensor::stack(&xs, 0), Tensor::stack(&ys, 0))
}

impl<D: Dataset + ?Sized> Dataset for Arc<D> {
    fn len(&self) -> usize {
        (**self).len()
    }
    fn get(&self, index: usize) -> Sample {
        (**self).get(index)
    }
    fn get_batch(&self, indices: &[usize]) -> Sample {
        (**self).get_batch(indices)
    }
}

impl<D: Dataset + ?Sized> Dataset for &D {
    fn len(&self) -> usize {
        (**self).len()
    }
    fn get(&self, index: usize) -> Sample {
        (**self).get(index)
    }
    fn get_batch(&self, indices: &[usize]) -> Sample {
        (**self).get_batch(indices)
    }
}

impl<D: Dataset + ?Sized> Dataset for Box<D> {
    fn len(&self) -> usize {
        (**self).len()
    }
    fn get(&self, index: usize) -> Sample {
        (**self).get(index)
    }
    fn get_batch(&self, indices: &[usize]) -> Sample {
        (**self).get_batch(indices)
    }
}

/// A list of samples is a dataset.
///
/// ```
/// use sinew_data::Dataset;
/// use sinew_tensor::Tensor;
/// let samples = vec![(Tensor::zeros(&[2]), Tensor::scalar(0i64)); 3];
/// assert_eq!(samples.len(), 3);
/// assert_eq!(samples.get_batch(&[0, 2]).0.dims(), &[2, 2]);
/// ```
impl Dataset for Vec<Sample> {
    fn len(&self) -> usize {
        <[Sample]>::len(self)
    }
    fn get(&self, index: usize) -> Sample {
        self[index].clone()
    }
}

/// Whole feature and target tensors whose dimension 0 indexes samples
/// (`torch.utils.data.TensorDataset`).
///
/// [`get`](Dataset::get) returns views (no copy); [`get_batch`](Dataset::get_batch) gathers
/// a batch with one `index_select` per tensor instead of stacking samples one by one.
/// Cloning is cheap: the tensors share their storage.
///
/// ```
/// use sinew_data::{Dataset, TensorDataset};
/// use sinew_tensor::Tensor;
/// let x = Tensor::arange(0.0, 6.0, 1.0).reshape(&[3, 2]);
/// let y = Tensor::from_vec(vec![0i64, 1, 0], &[3])?;
/// let ds = TensorDataset::new(x, y);
/// assert_eq!(ds.len(), 3);
/// assert_eq!(ds.get(1).0.to_vec::<f32>(), vec![2.0, 3.0]);
/// let (xb, yb) = ds.get_batch(&[2, 0]);
/// assert_eq!(xb.to_vec::<f32>(), vec![4.0, 5.0, 0.0, 1.0]);
/// assert_eq!(yb.to_vec::<i64>(), vec![0, 0]);
/// # Ok::<(), sinew_tensor::TensorError>(())
/// ```
#[derive(Clone, Debug)]
pub struct TensorDataset {
    features: Tensor,
    targets: Tensor,
}

impl TensorDataset {
    /// A dataset of `features[i], targets[i]`.
    ///
    /// # Panics
    /// If either tensor is zero-dimensional or their sizes along dimension 0 differ.
    ///
    /// ```
    /// use sinew_data::TensorDataset;
    /// use sinew_tensor::Tensor;
    /// let ds = TensorDataset::new(Tensor::zeros(&[4, 3]), Tensor::zeros(&[4]));
    /// assert_eq!(ds.features().dims(), &[4, 3]);
    /// ```
    #[track_caller]
    pub fn new(features: Tensor, targets: Tensor) -> TensorDataset {
        match TensorDataset::try_new(features, targets) {
            Ok(ds) => ds,
            Err(msg) => panic!("{msg}"),
        }
    }

    /// [`TensorDataset::new`] that returns the complaint instead of panicking.
    ///
    /// # Errors
    /// If either tensor is zero-dimensional or their sizes along dimension 0 differ.
    ///
    /// ```
    /// use sinew_data::TensorDataset;
    /// use sinew_tensor::Tensor;
    /// assert!(TensorDataset::try_new(Tensor::zeros(&[4, 3]), Tensor::zeros(&[5])).is_err());
    /// ```
    pub fn try_new(features: Tensor, targets: Tensor) -> Result<TensorDataset, String> {
        if features.ndim() == 0 || targets.ndim() == 0 {
            return Err(format!(
                "TensorDataset: features {:?} and targets {:?} need a sample dimension 0",
                features.dims(),
                targets.dims()
            ));
        }
        if features.dims()[0] != targets.dims()[0] {
            return Err(format!(
                "TensorDataset: features {:?} and targets {:?} differ in size along dimension 0",
                features.dims(),
                targets.dims()
            ));
        }
        Ok(TensorDataset { features, targets })
    }

    /// All the features, samples along dimension 0.
    ///
    /// ```
    /// let ds = sinew_data::datasets::iris();
    /// assert_eq!(ds.features().dims(), &[150, 4]);
    /// ```
    pub fn features(&self) -> &Tensor {
        &self.features
    }

    /// All the targets, samples along dimension 0.
    ///
    /// ```
    /// let ds = sinew_data::datasets::iris();
    /// assert_eq!(ds.targets().dims(), &[150]);
    /// ```
    pub fn targets(&self) -> &Tensor {
        &self.targets
    }

    /// The two tensors, `(features, targets)`.
    ///
    /// ```
    /// let (x, y) = sinew_data::datasets::iris().into_tensors();
    /// assert_eq!((x.dims()[0], y.dims()[0]), (150, 150));
    /// ```
    pub fn into_tensors(self) -> Sample {
        (self.features, self.targets)
    }

    /// A new dataset holding copies of the samples at `indices`, in that order (one
    /// `index_select` per tensor). Use it to materialise a split, e.g. to fit a scaler on
    /// the training rows only.
    ///
    /// # Panics
    /// If an index is out of range.
    ///
    /// ```
    /// use sinew_data::{Dataset, datasets, train_test_split};
    /// let ds = datasets::iris();
    /// let (train, test) = train_test_split(ds.len(), 0.2, 0);
    /// assert_eq!(ds.select(&train).len() + ds.select(&test).len(), 150);
    /// ```
    #[track_caller]
    pub fn select(&self, indices: &[usize]) -> TensorDataset {
        let (features, targets) = self.get_batch(indices);
        TensorDataset { features, targets }
    }

    /// The same dataset with `f` applied to the whole feature tensor (a fitted scaler's
    /// `transform`, a reshape, a cast).
    ///
    /// # Panics
    /// If `f` changes the size of dimension 0.
    ///
    /// ```
    /// // the digits as 1×8×8 images scaled to [0, 1]
    /// let digits = sinew_data::datasets::digits().map_features(|x| x.reshape(&[1797, 1, 8, 8]).div_scalar(16.0));
    /// assert_eq!(digits.features().dims(), &[1797, 1, 8, 8]);
    /// ```
    #[track_caller]
    pub fn map_features(self, f: impl FnOnce(&Tensor) -> Tensor) -> TensorDataset {
        let features = f(&self.features);
        TensorDataset::new(features, self.targets)
    }
}

/// Builds the `i64` index tensor for `index_select`.
pub(crate) fn index_tensor(indices: &[usize]) -> Tensor {
    let idx: Vec<i64> = indices.iter().map(|&i| i64::try_from(i).unwrap_or(i64::MAX)).collect();
    let n = idx.len();
    Tensor::from_vec(idx, &[n]).expect("1-D index tensor")
}

impl Dataset for TensorDataset {
    fn len(&self) -> usize {
        self.features.dims()[0]
    }

    #[track_caller]
    fn get(&self, index: usize) -> Sample {
        (self.features.select(0, index), self.targets.select(0, index))
    }

    #[track_caller]
    fn get_batch(&self, indices: &[usize]) -> Sample {
        let idx = index_tensor(indices);
        (self.features.index_select(0, &idx), self.targets.index_select(0, &idx))
    }
}

/// The samples of `dataset` at `indices`, in that order (`torch.utils.data.Subset`).
/// Batches go through the inner dataset's [`get_batch`](Dataset::get_batch), so a subset of
/// a [`TensorDataset`] keeps the one-`index_select` fast path.
///
/// ```
/// use sinew_data::{Dataset, Subset, TensorDataset};
/// use sinew_tensor::Tensor;
/// let ds = TensorDataset::new(Tensor::arange(0.0, 5.0, 1.0), Tensor::zeros(&[5]));
/// let odd = Subset::new(ds, vec![1, 3]);
/// assert_eq!(odd.len(), 2);
/// assert_eq!(odd.get(1).0.item(), 3.0);
/// ```
#[derive(Clone, Debug)]
pub struct Subset<D> {
    dataset: D,
    indices: Vec<usize>,
}

impl<D: Dataset> Subset<D> {
    /// The samples of `dataset` at `indices` (repeats allowed).
    ///
    /// # Panics
    /// If an index is out of range for `dataset`.
    ///
    /// ```
    /// use sinew_data::{Dataset, Subset, datasets};
    /// let first_ten = Subset::new(datasets::iris(), (0..10).collect());
    /// assert_eq!(first_ten.len(), 10);
    /// ```
    #[track_caller]
    pub fn new(dataset: D, indices: Vec<usize>) -> Subset<D> {
        let n = dataset.len();
        if let Some(bad) = indices.iter().find(|&&i| i >= n) {
            panic!("Subset: index {bad} is out of range for a dataset of {n} samples");
        }
        Subset { dataset, indices }
    }

    /// The indices into the inner dataset.
    ///
    /// ```
    /// use sinew_data::{Subset, datasets};
    /// assert_eq!(Subset::new(datasets::iris(), vec![4, 2]).indices(), &[4, 2]);
    /// ```
    pub fn indices(&self) -> &[usize] {
        &self.indices
    }

    /// The inner dataset.
    ///
    /// ```
    /// use sinew_data::{Dataset, Subset, datasets};
    /// assert_eq!(Subset::new(datasets::iris(), vec![0]).dataset().len(), 150);
    /// ```
    pub fn dataset(&self) -> &D {
        &self.dataset
    }
}

impl<D: Dataset> Dataset for Subset<D> {
    fn len(&self) -> usize {
        self.indices.len()
    }

    #[track_caller]
    fn get(&self, index: usize) -> Sample {
        self.dataset.get(self.indices[index])
    }

    #[track_caller]
    fn get_batch(&self, indices: &[usize]) -> Sample {
        let inner: Vec<usize> = indices.iter().map(|&i| self.indices[i]).collect();
        self.dataset.get_batch(&inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fast_path_matches_stacking() {
        let x = Tensor::arange(0.0, 24.0, 1.0).reshape(&[6, 2, 2]);
        let y = Tensor::from_vec(vec![5i64, 4, 3, 2, 1, 0], &[6]).unwrap();
        let ds = TensorDataset::new(x, y);
        let idx = [4, 0, 5, 5, 1];
        let samples: Vec<Sample> = idx.iter().map(|&i| ds.get(i)).collect();
        let (sx, sy) = default_collate(&samples);
        let (fx, fy) = ds.get_batch(&idx);
        assert_eq!(sx.dims(), fx.dims());
        assert_eq!(sx.to_vec::<f32>(), fx.to_vec::<f32>());
        assert_eq!(sy.to_vec::<i64>(), fy.to_vec::<i64>());
        // and through a subset
        let sub = Subset::new(ds.clone(), vec![5, 4, 3, 2, 1, 0]);
        assert_eq!(sub.get_batch(&[0, 1]).1.to_vec::<i64>(), vec![0, 1]);
    }

    #[test]
    #[should_panic(expected = "differ in size along dimension 0")]
    fn mismatched_lengths_panic() {
        TensorDataset::new(Tensor::zeros(&[3, 2]), Tensor::zeros(&[2]));
    }

    #[test]
    #[should_panic(expected = "index 3 is out of range")]
    fn subset_checks_indices() {
        Subset::new(TensorDataset::new(Tensor::zeros(&[3]), Tensor::zeros(&[3])), vec![0, 3]);
    }
}

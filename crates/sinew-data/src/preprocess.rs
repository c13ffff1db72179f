//! Feature scaling fitted on training data ([`StandardScaler`], [`MinMaxScaler`]) and
//! [`one_hot`] targets.
//!
//! Scalers follow scikit-learn: `fit` learns per-column statistics from the training
//! split only, `transform` applies them to any split, `inverse_transform` undoes them. A
//! "column" is everything after dimension 0, so a `[n, features]` matrix is scaled per
//! feature and a `[n, c, h, w]` image batch per pixel. Statistics are computed in `f64`;
//! `transform` works in the input's float type (integer input is cast to `f32`).

use sinew_tensor::{DType, Tensor};

/// Statistics below this are treated as zero (a constant column), as scikit-learn does.
const TINY: f64 = 10.0 * f64::EPSILON;

/// The float version of `x`: itself if float, else cast to `f32`.
fn as_float(x: &Tensor) -> Tensor {
    if x.dtype() == DType::I64 { x.to_dtype(DType::F32) } else { x.clone() }
}

/// The column shape of `x` (its dims after the first); panics if `x` is 0-D or empty.
#[track_caller]
fn columns_for_fit(op: &str, x: &Tensor) -> Vec<usize> {
    assert!(x.ndim() >= 1, "{op}: expected samples along dimension 0, got a 0-D tensor");
    assert!(x.dims()[0] > 0, "{op}: cannot fit on zero samples (shape {:?})", x.dims());
    x.dims()[1..].to_vec()
}

#[track_caller]
fn check_columns(op: &str, x: &Tensor, columns: &[usize]) {
    assert!(
        x.ndim() >= 1 && &x.dims()[1..] == columns,
        "{op}: fitted on columns of shape {columns:?}, got a tensor of shape {:?}",
        x.dims()
    );
}

fn stat(values: Vec<f64>, columns: &[usize]) -> Tensor {
    Tensor::from_vec(values, columns).expect("one value per column")
}

/// Standardises each column to zero mean and unit variance:
/// `(x - mean) / std`, with the population standard deviation (`ddof = 0`) of the
/// training data; constant columns get a scale of 1 (`sklearn.preprocessing.StandardScaler`).
///
/// ```
/// use sinew_data::{StandardScaler, datasets, train_test_split};
/// let iris = datasets::iris();
/// let (train, test) = train_test_split(150, 0.2, 0);
/// let (train, test) = (iris.select(&train), iris.select(&test));
/// let scaler = StandardScaler::fit(train.features());      // training rows only
/// let x_train = scaler.transform(train.features());
/// let x_test = scaler.transform(test.features());
/// assert!(x_train.mean(&[0], false).abs().max_all().item() < 1e-5);
/// assert!(scaler.inverse_transform(&x_test).allclose(test.features(), 1e-5, 1e-5));
/// ```
#[derive(Clone, Debug)]
pub struct StandardScaler {
    mean: Tensor,
    scale: Tensor,
}

impl StandardScaler {
    /// Learns each column's mean and standard deviation from `x` (samples along
    /// dimension 0).
    ///
    /// # Panics
    /// If `x` is 0-D or has no samples.
    ///
    /// ```
    /// use sinew_data::StandardScaler;
    /// use sinew_tensor::Tensor;
    /// let x = Tensor::from_vec(vec![1.0f32, 10.0, 3.0, 10.0], &[2, 2])?;
    /// let s = StandardScaler::fit(&x);
    /// assert_eq!(s.mean().to_vec::<f64>(), vec![2.0, 10.0]);
    /// assert_eq!(s.scale().to_vec::<f64>(), vec![1.0, 1.0]); // the constant column keeps scale 1
    /// # Ok::<(), sinew_tensor::TensorError>(())
    /// ```
    #[track_caller]
    pub fn fit(x: &Tensor) -> StandardScaler {
        let columns = columns_for_fit("StandardScaler::fit", x);
        let x = x.to_dtype(DType::F64);
        let mean = x.mean(&[0], false);
        let std = x.var(&[0], false, false).sqrt().to_vec::<f64>();
        let scale = std.into_iter().map(|s| if s.is_finite() && s < TINY { 1.0 } else { s }).collect();
        StandardScaler { mean, scale: stat(scale, &columns) }
    }

    /// [`StandardScaler::fit`] then [`transform`](StandardScaler::transform) of the same data.
    ///
    /// ```
    /// use sinew_data::{StandardScaler, datasets};
    /// let (scaler, x) = StandardScaler::fit_transform(datasets::iris().features());
    /// assert!((x.std(&[0], false, false).to_vec::<f32>()[0] - 1.0).abs() < 1e-5);
    /// # let _ = scaler;
    /// ```
    #[track_caller]
    pub fn fit_transform(x: &Tensor) -> (StandardScaler, Tensor) {
        let s = StandardScaler::fit(x);
        let y = s.transform(x);
        (s, y)
    }

    /// The column means (`f64`, shape = the column shape).
    ///
    /// ```
    /// use sinew_data::{StandardScaler, datasets};
    /// assert_eq!(StandardScaler::fit(datasets::iris().features()).mean().dims(), &[4]);
    /// ```
    pub fn mean(&self) -> &Tensor {
        &self.mean
    }

    /// The column scales: standard deviations, 1 for constant columns (`f64`).
    ///
    /// ```
    /// use sinew_data::{StandardScaler, datasets};
    /// let s = StandardScaler::fit(datasets::digits().features());
    /// assert_eq!(s.scale().to_vec::<f64>()[0], 1.0); // the corner pixel is always 0
    /// ```
    pub fn scale(&self) -> &Tensor {
        &self.scale
    }

    /// `(x - mean) / scale`, in `x`'s float type.
    ///
    /// # Panics
    /// If `x`'s columns differ in shape from the fitted ones.
    ///
    /// ```
    /// use sinew_data::StandardScaler;
    /// use sinew_tensor::Tensor;
    /// let s = StandardScaler::fit(&Tensor::from_vec(vec![0.0f32, 2.0], &[2, 1])?);
    /// assert_eq!(s.transform(&Tensor::from_vec(vec![3.0f32], &[1, 1])?).to_vec::<f32>(), vec![2.0]);
    /// # Ok::<(), sinew_tensor::TensorError>(())
    /// ```
    #[track_caller]
    pub fn transform(&self, x: &Tensor) -> Tensor {
        check_columns("StandardScaler::transform", x, self.mean.dims());
        let x = as_float(x);
        let dt = x.dtype();
        x.sub(&self.mean.to_dtype(dt)).div(&self.scale.to_dtype(dt))
    }

    /// `x * scale + mean`: undoes [`transform`](StandardScaler::transform).
    ///
    /// # Panics
    /// If `x`'s columns differ in shape from the fitted ones.
    ///
    /// ```
    /// use sinew_data::StandardScaler;
    /// use sinew_tensor::Tensor;
    /// let x = Tensor::from_vec(vec![1.0f64, 4.0, 7.0], &[3, 1])?;
    /// let s = StandardScaler::fit(&x);
    /// assert!(s.inverse_transform(&s.transform(&x)).allclose(&x, 1e-12, 1e-12));
    /// # Ok::<(), sinew_tensor::TensorError>(())
    /// ```
    #[track_caller]
    pub fn inverse_transform(&self, x: &Tensor) -> Tensor {
        check_columns("StandardScaler::inverse_transform", x, self.mean.dims());
        let x = as_float(x);
        let dt = x.dtype();
        x.mul(&self.scale.to_dtype(dt)).add(&self.mean.to_dtype(dt))
    }
}

/// Scales each column linearly so the training data's minimum and maximum map to the
/// ends of a range, `[0, 1]` by default (`sklearn.preprocessing.MinMaxScaler`). Constant
/// columns are shifted to the range's lower end.
///
/// ```
/// use sinew_data::{MinMaxScaler, datasets};
/// let digits = datasets::digits();
/// let (scaler, x) = MinMaxScaler::fit_transform(digits.features());
/// assert_eq!(x.max_all().item(), 1.0);
/// assert_eq!(x.min_all().item(), 0.0);
/// assert!(scaler.inverse_transform(&x).allclose(digits.features(), 1e-5, 1e-5));
/// ```
#[derive(Clone, Debug)]
pub struct MinMaxScaler {
    data_min: Tensor,
    data_max: Tensor,
    scale: Tensor,
    range: (f64, f64),
}

impl MinMaxScaler {
    /// Learns each column's minimum and maximum from `x`, to map them to `[0, 1]`.
    ///
    /// # Panics
    /// If `x` is 0-D or has no samples.
    ///
    /// ```
    /// use sinew_data::MinMaxScaler;
    /// use sinew_tensor::Tensor;
    /// let s = MinMaxScaler::fit(&Tensor::from_vec(vec![2.0f32, 6.0, 4.0], &[3, 1])?);
    /// assert_eq!(s.data_min().to_vec::<f64>(), vec![2.0]);
    /// assert_eq!(s.data_max().to_vec::<f64>(), vec![6.0]);
    /// # Ok::<(), sinew_tensor::TensorError>(())
    /// ```
    #[track_caller]
    pub fn fit(x: &Tensor) -> MinMaxScaler {
        MinMaxScaler::fit_range(x, (0.0, 1.0))
    }

    /// Learns each column's minimum and maximum from `x`, to map them to
    /// `range.0` and `range.1`.
    ///
    /// # Panics
    /// If `x` is 0-D or has no samples, or the range is not finite with `range.0 < range.1`.
    ///
    /// ```
    /// use sinew_data::MinMaxScaler;
    /// use sinew_tensor::Tensor;
    /// let x = Tensor::from_vec(vec![0.0f32, 5.0, 10.0], &[3, 1])?;
    /// let s = MinMaxScaler::fit_range(&x, (-1.0, 1.0));
    /// assert_eq!(s.transform(&x).to_vec::<f32>(), vec![-1.0, 0.0, 1.0]);
    /// # Ok::<(), sinew_tensor::TensorError>(())
    /// ```
    #[track_caller]
    pub fn fit_range(x: &Tensor, range: (f64, f64)) -> MinMaxScaler {
        assert!(
            range.0.is_finite() && range.1.is_finite() && range.0 < range.1,
            "MinMaxScaler: range must be finite with min < max, got {range:?}"
        );
        let columns = columns_for_fit("MinMaxScaler::fit", x);
        let x = x.to_dtype(DType::F64);
        let data_min = x.min(&[0], false);
        let data_max = x.max(&[0], false);
        let width = range.1 - range.0;
        let scale = data_min
            .to_vec::<f64>()
            .iter()
            .zip(data_max.to_vec::<f64>())
            .map(|(lo, hi)| {
                let span = hi - lo;
                width / if span.is_finite() && span < TINY { 1.0 } else { span }
            })
            .collect();
        MinMaxScaler { data_min, data_max, scale: stat(scale, &columns), range }
    }

    /// [`MinMaxScaler::fit`] then [`transform`](MinMaxScaler::transform) of the same data.
    ///
    /// ```
    /// use sinew_data::{MinMaxScaler, datasets};
    /// let (_, x) = MinMaxScaler::fit_transform(datasets::iris().features());
    /// assert_eq!(x.min(&[0], false).to_vec::<f32>(), vec![0.0; 4]);
    /// ```
    #[track_caller]
    pub fn fit_transform(x: &Tensor) -> (MinMaxScaler, Tensor) {
        let s = MinMaxScaler::fit(x);
        let y = s.transform(x);
        (s, y)
    }

    /// The column minima seen in training (`f64`).
    ///
    /// ```
    /// use sinew_data::{MinMaxScaler, datasets};
    /// assert_eq!(MinMaxScaler::fit(datasets::digits().features()).data_min().max_all().item(), 0.0);
    /// ```
    pub fn data_min(&self) -> &Tensor {
        &self.data_min
    }

    /// The column maxima seen in training (`f64`).
    ///
    /// ```
    /// use sinew_data::{MinMaxScaler, datasets};
    /// assert_eq!(MinMaxScaler::fit(datasets::digits().features()).data_max().max_all().item(), 16.0);
    /// ```
    pub fn data_max(&self) -> &Tensor {
        &self.data_max
    }

    /// The target range.
    ///
    /// ```
    /// use sinew_data::{MinMaxScaler, datasets};
    /// assert_eq!(MinMaxScaler::fit(datasets::iris().features()).range(), (0.0, 1.0));
    /// ```
    pub fn range(&self) -> (f64, f64) {
        self.range
    }

    /// `(x - data_min) * scale + range.0`, in `x`'s float type. Values outside the
    /// training range map outside the target range (no clipping).
    ///
    /// # Panics
    /// If `x`'s columns differ in shape from the fitted ones.
    ///
    /// ```
    /// use sinew_data::MinMaxScaler;
    /// use sinew_tensor::Tensor;
    /// let s = MinMaxScaler::fit(&Tensor::from_vec(vec![0.0f32, 4.0], &[2, 1])?);
    /// assert_eq!(s.transform(&Tensor::from_vec(vec![1.0f32, 8.0], &[2, 1])?).to_vec::<f32>(), vec![0.25, 2.0]);
    /// # Ok::<(), sinew_tensor::TensorError>(())
    /// ```
    #[track_caller]
    pub fn transform(&self, x: &Tensor) -> Tensor {
        check_columns("MinMaxScaler::transform", x, self.data_min.dims());
        let x = as_float(x);
        let dt = x.dtype();
        x.sub(&self.data_min.to_dtype(dt)).mul(&self.scale.to_dtype(dt)).add_scalar(self.range.0)
    }

    /// `(x - range.0) / scale + data_min`: undoes [`transform`](MinMaxScaler::transform).
    ///
    /// # Panics
    /// If `x`'s columns differ in shape from the fitted ones.
    ///
    /// ```
    /// use sinew_data::MinMaxScaler;
    /// use sinew_tensor::Tensor;
    /// let x = Tensor::from_vec(vec![3.0f64, -1.0, 2.0], &[3, 1])?;
    /// let s = MinMaxScaler::fit(&x);
    /// assert!(s.inverse_transform(&s.transform(&x)).allclose(&x, 1e-12, 1e-12));
    /// # Ok::<(), sinew_tensor::TensorError>(())
    /// ```
    #[track_caller]
    pub fn inverse_transform(&self, x: &Tensor) -> Tensor {
        check_columns("MinMaxScaler::inverse_transform", x, self.data_min.dims());
        let x = as_float(x);
        let dt = x.dtype();
        x.sub_scalar(self.range.0).div(&self.scale.to_dtype(dt)).add(&self.data_min.to_dtype(dt))
    }
}

/// One-hot encodes `i64` class labels into `f32` rows ([`Tensor::one_hot`]), with
/// `num_classes` inferred as `max + 1` when `None` (`torch.nn.functional.one_hot`'s
/// `num_classes=-1`).
///
/// # Panics
/// If `labels` is not `i64` or holds a class outside `0..num_classes`.
///
/// ```
/// use sinew_data::one_hot;
/// use sinew_tensor::Tensor;
/// let y = Tensor::from_vec(vec![1i64, 0, 2], &[3])?;
/// assert_eq!(one_hot(&y, None).dims(), &[3, 3]);
/// assert_eq!(one_hot(&y, Some(4)).to_vec::<f32>()[..4], [0.0, 1.0, 0.0, 0.0]);
/// # Ok::<(), sinew_tensor::TensorError>(())
/// ```
#[track_caller]
pub fn one_hot(labels: &Tensor, num_classes: Option<usize>) -> Tensor {
    let n = match num_classes {
        Some(n) => n,
        None if labels.dtype() == DType::I64 => labels
            .contiguous_slice::<i64>()
            .iter()
            .max()
            .map_or(0, |&m| usize::try_from(m).map_or(0, |m| m + 1)),
        None => 0, // Tensor::one_hot names the dtype problem
    };
    labels.one_hot(n)
}

#[cfg(test)]
mod tests {
    use super::*;
    use sinew_tensor::Generator;

    #[test]
    fn standard_scaler_uses_training_statistics_only() {
        let mut g = Generator::new(0);
        let train = Tensor::normal_with(&[200, 3], 5.0, 2.0, DType::F64, &mut g);
        let test = Tensor::normal_with(&[50, 3], -40.0, 9.0, DType::F64, &mut g);
        let s = StandardScaler::fit(&train);
        let tt = s.transform(&train);
        assert!(tt.mean(&[0], false).abs().max_all().item() < 1e-12);
        assert!(tt.std(&[0], false, false).sub_scalar(1.0).abs().max_all().item() < 1e-12);
        // the test set is transformed with the training statistics, so it is far from 0
        assert!(s.transform(&test).mean_all().item() < -10.0);
        assert!(s.inverse_transform(&s.transform(&test)).allclose(&test, 1e-12, 1e-9));
    }

    #[test]
    fn min_max_scaler_round_trips_and_handles_constant_columns() {
        let x = Tensor::from_vec(vec![1.0f32, 7.0, 3.0, 7.0, 5.0, 7.0], &[3, 2]).unwrap();
        let s = MinMaxScaler::fit(&x);
        let t = s.transform(&x);
        assert_eq!(t.to_vec::<f32>(), vec![0.0, 0.0, 0.5, 0.0, 1.0, 0.0]);
        assert!(s.inverse_transform(&t).allclose(&x, 0.0, 1e-6));
        // integers are cast to f32
        let xi = Tensor::from_vec(vec![0i64, 10], &[2, 1]).unwrap();
        assert_eq!(MinMaxScaler::fit(&xi).transform(&xi).to_vec::<f32>(), vec![0.0, 1.0]);
    }

    #[test]
    fn scalers_work_per_pixel_on_images() {
        let x = Tensor::rand_with(&[10, 1, 2, 2], DType::F32, &mut Generator::new(1));
        let s = StandardScaler::fit(&x);
        assert_eq!(s.mean().dims(), &[1, 2, 2]);
        assert!(s.inverse_transform(&s.transform(&x)).allclose(&x, 1e-5, 1e-5));
    }

    #[test]
    #[should_panic(expected = "fitted on columns of shape [2]")]
    fn column_mismatch_panics() {
        StandardScaler::fit(&Tensor::zeros(&[3, 2])).transform(&Tensor::zeros(&[3, 3]));
    }

    #[test]
    fn one_hot_infers_classes() {
        let y = Tensor::from_vec(vec![0i64, 3], &[2]).unwrap();
        assert_eq!(one_hot(&y, None).dims(), &[2, 4]);
        assert_eq!(one_hot(&Tensor::from_vec(Vec::<i64>::new(), &[0]).unwrap(), None).dims(), &[0, 0]);
    }
}

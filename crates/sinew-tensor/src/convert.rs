//! Conversions between tensors and Rust values: `From` vectors, slices, scalars and
//! nested arrays (`Tensor::from([[1.0, 2.0], [3.0, 4.0]])`), and `TryFrom<&Tensor>` back to
//! vectors and scalars.

use crate::error::{Result, TensorError};
use crate::tensor::{StorageElement, Tensor};

impl<T: StorageElement> From<Vec<T>> for Tensor {
    /// A 1-D tensor of the values (`torch.tensor([...])`).
    ///
    /// ```
    /// use sinew_tensor::{DType, Tensor};
    /// let t = Tensor::from(vec![1.0f32, 2.0, 3.0]);
    /// assert_eq!((t.dims(), t.dtype()), (&[3][..], DType::F32));
    /// ```
    fn from(values: Vec<T>) -> Tensor {
        let n = values.len();
        Tensor::from_vec(values, &[n]).expect("a vector always fills its own length")
    }
}

impl<T: StorageElement> From<&[T]> for Tensor {
    /// A 1-D tensor of a copy of the values.
    ///
    /// ```
    /// use sinew_tensor::Tensor;
    /// assert_eq!(Tensor::from(&[1i64, 2][..]).to_vec::<i64>(), vec![1, 2]);
    /// ```
    fn from(values: &[T]) -> Tensor {
        Tensor::from(values.to_vec())
    }
}

impl<T: StorageElement, const N: usize> From<[T; N]> for Tensor {
    /// A 1-D tensor of an array's values.
    ///
    /// ```
    /// use sinew_tensor::Tensor;
    /// assert_eq!(Tensor::from([1.0f64, 2.0]).dims(), &[2]);
    /// ```
    fn from(values: [T; N]) -> Tensor {
        Tensor::from(values.to_vec())
    }
}

impl<T: StorageElement, const R: usize, const C: usize> From<[[T; C]; R]> for Tensor {
    /// A 2-D tensor, one row per inner array.
    ///
    /// ```
    /// use sinew_tensor::Tensor;
    /// let m = Tensor::from([[1.0f32, 2.0], [3.0, 4.0]]);
    /// assert_eq!(m.dims(), &[2, 2]);
    /// assert_eq!(m.to_vec::<f32>(), vec![1.0, 2.0, 3.0, 4.0]);
    /// ```
    fn from(rows: [[T; C]; R]) -> Tensor {
        let data: Vec<T> = rows.iter().flatten().copied().collect();
        Tensor::from_vec(data, &[R, C]).expect("R·C values for an R×C tensor")
    }
}

impl<T: StorageElement, const D: usize, const R: usize, const C: usize> From<[[[T; C]; R]; D]> for Tensor {
    /// A 3-D tensor from nested arrays.
    ///
    /// ```
    /// use sinew_tensor::Tensor;
    /// assert_eq!(Tensor::from([[[1i64], [2]], [[3], [4]]]).dims(), &[2, 2, 1]);
    /// ```
    fn from(blocks: [[[T; C]; R]; D]) -> Tensor {
        let data: Vec<T> = blocks.iter().flatten().flatten().copied().collect();
        Tensor::from_vec(data, &[D, R, C]).expect("D·R·C values for a D×R×C tensor")
    }
}

macro_rules! scalar_conversions {
    ($($t:ty),*) => {$(
        impl From<$t> for Tensor {
            /// A 0-D tensor holding the value.
            fn from(value: $t) -> Tensor {
                Tensor::scalar(value)
            }
        }

        impl TryFrom<&Tensor> for Vec<$t> {
            type Error = TensorError;
            /// The elements in row-major order, of the tensor's own element type.
            ///
            /// # Errors
            /// [`TensorError::UnsupportedDType`] if the tensor's dtype is another (use
            /// [`Tensor::to_vec`] to convert).
            fn try_from(t: &Tensor) -> Result<Self> {
                same_dtype::<$t>("Vec::try_from", t)?;
                Ok(t.to_vec::<$t>())
            }
        }

        impl TryFrom<&Tensor> for $t {
            type Error = TensorError;
            /// The value of a one-element tensor of this element type.
            ///
            /// # Errors
            /// [`TensorError::UnsupportedDType`] for another dtype,
            /// [`TensorError::InvalidArgument`] if the tensor does not hold one element.
            fn try_from(t: &Tensor) -> Result<Self> {
                same_dtype::<$t>("try_from", t)?;
                if t.numel() != 1 {
                    return Err(TensorError::InvalidArgument {
                        op: "try_from",
                        msg: format!("a tensor of shape {:?} holds {} values, not one", t.dims(), t.numel()),
                    });
                }
                Ok(t.to_vec::<$t>()[0])
            }
        }
    )*};
}

scalar_conversions!(f32, f64, i64);

fn same_dtype<T: StorageElement>(op: &'static str, t: &Tensor) -> Result<()> {
    if t.dtype() != T::DTYPE {
        return Err(TensorError::UnsupportedDType {
            op,
            dtype: t.dtype(),
            detail: format!(": asked for {} values", T::DTYPE),
        });
    }
    Ok(())
}

impl Tensor {
    /// [`Tensor::reshape`] where one size may be `-1`, inferred from the element count
    /// (PyTorch's `reshape(-1, 4)`).
    ///
    /// # Errors
    /// [`TensorError::InvalidArgument`] for more than one `-1` or a size below `-1`;
    /// [`TensorError::ShapeMismatch`] if the sizes cannot hold the elements.
    ///
    /// ```
    /// use sinew_tensor::Tensor;
    /// let t = Tensor::zeros(&[2, 3, 4]);
    /// assert_eq!(t.try_reshape_infer(&[-1, 4])?.dims(), &[6, 4]);
    /// assert!(t.try_reshape_infer(&[-1, 5]).is_err());
    /// # Ok::<(), sinew_tensor::TensorError>(())
    /// ```
    pub fn try_reshape_infer(&self, sizes: &[isize]) -> Result<Tensor> {
        self.try_reshape(&self.try_infer_shape(sizes)?)
    }

    /// The shape [`Tensor::try_reshape_infer`] would give, without touching the elements
    /// (a non-contiguous tensor is not copied to find it).
    ///
    /// # Errors
    /// As [`Tensor::try_reshape_infer`].
    ///
    /// ```
    /// use sinew_tensor::Tensor;
    /// let t = Tensor::zeros(&[2, 3, 4]).transpose(0, 2);
    /// assert_eq!(t.try_infer_shape(&[4, -1])?, [4, 6]);
    /// # Ok::<(), sinew_tensor::TensorError>(())
    /// ```
    pub fn try_infer_shape(&self, sizes: &[isize]) -> Result<Vec<usize>> {
        let invalid = |msg: String| TensorError::InvalidArgument { op: "reshape", msg };
        let inferred: Vec<usize> = (0..sizes.len()).filter(|&i| sizes[i] == -1).collect();
        if inferred.len() > 1 {
            return Err(invalid(format!("only one size may be -1, got {sizes:?}")));
        }
        if let Some(&s) = sizes.iter().find(|&&s| s < -1) {
            return Err(invalid(format!(
                "size {s} in {sizes:?}: sizes are non-negative, or -1 to infer one"
            )));
        }
        let mut shape: Vec<usize> = sizes.iter().map(|&s| s.max(1) as usize).collect();
        if let Some(&i) = inferred.first() {
            let known = crate::shape::try_numel("reshape", &shape)?;
            let zero_known = sizes.contains(&0);
            if zero_known || !self.numel().is_multiple_of(known) {
                return Err(TensorError::ShapeMismatch {
                    op: "reshape",
                    lhs: self.dims().to_vec(),
                    rhs: sizes.iter().map(|&s| s as usize).collect(),
                    detail: format!(": {} elements cannot take a shape of {sizes:?}", self.numel()),
                });
            }
            shape[i] = self.numel() / known;
        }
        for (d, &s) in shape.iter_mut().zip(sizes) {
            if s == 0 {
                *d = 0;
            }
        }
        crate::shape::try_numel("reshape", &shape)?;
        Ok(shape)
    }

    /// [`Tensor::try_reshape_infer`], panicking on error.
    ///
    /// ```
    /// use sinew_tensor::Tensor;
    /// assert_eq!(Tensor::zeros(&[2, 6]).reshape_infer(&[3, -1]).dims(), &[3, 4]);
    /// ```
    #[track_caller]
    pub fn reshape_infer(&self, sizes: &[isize]) -> Tensor {
        crate::error::or_panic(self.try_reshape_infer(sizes))
    }
}

#[cfg(test)]
mod tests {
    use crate::{DType, Tensor, TensorError};

    #[test]
    fn conversions_round_trip() {
        let t = Tensor::from([[1.0f64, 2.0, 3.0], [4.0, 5.0, 6.0]]);
        assert_eq!((t.dims(), t.dtype()), (&[2, 3][..], DType::F64));
        let back: Vec<f64> = Vec::try_from(&t).unwrap();
        assert_eq!(back, vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
        assert!(Vec::<f32>::try_from(&t).is_err());
        assert_eq!(f64::try_from(&Tensor::from(2.5f64)).unwrap(), 2.5);
        assert!(matches!(f64::try_from(&t), Err(TensorError::InvalidArgument { .. })));
        assert_eq!(i64::try_from(&Tensor::from(vec![7i64])).unwrap(), 7);
    }

    #[test]
    fn reshape_infers_one_size() {
        let t = Tensor::arange(0.0, 12.0, 1.0);
        assert_eq!(t.reshape_infer(&[-1]).dims(), &[12]);
        assert_eq!(t.reshape_infer(&[2, -1, 3]).dims(), &[2, 2, 3]);
        assert!(t.try_reshape_infer(&[-1, -1]).is_err());
        assert!(t.try_reshape_infer(&[-2, 6]).is_err());
        assert!(t.try_reshape_infer(&[5, -1]).is_err());
        // as PyTorch: with a zero size the inferred one could be anything
        let e = Tensor::zeros(&[0, 4]);
        assert!(e.try_reshape_infer(&[0, -1]).is_err());
        assert_eq!(e.reshape_infer(&[-1]).dims(), &[0]);
        assert_eq!(e.reshape_infer(&[4, 0]).dims(), &[4, 0]);
    }
}

//! Batch normalisation with the batch's own statistics (a training step's
//! `F.batch_norm`), fused: statistics and output in one op, the gradient in another (see
//! [`crate::kernels::batch_norm`]).

use crate::dtype::Element;
use crate::error::{Result, TensorError, or_panic};
use crate::kernels::batch_norm::{self as kernel, Dims};
use crate::tensor::{Tensor, with_float};

const OP: &str = "batch_norm_training";

/// Checks `x (N, C, ..)` and the optional per-channel tensors; returns the sizes.
fn check(op: &'static str, x: &Tensor, per_channel: &[(&str, Option<&Tensor>)]) -> Result<Dims> {
    if !x.dtype().is_float() {
        return Err(TensorError::UnsupportedDType { op, dtype: x.dtype(), detail: String::new() });
    }
    if x.ndim() < 2 {
        return Err(TensorError::InvalidArgument {
            op,
            msg: format!("expected input [N, C, ..], got {:?}", x.dims()),
        });
    }
    let (n, c) = (x.dims()[0], x.dims()[1]);
    for (name, t) in per_channel {
        if let Some(t) = t
            && (t.dims() != [c] || t.dtype() != x.dtype())
        {
            return Err(TensorError::InvalidArgument {
                op,
                msg: format!(
                    "expected {name} of shape [{c}] and dtype {} for input {:?}, got {:?} ({})",
                    x.dtype(),
                    x.dims(),
                    t.dims(),
                    t.dtype()
                ),
            });
        }
    }
    Ok(Dims { n, c, s: x.dims()[2..].iter().product() })
}

impl Tensor {
    /// [`Tensor::batch_norm_training`] that returns an error instead of panicking.
    ///
    /// # Errors
    /// [`TensorError::InvalidArgument`] if `x` has fewer than two dimensions or `weight`
    /// or `bias` is not `(C)` of `x`'s dtype; [`TensorError::UnsupportedDType`] for `i64`.
    ///
    /// ```
    /// use sinew_tensor::Tensor;
    /// assert!(Tensor::zeros(&[4, 3, 2]).try_batch_norm_training(None, None, 1e-5).is_ok());
    /// assert!(Tensor::zeros(&[4, 3, 2]).try_batch_norm_training(Some(&Tensor::ones(&[2])), None, 1e-5).is_err());
    /// ```
    pub fn try_batch_norm_training(
        &self,
        weight: Option<&Tensor>,
        bias: Option<&Tensor>,
        eps: f64,
    ) -> Result<(Tensor, Tensor, Tensor)> {
        let dims = check(OP, self, &[("weight", weight), ("bias", bias)])?;
        Ok(with_float!(self.dtype(), OP, |T| {
            let x = self.contiguous_slice::<T>();
            let (mean, var) = kernel::statistics(&x, dims);
            let rstd: Vec<T> = var.iter().map(|&v| T::ONE / (v + T::from_f64(eps)).sqrt()).collect();
            let (w, b) = (weight.map(|w| w.contiguous_slice::<T>()), bias.map(|b| b.contiguous_slice::<T>()));
            let y = kernel::normalize(&x, dims, &mean, &rstd, w.as_deref(), b.as_deref());
            (
                Tensor::from_parts(y, self.dims()),
                Tensor::from_parts(mean, &[dims.c]),
                Tensor::from_parts(var, &[dims.c]),
            )
        }))
    }

    /// Batch normalisation of `x (N, C, ..)` over every dimension but 1, with the batch's
    /// statistics (`F.batch_norm(training=True)`): `(x - mean)/√(var + eps)·weight + bias`
    /// per channel, `var` biased. Returns the output and each channel's `mean` and `var`
    /// (`(C)`: for the running statistics, and for
    /// [`Tensor::batch_norm_training_backward`]).
    ///
    /// # Panics
    /// As [`Tensor::try_batch_norm_training`] errs.
    ///
    /// ```
    /// use sinew_tensor::Tensor;
    /// let x = Tensor::from([[1.0f64, 10.0], [3.0, 30.0]]); // (N = 2, C = 2)
    /// let (y, mean, var) = x.batch_norm_training(None, None, 0.0);
    /// assert_eq!(y.to_vec::<f64>(), [-1.0, -1.0, 1.0, 1.0]);
    /// assert_eq!((mean.to_vec::<f64>(), var.to_vec::<f64>()), (vec![2.0, 20.0], vec![1.0, 100.0]));
    /// ```
    #[track_caller]
    pub fn batch_norm_training(
        &self,
        weight: Option<&Tensor>,
        bias: Option<&Tensor>,
        eps: f64,
    ) -> (Tensor, Tensor, Tensor) {
        or_panic(self.try_batch_norm_training(weight, bias, eps))
    }

    /// The gradient of [`Tensor::batch_norm_training`] for the output's gradient `grad`:
    /// `(dx, dweight, dbias)`, from the input, the `mean` and `var` it returned, the same
    /// `weight` and `eps`. `dweight` and `dbias` are `(C)` (whether or not the forward had
    /// a weight and bias).
    ///
    /// # Panics
    /// If the shapes or dtypes do not fit the forward's.
    ///
    /// ```
    /// use sinew_tensor::Tensor;
    /// let x = Tensor::from([[1.0f64], [3.0]]);
    /// let (_, mean, var) = x.batch_norm_training(None, None, 0.0);
    /// let (dx, dw, db) = Tensor::batch_norm_training_backward(&x, &Tensor::from([[1.0f64], [0.0]]), &mean, &var, None, 0.0);
    /// // the normalised values are ∓1: moving either input moves both outputs' mean away
    /// assert_eq!((dx.to_vec::<f64>(), dw.to_vec::<f64>(), db.to_vec::<f64>()), (vec![0.0, 0.0], vec![-1.0], vec![1.0]));
    /// ```
    #[track_caller]
    pub fn batch_norm_training_backward(
        x: &Tensor,
        grad: &Tensor,
        mean: &Tensor,
        var: &Tensor,
        weight: Option<&Tensor>,
        eps: f64,
    ) -> (Tensor, Tensor, Tensor) {
        const BACKWARD: &str = "batch_norm_training_backward";
        let dims =
            or_panic(check(BACKWARD, x, &[("mean", Some(mean)), ("var", Some(var)), ("weight", weight)]));
        assert!(
            grad.dims() == x.dims() && grad.dtype() == x.dtype(),
            "{BACKWARD}: expected a gradient of shape {:?} ({}), got {:?} ({})",
            x.dims(),
            x.dtype(),
            grad.dims(),
            grad.dtype()
        );
        with_float!(x.dtype(), BACKWARD, |T| {
            let (xs, g) = (x.contiguous_slice::<T>(), grad.contiguous_slice::<T>());
            let rstd: Vec<T> =
                var.contiguous_slice::<T>().iter().map(|&v| T::ONE / (v + T::from_f64(eps)).sqrt()).collect();
            let w = weight.map(|w| w.contiguous_slice::<T>());
            let (dx, dw, db) =
                kernel::backward(&xs, &g, dims, &mean.contiguous_slice::<T>(), &rstd, w.as_deref());
            (
                Tensor::from_parts(dx, x.dims()),
                Tensor::from_parts(dw, &[dims.c]),
                Tensor::from_parts(db, &[dims.c]),
            )
        })
    }
}

//! `torch.linalg` basics on faer's decompositions: `solve`, `inv`, `det`, `cholesky`,
//! `qr`, `svd`, `eigh`, `lstsq`.
//!
//! Every op takes a matrix or a batch of matrices (`(*, m, n)`: the last two dimensions
//! are the matrix, the leading ones a batch it loops over), in `f32` or `f64`. Shapes are
//! checked first (an `i64` tensor, fewer than two dimensions, a non-square matrix where one
//! is needed, or right-hand sides that do not fit are errors naming the op and the shapes);
//! numerical failures (a singular matrix for `solve` / `inv`, one that is not
//! positive-definite for `cholesky`) are [`TensorError::LinAlg`], naming the batch element,
//! where PyTorch raises `torch.linalg.LinAlgError`.

use crate::dtype::{DType, Element};
use crate::error::{Result, TensorError, or_panic};
use crate::kernels::linalg::{self as kernel, Failure};
use crate::shape;
use crate::tensor::{Tensor, with_float};

/// Refuses integer tensors.
fn check_float(op: &'static str, t: &Tensor) -> Result<()> {
    if t.dtype() == DType::I64 {
        return Err(TensorError::UnsupportedDType {
            op,
            dtype: t.dtype(),
            detail: ": linear algebra needs f32 or f64 (convert with to_dtype)".into(),
        });
    }
    Ok(())
}

/// The matrix size `(rows, cols)` of a float tensor of at least two dimensions.
fn matrix_dims(op: &'static str, t: &Tensor) -> Result<(usize, usize)> {
    check_float(op, t)?;
    let nd = t.ndim();
    if nd < 2 {
        return Err(TensorError::InvalidArgument {
            op,
            msg: format!(
                "expected a matrix or a batch of matrices (at least 2 dimensions), got shape {:?}",
                t.dims()
            ),
        });
    }
    Ok((t.dims()[nd - 2], t.dims()[nd - 1]))
}

/// The size `n` of a float tensor of `n×n` matrices.
fn square(op: &'static str, t: &Tensor) -> Result<usize> {
    let (m, n) = matrix_dims(op, t)?;
    if m != n {
        return Err(TensorError::InvalidArgument {
            op,
            msg: format!("expected square matrices, got shape {:?} ({m}×{n} matrices)", t.dims()),
        });
    }
    Ok(n)
}

fn batch_of(t: &Tensor) -> &[usize] {
    &t.dims()[..t.ndim() - 2]
}

/// A kernel from one `n × n` matrix into another (`kernels::linalg::{inv, cholesky}`).
type MatrixKernel<T> = fn(&[T], usize, &mut [T]) -> std::result::Result<(), Failure>;

/// `t`'s batch of `n × n` matrices, each through `kernel` into an `n × n` result of the
/// same batch shape (what `inv` and `cholesky` share).
fn map_matrices<T: crate::dtype::Float + crate::tensor::StorageElement>(
    op: &'static str,
    t: &Tensor,
    n: usize,
    kernel: MatrixKernel<T>,
) -> Result<Tensor> {
    let count = shape::numel(batch_of(t));
    let a = t.contiguous_slice::<T>();
    let mut out = vec![T::ZERO; count * n * n];
    for i in 0..count {
        let r = i * n * n..(i + 1) * n * n;
        kernel(&a[r.clone()], n, &mut out[r]).map_err(|f| failure(op, t, i, f))?;
    }
    Ok(Tensor::from_parts(out, t.dims()))
}

/// The error for a numerical failure of matrix `index` of `t`'s batch.
fn failure(op: &'static str, t: &Tensor, index: usize, f: Failure) -> TensorError {
    let what = match f {
        Failure::ZeroPivot(i) => {
            format!("is singular (U[{i}, {i}] of its LU factorization is exactly zero)")
        }
        Failure::NotPositiveDefinite(i) => {
            format!("is not positive-definite (its leading minor of order {} is not)", i + 1)
        }
        Failure::NoConvergence => "did not converge (are there NaNs or infinities in it?)".into(),
    };
    let msg = if batch_of(t).is_empty() {
        format!("the matrix {what}")
    } else {
        format!("the matrix at batch index {index} (of the flattened batch) {what}")
    };
    TensorError::LinAlg { op, shape: t.dims().to_vec(), msg }
}

fn with_shape(batch: &[usize], tail: &[usize]) -> Vec<usize> {
    batch.iter().chain(tail).copied().collect()
}

/// Whether `b` is a (batch of) vector(s) for `a`, by PyTorch's rule: 1-D, or exactly
/// `a`'s shape without its last dimension.
fn is_vector_rhs(a: &Tensor, b: &Tensor) -> bool {
    b.ndim() == 1 || (b.ndim() + 1 == a.ndim() && b.dims() == &a.dims()[..a.ndim() - 1])
}

/// The checks `solve` and `lstsq` share: dtypes, at least a matrix `a`, the vector case,
/// the rows of `b` against `rows`, and the broadcast batch. Returns `b` as matrices, the
/// batch, and whether `b` was a vector.
fn rhs_and_batch(
    op: &'static str,
    a: &Tensor,
    b: &Tensor,
    rows: usize,
) -> Result<(Tensor, Vec<usize>, bool)> {
    check_float(op, b)?;
    crate::binary::check_float_mix(op, a, b)?;
    let mismatch = |detail: String| TensorError::ShapeMismatch {
        op,
        lhs: a.dims().to_vec(),
        rhs: b.dims().to_vec(),
        detail,
    };
    if b.ndim() == 0 {
        return Err(mismatch(": B must be a vector or a matrix (or a batch of them), not 0-d".into()));
    }
    let vector = is_vector_rhs(a, b);
    let b2 = if vector { b.unsqueeze(-1) } else { b.clone() };
    let b_rows = b2.dims()[b2.ndim() - 2];
    if b_rows != rows {
        return Err(mismatch(format!(": A has {rows} rows but B has {b_rows}")));
    }
    let batch = shape::broadcast_shapes(op, batch_of(a), batch_of(&b2))
        .map_err(|_| mismatch(": batch dimensions do not broadcast".into()))?;
    Ok((b2, batch, vector))
}

impl Tensor {
    /// [`Tensor::solve`] that returns an error instead of panicking.
    ///
    /// # Errors
    /// [`TensorError::UnsupportedDType`] for `i64`; [`TensorError::InvalidArgument`] if `self`
    /// is not a (batch of) square matrices, or for an `f32` operand with an `f64` one;
    /// [`TensorError::ShapeMismatch`] if `b` does not fit (rows, or batch dimensions that do
    /// not broadcast); [`TensorError::TooLarge`] for a broadcast batch past the size limit;
    /// [`TensorError::LinAlg`] if a matrix is singular (an exactly zero pivot of its LU
    /// factorization, as PyTorch).
    ///
    /// ```
    /// use sinew_tensor::{Tensor, TensorError};
    /// let singular = Tensor::ones(&[2, 2]);
    /// let e = singular.try_solve(&Tensor::ones(&[2])).unwrap_err();
    /// assert!(matches!(e, TensorError::LinAlg { op: "solve", .. }));
    /// assert!(Tensor::eye(2).try_solve(&Tensor::ones(&[3])).is_err()); // 3 rows for a 2×2 A
    /// ```
    pub fn try_solve(&self, b: &Tensor) -> Result<Tensor> {
        const OP: &str = "solve";
        let n = square(OP, self)?;
        let (b2, batch, vector) = rhs_and_batch(OP, self, b, n)?;
        let k = b2.dims()[b2.ndim() - 1];
        let out_shape = with_shape(&batch, &[n, k]);
        shape::try_numel(OP, &out_shape)?;
        let a_full = self.try_broadcast_to(&with_shape(&batch, &[n, n]))?;
        let b_full = b2.try_broadcast_to(&out_shape)?;
        let count = shape::numel(&batch);
        let x = with_float!(self.dtype(), OP, |T| {
            let (ad, bd) = (a_full.contiguous_slice::<T>(), b_full.contiguous_slice::<T>());
            let mut out = vec![T::ZERO; count * n * k];
            for i in 0..count {
                kernel::solve(
                    &ad[i * n * n..(i + 1) * n * n],
                    &bd[i * n * k..(i + 1) * n * k],
                    n,
                    k,
                    &mut out[i * n * k..(i + 1) * n * k],
                )
                .map_err(|f| failure(OP, &a_full, i, f))?;
            }
            Tensor::from_parts(out, &out_shape)
        });
        Ok(if vector { x.squeeze_dim(-1) } else { x })
    }

    /// `X = A⁻¹·B`, the solution of `A·X = B` (`torch.linalg.solve(A, B)`), through an LU
    /// factorization with partial pivoting.
    ///
    /// `self` is `A`, of shape `(*, n, n)`; `b` is `(*, n, k)` (matrices of right-hand
    /// sides) or `(*, n)` (vectors: when 1-D or exactly `A`'s shape without its last
    /// dimension, as PyTorch decides), and the result has `b`'s form. Batch dimensions
    /// broadcast.
    ///
    /// # Panics
    /// As [`Tensor::try_solve`] errs: the message names the op and the shapes.
    ///
    /// ```
    /// use sinew_tensor::Tensor;
    /// let a = Tensor::from_vec(vec![3.0f64, 1.0, 1.0, 2.0], &[2, 2])?;
    /// let b = Tensor::from_vec(vec![9.0f64, 8.0], &[2])?;
    /// let x = a.solve(&b);                              // 3x + y = 9, x + 2y = 8
    /// assert!(x.allclose(&Tensor::from_vec(vec![2.0f64, 3.0], &[2])?, 1e-12, 1e-12));
    /// assert!(a.matmul(&x).allclose(&b, 1e-12, 1e-12));
    /// # Ok::<(), sinew_tensor::TensorError>(())
    /// ```
    #[track_caller]
    pub fn solve(&self, b: &Tensor) -> Tensor {
        or_panic(self.try_solve(b))
    }

    /// [`Tensor::inv`] that returns an error instead of panicking.
    ///
    /// # Errors
    /// [`TensorError::UnsupportedDType`] for `i64`; [`TensorError::InvalidArgument`] if not a
    /// (batch of) square matrices; [`TensorError::LinAlg`] if a matrix is singular.
    ///
    /// ```
    /// use sinew_tensor::{Tensor, TensorError};
    /// let e = Tensor::zeros(&[2, 3]).try_inv().unwrap_err();
    /// assert_eq!(e.to_string(), "inv: expected square matrices, got shape [2, 3] (2×3 matrices)");
    /// ```
    pub fn try_inv(&self) -> Result<Tensor> {
        const OP: &str = "inv";
        let n = square(OP, self)?;
        Ok(with_float!(self.dtype(), OP, |T| map_matrices::<T>(OP, self, n, kernel::inv::<T>)?))
    }

    /// The inverse of a square matrix, or of each in a batch `(*, n, n)`
    /// (`torch.linalg.inv`), through an LU factorization with partial pivoting.
    ///
    /// # Panics
    /// As [`Tensor::try_inv`] errs (a singular matrix among them).
    ///
    /// ```
    /// use sinew_tensor::Tensor;
    /// let a = Tensor::from_vec(vec![4.0f64, 7.0, 2.0, 6.0], &[2, 2])?;
    /// let want = Tensor::from_vec(vec![0.6f64, -0.7, -0.2, 0.4], &[2, 2])?;
    /// assert!(a.inv().allclose(&want, 1e-12, 1e-12));
    /// assert!(a.try_inv().is_ok());
    /// assert!(Tensor::ones(&[2, 2]).try_inv().is_err()); // singular
    /// # Ok::<(), sinew_tensor::TensorError>(())
    /// ```
    #[track_caller]
    pub fn inv(&self) -> Tensor {
        or_panic(self.try_inv())
    }

    /// [`Tensor::det`] that returns an error instead of panicking.
    ///
    /// # Errors
    /// [`TensorError::UnsupportedDType`] for `i64`; [`TensorError::InvalidArgument`] if not a
    /// (batch of) square matrices.
    ///
    /// ```
    /// use sinew_tensor::Tensor;
    /// assert_eq!(Tensor::eye(3).try_det()?.item(), 1.0);
    /// assert!(Tensor::from_vec(vec![1i64, 0, 0, 1], &[2, 2])?.try_det().is_err()); // i64
    /// # Ok::<(), sinew_tensor::TensorError>(())
    /// ```
    pub fn try_det(&self) -> Result<Tensor> {
        const OP: &str = "det";
        let n = square(OP, self)?;
        let count = shape::numel(batch_of(self));
        Ok(with_float!(self.dtype(), OP, |T| {
            let ad = self.contiguous_slice::<T>();
            let out: Vec<T> = (0..count).map(|i| kernel::det(&ad[i * n * n..(i + 1) * n * n], n)).collect();
            Tensor::from_parts(out, batch_of(self))
        }))
    }

    /// The determinant of a square matrix, or of each in a batch: shape `(*, n, n)` gives
    /// `(*)` (`torch.linalg.det`), from an LU factorization. A singular matrix has
    /// determinant 0 (no error); a 0×0 matrix has determinant 1.
    ///
    /// # Panics
    /// As [`Tensor::try_det`] errs.
    ///
    /// ```
    /// use sinew_tensor::Tensor;
    /// let a = Tensor::from_vec(vec![1.0f64, 2.0, 3.0, 4.0], &[2, 2])?;
    /// assert!((a.det().item() - -2.0).abs() < 1e-12);
    /// let batch = Tensor::eye(3).mul_scalar(2.0).unsqueeze(0).expand(&[4, 3, 3]);
    /// assert_eq!(batch.det().to_vec::<f32>(), vec![8.0; 4]);
    /// # Ok::<(), sinew_tensor::TensorError>(())
    /// ```
    #[track_caller]
    pub fn det(&self) -> Tensor {
        or_panic(self.try_det())
    }

    /// [`Tensor::cholesky`] that returns an error instead of panicking.
    ///
    /// # Errors
    /// [`TensorError::UnsupportedDType`] for `i64`; [`TensorError::InvalidArgument`] if not a
    /// (batch of) square matrices; [`TensorError::LinAlg`] if a matrix is not
    /// positive-definite.
    ///
    /// ```
    /// use sinew_tensor::{Tensor, TensorError};
    /// let indefinite = Tensor::from_vec(vec![1.0f64, 2.0, 2.0, 1.0], &[2, 2])?;
    /// let e = indefinite.try_cholesky().unwrap_err();
    /// assert!(matches!(e, TensorError::LinAlg { op: "cholesky", .. }));
    /// # Ok::<(), sinew_tensor::TensorError>(())
    /// ```
    pub fn try_cholesky(&self) -> Result<Tensor> {
        const OP: &str = "cholesky";
        let n = square(OP, self)?;
        Ok(with_float!(self.dtype(), OP, |T| map_matrices::<T>(OP, self, n, kernel::cholesky::<T>)?))
    }

    /// The lower-triangular Cholesky factor `L` of a symmetric positive-definite matrix,
    /// `A = L·Lᵀ`, or of each in a batch `(*, n, n)` (`torch.linalg.cholesky`, `upper=False`).
    /// Only the lower triangle of `A` is read, as in PyTorch.
    ///
    /// # Panics
    /// As [`Tensor::try_cholesky`] errs (a matrix that is not positive-definite).
    ///
    /// ```
    /// use sinew_tensor::Tensor;
    /// let a = Tensor::from_vec(vec![4.0f64, 2.0, 2.0, 5.0], &[2, 2])?;
    /// let l = a.cholesky();
    /// assert!(l.allclose(&Tensor::from_vec(vec![2.0f64, 0.0, 1.0, 2.0], &[2, 2])?, 1e-12, 1e-12));
    /// assert!(l.matmul(&l.t()).allclose(&a, 1e-12, 1e-12));
    /// # Ok::<(), sinew_tensor::TensorError>(())
    /// ```
    #[track_caller]
    pub fn cholesky(&self) -> Tensor {
        or_panic(self.try_cholesky())
    }

    /// [`Tensor::qr`] that returns an error instead of panicking.
    ///
    /// # Errors
    /// [`TensorError::UnsupportedDType`] for `i64`; [`TensorError::InvalidArgument`] for
    /// fewer than two dimensions.
    ///
    /// ```
    /// use sinew_tensor::Tensor;
    /// let (q, r) = Tensor::ones(&[4, 2]).try_qr()?;
    /// assert_eq!((q.dims(), r.dims()), (&[4, 2][..], &[2, 2][..]));
    /// assert!(Tensor::ones(&[4]).try_qr().is_err()); // not a matrix
    /// # Ok::<(), sinew_tensor::TensorError>(())
    /// ```
    pub fn try_qr(&self) -> Result<(Tensor, Tensor)> {
        const OP: &str = "qr";
        let (m, n) = matrix_dims(OP, self)?;
        let p = m.min(n);
        let batch = batch_of(self);
        let count = shape::numel(batch);
        Ok(with_float!(self.dtype(), OP, |T| {
            let ad = self.contiguous_slice::<T>();
            let (mut q, mut r) = (vec![T::ZERO; count * m * p], vec![T::ZERO; count * p * n]);
            for i in 0..count {
                kernel::qr(
                    &ad[i * m * n..(i + 1) * m * n],
                    m,
                    n,
                    &mut q[i * m * p..(i + 1) * m * p],
                    &mut r[i * p * n..(i + 1) * p * n],
                );
            }
            (
                Tensor::from_parts(q, &with_shape(batch, &[m, p])),
                Tensor::from_parts(r, &with_shape(batch, &[p, n])),
            )
        }))
    }

    /// The reduced QR factorization `A = Q·R` of an `m×n` matrix, or of each in a batch
    /// (`torch.linalg.qr(A, mode="reduced")`): `Q` is `(*, m, k)` with orthonormal columns,
    /// `R` is `(*, k, n)` upper triangular, `k = min(m, n)`. By Householder reflections; as
    /// with LAPACK, the signs of `R`'s diagonal are not normalised.
    ///
    /// # Panics
    /// As [`Tensor::try_qr`] errs.
    ///
    /// ```
    /// use sinew_tensor::{DType, Generator, Tensor};
    /// let a = Tensor::randn_with(&[5, 3], DType::F64, &mut Generator::new(0));
    /// let (q, r) = a.qr();
    /// assert_eq!((q.dims(), r.dims()), (&[5, 3][..], &[3, 3][..]));
    /// assert!(q.matmul(&r).allclose(&a, 1e-12, 1e-12));
    /// assert!(q.t().matmul(&q).allclose(&Tensor::eye_dtype(3, DType::F64), 1e-12, 1e-12));
    /// ```
    #[track_caller]
    pub fn qr(&self) -> (Tensor, Tensor) {
        or_panic(self.try_qr())
    }

    /// [`Tensor::svd`] that returns an error instead of panicking.
    ///
    /// # Errors
    /// [`TensorError::UnsupportedDType`] for `i64`; [`TensorError::InvalidArgument`] for
    /// fewer than two dimensions; [`TensorError::LinAlg`] if the iteration does not
    /// converge (non-finite values).
    ///
    /// ```
    /// use sinew_tensor::Tensor;
    /// let (_, s, _) = Tensor::eye(3).mul_scalar(2.0).try_svd()?;
    /// assert_eq!(s.to_vec::<f32>(), vec![2.0; 3]);
    /// let nan = Tensor::full(&[2, 2], f64::NAN);
    /// assert!(nan.try_svd().is_err()); // did not converge
    /// # Ok::<(), sinew_tensor::TensorError>(())
    /// ```
    pub fn try_svd(&self) -> Result<(Tensor, Tensor, Tensor)> {
        const OP: &str = "svd";
        let (m, n) = matrix_dims(OP, self)?;
        let p = m.min(n);
        let batch = batch_of(self);
        let count = shape::numel(batch);
        Ok(with_float!(self.dtype(), OP, |T| {
            let ad = self.contiguous_slice::<T>();
            let mut u = vec![T::ZERO; count * m * p];
            let mut s = vec![T::ZERO; count * p];
            let mut vh = vec![T::ZERO; count * p * n];
            for i in 0..count {
                kernel::svd(
                    &ad[i * m * n..(i + 1) * m * n],
                    m,
                    n,
                    &mut u[i * m * p..(i + 1) * m * p],
                    &mut s[i * p..(i + 1) * p],
                    &mut vh[i * p * n..(i + 1) * p * n],
                )
                .map_err(|f| failure(OP, self, i, f))?;
            }
            (
                Tensor::from_parts(u, &with_shape(batch, &[m, p])),
                Tensor::from_parts(s, &with_shape(batch, &[p])),
                Tensor::from_parts(vh, &with_shape(batch, &[p, n])),
            )
        }))
    }

    /// The reduced singular value decomposition `A = U·diag(S)·Vh` of an `m×n` matrix, or of
    /// each in a batch (`torch.linalg.svd(A, full_matrices=False)`): `U` is `(*, m, k)`, `S`
    /// is `(*, k)` (non-negative, non-increasing), `Vh` is `(*, k, n)`, `k = min(m, n)`.
    /// Singular vectors are unique only up to sign (for distinct singular values).
    ///
    /// # Panics
    /// As [`Tensor::try_svd`] errs.
    ///
    /// ```
    /// use sinew_tensor::{DType, Generator, Tensor};
    /// let a = Tensor::randn_with(&[3, 4], DType::F64, &mut Generator::new(0));
    /// let (u, s, vh) = a.svd();
    /// assert_eq!((u.dims(), s.dims(), vh.dims()), (&[3, 3][..], &[3][..], &[3, 4][..]));
    /// assert!((&u * &s.unsqueeze(0)).matmul(&vh).allclose(&a, 1e-12, 1e-12));
    /// ```
    #[track_caller]
    pub fn svd(&self) -> (Tensor, Tensor, Tensor) {
        or_panic(self.try_svd())
    }

    /// [`Tensor::eigh`] that returns an error instead of panicking.
    ///
    /// # Errors
    /// [`TensorError::UnsupportedDType`] for `i64`; [`TensorError::InvalidArgument`] if not a
    /// (batch of) square matrices; [`TensorError::LinAlg`] if the iteration does not
    /// converge (non-finite values).
    ///
    /// ```
    /// use sinew_tensor::Tensor;
    /// let (w, _) = Tensor::eye(2).try_eigh()?;
    /// assert_eq!(w.to_vec::<f32>(), vec![1.0, 1.0]);
    /// assert!(Tensor::ones(&[2, 3]).try_eigh().is_err()); // not square
    /// # Ok::<(), sinew_tensor::TensorError>(())
    /// ```
    pub fn try_eigh(&self) -> Result<(Tensor, Tensor)> {
        const OP: &str = "eigh";
        let n = square(OP, self)?;
        let batch = batch_of(self);
        let count = shape::numel(batch);
        Ok(with_float!(self.dtype(), OP, |T| {
            let ad = self.contiguous_slice::<T>();
            let (mut w, mut v) = (vec![T::ZERO; count * n], vec![T::ZERO; count * n * n]);
            for i in 0..count {
                kernel::eigh(
                    &ad[i * n * n..(i + 1) * n * n],
                    n,
                    &mut w[i * n..(i + 1) * n],
                    &mut v[i * n * n..(i + 1) * n * n],
                )
                .map_err(|f| failure(OP, self, i, f))?;
            }
            (Tensor::from_parts(w, &with_shape(batch, &[n])), Tensor::from_parts(v, self.dims()))
        }))
    }

    /// The eigendecomposition `A = V·diag(w)·Vᵀ` of a symmetric matrix, or of each in a
    /// batch `(*, n, n)` (`torch.linalg.eigh(A, UPLO="L")`): the eigenvalues `w` `(*, n)` in
    /// ascending order and the orthonormal eigenvectors as the columns of `V` `(*, n, n)`.
    /// Only the lower triangle of `A` is read, as in PyTorch. Eigenvectors are unique only
    /// up to sign (for distinct eigenvalues).
    ///
    /// # Panics
    /// As [`Tensor::try_eigh`] errs.
    ///
    /// ```
    /// use sinew_tensor::Tensor;
    /// let a = Tensor::from_vec(vec![2.0f64, 1.0, 1.0, 2.0], &[2, 2])?;
    /// let (w, v) = a.eigh();
    /// assert!(w.allclose(&Tensor::from_vec(vec![1.0f64, 3.0], &[2])?, 1e-12, 1e-12));
    /// assert!(a.matmul(&v).allclose(&(&v * &w.unsqueeze(0)), 1e-12, 1e-12)); // A·V = V·diag(w)
    /// # Ok::<(), sinew_tensor::TensorError>(())
    /// ```
    #[track_caller]
    pub fn eigh(&self) -> (Tensor, Tensor) {
        or_panic(self.try_eigh())
    }

    /// [`Tensor::lstsq`] that returns an error instead of panicking.
    ///
    /// # Errors
    /// [`TensorError::UnsupportedDType`] for `i64`; [`TensorError::InvalidArgument`] if
    /// `self` has fewer than two dimensions, or for an `f32` operand with an `f64` one;
    /// [`TensorError::ShapeMismatch`] if `b` does not fit; [`TensorError::TooLarge`] for a
    /// broadcast batch past the size limit; [`TensorError::LinAlg`] if the SVD does not
    /// converge (non-finite values).
    ///
    /// ```
    /// use sinew_tensor::Tensor;
    /// let x = Tensor::ones(&[3, 2]).try_lstsq(&Tensor::ones(&[3, 1]))?;
    /// assert_eq!(x.dims(), &[2, 1]);
    /// assert!(Tensor::ones(&[3, 2]).try_lstsq(&Tensor::ones(&[2, 1])).is_err()); // rows differ
    /// # Ok::<(), sinew_tensor::TensorError>(())
    /// ```
    pub fn try_lstsq(&self, b: &Tensor) -> Result<Tensor> {
        const OP: &str = "lstsq";
        let (m, n) = matrix_dims(OP, self)?;
        let (b2, batch, vector) = rhs_and_batch(OP, self, b, m)?;
        let k = b2.dims()[b2.ndim() - 1];
        let out_shape = with_shape(&batch, &[n, k]);
        shape::try_numel(OP, &out_shape)?;
        let a_full = self.try_broadcast_to(&with_shape(&batch, &[m, n]))?;
        let b_full = b2.try_broadcast_to(&with_shape(&batch, &[m, k]))?;
        let count = shape::numel(&batch);
        let x = with_float!(self.dtype(), OP, |T| {
            let (ad, bd) = (a_full.contiguous_slice::<T>(), b_full.contiguous_slice::<T>());
            let rcond = T::EPSILON * T::from_f64(m.max(n) as f64);
            let mut out = vec![T::ZERO; count * n * k];
            for i in 0..count {
                kernel::lstsq(
                    &ad[i * m * n..(i + 1) * m * n],
                    &bd[i * m * k..(i + 1) * m * k],
                    m,
                    n,
                    k,
                    rcond,
                    &mut out[i * n * k..(i + 1) * n * k],
                )
                .map_err(|f| failure(OP, &a_full, i, f))?;
            }
            Tensor::from_parts(out, &out_shape)
        });
        Ok(if vector { x.squeeze_dim(-1) } else { x })
    }

    /// The least-squares solution `X` minimising `‖A·X - B‖` (`torch.linalg.lstsq(A, B)
    /// .solution`), the one of least norm when `A` is rank-deficient or wide.
    ///
    /// `self` is `A`, `(*, m, n)`; `b` is `(*, m, k)` or a vector `(*, m)` (as for
    /// [`Tensor::solve`]); the result is `(*, n, k)` or `(*, n)`. Batch dimensions broadcast.
    /// Computed from the SVD of `A`, singular values below `ε·max(m, n)·s_max` counting as
    /// zero (PyTorch's default `rcond`); on full-rank problems this is the answer of
    /// PyTorch's default driver (`gelsy`).
    ///
    /// # Panics
    /// As [`Tensor::try_lstsq`] errs.
    ///
    /// ```
    /// use sinew_tensor::Tensor;
    /// // fit y = c0 + c1·t through (0, 1), (1, 3), (2, 5), (3, 7): exactly c = (1, 2)
    /// let a = Tensor::from_vec(vec![1.0f64, 0.0, 1.0, 1.0, 1.0, 2.0, 1.0, 3.0], &[4, 2])?;
    /// let y = Tensor::from_vec(vec![1.0f64, 3.0, 5.0, 7.0], &[4])?;
    /// let c = a.lstsq(&y);
    /// assert!(c.allclose(&Tensor::from_vec(vec![1.0f64, 2.0], &[2])?, 1e-12, 1e-12));
    /// # Ok::<(), sinew_tensor::TensorError>(())
    /// ```
    #[track_caller]
    pub fn lstsq(&self, b: &Tensor) -> Tensor {
        or_panic(self.try_lstsq(b))
    }
}

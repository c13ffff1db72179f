//! Elementwise functions of two tensors with NumPy/PyTorch broadcasting, their scalar
//! forms, comparisons (0/1 masks), `where_` and the arithmetic operators.
//!
//! Operands of different dtypes are promoted (`f64` > `f32` > `i64`), except that `f32`
//! with `f64` is an error unless one side is 0-d (a scalar): an `f64` input to an `f32`
//! model is a mistake PyTorch's layers refuse too.
//! sinew has no boolean dtype: a comparison returns 0/1 in the promoted dtype, so a mask
//! multiplies straight into arithmetic.

use std::ops::{Add, Div, Mul, Neg, Sub};

use crate::dtype::{DType, Element, Float};

use crate::error::{Result, or_panic};
use crate::parallel;
use crate::shape;
use crate::simd::{BinaryFn, Closure, ZipKernel};
use crate::tensor::{StorageElement, Tensor, with_elem, with_float};

impl Tensor {
    /// Applies `f` pairwise under broadcasting; both tensors must have dtype `T`. The
    /// building block of every binary op.
    ///
    /// # Errors
    /// If the shapes do not broadcast.
    ///
    /// # Panics
    /// If either dtype is not `T`.
    ///
    /// ```
    /// use sinew_tensor::Tensor;
    /// let a = Tensor::from_vec(vec![3.0f64, -1.0], &[2])?;
    /// let b = Tensor::from_vec(vec![4.0f64], &[1])?;   // broadcasts
    /// let h = a.try_zip_map::<f64, f64>(&b, "hypot", |x, y| x.hypot(y))?;
    /// assert_eq!(h.to_vec::<f64>(), vec![5.0, 17f64.sqrt()]);
    /// assert!(a.try_zip_map::<f64, f64>(&Tensor::zeros_dtype(&[3], a.dtype()), "hypot", f64::hypot).is_err());
    /// # Ok::<(), sinew_tensor::TensorError>(())
    /// ```
    #[track_caller]
    pub fn try_zip_map<T: StorageElement, U: StorageElement>(
        &self,
        other: &Tensor,
        op: &'static str,
        f: impl Fn(T, T) -> U + Sync + Send,
    ) -> Result<Tensor> {
        self.try_zip_with(other, op, &Closure(f))
    }

    /// [`Tensor::try_zip_map`] over a [`BinaryFn`], whose body the vector copies of the
    /// loop always inline (the fused gradient kernels).
    #[track_caller]
    pub(crate) fn try_zip_with<T: StorageElement, U: StorageElement>(
        &self,
        other: &Tensor,
        op: &'static str,
        f: &impl BinaryFn<T, U>,
    ) -> Result<Tensor> {
        assert!(
            self.dtype() == T::DTYPE && other.dtype() == T::DTYPE,
            "{op}: operands are {} and {}, kernel takes {}",
            self.dtype(),
            other.dtype(),
            T::DTYPE
        );
        let out_shape = if self.dims() == other.dims() {
            self.dims().to_vec()
        } else {
            shape::broadcast_shapes(op, self.dims(), other.dims())?
        };
        let n = shape::numel(&out_shape);
        // Fast path: both contiguous, equal shapes or one repeated along leading dimensions.
        if let Some(out) = self.zip_row_broadcast(other, &out_shape, f) {
            return Ok(Tensor::from_parts(out, &out_shape));
        }
        let sa = shape::broadcast_strides(self.dims(), self.strides(), &out_shape);
        let sb = shape::broadcast_strides(other.dims(), other.strides(), &out_shape);
        let (da, db) = (self.storage_slice::<T>(), other.storage_slice::<T>());
        let mut out: Vec<U> = crate::buffer::take(n);
        shape::walk(
            &out_shape,
            [&sa, &sb],
            [self.layout().offset, other.layout().offset],
            |[oa, ob], len, [ia, ib]| match (ia, ib) {
                (1, 1) => {
                    out.extend(da[oa..oa + len].iter().zip(&db[ob..ob + len]).map(|(&a, &b)| f.apply(a, b)))
                }
                (1, 0) => {
                    let b = db[ob];
                    out.extend(da[oa..oa + len].iter().map(|&a| f.apply(a, b)))
                }
                (0, 1) => {
                    let a = da[oa];
                    out.extend(db[ob..ob + len].iter().map(|&b| f.apply(a, b)))
                }
                _ => out.extend((0..len).map(|i| f.apply(da[oa + i * ia], db[ob + i * ib]))),
            },
        );
        Ok(Tensor::from_parts(out, &out_shape))
    }

    /// The contiguous fast path: one operand contiguous with the output's shape, the other
    /// contiguous and equal to the output's last dimensions (leading ones aside; all of
    /// them for equal shapes, a bias for `x + bias`), so that it repeats every `rep.len()`
    /// elements. Runs the vectorised zip over each stretch of a repeat, in parallel when
    /// worth it. `None` for other layouts, and for a repeat too short to gain (the strided
    /// walk handles a scalar operand well).
    fn zip_row_broadcast<T: StorageElement, U: StorageElement>(
        &self,
        other: &Tensor,
        out_shape: &[usize],
        f: &impl BinaryFn<T, U>,
    ) -> Option<Vec<U>> {
        /// Whether `small`, without its leading ones, is the end of `out`.
        fn repeats_in(small: &[usize], out: &[usize]) -> bool {
            let first = small.iter().position(|&d| d != 1).unwrap_or(small.len());
            let small = &small[first..];
            small.len() <= out.len() && out[out.len() - small.len()..] == *small
        }
        let (full_is_a, full, rep) = if self.dims() == out_shape && repeats_in(other.dims(), out_shape) {
            (true, self.as_slice::<T>()?, other.as_slice::<T>()?)
        } else if other.dims() == out_shape && repeats_in(self.dims(), out_shape) {
            (false, other.as_slice::<T>()?, self.as_slice::<T>()?)
        } else {
            return None;
        };
        let (n, inner) = (full.len(), rep.len());
        if n == 0 {
            return Some(Vec::new());
        }
        if (inner < 16 && inner != n) || n % inner != 0 {
            return None;
        }
        // SAFETY: the stretches `done..done + len` tile the whole chunk (each ends at the
        // chunk's end or at a multiple of `inner`), `full` has `n` elements and `rep`
        // `inner`, so each zip runs over its whole stretch and writes every element once.
        let out = unsafe {
            parallel::build_vec(n, |start, chunk| {
                let mut done = 0;
                while done < chunk.len() {
                    let (pos, r) = (start + done, (start + done) % inner);
                    let len = (inner - r).min(chunk.len() - done);
                    let (x, y, out) = (&full[pos..pos + len], &rep[r..r + len], &mut chunk[done..done + len]);
                    let (a, b) = if full_is_a { (x, y) } else { (y, x) };
                    crate::simd::vectorized(ZipKernel { a, b, out, f });
                    done += len;
                }
            })
        };
        Some(out)
    }

    /// Both operands converted to their common dtype.
    fn promoted(&self, other: &Tensor, op: &'static str) -> Result<(Tensor, Tensor)> {
        check_float_mix(op, self, other)?;
        let dt = self.dtype().promote(other.dtype());
        Ok((self.to_dtype(dt), other.to_dtype(dt)))
    }

    /// Both operands promoted to a common float dtype (`i64` with `i64` gives `f32`).
    fn promoted_float(&self, other: &Tensor, op: &'static str) -> Result<(Tensor, Tensor)> {
        check_float_mix(op, self, other)?;
        let dt = match self.dtype().promote(other.dtype()) {
            DType::I64 => DType::F32,
            dt => dt,
        };
        Ok((self.to_dtype(dt), other.to_dtype(dt)))
    }
}

/// Defines `try_name` / `name` / `name_scalar` for ops valid on every dtype.
macro_rules! binary_any {
    ($($(#[$m:meta])* $name:ident, $(#[$tm:meta])* $try_name:ident, $(#[$sm:meta])* $scalar:ident => |$a:ident, $b:ident| $body:expr;)*) => {
        impl Tensor {
            $(
                #[doc = concat!("[`Tensor::", stringify!($name), "`] that returns an error instead of panicking.")]
                ///
                /// # Errors
                /// If the shapes do not broadcast.
                $(#[$tm])*
                pub fn $try_name(&self, other: &Tensor) -> Result<Tensor> {
                    let (x, y) = self.promoted(other, stringify!($name))?;
                    with_elem!(x.dtype(), |T| x.try_zip_map::<T, T>(&y, stringify!($name), |$a: T, $b: T| $body))
                }

                $(#[$m])*
                ///
                /// # Panics
                /// If the shapes do not broadcast; the message names both shapes.
                #[track_caller]
                pub fn $name(&self, other: &Tensor) -> Tensor {
                    or_panic(self.$try_name(other))
                }

                #[doc = concat!("[`Tensor::", stringify!($name), "`] with a scalar right operand.")]
                /// An `i64` tensor with a non-integral scalar computes in `f32`.
                $(#[$sm])*
                pub fn $scalar(&self, scalar: f64) -> Tensor {
                    let x = if self.dtype() == DType::I64 && scalar.fract() != 0.0 {
                        self.to_dtype(DType::F32)
                    } else {
                        self.clone()
                    };
                    with_elem!(x.dtype(), |T| {
                        let $b = T::from_f64(scalar);
                        x.map::<T, T>(move |$a: T| $body)
                    })
                }
            )*
        }
    };
}

/// Defines `try_name` / `name` / `name_scalar` for float ops (integers compute in `f32`).
macro_rules! binary_float {
    ($($(#[$m:meta])* $name:ident, $(#[$tm:meta])* $try_name:ident, $(#[$sm:meta])* $scalar:ident => |$a:ident, $b:ident| $body:expr;)*) => {
        impl Tensor {
            $(
                #[doc = concat!("[`Tensor::", stringify!($name), "`] that returns an error instead of panicking.")]
                ///
                /// # Errors
                /// If the shapes do not broadcast.
                $(#[$tm])*
                pub fn $try_name(&self, other: &Tensor) -> Result<Tensor> {
                    let (x, y) = self.promoted_float(other, stringify!($name))?;
                    with_float!(x.dtype(), stringify!($name), |T| x.try_zip_map::<T, T>(&y, stringify!($name), |$a: T, $b: T| $body))
                }

                $(#[$m])*
                ///
                /// # Panics
                /// If the shapes do not broadcast; the message names both shapes.
                #[track_caller]
                pub fn $name(&self, other: &Tensor) -> Tensor {
                    or_panic(self.$try_name(other))
                }

                #[doc = concat!("[`Tensor::", stringify!($name), "`] with a scalar right operand.")]
                $(#[$sm])*
                pub fn $scalar(&self, scalar: f64) -> Tensor {
                    let x = if self.dtype() == DType::I64 { self.to_dtype(DType::F32) } else { self.clone() };
                    with_float!(x.dtype(), stringify!($name), |T| {
                        let $b = T::from_f64(scalar);
                        x.map::<T, T>(move |$a: T| $body)
                    })
                }
            )*
        }
    };
}

binary_any! {
    /// Elementwise sum with broadcasting (also `&a + &b`).
    ///
    /// ```
    /// use sinew_tensor::Tensor;
    /// let a = Tensor::ones(&[2, 3]);
    /// let b = Tensor::arange(0.0, 3.0, 1.0);     // broadcasts over rows
    /// assert_eq!(a.add(&b).to_vec::<f32>(), vec![1.0, 2.0, 3.0, 1.0, 2.0, 3.0]);
    /// ```
    add,
    ///
    /// ```
    /// use sinew_tensor::Tensor;
    /// let a = Tensor::ones(&[2, 3]);
    /// assert_eq!(a.try_add(&Tensor::ones(&[3]))?.dims(), &[2, 3]);
    /// assert!(a.try_add(&Tensor::ones(&[2])).is_err());   // [2, 3] and [2] do not broadcast
    /// # Ok::<(), sinew_tensor::TensorError>(())
    /// ```
    try_add,
    ///
    /// ```
    /// use sinew_tensor::Tensor;
    /// let t = Tensor::arange(0.0, 3.0, 1.0);
    /// assert_eq!(t.add_scalar(0.5).to_vec::<f32>(), vec![0.5, 1.5, 2.5]);   // also &t + 0.5
    /// ```
    add_scalar => |a, b| a + b;
    /// Elementwise difference with broadcasting (also `&a - &b`).
    ///
    /// ```
    /// use sinew_tensor::Tensor;
    /// let a = Tensor::arange(0.0, 4.0, 1.0).reshape(&[2, 2]);
    /// let col = Tensor::arange(0.0, 2.0, 1.0).reshape(&[2, 1]);   // one value per row
    /// assert_eq!(a.sub(&col).to_vec::<f32>(), vec![0.0, 1.0, 1.0, 2.0]);
    /// ```
    sub,
    ///
    /// ```
    /// use sinew_tensor::Tensor;
    /// let d = Tensor::ones(&[2]).try_sub(&Tensor::ones(&[2]))?;
    /// assert_eq!(d.to_vec::<f32>(), vec![0.0, 0.0]);
    /// assert!(Tensor::ones(&[2]).try_sub(&Tensor::ones(&[3])).is_err());
    /// # Ok::<(), sinew_tensor::TensorError>(())
    /// ```
    try_sub,
    ///
    /// ```
    /// use sinew_tensor::Tensor;
    /// let t = Tensor::from_vec(vec![5i64, 7], &[2])?;
    /// assert_eq!(t.sub_scalar(2.0).to_vec::<i64>(), vec![3, 5]);   // stays i64
    /// assert_eq!(t.sub_scalar(0.5).to_vec::<f32>(), vec![4.5, 6.5]); // computes in f32
    /// # Ok::<(), sinew_tensor::TensorError>(())
    /// ```
    sub_scalar => |a, b| a - b;
    /// Elementwise product with broadcasting (also `&a * &b`).
    ///
    /// ```
    /// use sinew_tensor::Tensor;
    /// let a = Tensor::arange(1.0, 4.0, 1.0);
    /// assert_eq!(a.mul(&a).to_vec::<f32>(), vec![1.0, 4.0, 9.0]);
    /// let outer = a.reshape(&[3, 1]).mul(&a);   // [3, 1] * [3] -> [3, 3]
    /// assert_eq!(outer.dims(), &[3, 3]);
    /// assert_eq!(outer.to_vec::<f32>()[5], 6.0);
    /// ```
    mul,
    ///
    /// ```
    /// use sinew_tensor::Tensor;
    /// let p = Tensor::full(&[2], 3.0).try_mul(&Tensor::full(&[], 2.0))?;   // a 0-d operand broadcasts
    /// assert_eq!(p.to_vec::<f32>(), vec![6.0, 6.0]);
    /// assert!(Tensor::ones(&[2, 2]).try_mul(&Tensor::ones(&[3])).is_err());
    /// # Ok::<(), sinew_tensor::TensorError>(())
    /// ```
    try_mul,
    ///
    /// ```
    /// use sinew_tensor::Tensor;
    /// let t = Tensor::arange(0.0, 3.0, 1.0);
    /// assert_eq!(t.mul_scalar(-2.0).to_vec::<f32>(), vec![0.0, -2.0, -4.0]);   // also &t * -2.0
    /// ```
    mul_scalar => |a, b| a * b;
    /// Elementwise maximum; NaN if either is NaN (`torch.maximum`).
    ///
    /// ```
    /// use sinew_tensor::Tensor;
    /// let a = Tensor::from_vec(vec![1.0f32, 5.0, f32::NAN], &[3])?;
    /// let b = Tensor::from_vec(vec![3.0f32, 2.0, 0.0], &[3])?;
    /// let m = a.maximum(&b).to_vec::<f32>();
    /// assert_eq!(&m[..2], &[3.0, 5.0]);
    /// assert!(m[2].is_nan());
    /// # Ok::<(), sinew_tensor::TensorError>(())
    /// ```
    maximum,
    ///
    /// ```
    /// use sinew_tensor::Tensor;
    /// let m = Tensor::ones(&[2]).try_maximum(&Tensor::zeros(&[2, 1]))?;
    /// assert_eq!(m.dims(), &[2, 2]);
    /// assert!(Tensor::ones(&[2]).try_maximum(&Tensor::ones(&[3])).is_err());
    /// # Ok::<(), sinew_tensor::TensorError>(())
    /// ```
    try_maximum,
    ///
    /// ```
    /// use sinew_tensor::Tensor;
    /// let t = Tensor::from_vec(vec![-1.0f32, 2.0], &[2])?;
    /// assert_eq!(t.maximum_scalar(0.0).to_vec::<f32>(), vec![0.0, 2.0]);   // torch.clamp_min
    /// # Ok::<(), sinew_tensor::TensorError>(())
    /// ```
    maximum_scalar => |a, b| if a.is_nan() || b.is_nan() { a + b } else if a >= b { a } else { b };
    /// Elementwise minimum; NaN if either is NaN (`torch.minimum`).
    ///
    /// ```
    /// use sinew_tensor::Tensor;
    /// let a = Tensor::from_vec(vec![1i64, 5], &[2])?;
    /// let b = Tensor::from_vec(vec![3i64, 2], &[2])?;
    /// assert_eq!(a.minimum(&b).to_vec::<i64>(), vec![1, 2]);
    /// # Ok::<(), sinew_tensor::TensorError>(())
    /// ```
    minimum,
    ///
    /// ```
    /// use sinew_tensor::Tensor;
    /// let m = Tensor::full(&[2], 4.0).try_minimum(&Tensor::full(&[1], 3.0))?;
    /// assert_eq!(m.to_vec::<f32>(), vec![3.0, 3.0]);
    /// assert!(Tensor::ones(&[2]).try_minimum(&Tensor::ones(&[3])).is_err());
    /// # Ok::<(), sinew_tensor::TensorError>(())
    /// ```
    try_minimum,
    ///
    /// ```
    /// use sinew_tensor::Tensor;
    /// let t = Tensor::from_vec(vec![-1.0f32, 2.0], &[2])?;
    /// assert_eq!(t.minimum_scalar(1.0).to_vec::<f32>(), vec![-1.0, 1.0]);   // torch.clamp_max
    /// # Ok::<(), sinew_tensor::TensorError>(())
    /// ```
    minimum_scalar => |a, b| if a.is_nan() || b.is_nan() { a + b } else if a <= b { a } else { b };
    /// `a == b` as a 0/1 mask.
    ///
    /// ```
    /// use sinew_tensor::Tensor;
    /// let a = Tensor::from_vec(vec![1.0f32, 3.0, 2.0], &[3])?;
    /// let b = Tensor::from_vec(vec![1.0f32, 2.0, 4.0], &[3])?;
    /// assert_eq!(a.eq(&b).to_vec::<f32>(), vec![1.0, 0.0, 0.0]);   // torch.eq(a, b), as 0/1
    /// # Ok::<(), sinew_tensor::TensorError>(())
    /// ```
    eq,
    ///
    /// ```
    /// use sinew_tensor::Tensor;
    /// let m = Tensor::zeros(&[2, 1]).try_eq(&Tensor::zeros(&[3]))?;
    /// assert_eq!(m.dims(), &[2, 3]);
    /// assert!(Tensor::zeros(&[2]).try_eq(&Tensor::zeros(&[3])).is_err());
    /// # Ok::<(), sinew_tensor::TensorError>(())
    /// ```
    try_eq,
    ///
    /// ```
    /// use sinew_tensor::Tensor;
    /// let x = Tensor::arange(-1.0, 2.0, 1.0);
    /// assert_eq!(x.eq_scalar(0.0).to_vec::<f32>(), vec![0.0, 1.0, 0.0]);   // x == 0
    /// ```
    eq_scalar => |a, b| if a == b { T::ONE } else { T::ZERO };
    /// `a != b` as a 0/1 mask.
    ///
    /// ```
    /// use sinew_tensor::Tensor;
    /// let a = Tensor::from_vec(vec![1.0f32, 3.0, 2.0], &[3])?;
    /// let b = Tensor::from_vec(vec![1.0f32, 2.0, 4.0], &[3])?;
    /// assert_eq!(a.ne(&b).to_vec::<f32>(), vec![0.0, 1.0, 1.0]);   // torch.ne(a, b), as 0/1
    /// # Ok::<(), sinew_tensor::TensorError>(())
    /// ```
    ne,
    ///
    /// ```
    /// use sinew_tensor::Tensor;
    /// let m = Tensor::zeros(&[2, 1]).try_ne(&Tensor::zeros(&[3]))?;
    /// assert_eq!(m.dims(), &[2, 3]);
    /// assert!(Tensor::zeros(&[2]).try_ne(&Tensor::zeros(&[3])).is_err());
    /// # Ok::<(), sinew_tensor::TensorError>(())
    /// ```
    try_ne,
    ///
    /// ```
    /// use sinew_tensor::Tensor;
    /// let x = Tensor::arange(-1.0, 2.0, 1.0);
    /// assert_eq!(x.ne_scalar(0.0).to_vec::<f32>(), vec![1.0, 0.0, 1.0]);   // x != 0
    /// ```
    ne_scalar => |a, b| if a != b { T::ONE } else { T::ZERO };
    /// `a < b` as a 0/1 mask.
    ///
    /// ```
    /// use sinew_tensor::Tensor;
    /// let a = Tensor::from_vec(vec![1.0f32, 3.0, 2.0], &[3])?;
    /// let b = Tensor::from_vec(vec![1.0f32, 2.0, 4.0], &[3])?;
    /// assert_eq!(a.lt(&b).to_vec::<f32>(), vec![0.0, 0.0, 1.0]);   // torch.lt(a, b), as 0/1
    /// # Ok::<(), sinew_tensor::TensorError>(())
    /// ```
    lt,
    ///
    /// ```
    /// use sinew_tensor::Tensor;
    /// let m = Tensor::zeros(&[2, 1]).try_lt(&Tensor::zeros(&[3]))?;
    /// assert_eq!(m.dims(), &[2, 3]);
    /// assert!(Tensor::zeros(&[2]).try_lt(&Tensor::zeros(&[3])).is_err());
    /// # Ok::<(), sinew_tensor::TensorError>(())
    /// ```
    try_lt,
    ///
    /// ```
    /// use sinew_tensor::Tensor;
    /// let x = Tensor::arange(-1.0, 2.0, 1.0);
    /// assert_eq!(x.lt_scalar(0.0).to_vec::<f32>(), vec![1.0, 0.0, 0.0]);   // x < 0
    /// ```
    lt_scalar => |a, b| if a < b { T::ONE } else { T::ZERO };
    /// `a <= b` as a 0/1 mask.
    ///
    /// ```
    /// use sinew_tensor::Tensor;
    /// let a = Tensor::from_vec(vec![1.0f32, 3.0, 2.0], &[3])?;
    /// let b = Tensor::from_vec(vec![1.0f32, 2.0, 4.0], &[3])?;
    /// assert_eq!(a.le(&b).to_vec::<f32>(), vec![1.0, 0.0, 1.0]);   // torch.le(a, b), as 0/1
    /// # Ok::<(), sinew_tensor::TensorError>(())
    /// ```
    le,
    ///
    /// ```
    /// use sinew_tensor::Tensor;
    /// let m = Tensor::zeros(&[2, 1]).try_le(&Tensor::zeros(&[3]))?;
    /// assert_eq!(m.dims(), &[2, 3]);
    /// assert!(Tensor::zeros(&[2]).try_le(&Tensor::zeros(&[3])).is_err());
    /// # Ok::<(), sinew_tensor::TensorError>(())
    /// ```
    try_le,
    ///
    /// ```
    /// use sinew_tensor::Tensor;
    /// let x = Tensor::arange(-1.0, 2.0, 1.0);
    /// assert_eq!(x.le_scalar(0.0).to_vec::<f32>(), vec![1.0, 1.0, 0.0]);   // x <= 0
    /// ```
    le_scalar => |a, b| if a <= b { T::ONE } else { T::ZERO };
    /// `a > b` as a 0/1 mask.
    ///
    /// ```
    /// use sinew_tensor::Tensor;
    /// let a = Tensor::from_vec(vec![1.0f32, 3.0, 2.0], &[3])?;
    /// let b = Tensor::from_vec(vec![1.0f32, 2.0, 4.0], &[3])?;
    /// assert_eq!(a.gt(&b).to_vec::<f32>(), vec![0.0, 1.0, 0.0]);   // torch.gt(a, b), as 0/1
    /// # Ok::<(), sinew_tensor::TensorError>(())
    /// ```
    gt,
    ///
    /// ```
    /// use sinew_tensor::Tensor;
    /// let m = Tensor::zeros(&[2, 1]).try_gt(&Tensor::zeros(&[3]))?;
    /// assert_eq!(m.dims(), &[2, 3]);
    /// assert!(Tensor::zeros(&[2]).try_gt(&Tensor::zeros(&[3])).is_err());
    /// # Ok::<(), sinew_tensor::TensorError>(())
    /// ```
    try_gt,
    ///
    /// ```
    /// use sinew_tensor::Tensor;
    /// let x = Tensor::arange(-1.0, 2.0, 1.0);
    /// assert_eq!(x.gt_scalar(0.0).to_vec::<f32>(), vec![0.0, 0.0, 1.0]);   // x > 0
    /// ```
    gt_scalar => |a, b| if a > b { T::ONE } else { T::ZERO };
    /// `a >= b` as a 0/1 mask.
    ///
    /// ```
    /// use sinew_tensor::Tensor;
    /// let a = Tensor::from_vec(vec![1.0f32, 3.0, 2.0], &[3])?;
    /// let b = Tensor::from_vec(vec![1.0f32, 2.0, 4.0], &[3])?;
    /// assert_eq!(a.ge(&b).to_vec::<f32>(), vec![1.0, 1.0, 0.0]);   // torch.ge(a, b), as 0/1
    /// # Ok::<(), sinew_tensor::TensorError>(())
    /// ```
    ge,
    ///
    /// ```
    /// use sinew_tensor::Tensor;
    /// let m = Tensor::zeros(&[2, 1]).try_ge(&Tensor::zeros(&[3]))?;
    /// assert_eq!(m.dims(), &[2, 3]);
    /// assert!(Tensor::zeros(&[2]).try_ge(&Tensor::zeros(&[3])).is_err());
    /// # Ok::<(), sinew_tensor::TensorError>(())
    /// ```
    try_ge,
    ///
    /// ```
    /// use sinew_tensor::Tensor;
    /// let x = Tensor::arange(-1.0, 2.0, 1.0);
    /// assert_eq!(x.ge_scalar(0.0).to_vec::<f32>(), vec![0.0, 1.0, 1.0]);   // x >= 0
    /// ```
    ge_scalar => |a, b| if a >= b { T::ONE } else { T::ZERO };
}

binary_float! {
    /// Elementwise true division with broadcasting (also `&a / &b`); integers divide in `f32`.
    ///
    /// ```
    /// use sinew_tensor::Tensor;
    /// let a = Tensor::from_vec(vec![1i64, 7], &[2])?;
    /// let b = Tensor::from_vec(vec![2i64, 2], &[2])?;
    /// assert_eq!(a.div(&b).to_vec::<f32>(), vec![0.5, 3.5]);   // true division, as torch.div
    /// # Ok::<(), sinew_tensor::TensorError>(())
    /// ```
    div,
    ///
    /// ```
    /// use sinew_tensor::Tensor;
    /// let q = Tensor::ones(&[2]).try_div(&Tensor::full(&[], 4.0))?;
    /// assert_eq!(q.to_vec::<f32>(), vec![0.25, 0.25]);
    /// assert!(Tensor::ones(&[2]).try_div(&Tensor::ones(&[3])).is_err());
    /// # Ok::<(), sinew_tensor::TensorError>(())
    /// ```
    try_div,
    ///
    /// ```
    /// use sinew_tensor::Tensor;
    /// let t = Tensor::arange(1.0, 4.0, 1.0);
    /// assert_eq!(t.div_scalar(2.0).to_vec::<f32>(), vec![0.5, 1.0, 1.5]);   // also &t / 2.0
    /// ```
    div_scalar => |a, b| a / b;
    /// Elementwise power `a^b` with broadcasting (`torch.pow` of two tensors).
    ///
    /// ```
    /// use sinew_tensor::Tensor;
    /// let base = Tensor::from_vec(vec![2.0f32, 3.0], &[2])?;
    /// let exp = Tensor::from_vec(vec![3.0f32, 0.5], &[2])?;
    /// let p = base.pow(&exp).to_vec::<f32>();
    /// assert_eq!(p[0], 8.0);
    /// assert!((p[1] - 3f32.sqrt()).abs() < 1e-6);
    /// # Ok::<(), sinew_tensor::TensorError>(())
    /// ```
    pow,
    ///
    /// ```
    /// use sinew_tensor::Tensor;
    /// let p = Tensor::full(&[2], 2.0).try_pow(&Tensor::arange(0.0, 2.0, 1.0))?;
    /// assert_eq!(p.to_vec::<f32>(), vec![1.0, 2.0]);
    /// assert!(Tensor::ones(&[2]).try_pow(&Tensor::ones(&[3])).is_err());
    /// # Ok::<(), sinew_tensor::TensorError>(())
    /// ```
    try_pow,
    ///
    /// ```
    /// use sinew_tensor::Tensor;
    /// let t = Tensor::arange(1.0, 4.0, 1.0);
    /// assert_eq!(t.pow_scalar(2.0).to_vec::<f32>(), vec![1.0, 4.0, 9.0]);
    /// ```
    pow_scalar => |a, b| Float::powf(a, b);
}

impl Tensor {
    /// `scalar - x` (`torch.rsub`).
    ///
    /// ```
    /// use sinew_tensor::Tensor;
    /// let t = Tensor::arange(0.0, 3.0, 1.0);
    /// assert_eq!(t.rsub_scalar(1.0).to_vec::<f32>(), vec![1.0, 0.0, -1.0]);   // 1 - t
    /// ```
    pub fn rsub_scalar(&self, scalar: f64) -> Tensor {
        self.neg().add_scalar(scalar)
    }

    /// `scalar / x`.
    ///
    /// ```
    /// use sinew_tensor::Tensor;
    /// let t = Tensor::from_vec(vec![1.0f32, 2.0, 4.0], &[3])?;
    /// assert_eq!(t.rdiv_scalar(2.0).to_vec::<f32>(), vec![2.0, 1.0, 0.5]);   // 2 / t
    /// # Ok::<(), sinew_tensor::TensorError>(())
    /// ```
    pub fn rdiv_scalar(&self, scalar: f64) -> Tensor {
        self.recip().mul_scalar(scalar)
    }

    /// Picks from `a` where `self` is non-zero and from `b` elsewhere, with all three
    /// broadcast together (`torch.where(cond, a, b)`).
    ///
    /// # Panics
    /// If the shapes do not broadcast.
    ///
    /// ```
    /// use sinew_tensor::Tensor;
    /// let x = Tensor::arange(-2.0, 2.0, 1.0);
    /// let y = x.gt_scalar(0.0).where_(&x, &Tensor::zeros(&[1]));
    /// assert_eq!(y.to_vec::<f32>(), vec![0.0, 0.0, 0.0, 1.0]);
    /// ```
    #[track_caller]
    pub fn where_(&self, a: &Tensor, b: &Tensor) -> Tensor {
        let (a, b) = or_panic(a.promoted(b, "where"));
        let shape = or_panic(shape::broadcast_shapes("where", self.dims(), a.dims()));
        let shape = or_panic(shape::broadcast_shapes("where", &shape, b.dims()));
        let cond = self.to_dtype(DType::F64);
        let sc = shape::broadcast_strides(cond.dims(), cond.strides(), &shape);
        let sa = shape::broadcast_strides(a.dims(), a.strides(), &shape);
        let sb = shape::broadcast_strides(b.dims(), b.strides(), &shape);
        let c = cond.storage_slice::<f64>();
        with_elem!(a.dtype(), |T| {
            let (da, db) = (a.storage_slice::<T>(), b.storage_slice::<T>());
            let mut out: Vec<T> = crate::buffer::take(shape::numel(&shape));
            let offs = [cond.layout().offset, a.layout().offset, b.layout().offset];
            shape::walk(&shape, [&sc, &sa, &sb], offs, |[oc, oa, ob], len, [ic, ia, ib]| {
                out.extend(
                    (0..len).map(|i| if c[oc + i * ic] != 0.0 { da[oa + i * ia] } else { db[ob + i * ib] }),
                );
            });
            Tensor::from_parts(out, &shape)
        })
    }

    /// Sets elements to `value` where `mask` (broadcast to this shape) is non-zero.
    ///
    /// ```
    /// use sinew_tensor::Tensor;
    /// // an attention-style mask: -inf above the diagonal, scores.masked_fill(mask, -inf)
    /// let scores = Tensor::zeros(&[2, 2]);
    /// let mask = Tensor::from_vec(vec![0.0f32, 1.0, 0.0, 0.0], &[2, 2])?;
    /// let m = scores.masked_fill(&mask, f64::NEG_INFINITY);
    /// assert_eq!(m.to_vec::<f32>(), vec![0.0, f32::NEG_INFINITY, 0.0, 0.0]);
    /// # Ok::<(), sinew_tensor::TensorError>(())
    /// ```
    #[track_caller]
    pub fn masked_fill(&self, mask: &Tensor, value: f64) -> Tensor {
        let fill = Tensor::full_dtype(&[], value, self.dtype());
        mask.where_(&fill, self).broadcast_to(self.dims()).contiguous()
    }

    /// The elements where `mask` (broadcast to this shape) is non-zero, as a 1-D tensor
    /// (`torch.masked_select`).
    ///
    /// ```
    /// use sinew_tensor::Tensor;
    /// let x = Tensor::arange(-2.0, 3.0, 1.0);
    /// let positive = x.masked_select(&x.gt_scalar(0.0));   // x[x > 0]
    /// assert_eq!(positive.to_vec::<f32>(), vec![1.0, 2.0]);
    /// ```
    #[track_caller]
    pub fn masked_select(&self, mask: &Tensor) -> Tensor {
        let shape = or_panic(shape::broadcast_shapes("masked_select", self.dims(), mask.dims()));
        let m = mask.to_dtype(DType::F64).broadcast_to(&shape).to_vec::<f64>();
        with_elem!(self.dtype(), |T| {
            let v = self.broadcast_to(&shape).gather_vec::<T>();
            let out: Vec<T> = v.into_iter().zip(m).filter(|(_, m)| *m != 0.0).map(|(v, _)| v).collect();
            let n = out.len();
            Tensor::from_parts(out, &[n])
        })
    }
}

// ---------------------------------------------------------------- operators

macro_rules! impl_operator {
    ($trait:ident, $method:ident, $tensor_fn:ident, $scalar_fn:ident) => {
        impl $trait<&Tensor> for &Tensor {
            type Output = Tensor;
            #[track_caller]
            fn $method(self, rhs: &Tensor) -> Tensor {
                Tensor::$tensor_fn(&self, rhs)
            }
        }
        impl $trait<Tensor> for Tensor {
            type Output = Tensor;
            #[track_caller]
            fn $method(self, rhs: Tensor) -> Tensor {
                Tensor::$tensor_fn(&self, &rhs)
            }
        }
        impl $trait<&Tensor> for Tensor {
            type Output = Tensor;
            #[track_caller]
            fn $method(self, rhs: &Tensor) -> Tensor {
                Tensor::$tensor_fn(&self, rhs)
            }
        }
        impl $trait<Tensor> for &Tensor {
            type Output = Tensor;
            #[track_caller]
            fn $method(self, rhs: Tensor) -> Tensor {
                Tensor::$tensor_fn(&self, &rhs)
            }
        }
        impl $trait<f64> for &Tensor {
            type Output = Tensor;
            fn $method(self, rhs: f64) -> Tensor {
                Tensor::$scalar_fn(&self, rhs)
            }
        }
        impl $trait<f64> for Tensor {
            type Output = Tensor;
            fn $method(self, rhs: f64) -> Tensor {
                Tensor::$scalar_fn(&self, rhs)
            }
        }
    };
}
impl_operator!(Add, add, add, add_scalar);
impl_operator!(Sub, sub, sub, sub_scalar);
impl_operator!(Mul, mul, mul, mul_scalar);
impl_operator!(Div, div, div, div_scalar);

impl Add<&Tensor> for f64 {
    type Output = Tensor;
    fn add(self, rhs: &Tensor) -> Tensor {
        rhs.add_scalar(self)
    }
}
impl Sub<&Tensor> for f64 {
    type Output = Tensor;
    fn sub(self, rhs: &Tensor) -> Tensor {
        rhs.rsub_scalar(self)
    }
}
impl Mul<&Tensor> for f64 {
    type Output = Tensor;
    fn mul(self, rhs: &Tensor) -> Tensor {
        rhs.mul_scalar(self)
    }
}
impl Div<&Tensor> for f64 {
    type Output = Tensor;
    fn div(self, rhs: &Tensor) -> Tensor {
        rhs.rdiv_scalar(self)
    }
}
impl Neg for &Tensor {
    type Output = Tensor;
    fn neg(self) -> Tensor {
        Tensor::neg(self)
    }
}
impl Neg for Tensor {
    type Output = Tensor;
    fn neg(self) -> Tensor {
        Tensor::neg(&self)
    }
}

/// `f32` with `f64` is an error unless one side is a 0-d tensor (a scalar): it is almost
/// always an `f64` input (Rust's default float literal) fed to an `f32` model, which would
/// otherwise compute silently in `f64`. `i64` with a float promotes, as in PyTorch.
pub(crate) fn check_float_mix(op: &'static str, a: &Tensor, b: &Tensor) -> Result<()> {
    let (da, db) = (a.dtype(), b.dtype());
    if da != db && da.is_float() && db.is_float() && a.ndim() > 0 && b.ndim() > 0 {
        return Err(crate::TensorError::InvalidArgument {
            op,
            msg: format!(
                "operands are {da} {:?} and {db} {:?}: mixed float dtypes (an f64 input to an f32 layer? \
                 convert one with to_dtype)",
                a.dims(),
                b.dims()
            ),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use crate::{DType, Tensor};
    use proptest::prelude::*;

    #[test]
    fn a_repeated_operand_gives_what_its_expanded_copy_gives_in_either_place() {
        // 400 x 384 elements: parallel chunks of 2^15 start inside a repeat of 384
        let full = Tensor::arange_dtype(0.0, 400.0 * 384.0, 1.0, DType::F32).mul_scalar(0.01).sin();
        let full = full.reshape(&[4, 100, 384]);
        for rep_shape in [&[384][..], &[1, 1, 384], &[100, 384], &[1, 100, 384]] {
            let n: usize = rep_shape.iter().product();
            let rep =
                Tensor::arange_dtype(0.0, n as f64, 1.0, DType::F32).mul_scalar(0.3).cos().reshape(rep_shape);
            let copy = rep.expand(&[4, 100, 384]).contiguous();
            let bits = |t: Tensor| t.to_vec::<f32>().iter().map(|v| v.to_bits()).collect::<Vec<u32>>();
            for threads in [1, 2] {
                crate::set_num_threads(threads);
                assert_eq!(bits(full.sub(&rep)), bits(full.sub(&copy)), "{rep_shape:?}");
                assert_eq!(bits(rep.sub(&full)), bits(copy.sub(&full)), "{rep_shape:?}");
                assert_eq!(bits(rep.div(&full)), bits(copy.div(&full)), "{rep_shape:?}");
                crate::set_num_threads(0);
            }
        }
    }

    /// Reference broadcasting: index each operand by the output multi-index directly.
    fn reference_add(a: &[f64], sa: &[usize], b: &[f64], sb: &[usize]) -> (Vec<f64>, Vec<usize>) {
        let n = sa.len().max(sb.len());
        let pad = |s: &[usize]| -> Vec<usize> {
            std::iter::repeat_n(1, n - s.len()).chain(s.iter().copied()).collect()
        };
        let (pa, pb) = (pad(sa), pad(sb));
        let out: Vec<usize> = pa.iter().zip(&pb).map(|(&x, &y)| x.max(y)).collect();
        let total: usize = out.iter().product();
        let mut res = Vec::with_capacity(total);
        for flat in 0..total {
            let mut rem = flat;
            let mut idx = vec![0; n];
            for d in (0..n).rev() {
                idx[d] = rem % out[d];
                rem /= out[d];
            }
            let lin =
                |p: &[usize]| idx.iter().zip(p).fold(0, |acc, (&i, &s)| acc * s + if s == 1 { 0 } else { i });
            res.push(a[lin(&pa)] + 10.0 * b[lin(&pb)]);
        }
        (res, out)
    }

    fn broadcastable_pair() -> impl Strategy<Value = (Vec<usize>, Vec<usize>)> {
        proptest::collection::vec((1usize..4, 0u8..3), 0..5).prop_flat_map(|dims| {
            let full: Vec<usize> = dims.iter().map(|d| d.0).collect();
            let a: Vec<usize> = dims.iter().map(|&(s, m)| if m == 1 { 1 } else { s }).collect();
            let b: Vec<usize> = dims.iter().map(|&(s, m)| if m == 2 { 1 } else { s }).collect();
            let _ = full;
            (0..=a.len(), 0..=b.len()).prop_map(move |(ca, cb)| (a[ca..].to_vec(), b[cb..].to_vec()))
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(96))]

        #[test]
        fn broadcasting_agrees_with_reference((sa, sb) in broadcastable_pair(), transpose in any::<bool>()) {
            let na: usize = sa.iter().product();
            let nb: usize = sb.iter().product();
            let a = Tensor::arange_dtype(0.0, na as f64, 1.0, DType::F64).reshape(&sa);
            let b = Tensor::arange_dtype(0.0, nb as f64, 1.0, DType::F64).reshape(&sb);
            let (expected, shape) = reference_add(&a.to_vec::<f64>(), &sa, &b.to_vec::<f64>(), &sb);
            // the same values through a strided (transposed twice) view
            let b2 = if transpose && sb.len() >= 2 { b.t().contiguous().t() } else { b.clone() };
            let got = &a + &(&b2 * 10.0);
            prop_assert_eq!(got.dims(), &shape[..]);
            prop_assert_eq!(got.to_vec::<f64>(), expected);
        }
    }

    #[test]
    fn mismatched_shapes_name_both() {
        let e = Tensor::zeros(&[2, 3]).try_add(&Tensor::zeros(&[4])).unwrap_err();
        assert!(e.to_string().contains("add: incompatible shapes [2, 3] and [4]"), "{e}");
    }

    #[test]
    #[should_panic(expected = "mul: incompatible shapes [3] and [2]")]
    fn operator_panics_name_shapes() {
        let _ = &Tensor::zeros(&[3]) * &Tensor::zeros(&[2]);
    }

    #[test]
    fn dtype_promotion() {
        let i = Tensor::from_vec(vec![1i64, 2], &[2]).unwrap();
        let f = Tensor::from_vec(vec![0.5f64, 0.5], &[2]).unwrap();
        assert_eq!((&i + &f).dtype(), DType::F64);
        assert_eq!((&i / &i).dtype(), DType::F32);
        assert_eq!((&i + 1.0).dtype(), DType::I64);
        assert_eq!((&i * 0.5).to_vec::<f32>(), vec![0.5, 1.0]);
    }

    #[test]
    fn maximum_propagates_nan() {
        let a = Tensor::from_vec(vec![f64::NAN, 1.0], &[2]).unwrap();
        let b = Tensor::from_vec(vec![0.0, f64::NAN], &[2]).unwrap();
        assert!(a.maximum(&b).to_vec::<f64>().iter().all(|v| v.is_nan()));
        assert!(a.minimum(&b).to_vec::<f64>().iter().all(|v| v.is_nan()));
    }

    #[test]
    fn masks_and_selection() {
        let x = Tensor::arange(0.0, 6.0, 1.0).reshape(&[2, 3]);
        let m = x.ge_scalar(3.0);
        assert_eq!(x.masked_select(&m).to_vec::<f32>(), vec![3.0, 4.0, 5.0]);
        assert_eq!(x.masked_fill(&m, -1.0).to_vec::<f32>(), vec![0.0, 1.0, 2.0, -1.0, -1.0, -1.0]);
    }

    #[test]
    fn scalar_operators() {
        let x = Tensor::arange(1.0, 3.0, 1.0);
        assert_eq!((1.0 - &x).to_vec::<f32>(), vec![0.0, -1.0]);
        assert_eq!((2.0 / &x).to_vec::<f32>(), vec![2.0, 1.0]);
        assert_eq!((-&x).to_vec::<f32>(), vec![-1.0, -2.0]);
    }
}

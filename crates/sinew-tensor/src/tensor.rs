//! The [`Tensor`] type: storage, layout, constructors, element access and casts.

use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;

use crate::dtype::{DType, Element};
use crate::error::{Result, TensorError, or_panic};
use crate::shape::{self, Layout};

/// The flat buffer behind one or more tensors. Tensors share it through an `Arc`; views
/// differ only in their [`Layout`].
#[doc(hidden)]
#[derive(Clone, Debug)]
pub enum Storage {
    /// `f32` elements.
    F32(Vec<f32>),
    /// `f64` elements.
    F64(Vec<f64>),
    /// `i64` elements.
    I64(Vec<i64>),
}

/// A dropped buffer goes to the [buffer cache](crate::buffer) for the next tensor of its size.
impl Drop for Storage {
    fn drop(&mut self) {
        match self {
            Storage::F32(v) => crate::buffer::give(std::mem::take(v)),
            Storage::F64(v) => crate::buffer::give(std::mem::take(v)),
            Storage::I64(v) => crate::buffer::give(std::mem::take(v)),
        }
    }
}

impl Storage {
    fn dtype(&self) -> DType {
        match self {
            Storage::F32(_) => DType::F32,
            Storage::F64(_) => DType::F64,
            Storage::I64(_) => DType::I64,
        }
    }
}

/// Typed access to [`Storage`] (implemented for the three [`Element`] types).
#[doc(hidden)]
pub trait StorageElement: Element {
    fn wrap(v: Vec<Self>) -> Storage;
    fn slice(s: &Storage) -> Option<&[Self]>;
    fn vec_mut(s: &mut Storage) -> Option<&mut Vec<Self>>;
}

macro_rules! impl_storage_element {
    ($t:ty, $v:ident) => {
        impl StorageElement for $t {
            #[inline]
            fn wrap(v: Vec<Self>) -> Storage {
                Storage::$v(v)
            }
            #[inline]
            fn slice(s: &Storage) -> Option<&[Self]> {
                match s {
                    Storage::$v(v) => Some(v),
                    _ => None,
                }
            }
            #[inline]
            fn vec_mut(s: &mut Storage) -> Option<&mut Vec<Self>> {
                match s {
                    Storage::$v(v) => Some(v),
                    _ => None,
                }
            }
        }
    };
}
impl_storage_element!(f32, F32);
impl_storage_element!(f64, F64);
impl_storage_element!(i64, I64);

/// Runs `$body` with the type alias `$T` bound to the Rust type of a float dtype; panics
/// naming `$op` for `I64`.
macro_rules! with_float {
    ($dtype:expr, $op:expr, |$T:ident| $body:expr) => {
        match $dtype {
            $crate::DType::F32 => {
                #[allow(dead_code)]
                type $T = f32;
                $body
            }
            $crate::DType::F64 => {
                #[allow(dead_code)]
                type $T = f64;
                $body
            }
            $crate::DType::I64 => {
                panic!("{}: not supported for int64 tensors (cast with .to_dtype(DType::F32) first)", $op)
            }
        }
    };
}

/// Runs `$body` with the type alias `$T` bound to the Rust type of any dtype.
macro_rules! with_elem {
    ($dtype:expr, |$T:ident| $body:expr) => {
        match $dtype {
            $crate::DType::F32 => {
                #[allow(dead_code)]
                type $T = f32;
                $body
            }
            $crate::DType::F64 => {
                #[allow(dead_code)]
                type $T = f64;
                $body
            }
            $crate::DType::I64 => {
                #[allow(dead_code)]
                type $T = i64;
                $body
            }
        }
    };
}
pub(crate) use {with_elem, with_float};

/// An n-dimensional array of `f32`, `f64` or `i64` with PyTorch's semantics.
///
/// A tensor is a [`Layout`] (shape, strides, offset) over shared storage: cloning is
/// cheap and views (`transpose`, `permute`, `narrow`, `broadcast_to`, `reshape` of
/// contiguous data) never copy. Operations return new tensors; the only in-place access
/// is [`Tensor::as_mut_slice`], which copies first if the storage is shared.
///
/// ```
/// use sinew_tensor::Tensor;
/// let a = Tensor::from_vec(vec![1.0f32, 2.0, 3.0, 4.0], &[2, 2])?;
/// let b = a.t();                    // a view: no copy
/// let c = &a.matmul(&b) + 1.0;
/// assert_eq!(c.to_vec::<f32>(), vec![6.0, 12.0, 12.0, 26.0]);
/// # Ok::<(), sinew_tensor::TensorError>(())
/// ```
#[derive(Clone)]
pub struct Tensor {
    storage: Arc<Storage>,
    layout: Layout,
}

// ---------------------------------------------------------------- construction

impl Tensor {
    /// Wraps a row-major buffer. Internal: the caller has checked `shape` against
    /// [`shape::MAX_EXTENT`] and filled `data` with its elements (asserted: a kernel that
    /// wrote to a buffer of the wrong length must not hand it out).
    pub(crate) fn from_parts<T: StorageElement>(data: Vec<T>, shape: &[usize]) -> Tensor {
        assert!(
            shape::checked_numel(shape) == Some(data.len()),
            "internal error: a buffer of {} elements for shape {shape:?}",
            data.len()
        );
        Tensor { storage: Arc::new(T::wrap(data)), layout: Layout::contiguous(shape) }
    }

    /// A view of this tensor's storage with another layout. Internal: the caller
    /// guarantees the layout stays inside the storage.
    pub(crate) fn with_layout(&self, layout: Layout) -> Tensor {
        Tensor { storage: self.storage.clone(), layout }
    }

    /// Builds a tensor from row-major data. The element type comes from `T`.
    ///
    /// # Errors
    /// [`TensorError::DataLength`] if `data.len()` is not the product of `shape`;
    /// [`TensorError::TooLarge`] if the shape exceeds [`shape::MAX_EXTENT`].
    ///
    /// ```
    /// use sinew_tensor::{DType, Tensor};
    /// let t = Tensor::from_vec(vec![1i64, 2, 3], &[3])?;
    /// assert_eq!(t.dtype(), DType::I64);
    /// assert!(Tensor::from_vec(vec![1.0f32; 5], &[2, 3]).is_err());
    /// # Ok::<(), sinew_tensor::TensorError>(())
    /// ```
    pub fn from_vec<T: StorageElement>(data: Vec<T>, shape: &[usize]) -> Result<Tensor> {
        let numel = shape::try_numel("from_vec", shape)?;
        if numel != data.len() {
            return Err(TensorError::DataLength {
                op: "from_vec",
                len: data.len(),
                shape: shape.to_vec(),
                numel,
            });
        }
        Ok(Tensor::from_parts(data, shape))
    }

    /// Builds a tensor by copying a slice. See [`Tensor::from_vec`].
    ///
    /// ```
    /// use sinew_tensor::Tensor;
    /// let data = [1.0f64, 2.0, 3.0, 4.0, 5.0, 6.0];
    /// let t = Tensor::from_slice(&data[..4], &[2, 2])?;   // torch.tensor(data[:4]).reshape(2, 2)
    /// assert_eq!(t.to_vec::<f64>(), vec![1.0, 2.0, 3.0, 4.0]);
    /// assert!(Tensor::from_slice(&data, &[4]).is_err());  // 6 values do not fill [4]
    /// # Ok::<(), sinew_tensor::TensorError>(())
    /// ```
    pub fn from_slice<T: StorageElement>(data: &[T], shape: &[usize]) -> Result<Tensor> {
        Tensor::from_vec(data.to_vec(), shape)
    }

    /// A zero-dimensional tensor holding one value.
    ///
    /// ```
    /// use sinew_tensor::Tensor;
    /// let s = Tensor::scalar(2.5f64);
    /// assert_eq!(s.dims(), &[] as &[usize]);
    /// assert_eq!(s.item(), 2.5);
    /// ```
    pub fn scalar<T: StorageElement>(value: T) -> Tensor {
        Tensor::from_parts(vec![value], &[])
    }

    /// A tensor of `shape` filled with `value`, of type `dtype`.
    ///
    /// # Panics
    /// If the shape exceeds [`shape::MAX_EXTENT`], or its memory cannot be allocated.
    ///
    /// ```
    /// use sinew_tensor::{DType, Tensor};
    /// let t = Tensor::full_dtype(&[2, 2], -3.0, DType::I64);  // torch.full((2, 2), -3)
    /// assert_eq!(t.dtype(), DType::I64);
    /// assert_eq!(t.to_vec::<i64>(), vec![-3; 4]);
    /// ```
    #[track_caller]
    pub fn full_dtype(shape: &[usize], value: f64, dtype: DType) -> Tensor {
        let n = checked_numel_or_panic("full", shape);
        with_elem!(dtype, |T| Tensor::from_parts(crate::buffer::filled(n, T::from_f64(value)), shape))
    }

    /// An `f32` tensor of `shape` filled with `value`.
    ///
    /// ```
    /// use sinew_tensor::Tensor;
    /// assert_eq!(Tensor::full(&[2], 7.0).to_vec::<f32>(), vec![7.0, 7.0]);
    /// ```
    pub fn full(shape: &[usize], value: f64) -> Tensor {
        Tensor::full_dtype(shape, value, DType::F32)
    }

    /// An `f32` tensor of zeros.
    ///
    /// ```
    /// use sinew_tensor::Tensor;
    /// assert_eq!(Tensor::zeros(&[2, 3]).sum_all().item(), 0.0);
    /// ```
    pub fn zeros(shape: &[usize]) -> Tensor {
        Tensor::full_dtype(shape, 0.0, DType::F32)
    }

    /// A tensor of zeros of type `dtype`.
    ///
    /// ```
    /// use sinew_tensor::{DType, Tensor};
    /// let t = Tensor::zeros_dtype(&[3], DType::F64);  // torch.zeros(3, dtype=torch.float64)
    /// assert_eq!(t.dtype(), DType::F64);
    /// assert_eq!(t.to_vec::<f64>(), vec![0.0; 3]);
    /// ```
    pub fn zeros_dtype(shape: &[usize], dtype: DType) -> Tensor {
        Tensor::full_dtype(shape, 0.0, dtype)
    }

    /// An `f32` tensor of ones.
    ///
    /// ```
    /// use sinew_tensor::{DType, Tensor};
    /// let t = Tensor::ones(&[2, 3]);
    /// assert_eq!((t.dims(), t.dtype()), (&[2, 3][..], DType::F32));
    /// assert_eq!(t.sum_all().item(), 6.0);
    /// ```
    pub fn ones(shape: &[usize]) -> Tensor {
        Tensor::full_dtype(shape, 1.0, DType::F32)
    }

    /// A tensor of ones of type `dtype`.
    ///
    /// ```
    /// use sinew_tensor::{DType, Tensor};
    /// let t = Tensor::ones_dtype(&[2], DType::I64);
    /// assert_eq!(t.to_vec::<i64>(), vec![1, 1]);
    /// ```
    pub fn ones_dtype(shape: &[usize], dtype: DType) -> Tensor {
        Tensor::full_dtype(shape, 1.0, dtype)
    }

    /// Zeros with this tensor's shape and dtype.
    ///
    /// ```
    /// use sinew_tensor::{DType, Tensor};
    /// let x = Tensor::arange_dtype(1.0, 4.0, 1.0, DType::F64);
    /// let z = x.zeros_like();  // torch.zeros_like(x)
    /// assert_eq!((z.dims(), z.dtype()), (&[3][..], DType::F64));
    /// assert_eq!(z.to_vec::<f64>(), vec![0.0; 3]);
    /// ```
    pub fn zeros_like(&self) -> Tensor {
        Tensor::zeros_dtype(self.dims(), self.dtype())
    }

    /// Ones with this tensor's shape and dtype.
    ///
    /// ```
    /// use sinew_tensor::{DType, Tensor};
    /// let x = Tensor::zeros_dtype(&[2, 2], DType::I64);
    /// assert_eq!(x.ones_like().to_vec::<i64>(), vec![1; 4]);
    /// ```
    pub fn ones_like(&self) -> Tensor {
        Tensor::ones_dtype(self.dims(), self.dtype())
    }

    /// `value` everywhere, with this tensor's shape and dtype.
    ///
    /// ```
    /// use sinew_tensor::Tensor;
    /// let x = Tensor::zeros(&[2]);
    /// assert_eq!(x.full_like(0.5).to_vec::<f32>(), vec![0.5, 0.5]);
    /// ```
    pub fn full_like(&self, value: f64) -> Tensor {
        Tensor::full_dtype(self.dims(), value, self.dtype())
    }

    /// Values `start, start + step, ...` below `end` (above it for a negative step), like
    /// `torch.arange`.
    ///
    /// # Panics
    /// If `step` is zero or not finite, or the bounds are not finite.
    ///
    /// ```
    /// use sinew_tensor::{DType, Tensor};
    /// assert_eq!(Tensor::arange_dtype(0.0, 5.0, 2.0, DType::I64).to_vec::<i64>(), vec![0, 2, 4]);
    /// ```
    #[track_caller]
    pub fn arange_dtype(start: f64, end: f64, step: f64, dtype: DType) -> Tensor {
        assert!(step != 0.0 && step.is_finite(), "arange: step must be finite and non-zero, got {step}");
        assert!(start.is_finite() && end.is_finite(), "arange: bounds must be finite, got {start}..{end}");
        let count = ((end - start) / step).ceil().max(0.0);
        assert!(
            count <= shape::MAX_EXTENT as f64,
            "arange: {start}..{end} in steps of {step} is {count} elements, more than a tensor may hold (2^60)"
        );
        let n = count as usize;
        with_elem!(dtype, |T| {
            let data: Vec<T> = (0..n).map(|i| T::from_f64(start + i as f64 * step)).collect();
            Tensor::from_parts(data, &[n])
        })
    }

    /// `f32` values `start, start + step, ...` below `end`. See [`Tensor::arange_dtype`].
    ///
    /// ```
    /// use sinew_tensor::{DType, Tensor};
    /// let t = Tensor::arange(0.0, 1.0, 0.25);  // torch.arange(0, 1, 0.25)
    /// assert_eq!(t.dtype(), DType::F32);
    /// assert_eq!(t.to_vec::<f32>(), vec![0.0, 0.25, 0.5, 0.75]);
    /// assert_eq!(Tensor::arange(3.0, 0.0, -1.0).to_vec::<f32>(), vec![3.0, 2.0, 1.0]);
    /// ```
    #[track_caller]
    pub fn arange(start: f64, end: f64, step: f64) -> Tensor {
        Tensor::arange_dtype(start, end, step, DType::F32)
    }

    /// `steps` evenly spaced values from `start` to `end` inclusive, like `torch.linspace`.
    ///
    /// ```
    /// use sinew_tensor::{DType, Tensor};
    /// let t = Tensor::linspace_dtype(0.0, 1.0, 5, DType::F64);
    /// assert_eq!(t.to_vec::<f64>(), vec![0.0, 0.25, 0.5, 0.75, 1.0]);
    /// ```
    #[track_caller]
    pub fn linspace_dtype(start: f64, end: f64, steps: usize, dtype: DType) -> Tensor {
        checked_numel_or_panic("linspace", &[steps]);
        let step = if steps > 1 { (end - start) / (steps - 1) as f64 } else { 0.0 };
        // PyTorch fills the two halves from both ends, so the last value is exactly `end`.
        let half = steps / 2;
        with_elem!(dtype, |T| {
            let data: Vec<T> = (0..steps)
                .map(|i| {
                    let v =
                        if i < half { start + step * i as f64 } else { end - step * (steps - 1 - i) as f64 };
                    T::from_f64(v)
                })
                .collect();
            Tensor::from_parts(data, &[steps])
        })
    }

    /// `f32` [`Tensor::linspace_dtype`].
    ///
    /// ```
    /// use sinew_tensor::Tensor;
    /// let t = Tensor::linspace(-1.0, 1.0, 3);  // torch.linspace(-1, 1, 3)
    /// assert_eq!(t.to_vec::<f32>(), vec![-1.0, 0.0, 1.0]);
    /// ```
    pub fn linspace(start: f64, end: f64, steps: usize) -> Tensor {
        Tensor::linspace_dtype(start, end, steps, DType::F32)
    }

    /// The `n × n` identity matrix of type `dtype`.
    ///
    /// # Panics
    /// If `n × n` exceeds [`shape::MAX_EXTENT`], or its memory cannot be allocated.
    ///
    /// ```
    /// use sinew_tensor::{DType, Tensor};
    /// let i = Tensor::eye_dtype(3, DType::I64);
    /// assert_eq!(i.to_vec::<i64>(), vec![1, 0, 0, 0, 1, 0, 0, 0, 1]);
    /// ```
    #[track_caller]
    pub fn eye_dtype(n: usize, dtype: DType) -> Tensor {
        let len = checked_numel_or_panic("eye", &[n, n]);
        with_elem!(dtype, |T| {
            let mut data = crate::buffer::filled(len, T::ZERO);
            for i in 0..n {
                data[i * n + i] = T::ONE;
            }
            Tensor::from_parts(data, &[n, n])
        })
    }

    /// The `n × n` `f32` identity matrix.
    ///
    /// ```
    /// use sinew_tensor::Tensor;
    /// assert_eq!(Tensor::eye(2).to_vec::<f32>(), vec![1.0, 0.0, 0.0, 1.0]);
    /// ```
    #[track_caller]
    pub fn eye(n: usize) -> Tensor {
        Tensor::eye_dtype(n, DType::F32)
    }
}

#[track_caller]
pub(crate) fn checked_numel_or_panic(op: &'static str, shape: &[usize]) -> usize {
    crate::error::or_panic(shape::try_numel(op, shape))
}

// ---------------------------------------------------------------- inspection

impl Tensor {
    /// The size of each dimension.
    ///
    /// ```
    /// use sinew_tensor::Tensor;
    /// assert_eq!(Tensor::zeros(&[2, 3]).dims(), &[2, 3]);
    /// ```
    #[inline]
    pub fn dims(&self) -> &[usize] {
        &self.layout.shape
    }

    /// The size of each dimension (PyTorch's `.shape`); same as [`Tensor::dims`].
    ///
    /// ```
    /// use sinew_tensor::Tensor;
    /// assert_eq!(Tensor::zeros(&[2, 3]).shape(), &[2, 3]);   // t.shape == (2, 3)
    /// ```
    #[inline]
    pub fn shape(&self) -> &[usize] {
        &self.layout.shape
    }

    /// The size of dimension `dim` (negative counts from the end).
    ///
    /// # Panics
    /// If `dim` is out of range.
    ///
    /// ```
    /// use sinew_tensor::Tensor;
    /// let t = Tensor::zeros(&[2, 3, 4]);
    /// assert_eq!(t.size(0), 2);
    /// assert_eq!(t.size(-1), 4);  // t.size(-1) in PyTorch
    /// ```
    #[track_caller]
    pub fn size(&self, dim: isize) -> usize {
        let d = or_panic(shape::normalize_dim("size", dim, self.ndim()));
        self.layout.shape[d]
    }

    /// Number of dimensions.
    ///
    /// ```
    /// use sinew_tensor::Tensor;
    /// assert_eq!(Tensor::zeros(&[2, 3]).ndim(), 2);
    /// assert_eq!(Tensor::scalar(1.0f32).ndim(), 0);
    /// ```
    #[inline]
    pub fn ndim(&self) -> usize {
        self.layout.shape.len()
    }

    /// Number of elements.
    ///
    /// ```
    /// use sinew_tensor::Tensor;
    /// assert_eq!(Tensor::zeros(&[2, 3]).numel(), 6);
    /// assert_eq!(Tensor::scalar(1.0f32).numel(), 1);
    /// ```
    #[inline]
    pub fn numel(&self) -> usize {
        self.layout.numel()
    }

    /// The element type.
    ///
    /// ```
    /// use sinew_tensor::{DType, Tensor};
    /// assert_eq!(Tensor::zeros(&[2]).dtype(), DType::F32);
    /// assert_eq!(Tensor::scalar(1i64).dtype(), DType::I64);
    /// ```
    #[inline]
    pub fn dtype(&self) -> DType {
        self.storage.dtype()
    }

    /// Strides in elements.
    ///
    /// ```
    /// use sinew_tensor::Tensor;
    /// let t = Tensor::zeros(&[2, 3]);
    /// assert_eq!(t.strides(), &[3, 1]);   // t.stride()
    /// assert_eq!(t.t().strides(), &[1, 3]);
    /// ```
    #[inline]
    pub fn strides(&self) -> &[usize] {
        &self.layout.strides
    }

    /// The shape, strides and offset.
    ///
    /// ```
    /// use sinew_tensor::Tensor;
    /// let t = Tensor::arange(0.0, 6.0, 1.0).reshape(&[2, 3]).narrow(1, 1, 2);
    /// let l = t.layout();
    /// assert_eq!((l.shape.as_slice(), l.strides.as_slice(), l.offset), (&[2, 2][..], &[3, 1][..], 1));
    /// ```
    #[inline]
    pub fn layout(&self) -> &Layout {
        &self.layout
    }

    /// Whether the elements are stored row-major without gaps.
    ///
    /// ```
    /// use sinew_tensor::Tensor;
    /// let t = Tensor::zeros(&[2, 3]);
    /// assert!(t.is_contiguous());
    /// assert!(!t.t().is_contiguous());
    /// ```
    #[inline]
    pub fn is_contiguous(&self) -> bool {
        self.layout.is_contiguous()
    }

    /// Whether two tensors share the same storage (one is a view of the other).
    ///
    /// ```
    /// use sinew_tensor::Tensor;
    /// let a = Tensor::zeros(&[2, 3]);
    /// assert!(a.shares_storage(&a.t()));               // a view
    /// assert!(!a.shares_storage(&a.t().contiguous())); // a copy
    /// ```
    pub fn shares_storage(&self, other: &Tensor) -> bool {
        Arc::ptr_eq(&self.storage, &other.storage)
    }

    /// The whole underlying buffer (not just this view), typed. Internal.
    #[inline]
    pub(crate) fn storage_slice<T: StorageElement>(&self) -> &[T] {
        T::slice(&self.storage)
            .unwrap_or_else(|| panic!("internal: storage is {}, asked for {}", self.dtype(), T::DTYPE))
    }

    /// The elements as a slice, if the tensor is contiguous and of type `T`.
    ///
    /// ```
    /// use sinew_tensor::Tensor;
    /// let t = Tensor::from_vec(vec![1.0f32, 2.0, 3.0, 4.0], &[2, 2])?;
    /// assert_eq!(t.as_slice::<f32>(), Some(&[1.0, 2.0, 3.0, 4.0][..]));
    /// assert_eq!(t.t().as_slice::<f32>(), None); // a transposed view is not contiguous
    /// # Ok::<(), sinew_tensor::TensorError>(())
    /// ```
    pub fn as_slice<T: StorageElement>(&self) -> Option<&[T]> {
        if T::DTYPE != self.dtype() || !self.is_contiguous() {
            return None;
        }
        let n = self.numel();
        Some(&self.storage_slice::<T>()[self.layout.offset..self.layout.offset + n])
    }

    /// The elements in row-major order: borrowed when contiguous, gathered otherwise.
    ///
    /// # Panics
    /// If the tensor's dtype is not `T`.
    ///
    /// ```
    /// use std::borrow::Cow;
    /// use sinew_tensor::Tensor;
    /// let a = Tensor::arange(0.0, 4.0, 1.0).reshape(&[2, 2]);
    /// assert!(matches!(a.contiguous_slice::<f32>(), Cow::Borrowed(_)));
    /// let t = a.t();  // column-major view: gathered
    /// assert_eq!(&*t.contiguous_slice::<f32>(), &[0.0, 2.0, 1.0, 3.0]);
    /// ```
    #[track_caller]
    pub fn contiguous_slice<T: StorageElement>(&self) -> Cow<'_, [T]> {
        assert_eq!(
            self.dtype(),
            T::DTYPE,
            "contiguous_slice: tensor is {}, asked for {}",
            self.dtype(),
            T::DTYPE
        );
        match self.as_slice::<T>() {
            Some(s) => Cow::Borrowed(s),
            None => Cow::Owned(self.gather_vec::<T>()),
        }
    }

    /// Copies the elements, in row-major order, into a new vector. Internal.
    pub(crate) fn gather_vec<T: StorageElement>(&self) -> Vec<T> {
        let src = self.storage_slice::<T>();
        let mut out = crate::buffer::take(self.numel());
        shape::walk(self.dims(), [self.strides()], [self.layout.offset], |[o], n, [s]| {
            if s == 1 {
                out.extend_from_slice(&src[o..o + n]);
            } else {
                out.extend((0..n).map(|i| src[o + i * s]));
            }
        });
        out
    }

    /// The elements in row-major order, converted to `T`.
    ///
    /// ```
    /// use sinew_tensor::Tensor;
    /// let t = Tensor::arange(0.0, 3.0, 1.0);
    /// assert_eq!(t.to_vec::<f64>(), vec![0.0, 1.0, 2.0]);
    /// ```
    pub fn to_vec<T: StorageElement>(&self) -> Vec<T> {
        if self.dtype() == T::DTYPE {
            return self.contiguous_slice::<T>().into_owned();
        }
        self.to_dtype(T::DTYPE).gather_vec::<T>()
    }

    /// The single value of a one-element tensor, as `f64`.
    ///
    /// # Panics
    /// If the tensor does not hold exactly one element.
    ///
    /// ```
    /// use sinew_tensor::Tensor;
    /// let loss = Tensor::arange(0.0, 4.0, 1.0).mean_all();  // loss.item() in PyTorch
    /// assert_eq!(loss.item(), 1.5);
    /// ```
    #[track_caller]
    pub fn item(&self) -> f64 {
        assert_eq!(
            self.numel(),
            1,
            "item: tensor of shape {:?} has {} elements, not 1",
            self.dims(),
            self.numel()
        );
        let off = self.layout.offset;
        with_elem!(self.dtype(), |T| self.storage_slice::<T>()[off].to_f64())
    }

    /// A mutable view of the elements for in-place updates (optimizers). If the storage
    /// is shared with another tensor, or this tensor is a non-contiguous view, the data is
    /// first copied into a fresh contiguous buffer owned by this tensor alone
    /// (copy-on-write), so no other tensor ever sees the change.
    ///
    /// # Panics
    /// If the tensor's dtype is not `T`.
    ///
    /// ```
    /// use sinew_tensor::Tensor;
    /// let mut a = Tensor::zeros(&[3]);
    /// let b = a.clone();
    /// a.as_mut_slice::<f32>()[0] = 1.0;
    /// assert_eq!(a.to_vec::<f32>(), vec![1.0, 0.0, 0.0]);
    /// assert_eq!(b.to_vec::<f32>(), vec![0.0, 0.0, 0.0]); // b kept its value
    /// ```
    #[track_caller]
    pub fn as_mut_slice<T: StorageElement>(&mut self) -> &mut [T] {
        assert_eq!(
            self.dtype(),
            T::DTYPE,
            "as_mut_slice: tensor is {}, asked for {}",
            self.dtype(),
            T::DTYPE
        );
        let n = self.numel();
        let whole = self.storage_slice::<T>().len() == n;
        if !(self.is_contiguous() && whole && Arc::get_mut(&mut self.storage).is_some()) {
            let data = self.gather_vec::<T>();
            *self = Tensor::from_parts(data, &self.layout.shape.clone());
        }
        // contiguous, whole and unique: the storage is exactly this tensor's elements, in order
        let storage = Arc::get_mut(&mut self.storage).expect("unique after copy");
        &mut T::vec_mut(storage).expect("dtype checked")[..n]
    }

    /// Adds `other` (same shape and dtype, any layout) into this tensor in place, copying
    /// first if the storage is shared (see [`Tensor::as_mut_slice`]). For accumulating
    /// gradients without a new buffer per addition.
    ///
    /// # Panics
    /// If shapes or dtypes differ.
    ///
    /// ```
    /// use sinew_tensor::Tensor;
    /// let mut acc = Tensor::zeros(&[2, 2]);
    /// acc.add_assign(&Tensor::arange(0.0, 4.0, 1.0).reshape(&[2, 2]).t());
    /// assert_eq!(acc.to_vec::<f32>(), vec![0.0, 2.0, 1.0, 3.0]);
    /// ```
    #[track_caller]
    pub fn add_assign(&mut self, other: &Tensor) {
        assert!(
            self.dims() == other.dims() && self.dtype() == other.dtype(),
            "add_assign: {} {:?} += {} {:?}",
            self.dtype(),
            self.dims(),
            other.dtype(),
            other.dims()
        );
        // In place when this tensor owns its buffer and covers it densely (in any dimension
        // order). Otherwise copy first, into `other`'s dimension order when it has one:
        // gradients that keep arriving transposed (a weight used as `w.t()` at every time
        // step) then add as one contiguous run each time instead of a strided walk.
        let unique = Arc::get_mut(&mut self.storage).is_some();
        if !(unique && self.dense_order().is_some()) {
            let nd = self.ndim();
            let order = other.dense_order().unwrap_or_else(|| (0..nd).collect());
            *self = self.copy_in_order(&order);
        }
        let strides = self.strides().to_vec();
        self.add_region(&strides, 0, other);
    }

    /// The dimension order (outermost first) in which this tensor's elements fill its whole
    /// storage without gaps, if they do: `Some([0, 1, ..])` for a contiguous tensor,
    /// `Some([1, 0])` for the transpose of one.
    fn dense_order(&self) -> Option<Vec<usize>> {
        let (dims, strides) = (self.dims(), self.strides());
        let total = with_elem!(self.dtype(), |T| self.storage_slice::<T>().len());
        if self.layout.offset != 0 || total != self.numel() {
            return None;
        }
        let mut order: Vec<usize> = (0..dims.len()).collect();
        order.sort_by_key(|&i| std::cmp::Reverse(strides[i])); // stable: ties keep their order
        let mut expected = 1;
        for &i in order.iter().rev() {
            if dims[i] != 1 && strides[i] != expected {
                return None;
            }
            expected *= dims[i];
        }
        Some(order)
    }

    /// A private copy whose buffer holds the elements in dimension order `order` (the
    /// same logical tensor, laid out as `self.permute(order).contiguous()` permuted back).
    fn copy_in_order(&self, order: &[usize]) -> Tensor {
        let permuted = self.permute(order);
        let copy =
            with_elem!(self.dtype(), |T| Tensor::from_parts(permuted.gather_vec::<T>(), permuted.dims()));
        let mut inverse = vec![0; order.len()];
        for (i, &d) in order.iter().enumerate() {
            inverse[d] = i;
        }
        copy.permute(&inverse)
    }

    /// Adds `src` in place into the region `start, start + step, ...` of dimension `dim`
    /// (the region `self.slice(dim, start, .., step)` of `src`'s shape): the adjoint of
    /// `slice`, without materialising a zero-padded copy.
    ///
    /// # Panics
    /// If `src` does not fit the region or dtypes differ.
    ///
    /// ```
    /// use sinew_tensor::Tensor;
    /// let mut acc = Tensor::zeros(&[5]);
    /// acc.slice_add_assign(0, 1, 2, &Tensor::ones(&[2]));
    /// assert_eq!(acc.to_vec::<f32>(), vec![0.0, 1.0, 0.0, 1.0, 0.0]);
    /// ```
    #[track_caller]
    pub fn slice_add_assign(&mut self, dim: isize, start: usize, step: usize, src: &Tensor) {
        let d = or_panic(shape::normalize_dim("slice_add_assign", dim, self.ndim()));
        let (dims, sdims) = (self.dims(), src.dims());
        let fits = step > 0
            && dims.len() == sdims.len()
            && dims
                .iter()
                .zip(sdims)
                .enumerate()
                .all(|(i, (&a, &b))| if i == d { b == 0 || start + (b - 1) * step < a } else { a == b });
        assert!(
            fits && self.dtype() == src.dtype(),
            "slice_add_assign: {} {:?} does not fit dimension {d} from {start} by {step} of {} {:?}",
            src.dtype(),
            sdims,
            self.dtype(),
            dims
        );
        let mut strides = shape::contiguous_strides(dims);
        let offset = start * strides[d];
        strides[d] *= step;
        with_elem!(self.dtype(), |T| {
            self.as_mut_slice::<T>(); // contiguous and unique (copy-on-write)
        });
        self.add_region(&strides, offset, src);
    }

    /// `storage[offset + Σ idx·strides] += src[idx]` over `src`'s shape, in place. The
    /// storage must be uniquely owned. Dimensions are visited in the order of decreasing
    /// destination stride, so a source laid out like the destination adds contiguously
    /// whatever its dimension order.
    fn add_region(&mut self, strides: &[usize], offset: usize, src: &Tensor) {
        let mut order: Vec<usize> = (0..src.ndim()).collect();
        order.sort_by_key(|&i| std::cmp::Reverse(strides[i]));
        let dims: Vec<usize> = order.iter().map(|&i| src.dims()[i]).collect();
        let strides: Vec<usize> = order.iter().map(|&i| strides[i]).collect();
        let src_strides: Vec<usize> = order.iter().map(|&i| src.strides()[i]).collect();
        let src_offset = src.layout.offset;
        with_elem!(self.dtype(), |T| {
            let from = src.storage_slice::<T>();
            let storage = Arc::get_mut(&mut self.storage).expect("add_region: storage must be unique");
            let dst = T::vec_mut(storage).expect("dtype checked").as_mut_slice();
            shape::walk(&dims, [&strides, &src_strides], [offset, src_offset], |[od, os], n, [sd, ss]| {
                if sd == 1 && ss == 1 {
                    for (a, &b) in dst[od..od + n].iter_mut().zip(&from[os..os + n]) {
                        *a += b;
                    }
                } else {
                    for i in 0..n {
                        dst[od + i * sd] += from[os + i * ss];
                    }
                }
            });
        })
    }

    /// Converts to another element type (a copy; `self` unchanged). Float to int truncates
    /// toward zero, as in PyTorch.
    ///
    /// ```
    /// use sinew_tensor::{DType, Tensor};
    /// let t = Tensor::from_vec(vec![1.7f32, -1.7], &[2])?;
    /// assert_eq!(t.to_dtype(DType::I64).to_vec::<i64>(), vec![1, -1]);
    /// # Ok::<(), sinew_tensor::TensorError>(())
    /// ```
    pub fn to_dtype(&self, dtype: DType) -> Tensor {
        if dtype == self.dtype() {
            return self.clone();
        }
        with_elem!(self.dtype(), |S| {
            let src = self.contiguous_slice::<S>();
            with_elem!(dtype, |D| {
                let data: Vec<D> = match D::DTYPE {
                    DType::I64 => src.iter().map(|&v| D::from_i64(v.to_i64())).collect(),
                    _ => src.iter().map(|&v| D::from_f64(v.to_f64())).collect(),
                };
                Tensor::from_parts(data, self.dims())
            })
        })
    }

    /// Returns a contiguous tensor with the same values: `self` (no copy) if already
    /// contiguous, else a row-major copy.
    ///
    /// ```
    /// use sinew_tensor::Tensor;
    /// let t = Tensor::arange(0.0, 6.0, 1.0).reshape(&[2, 3]).t();
    /// assert!(!t.is_contiguous());
    /// let c = t.contiguous();
    /// assert!(c.is_contiguous());
    /// assert_eq!(c.as_slice::<f32>(), Some(&[0.0, 3.0, 1.0, 4.0, 2.0, 5.0][..]));
    /// ```
    pub fn contiguous(&self) -> Tensor {
        if self.is_contiguous() {
            return self.clone();
        }
        with_elem!(self.dtype(), |T| Tensor::from_parts(self.gather_vec::<T>(), self.dims()))
    }

    /// Whether shapes match and every element differs by at most `atol + rtol·|other|`
    /// (`torch.allclose`; NaNs are never close).
    ///
    /// ```
    /// use sinew_tensor::Tensor;
    /// let a = Tensor::from_vec(vec![1.0f32, 2.0], &[2])?;
    /// let b = Tensor::from_vec(vec![1.0f32, 2.0 + 1e-6], &[2])?;
    /// assert!(a.allclose(&b, 1e-5, 1e-8));              // torch.allclose(a, b)
    /// assert!(!a.allclose(&b.add_scalar(0.1), 1e-5, 1e-8));
    /// assert!(!a.allclose(&Tensor::ones(&[1, 2]), 1.0, 1.0)); // shapes differ
    /// # Ok::<(), sinew_tensor::TensorError>(())
    /// ```
    pub fn allclose(&self, other: &Tensor, rtol: f64, atol: f64) -> bool {
        if self.dims() != other.dims() {
            return false;
        }
        let a = self.to_vec::<f64>();
        let b = other.to_vec::<f64>();
        a.iter().zip(&b).all(|(x, y)| (x - y).abs() <= atol + rtol * y.abs())
    }
}

// ---------------------------------------------------------------- formatting

impl fmt::Debug for Tensor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{self}")
    }
}

impl fmt::Display for Tensor {
    /// PyTorch-style: `tensor([[1., 2.], [3., 4.]], dtype=float64)`; large tensors show
    /// the first and last three entries of each dimension.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let summarize = self.numel() > 1000;
        let values = with_elem!(self.dtype(), |T| self
            .gather_vec::<T>()
            .iter()
            .map(|v| v.to_f64())
            .collect::<Vec<f64>>());
        let is_int = self.dtype() == DType::I64;
        let fmt_val = |v: f64| -> String {
            if is_int {
                format!("{v}")
            } else if v.fract() == 0.0 && v.abs() < 1e16 {
                format!("{v}.")
            } else {
                format!("{v:.4}")
            }
        };
        fn rec(
            out: &mut String,
            vals: &[f64],
            dims: &[usize],
            strides: &[usize],
            base: usize,
            depth: usize,
            summarize: bool,
            fmt_val: &dyn Fn(f64) -> String,
        ) {
            if dims.is_empty() {
                out.push_str(&fmt_val(vals[base]));
                return;
            }
            out.push('[');
            let n = dims[0];
            let mut i = 0;
            while i < n {
                if summarize && n > 6 && i == 3 {
                    out.push_str("...");
                    i = n - 3;
                    out.push_str(if dims.len() > 1 { ",\n" } else { ", " });
                    continue;
                }
                rec(
                    out,
                    vals,
                    &dims[1..],
                    &strides[1..],
                    base + i * strides[0],
                    depth + 1,
                    summarize,
                    fmt_val,
                );
                if i + 1 < n {
                    if dims.len() > 1 {
                        out.push_str(",\n");
                        out.push_str(&" ".repeat(depth + 8));
                    } else {
                        out.push_str(", ");
                    }
                }
                i += 1;
            }
            out.push(']');
        }
        let mut s = String::new();
        let strides = shape::contiguous_strides(self.dims());
        if self.numel() == 0 {
            s.push_str("[]");
        } else {
            rec(&mut s, &values, self.dims(), &strides, 0, 0, summarize, &fmt_val);
        }
        write!(f, "tensor({s}")?;
        if self.numel() == 0 || self.dims().len() > 1 && summarize {
            write!(f, ", size={:?}", self.dims())?;
        }
        if self.dtype() != DType::F32 {
            write!(f, ", dtype={}", self.dtype())?;
        }
        write!(f, ")")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn from_vec_checks_length() {
        let e = Tensor::from_vec(vec![1.0f32; 5], &[2, 3]).unwrap_err();
        assert!(e.to_string().contains("5 values cannot fill shape [2, 3]"), "{e}");
    }

    #[test]
    fn casts_round_trip() {
        let t = Tensor::from_vec(vec![1.5f64, -2.25, 3.0], &[3]).unwrap();
        assert_eq!(t.to_dtype(DType::F32).to_dtype(DType::F64).to_vec::<f64>(), vec![1.5, -2.25, 3.0]);
        assert_eq!(t.to_dtype(DType::I64).to_vec::<i64>(), vec![1, -2, 3]);
    }

    #[test]
    fn display_looks_like_pytorch() {
        let t = Tensor::from_vec(vec![1.0f64, 2.0, 3.0, 4.5], &[2, 2]).unwrap();
        assert_eq!(t.to_string(), "tensor([[1., 2.],\n        [3., 4.5000]], dtype=float64)");
        assert_eq!(Tensor::from_vec(vec![3i64], &[1]).unwrap().to_string(), "tensor([3], dtype=int64)");
    }

    #[test]
    fn linspace_ends_exactly() {
        let t = Tensor::linspace_dtype(-1.0, 0.7, 7, DType::F64).to_vec::<f64>();
        assert_eq!(t[0], -1.0);
        assert_eq!(t[6], 0.7);
    }

    #[test]
    fn as_mut_slice_copies_shared_storage() {
        let a = Tensor::arange(0.0, 6.0, 1.0).reshape(&[2, 3]);
        let mut t = a.t();
        t.as_mut_slice::<f32>()[1] = 10.0;
        assert_eq!(t.to_vec::<f32>(), vec![0.0, 10.0, 1.0, 4.0, 2.0, 5.0]);
        assert_eq!(a.to_vec::<f32>(), vec![0.0, 1.0, 2.0, 3.0, 4.0, 5.0]);
    }
}

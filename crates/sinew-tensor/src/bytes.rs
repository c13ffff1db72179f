//! The one tensor ⇄ bytes encoding: a tensor's elements as contiguous little-endian
//! bytes, in row-major order ([`Tensor::to_le_bytes`]), and back, checked
//! ([`Tensor::try_from_le_bytes`]). Checkpoints and safetensors files store tensors this
//! way; readers of formats whose element types sinew lacks (safetensors' `f16`, `bf16`,
//! `i32`) check their bytes with [`check_byte_len`] before converting.

use crate::error::{Result, TensorError};
use crate::shape;
use crate::{DType, Tensor};

/// Checks that `len` bytes are exactly the elements of `shape`, `elem_size` bytes each,
/// and returns the number of elements. Nothing is allocated, nothing overflows: the shape
/// is checked against [`MAX_EXTENT`](shape::MAX_EXTENT) first and the byte count is a
/// checked product, so any shape and length read from a file may be passed.
///
/// # Errors
/// [`TensorError::TooLarge`] if the shape exceeds the limit (or its byte count overflows
/// `usize`); [`TensorError::InvalidArgument`] if `len` is not its byte count, or
/// `elem_size` is 0.
///
/// ```
/// use sinew_tensor::{TensorError, check_byte_len};
/// assert_eq!(check_byte_len("read", 24, &[2, 3], 4)?, 6);
/// assert!(matches!(check_byte_len("read", 23, &[2, 3], 4), Err(TensorError::InvalidArgument { .. })));
/// assert!(matches!(check_byte_len("read", 0, &[1 << 62, 0], 4), Err(TensorError::TooLarge { .. })));
/// assert_eq!(check_byte_len("read", 0, &[0, 5], 2)?, 0);
/// # Ok::<(), TensorError>(())
/// ```
pub fn check_byte_len(op: &'static str, len: usize, shape: &[usize], elem_size: usize) -> Result<usize> {
    if elem_size == 0 {
        return Err(TensorError::InvalidArgument { op, msg: "element size 0".into() });
    }
    let numel = shape::try_numel(op, shape)?;
    let need =
        numel.checked_mul(elem_size).ok_or_else(|| TensorError::TooLarge { op, shape: shape.to_vec() })?;
    if need != len {
        return Err(TensorError::InvalidArgument {
            op,
            msg: format!(
                "{len} bytes cannot fill shape {shape:?} ({numel} elements of {elem_size} bytes: {need} bytes)"
            ),
        });
    }
    Ok(numel)
}

macro_rules! le_codec {
    ($t:ty, $n:literal, $to:ident, $from:ident) => {
        fn $to(values: &[$t]) -> Vec<u8> {
            let mut out = Vec::with_capacity(values.len() * $n);
            for v in values {
                out.extend_from_slice(&v.to_le_bytes());
            }
            out
        }

        /// The caller has checked that `bytes.len()` is a multiple of the element size.
        fn $from(bytes: &[u8]) -> Vec<$t> {
            let (chunks, rest) = bytes.as_chunks::<$n>();
            debug_assert!(rest.is_empty());
            chunks.iter().map(|c| <$t>::from_le_bytes(*c)).collect()
        }
    };
}
le_codec!(f32, 4, f32_to_le, f32_from_le);
le_codec!(f64, 8, f64_to_le, f64_from_le);
le_codec!(i64, 8, i64_to_le, i64_from_le);

impl Tensor {
    /// The elements as little-endian bytes, row-major (`numel · size_in_bytes` bytes):
    /// the layout of safetensors data and of PyTorch's
    /// `tensor.contiguous().numpy().tobytes()` on a little-endian machine. Views are read
    /// in their logical order, whatever their strides.
    ///
    /// ```
    /// use sinew_tensor::Tensor;
    /// let t = Tensor::from_vec(vec![1.0f32, -2.0], &[2])?;
    /// assert_eq!(t.to_le_bytes(), [0, 0, 0x80, 0x3f, 0, 0, 0, 0xc0]);
    /// let m = Tensor::from_vec(vec![1i64, 2, 3, 4], &[2, 2])?.t();   // a transposed view
    /// assert_eq!(m.to_le_bytes()[..8], 1i64.to_le_bytes());
    /// assert_eq!(m.to_le_bytes()[8..16], 3i64.to_le_bytes());
    /// # Ok::<(), sinew_tensor::TensorError>(())
    /// ```
    pub fn to_le_bytes(&self) -> Vec<u8> {
        match self.dtype() {
            DType::F32 => f32_to_le(&self.contiguous_slice::<f32>()),
            DType::F64 => f64_to_le(&self.contiguous_slice::<f64>()),
            DType::I64 => i64_to_le(&self.contiguous_slice::<i64>()),
        }
    }

    /// A tensor of `dtype` and `shape` from its elements' little-endian bytes, row-major
    /// (what [`to_le_bytes`](Tensor::to_le_bytes) returns). The bytes and the shape may
    /// come from anywhere: the shape is checked against
    /// [`MAX_EXTENT`](crate::shape::MAX_EXTENT) and its byte count (a checked product)
    /// against `bytes.len()` before anything is allocated, so a hostile shape is an
    /// error, never a panic or a huge allocation.
    ///
    /// # Errors
    /// As [`check_byte_len`]: [`TensorError::TooLarge`] for a shape past the limit,
    /// [`TensorError::InvalidArgument`] if the bytes are not exactly its elements.
    ///
    /// ```
    /// use sinew_tensor::{DType, Tensor};
    /// let t = Tensor::try_from_le_bytes(&[0, 0, 0x80, 0x3f, 0, 0, 0, 0xc0], DType::F32, &[2])?;
    /// assert_eq!(t.to_vec::<f32>(), vec![1.0, -2.0]);
    /// assert!(Tensor::try_from_le_bytes(&[0; 7], DType::F32, &[2]).is_err());          // a byte short
    /// assert!(Tensor::try_from_le_bytes(&[], DType::F64, &[1 << 40, 1 << 40]).is_err()); // 2^80 elements
    /// # Ok::<(), sinew_tensor::TensorError>(())
    /// ```
    pub fn try_from_le_bytes(bytes: &[u8], dtype: DType, shape: &[usize]) -> Result<Tensor> {
        const OP: &str = "from_le_bytes";
        check_byte_len(OP, bytes.len(), shape, dtype.size_in_bytes())?;
        Ok(match dtype {
            DType::F32 => Tensor::from_parts(f32_from_le(bytes), shape),
            DType::F64 => Tensor::from_parts(f64_from_le(bytes), shape),
            DType::I64 => Tensor::from_parts(i64_from_le(bytes), shape),
        })
    }
}

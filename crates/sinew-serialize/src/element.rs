//! The element types of the files sinew reads (safetensors and PyTorch's `torch.save`),
//! and their one decoding into sinew's three: `f16` and `bf16` become `f32`; the integer
//! types narrower than 64 bits and `bool` become `i64`. Both readers decode through
//! [`decode_le`], so a tensor read from a `.pt` file is bit for bit the tensor read from
//! its safetensors copy.

use sinew_tensor::{DType, Tensor, check_byte_len};

use crate::error::{Result, SerializeError};

/// An element type as a file stores it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum ElementType {
    F64,
    F32,
    F16,
    BF16,
    I64,
    I32,
    I16,
    I8,
    U8,
    Bool,
}

impl ElementType {
    /// Bytes per element.
    pub(crate) fn size(self) -> usize {
        match self {
            ElementType::F64 | ElementType::I64 => 8,
            ElementType::F32 | ElementType::I32 => 4,
            ElementType::F16 | ElementType::BF16 | ElementType::I16 => 2,
            ElementType::I8 | ElementType::U8 | ElementType::Bool => 1,
        }
    }
}

/// IEEE half precision to `f32`, exactly (every `f16` is an `f32`).
pub(crate) fn f16_to_f32(h: u16) -> f32 {
    let sign = ((h >> 15) as u32) << 31;
    let exp = ((h >> 10) & 0x1f) as u32;
    let frac = (h & 0x3ff) as u32;
    let bits = match exp {
        0 if frac == 0 => sign,
        0 => {
            // subnormal: normalise
            let mut e = 127 - 15 + 1;
            let mut f = frac;
            while f & 0x400 == 0 {
                f <<= 1;
                e -= 1;
            }
            sign | (e << 23) | ((f & 0x3ff) << 13)
        }
        0x1f => sign | 0x7f80_0000 | (frac << 13),
        _ => sign | ((exp + 127 - 15) << 23) | (frac << 13),
    };
    f32::from_bits(bits)
}

/// `bf16` to `f32`, exactly (a `bf16` is the top half of an `f32`).
fn bf16_to_f32(b: u16) -> f32 {
    f32::from_bits(u32::from(b) << 16)
}

/// Decodes `data`, the little-endian elements of `shape` in row-major order, into a
/// tensor of sinew's matching type. The byte count is checked against the shape first
/// (nothing is allocated for a shape the bytes cannot fill).
///
/// # Errors
/// [`SerializeError::ShapeMismatch`] naming `name` when the bytes do not fill the shape.
pub(crate) fn decode_le(name: &str, element: ElementType, shape: &[usize], data: &[u8]) -> Result<Tensor> {
    let mismatch =
        || SerializeError::ShapeMismatch { name: name.to_string(), shape: shape.to_vec(), bytes: data.len() };
    let native = match element {
        ElementType::F32 => Some(DType::F32),
        ElementType::F64 => Some(DType::F64),
        ElementType::I64 => Some(DType::I64),
        _ => None,
    };
    if let Some(dtype) = native {
        return Tensor::try_from_le_bytes(data, dtype, shape).map_err(|_| mismatch());
    }
    check_byte_len("decode", data.len(), shape, element.size()).map_err(|_| mismatch())?;
    fn map<const N: usize, T: sinew_tensor::StorageElement>(
        data: &[u8],
        shape: &[usize],
        f: impl Fn([u8; N]) -> T,
    ) -> Option<Tensor> {
        let (chunks, _) = data.as_chunks::<N>();
        Tensor::from_vec(chunks.iter().map(|&b| f(b)).collect::<Vec<_>>(), shape).ok()
    }
    let t = match element {
        ElementType::F16 => map(data, shape, |b: [u8; 2]| f16_to_f32(u16::from_le_bytes(b))),
        ElementType::BF16 => map(data, shape, |b: [u8; 2]| bf16_to_f32(u16::from_le_bytes(b))),
        ElementType::I32 => map(data, shape, |b: [u8; 4]| i64::from(i32::from_le_bytes(b))),
        ElementType::I16 => map(data, shape, |b: [u8; 2]| i64::from(i16::from_le_bytes(b))),
        ElementType::I8 => map(data, shape, |b: [u8; 1]| i64::from(b[0] as i8)),
        ElementType::U8 => map(data, shape, |b: [u8; 1]| i64::from(b[0])),
        // PyTorch stores a bool as one byte, 0 or 1; any other byte reads as true, as there
        ElementType::Bool => map(data, shape, |b: [u8; 1]| i64::from(b[0] != 0)),
        ElementType::F32 | ElementType::F64 | ElementType::I64 => unreachable!("decoded above"),
    };
    t.ok_or_else(mismatch)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn half_precision_decodes() {
        assert_eq!(f16_to_f32(0x3c00), 1.0);
        assert_eq!(f16_to_f32(0xc000), -2.0);
        assert_eq!(f16_to_f32(0x0001), 2f32.powi(-24));
        assert!(f16_to_f32(0x7e00).is_nan());
        assert_eq!(bf16_to_f32(0x3f80), 1.0);
    }

    #[test]
    fn narrow_integers_and_bools_widen_to_i64() {
        let t = decode_le("t", ElementType::I16, &[2], &[0xff, 0xff, 2, 0]).unwrap();
        assert_eq!(t.to_vec::<i64>(), vec![-1, 2]);
        let t = decode_le("t", ElementType::I8, &[2], &[0xff, 3]).unwrap();
        assert_eq!(t.to_vec::<i64>(), vec![-1, 3]);
        let t = decode_le("t", ElementType::U8, &[2], &[0xff, 3]).unwrap();
        assert_eq!(t.to_vec::<i64>(), vec![255, 3]);
        let t = decode_le("t", ElementType::Bool, &[3], &[0, 1, 2]).unwrap();
        assert_eq!(t.to_vec::<i64>(), vec![0, 1, 1]);
        assert!(matches!(
            decode_le("w", ElementType::I32, &[2], &[0; 7]),
            Err(SerializeError::ShapeMismatch { .. })
        ));
    }
}

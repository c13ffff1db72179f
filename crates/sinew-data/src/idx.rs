//! The IDX format of the MNIST files, plain or gzip-compressed.
//!
//! An IDX file is a 4-byte magic number (two zero bytes, an element-type code and the
//! number of dimensions), one big-endian `u32` per dimension, then the elements,
//! big-endian, row-major. Element types: `0x08` u8, `0x09` i8, `0x0B` i16, `0x0C` i32,
//! `0x0D` f32, `0x0E` f64. Gzip input is recognised by its magic bytes `1f 8b`.
//!
//! Sizes declared in the header are checked against the data before anything is
//! allocated from them: a header that claims more data than the file holds is an error,
//! not an allocation, and a gzip stream is never inflated past the declared size.

use std::io::Read;
use std::path::Path;

use flate2::read::MultiGzDecoder;
use sinew_tensor::{DType, StorageElement, Tensor};

use crate::error::{DataError, Result};

/// The element types of IDX files.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    U8,
    I8,
    I16,
    I32,
    F32,
    F64,
}

impl Kind {
    fn from_code(code: u8) -> Option<Kind> {
        Some(match code {
            0x08 => Kind::U8,
            0x09 => Kind::I8,
            0x0B => Kind::I16,
            0x0C => Kind::I32,
            0x0D => Kind::F32,
            0x0E => Kind::F64,
            _ => return None,
        })
    }

    fn size(self) -> usize {
        match self {
            Kind::U8 | Kind::I8 => 1,
            Kind::I16 => 2,
            Kind::I32 | Kind::F32 => 4,
            Kind::F64 => 8,
        }
    }

    /// The tensor type a file of this kind reads into by default.
    fn natural(self) -> DType {
        match self {
            Kind::F32 => DType::F32,
            Kind::F64 => DType::F64,
            _ => DType::I64,
        }
    }
}

struct Header {
    kind: Kind,
    dims: Vec<usize>,
    /// Bytes of element data the header declares.
    data_len: usize,
}

/// Reads exactly `buf.len()` bytes, naming `what` if the input ends first.
fn read_exact(r: &mut impl Read, buf: &mut [u8], what: &str) -> Result<()> {
    r.read_exact(buf).map_err(|e| match e.kind() {
        std::io::ErrorKind::UnexpectedEof => {
            DataError::idx(format!("truncated: the input ends inside the {what}"))
        }
        _ => DataError::idx(format!("cannot read the {what}: {e}")),
    })
}

fn read_header(r: &mut impl Read) -> Result<Header> {
    let mut magic = [0u8; 4];
    read_exact(r, &mut magic, "magic number")?;
    let kind = Kind::from_code(magic[2]);
    let (Some(kind), [0, 0, _, ndim]) = (kind, magic) else {
        return Err(DataError::idx(format!(
            "wrong magic number {:02x} {:02x} {:02x} {:02x} (expected 00 00, a type code 08/09/0b/0c/0d/0e, \
             the dimension count)",
            magic[0], magic[1], magic[2], magic[3]
        )));
    };
    if ndim == 0 {
        return Err(DataError::idx("wrong dimension count: the header declares 0 dimensions"));
    }
    let mut raw = vec![0u8; 4 * ndim as usize]; // at most 1020 bytes
    read_exact(r, &mut raw, "dimension sizes")?;
    let dims: Vec<usize> =
        raw.chunks_exact(4).map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]) as usize).collect();
    let data_len = dims
        .iter()
        .try_fold(kind.size(), |acc, &d| acc.checked_mul(d))
        .ok_or_else(|| DataError::idx(format!("declared dimensions {dims:?} are too large to address")))?;
    // a zero dimension makes the data empty, but no tensor may have more than 2^60
    // elements counting every dimension as at least 1
    if sinew_tensor::shape::checked_numel(&dims).is_none() {
        return Err(DataError::idx(format!("declared dimensions {dims:?} are too large for a tensor")));
    }
    Ok(Header { kind, dims, data_len })
}

fn too_short(h: &Header, have: usize) -> DataError {
    DataError::idx(format!(
        "declared dimensions {:?} need {} bytes of data, but the input holds only {have}",
        h.dims, h.data_len
    ))
}

fn too_long(h: &Header) -> DataError {
    DataError::idx(format!(
        "declared dimensions {:?} need {} bytes of data, but the input holds more",
        h.dims, h.data_len
    ))
}

/// Reads an IDX file, plain or gzip-compressed. See [`read_idx_bytes`].
///
/// # Errors
/// [`DataError::Io`] if the file cannot be read, else as [`read_idx_bytes`].
///
/// ```
/// use sinew_data::{DataError, read_idx};
/// assert!(matches!(read_idx("/no/such/train-images-idx3-ubyte", None), Err(DataError::Io { .. })));
/// ```
pub fn read_idx(path: impl AsRef<Path>, dtype: Option<DType>) -> Result<Tensor> {
    let path = path.as_ref();
    let bytes = std::fs::read(path).map_err(|source| DataError::Io { path: path.to_path_buf(), source })?;
    read_idx_bytes(&bytes, dtype)
}

/// Decodes IDX data, plain or gzip-compressed, into a tensor of the declared shape.
///
/// `dtype` picks the tensor's element type; `None` reads integer types (`u8`, `i8`,
/// `i16`, `i32`) as `i64` and float types as themselves. MNIST images are best read as
/// `Some(DType::F32)` (a quarter of the memory of `i64`); labels as `None`.
///
/// # Errors
/// [`DataError::Idx`] for a wrong magic number or type code, zero dimensions, a header or
/// data shorter or longer than the header declares, or a corrupt gzip stream.
///
/// ```
/// use sinew_data::read_idx_bytes;
/// use sinew_tensor::DType;
/// // a 2×3 array of u8: magic 00 00 08 02, dimensions 2 and 3, then six bytes
/// let mut file = vec![0, 0, 0x08, 2, 0, 0, 0, 2, 0, 0, 0, 3];
/// file.extend([0u8, 1, 2, 253, 254, 255]);
/// let t = read_idx_bytes(&file, Some(DType::F32))?;
/// assert_eq!(t.dims(), &[2, 3]);
/// assert_eq!(t.to_vec::<f32>(), vec![0.0, 1.0, 2.0, 253.0, 254.0, 255.0]);
/// assert_eq!(read_idx_bytes(&file, None)?.dtype(), DType::I64);
/// assert!(read_idx_bytes(&file[..15], None).is_err()); // truncated
/// # Ok::<(), sinew_data::DataError>(())
/// ```
pub fn read_idx_bytes(bytes: &[u8], dtype: Option<DType>) -> Result<Tensor> {
    if bytes.starts_with(&[0x1f, 0x8b]) {
        return read_gzip(bytes, dtype);
    }
    let mut r = bytes;
    let header = read_header(&mut r)?;
    // `r` is now the data: compare its real length with the declared one before decoding
    if r.len() < header.data_len {
        return Err(too_short(&header, r.len()));
    }
    if r.len() > header.data_len {
        return Err(too_long(&header));
    }
    Ok(decode(&header, r, dtype))
}

fn read_gzip(bytes: &[u8], dtype: Option<DType>) -> Result<Tensor> {
    let mut gz = MultiGzDecoder::new(bytes);
    let header = read_header(&mut gz)?;
    // inflate at most the declared size (+1 byte to detect excess); the buffer grows with
    // the data actually inflated, never to a declared size up front
    let mut data = Vec::new();
    let limit = header.data_len as u64;
    (&mut gz)
        .take(limit)
        .read_to_end(&mut data)
        .map_err(|e| DataError::idx(format!("corrupt gzip stream: {e}")))?;
    if data.len() < header.data_len {
        return Err(too_short(&header, data.len()));
    }
    let mut extra = [0u8; 1];
    match gz.read(&mut extra) {
        Ok(0) => {}
        Ok(_) => return Err(too_long(&header)),
        Err(e) => return Err(DataError::idx(format!("corrupt gzip stream: {e}"))),
    }
    Ok(decode(&header, &data, dtype))
}

/// Decodes `data` (exactly `header.data_len` bytes) into a tensor.
fn decode(header: &Header, data: &[u8], dtype: Option<DType>) -> Tensor {
    match dtype.unwrap_or(header.kind.natural()) {
        DType::F32 => decode_as::<f32>(header, data),
        DType::F64 => decode_as::<f64>(header, data),
        DType::I64 => decode_as::<i64>(header, data),
    }
}

fn decode_as<T: StorageElement>(header: &Header, data: &[u8]) -> Tensor {
    let values: Vec<T> = match header.kind {
        Kind::U8 => data.iter().map(|&b| T::from_i64(b as i64)).collect(),
        Kind::I8 => data.iter().map(|&b| T::from_i64(b as i8 as i64)).collect(),
        Kind::I16 => {
            data.chunks_exact(2).map(|c| T::from_i64(i16::from_be_bytes([c[0], c[1]]) as i64)).collect()
        }
        Kind::I32 => data
            .chunks_exact(4)
            .map(|c| T::from_i64(i32::from_be_bytes([c[0], c[1], c[2], c[3]]) as i64))
            .collect(),
        Kind::F32 => data
            .chunks_exact(4)
            .map(|c| T::from_f64(f32::from_be_bytes([c[0], c[1], c[2], c[3]]) as f64))
            .collect(),
        Kind::F64 => data
            .chunks_exact(8)
            .map(|c| T::from_f64(f64::from_be_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]])))
            .collect(),
    };
    Tensor::from_vec(values, &header.dims).expect("sizes checked against the header")
}

#[cfg(test)]
mod tests {
    use super::*;
    use flate2::{Compression, write::GzEncoder};
    use std::io::Write;

    fn gzip(bytes: &[u8]) -> Vec<u8> {
        let mut e = GzEncoder::new(Vec::new(), Compression::default());
        e.write_all(bytes).unwrap();
        e.finish().unwrap()
    }

    /// A hand-written IDX file: 2×2×3 big-endian i16 values, some negative.
    fn small_i16() -> (Vec<u8>, Vec<i64>) {
        let mut f = vec![0, 0, 0x0B, 3, 0, 0, 0, 2, 0, 0, 0, 2, 0, 0, 0, 3];
        let values: Vec<i64> = vec![0, 1, -1, 300, -300, 32767, -32768, 7, 8, 9, 10, 11];
        for &v in &values {
            f.extend((v as i16).to_be_bytes());
        }
        (f, values)
    }

    fn idx_err(bytes: &[u8]) -> String {
        match read_idx_bytes(bytes, None) {
            Err(DataError::Idx(msg)) => msg,
            other => panic!("expected an IDX error, got {other:?}"),
        }
    }

    #[test]
    fn round_trips_plain_and_gzip() {
        let (file, values) = small_i16();
        for bytes in [file.clone(), gzip(&file)] {
            let t = read_idx_bytes(&bytes, None).unwrap();
            assert_eq!(t.dims(), &[2, 2, 3]);
            assert_eq!(t.dtype(), DType::I64);
            assert_eq!(t.to_vec::<i64>(), values);
            let f = read_idx_bytes(&bytes, Some(DType::F32)).unwrap();
            assert_eq!(f.to_vec::<f32>(), values.iter().map(|&v| v as f32).collect::<Vec<_>>());
        }
        // every element type
        let cases: Vec<(u8, Vec<u8>, Vec<f64>)> = vec![
            (0x08, vec![0, 255], vec![0.0, 255.0]),
            (0x09, vec![0x80, 0x7f], vec![-128.0, 127.0]),
            (0x0C, [(-5i32).to_be_bytes(), 70000i32.to_be_bytes()].concat(), vec![-5.0, 70000.0]),
            (0x0D, [1.5f32.to_be_bytes(), (-0.25f32).to_be_bytes()].concat(), vec![1.5, -0.25]),
            (0x0E, [1e300f64.to_be_bytes(), 0.1f64.to_be_bytes()].concat(), vec![1e300, 0.1]),
        ];
        for (code, data, want) in cases {
            let mut f = vec![0, 0, code, 1, 0, 0, 0, 2];
            f.extend(&data);
            let t = read_idx_bytes(&gzip(&f), Some(DType::F64)).unwrap();
            assert_eq!(t.to_vec::<f64>(), want, "type {code:#x}");
            assert_eq!(read_idx_bytes(&f, None).unwrap().dtype(), Kind::from_code(code).unwrap().natural());
        }
        // zero-sized dimensions are fine
        assert_eq!(read_idx_bytes(&[0, 0, 8, 2, 0, 0, 0, 0, 0, 0, 0, 9], None).unwrap().dims(), &[0, 9]);
    }

    #[test]
    fn corrupt_headers_are_errors() {
        let (file, _) = small_i16();
        assert!(idx_err(&[1, 0, 8, 1, 0, 0, 0, 0]).starts_with("wrong magic number 01 00 08 01"));
        assert!(idx_err(&[0, 0, 7, 1, 0, 0, 0, 0]).starts_with("wrong magic number"));
        assert!(idx_err(&[0, 0, 8, 0]).starts_with("wrong dimension count"));
        assert_eq!(idx_err(&[0, 0, 8]), "truncated: the input ends inside the magic number");
        assert_eq!(
            idx_err(&[0, 0, 8, 2, 0, 0, 0, 1, 0]),
            "truncated: the input ends inside the dimension sizes"
        );
        assert!(
            idx_err(&file[..file.len() - 1]).contains("need 24 bytes of data, but the input holds only 23")
        );
        assert!(idx_err(&[file.clone(), vec![0]].concat()).contains("holds more"));
        assert!(idx_err(&gzip(&file[..file.len() - 1])).contains("holds only 23"));
        assert!(idx_err(&gzip(&[file.clone(), vec![0]].concat())).contains("holds more"));
        // absurd sizes: 4 × 2^32-1 elements of 8 bytes, in a tiny file; and a product
        // that overflows usize
        let huge = [0, 0, 0x0E, 2, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 4];
        assert!(idx_err(&huge).contains("but the input holds only 0"));
        assert!(idx_err(&gzip(&huge)).contains("but the input holds only 0"));
        let overflow = [&[0u8, 0, 0x0E, 3][..], &[0xff; 12]].concat();
        assert!(idx_err(&overflow).contains("too large"));
        // no data (a zero dimension), but an extent past 2^60: once a panic (found by the
        // read_idx_bytes fuzz target)
        let empty_huge = [&[0u8, 0, 0x0E, 3, 0, 0, 0, 0][..], &[0xff; 8]].concat();
        assert!(idx_err(&empty_huge).contains("too large for a tensor"), "{}", idx_err(&empty_huge));
        assert!(idx_err(&gzip(&empty_huge)).contains("too large for a tensor"));
        // a gzip stream whose body is damaged
        let mut gz = gzip(&file);
        let n = gz.len();
        gz[n / 2] ^= 0xff;
        gz[n - 6] ^= 0xff; // the CRC too
        let _ = idx_err(&gz);
        assert!(!idx_err(&gz[..12]).is_empty());
    }

    #[test]
    fn mutations_never_panic() {
        let (file, _) = small_i16();
        let gz = gzip(&file);
        for base in [&file, &gz] {
            for cut in 0..base.len() {
                let _ = read_idx_bytes(&base[..cut], None);
            }
            for i in 0..base.len() {
                for b in [0x00, 0x01, 0x7f, 0x80, 0xff] {
                    let mut m = base.clone();
                    m[i] = b;
                    let _ = read_idx_bytes(&m, Some(DType::F32));
                    m[i] ^= 0x55;
                    let _ = read_idx_bytes(&m, None);
                }
            }
        }
    }
}

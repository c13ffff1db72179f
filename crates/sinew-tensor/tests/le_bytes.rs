//! `Tensor::to_le_bytes` / `Tensor::try_from_le_bytes`, the one tensor ⇄ bytes encoding
//! (checkpoints and safetensors use it): bit-exact round trips per dtype, contiguous and
//! strided inputs, empty and scalar tensors, and hostile byte counts and shapes, which
//! must be errors (never panics, never large allocations).

use sinew_tensor::shape::MAX_EXTENT;
use sinew_tensor::{DType, Generator, Tensor, TensorError, check_byte_len};

fn bits(t: &Tensor) -> Vec<u64> {
    match t.dtype() {
        DType::F32 => t.to_vec::<f32>().into_iter().map(|v| u64::from(v.to_bits())).collect(),
        DType::F64 => t.to_vec::<f64>().into_iter().map(f64::to_bits).collect(),
        DType::I64 => t.to_vec::<i64>().into_iter().map(|v| v as u64).collect(),
    }
}

fn round_trip(t: &Tensor) -> Tensor {
    let bytes = t.to_le_bytes();
    assert_eq!(bytes.len(), t.numel() * t.dtype().size_in_bytes());
    let back = Tensor::try_from_le_bytes(&bytes, t.dtype(), t.dims()).unwrap();
    assert_eq!(back.dtype(), t.dtype());
    assert_eq!(back.dims(), t.dims());
    assert_eq!(bits(&back), bits(t), "values changed through the bytes");
    back
}

#[test]
fn round_trips_every_dtype_bit_for_bit() {
    let f32s = [0.0f32, -0.0, 1.5, f32::MIN_POSITIVE, f32::MAX, f32::INFINITY, f32::NEG_INFINITY, f32::NAN];
    let f64s = [0.0f64, -0.0, 0.1 + 0.2, 1e-310, f64::MAX, f64::INFINITY, -f64::NAN, 5e-324];
    let i64s = [0i64, -1, 1, i64::MIN, i64::MAX, 1 << 40, -(1 << 53) - 1, 7];
    round_trip(&Tensor::from_vec(f32s.to_vec(), &[2, 4]).unwrap());
    round_trip(&Tensor::from_vec(f64s.to_vec(), &[4, 2]).unwrap());
    round_trip(&Tensor::from_vec(i64s.to_vec(), &[2, 2, 2]).unwrap());
    let mut g = Generator::new(7);
    for dtype in [DType::F32, DType::F64] {
        round_trip(&Tensor::randn_with(&[33, 17], dtype, &mut g));
    }
}

#[test]
fn bytes_are_little_endian_row_major() {
    let t = Tensor::from_vec(vec![1.0f64, 2.0], &[2]).unwrap();
    let want: Vec<u8> = [1.0f64.to_le_bytes(), 2.0f64.to_le_bytes()].concat();
    assert_eq!(t.to_le_bytes(), want);
    let i = Tensor::from_vec(vec![0x0102_0304_0506_0708i64], &[1]).unwrap();
    assert_eq!(i.to_le_bytes(), [8, 7, 6, 5, 4, 3, 2, 1]);
}

#[test]
fn non_contiguous_inputs_are_written_in_logical_order() {
    let base = Tensor::from_vec((0..24).map(|v| v as f32).collect(), &[2, 3, 4]).unwrap();
    let views = [
        base.permute(&[2, 0, 1]),
        base.transpose(0, 2),
        base.narrow(2, 1, 2),
        base.select(1, 1),
        Tensor::from_vec(vec![1.0f32, 2.0], &[2, 1]).unwrap().expand(&[2, 3]),
    ];
    for v in &views {
        let back = round_trip(v);
        assert_eq!(back.to_vec::<f32>(), v.to_vec::<f32>());
        // the same bytes as its contiguous copy
        assert_eq!(v.to_le_bytes(), v.contiguous().to_le_bytes());
    }
    let i = Tensor::from_vec((0..6).collect::<Vec<i64>>(), &[2, 3]).unwrap().t();
    assert_eq!(round_trip(&i).to_vec::<i64>(), vec![0, 3, 1, 4, 2, 5]);
}

#[test]
fn empty_and_scalar_tensors() {
    for dtype in [DType::F32, DType::F64, DType::I64] {
        for shape in [&[0][..], &[3, 0, 2], &[0, 1 << 40]] {
            let t = Tensor::try_from_le_bytes(&[], dtype, shape).unwrap();
            assert_eq!((t.dims(), t.numel(), t.dtype()), (shape, 0, dtype));
            assert!(t.to_le_bytes().is_empty());
        }
        let one = vec![0x11u8; dtype.size_in_bytes()];
        let s = Tensor::try_from_le_bytes(&one, dtype, &[]).unwrap();
        assert_eq!((s.dims(), s.to_le_bytes()), (&[][..], one.clone()));
        // a scalar needs its one element
        assert!(Tensor::try_from_le_bytes(&[], dtype, &[]).is_err());
    }
}

#[test]
fn wrong_byte_counts_are_errors() {
    for dtype in [DType::F32, DType::F64, DType::I64] {
        let size = dtype.size_in_bytes();
        for len in [0, 1, size - 1, size + 1, 6 * size - 1, 6 * size + 1, 12 * size] {
            let err = Tensor::try_from_le_bytes(&vec![0; len], dtype, &[2, 3]).unwrap_err();
            assert!(matches!(err, TensorError::InvalidArgument { op: "from_le_bytes", .. }), "{err}");
            assert!(err.to_string().contains(&format!("{len} bytes")), "{err}");
        }
        assert!(Tensor::try_from_le_bytes(&vec![0; 6 * size], dtype, &[2, 3]).is_ok());
    }
}

#[test]
fn huge_shapes_are_errors_before_any_allocation() {
    let eight = [0u8; 8];
    let huge: [&[usize]; 7] = [
        &[MAX_EXTENT + 1],
        &[1 << 31, 1 << 31],
        &[usize::MAX],
        &[usize::MAX, 2],
        &[usize::MAX, usize::MAX, 0],
        &[1 << 62, 0],
        &[MAX_EXTENT, 16],
    ];
    for dtype in [DType::F32, DType::F64, DType::I64] {
        for shape in huge {
            let err = Tensor::try_from_le_bytes(&eight, dtype, shape).unwrap_err();
            assert!(matches!(err, TensorError::TooLarge { op: "from_le_bytes", .. }), "{shape:?}: {err}");
            assert!(Tensor::try_from_le_bytes(&[], dtype, shape).is_err());
        }
        // the largest legal shape: its byte count is checked, then refused (8 bytes given)
        let err = Tensor::try_from_le_bytes(&eight, dtype, &[MAX_EXTENT]).unwrap_err();
        assert!(matches!(err, TensorError::InvalidArgument { .. }), "{err}");
    }
}

#[test]
fn check_byte_len_is_the_shared_check() {
    assert_eq!(check_byte_len("t", 12, &[3], 4), Ok(3));
    assert_eq!(check_byte_len("t", 2, &[], 2), Ok(1));
    assert!(check_byte_len("t", 0, &[], 2).is_err());
    assert!(check_byte_len("t", 0, &[0], 0).is_err());
    assert!(matches!(check_byte_len("t", 0, &[MAX_EXTENT, 2], 1), Err(TensorError::TooLarge { .. })));
    // 2^60 elements of 2^4 bytes overflows 64 bits
    assert!(matches!(check_byte_len("t", 0, &[MAX_EXTENT], 16), Err(TensorError::TooLarge { .. })));
    assert!(matches!(check_byte_len("t", 0, &[MAX_EXTENT], usize::MAX), Err(TensorError::TooLarge { .. })));
}

//! Matrix products with `torch.matmul` semantics, on faer's GEMM.
//!
//! Operands are handed to faer as strided views of their storage, so a transposed or
//! otherwise strided operand (`a.matmul(&b.t())`) costs no copy. Batched products
//! broadcast their batch dimensions; many small products run in parallel over the batch
//! with a sequential GEMM each, large ones run one parallel GEMM at a time.

use rayon::prelude::*;

use crate::dtype::{DType, Float};
use crate::error::{Result, TensorError, or_panic};
use crate::kernels::gemm::{self, Strided};
use crate::parallel;
use crate::shape;
use crate::tensor::{StorageElement, Tensor, with_float};

impl Tensor {
    /// [`Tensor::matmul`] that returns an error instead of panicking.
    ///
    /// # Errors
    /// [`TensorError::ShapeMismatch`] if the inner dimensions differ or the batch
    /// dimensions do not broadcast; [`TensorError::UnsupportedDType`] for `i64` operands or
    /// 0-d operands; [`TensorError::InvalidArgument`] for an `f32` operand with an `f64`
    /// one; [`TensorError::TooLarge`] if the product's shape would exceed
    /// [`shape::MAX_EXTENT`].
    ///
    /// ```
    /// use sinew_tensor::{DType, Tensor};
    /// let a = Tensor::ones(&[2, 3]);
    /// assert_eq!(a.try_matmul(&Tensor::ones(&[3, 4]))?.dims(), &[2, 4]);
    /// assert!(a.try_matmul(&Tensor::ones(&[2, 4])).is_err());   // inner sizes 3 and 2
    /// assert!(a.try_matmul(&Tensor::ones_dtype(&[3, 4], DType::F64)).is_err());   // f32 with f64
    /// # Ok::<(), sinew_tensor::TensorError>(())
    /// ```
    pub fn try_matmul(&self, other: &Tensor) -> Result<Tensor> {
        let (a, b) = (self, other);
        if a.ndim() == 0 || b.ndim() == 0 {
            return Err(TensorError::ShapeMismatch {
                op: "matmul",
                lhs: a.dims().to_vec(),
                rhs: b.dims().to_vec(),
                detail: ": both operands need at least one dimension".into(),
            });
        }
        // an f64 input to an f32 layer is refused here, as in binary ops
        crate::binary::check_float_mix("matmul", a, b)?;
        let dt = a.dtype().promote(b.dtype());
        if dt == DType::I64 {
            return Err(TensorError::UnsupportedDType { op: "matmul", dtype: dt, detail: String::new() });
        }
        let (a, b) = (a.to_dtype(dt), b.to_dtype(dt));
        // 1-D operands become matrices and lose that dimension again afterwards.
        let a2 = if a.ndim() == 1 { a.unsqueeze(0) } else { a.clone() };
        let b2 = if b.ndim() == 1 { b.unsqueeze(-1) } else { b.clone() };
        let (m, k) = (a2.dims()[a2.ndim() - 2], a2.dims()[a2.ndim() - 1]);
        let (k2, n) = (b2.dims()[b2.ndim() - 2], b2.dims()[b2.ndim() - 1]);
        if k != k2 {
            return Err(TensorError::ShapeMismatch {
                op: "matmul",
                lhs: self.dims().to_vec(),
                rhs: other.dims().to_vec(),
                detail: format!(": inner dimensions {k} and {k2} differ"),
            });
        }
        let batch_a = &a2.dims()[..a2.ndim() - 2];
        let batch_b = &b2.dims()[..b2.ndim() - 2];
        let batch =
            shape::broadcast_shapes("matmul", batch_a, batch_b).map_err(|_| TensorError::ShapeMismatch {
                op: "matmul",
                lhs: self.dims().to_vec(),
                rhs: other.dims().to_vec(),
                detail: ": batch dimensions do not broadcast".into(),
            })?;
        let mut out_extent = batch.clone();
        out_extent.extend([m, n]);
        shape::try_numel("matmul", &out_extent)?;
        let out = with_float!(dt, "matmul", |T| batched::<T>(&a2, &b2, &batch, m, k, n));
        let mut shape = batch.clone();
        if self.ndim() > 1 {
            shape.push(m);
        }
        if other.ndim() > 1 {
            shape.push(n);
        }
        Ok(out.reshape(&shape))
    }

    /// Matrix product with `torch.matmul` semantics: 1-D·1-D is a dot product, 2-D·2-D a
    /// matrix product, a 1-D operand is treated as a row (left) or column (right) vector,
    /// and leading batch dimensions broadcast.
    ///
    /// # Panics
    /// If the inner dimensions differ, batch dimensions do not broadcast, or an operand is
    /// `i64` or 0-d; the message names both shapes.
    ///
    /// ```
    /// use sinew_tensor::Tensor;
    /// let a = Tensor::ones(&[5, 2, 3]);          // a batch of 5
    /// let b = Tensor::ones(&[3, 4]);             // broadcast over the batch
    /// assert_eq!(a.matmul(&b).dims(), &[5, 2, 4]);
    /// let v = Tensor::ones(&[3]);
    /// assert_eq!(a.matmul(&v).dims(), &[5, 2]);
    /// ```
    #[track_caller]
    pub fn matmul(&self, other: &Tensor) -> Tensor {
        or_panic(self.try_matmul(other))
    }
}

/// The strided matrix view of the last two dimensions, and the batch strides.
fn matrix_view(t: &Tensor, batch: &[usize]) -> (Strided, Vec<usize>) {
    let nd = t.ndim();
    let s = t.strides();
    let view = Strided {
        rows: t.dims()[nd - 2],
        cols: t.dims()[nd - 1],
        row_stride: s[nd - 2] as isize,
        col_stride: s[nd - 1] as isize,
    };
    let batch_strides = shape::broadcast_strides(&t.dims()[..nd - 2], &s[..nd - 2], batch);
    (view, batch_strides)
}

/// `a`'s batch of `(m, k)` matrices as one `(batch·m, k)` matrix, when every batch
/// dimension steps over whole blocks of rows (`stride = rows below · row stride`), as in a
/// contiguous `(B, T, k)` activation. `None` for other layouts, or when `a` itself is
/// broadcast over the batch.
fn folded_rows(a: &Tensor, batch: &[usize], view: Strided) -> Option<Strided> {
    let nd = a.ndim();
    if nd - 2 != batch.len() || a.dims()[..nd - 2] != *batch {
        return None;
    }
    let (dims, strides) = (a.dims(), a.strides());
    let mut rows = view.rows;
    for d in (0..nd - 2).rev() {
        if dims[d] > 1 && strides[d] as isize != rows as isize * view.row_stride {
            return None;
        }
        rows *= dims[d];
    }
    Some(Strided { rows, ..view })
}

fn batched<T: Float + StorageElement>(
    a: &Tensor,
    b: &Tensor,
    batch: &[usize],
    m: usize,
    k: usize,
    n: usize,
) -> Tensor {
    let (av, abs) = matrix_view(a, batch);
    let (bv, bbs) = matrix_view(b, batch);
    let (ad, bd) = (a.storage_slice::<T>(), b.storage_slice::<T>());
    let count = shape::numel(batch);
    if count > 1
        && bbs.iter().all(|&s| s == 0)
        && m * n > 0
        && let Some(rows) = folded_rows(a, batch, av)
    {
        // one matrix broadcast over a batch whose rows lie at one stride (a linear
        // layer on `(B, T, in)`): a single `(B·m, k)` by `(k, n)` product
        let mut out = if k > 0 {
            crate::buffer::scratch::<T>(count * m * n)
        } else {
            crate::buffer::filled(count * m * n, T::ZERO)
        };
        let par = gemm::split_for(rows.rows, n, k);
        let (oa, ob) = (a.layout().offset, b.layout().offset);
        gemm::gemm(&mut out, Strided::row_major(rows.rows, n), &ad[oa..], rows, &bd[ob..], bv, false, par);
        return Tensor::from_parts(out, &[count, m, n]);
    }
    let bstrides = shape::contiguous_strides(batch);
    let offsets = |i: usize| {
        let (mut oa, mut ob) = (a.layout().offset, b.layout().offset);
        for d in 0..batch.len() {
            let c = (i / bstrides[d]) % batch[d];
            oa += c * abs[d];
            ob += c * bbs[d];
        }
        (oa, ob)
    };
    // GEMM replaces every element (when k > 0: an empty sum must still write zeros)
    let mut out = if k > 0 {
        crate::buffer::scratch::<T>(count * m * n)
    } else {
        crate::buffer::filled(count * m * n, T::ZERO)
    };
    let cv = Strided::row_major(m, n);
    let one = |i: usize, c: &mut [T], par| {
        let (oa, ob) = offsets(i);
        gemm::gemm(c, cv, &ad[oa..], av, &bd[ob..], bv, false, par);
    };
    let work = m * n * k;
    if count > 1 && m * n > 0 && work < gemm::PARALLEL_GEMM_WORK && parallel::worth_parallel(count * work) {
        parallel::install(|| {
            out.par_chunks_mut(m * n).enumerate().for_each(|(i, c)| one(i, c, faer::Par::Seq));
        });
    } else if m * n > 0 {
        let par = gemm::split_for(m, n, k);
        for (i, c) in out.chunks_mut(m * n).enumerate() {
            one(i, c, par);
        }
    }
    Tensor::from_parts(out, &[count, m, n])
}

#[cfg(test)]
mod tests {
    use crate::{DType, Tensor};
    use proptest::prelude::*;

    fn naive(a: &[f64], b: &[f64], m: usize, k: usize, n: usize) -> Vec<f64> {
        let mut c = vec![0.0; m * n];
        for i in 0..m {
            for j in 0..n {
                for p in 0..k {
                    c[i * n + j] += a[i * k + p] * b[p * n + j];
                }
            }
        }
        c
    }

    fn values(shape: &[usize], seed: f64) -> Tensor {
        let n: usize = shape.iter().product();
        Tensor::arange_dtype(0.0, n as f64, 1.0, DType::F64).mul_scalar(seed).sin().reshape(shape)
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        #[test]
        fn matmul_agrees_with_naive_loops(m in 1usize..9, k in 0usize..9, n in 1usize..9, ta in any::<bool>(), tb in any::<bool>()) {
            let a = values(&[m, k], 0.37);
            let b = values(&[k, n], 0.91);
            // the same matrices as transposed views of transposed copies: strided operands
            let a_in = if ta { a.t().contiguous().t() } else { a.clone() };
            let b_in = if tb { b.t().contiguous().t() } else { b.clone() };
            let got = a_in.matmul(&b_in).to_vec::<f64>();
            let want = naive(&a.to_vec::<f64>(), &b.to_vec::<f64>(), m, k, n);
            prop_assert!(got.iter().zip(&want).all(|(x, y)| (x - y).abs() < 1e-12));
        }

        #[test]
        fn batched_broadcast_agrees_with_per_batch(b1 in 1usize..4, b2 in 1usize..4, m in 1usize..5, k in 1usize..5, n in 1usize..5) {
            let a = values(&[b1, 1, m, k], 0.3);
            let b = values(&[b2, k, n], 0.7);
            let c = a.matmul(&b);
            prop_assert_eq!(c.dims(), &[b1, b2, m, n]);
            for i in 0..b1 {
                for j in 0..b2 {
                    let want = a.select(0, i).select(0, 0).matmul(&b.select(0, j));
                    prop_assert!(c.select(0, i).select(0, j).allclose(&want, 1e-12, 1e-12));
                }
            }
        }
    }

    #[test]
    fn folded_batches_match_per_item_products() {
        // a contiguous batch folds into one product; a permuted one (batch stride not a
        // multiple of the rows) and a column-major one take the per-item path
        let w = values(&[5, 3], 0.7);
        for a in [
            values(&[2, 4, 5], 0.3),
            values(&[4, 2, 5], 0.3).transpose(0, 1),
            values(&[2, 5, 4], 0.3).transpose(1, 2),
            values(&[2, 3, 1, 5], 0.3),
        ] {
            let c = a.matmul(&w);
            let flat = a.reshape(&[a.numel() / 5, 5]);
            let want = naive(&flat.to_vec::<f64>(), &w.to_vec::<f64>(), a.numel() / 5, 5, 3);
            assert!(
                c.to_vec::<f64>().iter().zip(&want).all(|(x, y)| (x - y).abs() < 1e-12),
                "{:?}",
                a.dims()
            );
        }
    }

    #[test]
    fn vector_forms() {
        let v = Tensor::from_vec(vec![1.0f64, 2.0, 3.0], &[3]).unwrap();
        assert_eq!(v.matmul(&v).dims(), &[] as &[usize]);
        assert_eq!(v.matmul(&v).item(), 14.0);
        let m = values(&[3, 2], 0.5);
        assert_eq!(v.matmul(&m).dims(), &[2]);
        assert_eq!(m.t().matmul(&v).dims(), &[2]);
    }

    #[test]
    fn f32_matches_f64() {
        let a = values(&[33, 17], 0.1);
        let b = values(&[17, 29], 0.2);
        let want = a.matmul(&b);
        let got = a.to_dtype(DType::F32).matmul(&b.to_dtype(DType::F32));
        assert!(got.to_dtype(DType::F64).allclose(&want, 1e-4, 1e-5));
    }

    #[test]
    fn large_parallel_product_is_exact_enough() {
        let a = values(&[256, 256], 0.01);
        let b = values(&[256, 256], 0.02);
        let want = naive(&a.to_vec::<f64>(), &b.to_vec::<f64>(), 256, 256, 256);
        let got = a.matmul(&b).to_vec::<f64>();
        assert!(got.iter().zip(&want).all(|(x, y)| (x - y).abs() < 1e-9));
    }

    #[test]
    fn inner_mismatch_names_shapes() {
        let e = Tensor::zeros(&[3, 4]).try_matmul(&Tensor::zeros(&[5, 6])).unwrap_err();
        assert_eq!(
            e.to_string(),
            "matmul: incompatible shapes [3, 4] and [5, 6]: inner dimensions 4 and 5 differ"
        );
    }
}

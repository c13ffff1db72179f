//! Fused scaled dot-product attention (`F.scaled_dot_product_attention` without dropout):
//! scores, mask, softmax and weighted sum as one op, and its gradient as another (see
//! [`crate::kernels::attention`]). Operands are read through their strides, so the heads
//! of a packed `q, k, v` projection need no copy.

use crate::dtype::Element;
use crate::error::{Result, TensorError, or_panic};
use crate::kernels::attention::{self as kernel, Dims, Operand};
use crate::kernels::gemm::Strided;
use crate::shape;
use crate::tensor::{StorageElement, Tensor, with_float};

const OP: &str = "scaled_dot_product_attention";

/// The offset of every batch item's matrix, for batch `batch` (`t`'s leading dimensions,
/// or dimensions it broadcasts to), and the item's matrix view.
fn operand<'a, T: StorageElement>(t: &'a Tensor, batch: &[usize]) -> Operand<'a, T> {
    let nd = t.ndim();
    let (dims, strides) = (t.dims(), t.strides());
    let view = Strided {
        rows: dims[nd - 2],
        cols: dims[nd - 1],
        row_stride: strides[nd - 2] as isize,
        col_stride: strides[nd - 1] as isize,
    };
    let batch_strides = shape::broadcast_strides(&dims[..nd - 2], &strides[..nd - 2], batch);
    let count = shape::numel(batch);
    let mut offsets = Vec::with_capacity(count);
    for i in 0..count {
        let (mut rest, mut off) = (i, t.layout().offset);
        for d in (0..batch.len()).rev() {
            off += rest % batch[d] * batch_strides[d];
            rest /= batch[d];
        }
        offsets.push(off);
    }
    Operand { data: t.storage_slice::<T>(), offsets, view }
}

fn invalid(msg: String) -> TensorError {
    TensorError::InvalidArgument { op: OP, msg }
}

/// Checks `q (.., L, E)`, `k (.., S, E)`, `v (.., S, Ev)` (same leading dimensions, one
/// float dtype) and returns the sizes.
fn check(q: &Tensor, k: &Tensor, v: &Tensor) -> Result<Dims> {
    let dtype = q.dtype();
    if !dtype.is_float() {
        return Err(TensorError::UnsupportedDType { op: OP, dtype, detail: String::new() });
    }
    if k.dtype() != dtype || v.dtype() != dtype {
        return Err(invalid(format!(
            "q, k and v must share one dtype, got {dtype}, {} and {}",
            k.dtype(),
            v.dtype()
        )));
    }
    let nd = q.ndim();
    let lead = |t: &Tensor| t.dims()[..t.ndim() - 2].to_vec();
    if nd < 2 || k.ndim() != nd || v.ndim() != nd || lead(k) != lead(q) || lead(v) != lead(q) {
        return Err(invalid(format!(
            "expected q [.., L, E], k [.., S, E] and v [.., S, Ev] with the same leading dimensions, \
             got {:?}, {:?} and {:?}",
            q.dims(),
            k.dims(),
            v.dims()
        )));
    }
    let (l, e) = (q.dims()[nd - 2], q.dims()[nd - 1]);
    let (s, ev) = (k.dims()[nd - 2], v.dims()[nd - 1]);
    if k.dims()[nd - 1] != e || v.dims()[nd - 2] != s {
        return Err(invalid(format!(
            "expected k [.., S, {e}] and v [.., S, Ev] for q {:?}, got {:?} and {:?}",
            q.dims(),
            k.dims(),
            v.dims()
        )));
    }
    Ok(Dims { items: shape::numel(&q.dims()[..nd - 2]), l, s, e, ev })
}

impl Tensor {
    /// [`Tensor::scaled_dot_product_attention`] that returns an error instead of panicking.
    ///
    /// # Errors
    /// [`TensorError::InvalidArgument`] if the shapes do not fit (see the panicking form),
    /// the dtypes differ, or `bias` does not broadcast to the scores `(.., L, S)`;
    /// [`TensorError::UnsupportedDType`] for `i64` operands.
    ///
    /// ```
    /// use sinew_tensor::Tensor;
    /// let (q, kv) = (Tensor::zeros(&[2, 3, 4]), Tensor::zeros(&[2, 5, 4]));
    /// assert!(Tensor::try_scaled_dot_product_attention(&q, &kv, &kv, None, false, 0.5).is_ok());
    /// assert!(Tensor::try_scaled_dot_product_attention(&q, &q, &kv, None, false, 0.5).is_err()); // 3 keys, 5 values
    /// ```
    pub fn try_scaled_dot_product_attention(
        q: &Tensor,
        k: &Tensor,
        v: &Tensor,
        bias: Option<&Tensor>,
        causal: bool,
        scale: f64,
    ) -> Result<(Tensor, Tensor)> {
        let dims = check(q, k, v)?;
        let nd = q.ndim();
        let mut scores = q.dims()[..nd - 2].to_vec();
        scores.extend([dims.l, dims.s]);
        if let Some(b) = bias {
            let fits = shape::broadcast_shapes(OP, b.dims(), &scores).is_ok_and(|s| s == scores);
            if !fits || b.dtype() != q.dtype() {
                return Err(invalid(format!(
                    "bias must be {} and broadcast to the scores {scores:?}, got {} {:?}",
                    q.dtype(),
                    b.dtype(),
                    b.dims()
                )));
            }
        }
        shape::try_numel(OP, &scores)?;
        let batch = &scores[..nd - 2];
        let mut out_shape = batch.to_vec();
        out_shape.extend([dims.l, dims.ev]);
        // a bias of fewer dimensions lines up with the scores' trailing ones
        let bias = bias.map(|b| b.broadcast_to(&scores));
        Ok(with_float!(q.dtype(), OP, |T| {
            let (qo, ko, vo) = (operand::<T>(q, batch), operand::<T>(k, batch), operand::<T>(v, batch));
            let bias_op = bias.as_ref().map(|b| operand::<T>(b, batch));
            let (out, probs) =
                kernel::forward(&qo, &ko, &vo, bias_op.as_ref(), causal, T::from_f64(scale), dims);
            (Tensor::from_parts(out, &out_shape), Tensor::from_parts(probs, &scores))
        }))
    }

    /// Scaled dot-product attention of queries `q (.., L, E)` over keys `k (.., S, E)` and
    /// values `v (.., S, Ev)`, fused: `softmax(q·kᵀ·scale + bias)·v`, with key `j > i`
    /// hidden from query `i` when `causal`. Returns the output `(.., L, Ev)` and the
    /// attention weights `(.., L, S)` (what [`Tensor::scaled_dot_product_attention_backward`]
    /// needs). `q`, `k` and `v` share their leading dimensions; `bias` (an additive mask,
    /// `-∞` to hide a key) broadcasts to the scores. A query that sees no key gets zero
    /// weights and a zero output.
    ///
    /// # Panics
    /// As [`Tensor::try_scaled_dot_product_attention`] errs; the message names the shapes.
    ///
    /// ```
    /// use sinew_tensor::Tensor;
    /// // two queries over two keys, causal: the first query sees only the first value
    /// let q = Tensor::from([[[1.0f64, 0.0], [0.0, 1.0]]]);
    /// let v = Tensor::from([[[10.0f64, 20.0], [30.0, 40.0]]]);
    /// let (out, weights) = Tensor::scaled_dot_product_attention(&q, &q, &v, None, true, 1.0);
    /// assert_eq!(out.to_vec::<f64>()[..2], [10.0, 20.0]);
    /// let w = weights.to_vec::<f64>(); // row 2: softmax([0, 1])
    /// assert!((w[3] - 1.0 / (1.0 + (-1.0f64).exp())).abs() < 1e-12 && w[1] == 0.0);
    /// ```
    #[track_caller]
    pub fn scaled_dot_product_attention(
        q: &Tensor,
        k: &Tensor,
        v: &Tensor,
        bias: Option<&Tensor>,
        causal: bool,
        scale: f64,
    ) -> (Tensor, Tensor) {
        or_panic(Tensor::try_scaled_dot_product_attention(q, k, v, bias, causal, scale))
    }

    /// The gradient of [`Tensor::scaled_dot_product_attention`]: from the inputs, the
    /// weights it returned and the output's gradient `grad (.., L, Ev)`, returns
    /// `(dq, dk, dv)`, shaped as `q`, `k`, `v` (contiguous).
    ///
    /// # Panics
    /// If the shapes do not fit the forward's.
    ///
    /// ```
    /// use sinew_tensor::Tensor;
    /// let (q, v) = (Tensor::from([[[1.0f64, 0.0], [0.0, 1.0]]]), Tensor::from([[[1.0f64], [3.0]]]));
    /// let (_, w) = Tensor::scaled_dot_product_attention(&q, &q, &v, None, false, 1.0);
    /// let (dq, dk, dv) = Tensor::scaled_dot_product_attention_backward(&q, &q, &v, &w, &Tensor::ones_dtype(&[1, 2, 1], sinew_tensor::DType::F64), 1.0);
    /// assert_eq!((dq.dims(), dk.dims(), dv.dims()), (&[1, 2, 2][..], &[1, 2, 2][..], &[1, 2, 1][..]));
    /// // every weight row sums to one, so dv is the column sums of the weights
    /// assert!((dv.to_vec::<f64>().iter().sum::<f64>() - 2.0).abs() < 1e-12);
    /// ```
    #[track_caller]
    pub fn scaled_dot_product_attention_backward(
        q: &Tensor,
        k: &Tensor,
        v: &Tensor,
        probs: &Tensor,
        grad: &Tensor,
        scale: f64,
    ) -> (Tensor, Tensor, Tensor) {
        let dims = or_panic(check(q, k, v));
        let nd = q.ndim();
        let batch = &q.dims()[..nd - 2];
        let shaped = |rows: usize, cols: usize| {
            let mut s = batch.to_vec();
            s.extend([rows, cols]);
            s
        };
        let fits = probs.dims() == shaped(dims.l, dims.s)
            && grad.dims() == shaped(dims.l, dims.ev)
            && probs.dtype() == q.dtype()
            && grad.dtype() == q.dtype();
        assert!(
            fits,
            "{OP}_backward: expected weights {:?} and gradient {:?} of dtype {}, got {:?} ({}) and {:?} ({})",
            shaped(dims.l, dims.s),
            shaped(dims.l, dims.ev),
            q.dtype(),
            probs.dims(),
            probs.dtype(),
            grad.dims(),
            grad.dtype()
        );
        with_float!(q.dtype(), OP, |T| {
            let (qo, ko, vo) = (operand::<T>(q, batch), operand::<T>(k, batch), operand::<T>(v, batch));
            let (p, g) = (probs.contiguous_slice::<T>(), grad.contiguous_slice::<T>());
            let (dq, dk, dv) = kernel::backward(&qo, &ko, &vo, &p, &g, T::from_f64(scale), dims);
            (
                Tensor::from_parts(dq, &shaped(dims.l, dims.e)),
                Tensor::from_parts(dk, &shaped(dims.s, dims.e)),
                Tensor::from_parts(dv, &shaped(dims.s, dims.ev)),
            )
        })
    }
}

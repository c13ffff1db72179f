//! Fused scaled dot-product attention: the forward is one tensor op, and so is the
//! first-order backward; with `create_graph`, the gradient is taken through the same
//! attention written with `Var` ops (scores, softmax, weighted sum), so it is
//! differentiable again.

use sinew_tensor::Tensor;

use super::vjp_through;
use crate::Var;
use crate::mode::is_grad_enabled;

impl Var {
    /// `softmax(q·kᵀ·scale + bias)·v`, fused (see
    /// [`Tensor::scaled_dot_product_attention`]): queries `q (.., L, E)`, keys
    /// `k (.., S, E)`, values `v (.., S, Ev)` with the same leading dimensions; `bias`, a
    /// constant additive mask (`-∞` hides a key), broadcasts to the scores `(.., L, S)`;
    /// `causal` hides key `j > i` from query `i`. A query that sees no key returns zeros.
    /// The attention weights are kept for the backward pass, which is one kernel.
    ///
    /// # Panics
    /// If the shapes do not fit or the dtypes differ; the message names the shapes.
    ///
    /// ```
    /// use sinew_autograd::Var;
    /// use sinew_tensor::{DType, Generator, Tensor};
    /// let mut g = Generator::new(0);
    /// let q = Var::leaf(Tensor::randn_with(&[2, 4, 5, 8], DType::F64, &mut g)); // (N, heads, L, E)
    /// let k = Var::leaf(Tensor::randn_with(&[2, 4, 5, 8], DType::F64, &mut g));
    /// let v = Var::leaf(Tensor::randn_with(&[2, 4, 5, 8], DType::F64, &mut g));
    /// let scale = 1.0 / 8f64.sqrt();
    /// let y = Var::scaled_dot_product_attention(&q, &k, &v, None, false, scale);
    /// // the composed formula, in one op
    /// let composed = q.matmul(&k.t()).mul_scalar(scale).softmax(-1).matmul(&v);
    /// assert!(y.value().allclose(composed.value(), 1e-12, 1e-12));
    /// // causal: the first query sees only the first key, so it returns the first value
    /// let y = Var::scaled_dot_product_attention(&q, &k, &v, None, true, scale);
    /// assert!(y.value().narrow(2, 0, 1).allclose(&v.value().narrow(2, 0, 1), 1e-12, 1e-12));
    /// let grads = y.sum_all().backward();
    /// assert_eq!(grads.get(&k).unwrap().dims(), &[2, 4, 5, 8]);
    /// ```
    #[track_caller]
    pub fn scaled_dot_product_attention(
        q: &Var,
        k: &Var,
        v: &Var,
        bias: Option<&Tensor>,
        causal: bool,
        scale: f64,
    ) -> Var {
        let (out, probs) =
            Tensor::scaled_dot_product_attention(q.value(), k.value(), v.value(), bias, causal, scale);
        let bias = bias.cloned();
        Var::from_op("scaled_dot_product_attention", out, &[q, k, v], move |ctx| {
            let (q, k, v) = (&ctx.inputs[0], &ctx.inputs[1], &ctx.inputs[2]);
            if is_grad_enabled() {
                let unfused = attention_unfused(q, k, v, bias.as_ref(), causal, scale);
                return vjp_through(&unfused, ctx.grad, &[q, k, v]);
            }
            let (dq, dk, dv) = Tensor::scaled_dot_product_attention_backward(
                q.value(),
                k.value(),
                v.value(),
                &probs,
                ctx.grad.value(),
                scale,
            );
            [dq, dk, dv].into_iter().map(|g| Some(Var::constant(g))).collect()
        })
    }
}

/// The attention the fused op computes, from `Var` ops: the graph its `create_graph`
/// backward goes through. Rows that see no key are zeroed, as the kernel does.
fn attention_unfused(q: &Var, k: &Var, v: &Var, bias: Option<&Tensor>, causal: bool, scale: f64) -> Var {
    let (l, s) = (q.dims()[q.ndim() - 2], k.dims()[k.ndim() - 2]);
    let mut scores = q.matmul(&k.t()).mul_scalar(scale);
    let dtype = q.dtype();
    let hidden = Tensor::full_dtype(&[], f64::NEG_INFINITY, dtype);
    let zero = Tensor::full_dtype(&[], 0.0, dtype);
    let causal_bias = causal.then(|| {
        let above =
            Tensor::from_vec((0..l * s).map(|i| (i % s > i / s) as i64).collect(), &[l, s]).expect("l·s");
        above.ne_scalar(0.0).where_(&hidden, &zero)
    });
    let total = match (bias, causal_bias) {
        (Some(b), Some(c)) => Some(b + &c),
        (Some(b), None) => Some(b.clone()),
        (None, c) => c,
    };
    let Some(total) = total else {
        return scores.softmax(-1).matmul(v);
    };
    let total = total.broadcast_to(scores.dims());
    // a row with every key hidden would be 0/0: finite scores there, zeroed after
    let dead = total.max(&[-1], true).eq_scalar(f64::NEG_INFINITY);
    let total = dead.where_(&zero, &total);
    scores = &scores + &Var::constant(total);
    let probs = &scores.softmax(-1) * &Var::constant(dead.rsub_scalar(1.0));
    probs.matmul(v)
}

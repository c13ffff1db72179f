//! Fused recurrent ops: an LSTM step, and whole LSTM and GRU layers over a sequence.
//! Their first-order backward passes are single kernels; when a graph of the gradient is
//! being built (`create_graph`), the same gradients are composed from `Var` ops instead,
//! so second derivatives work as for the unfused formulas.

use sinew_tensor::Tensor;

use super::vjp_through;
use crate::Var;
use crate::mode::is_grad_enabled;

impl Var {
    /// One LSTM step, fused: from the input projection `xg` and recurrent projection `hg`
    /// (each `(N, 4H)`, gates in PyTorch's order input, forget, cell, output) and the
    /// previous cell state `c_prev` (`(N, H)`), returns the new hidden and cell states
    ///
    /// ```text
    /// i, f, g, o = σ, σ, tanh, σ of (xg + hg);  c = f·c_prev + i·g;  h = o·tanh(c)
    /// ```
    ///
    /// as `(h, c)`, both `(N, H)`. One op instead of about a dozen, with one backward kernel.
    ///
    /// # Panics
    /// If the shapes are not `(N, 4H)`, `(N, 4H)`, `(N, H)` or the dtypes differ.
    ///
    /// ```
    /// use sinew_autograd::Var;
    /// use sinew_tensor::Tensor;
    /// let xg = Var::leaf(Tensor::zeros(&[1, 4]));
    /// let (h, c) = Var::lstm_cell(&xg, &Var::constant(Tensor::zeros(&[1, 4])), &Var::constant(Tensor::ones(&[1, 1])));
    /// assert_eq!(c.value().to_vec::<f32>(), vec![0.5]); // forget gate 1/2, cell gate 0
    /// let grads = h.sum_all().backward();
    /// assert_eq!(grads.get(&xg).unwrap().dims(), &[1, 4]);
    /// ```
    #[track_caller]
    pub fn lstm_cell(xg: &Var, hg: &Var, c_prev: &Var) -> (Var, Var) {
        let (hc, act) = Tensor::lstm_cell(xg.value(), hg.value(), c_prev.value());
        let hc = Var::from_op("lstm_cell", hc, &[xg, hg, c_prev], move |ctx| {
            let (xg, hg, c_prev) = (&ctx.inputs[0], &ctx.inputs[1], &ctx.inputs[2]);
            let (d_gates, d_c_prev) = if is_grad_enabled() {
                let (dh, dc) = (ctx.grad.select(0, 0), ctx.grad.select(0, 1));
                lstm_cell_backward_composed(&(xg + hg), c_prev, &dh, &dc)
            } else {
                let (dg, dc) =
                    Tensor::lstm_cell_backward(&act, c_prev.value(), ctx.output.value(), ctx.grad.value());
                (Var::constant(dg), Var::constant(dc))
            };
            vec![Some(d_gates.clone()), Some(d_gates), Some(d_c_prev)]
        });
        (hc.select(0, 0), hc.select(0, 1))
    }

    /// A whole LSTM layer over a sequence, fused: from the input projection `projected`
    /// (`(T, N, 4H)`: `x_t · W_ihᵀ` plus both biases), the recurrent weight `w_hh`
    /// (`(4H, H)`) and the initial states `h0`, `c0` (`(N, H)`), returns the outputs
    /// (`(T, N, H)`: every hidden state), the last hidden state and the last cell state.
    ///
    /// The `T` steps of [`Var::lstm_cell`] as one op: the forward is one loop, and the
    /// backward is backpropagation through time in one kernel, with the recurrent weight's
    /// gradient as one GEMM over all steps instead of a GEMM and an addition per step.
    ///
    /// # Panics
    /// If the shapes do not fit each other or the dtypes differ.
    ///
    /// ```
    /// use sinew_autograd::Var;
    /// use sinew_tensor::Tensor;
    /// let projected = Var::leaf(Tensor::zeros(&[3, 2, 4]));
    /// let w_hh = Var::leaf(Tensor::zeros(&[4, 1]));
    /// let zeros = Var::constant(Tensor::zeros(&[2, 1]));
    /// let (out, h_n, c_n) = Var::lstm_sequence(&projected, &w_hh, &zeros, &zeros);
    /// assert_eq!((out.dims(), h_n.dims(), c_n.dims()), (&[3, 2, 1][..], &[2, 1][..], &[2, 1][..]));
    /// let grads = out.sum_all().backward();
    /// assert_eq!(grads.get(&w_hh).unwrap().dims(), &[4, 1]);
    /// ```
    #[track_caller]
    pub fn lstm_sequence(projected: &Var, w_hh: &Var, h0: &Var, c0: &Var) -> (Var, Var, Var) {
        let (y, cells, gates) =
            Tensor::lstm_sequence(projected.value(), w_hh.value(), h0.value(), c0.value());
        let steps = projected.dims()[0];
        let y = Var::from_op("lstm_sequence", y, &[projected, w_hh, h0, c0], move |ctx| {
            let [p, w, h0, c0] = [&ctx.inputs[0], &ctx.inputs[1], &ctx.inputs[2], &ctx.inputs[3]];
            if is_grad_enabled() {
                return vjp_through(&lstm_sequence_unfused(p, w, h0, c0), ctx.grad, &[p, w, h0, c0]);
            }
            let (dp, dw, dh0, dc0) = Tensor::lstm_sequence_backward(
                w.value(),
                h0.value(),
                c0.value(),
                ctx.output.value(),
                &cells,
                &gates,
                ctx.grad.value(),
            );
            [dp, dw, dh0, dc0].into_iter().map(|g| Some(Var::constant(g))).collect()
        });
        let last_h = if steps == 0 { h0.clone() } else { y.select(0, steps - 1) };
        (y.narrow(0, 0, steps), last_h, y.select(0, steps))
    }
}

impl Var {
    /// A whole GRU layer over a sequence, fused: from the input projection `projected`
    /// (`(T, N, 3H)`: `x_t · W_ihᵀ + b_ih` plus the reset and update parts of `b_hh`), the
    /// recurrent weight `w_hh` (`(3H, H)`), the new gate's recurrent bias `b_hn` (`(H)`)
    /// and the initial state `h0` (`(N, H)`), returns the outputs (`(T, N, H)`: every
    /// hidden state) and the last hidden state, with PyTorch's `nn.GRU` equations:
    ///
    /// ```text
    /// r, z = σ(x_r + h_r), σ(x_z + h_z);  n = tanh(x_n + r·(h_n + b_hn));  h' = (1 - z)·n + z·h
    /// ```
    ///
    /// One op: a loop forward, backpropagation through time in one kernel backward, the
    /// recurrent weight's gradient as one GEMM. With `create_graph`, the gradient is
    /// taken through the same recurrence written with `Var` ops, so it is differentiable.
    ///
    /// # Panics
    /// If the shapes do not fit each other or the dtypes differ.
    ///
    /// ```
    /// use sinew_autograd::Var;
    /// use sinew_tensor::Tensor;
    /// let projected = Var::leaf(Tensor::zeros(&[3, 2, 3]));
    /// let w_hh = Var::leaf(Tensor::zeros(&[3, 1]));
    /// let (b_hn, h0) = (Var::constant(Tensor::zeros(&[1])), Var::constant(Tensor::ones(&[2, 1])));
    /// let (out, h_n) = Var::gru_sequence(&projected, &w_hh, &b_hn, &h0);
    /// assert_eq!((out.dims(), h_n.value().to_vec::<f32>()), (&[3, 2, 1][..], vec![0.125, 0.125]));
    /// let grads = out.sum_all().backward();
    /// assert_eq!(grads.get(&w_hh).unwrap().dims(), &[3, 1]);
    /// ```
    #[track_caller]
    pub fn gru_sequence(projected: &Var, w_hh: &Var, b_hn: &Var, h0: &Var) -> (Var, Var) {
        let (y, act) = Tensor::gru_sequence(projected.value(), w_hh.value(), b_hn.value(), h0.value());
        let steps = projected.dims()[0];
        let y = Var::from_op("gru_sequence", y, &[projected, w_hh, b_hn, h0], move |ctx| {
            let [p, w, b, h0] = [&ctx.inputs[0], &ctx.inputs[1], &ctx.inputs[2], &ctx.inputs[3]];
            if is_grad_enabled() {
                return vjp_through(&gru_sequence_unfused(p, w, b, h0), ctx.grad, &[p, w, b, h0]);
            }
            let (dp, dw, db, dh0) = Tensor::gru_sequence_backward(
                w.value(),
                h0.value(),
                ctx.output.value(),
                &act,
                ctx.grad.value(),
            );
            [dp, dw, db, dh0].into_iter().map(|g| Some(Var::constant(g))).collect()
        });
        let last = if steps == 0 { h0.clone() } else { y.select(0, steps - 1) };
        (y, last)
    }
}

/// The GRU recurrence step by step with ordinary `Var` ops: the reference the fused op
/// must equal, and the differentiable graph its `create_graph` backward goes through.
fn gru_sequence_unfused(p: &Var, w: &Var, b_hn: &Var, h0: &Var) -> Var {
    let steps = p.dims()[0];
    if steps == 0 {
        return Var::constant(Tensor::zeros_dtype(&[0, h0.dims()[0], h0.dims()[1]], h0.dtype()));
    }
    let w_t = w.t();
    let mut h = h0.clone();
    let mut outputs = Vec::with_capacity(steps);
    for t in 0..steps {
        let xg = p.select(0, t).chunk(3, 1);
        let hg = h.matmul(&w_t).chunk(3, 1);
        let r = (&xg[0] + &hg[0]).sigmoid();
        let z = (&xg[1] + &hg[1]).sigmoid();
        let n = (&xg[2] + &(&r * &(&hg[2] + b_hn))).tanh();
        h = &n + &(&z * &(&h - &n));
        outputs.push(h.clone());
    }
    let refs: Vec<&Var> = outputs.iter().collect();
    Var::stack(&refs, 0)
}

/// The LSTM step's gradient from differentiable ops (for `create_graph`): the same
/// formulas as the kernel, on the gates recomputed from the pre-activations `z`.
fn lstm_cell_backward_composed(z: &Var, c_prev: &Var, dh: &Var, dc_in: &Var) -> (Var, Var) {
    let gates = z.chunk(4, 1);
    let (i, f, g, o) = (gates[0].sigmoid(), gates[1].sigmoid(), gates[2].tanh(), gates[3].sigmoid());
    let c = &(&f * c_prev) + &(&i * &g);
    let tc = c.tanh();
    let dc = dc_in + &(&(dh * &o) * &tc.square().rsub_scalar(1.0));
    let sigmoid_grad = |s: &Var| s * &s.rsub_scalar(1.0);
    let d_i = &(&dc * &g) * &sigmoid_grad(&i);
    let d_f = &(&dc * c_prev) * &sigmoid_grad(&f);
    let d_g = &(&dc * &i) * &g.square().rsub_scalar(1.0);
    let d_o = &(dh * &tc) * &sigmoid_grad(&o);
    (Var::cat(&[&d_i, &d_f, &d_g, &d_o], 1), &dc * &f)
}

/// The LSTM recurrence step by step through [`Var::lstm_cell`] (itself differentiable
/// twice): the graph `lstm_sequence`'s `create_graph` backward goes through. Returns what
/// the fused op returns: `h_1 .. h_T` and then `c_T`, stacked.
fn lstm_sequence_unfused(p: &Var, w: &Var, h0: &Var, c0: &Var) -> Var {
    let w_t = w.t();
    let (mut h, mut c) = (h0.clone(), c0.clone());
    let mut outputs = Vec::with_capacity(p.dims()[0] + 1);
    for t in 0..p.dims()[0] {
        (h, c) = Var::lstm_cell(&p.select(0, t), &h.matmul(&w_t), &c);
        outputs.push(h.clone());
    }
    outputs.push(c);
    let refs: Vec<&Var> = outputs.iter().collect();
    Var::stack(&refs, 0)
}

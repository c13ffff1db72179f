//! The fused LSTM step. Its first-order backward is one kernel; when a graph of the
//! gradient is being built (`create_graph`), the same gradient is composed from `Var` ops
//! instead, so second derivatives work as for the unfused formula.

use sinew_tensor::Tensor;

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
        let h = c_prev.dims()[1];
        let hc = Var::from_op("lstm_cell", hc, &[xg, hg, c_prev], move |ctx| {
            let (xg, hg, c_prev) = (&ctx.inputs[0], &ctx.inputs[1], &ctx.inputs[2]);
            let (d_gates, d_c_prev) = if is_grad_enabled() {
                lstm_cell_backward_composed(&(xg + hg), c_prev, ctx.grad, h)
            } else {
                let (dg, dc) =
                    Tensor::lstm_cell_backward(&act, c_prev.value(), ctx.output.value(), ctx.grad.value());
                (Var::constant(dg), Var::constant(dc))
            };
            vec![Some(d_gates.clone()), Some(d_gates), Some(d_c_prev)]
        });
        (hc.narrow(1, 0, h), hc.narrow(1, h, h))
    }
}

/// The LSTM step's gradient from differentiable ops (for `create_graph`): the same
/// formulas as the kernel, on the recomputed gates.
fn lstm_cell_backward_composed(z: &Var, c_prev: &Var, grad: &Var, h: usize) -> (Var, Var) {
    let gates = z.chunk(4, 1);
    let (i, f, g, o) = (gates[0].sigmoid(), gates[1].sigmoid(), gates[2].tanh(), gates[3].sigmoid());
    let c = &(&f * c_prev) + &(&i * &g);
    let tc = c.tanh();
    let (dh, dc_in) = (grad.narrow(1, 0, h), grad.narrow(1, h, h));
    let dc = &dc_in + &(&(&dh * &o) * &tc.square().rsub_scalar(1.0));
    let sigmoid_grad = |s: &Var| s * &s.rsub_scalar(1.0);
    let d_i = &(&dc * &g) * &sigmoid_grad(&i);
    let d_f = &(&dc * c_prev) * &sigmoid_grad(&f);
    let d_g = &(&dc * &i) * &g.square().rsub_scalar(1.0);
    let d_o = &(&dh * &tc) * &sigmoid_grad(&o);
    (Var::cat(&[&d_i, &d_f, &d_g, &d_o], 1), &dc * &f)
}

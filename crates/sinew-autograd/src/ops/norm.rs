//! Layer normalisation as one fused op. Its first-order backward is one tensor kernel
//! ([`Tensor::layer_norm_backward`]); when a graph of the gradient is being built
//! (`create_graph`), the same gradient is composed from `Var` ops instead, so second
//! derivatives work as for the unfused formula. (The softmax family's backward rules, in
//! `reduce.rs`, follow the same pattern.)

use sinew_tensor::Tensor;

use crate::Var;
use crate::mode::is_grad_enabled;

impl Var {
    /// Layer normalisation over the trailing `normalized_shape` dimensions, fused
    /// (`F.layer_norm`): `(x - mean) / √(var + eps)·weight + bias`, with the mean and the
    /// biased variance over the normalised dimensions. One op instead of eight, whose
    /// backward is one pass over the rows.
    ///
    /// # Panics
    /// If `normalized_shape` is empty, `self` does not end in it, `weight` or `bias` are
    /// not shaped like it, or the dtypes differ or are not float.
    ///
    /// ```
    /// use sinew_autograd::{GradcheckOptions, Var, gradcheck, gradgradcheck};
    /// use sinew_tensor::Tensor;
    /// let x = Var::leaf(Tensor::from([[1.0f64, 3.0], [10.0, 30.0]]));
    /// let w = Var::leaf(Tensor::from([2.0f64, 1.0]));
    /// let y = x.layer_norm(&[2], Some(&w), None, 0.0);
    /// assert_eq!(y.value().to_vec::<f64>(), vec![-2.0, 1.0, -2.0, 1.0]);
    /// let grads = y.sum_all().backward();
    /// assert_eq!(grads.get(&w).unwrap().to_vec::<f64>(), vec![-2.0, 2.0]); // Σ x̂ per column
    /// // first and second derivatives against central differences
    /// let inputs = [Tensor::from([[0.3f64, -1.0, 2.0]]), Tensor::from([0.5f64, 1.5, -1.0])];
    /// let f = |v: &[Var]| v[0].layer_norm(&[3], Some(&v[1]), None, 1e-5);
    /// gradcheck(f, &inputs, GradcheckOptions::default()).unwrap();
    /// gradgradcheck(f, &inputs, GradcheckOptions::default()).unwrap();
    /// ```
    #[track_caller]
    pub fn layer_norm(
        &self,
        normalized_shape: &[usize],
        weight: Option<&Var>,
        bias: Option<&Var>,
        eps: f64,
    ) -> Var {
        let (y, mean, rstd) =
            self.value().layer_norm(normalized_shape, weight.map(Var::value), bias.map(Var::value), eps);
        let inputs: Vec<&Var> = [Some(self), weight, bias].into_iter().flatten().collect();
        let (has_weight, has_bias) = (weight.is_some(), bias.is_some());
        let shape = normalized_shape.to_vec();
        Var::from_op("layer_norm", y, &inputs, move |ctx| {
            let x = &ctx.inputs[0];
            let w = has_weight.then(|| &ctx.inputs[1]);
            let (dx, dw, db) = if is_grad_enabled() {
                layer_norm_backward_composed(x, shape.len(), w, ctx.grad, eps)
            } else {
                let (dx, dw, db) = Tensor::layer_norm_backward(
                    x.value(),
                    &shape,
                    &mean,
                    &rstd,
                    w.map(Var::value),
                    ctx.grad.value(),
                );
                (Var::constant(dx), Var::constant(dw), Var::constant(db))
            };
            let mut grads = vec![Some(dx)];
            if has_weight {
                grads.push(Some(dw));
            }
            if has_bias {
                grads.push(Some(db));
            }
            grads
        })
    }
}

/// LayerNorm's gradient from differentiable ops (for `create_graph`): the kernel's
/// formulas, with the statistics recomputed from `x` so that they are differentiated
/// too. Returns the gradients of `x`, the weight and the bias.
///
/// Written out rather than taken by a nested backward pass through the unfused forward
/// (as the recurrent ops do): that pass would walk the whole graph upstream of `x`.
fn layer_norm_backward_composed(x: &Var, k: usize, w: Option<&Var>, g: &Var, eps: f64) -> (Var, Var, Var) {
    let nd = x.ndim();
    let dims: Vec<isize> = (nd - k..nd).map(|d| d as isize).collect();
    let lead: Vec<isize> = (0..nd - k).map(|d| d as isize).collect();
    let rstd = x.var(&dims, false, true).add_scalar(eps).rsqrt();
    let xhat = &(x - &x.mean(&dims, true)) * &rstd;
    let gw = match w {
        Some(w) => g * w,
        None => g.clone(),
    };
    let centred = &gw - &gw.mean(&dims, true);
    let dx = &rstd * &(&centred - &(&xhat * &(&gw * &xhat).mean(&dims, true)));
    // over the leading dims (`sum(&[])` would sum over all of them)
    let over_rows = |t: Var| if lead.is_empty() { t } else { t.sum(&lead, false) };
    (dx, over_rows(g * &xhat), over_rows(g.clone()))
}

//! Batch normalisation with the batch's statistics, fused: the forward (statistics and
//! output) is one tensor op, the first-order backward another; with `create_graph`, the
//! gradient is taken through the same normalisation written with `Var` ops.

use sinew_tensor::Tensor;

use super::vjp_through;
use crate::Var;
use crate::mode::is_grad_enabled;

impl Var {
    /// `(x - mean)/√(var + eps)·weight + bias` over every dimension of `x (N, C, ..)` but
    /// 1, with the batch's mean and biased variance (a training step's `F.batch_norm`),
    /// fused. Returns the output and the statistics (`(C)` tensors, for running
    /// estimates). Gradients flow to `x`, `weight` and `bias` through one kernel.
    ///
    /// # Panics
    /// If `x` has fewer than two dimensions or `weight`/`bias` are not `(C)`.
    ///
    /// ```
    /// use sinew_autograd::Var;
    /// use sinew_tensor::{DType, Generator, Tensor};
    /// let x = Var::leaf(Tensor::randn_with(&[4, 3, 5], DType::F64, &mut Generator::new(0)));
    /// let w = Var::leaf(Tensor::ones_dtype(&[3], DType::F64));
    /// let (y, mean, _var) = Var::batch_norm_training(&x, Some(&w), None, 1e-5);
    /// assert_eq!((y.dims(), mean.dims()), (&[4, 3, 5][..], &[3][..]));
    /// // every channel of the output has mean 0
    /// assert!(y.value().mean(&[0, 2], false).abs().max_all().item() < 1e-12);
    /// let grads = y.square().sum_all().backward();
    /// assert_eq!(grads.get(&w).unwrap().dims(), &[3]);
    /// ```
    #[track_caller]
    pub fn batch_norm_training(
        x: &Var,
        weight: Option<&Var>,
        bias: Option<&Var>,
        eps: f64,
    ) -> (Var, Tensor, Tensor) {
        let (y, mean, var) = x.value().batch_norm_training(weight.map(Var::value), bias.map(Var::value), eps);
        let mut inputs = vec![x];
        inputs.extend(weight);
        inputs.extend(bias);
        let (has_weight, has_bias) = (weight.is_some(), bias.is_some());
        let (saved_mean, saved_var) = (mean.clone(), var.clone());
        let y = Var::from_op("batch_norm_training", y, &inputs, move |ctx| {
            let x = &ctx.inputs[0];
            let weight = has_weight.then(|| &ctx.inputs[1]);
            let bias = has_bias.then(|| &ctx.inputs[1 + has_weight as usize]);
            if is_grad_enabled() {
                let inputs: Vec<&Var> = std::iter::once(x).chain(weight).chain(bias).collect();
                return vjp_through(&batch_norm_unfused(x, weight, bias, eps), ctx.grad, &inputs);
            }
            let (dx, dw, db) = Tensor::batch_norm_training_backward(
                x.value(),
                ctx.grad.value(),
                &saved_mean,
                &saved_var,
                weight.map(Var::value),
                eps,
            );
            let mut grads = vec![Some(Var::constant(dx))];
            if has_weight {
                grads.push(Some(Var::constant(dw)));
            }
            if has_bias {
                grads.push(Some(Var::constant(db)));
            }
            grads
        });
        (y, mean, var)
    }
}

/// The normalisation the fused op computes, from `Var` ops (its `create_graph` form).
fn batch_norm_unfused(x: &Var, weight: Option<&Var>, bias: Option<&Var>, eps: f64) -> Var {
    let dims: Vec<isize> = (0..x.ndim() as isize).filter(|&d| d != 1).collect();
    let mut shape = vec![1usize; x.ndim()];
    shape[1] = x.dims()[1];
    let mean = x.mean(&dims, true);
    let var = x.var(&dims, false, true);
    let mut y = &(x - &mean) * &var.add_scalar(eps).rsqrt();
    if let Some(w) = weight {
        y = &y * &w.reshape(&shape);
    }
    if let Some(b) = bias {
        y = &y + &b.reshape(&shape);
    }
    y
}

//! Gradient clipping over all parameters together (`torch.nn.utils.clip_grad_norm_`,
//! `clip_grad_value_`), on the [`Gradients`] of a backward pass.

use sinew_autograd::Gradients;

/// Scales every gradient by `max_norm / total_norm` when the `norm_type`-norm of all
/// gradients together exceeds `max_norm`; returns the total norm before clipping, as
/// PyTorch does (`norm_type` may be `f64::INFINITY`).
///
/// ```
/// use sinew_autograd::Var;
/// use sinew_optim::clip_grad_norm;
/// use sinew_tensor::Tensor;
/// let x = Var::leaf(Tensor::from_vec(vec![3.0f32, 4.0], &[2])?);
/// let mut grads = (&x * &Var::constant(x.value().clone())).sum_all().backward(); // grad = x
/// let norm = clip_grad_norm(&mut grads, 1.0, 2.0);
/// assert_eq!(norm, 5.0);
/// assert!((grads.get(&x).unwrap().norm(2.0, &[], false).item() - 1.0).abs() < 1e-6);
/// # Ok::<(), sinew_tensor::TensorError>(())
/// ```
pub fn clip_grad_norm(grads: &mut Gradients, max_norm: f64, norm_type: f64) -> f64 {
    // add the parts up in a fixed order (by id), not the map's, so every run agrees to the bit
    let mut parts: Vec<(sinew_autograd::VarId, &sinew_tensor::Tensor)> = grads.iter().collect();
    parts.sort_by_key(|(id, _)| *id);
    let total = if norm_type == f64::INFINITY {
        parts.iter().map(|(_, g)| g.abs().max_all().item()).fold(0.0, f64::max)
    } else {
        parts
            .iter()
            .map(|(_, g)| g.abs().to_dtype(sinew_tensor::DType::F64).powf(norm_type).sum_all().item())
            .sum::<f64>()
            .powf(1.0 / norm_type)
    };
    let coef = max_norm / (total + 1e-6);
    if coef < 1.0 {
        grads.scale(coef);
    }
    total
}

/// Clamps every gradient element into `[-clip, clip]`.
///
/// ```
/// use sinew_autograd::Var;
/// use sinew_optim::clip_grad_value;
/// use sinew_tensor::Tensor;
/// let x = Var::leaf(Tensor::from_vec(vec![-2.0f32, 0.25, 5.0], &[3])?);
/// let mut grads = x.square().sum_all().backward();   // 2x
/// clip_grad_value(&mut grads, 1.0);   // torch.nn.utils.clip_grad_value_(params, 1.0)
/// assert_eq!(grads.get(&x).unwrap().to_vec::<f32>(), vec![-1.0, 0.5, 1.0]);
/// # Ok::<(), sinew_tensor::TensorError>(())
/// ```
pub fn clip_grad_value(grads: &mut Gradients, clip: f64) {
    grads.map_in_place(|_, g| g.clamp(Some(-clip), Some(clip)));
}

#[cfg(test)]
mod tests {
    use super::*;
    use sinew_autograd::VarId;
    use sinew_tensor::{DType, Generator, Tensor};

    #[test]
    fn global_norm_does_not_depend_on_map_order() {
        let mut g = Generator::new(0);
        let parts: Vec<(VarId, Tensor)> = (0..64)
            .map(|i| {
                (
                    VarId::fresh(),
                    Tensor::randn_with(&[7], DType::F64, &mut g).mul_scalar(10f64.powi(i % 9 - 4)),
                )
            })
            .collect();
        let norms: Vec<u64> = (0..8)
            .map(|k| {
                // each Gradients is a new hash map with its own iteration order
                let mut grads = Gradients::new();
                for (id, t) in parts.iter().cycle().skip(k).take(parts.len()) {
                    grads.insert(*id, t.clone());
                }
                clip_grad_norm(&mut grads, 1e9, 2.0).to_bits()
            })
            .collect();
        assert!(norms.windows(2).all(|w| w[0] == w[1]), "{norms:?}");
    }
}

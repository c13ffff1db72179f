//! `matmul` on variables, with `torch.matmul` semantics including 1-D operands and
//! broadcast batch dimensions: `dA = dC·Bᵀ`, `dB = Aᵀ·dC`, summed over broadcast batches.

use super::sum_to;
use crate::Var;

impl Var {
    /// Matrix product with `torch.matmul` semantics.
    ///
    /// # Panics
    /// If the shapes do not fit (the message names both).
    ///
    /// ```
    /// use sinew_autograd::Var;
    /// use sinew_tensor::Tensor;
    /// let x = Var::constant(Tensor::from_vec(vec![1.0f64, 2.0, 3.0, 4.0], &[2, 2])?);
    /// let w = Var::leaf(Tensor::from_vec(vec![1.0f64, 0.0, 0.0, 1.0], &[2, 2])?);
    /// let y = x.matmul(&w);   // x @ w
    /// assert_eq!(y.value().to_vec::<f64>(), vec![1.0, 2.0, 3.0, 4.0]);
    /// let g = y.sum_all().backward();   // dL/dw = xᵀ · 1
    /// assert_eq!(g.get(&w).unwrap().to_vec::<f64>(), vec![4.0, 4.0, 6.0, 6.0]);
    /// # Ok::<(), sinew_tensor::TensorError>(())
    /// ```
    #[track_caller]
    pub fn matmul(&self, other: &Var) -> Var {
        Var::from_op("matmul", self.value().matmul(other.value()), &[self, other], |ctx| {
            let (a, b, g) = (&ctx.inputs[0], &ctx.inputs[1], ctx.grad);
            if a.ndim() == 1 && b.ndim() == 1 {
                return vec![Some(g * b), Some(g * a)];
            }
            // Treat 1-D operands as matrices, and restore the dims the product dropped.
            let a2 = if a.ndim() == 1 { a.unsqueeze(0) } else { a.clone() };
            let b2 = if b.ndim() == 1 { b.unsqueeze(-1) } else { b.clone() };
            let mut g2 = g.clone();
            if a.ndim() == 1 {
                g2 = g2.unsqueeze(if b.ndim() == 1 { -1 } else { -2 });
            }
            if b.ndim() == 1 {
                g2 = g2.unsqueeze(-1);
            }
            // A gradient takes its operand's memory order: for a column-major operand (a
            // transposed view, like `w.t()` in a linear layer) compute the transposed
            // product and view it transposed, so that the gradient reaching the underlying
            // parameter is contiguous. Same arithmetic, no copy.
            let ga = a.requires_grad().then(|| {
                let full = if column_major(a) { b2.matmul(&g2.t()).t() } else { g2.matmul(&b2.t()) };
                sum_to(&full, a2.dims()).reshape(a.dims())
            });
            let gb = b.requires_grad().then(|| {
                // A matrix broadcast over a batch (a linear layer's weight on `(B, T, in)`):
                // its gradient sums `aᵀ·g` over the batch, which is one product of the
                // batch's rows stacked, `(k, B·m)` by `(B·m, n)`, not B products summed.
                let (a2, g2) = if b2.ndim() == 2 && a2.ndim() > 2 {
                    let (k, n) = (a2.dims()[a2.ndim() - 1], g2.dims()[g2.ndim() - 1]);
                    let rows = a2.dims()[..a2.ndim() - 1].iter().product();
                    (a2.reshape(&[rows, k]), g2.reshape(&[rows, n]))
                } else {
                    (a2.clone(), g2.clone())
                };
                let full = if column_major(b) { g2.t().matmul(&a2).t() } else { a2.t().matmul(&g2) };
                sum_to(&full, b2.dims()).reshape(b.dims())
            });
            vec![ga, gb]
        })
    }
}

/// Whether a 2-D variable's value is stored column-major (a transposed contiguous matrix).
fn column_major(v: &Var) -> bool {
    let (d, s) = (v.dims(), v.value().strides());
    v.ndim() == 2 && d[0] > 1 && d[1] > 1 && s[0] == 1 && s[1] == d[0]
}

//! `torch.linalg` ops with gradients: `solve`, `inv`, `det`, `cholesky`, over batches of
//! matrices. Each backward rule is written with `Var` ops (the others of this file
//! included), so second derivatives work:
//!
//! - `Y = A⁻¹`: `dA = -Yᵀ·G·Yᵀ`.
//! - `X = A⁻¹·B`: `dB = solve(Aᵀ, G)`, `dA = -dB·Xᵀ`, each summed over broadcast batches.
//! - `d = det A`: `dA = G·d·A⁻ᵀ`; at an exactly singular matrix (`d == 0`, where `A⁻¹` does
//!   not exist) the first-order gradient is `G·cof(A)`, the cofactor matrix, from the SVD.
//! - `L = cholesky(A)`: PyTorch's `cholesky_backward` (Murray, arXiv:1602.07527):
//!   `S = L⁻ᵀ·Φ(Lᵀ·G)·L⁻¹`, `Φ` the lower triangle with its diagonal halved, and
//!   `dA = (S + Sᵀ)/2`, symmetric as PyTorch's.

use sinew_tensor::Tensor;

use super::sum_to;
use crate::Var;
use crate::mode::is_grad_enabled;

/// PyTorch's rule for a vector right-hand side: 1-D, or exactly `a`'s shape without its
/// last dimension.
fn is_vector_rhs(a: &[usize], b: &[usize]) -> bool {
    b.len() == 1 || (b.len() + 1 == a.len() && b == &a[..a.len() - 1])
}

/// `solve` with matrix right-hand sides (`b` never read as a vector), `value` being
/// `A⁻¹·B` already computed.
fn solve_matrices(a: &Var, b: &Var, value: Tensor) -> Var {
    Var::from_op("solve", value, &[a, b], |ctx| {
        let (a, b, x, g) = (&ctx.inputs[0], &ctx.inputs[1], ctx.output, ctx.grad);
        // G has X's shape (*, n, k), with at least A's dimensions: never a vector case
        let at = a.t();
        let gb = solve_matrices(&at, g, at.value().solve(g.value()));
        let ga = a.requires_grad().then(|| sum_to(&gb.matmul(&x.t()).neg(), a.dims()));
        vec![ga, b.requires_grad().then(|| sum_to(&gb, b.dims()))]
    })
}

/// The cofactor matrix of each matrix of `a` (`(*, n, n)`), from `A = U·diag(s)·Vh`:
/// `cof(A) = det(U)·det(Vh)·U·diag(ŝ)·Vh` with `ŝᵢ = Πⱼ≠ᵢ sⱼ`. Defined for singular
/// matrices too (where it is the gradient of the determinant).
fn cofactors(a: &Tensor) -> Tensor {
    let (u, s, vh) = a.svd();
    let n = a.dims()[a.ndim() - 1];
    let sv = s.to_vec::<f64>();
    let mut others = vec![0.0; sv.len()];
    for (lane, out) in sv.chunks(n.max(1)).zip(others.chunks_mut(n.max(1))) {
        for (i, o) in out.iter_mut().enumerate() {
            *o = lane.iter().enumerate().filter(|&(j, _)| j != i).map(|(_, x)| x).product();
        }
    }
    let others = Tensor::from_vec(others, s.dims()).expect("same shape").to_dtype(a.dtype());
    let sign = &u.det() * &vh.det();
    let cof = (&u * &others.unsqueeze(-2)).matmul(&vh);
    &cof * &sign.unsqueeze(-1).unsqueeze(-1)
}

impl Var {
    /// `X = A⁻¹·B`, the solution of `A·X = B` (`torch.linalg.solve`), differentiable in
    /// both. Shapes as [`Tensor::solve`]: `A` `(*, n, n)`, `B` `(*, n, k)` or `(*, n)`,
    /// batch dimensions broadcast.
    ///
    /// # Panics
    /// As [`Tensor::solve`]: shapes that do not fit, or a singular matrix.
    ///
    /// ```
    /// use sinew_autograd::Var;
    /// use sinew_tensor::Tensor;
    /// let a = Var::leaf(Tensor::from_vec(vec![2.0f64, 0.0, 0.0, 4.0], &[2, 2])?);
    /// let b = Var::leaf(Tensor::from_vec(vec![2.0f64, 8.0], &[2])?);
    /// let x = a.solve(&b);                       // (1, 2)
    /// let grads = x.sum_all().backward();
    /// // d(Σx)/db = A⁻ᵀ·1 = (0.5, 0.25); d(Σx)/dA = -(A⁻ᵀ·1)·xᵀ
    /// assert_eq!(grads.get(&b).unwrap().to_vec::<f64>(), vec![0.5, 0.25]);
    /// assert_eq!(grads.get(&a).unwrap().to_vec::<f64>(), vec![-0.5, -1.0, -0.25, -0.5]);
    /// # Ok::<(), sinew_tensor::TensorError>(())
    /// ```
    #[track_caller]
    pub fn solve(&self, b: &Var) -> Var {
        // the tensor op checks the shapes (naming those given) and decides the vector case
        let x = self.value().solve(b.value());
        if is_vector_rhs(self.dims(), b.dims()) {
            return solve_matrices(self, &b.unsqueeze(-1), x.unsqueeze(-1)).squeeze_dim(-1);
        }
        solve_matrices(self, b, x)
    }

    /// The inverse of a square matrix or of each in a batch (`torch.linalg.inv`), with
    /// `dA = -A⁻ᵀ·G·A⁻ᵀ`.
    ///
    /// # Panics
    /// As [`Tensor::inv`]: not square matrices, or a singular one.
    ///
    /// ```
    /// use sinew_autograd::Var;
    /// use sinew_tensor::Tensor;
    /// let a = Var::leaf(Tensor::from_vec(vec![2.0f64], &[1, 1])?);
    /// let y = a.inv();                            // 1/a
    /// assert_eq!(y.value().item(), 0.5);
    /// assert_eq!(y.sum_all().backward().get(&a).unwrap().item(), -0.25); // -1/a²
    /// # Ok::<(), sinew_tensor::TensorError>(())
    /// ```
    #[track_caller]
    pub fn inv(&self) -> Var {
        Var::from_op("inv", self.value().inv(), &[self], |ctx| {
            let yt = ctx.output.t();
            vec![Some(yt.matmul(ctx.grad).matmul(&yt).neg())]
        })
    }

    /// The determinant of a square matrix or of each in a batch, `(*, n, n)` to `(*)`
    /// (`torch.linalg.det`), with `dA = G·det(A)·A⁻ᵀ`. At an exactly singular matrix the
    /// gradient is the cofactor matrix (from the SVD), as in PyTorch; its second
    /// derivative there (`create_graph`) is not available and panics as `inv` does.
    ///
    /// # Panics
    /// As [`Tensor::det`]: not square matrices.
    ///
    /// ```
    /// use sinew_autograd::Var;
    /// use sinew_tensor::Tensor;
    /// let a = Var::leaf(Tensor::from_vec(vec![1.0f64, 2.0, 3.0, 4.0], &[2, 2])?);
    /// let d = a.det();                             // 1·4 - 2·3
    /// assert_eq!(d.value().item(), -2.0);
    /// let g = d.backward().get(&a).unwrap().clone(); // the cofactors: (4, -3; -2, 1)
    /// assert!(g.allclose(&Tensor::from_vec(vec![4.0f64, -3.0, -2.0, 1.0], &[2, 2])?, 1e-12, 1e-12));
    /// # Ok::<(), sinew_tensor::TensorError>(())
    /// ```
    #[track_caller]
    pub fn det(&self) -> Var {
        Var::from_op("det", self.value().det(), &[self], |ctx| {
            let (a, d, g) = (&ctx.inputs[0], ctx.output, ctx.grad);
            let singular = d.value().eq_scalar(0.0).sum_all().item() > 0.0;
            if singular && !is_grad_enabled() {
                let cof = Var::constant(cofactors(a.value()));
                return vec![Some(&g.unsqueeze(-1).unsqueeze(-1) * &cof)];
            }
            let scale = g.mul(d).unsqueeze(-1).unsqueeze(-1);
            vec![Some(&scale * &a.inv().t())]
        })
    }

    /// The lower Cholesky factor `L` of a symmetric positive-definite matrix (or of each in
    /// a batch), `A = L·Lᵀ` (`torch.linalg.cholesky`), reading only `A`'s lower triangle.
    /// The gradient is PyTorch's: symmetric, `dA = (S + Sᵀ)/2` with
    /// `S = L⁻ᵀ·Φ(Lᵀ·G)·L⁻¹` (`Φ`: lower triangle, diagonal halved).
    ///
    /// # Panics
    /// As [`Tensor::cholesky`]: not square matrices, or one that is not positive-definite.
    ///
    /// ```
    /// use sinew_autograd::Var;
    /// use sinew_tensor::Tensor;
    /// let a = Var::leaf(Tensor::from_vec(vec![4.0f64], &[1, 1])?);
    /// let l = a.cholesky();                        // √a
    /// assert_eq!(l.value().item(), 2.0);
    /// assert_eq!(l.sum_all().backward().get(&a).unwrap().item(), 0.25); // 1/(2√a)
    /// # Ok::<(), sinew_tensor::TensorError>(())
    /// ```
    #[track_caller]
    pub fn cholesky(&self) -> Var {
        Var::from_op("cholesky", self.value().cholesky(), &[self], |ctx| {
            let (l, g) = (ctx.output, ctx.grad);
            let n = l.dims()[l.ndim() - 1];
            let phi_mask: Vec<f64> = (0..n * n)
                .map(|i| match (i / n).cmp(&(i % n)) {
                    std::cmp::Ordering::Greater => 1.0,
                    std::cmp::Ordering::Equal => 0.5,
                    std::cmp::Ordering::Less => 0.0,
                })
                .collect();
            let phi_mask = Tensor::from_vec(phi_mask, &[n, n]).expect("n×n").to_dtype(l.value().dtype());
            let phi = &l.t().matmul(g) * &Var::constant(phi_mask);
            let l_inv = l.inv();
            let s = l_inv.t().matmul(&phi).matmul(&l_inv);
            vec![Some((&s + &s.t()).mul_scalar(0.5))]
        })
    }
}

//! Reductions and normalisations on variables: `sum`, `mean`, `max`/`min`, `var`/`std`,
//! `logsumexp`, `softmax`, `log_softmax`, `norm`. Backward rules broadcast the upstream
//! gradient back over the reduced dimensions.

use sinew_tensor::Tensor;

use crate::Var;

/// The dimensions a reduction over `dims` removes (all when empty), normalised.
fn reduced_axes(dims: &[isize], ndim: usize) -> Vec<isize> {
    if dims.is_empty() {
        (0..ndim as isize).collect()
    } else {
        dims.iter().map(|&d| if d < 0 { d + ndim as isize } else { d }).collect()
    }
}

/// The shape of a reduction over `axes` with `keepdim`.
fn kept_shape(shape: &[usize], axes: &[isize]) -> Vec<usize> {
    shape.iter().enumerate().map(|(i, &s)| if axes.contains(&(i as isize)) { 1 } else { s }).collect()
}

/// The upstream gradient of a reduction, reshaped with the reduced dims kept as size 1
/// and broadcast back to the input shape.
fn expand_back(g: &Var, input_shape: &[usize], axes: &[isize]) -> Var {
    g.reshape(&kept_shape(input_shape, axes)).broadcast_to(input_shape)
}

impl Var {
    /// Sum over `dims` (all when empty).
    #[track_caller]
    pub fn sum(&self, dims: &[isize], keepdim: bool) -> Var {
        let axes = reduced_axes(dims, self.ndim());
        Var::from_op("sum", self.value().sum(dims, keepdim), &[self], move |ctx| {
            vec![Some(expand_back(ctx.grad, ctx.inputs[0].dims(), &axes))]
        })
    }

    /// Sum of all elements.
    pub fn sum_all(&self) -> Var {
        self.sum(&[], false)
    }

    /// Mean over `dims` (all when empty).
    #[track_caller]
    pub fn mean(&self, dims: &[isize], keepdim: bool) -> Var {
        let axes = reduced_axes(dims, self.ndim());
        let count: usize = axes.iter().map(|&a| self.dims()[a as usize]).product();
        self.sum(dims, keepdim).div_scalar(count.max(1) as f64)
    }

    /// Mean of all elements.
    pub fn mean_all(&self) -> Var {
        self.mean(&[], false)
    }

    fn extreme(&self, dims: &[isize], keepdim: bool, max: bool) -> Var {
        let axes = reduced_axes(dims, self.ndim());
        let (name, value) = if max {
            ("max", self.value().max(dims, keepdim))
        } else {
            ("min", self.value().min(dims, keepdim))
        };
        Var::from_op(name, value, &[self], move |ctx| {
            let x = &ctx.inputs[0];
            // the gradient is shared evenly among tied extremes (PyTorch's amax/amin)
            let y = ctx.output.value().reshape(&kept_shape(x.dims(), &axes));
            let hits = x.value().eq(&y);
            let share = hits.div(&hits.sum(&axes, true));
            vec![Some(&expand_back(ctx.grad, x.dims(), &axes) * &Var::constant(share))]
        })
    }

    /// Largest value over `dims` (all when empty), as `torch.amax`.
    #[track_caller]
    pub fn max(&self, dims: &[isize], keepdim: bool) -> Var {
        self.extreme(dims, keepdim, true)
    }

    /// Smallest value over `dims` (all when empty), as `torch.amin`.
    #[track_caller]
    pub fn min(&self, dims: &[isize], keepdim: bool) -> Var {
        self.extreme(dims, keepdim, false)
    }

    /// Largest element.
    pub fn max_all(&self) -> Var {
        self.max(&[], false)
    }

    /// Largest values along `dim` and their indices (`torch.max(x, dim)`); the gradient
    /// goes to the selected entry.
    #[track_caller]
    pub fn max_dim(&self, dim: isize, keepdim: bool) -> (Var, Tensor) {
        self.select_along(dim, keepdim, true)
    }

    /// Smallest values along `dim` and their indices (`torch.min(x, dim)`).
    #[track_caller]
    pub fn min_dim(&self, dim: isize, keepdim: bool) -> (Var, Tensor) {
        self.select_along(dim, keepdim, false)
    }

    fn select_along(&self, dim: isize, keepdim: bool, max: bool) -> (Var, Tensor) {
        let idx = if max { self.value().argmax(dim, true) } else { self.value().argmin(dim, true) };
        let picked = self.gather(dim, &idx);
        let d = if dim < 0 { dim + self.ndim() as isize } else { dim };
        let values = if keepdim { picked } else { picked.squeeze_dim(d) };
        let idx = if keepdim { idx } else { idx.squeeze_dim(d) };
        (values, idx)
    }

    /// Index of the smallest value along `dim` (a constant `i64` tensor).
    #[track_caller]
    pub fn argmin(&self, dim: isize, keepdim: bool) -> Tensor {
        self.value().argmin(dim, keepdim)
    }

    /// Index of the largest value along `dim` (a constant `i64` tensor).
    #[track_caller]
    pub fn argmax(&self, dim: isize, keepdim: bool) -> Tensor {
        self.value().argmax(dim, keepdim)
    }

    /// Variance over `dims`, unbiased (`n - 1`) or biased (`n`).
    #[track_caller]
    pub fn var(&self, dims: &[isize], unbiased: bool, keepdim: bool) -> Var {
        let axes = reduced_axes(dims, self.ndim());
        let n: usize = axes.iter().map(|&a| self.dims()[a as usize]).product();
        let denom = if unbiased { n as f64 - 1.0 } else { n as f64 };
        Var::from_op("var", self.value().var(dims, unbiased, keepdim), &[self], move |ctx| {
            let x = &ctx.inputs[0];
            let centered = x - &x.mean(&axes, true);
            vec![Some(&expand_back(ctx.grad, x.dims(), &axes) * &(&centered * (2.0 / denom)))]
        })
    }

    /// Standard deviation over `dims`.
    #[track_caller]
    pub fn std(&self, dims: &[isize], unbiased: bool, keepdim: bool) -> Var {
        self.var(dims, unbiased, keepdim).sqrt()
    }

    /// `log Σ exp(x)` over `dims`, stable.
    #[track_caller]
    pub fn logsumexp(&self, dims: &[isize], keepdim: bool) -> Var {
        let axes = reduced_axes(dims, self.ndim());
        Var::from_op("logsumexp", self.value().logsumexp(dims, keepdim), &[self], move |ctx| {
            let x = &ctx.inputs[0];
            let y = ctx.output.reshape(&kept_shape(x.dims(), &axes));
            let p = (x - &y).exp(); // softmax over the reduced dims
            vec![Some(&expand_back(ctx.grad, x.dims(), &axes) * &p)]
        })
    }

    /// Softmax along `dim`.
    #[track_caller]
    pub fn softmax(&self, dim: isize) -> Var {
        Var::from_op("softmax", self.value().softmax(dim), &[self], move |ctx| {
            let (y, g) = (ctx.output, ctx.grad);
            let inner = (g * y).sum(&[dim], true);
            vec![Some(y * &(g - &inner))]
        })
    }

    /// `log(softmax(x))` along `dim`.
    #[track_caller]
    pub fn log_softmax(&self, dim: isize) -> Var {
        Var::from_op("log_softmax", self.value().log_softmax(dim), &[self], move |ctx| {
            let (y, g) = (ctx.output, ctx.grad);
            vec![Some(g - &(&y.exp() * &g.sum(&[dim], true)))]
        })
    }

    /// The `p`-norm over `dims` (all when empty). `p = 2` has gradient `x/‖x‖`.
    #[track_caller]
    pub fn norm(&self, p: f64, dims: &[isize], keepdim: bool) -> Var {
        if p == 2.0 {
            return self.square().sum(dims, keepdim).sqrt();
        }
        if p == 1.0 {
            return self.abs().sum(dims, keepdim);
        }
        if p == f64::INFINITY {
            return self.abs().max(dims, keepdim);
        }
        self.abs().powf(p).sum(dims, keepdim).powf(1.0 / p)
    }
}

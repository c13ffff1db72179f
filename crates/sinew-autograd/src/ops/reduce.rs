//! Reductions and normalisations on variables: `sum`, `mean`, `max`/`min`, `var`/`std`,
//! `logsumexp`, `softmax`, `log_softmax`, `norm`. Backward rules broadcast the upstream
//! gradient back over the reduced dimensions. The softmax family's first-order backward
//! is one tensor kernel; under `create_graph` it is composed from `Var` ops (the pattern
//! of `ops/recurrent.rs`), so it stays twice differentiable.

use sinew_tensor::Tensor;

use crate::Var;
use crate::mode::is_grad_enabled;

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
    ///
    /// ```
    /// use sinew_autograd::Var;
    /// use sinew_tensor::Tensor;
    /// let x = Var::leaf(Tensor::arange(0.0, 6.0, 1.0).reshape(&[2, 3]));
    /// let rows = x.sum(&[1], true);   // x.sum(1, keepdim=True)
    /// assert_eq!((rows.dims(), rows.value().to_vec::<f32>()), (&[2, 1][..], vec![3.0, 12.0]));
    /// let g = rows.sum_all().backward();
    /// assert_eq!(g.get(&x).unwrap().to_vec::<f32>(), vec![1.0; 6]);
    /// ```
    #[track_caller]
    pub fn sum(&self, dims: &[isize], keepdim: bool) -> Var {
        let axes = reduced_axes(dims, self.ndim());
        Var::from_op("sum", self.value().sum(dims, keepdim), &[self], move |ctx| {
            vec![Some(expand_back(ctx.grad, ctx.inputs[0].dims(), &axes))]
        })
    }

    /// Sum of all elements.
    ///
    /// ```
    /// use sinew_autograd::Var;
    /// use sinew_tensor::Tensor;
    /// let x = Var::leaf(Tensor::arange(1.0, 4.0, 1.0));
    /// let s = x.sum_all();   // x.sum()
    /// assert_eq!(s.item(), 6.0);
    /// assert_eq!(s.backward().get(&x).unwrap().to_vec::<f32>(), vec![1.0; 3]);
    /// ```
    pub fn sum_all(&self) -> Var {
        self.sum(&[], false)
    }

    /// Mean over `dims` (all when empty).
    ///
    /// ```
    /// use sinew_autograd::Var;
    /// use sinew_tensor::Tensor;
    /// let x = Var::leaf(Tensor::arange(0.0, 6.0, 1.0).reshape(&[2, 3]));
    /// let m = x.mean(&[0], false);   // x.mean(0)
    /// assert_eq!(m.value().to_vec::<f32>(), vec![1.5, 2.5, 3.5]);
    /// let g = m.sum_all().backward();
    /// assert_eq!(g.get(&x).unwrap().to_vec::<f32>(), vec![0.5; 6]);
    /// ```
    #[track_caller]
    pub fn mean(&self, dims: &[isize], keepdim: bool) -> Var {
        let axes = reduced_axes(dims, self.ndim());
        let count: usize = axes.iter().map(|&a| self.dims()[a as usize]).product();
        self.sum(dims, keepdim).div_scalar(count.max(1) as f64)
    }

    /// Mean of all elements.
    ///
    /// ```
    /// use sinew_autograd::Var;
    /// use sinew_tensor::Tensor;
    /// let x = Var::leaf(Tensor::arange(0.0, 4.0, 1.0));
    /// let loss = x.mean_all();   // x.mean()
    /// assert_eq!(loss.item(), 1.5);
    /// assert_eq!(loss.backward().get(&x).unwrap().to_vec::<f32>(), vec![0.25; 4]);
    /// ```
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
    ///
    /// ```
    /// use sinew_autograd::Var;
    /// use sinew_tensor::Tensor;
    /// let x = Var::leaf(Tensor::from_vec(vec![1.0f32, 4.0, 3.0, 2.0], &[2, 2])?);
    /// let m = x.max(&[1], false);   // torch.amax(x, 1)
    /// assert_eq!(m.value().to_vec::<f32>(), vec![4.0, 3.0]);
    /// let g = m.sum_all().backward();
    /// assert_eq!(g.get(&x).unwrap().to_vec::<f32>(), vec![0.0, 1.0, 1.0, 0.0]);
    /// # Ok::<(), sinew_tensor::TensorError>(())
    /// ```
    #[track_caller]
    pub fn max(&self, dims: &[isize], keepdim: bool) -> Var {
        self.extreme(dims, keepdim, true)
    }

    /// Smallest value over `dims` (all when empty), as `torch.amin`.
    ///
    /// ```
    /// use sinew_autograd::Var;
    /// use sinew_tensor::Tensor;
    /// let x = Var::leaf(Tensor::from_vec(vec![1.0f32, 4.0, 3.0, 2.0], &[2, 2])?);
    /// let m = x.min(&[0], false);   // torch.amin(x, 0)
    /// assert_eq!(m.value().to_vec::<f32>(), vec![1.0, 2.0]);
    /// let g = m.sum_all().backward();
    /// assert_eq!(g.get(&x).unwrap().to_vec::<f32>(), vec![1.0, 0.0, 0.0, 1.0]);
    /// # Ok::<(), sinew_tensor::TensorError>(())
    /// ```
    #[track_caller]
    pub fn min(&self, dims: &[isize], keepdim: bool) -> Var {
        self.extreme(dims, keepdim, false)
    }

    /// Largest element.
    ///
    /// ```
    /// use sinew_autograd::Var;
    /// use sinew_tensor::Tensor;
    /// let x = Var::leaf(Tensor::from_vec(vec![1.0f32, 7.0, 3.0], &[3])?);
    /// let m = x.max_all();   // x.max()
    /// assert_eq!(m.item(), 7.0);
    /// assert_eq!(m.backward().get(&x).unwrap().to_vec::<f32>(), vec![0.0, 1.0, 0.0]);
    /// # Ok::<(), sinew_tensor::TensorError>(())
    /// ```
    pub fn max_all(&self) -> Var {
        self.max(&[], false)
    }

    /// Largest values along `dim` and their indices (`torch.max(x, dim)`); the gradient
    /// goes to the selected entry.
    ///
    /// ```
    /// use sinew_autograd::Var;
    /// use sinew_tensor::Tensor;
    /// let x = Var::leaf(Tensor::from_vec(vec![1.0f32, 4.0, 3.0, 2.0], &[2, 2])?);
    /// let (values, indices) = x.max_dim(1, false);   // torch.max(x, 1)
    /// assert_eq!(indices.to_vec::<i64>(), vec![1, 0]);
    /// let g = values.sum_all().backward();
    /// assert_eq!(g.get(&x).unwrap().to_vec::<f32>(), vec![0.0, 1.0, 1.0, 0.0]);
    /// # Ok::<(), sinew_tensor::TensorError>(())
    /// ```
    #[track_caller]
    pub fn max_dim(&self, dim: isize, keepdim: bool) -> (Var, Tensor) {
        self.select_along(dim, keepdim, true)
    }

    /// Smallest values along `dim` and their indices (`torch.min(x, dim)`).
    ///
    /// ```
    /// use sinew_autograd::Var;
    /// use sinew_tensor::Tensor;
    /// let x = Var::leaf(Tensor::from_vec(vec![1.0f32, 4.0, 3.0, 2.0], &[2, 2])?);
    /// let (values, indices) = x.min_dim(-1, true);
    /// assert_eq!((values.dims(), indices.to_vec::<i64>()), (&[2, 1][..], vec![0, 1]));
    /// let g = values.sum_all().backward();
    /// assert_eq!(g.get(&x).unwrap().to_vec::<f32>(), vec![1.0, 0.0, 0.0, 1.0]);
    /// # Ok::<(), sinew_tensor::TensorError>(())
    /// ```
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
    ///
    /// ```
    /// use sinew_autograd::Var;
    /// use sinew_tensor::Tensor;
    /// let x = Var::leaf(Tensor::from_vec(vec![3.0f32, 1.0, 2.0], &[3])?);
    /// assert_eq!(x.argmin(0, false).to_vec::<i64>(), vec![1]);
    /// # Ok::<(), sinew_tensor::TensorError>(())
    /// ```
    #[track_caller]
    pub fn argmin(&self, dim: isize, keepdim: bool) -> Tensor {
        self.value().argmin(dim, keepdim)
    }

    /// Index of the largest value along `dim` (a constant `i64` tensor).
    ///
    /// ```
    /// use sinew_autograd::Var;
    /// use sinew_tensor::Tensor;
    /// let logits = Var::leaf(Tensor::from_vec(vec![0.1f32, 2.0, -1.0, 0.5, 0.0, 3.0], &[2, 3])?);
    /// assert_eq!(logits.argmax(-1, false).to_vec::<i64>(), vec![1, 2]);   // predicted classes
    /// # Ok::<(), sinew_tensor::TensorError>(())
    /// ```
    #[track_caller]
    pub fn argmax(&self, dim: isize, keepdim: bool) -> Tensor {
        self.value().argmax(dim, keepdim)
    }

    /// Variance over `dims`, unbiased (`n - 1`) or biased (`n`).
    ///
    /// ```
    /// use sinew_autograd::Var;
    /// use sinew_tensor::Tensor;
    /// let x = Var::leaf(Tensor::from_vec(vec![1.0f64, 2.0, 3.0, 4.0], &[4])?);
    /// let v = x.var(&[], false, false);   // torch.var(x, correction=0)
    /// assert_eq!(v.item(), 1.25);
    /// let g = v.backward();   // 2(x - mean)/n
    /// assert_eq!(g.get(&x).unwrap().to_vec::<f64>(), vec![-0.75, -0.25, 0.25, 0.75]);
    /// assert_eq!(x.var(&[0], true, false).item(), 5.0 / 3.0);   // torch.var(x, 0)
    /// # Ok::<(), sinew_tensor::TensorError>(())
    /// ```
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
    ///
    /// ```
    /// use sinew_autograd::Var;
    /// use sinew_tensor::Tensor;
    /// let x = Var::leaf(Tensor::from_vec(vec![1.0f64, 3.0], &[2])?);
    /// let s = x.std(&[], false, false);   // torch.std(x, correction=0)
    /// assert_eq!(s.item(), 1.0);
    /// assert_eq!(s.backward().get(&x).unwrap().to_vec::<f64>(), vec![-0.5, 0.5]);   // (x - mean)/(n·std)
    /// # Ok::<(), sinew_tensor::TensorError>(())
    /// ```
    #[track_caller]
    pub fn std(&self, dims: &[isize], unbiased: bool, keepdim: bool) -> Var {
        self.var(dims, unbiased, keepdim).sqrt()
    }

    /// `log Σ exp(x)` over `dims`, stable.
    ///
    /// ```
    /// use sinew_autograd::Var;
    /// use sinew_tensor::{DType, Tensor};
    /// let x = Var::leaf(Tensor::from_vec(vec![1000.0f64, 1000.0], &[2])?);
    /// let l = x.logsumexp(&[0], false);   // torch.logsumexp(x, 0): no overflow
    /// assert!((l.item() - (1000.0 + 2f64.ln())).abs() < 1e-9);
    /// let g = l.backward();   // the softmax of x
    /// assert!(g.get(&x).unwrap().allclose(&Tensor::full_dtype(&[2], 0.5, DType::F64), 1e-12, 0.0));
    /// # Ok::<(), sinew_tensor::TensorError>(())
    /// ```
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

    /// Softmax along `dim`. Its gradient, `y·(g - Σ g·y)`, is one pass per lane
    /// ([`Tensor::softmax_backward`]), or `Var` ops under `create_graph`.
    ///
    /// ```
    /// use sinew_autograd::{GradcheckOptions, Var, gradcheck};
    /// use sinew_tensor::Tensor;
    /// let x = Var::leaf(Tensor::from_vec(vec![0.0f64, 0.0], &[2])?);
    /// let p = x.softmax(-1);   // x.softmax(-1)
    /// assert_eq!(p.value().to_vec::<f64>(), vec![0.5, 0.5]);
    /// // Σ p = 1 whatever x, so its gradient is zero
    /// assert_eq!(p.sum_all().backward().get(&x).unwrap().to_vec::<f64>(), vec![0.0, 0.0]);
    /// let z = Tensor::from_vec(vec![0.3f64, -1.0, 2.0], &[3])?;
    /// gradcheck(|v| v[0].softmax(0), &[z], GradcheckOptions::default()).unwrap();
    /// # Ok::<(), sinew_tensor::TensorError>(())
    /// ```
    #[track_caller]
    pub fn softmax(&self, dim: isize) -> Var {
        Var::from_op("softmax", self.value().softmax(dim), &[self], move |ctx| {
            let (y, g) = (ctx.output, ctx.grad);
            if !is_grad_enabled() {
                // first order: one pass per lane, the bits of the formula below
                return vec![Some(Var::constant(Tensor::softmax_backward(y.value(), g.value(), dim)))];
            }
            let inner = (g * y).sum(&[dim], true);
            vec![Some(y * &(g - &inner))]
        })
    }

    /// `log(softmax(x))` along `dim`. Its gradient, `g - exp(y)·Σ g`, is one pass per
    /// lane ([`Tensor::log_softmax_backward`]), or `Var` ops under `create_graph`.
    ///
    /// ```
    /// use sinew_autograd::Var;
    /// use sinew_tensor::Tensor;
    /// // cross-entropy of the target class 0: -log_softmax(x)[0]; its gradient is p - onehot
    /// let x = Var::leaf(Tensor::from_vec(vec![0.0f64, 0.0], &[2])?);
    /// let nll = x.log_softmax(0).select(0, 0).neg();
    /// assert!((nll.item() - 2f64.ln()).abs() < 1e-15);
    /// assert_eq!(nll.backward().get(&x).unwrap().to_vec::<f64>(), vec![-0.5, 0.5]);
    /// # Ok::<(), sinew_tensor::TensorError>(())
    /// ```
    #[track_caller]
    pub fn log_softmax(&self, dim: isize) -> Var {
        Var::from_op("log_softmax", self.value().log_softmax(dim), &[self], move |ctx| {
            let (y, g) = (ctx.output, ctx.grad);
            if !is_grad_enabled() {
                return vec![Some(Var::constant(Tensor::log_softmax_backward(y.value(), g.value(), dim)))];
            }
            vec![Some(g - &(&y.exp() * &g.sum(&[dim], true)))]
        })
    }

    /// The `p`-norm over `dims` (all when empty). `p = 2` has gradient `x/‖x‖`.
    ///
    /// ```
    /// use sinew_autograd::Var;
    /// use sinew_tensor::Tensor;
    /// let x = Var::leaf(Tensor::from_vec(vec![3.0f64, -4.0], &[2])?);
    /// let n = x.norm(2.0, &[], false);   // torch.linalg.vector_norm(x)
    /// assert_eq!(n.item(), 5.0);
    /// let g = n.backward();   // x / ‖x‖
    /// assert!(g.get(&x).unwrap().allclose(&Tensor::from_vec(vec![0.6, -0.8], &[2])?, 1e-15, 0.0));
    /// # Ok::<(), sinew_tensor::TensorError>(())
    /// ```
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

//! Convolution and pooling on variables. Convolution is bilinear, so its two gradient
//! kernels are themselves recorded as differentiable ops whose backward rules are again
//! convolutions: gradients of gradients work through conv layers. A transposed
//! convolution is the input-gradient op of a convolution, run forward.

use sinew_tensor::{Conv1dOptions, Conv2dOptions, Pool2dOptions, Tensor};

use crate::Var;

impl Var {
    /// 2-D convolution: input `(N, C, H, W)`, weight `(O, C/groups, kH, kW)`, optional bias `(O)`.
    ///
    /// # Panics
    /// If shapes or options are inconsistent (the message names the shapes).
    ///
    /// ```
    /// use sinew_autograd::{GradcheckOptions, Var, gradcheck};
    /// use sinew_tensor::{Conv2dOptions, DType, Generator, Tensor};
    /// let x = Var::constant(Tensor::ones(&[1, 1, 3, 3]));
    /// let w = Var::leaf(Tensor::ones(&[1, 1, 2, 2]));
    /// let y = x.conv2d(&w, None, Conv2dOptions::default());   // F.conv2d(x, w)
    /// assert_eq!(y.value().to_vec::<f32>(), vec![4.0; 4]);
    /// // each weight tap sees 4 input pixels
    /// assert_eq!(y.sum_all().backward().get(&w).unwrap().to_vec::<f32>(), vec![4.0; 4]);
    /// let mut g = Generator::new(0);
    /// let (x, w, b) = (Tensor::randn_with(&[1, 2, 4, 4], DType::F64, &mut g), Tensor::randn_with(&[3, 2, 3, 3], DType::F64, &mut g), Tensor::randn_with(&[3], DType::F64, &mut g));
    /// let o = Conv2dOptions::default().stride(2).padding(1);
    /// gradcheck(|v| v[0].conv2d(&v[1], Some(&v[2]), o), &[x, w, b], GradcheckOptions::default()).unwrap();
    /// ```
    #[track_caller]
    pub fn conv2d(&self, weight: &Var, bias: Option<&Var>, opts: Conv2dOptions) -> Var {
        // The bias goes into the kernel (each output row starts from it, and the product
        // accumulates onto it) rather than through a broadcast add over the whole output.
        let value = self.value().conv2d(weight.value(), bias.map(Var::value), opts);
        Var::from_op("conv2d", value, &with_bias(self, weight, bias), move |ctx| {
            let (x, w, g) = (&ctx.inputs[0], &ctx.inputs[1], ctx.grad);
            let hw = [x.dims()[2], x.dims()[3]];
            let kernel = [w.dims()[2], w.dims()[3]];
            let gx = x.requires_grad().then(|| conv2d_input_grad(g, w, hw, opts));
            let gw = w.requires_grad().then(|| conv2d_weight_grad(x, g, kernel, opts));
            push_bias_grad(vec![gx, gw], ctx.inputs.get(2), g)
        })
    }

    /// 1-D convolution: input `(N, C, L)`, weight `(O, C/groups, k)`.
    ///
    /// ```
    /// use sinew_autograd::{GradcheckOptions, Var, gradcheck};
    /// use sinew_tensor::{Conv1dOptions, DType, Generator, Tensor};
    /// let x = Var::leaf(Tensor::arange(0.0, 4.0, 1.0).reshape(&[1, 1, 4]));
    /// let w = Var::constant(Tensor::ones(&[1, 1, 2]));
    /// let y = x.conv1d(&w, None, Conv1dOptions::default());   // F.conv1d(x, w)
    /// assert_eq!(y.value().to_vec::<f32>(), vec![1.0, 3.0, 5.0]);
    /// // the ends are in one window, the middle in two
    /// assert_eq!(y.sum_all().backward().get(&x).unwrap().to_vec::<f32>(), vec![1.0, 2.0, 2.0, 1.0]);
    /// let mut g = Generator::new(0);
    /// let (x, w) = (Tensor::randn_with(&[2, 2, 5], DType::F64, &mut g), Tensor::randn_with(&[3, 2, 2], DType::F64, &mut g));
    /// gradcheck(|v| v[0].conv1d(&v[1], None, Conv1dOptions::default()), &[x, w], GradcheckOptions::default()).unwrap();
    /// ```
    #[track_caller]
    pub fn conv1d(&self, weight: &Var, bias: Option<&Var>, opts: Conv1dOptions) -> Var {
        assert!(self.ndim() == 3, "conv1d: input must be 3-D (N, C, L), got shape {:?}", self.dims());
        assert!(
            weight.ndim() == 3,
            "conv1d: weight must be 3-D (O, C/groups, k), got shape {:?}",
            weight.dims()
        );
        let o2 = Conv2dOptions {
            stride: [1, opts.stride],
            padding: [0, opts.padding],
            dilation: [1, opts.dilation],
            groups: opts.groups,
            output_padding: [0, 0],
        };
        let y = self.unsqueeze(2).conv2d(&weight.unsqueeze(2), None, o2).squeeze_dim(2);
        match bias {
            Some(b) => &y + &b.reshape(&[1, b.numel(), 1]),
            None => y,
        }
    }

    /// Transposed 2-D convolution: input `(N, C_in, H, W)`, weight `(C_in, C_out/groups, kH, kW)`.
    ///
    /// ```
    /// use sinew_autograd::{GradcheckOptions, Var, gradcheck};
    /// use sinew_tensor::{Conv2dOptions, DType, Generator, Tensor};
    /// let x = Var::leaf(Tensor::ones(&[1, 1, 2, 2]));
    /// let w = Var::constant(Tensor::ones(&[1, 1, 2, 2]));
    /// let y = x.conv_transpose2d(&w, None, Conv2dOptions::default().stride(2));   // 2× upsampling
    /// assert_eq!((y.dims(), y.value().sum_all().item()), (&[1, 1, 4, 4][..], 16.0));
    /// assert_eq!(y.sum_all().backward().get(&x).unwrap().to_vec::<f32>(), vec![4.0; 4]);
    /// let mut g = Generator::new(0);
    /// let (x, w) = (Tensor::randn_with(&[1, 2, 3, 3], DType::F64, &mut g), Tensor::randn_with(&[2, 1, 3, 3], DType::F64, &mut g));
    /// let o = Conv2dOptions::default().stride(2).padding(1);
    /// gradcheck(|v| v[0].conv_transpose2d(&v[1], None, o), &[x, w], GradcheckOptions::default()).unwrap();
    /// ```
    #[track_caller]
    pub fn conv_transpose2d(&self, weight: &Var, bias: Option<&Var>, opts: Conv2dOptions) -> Var {
        // conv_transpose2d(x, w) is the input gradient of a conv2d whose output is x: the
        // tensor op computes it (its geometry checked once, its kernel run once) and it is
        // recorded as that gradient op, whose backward rules are convolutions
        let value = self.value().conv_transpose2d(weight.value(), bias.map(Var::value), opts);
        // that conv2d maps the output back onto x only when nothing is cropped
        assert!(
            (0..2).all(|a| opts.output_padding[a] < opts.stride[a]),
            "conv_transpose2d: output_padding {:?} must be smaller than the stride {:?} to be \
             differentiated (input {:?}, weight {:?}, output {:?})",
            opts.output_padding,
            opts.stride,
            self.dims(),
            weight.dims(),
            value.dims()
        );
        record_conv2d_input_grad(value, self, weight, bias, opts)
    }

    /// 2-D max pooling; returns the pooled values and the (constant) argmax indices.
    ///
    /// ```
    /// use sinew_autograd::Var;
    /// use sinew_tensor::{Pool2dOptions, Tensor};
    /// let x = Var::leaf(Tensor::arange(0.0, 16.0, 1.0).reshape(&[1, 1, 4, 4]));
    /// let (y, idx) = x.max_pool2d(Pool2dOptions::new(2));   // F.max_pool2d(x, 2, return_indices=True)
    /// assert_eq!(y.value().to_vec::<f32>(), vec![5.0, 7.0, 13.0, 15.0]);
    /// assert_eq!(idx.to_vec::<i64>(), vec![5, 7, 13, 15]);
    /// let g = y.sum_all().backward().get(&x).unwrap().to_vec::<f32>();
    /// assert_eq!(g.iter().sum::<f32>(), 4.0);
    /// assert_eq!((g[5], g[7], g[13], g[15]), (1.0, 1.0, 1.0, 1.0));
    /// ```
    #[track_caller]
    pub fn max_pool2d(&self, opts: Pool2dOptions) -> (Var, Tensor) {
        let (value, idx) = self.value().max_pool2d(opts);
        let saved = idx.clone();
        let y = Var::from_op("max_pool2d", value, &[self], move |ctx| {
            vec![Some(max_pool2d_backward(ctx.grad, &saved, ctx.inputs[0].dims(), opts))]
        });
        (y, idx)
    }

    /// 2-D average pooling (`count_include_pad` as in PyTorch, default `true`).
    ///
    /// ```
    /// use sinew_autograd::Var;
    /// use sinew_tensor::{Pool2dOptions, Tensor};
    /// let x = Var::leaf(Tensor::arange(0.0, 16.0, 1.0).reshape(&[1, 1, 4, 4]));
    /// let y = x.avg_pool2d(Pool2dOptions::new(2), true);   // F.avg_pool2d(x, 2)
    /// assert_eq!(y.value().to_vec::<f32>(), vec![2.5, 4.5, 10.5, 12.5]);
    /// assert_eq!(y.sum_all().backward().get(&x).unwrap().to_vec::<f32>(), vec![0.25; 16]);
    /// ```
    #[track_caller]
    pub fn avg_pool2d(&self, opts: Pool2dOptions, count_include_pad: bool) -> Var {
        Var::from_op("avg_pool2d", self.value().avg_pool2d(opts, count_include_pad), &[self], move |ctx| {
            let dims = ctx.inputs[0].dims().to_vec();
            vec![Some(linear_op(
                "avg_pool2d_backward",
                ctx.grad,
                move |g| Tensor::avg_pool2d_backward(g, &dims, opts, count_include_pad),
                move |gg| gg.avg_pool2d(opts, count_include_pad),
            ))]
        })
    }

    /// Adaptive average pooling to `[oh, ow]`.
    ///
    /// ```
    /// use sinew_autograd::Var;
    /// use sinew_tensor::Tensor;
    /// let x = Var::leaf(Tensor::arange(0.0, 6.0, 1.0).reshape(&[1, 1, 2, 3]));
    /// let y = x.adaptive_avg_pool2d([1, 1]);   // global average pooling
    /// assert_eq!(y.item(), 2.5);
    /// let g = y.backward();
    /// assert_eq!(g.get(&x).unwrap().to_vec::<f32>(), vec![1.0 / 6.0; 6]);
    /// ```
    #[track_caller]
    pub fn adaptive_avg_pool2d(&self, out: [usize; 2]) -> Var {
        Var::from_op("adaptive_avg_pool2d", self.value().adaptive_avg_pool2d(out), &[self], move |ctx| {
            let dims = ctx.inputs[0].dims().to_vec();
            vec![Some(linear_op(
                "adaptive_avg_pool2d_backward",
                ctx.grad,
                move |g| Tensor::adaptive_avg_pool2d_backward(g, &dims),
                move |gg| gg.adaptive_avg_pool2d(out),
            ))]
        })
    }
}

/// A linear map `f` of one variable whose adjoint is `adjoint` (on `Var`s, so it can be
/// differentiated further).
fn linear_op(
    name: &'static str,
    x: &Var,
    f: impl Fn(&Tensor) -> Tensor,
    adjoint: impl Fn(&Var) -> Var + Send + Sync + 'static,
) -> Var {
    Var::from_op(name, f(x.value()), &[x], move |ctx| vec![Some(adjoint(ctx.grad))])
}

/// The input gradient of `conv2d` as a differentiable op of `(dy, w)`.
fn conv2d_input_grad(dy: &Var, w: &Var, hw: [usize; 2], opts: Conv2dOptions) -> Var {
    let value = Tensor::conv2d_input_grad(dy.value(), w.value(), hw, opts);
    record_conv2d_input_grad(value, dy, w, None, opts)
}

/// Records `value`, the input gradient of `conv2d` computed from `(dy, w)` (plus a bias,
/// for `conv_transpose2d`), as a differentiable op of them.
fn record_conv2d_input_grad(
    value: Tensor,
    dy: &Var,
    w: &Var,
    bias: Option<&Var>,
    opts: Conv2dOptions,
) -> Var {
    Var::from_op("conv2d_input_grad", value, &with_bias(dy, w, bias), move |ctx| {
        let (dy, w, g) = (&ctx.inputs[0], &ctx.inputs[1], ctx.grad);
        // <I(dy, w), G> = <conv(G, w), dy> = <w, W(G, dy)>
        let kernel = [w.dims()[2], w.dims()[3]];
        let mut conv_opts = opts;
        conv_opts.output_padding = [0, 0];
        let g_dy = dy.requires_grad().then(|| g.conv2d(w, None, conv_opts));
        let g_w = w.requires_grad().then(|| conv2d_weight_grad(g, dy, kernel, conv_opts));
        push_bias_grad(vec![g_dy, g_w], ctx.inputs.get(2), g)
    })
}

/// The inputs of a convolution op: its two operands and the bias, if any (the kernels
/// start each output channel from it).
fn with_bias<'a>(a: &'a Var, b: &'a Var, bias: Option<&'a Var>) -> Vec<&'a Var> {
    [Some(a), Some(b), bias].into_iter().flatten().collect()
}

/// `grads` and, when the op has a bias, its gradient: the output gradient summed over
/// batch and space (a `Var` op, so higher-order gradients flow through it).
fn push_bias_grad(mut grads: Vec<Option<Var>>, bias: Option<&Var>, g: &Var) -> Vec<Option<Var>> {
    if let Some(b) = bias {
        grads.push(b.requires_grad().then(|| g.sum(&[0, 2, 3], false)));
    }
    grads
}

/// The weight gradient of `conv2d` as a differentiable op of `(x, dy)`.
fn conv2d_weight_grad(x: &Var, dy: &Var, kernel: [usize; 2], opts: Conv2dOptions) -> Var {
    let value = Tensor::conv2d_weight_grad(x.value(), dy.value(), kernel, opts);
    Var::from_op("conv2d_weight_grad", value, &[x, dy], move |ctx| {
        let (x, dy, g) = (&ctx.inputs[0], &ctx.inputs[1], ctx.grad);
        // <W(x, dy), G> = <conv(x, G), dy> = <x, I(dy, G)>
        let hw = [x.dims()[2], x.dims()[3]];
        let g_x = x.requires_grad().then(|| conv2d_input_grad(dy, g, hw, opts));
        let g_dy = dy.requires_grad().then(|| x.conv2d(g, None, opts));
        vec![g_x, g_dy]
    })
}

/// The max-pool gradient (a scatter to the argmax positions) as a differentiable op of
/// `dy`; its adjoint gathers at the same positions.
fn max_pool2d_backward(dy: &Var, idx: &Tensor, input_dims: &[usize], opts: Pool2dOptions) -> Var {
    let value = Tensor::max_pool2d_backward(dy.value(), idx, input_dims, opts);
    let idx = idx.clone();
    Var::from_op("max_pool2d_backward", value, &[dy], move |ctx| {
        let g = ctx.grad; // (N, C, H, W)
        let out_dims = ctx.inputs[0].dims().to_vec();
        let flat_idx = idx.flatten(2, -1).clamp(Some(0.0), None);
        let picked = g.flatten(2, -1).gather(2, &flat_idx).reshape(&out_dims);
        // windows without any input element (index -1) received nothing
        let valid = Var::constant(idx.ge_scalar(0.0).to_dtype(g.dtype()));
        vec![Some(&picked * &valid)]
    })
}

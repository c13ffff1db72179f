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
    #[track_caller]
    pub fn conv2d(&self, weight: &Var, bias: Option<&Var>, opts: Conv2dOptions) -> Var {
        let y = Var::from_op(
            "conv2d",
            self.value().conv2d(weight.value(), None, opts),
            &[self, weight],
            move |ctx| {
                let (x, w, g) = (&ctx.inputs[0], &ctx.inputs[1], ctx.grad);
                let hw = [x.dims()[2], x.dims()[3]];
                let kernel = [w.dims()[2], w.dims()[3]];
                let gx = x.requires_grad().then(|| conv2d_input_grad(g, w, hw, opts));
                let gw = w.requires_grad().then(|| conv2d_weight_grad(x, g, kernel, opts));
                vec![gx, gw]
            },
        );
        match bias {
            Some(b) => &y + &b.reshape(&[1, b.numel(), 1, 1]),
            None => y,
        }
    }

    /// 1-D convolution: input `(N, C, L)`, weight `(O, C/groups, k)`.
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
    #[track_caller]
    pub fn conv_transpose2d(&self, weight: &Var, bias: Option<&Var>, opts: Conv2dOptions) -> Var {
        let value = self.value().conv_transpose2d(weight.value(), None, opts);
        let out_hw = [value.dims()[2], value.dims()[3]];
        // conv_transpose2d(x, w) is the input gradient of a conv2d whose output is x
        let y = conv2d_input_grad(self, weight, out_hw, opts);
        debug_assert_eq!(y.dims(), value.dims());
        match bias {
            Some(b) => &y + &b.reshape(&[1, b.numel(), 1, 1]),
            None => y,
        }
    }

    /// 2-D max pooling; returns the pooled values and the (constant) argmax indices.
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
    Var::from_op("conv2d_input_grad", value, &[dy, w], move |ctx| {
        let (dy, w, g) = (&ctx.inputs[0], &ctx.inputs[1], ctx.grad);
        // <I(dy, w), G> = <conv(G, w), dy> = <w, W(G, dy)>
        let kernel = [w.dims()[2], w.dims()[3]];
        let mut conv_opts = opts;
        conv_opts.output_padding = [0, 0];
        let g_dy = dy.requires_grad().then(|| g.conv2d(w, None, conv_opts));
        let g_w = w.requires_grad().then(|| conv2d_weight_grad(g, dy, kernel, conv_opts));
        vec![g_dy, g_w]
    })
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

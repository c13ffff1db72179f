//! Convolution on tensors: `conv1d`, `conv2d`, `conv_transpose2d`, and the gradient
//! kernels autograd needs (`conv2d_input_grad`, `conv2d_weight_grad`, and the transposed
//! convolution's). Each op computes its geometry from the shapes alone (no tensor is built
//! to carry a shape), validates it once, here, before a kernel runs, and hands the
//! [`Checked`] geometry to the kernel; the arithmetic lives in [`crate::kernels::conv`]
//! (im2col + faer GEMM).

use crate::dtype::{DType, Float};
use crate::error::{Result, TensorError, or_panic};
use crate::kernels::conv::{self as k, Checked, Conv2dGeometry, ConvTranspose2dGeometry};
use crate::tensor::{StorageElement, Tensor, with_float};

/// Stride, padding, dilation and groups of a 2-D convolution (`[height, width]` pairs).
/// The default is PyTorch's: stride 1, padding 0, dilation 1, one group.
///
/// ```
/// use sinew_tensor::Conv2dOptions;
/// let o = Conv2dOptions::default().stride(2).padding(1);
/// assert_eq!((o.stride, o.padding, o.dilation, o.groups), ([2, 2], [1, 1], [1, 1], 1));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Conv2dOptions {
    /// Step between windows.
    pub stride: [usize; 2],
    /// Zeros added on each side.
    pub padding: [usize; 2],
    /// Spacing between kernel taps.
    pub dilation: [usize; 2],
    /// Channel groups.
    pub groups: usize,
    /// Extra output size on one side (transposed convolution only; must stay below the
    /// stride or the dilation).
    pub output_padding: [usize; 2],
}

impl Default for Conv2dOptions {
    fn default() -> Self {
        Conv2dOptions { stride: [1, 1], padding: [0, 0], dilation: [1, 1], groups: 1, output_padding: [0, 0] }
    }
}

impl Conv2dOptions {
    /// The same stride on both axes.
    ///
    /// ```
    /// use sinew_tensor::Conv2dOptions;
    /// let o = Conv2dOptions::default().stride(2);   // nn.Conv2d(..., stride=2)
    /// assert_eq!(o.stride, [2, 2]);
    /// let rect = Conv2dOptions { stride: [1, 2], ..Conv2dOptions::default() };   // stride=(1, 2)
    /// assert_eq!(rect.stride, [1, 2]);
    /// ```
    pub fn stride(mut self, s: usize) -> Self {
        self.stride = [s, s];
        self
    }
    /// The same padding on both axes.
    ///
    /// ```
    /// use sinew_tensor::{Conv2dOptions, Tensor};
    /// let o = Conv2dOptions::default().padding(1);   // padding=1 keeps a 3×3 conv's size
    /// assert_eq!(o.padding, [1, 1]);
    /// let y = Tensor::ones(&[1, 1, 5, 5]).conv2d(&Tensor::ones(&[1, 1, 3, 3]), None, o);
    /// assert_eq!(y.dims(), &[1, 1, 5, 5]);
    /// assert_eq!(y.to_vec::<f32>()[0], 4.0);   // a corner sees 2×2 of the image
    /// ```
    pub fn padding(mut self, p: usize) -> Self {
        self.padding = [p, p];
        self
    }
    /// The same dilation on both axes.
    ///
    /// ```
    /// use sinew_tensor::{Conv2dOptions, Tensor};
    /// let o = Conv2dOptions::default().dilation(2);   // a 3×3 kernel spanning 5×5
    /// let y = Tensor::ones(&[1, 1, 5, 5]).conv2d(&Tensor::ones(&[1, 1, 3, 3]), None, o);
    /// assert_eq!(y.dims(), &[1, 1, 1, 1]);
    /// assert_eq!(y.item(), 9.0);
    /// ```
    pub fn dilation(mut self, d: usize) -> Self {
        self.dilation = [d, d];
        self
    }
    /// Channel groups.
    ///
    /// ```
    /// use sinew_tensor::{Conv2dOptions, Tensor};
    /// // depthwise: 2 channels, 2 groups, one 1×1 filter per channel
    /// let x = Tensor::arange(1.0, 3.0, 1.0).reshape(&[1, 2, 1, 1]);
    /// let w = Tensor::from_vec(vec![10.0f32, 100.0], &[2, 1, 1, 1])?;
    /// let y = x.conv2d(&w, None, Conv2dOptions::default().groups(2));
    /// assert_eq!(y.to_vec::<f32>(), vec![10.0, 200.0]);
    /// # Ok::<(), sinew_tensor::TensorError>(())
    /// ```
    pub fn groups(mut self, g: usize) -> Self {
        self.groups = g;
        self
    }
    /// The same output padding on both axes (transposed convolution).
    ///
    /// ```
    /// use sinew_tensor::{Conv2dOptions, Tensor};
    /// let (x, w) = (Tensor::ones(&[1, 1, 3, 3]), Tensor::ones(&[1, 1, 3, 3]));
    /// let o = Conv2dOptions::default().stride(2).padding(1);
    /// assert_eq!(x.conv_transpose2d(&w, None, o).dims(), &[1, 1, 5, 5]);
    /// assert_eq!(x.conv_transpose2d(&w, None, o.output_padding(1)).dims(), &[1, 1, 6, 6]);
    /// ```
    pub fn output_padding(mut self, p: usize) -> Self {
        self.output_padding = [p, p];
        self
    }
    /// The 1-D options as 2-D ones over a height-1 image.
    fn lift_1d(o: Conv1dOptions) -> Self {
        Conv2dOptions {
            stride: [1, o.stride],
            padding: [0, o.padding],
            dilation: [1, o.dilation],
            groups: o.groups,
            output_padding: [0, 0],
        }
    }
}

/// Stride, padding, dilation and groups of a 1-D convolution (PyTorch's defaults:
/// 1, 0, 1, 1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Conv1dOptions {
    /// Step between windows.
    pub stride: usize,
    /// Zeros added on each side.
    pub padding: usize,
    /// Spacing between kernel taps.
    pub dilation: usize,
    /// Channel groups.
    pub groups: usize,
}

impl Default for Conv1dOptions {
    fn default() -> Self {
        Conv1dOptions { stride: 1, padding: 0, dilation: 1, groups: 1 }
    }
}

fn four_d(op: &'static str, what: &str, dims: &[usize]) -> Result<[usize; 4]> {
    <[usize; 4]>::try_from(dims).map_err(|_| TensorError::InvalidArgument {
        op,
        msg: format!("{what} must be 4-D (N, C, H, W), got shape {dims:?}"),
    })
}

fn float_pair(op: &'static str, a: &Tensor, b: &Tensor) -> Result<DType> {
    if a.dtype() != b.dtype() || !a.dtype().is_float() {
        return Err(TensorError::InvalidArgument {
            op,
            msg: format!("operands must share a float dtype, got {} and {}", a.dtype(), b.dtype()),
        });
    }
    Ok(a.dtype())
}

/// The geometry of a convolution of an input of shape `x` with a weight of shape `w`,
/// validated (from shapes alone: the gradient ops need no tensor of the shape they check).
fn conv_geometry(
    op: &'static str,
    x: &[usize],
    w: &[usize],
    o: &Conv2dOptions,
) -> Result<Checked<Conv2dGeometry>> {
    let [n, c, h, wd] = four_d(op, "input", x)?;
    let [oc, icg, kh, kw] = four_d(op, "weight", w)?;
    if o.groups == 0 || icg.checked_mul(o.groups) != Some(c) {
        return Err(TensorError::ShapeMismatch {
            op,
            lhs: x.to_vec(),
            rhs: w.to_vec(),
            detail: format!(": input has {c} channels, weight expects {icg} per group × {} groups", o.groups),
        });
    }
    let g = Conv2dGeometry {
        batch: n,
        in_channels: c,
        in_h: h,
        in_w: wd,
        out_channels: oc,
        kernel: [kh, kw],
        stride: o.stride,
        padding: o.padding,
        dilation: o.dilation,
        groups: o.groups,
    };
    g.validate()
        .map_err(|msg| TensorError::InvalidArgument { op, msg: format!("{msg} (input {x:?}, weight {w:?})") })
}

fn check_bias(op: &'static str, bias: Option<&Tensor>, channels: usize, dtype: DType) -> Result<()> {
    if let Some(b) = bias
        && (b.dims() != [channels] || b.dtype() != dtype)
    {
        return Err(TensorError::InvalidArgument {
            op,
            msg: format!(
                "bias must be a {dtype} vector of {channels}, got {} of shape {:?}",
                b.dtype(),
                b.dims()
            ),
        });
    }
    Ok(())
}

fn run<T: Float + StorageElement>(
    x: &Tensor,
    w: &Tensor,
    bias: Option<&Tensor>,
    f: impl FnOnce(&[T], &[T], Option<&[T]>) -> Vec<T>,
    shape: &[usize],
) -> Tensor {
    let (xs, ws) = (x.contiguous_slice::<T>(), w.contiguous_slice::<T>());
    let bs = bias.map(|b| b.contiguous_slice::<T>());
    Tensor::from_parts(f(&xs, &ws, bs.as_deref()), shape)
}

impl Tensor {
    /// [`Tensor::conv2d`] that returns an error instead of panicking.
    ///
    /// # Errors
    /// If shapes, dtypes or options are inconsistent; the message names them.
    ///
    /// ```
    /// use sinew_tensor::{Conv2dOptions, Tensor};
    /// let x = Tensor::ones(&[1, 3, 8, 8]);
    /// let w = Tensor::ones(&[4, 3, 3, 3]);
    /// let b = Tensor::full(&[4], 0.5);
    /// let y = x.try_conv2d(&w, Some(&b), Conv2dOptions::default())?;
    /// assert_eq!(y.dims(), &[1, 4, 6, 6]);
    /// assert_eq!(y.to_vec::<f32>()[0], 27.5);   // 3 channels × 9 taps + bias
    /// assert!(x.try_conv2d(&Tensor::ones(&[4, 2, 3, 3]), None, Conv2dOptions::default()).is_err());
    /// # Ok::<(), sinew_tensor::TensorError>(())
    /// ```
    pub fn try_conv2d(&self, weight: &Tensor, bias: Option<&Tensor>, opts: Conv2dOptions) -> Result<Tensor> {
        let dt = float_pair("conv2d", self, weight)?;
        let g = conv_geometry("conv2d", self.dims(), weight.dims(), &opts)?;
        check_bias("conv2d", bias, g.out_channels, dt)?;
        let shape = [g.batch, g.out_channels, g.out_h(), g.out_w()];
        Ok(with_float!(dt, "conv2d", |T| run::<T>(
            self,
            weight,
            bias,
            |x, w, b| k::conv2d_forward(x, w, b, &g),
            &shape
        )))
    }

    /// 2-D convolution (cross-correlation, as in PyTorch) of an `(N, C, H, W)` input with an
    /// `(O, C/groups, kH, kW)` weight and optional `(O)` bias.
    ///
    /// # Panics
    /// If shapes, dtypes or options are inconsistent; the message names the shapes.
    ///
    /// ```
    /// use sinew_tensor::{Conv2dOptions, Tensor};
    /// let x = Tensor::ones(&[1, 1, 4, 4]);
    /// let w = Tensor::ones(&[2, 1, 3, 3]);
    /// let y = x.conv2d(&w, None, Conv2dOptions::default().padding(1));
    /// assert_eq!(y.dims(), &[1, 2, 4, 4]);
    /// assert_eq!(y.to_vec::<f32>()[5], 9.0); // an interior pixel sees the whole kernel
    /// ```
    #[track_caller]
    pub fn conv2d(&self, weight: &Tensor, bias: Option<&Tensor>, opts: Conv2dOptions) -> Tensor {
        or_panic(self.try_conv2d(weight, bias, opts))
    }

    /// 1-D convolution of an `(N, C, L)` input with an `(O, C/groups, k)` weight.
    ///
    /// # Panics
    /// If shapes, dtypes or options are inconsistent.
    ///
    /// ```
    /// use sinew_tensor::{Conv1dOptions, Tensor};
    /// let x = Tensor::arange(0.0, 5.0, 1.0).reshape(&[1, 1, 5]);
    /// let w = Tensor::ones(&[1, 1, 2]);
    /// let y = x.conv1d(&w, None, Conv1dOptions::default());
    /// assert_eq!(y.to_vec::<f32>(), vec![1.0, 3.0, 5.0, 7.0]);
    /// ```
    #[track_caller]
    pub fn conv1d(&self, weight: &Tensor, bias: Option<&Tensor>, opts: Conv1dOptions) -> Tensor {
        let (x4, w4) = lift_1d("conv1d", self, weight);
        let y = x4.conv2d(&w4, bias, Conv2dOptions::lift_1d(opts));
        y.squeeze_dim(2)
    }

    /// Gradient of [`Tensor::conv2d`] with respect to its input, given the output gradient
    /// `dy` `(N, O, Ho, Wo)`, the weight and the input's spatial size `[H, W]`. This is a
    /// transposed convolution of `dy`.
    ///
    /// # Panics
    /// If shapes are inconsistent.
    ///
    /// ```
    /// use sinew_tensor::{Conv2dOptions, DType, Generator, Tensor};
    /// let mut g = Generator::new(0);
    /// let x = Tensor::randn_with(&[2, 3, 6, 5], DType::F64, &mut g);
    /// let w = Tensor::randn_with(&[4, 3, 3, 3], DType::F64, &mut g);
    /// let o = Conv2dOptions::default().stride(2).padding(1);
    /// let dy = Tensor::randn_with(x.conv2d(&w, None, o).dims(), DType::F64, &mut g);
    /// let dx = Tensor::conv2d_input_grad(&dy, &w, [6, 5], o);
    /// // the adjoint identity <conv2d(x), dy> = <x, dx>
    /// let lhs = x.conv2d(&w, None, o).mul(&dy).sum_all().item();
    /// assert_eq!(dx.dims(), x.dims());
    /// assert!((lhs - x.mul(&dx).sum_all().item()).abs() < 1e-9);
    /// ```
    #[track_caller]
    pub fn conv2d_input_grad(
        dy: &Tensor,
        weight: &Tensor,
        input_hw: [usize; 2],
        opts: Conv2dOptions,
    ) -> Tensor {
        const OP: &str = "conv2d_input_grad";
        let [n, ..] = or_panic(four_d(OP, "dy", dy.dims()));
        let [_, icg, ..] = or_panic(four_d(OP, "weight", weight.dims()));
        let channels = icg
            .checked_mul(opts.groups)
            .unwrap_or_else(|| panic!("{OP}: {icg} channels per group × {} groups overflows", opts.groups));
        let shape = [n, channels, input_hw[0], input_hw[1]];
        let g = or_panic(conv_geometry(OP, &shape, weight.dims(), &opts));
        assert!(
            dy.dims() == [n, g.out_channels, g.out_h(), g.out_w()],
            "{OP}: dy has shape {:?}, the convolution of a {shape:?} input gives {:?}",
            dy.dims(),
            [n, g.out_channels, g.out_h(), g.out_w()]
        );
        with_float!(dy.dtype(), "conv2d_input_grad", |T| run::<T>(
            dy,
            weight,
            None,
            |d, w, _| k::conv2d_input_grad(d, w, &g),
            &shape
        ))
    }

    /// Gradient of [`Tensor::conv2d`] with respect to its weight, given the input and the
    /// output gradient `dy`; `kernel` is the weight's `[kH, kW]`.
    ///
    /// # Panics
    /// If shapes are inconsistent.
    ///
    /// ```
    /// use sinew_tensor::{Conv2dOptions, DType, Generator, Tensor};
    /// let mut g = Generator::new(0);
    /// let x = Tensor::randn_with(&[2, 3, 6, 5], DType::F64, &mut g);
    /// let w = Tensor::randn_with(&[4, 3, 3, 3], DType::F64, &mut g);
    /// let o = Conv2dOptions::default().padding(1);
    /// let dy = Tensor::randn_with(x.conv2d(&w, None, o).dims(), DType::F64, &mut g);
    /// let dw = Tensor::conv2d_weight_grad(&x, &dy, [3, 3], o);
    /// // the adjoint identity <conv2d(x, w), dy> = <w, dw>
    /// let lhs = x.conv2d(&w, None, o).mul(&dy).sum_all().item();
    /// assert_eq!(dw.dims(), w.dims());
    /// assert!((lhs - w.mul(&dw).sum_all().item()).abs() < 1e-9);
    /// ```
    #[track_caller]
    pub fn conv2d_weight_grad(
        input: &Tensor,
        dy: &Tensor,
        kernel: [usize; 2],
        opts: Conv2dOptions,
    ) -> Tensor {
        let [_, c, _, _] = or_panic(four_d("conv2d_weight_grad", "input", input.dims()));
        let [_, o, _, _] = or_panic(four_d("conv2d_weight_grad", "dy", dy.dims()));
        assert!(
            opts.groups > 0 && c % opts.groups == 0,
            "conv2d_weight_grad: {c} channels do not split into {} groups",
            opts.groups
        );
        let shape = [o, c / opts.groups, kernel[0], kernel[1]];
        let g = or_panic(conv_geometry("conv2d_weight_grad", input.dims(), &shape, &opts));
        assert!(
            dy.dims() == [g.batch, o, g.out_h(), g.out_w()],
            "conv2d_weight_grad: dy has shape {:?}, expected {:?}",
            dy.dims(),
            [g.batch, o, g.out_h(), g.out_w()]
        );
        with_float!(dy.dtype(), "conv2d_weight_grad", |T| run::<T>(
            input,
            dy,
            None,
            |x, d, _| k::conv2d_weight_grad(x, d, &g),
            &shape
        ))
    }

    /// [`Tensor::conv_transpose2d`] that returns an error instead of panicking.
    ///
    /// # Errors
    /// If shapes, dtypes or options are inconsistent.
    ///
    /// ```
    /// use sinew_tensor::{Conv2dOptions, Tensor};
    /// let x = Tensor::ones(&[1, 2, 3, 3]);
    /// let w = Tensor::ones(&[2, 1, 2, 2]);
    /// let y = x.try_conv_transpose2d(&w, None, Conv2dOptions::default().stride(2))?;
    /// assert_eq!(y.dims(), &[1, 1, 6, 6]);
    /// assert_eq!(y.sum_all().item(), 72.0);   // each of 18 inputs spreads over 4 outputs
    /// assert!(x.try_conv_transpose2d(&Tensor::ones(&[3, 1, 2, 2]), None, Conv2dOptions::default()).is_err());
    /// # Ok::<(), sinew_tensor::TensorError>(())
    /// ```
    pub fn try_conv_transpose2d(
        &self,
        weight: &Tensor,
        bias: Option<&Tensor>,
        opts: Conv2dOptions,
    ) -> Result<Tensor> {
        let dt = float_pair("conv_transpose2d", self, weight)?;
        let g = transpose_geometry(self.dims(), weight.dims(), &opts)?;
        check_bias("conv_transpose2d", bias, g.out_channels, dt)?;
        let shape = [g.batch, g.out_channels, g.out_h(), g.out_w()];
        Ok(with_float!(dt, "conv_transpose2d", |T| run::<T>(
            self,
            weight,
            bias,
            |x, w, b| k::conv_transpose2d_forward(x, w, b, &g),
            &shape
        )))
    }

    /// Transposed 2-D convolution ("deconvolution") of an `(N, C_in, H, W)` input with a
    /// `(C_in, C_out/groups, kH, kW)` weight, as `F.conv_transpose2d`; uses
    /// `opts.output_padding`.
    ///
    /// # Panics
    /// If shapes, dtypes or options are inconsistent.
    ///
    /// ```
    /// use sinew_tensor::{Conv2dOptions, Tensor};
    /// let x = Tensor::ones(&[1, 4, 7, 7]);
    /// let w = Tensor::ones(&[4, 2, 3, 3]);
    /// let y = x.conv_transpose2d(&w, None, Conv2dOptions::default().stride(2).padding(1).output_padding(1));
    /// assert_eq!(y.dims(), &[1, 2, 14, 14]);
    /// ```
    #[track_caller]
    pub fn conv_transpose2d(&self, weight: &Tensor, bias: Option<&Tensor>, opts: Conv2dOptions) -> Tensor {
        or_panic(self.try_conv_transpose2d(weight, bias, opts))
    }

    /// Gradient of [`Tensor::conv_transpose2d`] with respect to its input (a convolution of `dy`).
    ///
    /// ```
    /// use sinew_tensor::{Conv2dOptions, DType, Generator, Tensor};
    /// let mut g = Generator::new(0);
    /// let x = Tensor::randn_with(&[1, 3, 4, 4], DType::F64, &mut g);
    /// let w = Tensor::randn_with(&[3, 2, 3, 3], DType::F64, &mut g);
    /// let o = Conv2dOptions::default().stride(2).padding(1).output_padding(1);
    /// let y = x.conv_transpose2d(&w, None, o);
    /// let dy = Tensor::randn_with(y.dims(), DType::F64, &mut g);
    /// let dx = Tensor::conv_transpose2d_input_grad(&dy, &w, [4, 4], o);
    /// assert_eq!(dx.dims(), x.dims());
    /// assert!((y.mul(&dy).sum_all().item() - x.mul(&dx).sum_all().item()).abs() < 1e-9);
    /// ```
    #[track_caller]
    pub fn conv_transpose2d_input_grad(
        dy: &Tensor,
        weight: &Tensor,
        input_hw: [usize; 2],
        opts: Conv2dOptions,
    ) -> Tensor {
        let [n, ..] = or_panic(four_d("conv_transpose2d_input_grad", "dy", dy.dims()));
        let [cin, ..] = or_panic(four_d("conv_transpose2d_input_grad", "weight", weight.dims()));
        let shape = [n, cin, input_hw[0], input_hw[1]];
        let g = or_panic(transpose_geometry(&shape, weight.dims(), &opts));
        assert!(
            dy.dims() == [n, g.out_channels, g.out_h(), g.out_w()],
            "conv_transpose2d_input_grad: dy has shape {:?}, expected {:?}",
            dy.dims(),
            [n, g.out_channels, g.out_h(), g.out_w()]
        );
        with_float!(dy.dtype(), "conv_transpose2d_input_grad", |T| run::<T>(
            dy,
            weight,
            None,
            |d, w, _| k::conv_transpose2d_input_grad(d, w, &g),
            &shape
        ))
    }

    /// Gradient of [`Tensor::conv_transpose2d`] with respect to its weight
    /// `(C_in, C_out/groups, kH, kW)`; `kernel` is `[kH, kW]`.
    ///
    /// ```
    /// use sinew_tensor::{Conv2dOptions, DType, Generator, Tensor};
    /// let mut g = Generator::new(0);
    /// let x = Tensor::randn_with(&[2, 3, 4, 4], DType::F64, &mut g);
    /// let w = Tensor::randn_with(&[3, 2, 3, 3], DType::F64, &mut g);
    /// let o = Conv2dOptions::default().stride(2);
    /// let y = x.conv_transpose2d(&w, None, o);
    /// let dy = Tensor::randn_with(y.dims(), DType::F64, &mut g);
    /// let dw = Tensor::conv_transpose2d_weight_grad(&x, &dy, [3, 3], o);
    /// assert_eq!(dw.dims(), w.dims());
    /// assert!((y.mul(&dy).sum_all().item() - w.mul(&dw).sum_all().item()).abs() < 1e-9);
    /// ```
    #[track_caller]
    pub fn conv_transpose2d_weight_grad(
        input: &Tensor,
        dy: &Tensor,
        kernel: [usize; 2],
        opts: Conv2dOptions,
    ) -> Tensor {
        let [_, cin, _, _] = or_panic(four_d("conv_transpose2d_weight_grad", "input", input.dims()));
        let [_, cout, _, _] = or_panic(four_d("conv_transpose2d_weight_grad", "dy", dy.dims()));
        assert!(
            opts.groups > 0 && cout % opts.groups == 0,
            "conv_transpose2d_weight_grad: {cout} channels do not split into {} groups",
            opts.groups
        );
        let shape = [cin, cout / opts.groups, kernel[0], kernel[1]];
        let g = or_panic(transpose_geometry(input.dims(), &shape, &opts));
        assert!(
            dy.dims() == [g.batch, cout, g.out_h(), g.out_w()],
            "conv_transpose2d_weight_grad: dy has shape {:?}, expected {:?}",
            dy.dims(),
            [g.batch, cout, g.out_h(), g.out_w()]
        );
        with_float!(dy.dtype(), "conv_transpose2d_weight_grad", |T| run::<T>(
            input,
            dy,
            None,
            |x, d, _| k::conv_transpose2d_weight_grad(x, d, &g),
            &shape
        ))
    }
}

#[track_caller]
fn lift_1d(op: &'static str, x: &Tensor, w: &Tensor) -> (Tensor, Tensor) {
    assert!(x.ndim() == 3, "{op}: input must be 3-D (N, C, L), got shape {:?}", x.dims());
    assert!(w.ndim() == 3, "{op}: weight must be 3-D (O, C/groups, k), got shape {:?}", w.dims());
    (x.unsqueeze(2), w.unsqueeze(2))
}

/// The geometry of a transposed convolution, validated from the shapes alone.
fn transpose_geometry(
    x: &[usize],
    w: &[usize],
    o: &Conv2dOptions,
) -> Result<Checked<ConvTranspose2dGeometry>> {
    const OP: &str = "conv_transpose2d";
    let [n, c, h, wd] = four_d(OP, "input", x)?;
    let [wc, ocg, kh, kw] = four_d(OP, "weight", w)?;
    let Some(out_channels) = ocg.checked_mul(o.groups) else {
        return Err(TensorError::InvalidArgument {
            op: OP,
            msg: format!("{ocg} output channels per group × {} groups overflows (weight {w:?})", o.groups),
        });
    };
    if wc != c {
        return Err(TensorError::ShapeMismatch {
            op: OP,
            lhs: x.to_vec(),
            rhs: w.to_vec(),
            detail: format!(": input has {c} channels, weight expects {wc}"),
        });
    }
    let g = ConvTranspose2dGeometry {
        batch: n,
        in_channels: c,
        in_h: h,
        in_w: wd,
        out_channels,
        kernel: [kh, kw],
        stride: o.stride,
        padding: o.padding,
        output_padding: o.output_padding,
        dilation: o.dilation,
        groups: o.groups,
    };
    g.validate().map_err(|msg| TensorError::InvalidArgument {
        op: OP,
        msg: format!("{msg} (input {x:?}, weight {w:?})"),
    })
}

#[cfg(test)]
mod tests {
    use crate::{Conv1dOptions, Conv2dOptions, DType, Generator, Tensor};

    #[test]
    fn channel_mismatch_names_shapes() {
        let e = Tensor::zeros(&[1, 3, 5, 5]).try_conv2d(
            &Tensor::zeros(&[4, 2, 3, 3]),
            None,
            Conv2dOptions::default(),
        );
        let msg = e.unwrap_err().to_string();
        assert!(msg.contains("[1, 3, 5, 5]") && msg.contains("[4, 2, 3, 3]"), "{msg}");
    }

    #[test]
    #[should_panic(expected = "conv2d: input must be 4-D")]
    fn wrong_rank_panics() {
        Tensor::zeros(&[3, 5, 5]).conv2d(&Tensor::zeros(&[4, 3, 3, 3]), None, Conv2dOptions::default());
    }

    #[test]
    fn gradient_kernels_are_adjoint_on_tensors() {
        let mut g = Generator::new(0);
        let o = Conv2dOptions::default().stride(2).padding(1).groups(2);
        let x = Tensor::randn_with(&[2, 4, 7, 6], DType::F64, &mut g);
        let w = Tensor::randn_with(&[6, 2, 3, 3], DType::F64, &mut g);
        let y = x.conv2d(&w, None, o);
        let dy = Tensor::randn_with(y.dims(), DType::F64, &mut g);
        // <conv(x, w), dy> = <x, dX> = <w, dW>
        let lhs = y.mul(&dy).sum_all().item();
        let dx = Tensor::conv2d_input_grad(&dy, &w, [7, 6], o);
        let dw = Tensor::conv2d_weight_grad(&x, &dy, [3, 3], o);
        assert!((lhs - x.mul(&dx).sum_all().item()).abs() < 1e-9);
        assert!((lhs - w.mul(&dw).sum_all().item()).abs() < 1e-9);
    }

    #[test]
    fn conv1d_matches_conv2d_on_a_row() {
        let mut g = Generator::new(1);
        let x = Tensor::randn_with(&[2, 3, 9], DType::F64, &mut g);
        let w = Tensor::randn_with(&[4, 3, 2], DType::F64, &mut g);
        let o = Conv1dOptions { stride: 2, padding: 1, dilation: 2, groups: 1 };
        let y = x.conv1d(&w, None, o);
        let y2 = x.unsqueeze(2).conv2d(&w.unsqueeze(2), None, Conv2dOptions::lift_1d(o)).squeeze_dim(2);
        assert!(y.allclose(&y2, 0.0, 0.0));
        assert_eq!(y.dims(), &[2, 4, 5]); // (9 + 2·1 − 2·1 − 1)/2 + 1
    }

    /// Every op validates its geometry once, up front: the kernels it calls do not check it
    /// again (the transposed convolution's plan, a convolution's, is not checked either).
    #[test]
    fn each_op_checks_its_geometry_once() {
        use crate::kernels::conv::tests::checks_in;
        let mut g = Generator::new(2);
        let o = Conv2dOptions::default().stride(2).padding(1);
        let x = Tensor::randn_with(&[2, 4, 7, 6], DType::F64, &mut g);
        let w = Tensor::randn_with(&[6, 2, 3, 3], DType::F64, &mut g);
        let b = Tensor::randn_with(&[6], DType::F64, &mut g);
        let o2 = o.groups(2);
        let (y, n) = checks_in(|| x.conv2d(&w, Some(&b), o2));
        assert_eq!(n, 1, "conv2d");
        let (_, n) = checks_in(|| Tensor::conv2d_input_grad(&y, &w, [7, 6], o2));
        assert_eq!(n, 1, "conv2d_input_grad");
        let (_, n) = checks_in(|| Tensor::conv2d_weight_grad(&x, &y, [3, 3], o2));
        assert_eq!(n, 1, "conv2d_weight_grad");
        let o1 = Conv1dOptions { groups: 2, ..Conv1dOptions::default() };
        let (_, n) = checks_in(|| x.select(2, 0).conv1d(&w.select(2, 0), None, o1));
        assert_eq!(n, 1, "conv1d");

        let wt = Tensor::randn_with(&[4, 3, 3, 3], DType::F64, &mut g);
        let bt = Tensor::randn_with(&[3], DType::F64, &mut g);
        let ot = o.output_padding(1);
        let (yt, n) = checks_in(|| x.conv_transpose2d(&wt, Some(&bt), ot));
        assert_eq!((yt.dims(), n), (&[2, 3, 14, 12][..], 1), "conv_transpose2d");
        let (_, n) = checks_in(|| Tensor::conv_transpose2d_input_grad(&yt, &wt, [7, 6], ot));
        assert_eq!(n, 1, "conv_transpose2d_input_grad");
        let (_, n) = checks_in(|| Tensor::conv_transpose2d_weight_grad(&x, &yt, [3, 3], ot));
        assert_eq!(n, 1, "conv_transpose2d_weight_grad");
    }
}

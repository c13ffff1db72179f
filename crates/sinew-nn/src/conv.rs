//! Convolution and pooling layers: [`Conv1d`], [`Conv2d`], [`ConvTranspose2d`],
//! [`MaxPool2d`], [`AvgPool2d`], [`AdaptiveAvgPool2d`]. Weights use PyTorch's layouts
//! and default initialisation, so PyTorch state dicts load unchanged.

use sinew_autograd::{Param, Var};
use sinew_tensor::{Conv1dOptions, Conv2dOptions, Generator, Pool2dOptions};

use crate::init;
use crate::module::{Forward, Module, Visitor};

/// PyTorch's default conv init: weight and bias `U(-1/√fan_in, 1/√fan_in)`.
fn conv_params(
    shape: &[usize],
    fan_in: usize,
    bias_len: usize,
    bias: bool,
    g: &mut Generator,
) -> (Param, Option<Param>) {
    let bound = 1.0 / (fan_in.max(1) as f64).sqrt();
    let weight = Param::new("weight", init::uniform(shape, -bound, bound, g));
    let bias = bias.then(|| Param::new("bias", init::uniform(&[bias_len], -bound, bound, g)));
    (weight, bias)
}

fn visit_wb(v: &mut dyn Visitor, w: &Param, b: &Option<Param>) {
    v.param("weight", w);
    if let Some(b) = b {
        v.param("bias", b);
    }
}

/// 2-D convolution over `(N, C, H, W)` (`nn.Conv2d`): weight `(out, in/groups, kH, kW)`.
///
/// ```
/// use sinew_nn::{Conv2d, Forward};
/// use sinew_autograd::Var;
/// use sinew_tensor::{Conv2dOptions, Generator, Tensor};
/// let conv = Conv2d::new(1, 6, 5, Conv2dOptions::default().padding(2), &mut Generator::new(0));
/// let y = conv.forward(&Var::constant(Tensor::zeros(&[8, 1, 28, 28])));
/// assert_eq!(y.dims(), &[8, 6, 28, 28]);
/// ```
#[derive(Clone, Debug)]
pub struct Conv2d {
    /// `(out_channels, in_channels/groups, kH, kW)`.
    pub weight: Param,
    /// `(out_channels)`.
    pub bias: Option<Param>,
    /// Stride, padding, dilation, groups.
    pub options: Conv2dOptions,
}

impl Conv2d {
    /// A square `kernel × kernel` convolution with bias.
    #[track_caller]
    pub fn new(
        in_channels: usize,
        out_channels: usize,
        kernel: usize,
        options: Conv2dOptions,
        g: &mut Generator,
    ) -> Self {
        Conv2d::with_kernel(in_channels, out_channels, [kernel, kernel], true, options, g)
    }

    /// Any kernel shape, with or without bias.
    #[track_caller]
    pub fn with_kernel(
        in_channels: usize,
        out_channels: usize,
        kernel: [usize; 2],
        bias: bool,
        options: Conv2dOptions,
        g: &mut Generator,
    ) -> Self {
        let groups = options.groups;
        assert!(
            groups > 0 && in_channels.is_multiple_of(groups) && out_channels.is_multiple_of(groups),
            "Conv2d({in_channels}, {out_channels}): channels must be divisible by groups = {groups}"
        );
        let shape = [out_channels, in_channels / groups, kernel[0], kernel[1]];
        let (weight, bias) = conv_params(&shape, shape[1] * kernel[0] * kernel[1], out_channels, bias, g);
        Conv2d { weight, bias, options }
    }
}

impl Module for Conv2d {
    fn visit(&self, v: &mut dyn Visitor) {
        visit_wb(v, &self.weight, &self.bias);
    }
}

impl Forward for Conv2d {
    #[track_caller]
    fn forward(&self, x: &Var) -> Var {
        let w = self.weight.value().dims().to_vec();
        let cin = w[1] * self.options.groups;
        assert!(
            x.ndim() == 4 && x.dims()[1] == cin,
            "Conv2d({cin}, {}, kernel {:?}): expected input of shape [N, {cin}, H, W], got {:?}",
            w[0],
            &w[2..],
            x.dims()
        );
        x.conv2d(&self.weight.var(), self.bias.as_ref().map(Param::var).as_ref(), self.options)
    }
}

/// 1-D convolution over `(N, C, L)` (`nn.Conv1d`): weight `(out, in/groups, k)`.
#[derive(Clone, Debug)]
pub struct Conv1d {
    /// `(out_channels, in_channels/groups, k)`.
    pub weight: Param,
    /// `(out_channels)`.
    pub bias: Option<Param>,
    /// Stride, padding, dilation, groups.
    pub options: Conv1dOptions,
}

impl Conv1d {
    /// A convolution with bias.
    #[track_caller]
    pub fn new(
        in_channels: usize,
        out_channels: usize,
        kernel: usize,
        options: Conv1dOptions,
        g: &mut Generator,
    ) -> Self {
        let groups = options.groups;
        assert!(
            groups > 0 && in_channels.is_multiple_of(groups) && out_channels.is_multiple_of(groups),
            "Conv1d({in_channels}, {out_channels}): channels must be divisible by groups = {groups}"
        );
        let shape = [out_channels, in_channels / groups, kernel];
        let (weight, bias) = conv_params(&shape, shape[1] * kernel, out_channels, true, g);
        Conv1d { weight, bias, options }
    }
}

impl Module for Conv1d {
    fn visit(&self, v: &mut dyn Visitor) {
        visit_wb(v, &self.weight, &self.bias);
    }
}

impl Forward for Conv1d {
    #[track_caller]
    fn forward(&self, x: &Var) -> Var {
        let w = self.weight.value().dims().to_vec();
        let cin = w[1] * self.options.groups;
        assert!(
            x.ndim() == 3 && x.dims()[1] == cin,
            "Conv1d({cin}, {}, kernel {}): expected input of shape [N, {cin}, L], got {:?}",
            w[0],
            w[2],
            x.dims()
        );
        x.conv1d(&self.weight.var(), self.bias.as_ref().map(Param::var).as_ref(), self.options)
    }
}

/// Transposed 2-D convolution (`nn.ConvTranspose2d`): weight `(in, out/groups, kH, kW)`.
#[derive(Clone, Debug)]
pub struct ConvTranspose2d {
    /// `(in_channels, out_channels/groups, kH, kW)`.
    pub weight: Param,
    /// `(out_channels)`.
    pub bias: Option<Param>,
    /// Stride, padding, output padding, dilation, groups.
    pub options: Conv2dOptions,
}

impl ConvTranspose2d {
    /// A square-kernel transposed convolution with bias.
    #[track_caller]
    pub fn new(
        in_channels: usize,
        out_channels: usize,
        kernel: usize,
        options: Conv2dOptions,
        g: &mut Generator,
    ) -> Self {
        let groups = options.groups;
        assert!(
            groups > 0 && in_channels.is_multiple_of(groups) && out_channels.is_multiple_of(groups),
            "ConvTranspose2d({in_channels}, {out_channels}): channels must be divisible by groups = {groups}"
        );
        let shape = [in_channels, out_channels / groups, kernel, kernel];
        // PyTorch computes fan_in from weight.size(1) for transposed convolutions too
        let (weight, bias) = conv_params(&shape, shape[1] * kernel * kernel, out_channels, true, g);
        ConvTranspose2d { weight, bias, options }
    }
}

impl Module for ConvTranspose2d {
    fn visit(&self, v: &mut dyn Visitor) {
        visit_wb(v, &self.weight, &self.bias);
    }
}

impl Forward for ConvTranspose2d {
    #[track_caller]
    fn forward(&self, x: &Var) -> Var {
        let cin = self.weight.value().dims()[0];
        assert!(
            x.ndim() == 4 && x.dims()[1] == cin,
            "ConvTranspose2d: expected input of shape [N, {cin}, H, W], got {:?}",
            x.dims()
        );
        x.conv_transpose2d(&self.weight.var(), self.bias.as_ref().map(Param::var).as_ref(), self.options)
    }
}

/// 2-D max pooling (`nn.MaxPool2d`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MaxPool2d {
    /// Window, stride, padding, dilation, ceil mode.
    pub options: Pool2dOptions,
}

impl MaxPool2d {
    /// A `k × k` window with stride `k`.
    pub fn new(k: usize) -> Self {
        MaxPool2d { options: Pool2dOptions::new(k) }
    }
}

impl Module for MaxPool2d {
    fn visit(&self, _: &mut dyn Visitor) {}
}

impl Forward for MaxPool2d {
    #[track_caller]
    fn forward(&self, x: &Var) -> Var {
        x.max_pool2d(self.options).0
    }
}

/// 2-D average pooling (`nn.AvgPool2d`; padded zeros count unless `count_include_pad` is off).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AvgPool2d {
    /// Window, stride, padding, ceil mode.
    pub options: Pool2dOptions,
    /// Whether padded zeros count in the divisor (PyTorch's default: yes).
    pub count_include_pad: bool,
}

impl AvgPool2d {
    /// A `k × k` window with stride `k`.
    pub fn new(k: usize) -> Self {
        AvgPool2d { options: Pool2dOptions::new(k), count_include_pad: true }
    }
}

impl Module for AvgPool2d {
    fn visit(&self, _: &mut dyn Visitor) {}
}

impl Forward for AvgPool2d {
    #[track_caller]
    fn forward(&self, x: &Var) -> Var {
        x.avg_pool2d(self.options, self.count_include_pad)
    }
}

/// Average pooling to a fixed output size (`nn.AdaptiveAvgPool2d`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AdaptiveAvgPool2d {
    /// `[oh, ow]`.
    pub output_size: [usize; 2],
}

impl AdaptiveAvgPool2d {
    /// Pools to `[oh, ow]`.
    pub fn new(output_size: [usize; 2]) -> Self {
        AdaptiveAvgPool2d { output_size }
    }
}

impl Module for AdaptiveAvgPool2d {
    fn visit(&self, _: &mut dyn Visitor) {}
}

impl Forward for AdaptiveAvgPool2d {
    #[track_caller]
    fn forward(&self, x: &Var) -> Var {
        x.adaptive_avg_pool2d(self.output_size)
    }
}

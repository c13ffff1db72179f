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
    ///
    /// ```
    /// use sinew_nn::{Conv2d, Forward};
    /// use sinew_autograd::Var;
    /// use sinew_tensor::{Conv2dOptions, Generator, Tensor};
    /// let mut g = Generator::new(0);
    /// // nn.Conv2d(3, 16, 3, padding=1) keeps the image size
    /// let conv = Conv2d::new(3, 16, 3, Conv2dOptions::default().padding(1), &mut g);
    /// assert_eq!(conv.weight.value().dims(), &[16, 3, 3, 3]);
    /// assert_eq!(conv.forward(&Var::constant(Tensor::ones(&[2, 3, 8, 8]))).dims(), &[2, 16, 8, 8]);
    /// // with weights of ones and no bias, each output sums a 3×3×3 window
    /// let sum = Conv2d::new(3, 1, 3, Conv2dOptions::default(), &mut g);
    /// sum.weight.set_value(Tensor::ones(&[1, 3, 3, 3]));
    /// sum.bias.as_ref().unwrap().set_value(Tensor::zeros(&[1]));
    /// let y = sum.forward(&Var::constant(Tensor::ones(&[1, 3, 4, 4])));
    /// assert_eq!(y.value().to_vec::<f32>(), vec![27.0; 4]);
    /// ```
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
    ///
    /// ```
    /// use sinew_nn::{Conv2d, Forward};
    /// use sinew_autograd::Var;
    /// use sinew_tensor::{Conv2dOptions, Generator, Tensor};
    /// // nn.Conv2d(1, 1, (1, 3), bias=False)
    /// let conv = Conv2d::with_kernel(1, 1, [1, 3], false, Conv2dOptions::default(), &mut Generator::new(0));
    /// assert!(conv.bias.is_none());
    /// conv.weight.set_value(Tensor::ones(&[1, 1, 1, 3]));
    /// let y = conv.forward(&Var::constant(Tensor::ones(&[1, 1, 4, 5])));
    /// assert_eq!(y.dims(), &[1, 1, 4, 3]);
    /// assert_eq!(y.value().to_vec::<f32>(), vec![3.0; 12]);
    /// ```
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
    fn extra_repr(&self) -> String {
        conv2d_repr(&self.weight, &self.bias, &self.options, false)
    }
}
impl std::fmt::Display for Conv2d {
    /// PyTorch's `print(module)`: see [`Module::tree`].
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        crate::module::ModuleTree(self).fmt(f)
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
        let y = x.conv2d(&self.weight.var(), self.bias.as_ref().map(Param::var).as_ref(), self.options);
        crate::hooks::observed(self, y)
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
    ///
    /// ```
    /// use sinew_nn::{Conv1d, Forward};
    /// use sinew_autograd::Var;
    /// use sinew_tensor::{Conv1dOptions, Generator, Tensor};
    /// // nn.Conv1d(2, 1, 3) over (N, C, L)
    /// let conv = Conv1d::new(2, 1, 3, Conv1dOptions::default(), &mut Generator::new(0));
    /// assert_eq!(conv.weight.value().dims(), &[1, 2, 3]);
    /// conv.weight.set_value(Tensor::ones(&[1, 2, 3]));
    /// conv.bias.as_ref().unwrap().set_value(Tensor::full(&[1], 0.5));
    /// let y = conv.forward(&Var::constant(Tensor::ones(&[1, 2, 5])));
    /// assert_eq!(y.value().to_vec::<f32>(), vec![6.5; 3]); // 2 channels × 3 taps + bias
    /// ```
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
    fn extra_repr(&self) -> String {
        let w = self.weight.value().dims().to_vec();
        let o = &self.options;
        let mut s = format!("{}, {}, kernel_size=({},), stride=({},)", w[1] * o.groups, w[0], w[2], o.stride);
        if o.padding != 0 {
            s += &format!(", padding=({},)", o.padding);
        }
        if o.dilation != 1 {
            s += &format!(", dilation=({},)", o.dilation);
        }
        if o.groups != 1 {
            s += &format!(", groups={}", o.groups);
        }
        if self.bias.is_none() {
            s += ", bias=False";
        }
        s
    }
}
impl std::fmt::Display for Conv1d {
    /// PyTorch's `print(module)`: see [`Module::tree`].
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        crate::module::ModuleTree(self).fmt(f)
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
        let y = x.conv1d(&self.weight.var(), self.bias.as_ref().map(Param::var).as_ref(), self.options);
        crate::hooks::observed(self, y)
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
    ///
    /// ```
    /// use sinew_nn::{ConvTranspose2d, Forward};
    /// use sinew_autograd::Var;
    /// use sinew_tensor::{Conv2dOptions, Generator, Tensor};
    /// // nn.ConvTranspose2d(1, 1, 2, stride=2) doubles height and width
    /// let up = ConvTranspose2d::new(1, 1, 2, Conv2dOptions::default().stride(2), &mut Generator::new(0));
    /// up.weight.set_value(Tensor::ones(&[1, 1, 2, 2])); // (in, out, k, k)
    /// up.bias.as_ref().unwrap().set_value(Tensor::zeros(&[1]));
    /// let y = up.forward(&Var::constant(Tensor::ones(&[1, 1, 2, 2])));
    /// assert_eq!(y.dims(), &[1, 1, 4, 4]);
    /// assert_eq!(y.value().to_vec::<f32>(), vec![1.0; 16]); // each input pixel paints a 2×2 block
    /// ```
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
    fn extra_repr(&self) -> String {
        conv2d_repr(&self.weight, &self.bias, &self.options, true)
    }
}
impl std::fmt::Display for ConvTranspose2d {
    /// PyTorch's `print(module)`: see [`Module::tree`].
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        crate::module::ModuleTree(self).fmt(f)
    }
}

/// PyTorch's `repr` of a 2-D convolution: `1, 6, kernel_size=(5, 5), stride=(1, 1)`, then
/// what differs from the defaults.
fn conv2d_repr(weight: &Param, bias: &Option<Param>, o: &Conv2dOptions, transposed: bool) -> String {
    let w = weight.value().dims().to_vec();
    // a transposed convolution's weight is (in, out/groups, kH, kW)
    let (cin, cout) = if transposed { (w[0], w[1] * o.groups) } else { (w[1] * o.groups, w[0]) };
    let p = |v: [usize; 2]| format!("({}, {})", v[0], v[1]);
    let mut s = format!("{cin}, {cout}, kernel_size=({}, {}), stride={}", w[2], w[3], p(o.stride));
    if o.padding != [0, 0] {
        s += &format!(", padding={}", p(o.padding));
    }
    if o.dilation != [1, 1] {
        s += &format!(", dilation={}", p(o.dilation));
    }
    if transposed && o.output_padding != [0, 0] {
        s += &format!(", output_padding={}", p(o.output_padding));
    }
    if o.groups != 1 {
        s += &format!(", groups={}", o.groups);
    }
    if bias.is_none() {
        s += ", bias=False";
    }
    s
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
        let y =
            x.conv_transpose2d(&self.weight.var(), self.bias.as_ref().map(Param::var).as_ref(), self.options);
        crate::hooks::observed(self, y)
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
    ///
    /// ```
    /// use sinew_nn::{Forward, MaxPool2d};
    /// use sinew_autograd::Var;
    /// use sinew_tensor::Tensor;
    /// let x = Tensor::from_vec((0..16).map(|i| i as f32).collect(), &[1, 1, 4, 4])?;
    /// let y = MaxPool2d::new(2).forward(&Var::constant(x));
    /// assert_eq!(y.dims(), &[1, 1, 2, 2]);
    /// assert_eq!(y.value().to_vec::<f32>(), vec![5.0, 7.0, 13.0, 15.0]);
    /// # Ok::<(), sinew_tensor::TensorError>(())
    /// ```
    pub fn new(k: usize) -> Self {
        MaxPool2d { options: Pool2dOptions::new(k) }
    }
}

impl Module for MaxPool2d {
    fn visit(&self, _: &mut dyn Visitor) {}
    fn extra_repr(&self) -> String {
        pool_repr(&self.options)
    }
}

impl Forward for MaxPool2d {
    #[track_caller]
    fn forward(&self, x: &Var) -> Var {
        crate::hooks::observed(self, x.max_pool2d(self.options).0)
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
    ///
    /// ```
    /// use sinew_nn::{AvgPool2d, Forward};
    /// use sinew_autograd::Var;
    /// use sinew_tensor::Tensor;
    /// let x = Tensor::from_vec((0..16).map(|i| i as f32).collect(), &[1, 1, 4, 4])?;
    /// let y = AvgPool2d::new(2).forward(&Var::constant(x));
    /// assert_eq!(y.value().to_vec::<f32>(), vec![2.5, 4.5, 10.5, 12.5]);
    /// # Ok::<(), sinew_tensor::TensorError>(())
    /// ```
    pub fn new(k: usize) -> Self {
        AvgPool2d { options: Pool2dOptions::new(k), count_include_pad: true }
    }
}

impl Module for AvgPool2d {
    fn visit(&self, _: &mut dyn Visitor) {}
    fn extra_repr(&self) -> String {
        pool_repr(&self.options)
    }
}

/// `kernel_size=2, stride=2, padding=0`, as PyTorch prints a pooling layer.
fn pool_repr(o: &Pool2dOptions) -> String {
    let one = |v: [usize; 2]| if v[0] == v[1] { v[0].to_string() } else { format!("({}, {})", v[0], v[1]) };
    let mut s =
        format!("kernel_size={}, stride={}, padding={}", one(o.kernel), one(o.stride), one(o.padding));
    if o.dilation != [1, 1] {
        s += &format!(", dilation={}", one(o.dilation));
    }
    if o.ceil_mode {
        s += ", ceil_mode=True";
    }
    s
}

impl Forward for AvgPool2d {
    #[track_caller]
    fn forward(&self, x: &Var) -> Var {
        crate::hooks::observed(self, x.avg_pool2d(self.options, self.count_include_pad))
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
    ///
    /// ```
    /// use sinew_nn::{AdaptiveAvgPool2d, Forward};
    /// use sinew_autograd::Var;
    /// use sinew_tensor::Tensor;
    /// let x = Var::constant(Tensor::from_vec((0..16).map(|i| i as f32).collect(), &[1, 1, 4, 4])?);
    /// // nn.AdaptiveAvgPool2d((1, 1)): global average pooling
    /// assert_eq!(AdaptiveAvgPool2d::new([1, 1]).forward(&x).value().to_vec::<f32>(), vec![7.5]);
    /// let y = AdaptiveAvgPool2d::new([2, 1]).forward(&x); // mean of each half of the rows
    /// assert_eq!(y.value().to_vec::<f32>(), vec![3.5, 11.5]);
    /// # Ok::<(), sinew_tensor::TensorError>(())
    /// ```
    pub fn new(output_size: [usize; 2]) -> Self {
        AdaptiveAvgPool2d { output_size }
    }
}

impl Module for AdaptiveAvgPool2d {
    fn visit(&self, _: &mut dyn Visitor) {}
    fn extra_repr(&self) -> String {
        format!("output_size=({}, {})", self.output_size[0], self.output_size[1])
    }
}

impl Forward for AdaptiveAvgPool2d {
    #[track_caller]
    fn forward(&self, x: &Var) -> Var {
        crate::hooks::observed(self, x.adaptive_avg_pool2d(self.output_size))
    }
}

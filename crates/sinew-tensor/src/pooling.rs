//! Pooling on tensors: `max_pool2d` (with indices) and its backward, `avg_pool2d` and its
//! backward, `adaptive_avg_pool2d` and its backward. Shapes are checked here; the loops
//! live in [`crate::kernels::pool`].

use crate::error::{Result, TensorError, or_panic};
use crate::kernels::pool::{self as k, Pool2dGeometry};
use crate::tensor::{Tensor, with_float};

/// Window, stride, padding, dilation and rounding of a 2-D pooling (`[height, width]`
/// pairs). PyTorch's defaults: stride = kernel size, no padding, dilation 1, floor rounding.
///
/// ```
/// use sinew_tensor::Pool2dOptions;
/// let o = Pool2dOptions::new(3).stride(2).padding(1);
/// assert_eq!((o.kernel, o.stride, o.padding), ([3, 3], [2, 2], [1, 1]));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Pool2dOptions {
    /// Window size.
    pub kernel: [usize; 2],
    /// Step between windows.
    pub stride: [usize; 2],
    /// Implicit padding on each side (at most half the window).
    pub padding: [usize; 2],
    /// Spacing between window taps (max pooling only).
    pub dilation: [usize; 2],
    /// Round the output size up instead of down.
    pub ceil_mode: bool,
}

impl Pool2dOptions {
    /// A square window of `k` with stride `k`.
    ///
    /// ```
    /// use sinew_tensor::Pool2dOptions;
    /// let o = Pool2dOptions::new(2);   // nn.MaxPool2d(2)
    /// assert_eq!((o.kernel, o.stride, o.padding, o.ceil_mode), ([2, 2], [2, 2], [0, 0], false));
    /// ```
    pub fn new(k: usize) -> Self {
        Pool2dOptions::rect([k, k])
    }
    /// A `[kH, kW]` window with the same stride.
    ///
    /// ```
    /// use sinew_tensor::{Pool2dOptions, Tensor};
    /// let o = Pool2dOptions::rect([1, 2]);   // nn.MaxPool2d((1, 2))
    /// assert_eq!(o.stride, [1, 2]);
    /// let (y, _) = Tensor::zeros(&[1, 1, 4, 4]).max_pool2d(o);
    /// assert_eq!(y.dims(), &[1, 1, 4, 2]);
    /// ```
    pub fn rect(kernel: [usize; 2]) -> Self {
        Pool2dOptions { kernel, stride: kernel, padding: [0, 0], dilation: [1, 1], ceil_mode: false }
    }
    /// The same stride on both axes.
    ///
    /// ```
    /// use sinew_tensor::{Pool2dOptions, Tensor};
    /// let o = Pool2dOptions::new(3).stride(1);   // overlapping windows
    /// let (y, _) = Tensor::arange(0.0, 16.0, 1.0).reshape(&[1, 1, 4, 4]).max_pool2d(o);
    /// assert_eq!(y.to_vec::<f32>(), vec![10.0, 11.0, 14.0, 15.0]);
    /// ```
    pub fn stride(mut self, s: usize) -> Self {
        self.stride = [s, s];
        self
    }
    /// The same padding on both axes.
    ///
    /// ```
    /// use sinew_tensor::{Pool2dOptions, Tensor};
    /// let o = Pool2dOptions::new(3).stride(2).padding(1);   // ResNet's stem pooling
    /// assert_eq!(o.padding, [1, 1]);
    /// let (y, _) = Tensor::zeros(&[1, 1, 8, 8]).max_pool2d(o);
    /// assert_eq!(y.dims(), &[1, 1, 4, 4]);
    /// ```
    pub fn padding(mut self, p: usize) -> Self {
        self.padding = [p, p];
        self
    }
    /// The same dilation on both axes.
    ///
    /// ```
    /// use sinew_tensor::{Pool2dOptions, Tensor};
    /// let o = Pool2dOptions::new(2).stride(1).dilation(2);   // taps 2 apart: a 3×3 span
    /// let (y, idx) = Tensor::arange(0.0, 9.0, 1.0).reshape(&[1, 1, 3, 3]).max_pool2d(o);
    /// assert_eq!(y.to_vec::<f32>(), vec![8.0]);
    /// assert_eq!(idx.to_vec::<i64>(), vec![8]);
    /// ```
    pub fn dilation(mut self, d: usize) -> Self {
        self.dilation = [d, d];
        self
    }
    /// Round output sizes up.
    ///
    /// ```
    /// use sinew_tensor::{Pool2dOptions, Tensor};
    /// let x = Tensor::zeros(&[1, 1, 5, 5]);
    /// assert_eq!(x.max_pool2d(Pool2dOptions::new(2)).0.dims(), &[1, 1, 2, 2]);
    /// assert_eq!(x.max_pool2d(Pool2dOptions::new(2).ceil_mode(true)).0.dims(), &[1, 1, 3, 3]);
    /// ```
    pub fn ceil_mode(mut self, on: bool) -> Self {
        self.ceil_mode = on;
        self
    }
}

/// The pooling geometry of an input of `dims` and `dtype` (only its shape and type matter).
fn geometry(
    op: &'static str,
    dims: &[usize],
    dtype: crate::DType,
    o: &Pool2dOptions,
) -> Result<Pool2dGeometry> {
    let [n, c, h, w] = <[usize; 4]>::try_from(dims).map_err(|_| TensorError::InvalidArgument {
        op,
        msg: format!("input must be 4-D (N, C, H, W), got shape {dims:?}"),
    })?;
    if !dtype.is_float() {
        return Err(TensorError::UnsupportedDType { op, dtype, detail: String::new() });
    }
    let g = Pool2dGeometry {
        batch: n,
        channels: c,
        in_h: h,
        in_w: w,
        kernel: o.kernel,
        stride: o.stride,
        padding: o.padding,
        dilation: o.dilation,
        ceil_mode: o.ceil_mode,
    };
    g.check().map_err(|msg| TensorError::InvalidArgument { op, msg: format!("{msg} (input {dims:?})") })?;
    Ok(g)
}

impl Tensor {
    /// [`Tensor::max_pool2d`] that returns an error instead of panicking.
    ///
    /// # Errors
    /// If the input is not a 4-D float tensor or the options do not fit it.
    ///
    /// ```
    /// use sinew_tensor::{DType, Pool2dOptions, Tensor};
    /// let (y, _) = Tensor::ones(&[1, 2, 4, 4]).try_max_pool2d(Pool2dOptions::new(2))?;
    /// assert_eq!(y.dims(), &[1, 2, 2, 2]);
    /// assert!(Tensor::ones(&[2, 4, 4]).try_max_pool2d(Pool2dOptions::new(2)).is_err());   // not 4-D
    /// assert!(Tensor::ones_dtype(&[1, 1, 4, 4], DType::I64).try_max_pool2d(Pool2dOptions::new(2)).is_err());
    /// # Ok::<(), sinew_tensor::TensorError>(())
    /// ```
    pub fn try_max_pool2d(&self, opts: Pool2dOptions) -> Result<(Tensor, Tensor)> {
        let g = geometry("max_pool2d", self.dims(), self.dtype(), &opts)?;
        let shape = [g.batch, g.channels, g.out_h(), g.out_w()];
        Ok(with_float!(self.dtype(), "max_pool2d", |T| {
            let (v, i) = k::max_pool2d_forward(&self.contiguous_slice::<T>(), &g);
            (Tensor::from_parts(v, &shape), Tensor::from_parts(i, &shape))
        }))
    }

    /// 2-D max pooling of an `(N, C, H, W)` input. Returns the values and, as `i64`, the
    /// flat index `h·W + w` of each maximum within its input plane (PyTorch's
    /// `return_indices=True`), which [`Tensor::max_pool2d_backward`] takes.
    ///
    /// # Panics
    /// If the input is not a 4-D float tensor or the options do not fit it.
    ///
    /// ```
    /// use sinew_tensor::{Pool2dOptions, Tensor};
    /// let x = Tensor::arange(0.0, 16.0, 1.0).reshape(&[1, 1, 4, 4]);
    /// let (y, idx) = x.max_pool2d(Pool2dOptions::new(2));
    /// assert_eq!(y.to_vec::<f32>(), vec![5.0, 7.0, 13.0, 15.0]);
    /// assert_eq!(idx.to_vec::<i64>(), vec![5, 7, 13, 15]);
    /// ```
    #[track_caller]
    pub fn max_pool2d(&self, opts: Pool2dOptions) -> (Tensor, Tensor) {
        or_panic(self.try_max_pool2d(opts))
    }

    /// Gradient of [`Tensor::max_pool2d`]: each `dy` element goes to the input position its
    /// index names. `input_dims` is the pooled input's shape.
    ///
    /// # Panics
    /// If shapes disagree.
    ///
    /// ```
    /// use sinew_tensor::{Pool2dOptions, Tensor};
    /// let x = Tensor::arange(0.0, 16.0, 1.0).reshape(&[1, 1, 4, 4]);
    /// let o = Pool2dOptions::new(2);
    /// let (y, idx) = x.max_pool2d(o);
    /// let dx = Tensor::max_pool2d_backward(&y.ones_like(), &idx, x.dims(), o);
    /// // each window's gradient lands on its maximum (positions 5, 7, 13, 15)
    /// let hot: Vec<usize> = dx.to_vec::<f32>().iter().enumerate().filter(|(_, v)| **v == 1.0).map(|(i, _)| i).collect();
    /// assert_eq!(hot, vec![5, 7, 13, 15]);
    /// assert_eq!(dx.sum_all().item(), 4.0);
    /// ```
    #[track_caller]
    pub fn max_pool2d_backward(
        dy: &Tensor,
        indices: &Tensor,
        input_dims: &[usize],
        opts: Pool2dOptions,
    ) -> Tensor {
        let g = or_panic(geometry("max_pool2d_backward", input_dims, dy.dtype(), &opts));
        let out = [g.batch, g.channels, g.out_h(), g.out_w()];
        assert!(
            dy.dims() == out && indices.dims() == out,
            "max_pool2d_backward: dy {:?} and indices {:?} must have the pooled shape {out:?}",
            dy.dims(),
            indices.dims()
        );
        let idx = indices.to_dtype(crate::DType::I64);
        with_float!(dy.dtype(), "max_pool2d_backward", |T| Tensor::from_parts(
            k::max_pool2d_backward(&dy.contiguous_slice::<T>(), &idx.contiguous_slice::<i64>(), &g),
            input_dims
        ))
    }

    /// [`Tensor::avg_pool2d`] that returns an error instead of panicking.
    ///
    /// # Errors
    /// If the input is not a 4-D float tensor or the options do not fit it.
    ///
    /// ```
    /// use sinew_tensor::{Pool2dOptions, Tensor};
    /// let x = Tensor::ones(&[1, 1, 2, 2]);
    /// let o = Pool2dOptions::new(2).stride(1).padding(1);
    /// let with_pad = x.try_avg_pool2d(o, true)?;   // corners: 1 of 4 taps is real
    /// let without = x.try_avg_pool2d(o, false)?;   // the padding does not count
    /// assert_eq!(with_pad.to_vec::<f32>()[0], 0.25);
    /// assert_eq!(without.to_vec::<f32>()[0], 1.0);
    /// assert!(x.try_avg_pool2d(Pool2dOptions::new(3), true).is_err());   // window larger than the input
    /// # Ok::<(), sinew_tensor::TensorError>(())
    /// ```
    pub fn try_avg_pool2d(&self, opts: Pool2dOptions, count_include_pad: bool) -> Result<Tensor> {
        let g = geometry("avg_pool2d", self.dims(), self.dtype(), &opts)?;
        let shape = [g.batch, g.channels, g.out_h(), g.out_w()];
        Ok(with_float!(self.dtype(), "avg_pool2d", |T| Tensor::from_parts(
            k::avg_pool2d_forward(&self.contiguous_slice::<T>(), &g, count_include_pad),
            &shape
        )))
    }

    /// 2-D average pooling. With `count_include_pad` (PyTorch's default) padded zeros
    /// count in the divisor.
    ///
    /// # Panics
    /// If the input is not a 4-D float tensor or the options do not fit it.
    ///
    /// ```
    /// use sinew_tensor::{Pool2dOptions, Tensor};
    /// let x = Tensor::arange(0.0, 16.0, 1.0).reshape(&[1, 1, 4, 4]);
    /// let y = x.avg_pool2d(Pool2dOptions::new(2), true);
    /// assert_eq!(y.to_vec::<f32>(), vec![2.5, 4.5, 10.5, 12.5]);
    /// ```
    #[track_caller]
    pub fn avg_pool2d(&self, opts: Pool2dOptions, count_include_pad: bool) -> Tensor {
        or_panic(self.try_avg_pool2d(opts, count_include_pad))
    }

    /// Gradient of [`Tensor::avg_pool2d`]; `input_dims` is the pooled input's shape.
    ///
    /// # Panics
    /// If shapes disagree.
    ///
    /// ```
    /// use sinew_tensor::{Pool2dOptions, Tensor};
    /// let o = Pool2dOptions::new(2);
    /// let dy = Tensor::from_vec(vec![4.0f32], &[1, 1, 1, 1])?;
    /// let dx = Tensor::avg_pool2d_backward(&dy, &[1, 1, 2, 2], o, true);
    /// assert_eq!(dx.to_vec::<f32>(), vec![1.0; 4]);   // spread evenly over the window
    /// # Ok::<(), sinew_tensor::TensorError>(())
    /// ```
    #[track_caller]
    pub fn avg_pool2d_backward(
        dy: &Tensor,
        input_dims: &[usize],
        opts: Pool2dOptions,
        count_include_pad: bool,
    ) -> Tensor {
        let g = or_panic(geometry("avg_pool2d_backward", input_dims, dy.dtype(), &opts));
        let out = [g.batch, g.channels, g.out_h(), g.out_w()];
        assert!(
            dy.dims() == out,
            "avg_pool2d_backward: dy {:?} must have the pooled shape {out:?}",
            dy.dims()
        );
        with_float!(dy.dtype(), "avg_pool2d_backward", |T| Tensor::from_parts(
            k::avg_pool2d_backward(&dy.contiguous_slice::<T>(), &g, count_include_pad),
            input_dims
        ))
    }

    /// Adaptive average pooling to an `[oh, ow]` output, whatever the input size
    /// (`F.adaptive_avg_pool2d`).
    ///
    /// # Panics
    /// If the input is not a 4-D float tensor with non-empty planes, or an output size is 0.
    ///
    /// ```
    /// use sinew_tensor::Tensor;
    /// let x = Tensor::ones(&[2, 3, 7, 5]);
    /// assert_eq!(x.adaptive_avg_pool2d([1, 1]).dims(), &[2, 3, 1, 1]);
    /// ```
    #[track_caller]
    pub fn adaptive_avg_pool2d(&self, out: [usize; 2]) -> Tensor {
        let [n, c, h, w] = adaptive_dims("adaptive_avg_pool2d", self.dims(), out);
        with_float!(self.dtype(), "adaptive_avg_pool2d", |T| Tensor::from_parts(
            k::adaptive_avg_pool2d_forward(&self.contiguous_slice::<T>(), n, c, h, w, out),
            &[n, c, out[0], out[1]]
        ))
    }

    /// Gradient of [`Tensor::adaptive_avg_pool2d`]; `input_dims` is the pooled input's shape.
    ///
    /// ```
    /// use sinew_tensor::Tensor;
    /// let dy = Tensor::full(&[1, 1, 1, 1], 6.0);
    /// let dx = Tensor::adaptive_avg_pool2d_backward(&dy, &[1, 1, 2, 3]);
    /// assert_eq!(dx.to_vec::<f32>(), vec![1.0; 6]);   // global pooling: every pixel gets 6 / 6
    /// ```
    #[track_caller]
    pub fn adaptive_avg_pool2d_backward(dy: &Tensor, input_dims: &[usize]) -> Tensor {
        let out = [dy.dims().get(2).copied().unwrap_or(0), dy.dims().get(3).copied().unwrap_or(0)];
        let [n, c, h, w] = adaptive_dims("adaptive_avg_pool2d_backward", input_dims, out);
        assert!(
            dy.dims() == [n, c, out[0], out[1]],
            "adaptive_avg_pool2d_backward: dy {:?} does not fit input {input_dims:?}",
            dy.dims()
        );
        with_float!(dy.dtype(), "adaptive_avg_pool2d_backward", |T| Tensor::from_parts(
            k::adaptive_avg_pool2d_backward(&dy.contiguous_slice::<T>(), n, c, h, w, out),
            input_dims
        ))
    }
}

#[track_caller]
fn adaptive_dims(op: &str, dims: &[usize], out: [usize; 2]) -> [usize; 4] {
    let d = <[usize; 4]>::try_from(dims)
        .unwrap_or_else(|_| panic!("{op}: input must be 4-D (N, C, H, W), got shape {dims:?}"));
    assert!(d[1] > 0 && d[2] > 0 && d[3] > 0, "{op}: input planes must be non-empty, got shape {dims:?}");
    assert!(out[0] > 0 && out[1] > 0, "{op}: output size {out:?} must be positive");
    d
}

#[cfg(test)]
mod tests {
    use crate::{DType, Generator, Pool2dOptions, Tensor};

    #[test]
    fn backward_kernels_are_adjoint() {
        let mut g = Generator::new(2);
        let x = Tensor::randn_with(&[2, 3, 7, 6], DType::F64, &mut g);
        let o = Pool2dOptions::new(3).stride(2).padding(1);
        let (y, idx) = x.max_pool2d(o);
        let dy = Tensor::randn_with(y.dims(), DType::F64, &mut g);
        let dx = Tensor::max_pool2d_backward(&dy, &idx, x.dims(), o);
        // max pooling is linear in x once the argmax is fixed
        assert!((y.mul(&dy).sum_all().item() - x.mul(&dx).sum_all().item()).abs() < 1e-10);
        let ya = x.avg_pool2d(o, true);
        let dxa = Tensor::avg_pool2d_backward(&dy, x.dims(), o, true);
        assert!((ya.mul(&dy).sum_all().item() - x.mul(&dxa).sum_all().item()).abs() < 1e-10);
        let yd = x.adaptive_avg_pool2d([3, 2]);
        let dyd = Tensor::randn_with(yd.dims(), DType::F64, &mut g);
        let dxd = Tensor::adaptive_avg_pool2d_backward(&dyd, x.dims());
        assert!((yd.mul(&dyd).sum_all().item() - x.mul(&dxd).sum_all().item()).abs() < 1e-10);
    }

    #[test]
    fn oversized_padding_is_an_error() {
        let e = Tensor::zeros(&[1, 1, 4, 4]).try_max_pool2d(Pool2dOptions::new(2).padding(2)).unwrap_err();
        assert!(e.to_string().starts_with("max_pool2d:"), "{e}");
    }
}

//! 2-D max, average and adaptive average pooling on contiguous NCHW buffers, with
//! PyTorch's semantics (`torch.nn.functional.max_pool2d`, `avg_pool2d`,
//! `adaptive_avg_pool2d`), forward and backward.
//!
//! Every `(n, c)` plane is independent; above a size threshold the planes are spread over
//! sinew's thread pool, which changes no result.

use crate::dtype::Float;
use crate::parallel::worth_parallel;
use std::hint::select_unpredictable;

use rayon::prelude::*;

/// Output length of a pooling window along one axis, PyTorch's `pooling_output_shape`:
/// `floor_or_ceil((in + 2p − d(k−1) − 1)/s) + 1`, where in ceil mode the last window must
/// start inside the input or the left padding. May be ≤ 0 for an invalid geometry.
fn pool_out_len(input: usize, k: usize, s: usize, p: usize, d: usize, ceil_mode: bool) -> isize {
    if s == 0 || k == 0 || d == 0 {
        return 0;
    }
    // 128 bits hold every term exactly for any `usize` arguments
    let (input, k, s, p, d) = (input as i128, k as i128, s as i128, p as i128, d as i128);
    let num = input + 2 * p - d * (k - 1) - 1 + if ceil_mode { s - 1 } else { 0 };
    let mut out = num.div_euclid(s) + 1;
    if ceil_mode && (out - 1) * s >= input + p {
        out -= 1;
    }
    out.clamp(isize::MIN as i128, isize::MAX as i128) as isize
}

/// The shape parameters of a 2-D pooling: input `(batch, channels, in_h, in_w)`, output
/// `(batch, channels, out_h(), out_w())`. Pairs are `[height, width]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Pool2dGeometry {
    /// Batch size `N` (may be 0).
    pub batch: usize,
    /// Channels `C`.
    pub channels: usize,
    /// Input height `H`.
    pub in_h: usize,
    /// Input width `W`.
    pub in_w: usize,
    /// Window size `[kH, kW]`.
    pub kernel: [usize; 2],
    /// Stride `[sH, sW]` (PyTorch's default is the kernel size; the caller fills it in).
    pub stride: [usize; 2],
    /// Implicit padding on each side `[pH, pW]`, at most half the kernel size (`-inf` for
    /// max pooling, zeros for average pooling).
    pub padding: [usize; 2],
    /// Window dilation `[dH, dW]` (max pooling only: average pooling needs `[1, 1]`).
    pub dilation: [usize; 2],
    /// Round the output size up instead of down (the last window must still start inside
    /// the input or the left padding).
    pub ceil_mode: bool,
}

impl Pool2dGeometry {
    /// Output height (0 if the geometry is invalid).
    pub fn out_h(&self) -> usize {
        pool_out_len(
            self.in_h,
            self.kernel[0],
            self.stride[0],
            self.padding[0],
            self.dilation[0],
            self.ceil_mode,
        )
        .max(0) as usize
    }

    /// Output width (0 if the geometry is invalid).
    pub fn out_w(&self) -> usize {
        pool_out_len(
            self.in_w,
            self.kernel[1],
            self.stride[1],
            self.padding[1],
            self.dilation[1],
            self.ceil_mode,
        )
        .max(0) as usize
    }

    /// Number of input elements, `N·C·H·W`.
    pub fn input_len(&self) -> usize {
        self.batch * self.channels * self.in_h * self.in_w
    }

    /// Number of output elements, `N·C·Ho·Wo`.
    pub fn output_len(&self) -> usize {
        self.batch * self.channels * self.out_h() * self.out_w()
    }

    /// Checks that the geometry describes a valid pooling (PyTorch's `pool2d_shape_check`),
    /// saying what is wrong if not.
    pub fn check(&self) -> Result<(), String> {
        if self.kernel.contains(&0) {
            return Err(format!("kernel size must be positive, got {:?}", self.kernel));
        }
        if self.stride.contains(&0) {
            return Err(format!("stride must be positive, got {:?}", self.stride));
        }
        if self.dilation.contains(&0) {
            return Err(format!("dilation must be positive, got {:?}", self.dilation));
        }
        if self.padding[0] > self.kernel[0] / 2 || self.padding[1] > self.kernel[1] / 2 {
            return Err(format!(
                "padding should be at most half of the kernel size, got padding {:?}, kernel {:?}",
                self.padding, self.kernel
            ));
        }
        let max = crate::shape::MAX_EXTENT as u128;
        if (0..2).any(|a| {
            self.stride[a] as u128 > max || self.dilation[a] as u128 * (self.kernel[a] as u128 - 1) + 1 > max
        }) {
            return Err(format!(
                "kernel {:?}, dilation {:?} or stride {:?} is larger than 2^60",
                self.kernel, self.dilation, self.stride
            ));
        }
        if self.channels == 0 || self.in_h == 0 || self.in_w == 0 {
            return Err(format!(
                "channels and input size must be positive, got channels {}, input {}x{}",
                self.channels, self.in_h, self.in_w
            ));
        }
        if self.out_h() == 0 || self.out_w() == 0 {
            let oh = pool_out_len(
                self.in_h,
                self.kernel[0],
                self.stride[0],
                self.padding[0],
                self.dilation[0],
                self.ceil_mode,
            );
            let ow = pool_out_len(
                self.in_w,
                self.kernel[1],
                self.stride[1],
                self.padding[1],
                self.dilation[1],
                self.ceil_mode,
            );
            return Err(format!(
                "given input size {}x{}, the calculated output size {oh}x{ow} is too small",
                self.in_h, self.in_w
            ));
        }
        let output = [self.batch, self.channels, self.out_h(), self.out_w()];
        for (name, shape) in
            [("input", [self.batch, self.channels, self.in_h, self.in_w]), ("output", output)]
        {
            if crate::shape::checked_numel(&shape).is_none() {
                return Err(format!("the {name} would have shape {shape:?}, more than 2^60 elements"));
            }
        }
        Ok(())
    }

    fn checked(&self, what: &str) {
        if let Err(e) = self.check() {
            panic!("{what}: invalid geometry: {e}");
        }
    }

    fn checked_avg(&self, what: &str) {
        self.checked(what);
        assert!(self.dilation == [1, 1], "{what}: average pooling has no dilation, got {:?}", self.dilation);
    }
}

fn check_len(what: &str, name: &str, got: usize, want: usize) {
    assert!(got == want, "{what}: {name} has {got} elements, the geometry needs {want}");
}

/// Runs `f(plane_index, out_plane)` for every `(n, c)` plane of `out` (planes of
/// `out_plane` elements), over threads when the work (`out` plus the `source_len`
/// elements read) is large.
fn for_each_plane<T, F>(out: &mut [T], out_plane: usize, source_len: usize, f: F)
where
    T: Send,
    F: Fn(usize, &mut [T]) + Sync + Send,
{
    if out_plane == 0 || out.is_empty() {
        return;
    }
    if worth_parallel(source_len + out.len()) {
        crate::parallel::install(|| out.par_chunks_mut(out_plane).enumerate().for_each(|(i, o)| f(i, o)));
    } else {
        out.chunks_mut(out_plane).enumerate().for_each(|(i, o)| f(i, o));
    }
}

/// Max pooling, PyTorch's `F.max_pool2d(..., return_indices=True)`: returns the
/// `(N, C, Ho, Wo)` maxima and, for each, the flat index `h·W + w` of the chosen element
/// within its input plane. A NaN in a window wins (the last NaN, as in PyTorch); ties keep
/// the first maximum. A window that holds no input element (possible only with dilation)
/// gives `-inf` and index `-1`.
///
/// # Panics
/// If the geometry is invalid or `x` has the wrong length.
pub fn max_pool2d_forward<T: Float>(x: &[T], g: &Pool2dGeometry) -> (Vec<T>, Vec<i64>) {
    const WHAT: &str = "max_pool2d_forward";
    g.checked(WHAT);
    check_len(WHAT, "input", x.len(), g.input_len());
    let (h, w, oh, ow) = (g.in_h as isize, g.in_w as isize, g.out_h(), g.out_w());
    let [kh, kw] = g.kernel.map(|v| v as isize);
    let [sh, sw] = g.stride.map(|v| v as isize);
    let [ph, pw] = g.padding.map(|v| v as isize);
    let [dh, dw] = g.dilation.map(|v| v as isize);
    let plane = g.in_h * g.in_w;
    let ohw = oh * ow;
    // A larger value or a NaN takes over; ties keep the first seen. On activations the
    // comparison is a coin flip, so it must not be a branch: the value update is the
    // `maxss` pattern and the index a `cmov`. (Folding the NaN test into the condition
    // makes LLVM branch on it; kept apart, NaN is a branch that is never taken.)
    let keep_max = |best: &mut T, best_i: &mut i64, v: T, j: usize| {
        let greater = v > *best;
        *best_i = select_unpredictable(greater, j as i64, *best_i);
        *best = if greater { v } else { *best };
        if v.is_nan() {
            (*best, *best_i) = (v, j as i64);
        }
    };
    // Any one output: its window clipped to the input (the first valid row/column found
    // by stepping over the padding), scanned row by row. `-inf` / `-1` if empty.
    let one_window = |xp: &[T], oy: usize, ox: usize| -> (T, i64) {
        let mut h0 = oy as isize * sh - ph;
        let h1 = (h0 + (kh - 1) * dh + 1).min(h);
        while h0 < 0 {
            h0 += dh;
        }
        let mut w0 = ox as isize * sw - pw;
        let w1 = (w0 + (kw - 1) * dw + 1).min(w);
        while w0 < 0 {
            w0 += dw;
        }
        let (mut best, mut best_i) = (T::NEG_INFINITY, -1i64);
        if h0 < h1 && w0 < w1 {
            best_i = (h0 * w + w0) as i64;
            for iy in (h0..h1).step_by(dh as usize) {
                for ix in (w0..w1).step_by(dw as usize) {
                    let j = (iy * w + ix) as usize;
                    keep_max(&mut best, &mut best_i, xp[j], j);
                }
            }
        }
        (best, best_i)
    };
    // Outputs whose window lies wholly inside the input along an axis: `o` with
    // `o·s - p >= 0` and `o·s - p + (k-1)·d < size`.
    let interior = |s: isize, p: isize, k: isize, d: isize, size: isize, outs: usize| {
        let lo = ((p + s - 1) / s) as usize;
        let span = (k - 1) * d;
        let hi = if size - 1 - span + p < 0 { 0 } else { ((size - 1 - span + p) / s + 1) as usize };
        (lo.min(outs), hi.min(outs).max(lo.min(outs)))
    };
    let (oy_lo, oy_hi) = interior(sh, ph, kh, dh, h, oh);
    let (ox_lo, ox_hi) = interior(sw, pw, kw, dw, w, ow);
    let pool_plane = |i: usize, vp: &mut [T], ip: &mut [i64]| {
        let xp = &x[i * plane..(i + 1) * plane];
        for oy in 0..oh {
            let (vr, ir) = (&mut vp[oy * ow..(oy + 1) * ow], &mut ip[oy * ow..(oy + 1) * ow]);
            let interior_row = (oy_lo..oy_hi).contains(&oy);
            for ox in 0..ow {
                if !(interior_row && (ox_lo..ox_hi).contains(&ox)) {
                    (vr[ox], ir[ox]) = one_window(xp, oy, ox);
                }
            }
            if !interior_row || ox_lo >= ox_hi {
                continue;
            }
            // Interior outputs of this row, one kernel offset at a time across the row, so
            // neighbouring outputs do not wait on each other.
            let y0 = (oy as isize * sh - ph) as usize;
            let x0 = |ox: usize| (ox as isize * sw - pw) as usize;
            for ky in 0..kh as usize {
                let row = (y0 + ky * dh as usize) * w as usize;
                for kx in 0..kw as usize {
                    let first = ky == 0 && kx == 0;
                    for ox in ox_lo..ox_hi {
                        let j = row + x0(ox) + kx * dw as usize;
                        if first {
                            (vr[ox], ir[ox]) = (xp[j], j as i64);
                        } else {
                            keep_max(&mut vr[ox], &mut ir[ox], xp[j], j);
                        }
                    }
                }
            }
        }
    };
    // every output is written below
    let mut values = crate::buffer::scratch::<T>(g.output_len());
    let mut indices = crate::buffer::scratch::<i64>(g.output_len());
    if ohw > 0 {
        if worth_parallel(x.len() + 2 * values.len()) {
            let planes = values.par_chunks_mut(ohw).zip(indices.par_chunks_mut(ohw));
            crate::parallel::install(|| planes.enumerate().for_each(|(i, (vp, ip))| pool_plane(i, vp, ip)));
        } else {
            let planes = values.chunks_mut(ohw).zip(indices.chunks_mut(ohw));
            planes.enumerate().for_each(|(i, (vp, ip))| pool_plane(i, vp, ip));
        }
    }
    (values, indices)
}

/// Gradient of [`max_pool2d_forward`]: scatter-adds each `dy` element onto the input
/// element its index names (index `-1` contributes nothing); returns `(N, C, H, W)`.
///
/// # Panics
/// If the geometry is invalid, a buffer has the wrong length, or an index lies outside its
/// input plane.
pub fn max_pool2d_backward<T: Float>(dy: &[T], indices: &[i64], g: &Pool2dGeometry) -> Vec<T> {
    const WHAT: &str = "max_pool2d_backward";
    g.checked(WHAT);
    check_len(WHAT, "output gradient", dy.len(), g.output_len());
    check_len(WHAT, "indices", indices.len(), g.output_len());
    let plane = g.in_h * g.in_w;
    let ohw = g.out_h() * g.out_w();
    let mut dx = crate::buffer::filled(g.input_len(), T::ZERO);
    for_each_plane(&mut dx, plane, dy.len(), |i, dxp| {
        let dyp = &dy[i * ohw..(i + 1) * ohw];
        let ip = &indices[i * ohw..(i + 1) * ohw];
        for (&gv, &j) in dyp.iter().zip(ip) {
            if j == -1 {
                continue;
            }
            assert!(j >= 0 && (j as usize) < plane, "{WHAT}: index {j} outside the input plane of {plane}");
            dxp[j as usize] += gv;
        }
    });
    dx
}

/// One average-pooling window along an axis: the clipped input range and the number of
/// positions counted when padding is included (the window clipped to the padded input).
#[inline]
fn avg_window(o: usize, k: usize, s: usize, p: usize, input: usize) -> (usize, usize, usize) {
    let start = (o * s) as isize - p as isize;
    let end = (start + k as isize).min((input + p) as isize);
    let padded_len = (end - start) as usize;
    (start.max(0) as usize, end.min(input as isize).max(0) as usize, padded_len)
}

/// Average pooling, PyTorch's `F.avg_pool2d` (no divisor override): the divisor is the
/// window clipped to the padded input when `count_include_pad`, else the number of input
/// elements in the window. Returns `(N, C, Ho, Wo)`.
///
/// # Panics
/// If the geometry is invalid, its dilation is not `[1, 1]`, or `x` has the wrong length.
pub fn avg_pool2d_forward<T: Float>(x: &[T], g: &Pool2dGeometry, count_include_pad: bool) -> Vec<T> {
    const WHAT: &str = "avg_pool2d_forward";
    g.checked_avg(WHAT);
    check_len(WHAT, "input", x.len(), g.input_len());
    let (h, w, oh, ow) = (g.in_h, g.in_w, g.out_h(), g.out_w());
    let mut y = crate::buffer::filled(g.output_len(), T::ZERO);
    for_each_plane(&mut y, oh * ow, x.len(), |i, yp| {
        let xp = &x[i * h * w..(i + 1) * h * w];
        for oy in 0..oh {
            let (h0, h1, hp) = avg_window(oy, g.kernel[0], g.stride[0], g.padding[0], h);
            for ox in 0..ow {
                let (w0, w1, wp) = avg_window(ox, g.kernel[1], g.stride[1], g.padding[1], w);
                if h0 >= h1 || w0 >= w1 {
                    yp[oy * ow + ox] = T::ZERO;
                    continue;
                }
                let mut sum = T::ZERO;
                for iy in h0..h1 {
                    for &v in &xp[iy * w + w0..iy * w + w1] {
                        sum += v;
                    }
                }
                let count = if count_include_pad { hp * wp } else { (h1 - h0) * (w1 - w0) };
                yp[oy * ow + ox] = sum / T::from_f64(count as f64);
            }
        }
    });
    y
}

/// Gradient of [`avg_pool2d_forward`]: each `dy` element, divided by its window's divisor,
/// is added to every input element of the window. Returns `(N, C, H, W)`.
///
/// # Panics
/// If the geometry is invalid, its dilation is not `[1, 1]`, or `dy` has the wrong length.
pub fn avg_pool2d_backward<T: Float>(dy: &[T], g: &Pool2dGeometry, count_include_pad: bool) -> Vec<T> {
    const WHAT: &str = "avg_pool2d_backward";
    g.checked_avg(WHAT);
    check_len(WHAT, "output gradient", dy.len(), g.output_len());
    let (h, w, oh, ow) = (g.in_h, g.in_w, g.out_h(), g.out_w());
    let mut dx = crate::buffer::filled(g.input_len(), T::ZERO);
    for_each_plane(&mut dx, h * w, dy.len(), |i, dxp| {
        let dyp = &dy[i * oh * ow..(i + 1) * oh * ow];
        for oy in 0..oh {
            let (h0, h1, hp) = avg_window(oy, g.kernel[0], g.stride[0], g.padding[0], h);
            for ox in 0..ow {
                let (w0, w1, wp) = avg_window(ox, g.kernel[1], g.stride[1], g.padding[1], w);
                if h0 >= h1 || w0 >= w1 {
                    continue;
                }
                let count = if count_include_pad { hp * wp } else { (h1 - h0) * (w1 - w0) };
                let gv = dyp[oy * ow + ox] / T::from_f64(count as f64);
                for iy in h0..h1 {
                    for d in &mut dxp[iy * w + w0..iy * w + w1] {
                        *d += gv;
                    }
                }
            }
        }
    });
    dx
}

/// Input range of adaptive-pooling window `i` of `out` over `input` elements:
/// `floor(i·in/out) .. ceil((i+1)·in/out)`.
#[inline]
fn adaptive_range(i: usize, input: usize, out: usize) -> (usize, usize) {
    // in 128 bits: `(i + 1)·input` may pass `usize` for a large output size
    let (i, input, out) = (i as u128, input as u128, out as u128);
    ((i * input / out) as usize, ((i + 1) * input).div_ceil(out) as usize)
}

fn check_adaptive(
    what: &str,
    len: usize,
    name: &str,
    n: usize,
    c: usize,
    h: usize,
    w: usize,
    out: [usize; 2],
) {
    assert!(
        c > 0 && h > 0 && w > 0,
        "{what}: channels and input size must be positive, got channels {c}, input {h}x{w}"
    );
    for shape in [[n, c, h, w], [n, c, out[0], out[1]]] {
        assert!(
            crate::shape::checked_numel(&shape).is_some(),
            "{what}: shape {shape:?} is too large (more than 2^60 elements)"
        );
    }
    let want = if name == "input" { n * c * h * w } else { n * c * out[0] * out[1] };
    check_len(what, name, len, want);
}

/// Adaptive average pooling, PyTorch's `F.adaptive_avg_pool2d`: `x` is `(N, C, H, W)`,
/// output `(N, C, out[0], out[1])`, window `i` covering rows
/// `floor(i·H/oh) .. ceil((i+1)·H/oh)` (likewise for columns).
///
/// # Panics
/// If `c`, `h` or `w` is zero or `x` has the wrong length.
pub fn adaptive_avg_pool2d_forward<T: Float>(
    x: &[T],
    n: usize,
    c: usize,
    h: usize,
    w: usize,
    out: [usize; 2],
) -> Vec<T> {
    const WHAT: &str = "adaptive_avg_pool2d_forward";
    check_adaptive(WHAT, x.len(), "input", n, c, h, w, out);
    let [oh, ow] = out;
    let mut y = crate::buffer::filled(n * c * oh * ow, T::ZERO);
    for_each_plane(&mut y, oh * ow, x.len(), |i, yp| {
        let xp = &x[i * h * w..(i + 1) * h * w];
        for oy in 0..oh {
            let (h0, h1) = adaptive_range(oy, h, oh);
            for ox in 0..ow {
                let (w0, w1) = adaptive_range(ox, w, ow);
                let mut sum = T::ZERO;
                for iy in h0..h1 {
                    for &v in &xp[iy * w + w0..iy * w + w1] {
                        sum += v;
                    }
                }
                yp[oy * ow + ox] = sum / T::from_f64(((h1 - h0) * (w1 - w0)) as f64);
            }
        }
    });
    y
}

/// Gradient of [`adaptive_avg_pool2d_forward`]: each `dy` element divided by its window
/// size is added to every input element of the window. Returns `(N, C, H, W)`.
///
/// # Panics
/// If `c`, `h` or `w` is zero or `dy` has the wrong length.
pub fn adaptive_avg_pool2d_backward<T: Float>(
    dy: &[T],
    n: usize,
    c: usize,
    h: usize,
    w: usize,
    out: [usize; 2],
) -> Vec<T> {
    const WHAT: &str = "adaptive_avg_pool2d_backward";
    check_adaptive(WHAT, dy.len(), "output gradient", n, c, h, w, out);
    let [oh, ow] = out;
    let mut dx = crate::buffer::filled(n * c * h * w, T::ZERO);
    if oh * ow == 0 {
        return dx;
    }
    for_each_plane(&mut dx, h * w, dy.len(), |i, dxp| {
        let dyp = &dy[i * oh * ow..(i + 1) * oh * ow];
        for oy in 0..oh {
            let (h0, h1) = adaptive_range(oy, h, oh);
            for ox in 0..ow {
                let (w0, w1) = adaptive_range(ox, w, ow);
                let gv = dyp[oy * ow + ox] / T::from_f64(((h1 - h0) * (w1 - w0)) as f64);
                for iy in h0..h1 {
                    for d in &mut dxp[iy * w + w0..iy * w + w1] {
                        *d += gv;
                    }
                }
            }
        }
    });
    dx
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::conv::tests::{assert_close, dot, finite_diff, rand_vec};
    use proptest::prelude::*;

    // ---- naive references -----------------------------------------------------------

    /// Visits the in-bounds input positions of output `(oy, ox)` in window order.
    fn window(g: &Pool2dGeometry, oy: usize, ox: usize, mut f: impl FnMut(usize, usize)) {
        for ki in 0..g.kernel[0] {
            let iy = (oy * g.stride[0] + ki * g.dilation[0]) as isize - g.padding[0] as isize;
            for kj in 0..g.kernel[1] {
                let ix = (ox * g.stride[1] + kj * g.dilation[1]) as isize - g.padding[1] as isize;
                if iy >= 0 && ix >= 0 && (iy as usize) < g.in_h && (ix as usize) < g.in_w {
                    f(iy as usize, ix as usize);
                }
            }
        }
    }

    fn naive_max(x: &[f64], g: &Pool2dGeometry) -> (Vec<f64>, Vec<i64>) {
        let (oh, ow, plane) = (g.out_h(), g.out_w(), g.in_h * g.in_w);
        let (mut y, mut idx) = (Vec::new(), Vec::new());
        for p in 0..g.batch * g.channels {
            for oy in 0..oh {
                for ox in 0..ow {
                    let (mut best, mut best_i) = (f64::NEG_INFINITY, -1i64);
                    window(g, oy, ox, |iy, ix| {
                        let v = x[p * plane + iy * g.in_w + ix];
                        if best_i < 0 || v > best || v.is_nan() {
                            best = v;
                            best_i = (iy * g.in_w + ix) as i64;
                        }
                    });
                    y.push(best);
                    idx.push(best_i);
                }
            }
        }
        (y, idx)
    }

    /// PyTorch's divisor: window positions inside the padded input (`[-p, in + p)`), or
    /// inside the input only.
    fn naive_avg_visit(g: &Pool2dGeometry, include_pad: bool, mut f: impl FnMut(usize, usize, f64)) {
        let (oh, ow, plane) = (g.out_h(), g.out_w(), g.in_h * g.in_w);
        for p in 0..g.batch * g.channels {
            for oy in 0..oh {
                for ox in 0..ow {
                    let mut padded = 0usize;
                    for ki in 0..g.kernel[0] {
                        for kj in 0..g.kernel[1] {
                            let iy = oy * g.stride[0] + ki;
                            let ix = ox * g.stride[1] + kj;
                            if iy < g.in_h + 2 * g.padding[0] && ix < g.in_w + 2 * g.padding[1] {
                                padded += 1;
                            }
                        }
                    }
                    let mut inside = Vec::new();
                    window(g, oy, ox, |iy, ix| inside.push(p * plane + iy * g.in_w + ix));
                    let divisor = if include_pad { padded } else { inside.len() } as f64;
                    for i in inside {
                        f(i, (p * oh + oy) * ow + ox, divisor);
                    }
                }
            }
        }
    }

    fn naive_avg(x: &[f64], g: &Pool2dGeometry, include_pad: bool) -> Vec<f64> {
        let mut y = vec![0.0; g.output_len()];
        naive_avg_visit(g, include_pad, |xi, yi, d| y[yi] += x[xi] / d);
        y
    }

    fn naive_adaptive_visit(
        n: usize,
        c: usize,
        h: usize,
        w: usize,
        out: [usize; 2],
        mut f: impl FnMut(usize, usize, f64),
    ) {
        for p in 0..n * c {
            for oy in 0..out[0] {
                let (h0, h1) = ((oy * h) / out[0], ((oy + 1) * h).div_ceil(out[0]));
                for ox in 0..out[1] {
                    let (w0, w1) = ((ox * w) / out[1], ((ox + 1) * w).div_ceil(out[1]));
                    let size = ((h1 - h0) * (w1 - w0)) as f64;
                    for iy in h0..h1 {
                        for ix in w0..w1 {
                            f((p * h + iy) * w + ix, (p * out[0] + oy) * out[1] + ox, size);
                        }
                    }
                }
            }
        }
    }

    /// Distinct values (spacing 0.01) in a seed-dependent order, so a max is never a tie.
    fn distinct_values(seed: u64, n: usize) -> Vec<f64> {
        let r = rand_vec(seed, n);
        let mut order: Vec<usize> = (0..n).collect();
        order.sort_by(|&a, &b| r[a].total_cmp(&r[b]));
        let mut x = vec![0.0; n];
        for (rank, &i) in order.iter().enumerate() {
            x[i] = rank as f64 * 0.01 - 0.5;
        }
        x
    }

    // ---- strategies -----------------------------------------------------------------

    fn pool_geometry(max_dilation: usize) -> impl Strategy<Value = Pool2dGeometry> {
        (
            1usize..=2,
            1usize..=3,
            prop::array::uniform2(1usize..=9),
            prop::array::uniform2(1usize..=3),
            prop::array::uniform2(1usize..=3),
            prop::array::uniform2(0usize..=1),
            prop::array::uniform2(1..=max_dilation),
            any::<bool>(),
        )
            .prop_map(|(batch, channels, hw, kernel, stride, padding, dilation, ceil_mode)| Pool2dGeometry {
                batch,
                channels,
                in_h: hw[0],
                in_w: hw[1],
                kernel,
                stride,
                padding,
                dilation,
                ceil_mode,
            })
            .prop_filter("valid pooling", |g| g.check().is_ok())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(32))]

        #[test]
        fn max_pool_matches_naive_with_ties_and_nans(g in pool_geometry(2), seed in any::<u64>(), nans in 0usize..3) {
            // Few distinct levels (many ties), some NaNs and -inf.
            let mut x: Vec<f64> = rand_vec(seed, g.input_len()).iter().map(|v| (v * 3.0).round()).collect();
            let picks = rand_vec(seed ^ 5, 2 * nans);
            for (k, r) in picks.iter().enumerate() {
                let i = ((r + 1.0) / 2.0 * x.len() as f64) as usize % x.len();
                x[i] = if k % 2 == 0 { f64::NAN } else { f64::NEG_INFINITY };
            }
            let (y, idx) = max_pool2d_forward(&x, &g);
            let (y_want, idx_want) = naive_max(&x, &g);
            assert_close(&y, &y_want, 0.0, "max_pool2d values");
            prop_assert_eq!(idx, idx_want);
        }

        #[test]
        fn max_pool_backward_matches_finite_differences(g in pool_geometry(2), seed in any::<u64>()) {
            let x = distinct_values(seed, g.input_len());
            let dy = rand_vec(seed ^ 1, g.output_len());
            let (_, idx) = max_pool2d_forward(&x, &g);
            let dx = max_pool2d_backward(&dy, &idx, &g);
            let mut scatter = vec![0.0; g.input_len()];
            let plane = g.in_h * g.in_w;
            let ohw = g.out_h() * g.out_w();
            for (o, (&i, &gv)) in idx.iter().zip(&dy).enumerate() {
                if i >= 0 {
                    scatter[(o / ohw) * plane + i as usize] += gv;
                }
            }
            assert_close(&dx, &scatter, 1e-12, "max_pool2d backward vs scatter");
            // Windows without input elements are a constant -inf: leave them out of the sum.
            let loss = |x: &[f64]| {
                max_pool2d_forward(x, &g).0.iter().zip(&dy).filter(|(y, _)| y.is_finite()).map(|(y, d)| y * d).sum()
            };
            assert_close(&dx, &finite_diff(&x, 1e-6, loss), 1e-6, "max_pool2d backward vs finite differences");
        }

        #[test]
        fn avg_pool_matches_naive_and_finite_differences(g in pool_geometry(1), include_pad in any::<bool>(), seed in any::<u64>()) {
            let x = rand_vec(seed, g.input_len());
            let dy = rand_vec(seed ^ 1, g.output_len());
            assert_close(&avg_pool2d_forward(&x, &g, include_pad), &naive_avg(&x, &g, include_pad), 1e-12, "avg_pool2d");
            let dx = avg_pool2d_backward(&dy, &g, include_pad);
            let mut want = vec![0.0; g.input_len()];
            naive_avg_visit(&g, include_pad, |xi, yi, d| want[xi] += dy[yi] / d);
            assert_close(&dx, &want, 1e-12, "avg_pool2d backward vs naive adjoint");
            let fd = finite_diff(&x, 1e-6, |x| dot(&avg_pool2d_forward(x, &g, include_pad), &dy));
            assert_close(&dx, &fd, 1e-6, "avg_pool2d backward vs finite differences");
        }

        #[test]
        fn adaptive_avg_pool_matches_naive_and_finite_differences(
            n in 0usize..=2, c in 1usize..=3, h in 1usize..=9, w in 1usize..=9,
            out in prop::array::uniform2(1usize..=9), seed in any::<u64>(),
        ) {
            let x = rand_vec(seed, n * c * h * w);
            let dy = rand_vec(seed ^ 1, n * c * out[0] * out[1]);
            let mut want = vec![0.0; dy.len()];
            naive_adaptive_visit(n, c, h, w, out, |xi, yi, s| want[yi] += x[xi] / s);
            assert_close(&adaptive_avg_pool2d_forward(&x, n, c, h, w, out), &want, 1e-12, "adaptive_avg_pool2d");
            let dx = adaptive_avg_pool2d_backward(&dy, n, c, h, w, out);
            let mut dx_want = vec![0.0; x.len()];
            naive_adaptive_visit(n, c, h, w, out, |xi, yi, s| dx_want[xi] += dy[yi] / s);
            assert_close(&dx, &dx_want, 1e-12, "adaptive_avg_pool2d backward vs naive adjoint");
            let fd = finite_diff(&x, 1e-6, |x| dot(&adaptive_avg_pool2d_forward(x, n, c, h, w, out), &dy));
            assert_close(&dx, &fd, 1e-6, "adaptive_avg_pool2d backward vs finite differences");
        }
    }

    fn geom(in_hw: usize, k: usize, s: usize, p: usize, d: usize, ceil_mode: bool) -> Pool2dGeometry {
        Pool2dGeometry {
            batch: 1,
            channels: 1,
            in_h: in_hw,
            in_w: in_hw,
            kernel: [k, k],
            stride: [s, s],
            padding: [p, p],
            dilation: [d, d],
            ceil_mode,
        }
    }

    #[test]
    fn output_sizes_follow_pytorch() {
        // (in, k, s, p, d, ceil) -> out, as torch.nn.MaxPool2d computes them.
        for &(i, k, s, p, d, ceil, out) in &[
            (6, 2, 2, 0, 1, false, 3),
            (5, 2, 2, 0, 1, false, 2),
            (5, 2, 2, 0, 1, true, 3),
            (4, 2, 2, 1, 1, true, 3),
            (5, 2, 2, 1, 1, true, 3), // the last window would start in the right padding: dropped
            (6, 3, 3, 1, 1, true, 3),
            (7, 3, 2, 1, 2, false, 3),
            (1, 1, 1, 0, 1, true, 1),
            (2, 3, 3, 1, 1, true, 1),
        ] {
            let g = geom(i, k, s, p, d, ceil);
            assert!(g.check().is_ok(), "{g:?}");
            assert_eq!((g.out_h(), g.out_w()), (out, out), "{g:?}");
        }
        let e = geom(5, 3, 1, 2, 1, false).check().unwrap_err();
        assert!(e.contains("half of the kernel"), "{e}");
        let e = geom(2, 3, 1, 0, 2, false).check().unwrap_err();
        assert!(e.contains("too small"), "{e}");
        assert!(geom(4, 0, 1, 0, 1, false).check().unwrap_err().contains("kernel"));
        assert!(geom(4, 2, 0, 0, 1, false).check().unwrap_err().contains("stride"));
    }

    #[test]
    #[should_panic(expected = "average pooling has no dilation")]
    fn avg_pool_rejects_dilation() {
        avg_pool2d_forward(&[0.0f64; 16], &geom(4, 2, 2, 0, 2, false), true);
    }

    #[test]
    fn max_pool_nan_ties_and_empty_windows() {
        // One 2x3 plane, a 2x3 window: NaN wins (the last NaN), ties keep the first.
        let g = Pool2dGeometry { kernel: [2, 3], stride: [2, 3], ..geom(1, 1, 1, 0, 1, false) };
        let g = Pool2dGeometry { in_h: 2, in_w: 3, ..g };
        let (y, idx) = max_pool2d_forward(&[1.0, f64::NAN, 3.0, 2.0, f64::NAN, 0.0], &g);
        assert!(y[0].is_nan());
        assert_eq!(idx, vec![4]);
        let (y, idx) = max_pool2d_forward(&[1.0, 3.0, 3.0, 2.0, 3.0, 0.0], &g);
        assert_eq!((y, idx), (vec![3.0], vec![1]));
        let (y, idx) = max_pool2d_forward(&[f64::NEG_INFINITY; 6], &g);
        assert_eq!((y, idx), (vec![f64::NEG_INFINITY], vec![0]));
        // Input 2 wide, padding 1, kernel 2 dilated by 3: the window reads columns -1 and 2,
        // neither inside: -inf and index -1, which the backward skips.
        let g = geom(2, 2, 1, 1, 3, false);
        assert_eq!((g.out_h(), g.out_w()), (1, 1));
        let (y, idx) = max_pool2d_forward(&[1.0, 2.0, 3.0, 4.0], &g);
        assert_eq!((y, idx.clone()), (vec![f64::NEG_INFINITY], vec![-1]));
        assert_eq!(max_pool2d_backward(&[1.0], &idx, &g), vec![0.0; 4]);
    }

    #[test]
    #[should_panic(expected = "outside the input plane")]
    fn max_pool_backward_rejects_bad_indices() {
        max_pool2d_backward(&[1.0f64], &[4], &geom(2, 2, 2, 0, 1, false));
    }

    /// Large enough to run over threads: same results as the naive loops.
    #[test]
    fn parallel_planes_match_naive() {
        let g = Pool2dGeometry {
            batch: 3,
            channels: 20,
            in_h: 47,
            in_w: 50,
            kernel: [3, 3],
            stride: [2, 2],
            padding: [1, 1],
            dilation: [1, 1],
            ceil_mode: true,
        };
        assert!(g.input_len() >= crate::parallel::PARALLEL_ELEMENT_THRESHOLD);
        let x = distinct_values(3, g.input_len());
        let dy = rand_vec(4, g.output_len());
        let (y, idx) = max_pool2d_forward(&x, &g);
        let (y_want, idx_want) = naive_max(&x, &g);
        assert_eq!((&y, &idx), (&y_want, &idx_want));
        let dx = max_pool2d_backward(&dy, &idx, &g);
        let plane = g.in_h * g.in_w;
        let ohw = g.out_h() * g.out_w();
        let mut want = vec![0.0; g.input_len()];
        for (o, (&i, &gv)) in idx.iter().zip(&dy).enumerate() {
            want[(o / ohw) * plane + i as usize] += gv;
        }
        assert_close(&dx, &want, 1e-12, "max backward");
        assert_close(&avg_pool2d_forward(&x, &g, false), &naive_avg(&x, &g, false), 1e-12, "avg");
        let mut want = vec![0.0; g.input_len()];
        naive_avg_visit(&g, false, |xi, yi, d| want[xi] += dy[yi] / d);
        assert_close(&avg_pool2d_backward(&dy, &g, false), &want, 1e-12, "avg backward");
        let (n, c, h, w) = (g.batch, g.channels, g.in_h, g.in_w);
        let mut want = vec![0.0; n * c * 5 * 7];
        naive_adaptive_visit(n, c, h, w, [5, 7], |xi, yi, s| want[yi] += x[xi] / s);
        assert_close(&adaptive_avg_pool2d_forward(&x, n, c, h, w, [5, 7]), &want, 1e-12, "adaptive");
    }

    #[test]
    fn f32_pools_match_f64() {
        let g = geom(7, 3, 2, 1, 1, true);
        let x = rand_vec(9, g.input_len());
        let xf: Vec<f32> = x.iter().map(|&v| v as f32).collect();
        let back = |v: Vec<f32>| v.into_iter().map(f64::from).collect::<Vec<f64>>();
        assert_close(&back(max_pool2d_forward(&xf, &g).0), &max_pool2d_forward(&x, &g).0, 1e-6, "max");
        assert_close(
            &back(avg_pool2d_forward(&xf, &g, true)),
            &avg_pool2d_forward(&x, &g, true),
            1e-6,
            "avg",
        );
        let a = adaptive_avg_pool2d_forward(&xf, 1, 1, 7, 7, [3, 2]);
        assert_close(&back(a), &adaptive_avg_pool2d_forward(&x, 1, 1, 7, 7, [3, 2]), 1e-6, "adaptive");
    }
}

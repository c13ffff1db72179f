//! Batch normalisation with the batch's statistics, on a contiguous `(N, C, S)` slice
//! (`S` = the product of the spatial sizes): per-channel mean and biased variance and the
//! normalised output in one op, and the whole gradient in another. Channels (for the
//! statistics) and `(n, c)` rows (for the elementwise parts) run in parallel; each
//! channel's sums are added in a fixed order, so results do not depend on the thread count.

use rayon::prelude::*;

use super::lanes::{lane_sum, lane_sum_pairs};
use crate::dtype::Float;
use crate::parallel;
use crate::simd::Kernel;

/// The sizes: `n` batch items of `c` channels of `s` values each.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Dims {
    pub n: usize,
    pub c: usize,
    pub s: usize,
}

impl Dims {
    fn parallel(&self) -> bool {
        parallel::worth_parallel(self.n * self.c * self.s)
    }

    /// The `s` values of batch item `i`, channel `ch`.
    fn row<'a, T>(&self, x: &'a [T], i: usize, ch: usize) -> &'a [T] {
        let start = (i * self.c + ch) * self.s;
        &x[start..start + self.s]
    }
}

/// `f(channel)` for every channel, in parallel when worth it, collected in order.
fn per_channel<R: Send>(dims: Dims, f: impl Fn(usize) -> R + Sync + Send) -> Vec<R> {
    if dims.parallel() && dims.c > 1 {
        parallel::install(|| (0..dims.c).into_par_iter().map(&f).collect())
    } else {
        (0..dims.c).map(f).collect()
    }
}

/// `f(channel, row)` for every `(n, c)` row of `out`, in parallel when worth it.
fn per_row<T: Send>(dims: Dims, out: &mut [T], f: impl Fn(usize, usize, &mut [T]) + Sync + Send) {
    let s = dims.s.max(1);
    if dims.parallel() {
        parallel::install(|| {
            out.par_chunks_mut(s).enumerate().for_each(|(j, row)| f(j / dims.c, j % dims.c, row))
        });
    } else {
        out.chunks_mut(s).enumerate().for_each(|(j, row)| f(j / dims.c, j % dims.c, row));
    }
}

/// The mean and biased variance of each channel (two passes: the mean, then the squared
/// deviations from it).
pub(crate) fn statistics<T: Float>(x: &[T], dims: Dims) -> (Vec<T>, Vec<T>) {
    let count = T::from_f64((dims.n * dims.s).max(1) as f64);
    let stats = per_channel(dims, |ch| crate::simd::vectorized(ChannelStats { x, dims, ch, count }));
    stats.into_iter().unzip()
}

struct ChannelStats<'a, T> {
    x: &'a [T],
    dims: Dims,
    ch: usize,
    count: T,
}

impl<T: Float> Kernel for ChannelStats<'_, T> {
    type Output = (T, T);
    #[inline(always)]
    fn run(self) -> (T, T) {
        let ChannelStats { x, dims, ch, count } = self;
        let sum = (0..dims.n).fold(T::ZERO, |a, i| a + lane_sum(dims.row(x, i, ch)));
        let mean = sum / count;
        let squares = |i| {
            let row = dims.row(x, i, ch);
            lane_sum_pairs(row, row, |v, _| (v - mean) * (v - mean))
        };
        let total = (0..dims.n).fold(T::ZERO, |a, i| a + squares(i));
        (mean, total / count)
    }
}

/// `y = (x - mean)·rstd·weight + bias`, channel by channel.
pub(crate) fn normalize<T: Float>(
    x: &[T],
    dims: Dims,
    mean: &[T],
    rstd: &[T],
    weight: Option<&[T]>,
    bias: Option<&[T]>,
) -> Vec<T> {
    // `per_row` hands out every row of the output, and each is written whole.
    let mut y = crate::buffer::scratch(x.len());
    per_row(dims, &mut y, |i, ch, out| {
        let scale = rstd[ch] * weight.map_or(T::ONE, |w| w[ch]);
        let shift = bias.map_or(T::ZERO, |b| b[ch]) - mean[ch] * scale;
        let src = dims.row(x, i, ch);
        crate::simd::vectorized(|| {
            for (o, &v) in out.iter_mut().zip(src) {
                *o = v * scale + shift;
            }
        });
    });
    y
}

/// The gradient: `dx = weight·rstd·(g - mean(g) - x̂·mean(g·x̂))` per channel, with
/// `x̂ = (x - mean)·rstd`, and `dweight = Σ g·x̂`, `dbias = Σ g`.
pub(crate) fn backward<T: Float>(
    x: &[T],
    grad: &[T],
    dims: Dims,
    mean: &[T],
    rstd: &[T],
    weight: Option<&[T]>,
) -> (Vec<T>, Vec<T>, Vec<T>) {
    let sums =
        per_channel(dims, |ch| crate::simd::vectorized(GradSums { x, grad, dims, ch, mean: mean[ch] }));
    let count = T::from_f64((dims.n * dims.s).max(1) as f64);
    // Σ g·x̂ = rstd·Σ g·(x - mean)
    let (db, dw): (Vec<T>, Vec<T>) = sums.iter().enumerate().map(|(ch, &(g, gx))| (g, gx * rstd[ch])).unzip();
    let mut dx = crate::buffer::scratch(x.len()); // every row written, as in `normalize`
    per_row(dims, &mut dx, |i, ch, out| {
        let k = rstd[ch] * weight.map_or(T::ONE, |w| w[ch]);
        let (mean_g, mean_gx) = (db[ch] / count, dw[ch] / count);
        let (src, g) = (dims.row(x, i, ch), dims.row(grad, i, ch));
        let (m, r) = (mean[ch], rstd[ch]);
        crate::simd::vectorized(|| {
            for ((o, &v), &g) in out.iter_mut().zip(src).zip(g) {
                *o = k * (g - mean_g - (v - m) * r * mean_gx);
            }
        });
    });
    (dx, dw, db)
}

struct GradSums<'a, T> {
    x: &'a [T],
    grad: &'a [T],
    dims: Dims,
    ch: usize,
    mean: T,
}

impl<T: Float> Kernel for GradSums<'_, T> {
    type Output = (T, T);
    /// `(Σ g, Σ g·(x - mean))` over the channel.
    #[inline(always)]
    fn run(self) -> (T, T) {
        let GradSums { x, grad, dims, ch, mean } = self;
        let (mut sum_g, mut sum_gx) = (T::ZERO, T::ZERO);
        for i in 0..dims.n {
            let (xs, gs) = (dims.row(x, i, ch), dims.row(grad, i, ch));
            sum_g += lane_sum(gs);
            sum_gx += lane_sum_pairs(xs, gs, |v, g| g * (v - mean));
        }
        (sum_g, sum_gx)
    }
}

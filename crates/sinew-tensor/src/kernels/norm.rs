//! Layer normalisation and the softmax family as one pass per row, on plain row-major
//! slices: the forward and gradient loops behind `Tensor::layer_norm`,
//! `Tensor::layer_norm_backward`, `Tensor::softmax` / `log_softmax` and their gradients.
//!
//! Each row (a LayerNorm row, a softmax lane) is computed on its own, and sums within a
//! row use eight independent accumulators (they vectorise, and are the order of
//! `reduce.rs`'s `sum_contiguous`, so the softmax gradients give the bits of their
//! formulas composed from tensor ops). Rows are spread over threads in chunks whose size depends only on
//! the problem's size; the only cross-row results, LayerNorm's weight and bias gradients,
//! are summed per chunk and the chunk sums added in chunk order. So nothing here depends
//! on the number of threads.

use rayon::prelude::*;

use crate::dtype::Float;
use crate::parallel;
use crate::simd::{Kernel, vectorized};

/// At most this many chunks of rows carry partial weight and bias gradients.
const MAX_PARTIALS: usize = 64;

/// Rows per chunk of work: about [`parallel::CHUNK`] elements of whole rows, and few
/// enough chunks that at most [`MAX_PARTIALS`] partial sums exist. A function of the
/// sizes alone.
fn rows_per_chunk(rows: usize, n: usize) -> usize {
    (parallel::CHUNK / n.max(1)).max(rows.div_ceil(MAX_PARTIALS)).max(1)
}

fn check(what: &str, name: &str, got: usize, want: usize) {
    assert!(got == want, "{what}: {name} has {got} elements, expected {want}");
}

/// The eight accumulators folded as `reduce::sum_contiguous` folds them, then the tail.
#[inline(always)]
fn fold8<T: Float>(acc: [T; 8]) -> T {
    ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7]))
}

/// `Σ f(x_i)` with eight accumulators (`sum_contiguous`'s order for `f = id`).
#[inline(always)]
fn sum_map<T: Float>(x: &[T], f: impl Fn(T) -> T) -> T {
    let mut acc = [T::ZERO; 8];
    let chunks = x.chunks_exact(8);
    let rest = chunks.remainder();
    for c in chunks {
        for k in 0..8 {
            acc[k] += f(c[k]);
        }
    }
    let mut s = fold8(acc);
    for &v in rest {
        s += f(v);
    }
    s
}

/// `Σ f(a_i, b_i)` over two slices of one length, in [`sum_map`]'s order.
#[inline(always)]
fn sum_map2<T: Float>(a: &[T], b: &[T], f: impl Fn(T, T) -> T) -> T {
    let b = &b[..a.len()];
    let mut acc = [T::ZERO; 8];
    let (ca, cb) = (a.chunks_exact(8), b.chunks_exact(8));
    let (ra, rb) = (ca.remainder(), cb.remainder());
    for (x, y) in ca.zip(cb) {
        for k in 0..8 {
            acc[k] += f(x[k], y[k]);
        }
    }
    let mut s = fold8(acc);
    for (&x, &y) in ra.iter().zip(rb) {
        s += f(x, y);
    }
    s
}

/// Largest element, NaN if any is NaN (`reduce::lane_max`'s result, in any order).
#[inline(always)]
fn max_of<T: Float>(x: &[T]) -> T {
    let mut acc = [T::NEG_INFINITY; 8];
    let chunks = x.chunks_exact(8);
    let rest = chunks.remainder();
    for c in chunks {
        for k in 0..8 {
            acc[k] = acc[k].max_nan(c[k]);
        }
    }
    let mut m = acc.iter().fold(T::NEG_INFINITY, |m, &v| m.max_nan(v));
    for &v in rest {
        m = m.max_nan(v);
    }
    m
}

/// Runs `f(chunk_index, chunk)` over `out` cut into chunks of `len` elements: in
/// parallel when `work` elements are worth it and there is more than one chunk.
fn for_chunks<T: Float>(out: &mut [T], len: usize, work: usize, f: impl Fn(usize, &mut [T]) + Sync + Send) {
    if out.is_empty() {
        return;
    }
    if out.len() > len && parallel::worth_parallel(work) {
        parallel::install(|| out.par_chunks_mut(len).enumerate().for_each(|(i, c)| f(i, c)));
    } else {
        for (i, c) in out.chunks_mut(len).enumerate() {
            f(i, c);
        }
    }
}

/// LayerNorm forward over `rows` rows of `n` elements:
///
/// ```text
/// mean = Σx / n,  var = Σ(x - mean)² / n,  rstd = 1 / √(var + eps)
/// y = (x - mean)·rstd·weight + bias
/// ```
///
/// (two passes over each row for the statistics, so no cancellation), writing `y`
/// (`rows × n`), `mean` and `rstd` (`rows` each). `weight` and `bias` hold `n` elements.
///
/// # Panics
/// If a buffer has the wrong length.
#[allow(clippy::too_many_arguments)]
pub(crate) fn layer_norm_forward<T: Float>(
    x: &[T],
    weight: Option<&[T]>,
    bias: Option<&[T]>,
    rows: usize,
    n: usize,
    eps: T,
    y: &mut [T],
    mean: &mut [T],
    rstd: &mut [T],
) {
    const WHAT: &str = "layer_norm_forward";
    for (name, got, want) in [
        ("x", x.len(), rows * n),
        ("weight", weight.map_or(n, <[T]>::len), n),
        ("bias", bias.map_or(n, <[T]>::len), n),
        ("y", y.len(), rows * n),
        ("mean", mean.len(), rows),
        ("rstd", rstd.len(), rows),
    ] {
        check(WHAT, name, got, want);
    }
    if rows == 0 {
        return;
    }
    if n == 0 {
        // statistics of nothing: NaN (0/0), as the composed formula gives
        mean.fill(T::NAN);
        rstd.fill(T::NAN);
        return;
    }
    let rpc = rows_per_chunk(rows, n);
    let run = |i: usize, y: &mut [T], mean: &mut [T], rstd: &mut [T]| {
        let x = &x[i * rpc * n..][..y.len()];
        vectorized(LayerNormRows { x, weight, bias, n, eps, y, mean, rstd });
    };
    if rows > rpc && parallel::worth_parallel(x.len()) {
        let chunks = y.par_chunks_mut(rpc * n).zip(mean.par_chunks_mut(rpc)).zip(rstd.par_chunks_mut(rpc));
        parallel::install(|| chunks.enumerate().for_each(|(i, ((y, m), r))| run(i, y, m, r)));
    } else {
        let chunks = y.chunks_mut(rpc * n).zip(mean.chunks_mut(rpc)).zip(rstd.chunks_mut(rpc));
        chunks.enumerate().for_each(|(i, ((y, m), r))| run(i, y, m, r));
    }
}

struct LayerNormRows<'a, T> {
    x: &'a [T],
    weight: Option<&'a [T]>,
    bias: Option<&'a [T]>,
    n: usize,
    eps: T,
    y: &'a mut [T],
    mean: &'a mut [T],
    rstd: &'a mut [T],
}

impl<T: Float> Kernel for LayerNormRows<'_, T> {
    type Output = ();
    #[inline(always)]
    fn run(self) {
        let LayerNormRows { x, weight, bias, n, eps, y, mean, rstd } = self;
        let count = T::from_f64(n as f64);
        let rows = x.chunks_exact(n).zip(y.chunks_exact_mut(n)).zip(mean.iter_mut().zip(rstd));
        for ((xr, yr), (mean, rstd)) in rows {
            let m = sum_map(xr, |v| v) / count;
            let var = sum_map(xr, |v| (v - m) * (v - m)) / count;
            let r = T::ONE / (var + eps).sqrt();
            *mean = m;
            *rstd = r;
            let pairs = yr.iter_mut().zip(xr);
            match (weight, bias) {
                (Some(w), Some(b)) => {
                    pairs.zip(&w[..n]).zip(&b[..n]).for_each(|(((o, &v), &w), &b)| *o = (v - m) * r * w + b)
                }
                (Some(w), None) => pairs.zip(&w[..n]).for_each(|((o, &v), &w)| *o = (v - m) * r * w),
                (None, Some(b)) => pairs.zip(&b[..n]).for_each(|((o, &v), &b)| *o = (v - m) * r + b),
                (None, None) => pairs.for_each(|(o, &v)| *o = (v - m) * r),
            }
        }
    }
}

/// Gradient of [`layer_norm_forward`] from its input `x`, statistics `mean` and `rstd`,
/// `weight` (none: 1) and the output gradient `g`. With `x̂ = (x - mean)·rstd` and
/// `ĝ = g·weight`, per row
///
/// ```text
/// dx = rstd·(ĝ - Σĝ/n - x̂·Σ(ĝ·x̂)/n)
/// ```
///
/// and over all rows `dweight = Σ g·x̂`, `dbias = Σ g` (`n` each): summed per chunk of
/// rows, the chunk sums added in order.
///
/// # Panics
/// If a buffer has the wrong length.
#[allow(clippy::too_many_arguments)]
pub(crate) fn layer_norm_backward<T: Float>(
    x: &[T],
    mean: &[T],
    rstd: &[T],
    weight: Option<&[T]>,
    g: &[T],
    rows: usize,
    n: usize,
    dx: &mut [T],
    dweight: &mut [T],
    dbias: &mut [T],
) {
    const WHAT: &str = "layer_norm_backward";
    for (name, got, want) in [
        ("x", x.len(), rows * n),
        ("mean", mean.len(), rows),
        ("rstd", rstd.len(), rows),
        ("weight", weight.map_or(n, <[T]>::len), n),
        ("grad", g.len(), rows * n),
        ("dx", dx.len(), rows * n),
        ("dweight", dweight.len(), n),
        ("dbias", dbias.len(), n),
    ] {
        check(WHAT, name, got, want);
    }
    dweight.fill(T::ZERO);
    dbias.fill(T::ZERO);
    if rows == 0 || n == 0 {
        return;
    }
    let rpc = rows_per_chunk(rows, n);
    let chunks = rows.div_ceil(rpc);
    // per chunk: its weight gradient then its bias gradient
    let mut partials = crate::buffer::filled(chunks * 2 * n, T::ZERO);
    let run = |i: usize, dx: &mut [T], p: &mut [T]| {
        let (dw, db) = p.split_at_mut(n);
        let first = i * rpc;
        let count = dx.len() / n;
        vectorized(LayerNormBackRows {
            x: &x[first * n..][..dx.len()],
            g: &g[first * n..][..dx.len()],
            mean: &mean[first..][..count],
            rstd: &rstd[first..][..count],
            weight,
            n,
            dx,
            dw,
            db,
        });
    };
    if chunks > 1 && parallel::worth_parallel(x.len()) {
        let pairs = dx.par_chunks_mut(rpc * n).zip(partials.par_chunks_mut(2 * n));
        parallel::install(|| pairs.enumerate().for_each(|(i, (dx, p))| run(i, dx, p)));
    } else {
        let pairs = dx.chunks_mut(rpc * n).zip(partials.chunks_mut(2 * n));
        pairs.enumerate().for_each(|(i, (dx, p))| run(i, dx, p));
    }
    for p in partials.chunks_exact(2 * n) {
        let (pw, pb) = p.split_at(n);
        dweight.iter_mut().zip(pw).for_each(|(a, &b)| *a += b);
        dbias.iter_mut().zip(pb).for_each(|(a, &b)| *a += b);
    }
    crate::buffer::give(partials);
}

struct LayerNormBackRows<'a, T> {
    x: &'a [T],
    g: &'a [T],
    mean: &'a [T],
    rstd: &'a [T],
    weight: Option<&'a [T]>,
    n: usize,
    dx: &'a mut [T],
    dw: &'a mut [T],
    db: &'a mut [T],
}

impl<T: Float> Kernel for LayerNormBackRows<'_, T> {
    type Output = ();
    #[inline(always)]
    fn run(self) {
        let LayerNormBackRows { x, g, mean, rstd, weight, n, dx, dw, db } = self;
        let count = T::from_f64(n as f64);
        let (dw, db) = (&mut dw[..n], &mut db[..n]);
        let rows = x.chunks_exact(n).zip(g.chunks_exact(n)).zip(dx.chunks_exact_mut(n));
        for (((xr, gr), dxr), (&m, &r)) in rows.zip(mean.iter().zip(rstd)) {
            // the parameters' gradients
            for (((dw, db), &v), &gv) in dw.iter_mut().zip(db.iter_mut()).zip(xr).zip(gr) {
                *dw += gv * ((v - m) * r);
                *db += gv;
            }
            // ĝ = g·w goes to dx first, then dx is rewritten in place
            let (sum_g, sum_gx) = match weight {
                Some(w) => {
                    dxr.iter_mut().zip(gr).zip(&w[..n]).for_each(|((o, &gv), &w)| *o = gv * w);
                    (sum_map(dxr, |v| v), sum_map2(dxr, xr, |gw, v| gw * ((v - m) * r)))
                }
                None => {
                    dxr.copy_from_slice(gr);
                    (sum_map(gr, |v| v), sum_map2(gr, xr, |gv, v| gv * ((v - m) * r)))
                }
            };
            let (a, b) = (sum_g / count, sum_gx / count);
            dxr.iter_mut().zip(xr).for_each(|(o, &v)| *o = r * ((*o - a) - (v - m) * r * b));
        }
    }
}

/// Softmax (`log = false`) or log-softmax along the middle axis of `x` viewed as
/// `(outer, reduced, inner)`, written to `y`: `exp(x - max) / Σ exp(x - max)`, or
/// `(x - max) - ln Σ exp(x - max)` (not `x - (max + ln Σ)`: that rounds away the small
/// log-probabilities of large logits in `f32`). A lane whose maximum is infinite or NaN
/// is shifted by 0 instead.
///
/// # Panics
/// If a buffer has the wrong length.
pub(crate) fn softmax_forward<T: Float>(
    x: &[T],
    outer: usize,
    reduced: usize,
    inner: usize,
    log: bool,
    y: &mut [T],
) {
    const WHAT: &str = "softmax_forward";
    check(WHAT, "x", x.len(), outer * reduced * inner);
    check(WHAT, "y", y.len(), outer * reduced * inner);
    let block = reduced * inner;
    if block == 0 {
        return;
    }
    let per = (parallel::CHUNK / block).max(1);
    for_chunks(y, per * block, x.len(), |i, y| {
        let x = &x[i * per * block..][..y.len()];
        if inner == 1 {
            vectorized(SoftmaxRows { x, n: reduced, log, y });
        } else {
            let mut stats = vec![T::ZERO; 2 * inner];
            for (xb, yb) in x.chunks_exact(block).zip(y.chunks_exact_mut(block)) {
                vectorized(SoftmaxColumns { x: xb, inner, log, y: yb, stats: &mut stats });
            }
        }
    });
}

struct SoftmaxRows<'a, T> {
    x: &'a [T],
    n: usize,
    log: bool,
    y: &'a mut [T],
}

impl<T: Float> Kernel for SoftmaxRows<'_, T> {
    type Output = ();
    #[inline(always)]
    fn run(self) {
        let SoftmaxRows { x, n, log, y } = self;
        for (xr, yr) in x.chunks_exact(n).zip(y.chunks_exact_mut(n)) {
            let m = max_of(xr);
            let m = if m.is_finite() { m } else { T::ZERO };
            if log {
                let ln_sum = sum_map(xr, |v| (v - m).exp()).ln();
                yr.iter_mut().zip(xr).for_each(|(o, &v)| *o = (v - m) - ln_sum);
            } else {
                yr.iter_mut().zip(xr).for_each(|(o, &v)| *o = (v - m).exp());
                let inv = T::ONE / sum_map(yr, |v| v);
                yr.iter_mut().for_each(|o| *o *= inv);
            }
        }
    }
}

/// One `reduced × inner` block: `inner` lanes of stride `inner`, each row of the block
/// processed across all lanes at once (so it vectorises over the lanes).
struct SoftmaxColumns<'a, T> {
    x: &'a [T],
    inner: usize,
    log: bool,
    y: &'a mut [T],
    /// `2·inner` of scratch: each lane's shift, then its sum.
    stats: &'a mut [T],
}

impl<T: Float> Kernel for SoftmaxColumns<'_, T> {
    type Output = ();
    #[inline(always)]
    fn run(self) {
        let SoftmaxColumns { x, inner, log, y, stats } = self;
        let (m, s) = stats.split_at_mut(inner);
        m.fill(T::NEG_INFINITY);
        s.fill(T::ZERO);
        for xr in x.chunks_exact(inner) {
            m.iter_mut().zip(xr).for_each(|(m, &v)| *m = m.max_nan(v));
        }
        m.iter_mut().for_each(|m| *m = if m.is_finite() { *m } else { T::ZERO });
        if log {
            for xr in x.chunks_exact(inner) {
                s.iter_mut().zip(&*m).zip(xr).for_each(|((s, &m), &v)| *s += (v - m).exp());
            }
            s.iter_mut().for_each(|s| *s = s.ln());
            for (xr, yr) in x.chunks_exact(inner).zip(y.chunks_exact_mut(inner)) {
                let lanes = yr.iter_mut().zip(xr).zip(&*m).zip(&*s);
                lanes.for_each(|(((o, &v), &m), &ls)| *o = (v - m) - ls);
            }
        } else {
            for (xr, yr) in x.chunks_exact(inner).zip(y.chunks_exact_mut(inner)) {
                let lanes = yr.iter_mut().zip(xr).zip(&*m).zip(s.iter_mut());
                lanes.for_each(|(((o, &v), &m), s)| {
                    let e = (v - m).exp();
                    *o = e;
                    *s += e;
                });
            }
            s.iter_mut().for_each(|s| *s = T::ONE / *s);
            for yr in y.chunks_exact_mut(inner) {
                yr.iter_mut().zip(&*s).for_each(|(o, &inv)| *o *= inv);
            }
        }
    }
}

/// Gradient of softmax (`log = false`) or log-softmax along the middle axis of
/// `(outer, reduced, inner)`, from the op's output `y` and the output gradient `g`:
///
/// ```text
/// softmax:      dx = y·(g - Σ g·y)
/// log_softmax:  dx = g - exp(y)·Σ g
/// ```
///
/// The sums are those of `(g·y).sum(dim)` and `g.sum(dim)` (eight accumulators along a
/// contiguous lane, rows added in order across lanes), so the result has the bits of
/// the formula composed from tensor ops.
///
/// # Panics
/// If a buffer has the wrong length.
pub(crate) fn softmax_backward<T: Float>(
    y: &[T],
    g: &[T],
    outer: usize,
    reduced: usize,
    inner: usize,
    log: bool,
    dx: &mut [T],
) {
    const WHAT: &str = "softmax_backward";
    check(WHAT, "y", y.len(), outer * reduced * inner);
    check(WHAT, "grad", g.len(), outer * reduced * inner);
    check(WHAT, "dx", dx.len(), outer * reduced * inner);
    let block = reduced * inner;
    if block == 0 {
        return;
    }
    let per = (parallel::CHUNK / block).max(1);
    for_chunks(dx, per * block, y.len(), |i, dx| {
        let start = i * per * block;
        let (y, g) = (&y[start..][..dx.len()], &g[start..][..dx.len()]);
        if inner == 1 {
            vectorized(SoftmaxBackRows { y, g, n: reduced, log, dx });
        } else {
            let mut s = vec![T::ZERO; inner];
            for ((yb, gb), db) in
                y.chunks_exact(block).zip(g.chunks_exact(block)).zip(dx.chunks_exact_mut(block))
            {
                vectorized(SoftmaxBackColumns { y: yb, g: gb, inner, log, dx: db, s: &mut s });
            }
        }
    });
}

struct SoftmaxBackRows<'a, T> {
    y: &'a [T],
    g: &'a [T],
    n: usize,
    log: bool,
    dx: &'a mut [T],
}

impl<T: Float> Kernel for SoftmaxBackRows<'_, T> {
    type Output = ();
    #[inline(always)]
    fn run(self) {
        let SoftmaxBackRows { y, g, n, log, dx } = self;
        let rows = y.chunks_exact(n).zip(g.chunks_exact(n)).zip(dx.chunks_exact_mut(n));
        for ((yr, gr), dr) in rows {
            let ys = yr.iter().zip(gr);
            if log {
                let s = sum_map(gr, |v| v);
                dr.iter_mut().zip(ys).for_each(|(o, (&y, &g))| *o = g - y.exp() * s);
            } else {
                let s = sum_map2(gr, yr, |g, y| g * y);
                dr.iter_mut().zip(ys).for_each(|(o, (&y, &g))| *o = y * (g - s));
            }
        }
    }
}

struct SoftmaxBackColumns<'a, T> {
    y: &'a [T],
    g: &'a [T],
    inner: usize,
    log: bool,
    dx: &'a mut [T],
    /// `inner` of scratch: each lane's sum.
    s: &'a mut [T],
}

impl<T: Float> Kernel for SoftmaxBackColumns<'_, T> {
    type Output = ();
    #[inline(always)]
    fn run(self) {
        let SoftmaxBackColumns { y, g, inner, log, dx, s } = self;
        s.fill(T::ZERO);
        let rows = || y.chunks_exact(inner).zip(g.chunks_exact(inner));
        for (yr, gr) in rows() {
            if log {
                s.iter_mut().zip(gr).for_each(|(s, &g)| *s += g);
            } else {
                s.iter_mut().zip(gr).zip(yr).for_each(|((s, &g), &y)| *s += g * y);
            }
        }
        for ((yr, gr), dr) in rows().zip(dx.chunks_exact_mut(inner)) {
            let lanes = dr.iter_mut().zip(yr).zip(gr).zip(&*s);
            if log {
                lanes.for_each(|(((o, &y), &g), &s)| *o = g - y.exp() * s);
            } else {
                lanes.for_each(|(((o, &y), &g), &s)| *o = y * (g - s));
            }
        }
    }
}

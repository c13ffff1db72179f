//! Fused scaled dot-product attention on slices: for each batch item, the scores
//! `q·kᵀ·scale (+ bias, causal)`, their row softmax and the weighted sum `p·v` in one pass,
//! and the whole gradient (`dq`, `dk`, `dv`) in another. Items run in parallel with
//! sequential GEMMs; each item writes only its own part of every output, so the results do
//! not depend on the thread count.

use rayon::prelude::*;

use super::gemm::{self, Strided};
use super::lanes::{lane_max, lane_sum, lane_sum_pairs};
use crate::dtype::Float;
use crate::parallel;
use crate::simd::Kernel;

/// One operand: its storage, the offset of each batch item's matrix, and the matrix view.
pub(crate) struct Operand<'a, T> {
    pub data: &'a [T],
    pub offsets: Vec<usize>,
    pub view: Strided,
}

impl<T> Operand<'_, T> {
    fn item(&self, i: usize) -> &[T] {
        &self.data[self.offsets[i]..]
    }
}

/// The sizes: `items` batch items of `l` queries and `s` keys, features `e` (queries and
/// keys) and `ev` (values).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Dims {
    pub items: usize,
    pub l: usize,
    pub s: usize,
    pub e: usize,
    pub ev: usize,
}

impl Dims {
    /// Whether the items are worth spreading over threads.
    fn parallel(&self) -> bool {
        self.items > 1 && parallel::worth_parallel(self.items * self.l * self.s * (self.e + self.ev) / 8)
    }
}

/// Runs `f(item, chunks...)` over every item, in parallel when worth it.
fn for_items<T: Send, const N: usize>(
    dims: Dims,
    outputs: [(&mut [T], usize); N],
    f: impl Fn(usize, [&mut [T]; N]) + Sync,
) {
    let mut per_item: Vec<[&mut [T]; N]> = Vec::with_capacity(dims.items);
    let mut rests = outputs.map(|(buf, len)| (Some(buf), len));
    for _ in 0..dims.items {
        per_item.push(std::array::from_fn(|j| {
            let (buf, len) = &mut rests[j];
            let (head, tail) = buf.take().expect("one chunk per item").split_at_mut(*len);
            *buf = Some(tail);
            head
        }));
    }
    if dims.parallel() {
        parallel::install(|| per_item.into_par_iter().enumerate().for_each(|(i, c)| f(i, c)));
    } else {
        per_item.into_iter().enumerate().for_each(|(i, c)| f(i, c));
    }
}

/// The forward pass: returns `(out, probs)`, `items × l × ev` and `items × l × s`, both
/// row-major. `bias`, if any, is added to the scaled scores (its view is `l × s` per item,
/// possibly broadcast with zero strides); with `causal`, key `j > i` is hidden from query
/// `i`. A query that sees no key (every score `-∞`) gets zero weights and a zero output.
pub(crate) fn forward<T: Float>(
    q: &Operand<'_, T>,
    k: &Operand<'_, T>,
    v: &Operand<'_, T>,
    bias: Option<&Operand<'_, T>>,
    causal: bool,
    scale: T,
    dims: Dims,
) -> (Vec<T>, Vec<T>) {
    let Dims { l, s, ev, .. } = dims;
    // the GEMMs replace every element, unless there is nothing to sum over
    let zeros_or_scratch = |n: usize, summed: usize| {
        if summed > 0 { crate::buffer::scratch(n) } else { crate::buffer::filled(n, T::ZERO) }
    };
    let mut out = zeros_or_scratch(dims.items * l * ev, s);
    let mut probs = zeros_or_scratch(dims.items * l * s, dims.e);
    for_items(dims, [(&mut out[..], l * ev), (&mut probs[..], l * s)], |i, [out, p]| {
        if dims.e > 0 {
            gemm::gemm(
                p,
                Strided::row_major(l, s),
                q.item(i),
                q.view,
                k.item(i),
                k.view.t(),
                false,
                faer::Par::Seq,
            );
        }
        let bias = bias.map(|b| (b.item(i), b.view));
        crate::simd::vectorized(SoftmaxRows { p, l, s, scale, bias, causal });
        if s > 0 {
            gemm::gemm(
                out,
                Strided::row_major(l, ev),
                p,
                Strided::row_major(l, s),
                v.item(i),
                v.view,
                false,
                faer::Par::Seq,
            );
        }
    });
    (out, probs)
}

/// `p ← softmax(p·scale + bias)` row by row, with the causal pattern; rows with no
/// finite score become zeros. A [`Kernel`], so that its body is compiled into the
/// vector-instruction copies of [`crate::simd::vectorized`].
struct SoftmaxRows<'a, T> {
    p: &'a mut [T],
    l: usize,
    s: usize,
    scale: T,
    bias: Option<(&'a [T], Strided)>,
    causal: bool,
}

impl<T: Float> Kernel for SoftmaxRows<'_, T> {
    type Output = ();
    #[inline(always)]
    fn run(self) {
        let SoftmaxRows { p, l, s, scale, bias, causal } = self;
        for r in 0..l {
            let row = &mut p[r * s..(r + 1) * s];
            let visible = if causal { (r + 1).min(s) } else { s };
            let (seen, hidden) = row.split_at_mut(visible);
            hidden.fill(T::ZERO);
            for x in seen.iter_mut() {
                *x *= scale;
            }
            if let Some((b, view)) = bias {
                let start = r as isize * view.row_stride;
                if view.col_stride == 1 {
                    let b = &b[start as usize..start as usize + visible];
                    for (x, &b) in seen.iter_mut().zip(b) {
                        *x += b;
                    }
                } else {
                    for (j, x) in seen.iter_mut().enumerate() {
                        *x += b[(start + j as isize * view.col_stride) as usize];
                    }
                }
            }
            // (a NaN score is skipped here and turns the whole row to NaN below)
            let max = lane_max(seen);
            if max == T::NEG_INFINITY && seen.iter().all(|&x| x == T::NEG_INFINITY) {
                seen.fill(T::ZERO);
                continue;
            }
            for x in seen.iter_mut() {
                *x = (*x - max).exp();
            }
            let inv = T::ONE / lane_sum(seen);
            for x in seen.iter_mut() {
                *x *= inv;
            }
        }
    }
}

/// `ds ← p·(ds - Σ ds·p)·scale` row by row: the softmax's backward, and the scale.
struct SoftmaxGrad<'a, T> {
    ds: &'a mut [T],
    p: &'a [T],
    s: usize,
    scale: T,
}

impl<T: Float> Kernel for SoftmaxGrad<'_, T> {
    type Output = ();
    #[inline(always)]
    fn run(self) {
        let SoftmaxGrad { ds, p, s, scale } = self;
        for (ds, p) in ds.chunks_exact_mut(s).zip(p.chunks_exact(s)) {
            let dot = lane_sum_pairs(ds, p, |d, q| d * q);
            for (d, &p) in ds.iter_mut().zip(p) {
                *d = p * (*d - dot) * scale;
            }
        }
    }
}

/// The backward pass: from the saved `probs` (row-major, as [`forward`] returns them)
/// and the output's gradient `grad` (`items × l × ev`, row-major), returns
/// `(dq, dk, dv)`, row-major `items × l × e`, `items × s × e`, `items × s × ev`.
pub(crate) fn backward<T: Float>(
    q: &Operand<'_, T>,
    k: &Operand<'_, T>,
    v: &Operand<'_, T>,
    probs: &[T],
    grad: &[T],
    scale: T,
    dims: Dims,
) -> (Vec<T>, Vec<T>, Vec<T>) {
    let Dims { items, l, s, e, ev } = dims;
    let mut dq = crate::buffer::filled(items * l * e, T::ZERO);
    let mut dk = crate::buffer::filled(items * s * e, T::ZERO);
    let mut dv = crate::buffer::filled(items * s * ev, T::ZERO);
    let seq = faer::Par::Seq;
    for_items(
        dims,
        [(&mut dq[..], l * e), (&mut dk[..], s * e), (&mut dv[..], s * ev)],
        |i, [dq, dk, dv]| {
            if l == 0 || s == 0 {
                return;
            }
            let p = &probs[i * l * s..(i + 1) * l * s];
            let g = &grad[i * l * ev..(i + 1) * l * ev];
            let (p_view, g_view) = (Strided::row_major(l, s), Strided::row_major(l, ev));
            // dO·vᵀ replaces every element, unless there are no value features to sum
            let mut ds =
                if ev > 0 { crate::buffer::scratch(l * s) } else { crate::buffer::filled(l * s, T::ZERO) };
            if ev > 0 {
                gemm::gemm(dv, Strided::row_major(s, ev), p, p_view.t(), g, g_view, false, seq);
                gemm::gemm(&mut ds, p_view, g, g_view, v.item(i), v.view.t(), false, seq);
            }
            // the softmax's backward, and the scale: ds = p·(dp - Σ dp·p)·scale
            crate::simd::vectorized(SoftmaxGrad { ds: &mut ds, p, s, scale });
            if e > 0 {
                gemm::gemm(dq, Strided::row_major(l, e), &ds, p_view, k.item(i), k.view, false, seq);
                gemm::gemm(dk, Strided::row_major(s, e), &ds, p_view.t(), q.item(i), q.view, false, seq);
            }
            crate::buffer::give(ds);
        },
    );
    (dq, dk, dv)
}

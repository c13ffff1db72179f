//! Reductions over a slice in 16 interleaved lanes, added in a fixed order: loops LLVM
//! vectorises (a plain running sum is a serial dependency chain it may not reorder), with
//! results that depend only on the slice.

use crate::dtype::Float;

/// The sum of `xs` in 16 interleaved partial sums (added in a fixed order), so the
/// loop vectorises; the result depends on nothing but `xs`.
#[inline(always)]
pub(crate) fn lane_sum<T: Float>(xs: &[T]) -> T {
    let mut acc = [T::ZERO; 16];
    let chunks = xs.chunks_exact(16);
    let tail = chunks.remainder();
    for c in chunks {
        for (a, &x) in acc.iter_mut().zip(c) {
            *a += x;
        }
    }
    acc.iter().fold(T::ZERO, |a, &b| a + b) + tail.iter().fold(T::ZERO, |a, &b| a + b)
}

/// The largest of `xs` (NaNs skipped), `-∞` for none, in 16 lanes.
#[inline(always)]
pub(crate) fn lane_max<T: Float>(xs: &[T]) -> T {
    let pick = |m: T, x: T| if x > m { x } else { m };
    let mut acc = [T::NEG_INFINITY; 16];
    let chunks = xs.chunks_exact(16);
    let tail = chunks.remainder();
    for c in chunks {
        for (a, &x) in acc.iter_mut().zip(c) {
            *a = pick(*a, x);
        }
    }
    tail.iter().fold(acc.iter().fold(T::NEG_INFINITY, |m, &x| pick(m, x)), |m, &x| pick(m, x))
}

/// `Σ f(a_i, b_i)` over the pairs of `a` and `b` (the shorter sets the length): each block
/// of 16 pairs is mapped into a lane buffer and summed with [`lane_sum`], the block sums
/// added in order. Both loops vectorise; the result depends only on the inputs.
#[inline(always)]
pub(crate) fn lane_sum_pairs<T: Float>(a: &[T], b: &[T], f: impl Fn(T, T) -> T) -> T {
    let mut buf = [T::ZERO; 16];
    let mut total = T::ZERO;
    for (a16, b16) in a.chunks(16).zip(b.chunks(16)) {
        let len = a16.len().min(b16.len());
        for ((slot, &x), &y) in buf.iter_mut().zip(a16).zip(b16) {
            *slot = f(x, y);
        }
        total += lane_sum(&buf[..len]);
    }
    total
}

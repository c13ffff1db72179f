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

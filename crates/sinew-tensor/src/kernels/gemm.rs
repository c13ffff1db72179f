//! The one door to faer's GEMM: `C = A·B` or `C += A·B` over strided row-major views.

use crate::dtype::Float;
use faer::{Accum, MatMut, MatRef, Par};

/// Work (m·n·k) below which faer's parallel GEMM is slower than its sequential one on
/// this class of machine (see `../shared/faer-0.24.md`: 64³ runs at 100 GFLOP/s on one
/// thread and 22 on two; the curves cross near 150³).
pub const PARALLEL_GEMM_WORK: usize = 3_500_000;

/// Chooses faer's parallelism for an `m×k · k×n` product.
///
/// ```
/// use faer::Par;
/// use sinew_tensor::{kernels::gemm::par_for, set_num_threads};
/// set_num_threads(4);
/// assert!(matches!(par_for(32, 32, 32), Par::Seq));   // too little work for two threads
/// assert!(matches!(par_for(512, 512, 512), Par::Rayon(_)));
/// set_num_threads(1);
/// assert!(matches!(par_for(512, 512, 512), Par::Seq));
/// set_num_threads(0);
/// ```
pub fn par_for(m: usize, n: usize, k: usize) -> Par {
    let threads = crate::parallel::num_threads();
    if threads <= 1 || m.saturating_mul(n).saturating_mul(k) < PARALLEL_GEMM_WORK || m.min(n).min(k) < 16 {
        Par::Seq
    } else {
        Par::rayon(threads)
    }
}

/// A strided matrix view over part of a buffer: `ptr + r*row_stride + c*col_stride`.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Strided {
    /// Rows.
    pub rows: usize,
    /// Columns.
    pub cols: usize,
    /// Elements between consecutive rows.
    pub row_stride: isize,
    /// Elements between consecutive columns.
    pub col_stride: isize,
}

impl Strided {
    /// A contiguous row-major `rows × cols` block.
    pub fn row_major(rows: usize, cols: usize) -> Self {
        Strided { rows, cols, row_stride: cols as isize, col_stride: 1 }
    }

    /// The transposed view (no copy).
    pub fn t(self) -> Self {
        Strided { rows: self.cols, cols: self.rows, row_stride: self.col_stride, col_stride: self.row_stride }
    }

    /// The largest offset reached, plus one (0 for an empty view); `None` if it overflows.
    fn extent(&self) -> Option<usize> {
        if self.rows == 0 || self.cols == 0 {
            return Some(0);
        }
        (self.rows - 1)
            .checked_mul(self.row_stride.unsigned_abs())?
            .checked_add((self.cols - 1).checked_mul(self.col_stride.unsigned_abs())?)?
            .checked_add(1)
    }

    /// Whether no two elements of the view share an offset: with non-negative strides,
    /// one of the two strides must step over the whole extent of the other dimension.
    /// A view that is one row or one column needs only a non-zero stride along it.
    fn is_injective(&self) -> bool {
        let (r, c) = (self.row_stride.unsigned_abs(), self.col_stride.unsigned_abs());
        if self.rows <= 1 || self.cols <= 1 {
            return (self.rows <= 1 || r > 0) && (self.cols <= 1 || c > 0);
        }
        let spans = |stride: usize, other_stride: usize, other_len: usize| {
            (other_len - 1).checked_mul(other_stride).is_some_and(|span| stride > span)
        };
        c > 0 && r > 0 && (spans(r, c, self.cols) || spans(c, r, self.rows))
    }
}

/// Work (m·n·k) of one block of a split product: enough for faer's sequential kernel to
/// run at full speed (about 126³).
const BLOCK_WORK: usize = 2_000_000;

/// The most blocks a product is split into.
const MAX_BLOCKS: usize = 8;

/// How sinew's kernels run a product that may use the thread pool: [`Par::Seq`] when the
/// product is too small to split (see [`gemm`]), else a marker that lets [`gemm`] split
/// it. Unlike [`par_for`], the choice depends on the shape alone, never on the number of
/// threads, so the arithmetic (and every bit of the result) is the same at any thread count.
pub(crate) fn split_for(m: usize, n: usize, k: usize) -> Par {
    if blocks_for(m, n, k) > 1 { Par::rayon(0) } else { Par::Seq }
}

/// Elements of the wide operand of a thin product (fewer than 32 rows or columns in C)
/// from which the product is split: 1 MiB of `f32`, half of one core's L2 here. A thin
/// product (one-row inference, a generation step's logits) reads that operand once for
/// little arithmetic, so it is bound by memory, and two cores each streaming half of it
/// finish in about half the time.
const THIN_SPLIT: usize = 256 * 1024;

/// The least elements of the wide operand per block of a split thin product.
const THIN_BLOCK: usize = 128 * 1024;

/// Into how many blocks (a power of two) the product `m×k · k×n` is split: the longer
/// side of C is halved while each block keeps [`BLOCK_WORK`] (for a thin product,
/// [`THIN_BLOCK`] elements of the wide operand) and 32 rows or columns.
fn blocks_for(m: usize, n: usize, k: usize) -> usize {
    if k < 16 {
        return 1;
    }
    let (amount, threshold, per_block) = if m.min(n) < 32 {
        (m.max(n).saturating_mul(k), THIN_SPLIT, THIN_BLOCK)
    } else {
        (m.saturating_mul(n).saturating_mul(k), PARALLEL_GEMM_WORK, BLOCK_WORK)
    };
    if amount < threshold {
        return 1;
    }
    let mut blocks = 1;
    while blocks < MAX_BLOCKS && amount / (2 * blocks) >= per_block && m.max(n) / (2 * blocks) >= 32 {
        blocks *= 2;
    }
    blocks
}

/// `c = a·b` (or `c += a·b` when `accumulate`), all three strided views into slices.
///
/// With `par` = [`Par::Seq`] the product runs as one sequential faer GEMM on the calling
/// thread. Otherwise (see [`split_for`]) C is cut into blocks along its longer side, by
/// the shape alone, and each block is a sequential GEMM: two halves as two rayon tasks,
/// recursively, when the pool has more than one thread, one after the other otherwise.
/// Coarse blocks with one join each scale better on few cores than faer's own parallel
/// kernel, whose fine-grained barriers spin whenever a thread is descheduled.
///
/// # Panics
/// If the shapes disagree or a view reaches outside its slice (an internal error:
/// callers check user shapes first).
#[allow(clippy::too_many_arguments)]
pub(crate) fn gemm<T: Float>(
    c: &mut [T],
    c_view: Strided,
    a: &[T],
    a_view: Strided,
    b: &[T],
    b_view: Strided,
    accumulate: bool,
    par: Par,
) {
    with_views(c, c_view, a, a_view, b, b_view, |c, a, b| {
        let accum = if accumulate { Accum::Add } else { Accum::Replace };
        let blocks = if matches!(par, Par::Seq) { 1 } else { blocks_for(c.nrows(), c.ncols(), a.ncols()) };
        if blocks == 1 {
            faer::linalg::matmul::matmul(c, accum, a, b, T::ONE, Par::Seq);
        } else {
            let on_pool = crate::parallel::num_threads() > 1;
            crate::parallel::install(move || split_product(c, a, b, accum, blocks, on_pool));
        }
    });
}

/// `c (+)= a·b` as `blocks` sequential GEMMs on halves of C's longer side, recursively.
fn split_product<T: Float>(
    c: MatMut<'_, T>,
    a: MatRef<'_, T>,
    b: MatRef<'_, T>,
    accum: Accum,
    blocks: usize,
    parallel: bool,
) {
    if blocks <= 1 {
        faer::linalg::matmul::matmul(c, accum, a, b, T::ONE, Par::Seq);
        return;
    }
    let half = blocks / 2;
    if c.ncols() >= c.nrows() {
        let mid = (c.ncols() / 2).next_multiple_of(16).min(c.ncols());
        let ((c1, c2), (b1, b2)) = (c.split_at_col_mut(mid), b.split_at_col(mid));
        join(
            parallel,
            move || split_product(c1, a, b1, accum, half, parallel),
            move || split_product(c2, a, b2, accum, half, parallel),
        );
    } else {
        let mid = (c.nrows() / 2).next_multiple_of(16).min(c.nrows());
        let ((c1, c2), (a1, a2)) = (c.split_at_row_mut(mid), a.split_at_row(mid));
        join(
            parallel,
            move || split_product(c1, a1, b, accum, half, parallel),
            move || split_product(c2, a2, b, accum, half, parallel),
        );
    }
}

/// [`gemm`] as two sequential halves of C's longer side, run as two rayon tasks: for the
/// many mid-sized products of a recurrence (an LSTM step's `32×128 · 128×512`), which are
/// too small for faer's parallel GEMM. Cheap only when called from inside sinew's pool
/// ([`crate::parallel::install`]), where the other thread is awake; elsewhere the halves
/// run one after the other. Either way the split is the same, and so are the results.
///
/// # Panics
/// As [`gemm`].
#[allow(clippy::too_many_arguments)]
pub(crate) fn gemm_halves<T: Float>(
    c: &mut [T],
    c_view: Strided,
    a: &[T],
    a_view: Strided,
    b: &[T],
    b_view: Strided,
    accumulate: bool,
) {
    with_views(c, c_view, a, a_view, b, b_view, |c, a, b| {
        let accum = if accumulate { Accum::Add } else { Accum::Replace };
        let mm = move |c: MatMut<'_, T>, a: MatRef<'_, T>, b: MatRef<'_, T>| {
            faer::linalg::matmul::matmul(c, accum, a, b, T::ONE, Par::Seq)
        };
        let on_pool = rayon::current_thread_index().is_some() && crate::parallel::num_threads() > 1;
        if c.ncols() >= c.nrows() {
            let mid = (c.ncols() / 2).next_multiple_of(16).min(c.ncols());
            let ((c1, c2), (b1, b2)) = (c.split_at_col_mut(mid), b.split_at_col(mid));
            join(on_pool, move || mm(c1, a, b1), move || mm(c2, a, b2));
        } else {
            let mid = (c.nrows() / 2).next_multiple_of(16).min(c.nrows());
            let ((c1, c2), (a1, a2)) = (c.split_at_row_mut(mid), a.split_at_row(mid));
            join(on_pool, move || mm(c1, a1, b), move || mm(c2, a2, b));
        }
    });
}

/// Both closures, as two rayon tasks when `parallel`, else one after the other.
fn join(parallel: bool, x: impl FnOnce() + Send, y: impl FnOnce() + Send) {
    if parallel {
        rayon::join(x, y);
    } else {
        x();
        y();
    }
}

/// Checks the three views against their slices and hands faer's views of them to `f`.
#[allow(clippy::too_many_arguments)]
fn with_views<T: Float>(
    c: &mut [T],
    c_view: Strided,
    a: &[T],
    a_view: Strided,
    b: &[T],
    b_view: Strided,
    f: impl FnOnce(MatMut<'_, T>, MatRef<'_, T>, MatRef<'_, T>),
) {
    assert!(
        a_view.cols == b_view.rows && c_view.rows == a_view.rows && c_view.cols == b_view.cols,
        "gemm: shape mismatch"
    );
    let inside = |v: Strided, len: usize| v.extent().is_some_and(|e| e <= len);
    assert!(
        inside(a_view, a.len()) && inside(b_view, b.len()) && inside(c_view, c.len()),
        "gemm: view outside buffer (a {a_view:?} of {}, b {b_view:?} of {}, c {c_view:?} of {})",
        a.len(),
        b.len(),
        c.len()
    );
    let non_negative = |v: Strided| v.row_stride >= 0 && v.col_stride >= 0;
    assert!(
        non_negative(a_view) && non_negative(b_view) && non_negative(c_view),
        "gemm: negative strides (a {a_view:?}, b {b_view:?}, c {c_view:?})"
    );
    assert!(c_view.is_injective(), "gemm: output view {c_view:?} writes some elements twice");
    if c_view.rows == 0 || c_view.cols == 0 {
        return;
    }
    // SAFETY: every view lies inside its slice (checked extents, non-negative strides, so
    // every offset `r·row_stride + c·col_stride` is at most `extent − 1`); `c`'s view is
    // injective, so faer's mutable view has no two elements at one address; `c` is
    // borrowed mutably and so does not alias `a` or `b`.
    unsafe {
        let a = MatRef::<T>::from_raw_parts(
            a.as_ptr(),
            a_view.rows,
            a_view.cols,
            a_view.row_stride,
            a_view.col_stride,
        );
        let b = MatRef::<T>::from_raw_parts(
            b.as_ptr(),
            b_view.rows,
            b_view.cols,
            b_view.row_stride,
            b_view.col_stride,
        );
        let c = MatMut::<T>::from_raw_parts_mut(
            c.as_mut_ptr(),
            c_view.rows,
            c_view.cols,
            c_view.row_stride,
            c_view.col_stride,
        );
        f(c, a, b);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(c_view: Strided, a_view: Strided, c_len: usize) -> std::thread::Result<()> {
        std::panic::catch_unwind(move || {
            let mut c = vec![0.0f64; c_len];
            let a = vec![1.0f64; 64];
            let b = vec![1.0f64; 64];
            gemm(&mut c, c_view, &a, a_view, &b, Strided::row_major(2, 2), false, Par::Seq);
        })
    }

    #[test]
    fn thin_products_split_along_their_long_side_by_the_size_of_the_wide_operand() {
        assert_eq!(blocks_for(1, 512, 784), 2); // one-row inference, 784 -> 512: 401K elements
        assert_eq!(blocks_for(1, 256, 512), 1); // 131K elements: stays whole
        assert_eq!(blocks_for(1, 50257, 384), MAX_BLOCKS); // a generation step's logits
        assert_eq!(blocks_for(16, 1536, 384), 4);
        assert_eq!(blocks_for(16, 8, 100_000), 1); // no side long enough to halve
        assert_eq!(blocks_for(64, 64, 64), 1); // not thin: by work, below PARALLEL_GEMM_WORK
    }

    #[test]
    fn a_split_thin_product_is_exact_and_the_same_at_any_thread_count() {
        use crate::{DType, Tensor};
        let (k, n) = (384, 1000);
        let x = Tensor::arange_dtype(0.0, (3 * k) as f64, 1.0, DType::F64).mul_scalar(0.37).sin();
        let w = Tensor::arange_dtype(0.0, (n * k) as f64, 1.0, DType::F64).mul_scalar(0.11).cos();
        let (x, w) = (x.reshape(&[3, k]), w.reshape(&[n, k]));
        assert!(blocks_for(1, n, k) > 1 && blocks_for(3, n, k) > 1);
        let run = |threads: usize, rows: usize, dtype: DType| {
            crate::set_num_threads(threads);
            let y = x.narrow(0, 0, rows).to_dtype(dtype).matmul(&w.to_dtype(dtype).t());
            crate::set_num_threads(0);
            y
        };
        for rows in [1, 3] {
            let (x, w) = (x.narrow(0, 0, rows).to_vec::<f64>(), w.to_vec::<f64>());
            let naive: Vec<f64> = (0..rows * n)
                .map(|i| (0..k).map(|p| x[(i / n) * k + p] * w[(i % n) * k + p]).sum())
                .collect();
            let got = run(2, rows, DType::F64).to_vec::<f64>();
            assert!(got.iter().zip(&naive).all(|(g, e)| (g - e).abs() < 1e-10), "{rows} rows");
            let bits = |t: Tensor| t.to_vec::<f32>().iter().map(|v| v.to_bits()).collect::<Vec<u32>>();
            assert_eq!(bits(run(1, rows, DType::F32)), bits(run(2, rows, DType::F32)), "{rows} rows");
        }
    }

    #[test]
    fn a_row_major_product_is_computed() {
        let mut c = vec![0.0f64; 4];
        let a = [1.0, 2.0, 3.0, 4.0];
        let b = [1.0, 0.0, 0.0, 1.0];
        let v = Strided::row_major(2, 2);
        gemm(&mut c, v, &a, v, &b, v, false, Par::Seq);
        assert_eq!(c, a);
    }

    #[test]
    fn an_output_view_that_aliases_itself_is_refused() {
        let a = Strided::row_major(2, 2);
        // stride 0 on the rows: both rows of C at the same address
        assert!(run(Strided { rows: 2, cols: 2, row_stride: 0, col_stride: 1 }, a, 4).is_err());
        // overlapping rows: row stride 1 with 2 columns of stride 1
        assert!(run(Strided { rows: 2, cols: 2, row_stride: 1, col_stride: 1 }, a, 4).is_err());
        // a column-major output is fine
        assert!(run(Strided { rows: 2, cols: 2, row_stride: 1, col_stride: 2 }, a, 4).is_ok());
        // a padded row-major output is fine
        assert!(run(Strided { rows: 2, cols: 2, row_stride: 3, col_stride: 1 }, a, 5).is_ok());
    }

    #[test]
    fn negative_strides_and_overflowing_extents_are_refused() {
        let a = Strided::row_major(2, 2);
        assert!(run(Strided { rows: 2, cols: 2, row_stride: -2, col_stride: 1 }, a, 4).is_err());
        let neg_a = Strided { rows: 2, cols: 2, row_stride: 2, col_stride: -1 };
        assert!(run(Strided::row_major(2, 2), neg_a, 4).is_err());
        // (rows − 1)·row_stride wraps to a small number without checked arithmetic
        let wrap = Strided { rows: 2, cols: 2, row_stride: isize::MIN + 2, col_stride: 1 };
        assert!(run(Strided::row_major(2, 2), wrap, 4).is_err());
        let wrap = Strided { rows: 3, cols: 2, row_stride: isize::MAX, col_stride: 1 };
        assert!(run(wrap, Strided::row_major(3, 2), 8).is_err());
    }
}

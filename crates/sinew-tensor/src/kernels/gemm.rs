//! The one door to faer's GEMM: `C = A·B` or `C += A·B` over strided row-major views.

use crate::dtype::Float;
use faer::{Accum, MatMut, MatRef, Par};

/// Work (m·n·k) below which faer's parallel GEMM is slower than its sequential one on
/// this class of machine (see `../shared/faer-0.24.md`: 64³ runs at 100 GFLOP/s on one
/// thread and 22 on two; the curves cross near 150³).
pub const PARALLEL_GEMM_WORK: usize = 3_500_000;

/// Chooses faer's parallelism for an `m×k · k×n` product.
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
pub struct Strided {
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

    /// The largest offset reached, plus one (0 for an empty view).
    fn extent(&self) -> usize {
        if self.rows == 0 || self.cols == 0 {
            return 0;
        }
        (self.rows - 1) * self.row_stride.unsigned_abs()
            + (self.cols - 1) * self.col_stride.unsigned_abs()
            + 1
    }
}

/// `c = a·b` (or `c += a·b` when `accumulate`), all three strided views into slices.
///
/// # Panics
/// If the shapes disagree or a view reaches outside its slice (an internal error:
/// callers check user shapes first).
#[allow(clippy::too_many_arguments)]
pub fn gemm<T: Float>(
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
        if matches!(par, Par::Seq) {
            faer::linalg::matmul::matmul(c, accum, a, b, T::ONE, par);
        } else {
            crate::parallel::install(move || faer::linalg::matmul::matmul(c, accum, a, b, T::ONE, par));
        }
    });
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
pub fn gemm_halves<T: Float>(
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
    assert!(
        a_view.extent() <= a.len() && b_view.extent() <= b.len() && c_view.extent() <= c.len(),
        "gemm: view outside buffer"
    );
    assert!(
        a_view.row_stride >= 0 && a_view.col_stride >= 0 && b_view.row_stride >= 0 && b_view.col_stride >= 0
    );
    if c_view.rows == 0 || c_view.cols == 0 {
        return;
    }
    // SAFETY: every view was checked to lie inside its slice above; `c` is borrowed
    // mutably and does not alias `a` or `b` (distinct borrows).
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

/// `c = a·b` for contiguous row-major buffers, with `Par` chosen by size.
pub fn gemm_row_major<T: Float>(
    c: &mut [T],
    a: &[T],
    b: &[T],
    m: usize,
    k: usize,
    n: usize,
    accumulate: bool,
) {
    gemm(
        c,
        Strided::row_major(m, n),
        a,
        Strided::row_major(m, k),
        b,
        Strided::row_major(k, n),
        accumulate,
        par_for(m, n, k),
    );
}

//! The door to faer's dense decompositions (LU with partial pivoting, Cholesky, QR, SVD,
//! symmetric eigendecomposition), one matrix at a time, on row-major slices.
//!
//! Callers (`crate::linalg`) have checked every shape: each function takes a slice of
//! exactly `rows·cols` elements and output slices of the sizes its outputs need, so faer's
//! own assertions never fire. Numerical failures (a zero pivot, a non-positive pivot, an
//! iteration that did not converge) come back as [`Failure`] for the caller to name.

use faer::linalg::solvers::{DenseSolveCore, Solve};
use faer::{MatRef, Side};

use crate::dtype::Float;

/// Why a decomposition could not be used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Failure {
    /// LU: `U[i, i]` is exactly zero (the matrix is singular), as LAPACK's `getrf` info.
    ZeroPivot(usize),
    /// Cholesky: the leading minor of order `i + 1` is not positive-definite.
    NotPositiveDefinite(usize),
    /// SVD or eigendecomposition: the iteration did not converge.
    NoConvergence,
}

fn view<T: Float>(a: &[T], rows: usize, cols: usize) -> MatRef<'_, T> {
    MatRef::from_row_major_slice(a, rows, cols)
}

/// Copies a faer matrix into a row-major slice of its size.
fn store<T: Float>(m: MatRef<'_, T>, out: &mut [T]) {
    let cols = m.ncols();
    debug_assert_eq!(out.len(), m.nrows() * cols);
    for i in 0..m.nrows() {
        for j in 0..cols {
            out[i * cols + j] = m[(i, j)];
        }
    }
}

/// The first exactly-zero diagonal entry of an LU factorization's `U`.
fn zero_pivot<T: Float>(lu: &faer::linalg::solvers::PartialPivLu<T>) -> Option<usize> {
    let u = lu.U();
    (0..u.nrows().min(u.ncols())).find(|&i| u[(i, i)] == T::ZERO)
}

/// `X = A⁻¹·B` for an `n×n` `a` and an `n×k` `b`, written to `out` (`n×k`).
pub(crate) fn solve<T: Float>(a: &[T], b: &[T], n: usize, k: usize, out: &mut [T]) -> Result<(), Failure> {
    let lu = view(a, n, n).partial_piv_lu();
    if let Some(i) = zero_pivot(&lu) {
        return Err(Failure::ZeroPivot(i));
    }
    let x = lu.solve(view(b, n, k));
    store(x.as_ref(), out);
    Ok(())
}

/// `A⁻¹` of an `n×n` `a`, written to `out`.
pub(crate) fn inv<T: Float>(a: &[T], n: usize, out: &mut [T]) -> Result<(), Failure> {
    let lu = view(a, n, n).partial_piv_lu();
    if let Some(i) = zero_pivot(&lu) {
        return Err(Failure::ZeroPivot(i));
    }
    store(lu.inverse().as_ref(), out);
    Ok(())
}

/// `det(A)` of an `n×n` `a`: the sign of the row permutation times the product of `U`'s
/// diagonal, and exactly 0 when a pivot is exactly 0 (where the rest of the factorization
/// holds infinities).
pub(crate) fn det<T: Float>(a: &[T], n: usize) -> T {
    let lu = view(a, n, n).partial_piv_lu();
    if zero_pivot(&lu).is_some() {
        return T::ZERO;
    }
    let (fwd, _) = lu.P().arrays();
    // sign of the permutation: (-1)^(n - number of cycles)
    let mut seen = vec![false; n];
    let mut odd = false;
    for start in 0..n {
        if seen[start] {
            continue;
        }
        let mut len = 0usize;
        let mut i = start;
        while !seen[i] {
            seen[i] = true;
            i = fwd[i];
            len += 1;
        }
        if len.is_multiple_of(2) {
            odd = !odd;
        }
    }
    let u = lu.U();
    let mut d = if odd { -T::ONE } else { T::ONE };
    for i in 0..n {
        d *= u[(i, i)];
    }
    d
}

/// The lower Cholesky factor `L` (`A = L·Lᵀ`) of an `n×n` `a`, from its lower triangle,
/// written to `out` (upper triangle zero).
pub(crate) fn cholesky<T: Float>(a: &[T], n: usize, out: &mut [T]) -> Result<(), Failure> {
    match view(a, n, n).llt(Side::Lower) {
        Ok(llt) => {
            store(llt.L(), out);
            Ok(())
        }
        Err(faer::linalg::solvers::LltError::NonPositivePivot { index }) => {
            Err(Failure::NotPositiveDefinite(index))
        }
    }
}

/// The reduced QR factorization of an `m×n` `a`: `q` is `m×k`, `r` is `k×n`, `k = min(m, n)`.
pub(crate) fn qr<T: Float>(a: &[T], m: usize, n: usize, q: &mut [T], r: &mut [T]) {
    let f = view(a, m, n).qr();
    store(f.compute_thin_Q().as_ref(), q);
    store(f.thin_R(), r);
}

/// The thin SVD of an `m×n` `a`: `u` is `m×k`, `s` has `k` values (non-increasing),
/// `vh` is `k×n`, `k = min(m, n)`.
pub(crate) fn svd<T: Float>(
    a: &[T],
    m: usize,
    n: usize,
    u: &mut [T],
    s: &mut [T],
    vh: &mut [T],
) -> Result<(), Failure> {
    let f = view(a, m, n).thin_svd().map_err(|_| Failure::NoConvergence)?;
    store(f.U(), u);
    store(f.V().transpose(), vh);
    let sv = f.S().column_vector();
    for (i, x) in s.iter_mut().enumerate() {
        *x = sv[i];
    }
    Ok(())
}

/// The eigendecomposition of the symmetric `n×n` `a`, from its lower triangle: `w` gets
/// the eigenvalues in ascending order, `v` (`n×n`) the eigenvectors as columns.
pub(crate) fn eigh<T: Float>(a: &[T], n: usize, w: &mut [T], v: &mut [T]) -> Result<(), Failure> {
    let f = view(a, n, n).self_adjoint_eigen(Side::Lower).map_err(|_| Failure::NoConvergence)?;
    let sv = f.S().column_vector();
    // faer returns NaN eigenvalues for a non-finite input rather than an error
    if sv.iter().any(|x| !x.is_finite()) {
        return Err(Failure::NoConvergence);
    }
    store(f.U(), v);
    for (i, x) in w.iter_mut().enumerate() {
        *x = sv[i];
    }
    Ok(())
}

/// The minimum-norm least-squares solution `X` (`n×k`) of `A·X ≈ B` for an `m×n` `a` and an
/// `m×k` `b`, through the SVD: singular values at most `rcond·s_max` count as zero.
pub(crate) fn lstsq<T: Float>(
    a: &[T],
    b: &[T],
    m: usize,
    n: usize,
    k: usize,
    rcond: T,
    out: &mut [T],
) -> Result<(), Failure> {
    let p = m.min(n);
    let (mut u, mut s, mut vh) = (vec![T::ZERO; m * p], vec![T::ZERO; p], vec![T::ZERO; p * n]);
    svd(a, m, n, &mut u, &mut s, &mut vh)?;
    let cutoff = rcond * s.first().copied().unwrap_or(T::ZERO);
    // c = diag(1/s) · Uᵀ · B over the kept singular values (p×k)
    let mut c = vec![T::ZERO; p * k];
    for i in 0..p {
        if s[i] <= cutoff || s[i] == T::ZERO {
            continue;
        }
        for j in 0..k {
            let mut acc = T::ZERO;
            for r in 0..m {
                acc += u[r * p + i] * b[r * k + j];
            }
            c[i * k + j] = acc / s[i];
        }
    }
    // X = V · c = Vhᵀ · c
    for r in 0..n {
        for j in 0..k {
            let mut acc = T::ZERO;
            for i in 0..p {
                acc += vh[i * n + r] * c[i * k + j];
            }
            out[r * k + j] = acc;
        }
    }
    Ok(())
}

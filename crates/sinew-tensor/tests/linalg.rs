//! `torch.linalg` basics: reconstruction identities under proptest (random sizes and batch
//! dimensions, f32 and f64), known values, the errors (singular, non-square, not
//! positive-definite, integer dtype, shapes that do not fit), and parity with PyTorch's
//! float64 answers in `tests/fixtures/linalg.json` (`gen_linalg.py`). Factors that are
//! unique only up to sign (QR's, singular and eigen vectors) are compared after aligning
//! each column's sign with PyTorch's.

use proptest::prelude::*;
use sinew_tensor::{DType, Generator, Tensor, TensorError};
use sinew_testing::golden::{cases, input_spec, name_of, tensor_of};

const CASES: u32 = 16;

fn randn(shape: &[usize], dtype: DType, seed: u64) -> Tensor {
    Tensor::randn_with(shape, dtype, &mut Generator::new(seed))
}

fn with(batch: &[usize], tail: &[usize]) -> Vec<usize> {
    batch.iter().chain(tail).copied().collect()
}

/// `M + D`, `D` diagonal with each row's `Σ|M| + 1`: strictly diagonally dominant, so
/// comfortably invertible in f32 too (`M + n·I` was not: a 2×2 with a diagonal entry
/// near `-2` came out nearly singular).
fn well_conditioned(batch: &[usize], n: usize, dtype: DType, seed: u64) -> Tensor {
    let m = randn(&with(batch, &[n, n]), dtype, seed);
    let row_sums = m.abs().sum(&[-1], true).add_scalar(1.0);
    &m + &(&Tensor::eye_dtype(n, dtype) * &row_sums)
}

/// `M·Mᵀ + n·I`: symmetric positive-definite.
fn spd(batch: &[usize], n: usize, dtype: DType, seed: u64) -> Tensor {
    let m = randn(&with(batch, &[n, n]), dtype, seed);
    &m.matmul(&m.t()) + &Tensor::eye_dtype(n, dtype).mul_scalar(n as f64)
}

fn eye_like(batch: &[usize], n: usize, dtype: DType) -> Tensor {
    Tensor::eye_dtype(n, dtype).broadcast_to(&with(batch, &[n, n]))
}

fn tol(dtype: DType) -> f64 {
    if dtype == DType::F64 { 1e-10 } else { 2e-4 }
}

fn close(what: &str, got: &Tensor, want: &Tensor, t: f64) -> Result<(), TestCaseError> {
    prop_assert_eq!(got.dims(), want.dims(), "{}: shape", what);
    let (g, w) = (got.to_vec::<f64>(), want.to_vec::<f64>());
    for (i, (a, b)) in g.iter().zip(&w).enumerate() {
        prop_assert!((a - b).abs() <= t * (1.0 + b.abs()), "{}: element {} is {} want {}", what, i, a, b);
    }
    Ok(())
}

fn batch_strategy() -> impl Strategy<Value = Vec<usize>> {
    proptest::collection::vec(1usize..4, 0..=2)
}

fn dtype_strategy() -> impl Strategy<Value = DType> {
    prop_oneof![Just(DType::F32), Just(DType::F64)]
}

/// Strictly lower-triangular mask (1 below the diagonal).
fn strictly_upper(n: usize, dtype: DType) -> Tensor {
    let v: Vec<f64> = (0..n * n).map(|i| if i % n > i / n { 1.0 } else { 0.0 }).collect();
    Tensor::from_vec(v, &[n, n]).unwrap().to_dtype(dtype)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(CASES))]

    #[test]
    fn solve_inv_det(batch in batch_strategy(), n in 1usize..5, k in 1usize..4, dt in dtype_strategy(), seed in any::<u64>()) {
        let a = well_conditioned(&batch, n, dt, seed);
        let b = randn(&with(&batch, &[n, k]), dt, seed ^ 1);
        let x = a.solve(&b);
        prop_assert_eq!(x.dtype(), dt);
        close("A·solve(A, B) = B", &a.matmul(&x), &b, tol(dt))?;
        // vector right-hand sides: (*, n) and a 1-D (n) broadcast over the batch
        let v = randn(&with(&batch, &[n]), dt, seed ^ 2);
        let xv = a.solve(&v);
        prop_assert_eq!(xv.dims(), v.dims());
        close("A·solve(A, v) = v", &a.matmul(&xv.unsqueeze(-1)).squeeze_dim(-1), &v, tol(dt))?;
        let v1 = randn(&[n], dt, seed ^ 3);
        let x1 = a.solve(&v1);
        prop_assert_eq!(x1.dims(), &with(&batch, &[n])[..]);
        close("A·solve(A, v1) = v1", &a.matmul(&x1.unsqueeze(-1)).squeeze_dim(-1), &v1.broadcast_to(x1.dims()), tol(dt))?;
        let inv = a.inv();
        close("inv(A)·A = I", &inv.matmul(&a), &eye_like(&batch, n, dt), tol(dt))?;
        close("A·inv(A) = I", &a.matmul(&inv), &eye_like(&batch, n, dt), tol(dt))?;
        // det(A)·det(A⁻¹) = 1, and det(A·B) = det(A)·det(B)
        let d = a.det();
        prop_assert_eq!(d.dims(), &batch[..]);
        close("det(A)·det(inv A) = 1", &(&d * &inv.det()), &Tensor::ones_dtype(&batch, dt), tol(dt) * 10.0)?;
        let c = well_conditioned(&batch, n, dt, seed ^ 4);
        let dab = a.matmul(&c).det();
        close("det(AC) = det(A)det(C)", &dab, &(&d * &c.det()), tol(dt) * 10.0)?;
    }

    #[test]
    fn cholesky_reconstructs_and_reads_the_lower_triangle(batch in batch_strategy(), n in 1usize..5, dt in dtype_strategy(), seed in any::<u64>()) {
        let a = spd(&batch, n, dt, seed);
        let l = a.cholesky();
        close("L·Lᵀ = A", &l.matmul(&l.t()), &a, tol(dt))?;
        close("L is lower triangular", &(&l * &strictly_upper(n, dt)), &l.zeros_like(), 0.0)?;
        // noise above the diagonal changes nothing
        let noisy = &a + &(&randn(a.dims(), dt, seed ^ 5) * &strictly_upper(n, dt));
        close("upper triangle ignored", &noisy.cholesky(), &l, 0.0)?;
    }

    #[test]
    fn qr_reconstructs(batch in batch_strategy(), m in 1usize..6, n in 1usize..6, dt in dtype_strategy(), seed in any::<u64>()) {
        let a = randn(&with(&batch, &[m, n]), dt, seed);
        let (q, r) = a.qr();
        let p = m.min(n);
        prop_assert_eq!(q.dims(), &with(&batch, &[m, p])[..]);
        prop_assert_eq!(r.dims(), &with(&batch, &[p, n])[..]);
        close("Q·R = A", &q.matmul(&r), &a, tol(dt))?;
        close("QᵀQ = I", &q.t().matmul(&q), &eye_like(&batch, p, dt), tol(dt))?;
        let below: Vec<f64> = (0..p * n).map(|i| if i / n > i % n { 1.0 } else { 0.0 }).collect();
        let below = Tensor::from_vec(below, &[p, n]).unwrap().to_dtype(dt);
        close("R is upper triangular", &(&r * &below), &r.zeros_like(), 0.0)?;
    }

    #[test]
    fn svd_reconstructs(batch in batch_strategy(), m in 1usize..6, n in 1usize..6, dt in dtype_strategy(), seed in any::<u64>()) {
        let a = randn(&with(&batch, &[m, n]), dt, seed);
        let (u, s, vh) = a.svd();
        let p = m.min(n);
        prop_assert_eq!(s.dims(), &with(&batch, &[p])[..]);
        close("U·diag(S)·Vh = A", &(&u * &s.unsqueeze(-2)).matmul(&vh), &a, tol(dt))?;
        close("UᵀU = I", &u.t().matmul(&u), &eye_like(&batch, p, dt), tol(dt))?;
        close("Vh·Vhᵀ = I", &vh.matmul(&vh.t()), &eye_like(&batch, p, dt), tol(dt))?;
        let sv = s.to_vec::<f64>();
        for lane in sv.chunks(p) {
            prop_assert!(lane.iter().all(|&x| x >= 0.0), "S non-negative: {:?}", lane);
            prop_assert!(lane.windows(2).all(|w| w[0] >= w[1]), "S non-increasing: {:?}", lane);
        }
    }

    #[test]
    fn eigh_diagonalises(batch in batch_strategy(), n in 1usize..5, dt in dtype_strategy(), seed in any::<u64>()) {
        let m = randn(&with(&batch, &[n, n]), dt, seed);
        let a = &m + &m.t();
        let (w, v) = a.eigh();
        prop_assert_eq!(w.dims(), &with(&batch, &[n])[..]);
        close("A·V = V·diag(w)", &a.matmul(&v), &(&v * &w.unsqueeze(-2)), tol(dt) * 10.0)?;
        close("VᵀV = I", &v.t().matmul(&v), &eye_like(&batch, n, dt), tol(dt))?;
        for lane in w.to_vec::<f64>().chunks(n) {
            prop_assert!(lane.windows(2).all(|x| x[0] <= x[1]), "ascending: {:?}", lane);
        }
        let noisy = &a + &(&randn(a.dims(), dt, seed ^ 7) * &strictly_upper(n, dt));
        close("upper triangle ignored", &noisy.eigh().0, &w, 0.0)?;
    }

    #[test]
    fn lstsq_satisfies_the_normal_equations(batch in batch_strategy(), n in 1usize..4, extra in 0usize..3, k in 1usize..3, dt in dtype_strategy(), seed in any::<u64>()) {
        let m = n + extra; // tall or square: full column rank with probability 1
        let a = randn(&with(&batch, &[m, n]), dt, seed);
        let b = randn(&with(&batch, &[m, k]), dt, seed ^ 8);
        let x = a.lstsq(&b);
        prop_assert_eq!(x.dims(), &with(&batch, &[n, k])[..]);
        // Aᵀ(A·X - B) = 0
        let residual = a.t().matmul(&(&a.matmul(&x) - &b));
        close("normal equations", &residual, &residual.zeros_like(), tol(dt) * 50.0)?;
    }
}

#[test]
fn known_values() {
    let m = |v: Vec<f64>, s: &[usize]| Tensor::from_vec(v, s).unwrap();
    // det: a permutation (odd), a triangular matrix, a singular one, 0×0
    let perm = m(vec![0.0, 1.0, 0.0, 0.0, 0.0, 1.0, 1.0, 0.0, 0.0], &[3, 3]);
    assert_eq!(perm.det().item(), 1.0); // a 3-cycle is even
    let swap = m(vec![0.0, 1.0, 1.0, 0.0], &[2, 2]);
    assert_eq!(swap.det().item(), -1.0);
    let tri = m(vec![2.0, 5.0, 7.0, 0.0, 3.0, 1.0, 0.0, 0.0, -4.0], &[3, 3]);
    assert!((tri.det().item() + 24.0).abs() < 1e-12);
    let singular = m(vec![1.0, 2.0, 2.0, 4.0], &[2, 2]);
    assert_eq!(singular.det().item(), 0.0);
    let zero_col = m(vec![1.0, 0.0, 3.0, 0.0], &[2, 2]);
    assert_eq!(zero_col.det().item(), 0.0);
    assert_eq!(Tensor::zeros(&[0, 0]).det().item(), 1.0);
    assert_eq!(Tensor::zeros(&[3, 0, 0]).det().to_vec::<f32>(), vec![1.0; 3]);
    assert_eq!(Tensor::zeros(&[2, 0, 3, 3]).det().dims(), &[2, 0]);
    // inv and solve of a known system
    let a = m(vec![2.0, 1.0, 1.0, 3.0], &[2, 2]);
    assert!(a.inv().allclose(&m(vec![0.6, -0.2, -0.2, 0.4], &[2, 2]), 1e-12, 1e-12));
    assert!(a.solve(&m(vec![3.0, 5.0], &[2])).allclose(&m(vec![0.8, 1.4], &[2]), 1e-12, 1e-12));
    assert_eq!(Tensor::zeros(&[0, 0]).inv().dims(), &[0, 0]);
    assert_eq!(Tensor::zeros(&[0, 0]).solve(&Tensor::zeros(&[0, 2])).dims(), &[0, 2]);
    // f32 in, f32 out
    let a32 = a.to_dtype(DType::F32);
    assert_eq!(a32.inv().dtype(), DType::F32);
    assert!(a32.det().allclose(&Tensor::scalar(5.0f32), 1e-6, 1e-6));
    // a strided (transposed) input is read as the matrix it shows
    let at = m(vec![1.0, 2.0, 3.0, 4.0], &[2, 2]).t();
    assert!((at.det().item() + 2.0).abs() < 1e-12);
    assert!(at.matmul(&at.inv()).allclose(&Tensor::eye_dtype(2, DType::F64), 1e-12, 1e-12));
    // lstsq of a wide system: the minimum-norm solution
    let wide = m(vec![1.0, 1.0], &[1, 2]);
    assert!(wide.lstsq(&m(vec![2.0], &[1])).allclose(&m(vec![1.0, 1.0], &[2]), 1e-12, 1e-12));
    // eigh and svd of a diagonal matrix
    let d = m(vec![3.0, 0.0, 0.0, -1.0], &[2, 2]);
    assert!(d.eigh().0.allclose(&m(vec![-1.0, 3.0], &[2]), 1e-12, 1e-12));
    assert!(d.svd().1.allclose(&m(vec![3.0, 1.0], &[2]), 1e-12, 1e-12));
}

#[test]
fn errors_name_the_op_and_the_shape() {
    let msg = |e: TensorError| e.to_string();
    // singular: solve and inv refuse, naming the batch element
    let singular = Tensor::from_vec(vec![1.0f64, 2.0, 2.0, 4.0], &[2, 2]).unwrap();
    let e = singular.try_inv().unwrap_err();
    assert!(matches!(e, TensorError::LinAlg { op: "inv", .. }), "{e:?}");
    assert_eq!(
        msg(e),
        "inv: the matrix is singular (U[1, 1] of its LU factorization is exactly zero) (input of shape [2, 2])"
    );
    let batch = Tensor::stack(&[&Tensor::eye_dtype(2, DType::F64), &singular], 0);
    let e = batch.try_solve(&Tensor::ones_dtype(&[2, 2], DType::F64)).unwrap_err();
    assert!(msg(e).starts_with("solve: the matrix at batch index 1 (of the flattened batch) is singular"));
    assert!(Tensor::zeros(&[3, 3]).try_solve(&Tensor::zeros(&[3])).is_err());
    // not positive-definite
    let indefinite = Tensor::from_vec(vec![1.0f64, 2.0, 2.0, 1.0], &[2, 2]).unwrap();
    let e = indefinite.try_cholesky().unwrap_err();
    assert_eq!(
        msg(e),
        "cholesky: the matrix is not positive-definite (its leading minor of order 2 is not) (input of shape [2, 2])"
    );
    assert!(Tensor::from_vec(vec![-1.0f32], &[1, 1]).unwrap().try_cholesky().is_err());
    // non-square, too few dimensions
    let e = Tensor::zeros(&[2, 3]).try_inv().unwrap_err();
    assert_eq!(msg(e), "inv: expected square matrices, got shape [2, 3] (2×3 matrices)");
    for r in [
        Tensor::zeros(&[4, 2, 3]).try_det().map(|_| ()),
        Tensor::zeros(&[2, 3]).try_cholesky().map(|_| ()),
        Tensor::zeros(&[2, 3]).try_eigh().map(|_| ()),
        Tensor::zeros(&[2, 3]).try_solve(&Tensor::zeros(&[2])).map(|_| ()),
    ] {
        assert!(matches!(r, Err(TensorError::InvalidArgument { .. })), "{r:?}");
    }
    let e = Tensor::zeros(&[3]).try_qr().unwrap_err();
    assert_eq!(msg(e), "qr: expected a matrix or a batch of matrices (at least 2 dimensions), got shape [3]");
    assert!(Tensor::scalar(1.0f32).try_svd().is_err());
    // right-hand sides that do not fit
    let e = Tensor::eye(3).try_solve(&Tensor::zeros(&[2, 1])).unwrap_err();
    assert_eq!(msg(e), "solve: incompatible shapes [3, 3] and [2, 1]: A has 3 rows but B has 2");
    let e = Tensor::zeros(&[2, 3, 3]).try_solve(&Tensor::zeros(&[4, 3, 1])).unwrap_err();
    assert_eq!(
        msg(e),
        "solve: incompatible shapes [2, 3, 3] and [4, 3, 1]: batch dimensions do not broadcast"
    );
    assert!(Tensor::eye(3).try_solve(&Tensor::scalar(1.0f32)).is_err());
    let e = Tensor::zeros(&[4, 2]).try_lstsq(&Tensor::zeros(&[3, 1])).unwrap_err();
    assert_eq!(msg(e), "lstsq: incompatible shapes [4, 2] and [3, 1]: A has 4 rows but B has 3");
    // dtypes: integers, and an f32 system with an f64 right-hand side
    let ints = Tensor::from_vec(vec![1i64, 0, 0, 1], &[2, 2]).unwrap();
    let e = ints.try_inv().unwrap_err();
    assert_eq!(
        msg(e),
        "inv: not supported for int64 tensors: linear algebra needs f32 or f64 (convert with to_dtype)"
    );
    for r in [
        ints.try_det().map(|_| ()),
        ints.try_cholesky().map(|_| ()),
        ints.try_qr().map(|_| ()),
        ints.try_svd().map(|_| ()),
        ints.try_eigh().map(|_| ()),
        ints.try_solve(&Tensor::ones(&[2])).map(|_| ()),
        Tensor::eye(2).try_solve(&Tensor::from_vec(vec![1i64, 2], &[2]).unwrap()).map(|_| ()),
        ints.try_lstsq(&Tensor::ones(&[2])).map(|_| ()),
    ] {
        assert!(matches!(r, Err(TensorError::UnsupportedDType { .. })), "{r:?}");
    }
    let e = Tensor::eye(2).try_solve(&Tensor::ones_dtype(&[2], DType::F64)).unwrap_err();
    assert!(matches!(e, TensorError::InvalidArgument { op: "solve", .. }), "{e:?}");
    // non-finite input: the iterative decompositions report it, LU-based ops propagate NaN
    let nan = Tensor::from_vec(vec![f64::NAN, 1.0, 1.0, 1.0], &[2, 2]).unwrap();
    let e = nan.try_svd().unwrap_err();
    assert_eq!(
        msg(e),
        "svd: the matrix did not converge (are there NaNs or infinities in it?) (input of shape [2, 2])"
    );
    assert!(matches!((&nan + &nan.t()).try_eigh(), Err(TensorError::LinAlg { op: "eigh", .. })));
    assert!(matches!(nan.try_cholesky(), Err(TensorError::LinAlg { op: "cholesky", .. })));
    assert!(nan.inv().to_vec::<f64>().iter().all(|x| x.is_nan())); // as PyTorch: NaN in, NaN out
    assert!(nan.det().item().is_nan());
}

#[test]
#[should_panic(expected = "solve: the matrix is singular")]
fn solve_panics_on_a_singular_matrix() {
    Tensor::ones(&[3, 3]).solve(&Tensor::ones(&[3]));
}

#[test]
#[should_panic(expected = "cholesky: expected square matrices, got shape [2, 3]")]
fn cholesky_panics_on_a_non_square_matrix() {
    Tensor::ones(&[2, 3]).cholesky();
}

/// Flips each column `j` of `got` (a `(*, rows, cols)` tensor, and the matching row of
/// each `partner`) so that its dot product with `want`'s column is non-negative.
fn align_columns(got: &Tensor, want: &Tensor, partners: &mut [(Tensor, bool)]) -> Tensor {
    let (rows, cols) = (got.dims()[got.ndim() - 2], got.dims()[got.ndim() - 1]);
    let mut g = got.to_vec::<f64>();
    let w = want.to_vec::<f64>();
    let mut parts: Vec<Vec<f64>> = partners.iter().map(|(p, _)| p.to_vec::<f64>()).collect();
    for b in 0..g.len() / (rows * cols).max(1) {
        for j in 0..cols {
            let dot: f64 = (0..rows)
                .map(|i| g[b * rows * cols + i * cols + j] * w[b * rows * cols + i * cols + j])
                .sum();
            if dot < 0.0 {
                for i in 0..rows {
                    g[b * rows * cols + i * cols + j] *= -1.0;
                }
                for ((p, is_rows), data) in partners.iter().zip(parts.iter_mut()) {
                    // the partner's row j (R, Vh) or column j (none here) flips with it
                    let (pr, pc) = (p.dims()[p.ndim() - 2], p.dims()[p.ndim() - 1]);
                    assert!(*is_rows && pr == cols);
                    for c in 0..pc {
                        data[b * pr * pc + j * pc + c] *= -1.0;
                    }
                }
            }
        }
    }
    for ((p, _), data) in partners.iter_mut().zip(parts) {
        *p = Tensor::from_vec(data, p.dims()).unwrap();
    }
    Tensor::from_vec(g, got.dims()).unwrap()
}

fn golden_close(what: &str, got: &Tensor, want: &Tensor, rtol: f64) {
    assert_eq!(got.dims(), want.dims(), "{what}: shape");
    let (g, w) = (got.to_vec::<f64>(), want.to_vec::<f64>());
    for (i, (a, b)) in g.iter().zip(&w).enumerate() {
        assert!((a - b).abs() <= rtol * (1.0 + b.abs()), "{what}: element {i} is {a}, PyTorch says {b}");
    }
}

#[test]
fn parity_with_pytorch() {
    let all = cases(include_str!("../../../tests/fixtures/linalg.json"));
    let mut checked = 0;
    for (dt, rtol) in [(DType::F64, 1e-9), (DType::F32, 1e-3)] {
        for case in &all {
            let name = name_of(case);
            let a = tensor_of(input_spec(case, "a"), dt);
            let want = |k: &str| {
                let spec = if case["outputs"].is_null() { &case["output"] } else { &case["outputs"][k] };
                tensor_of(spec, DType::F64)
            };
            let what = |k: &str| format!("{name} ({dt}): {k}");
            match case["op"].as_str().unwrap() {
                "solve" => golden_close(
                    &what("output"),
                    &a.solve(&tensor_of(input_spec(case, "b"), dt)),
                    &want(""),
                    rtol,
                ),
                "inv" => golden_close(&what("output"), &a.inv(), &want(""), rtol),
                "det" => golden_close(&what("output"), &a.det(), &want(""), rtol),
                "cholesky" => golden_close(&what("output"), &a.cholesky(), &want(""), rtol),
                "lstsq" => golden_close(
                    &what("solution"),
                    &a.lstsq(&tensor_of(input_spec(case, "b"), dt)),
                    &want("solution"),
                    rtol,
                ),
                "qr" => {
                    let (q, r) = a.qr();
                    let mut partners = [(r, true)];
                    let q = align_columns(&q, &want("Q"), &mut partners);
                    golden_close(&what("Q"), &q, &want("Q"), rtol);
                    golden_close(&what("R"), &partners[0].0, &want("R"), rtol);
                }
                "svd" => {
                    let (u, s, vh) = a.svd();
                    golden_close(&what("S"), &s, &want("S"), rtol);
                    let mut partners = [(vh, true)];
                    let u = align_columns(&u, &want("U"), &mut partners);
                    golden_close(&what("U"), &u, &want("U"), rtol);
                    golden_close(&what("Vh"), &partners[0].0, &want("Vh"), rtol);
                }
                "eigh" => {
                    let (w, v) = a.eigh();
                    golden_close(&what("eigenvalues"), &w, &want("eigenvalues"), rtol);
                    let v = align_columns(&v, &want("eigenvectors"), &mut []);
                    golden_close(&what("eigenvectors"), &v, &want("eigenvectors"), rtol);
                }
                op => panic!("{name}: unknown op {op}"),
            }
            checked += 1;
        }
    }
    assert_eq!(checked, 2 * all.len());
    assert!(all.len() >= 30, "the fixture has {} cases", all.len());
}

//! Gradients of `solve`, `inv`, `det` and `cholesky`: `gradcheck` and `gradgradcheck` in
//! f64 under proptest (n in 1..5, 0 to 2 batch dimensions, well-conditioned inputs), the
//! exactly singular case of `det`, and parity with PyTorch's outputs and gradients in
//! `tests/fixtures/linalg.json` (`gen_linalg.py`), in f64 and f32.

use proptest::prelude::*;
use sinew_autograd::{GradcheckOptions, Var, gradcheck, gradgradcheck};
use sinew_tensor::{DType, Generator, Tensor};
use sinew_testing::golden::{cases, input_spec, name_of, tensor_of};

const CASES: u32 = 6;

fn opts() -> GradcheckOptions {
    GradcheckOptions::default()
}

fn normal(shape: &[usize], seed: u64) -> Tensor {
    Tensor::randn_with(shape, DType::F64, &mut Generator::new(seed))
}

fn with(batch: &[usize], tail: &[usize]) -> Vec<usize> {
    batch.iter().chain(tail).copied().collect()
}

/// `M + n·I`: comfortably invertible.
fn well_conditioned(batch: &[usize], n: usize, seed: u64) -> Tensor {
    &normal(&with(batch, &[n, n]), seed) + &Tensor::eye_dtype(n, DType::F64).mul_scalar(n as f64)
}

fn batch_strategy() -> impl Strategy<Value = Vec<usize>> {
    proptest::collection::vec(1usize..3, 0..=2)
}

fn check(f: impl Fn(&[Var]) -> Var, inputs: &[Tensor]) -> Result<(), TestCaseError> {
    gradcheck(&f, inputs, opts()).map_err(|e| TestCaseError::fail(e.to_string()))?;
    gradgradcheck(&f, inputs, opts()).map_err(|e| TestCaseError::fail(e.to_string()))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(CASES))]

    #[test]
    fn inv(batch in batch_strategy(), n in 1usize..5, seed in any::<u64>()) {
        check(|v| v[0].inv(), &[well_conditioned(&batch, n, seed)])?;
    }

    #[test]
    fn det(batch in batch_strategy(), n in 1usize..5, seed in any::<u64>()) {
        // scaled so that det stays of order 1 whatever n
        let a = well_conditioned(&batch, n, seed).div_scalar(n as f64);
        check(|v| v[0].det(), &[a])?;
    }

    /// B as matrices, as vectors of A's batch, as a 1-D vector, or as matrices without a
    /// batch (broadcast over A's).
    #[test]
    fn solve(batch in batch_strategy(), n in 1usize..5, k in 1usize..3, form in 0usize..4, seed in any::<u64>()) {
        let a = well_conditioned(&batch, n, seed);
        let b_shape = match form {
            0 => with(&batch, &[n, k]),
            1 => with(&batch, &[n]),
            2 => vec![n],
            _ => vec![n, k],
        };
        let b = normal(&b_shape, seed ^ 1);
        let x = Var::constant(a.clone()).solve(&Var::constant(b.clone()));
        // PyTorch's rule: B is a batch of vectors when its shape is A's without the last
        // dimension, which a batch-less (n, k) B also is when A's batch is [n] and k = 1
        let vectors = form == 1 || form == 2 || b_shape == with(&batch, &[n]);
        let want_dims = if vectors { with(&batch, &[n]) } else { with(&batch, &[n, k]) };
        prop_assert_eq!(x.dims(), &want_dims[..]);
        check(|v| v[0].solve(&v[1]), &[a, b])?;
    }

    /// Through `A = M·Mᵀ + n·I`, so that every perturbation of the input keeps `A`
    /// symmetric positive-definite (the op reads only `A`'s lower triangle, so checking
    /// against a raw `A` would perturb entries it never reads).
    #[test]
    fn cholesky(batch in batch_strategy(), n in 1usize..5, seed in any::<u64>()) {
        let spd = move |m: &Var| {
            let eye = Var::constant(Tensor::eye_dtype(n, DType::F64).mul_scalar(n as f64));
            &m.matmul(&m.t()) + &eye
        };
        check(move |v| spd(&v[0]).cholesky(), &[normal(&with(&batch, &[n, n]), seed)])?;
    }

    #[test]
    fn cholesky_gradient_is_symmetric(batch in batch_strategy(), n in 1usize..5, seed in any::<u64>()) {
        let m = normal(&with(&batch, &[n, n]), seed);
        let a = Var::leaf(&m.matmul(&m.t()) + &Tensor::eye_dtype(n, DType::F64).mul_scalar(n as f64));
        let l = a.cholesky();
        let g = l.backward_with(&normal(l.dims(), seed ^ 2)).get(&a).unwrap().clone();
        prop_assert!(g.allclose(&g.t(), 1e-12, 1e-12));
    }

    /// Compositions: the rules' own Var ops (inv inside det's and cholesky's rules) under
    /// second derivatives of a chain.
    #[test]
    fn chains(n in 1usize..4, seed in any::<u64>()) {
        let a = well_conditioned(&[], n, seed);
        let b = normal(&[n, 2], seed ^ 3);
        check(|v| v[0].inv().matmul(&v[1]).sum_all().mul(&v[0].det()), &[a.clone(), b.clone()])?;
        check(|v| v[0].matmul(&v[0].t()).cholesky().solve(&v[1]), &[a, b])?;
    }
}

/// The cofactor matrix of a 3×3 matrix, by its 2×2 minors.
fn cofactors3(a: &[f64]) -> Vec<f64> {
    let at = |i: usize, j: usize| a[i * 3 + j];
    let mut c = vec![0.0; 9];
    for i in 0..3 {
        for j in 0..3 {
            let (r0, r1) = ((i + 1) % 3, (i + 2) % 3);
            let (c0, c1) = ((j + 1) % 3, (j + 2) % 3);
            // cyclic order makes the sign come out right
            c[i * 3 + j] = at(r0, c0) * at(r1, c1) - at(r0, c1) * at(r1, c0);
        }
    }
    c
}

#[test]
fn det_gradient_at_singular_matrices_is_the_cofactor_matrix() {
    // two equal rows: LU meets an exact zero pivot, det is exactly 0 and A⁻¹ does not exist
    let dup = vec![1.0, 2.0, 3.0, 1.0, 2.0, 3.0, 0.0, 1.0, 5.0];
    let a = Var::leaf(Tensor::from_vec(dup.clone(), &[3, 3]).unwrap());
    let d = a.det();
    assert_eq!(d.value().item(), 0.0);
    let g = d.backward().get(&a).unwrap().to_vec::<f64>();
    let want = cofactors3(&dup);
    assert_eq!(&want[..3], &[7.0, -5.0, 1.0]);
    for (x, y) in g.iter().zip(&want) {
        assert!((x - y).abs() < 1e-12, "{g:?} vs {want:?}");
    }
    // and the finite differences agree
    gradcheck(|v| v[0].det(), &[Tensor::from_vec(dup.clone(), &[3, 3]).unwrap()], opts()).unwrap();
    // in a batch beside a regular matrix, with an upstream gradient per matrix
    let regular = vec![2.0, 1.0, 0.0, 1.0, 3.0, 1.0, 0.0, 1.0, 4.0];
    let both: Vec<f64> = regular.iter().chain(&dup).copied().collect();
    let a = Var::leaf(Tensor::from_vec(both, &[2, 3, 3]).unwrap());
    let g = a.det().backward_with(&Tensor::from_vec(vec![2.0, -1.0], &[2]).unwrap());
    let g = g.get(&a).unwrap().to_vec::<f64>();
    let want: Vec<f64> =
        cofactors3(&regular).iter().map(|c| 2.0 * c).chain(cofactors3(&dup).iter().map(|c| -c)).collect();
    for (x, y) in g.iter().zip(&want) {
        assert!((x - y).abs() < 1e-10, "{g:?} vs {want:?}");
    }
    // 1×1: d det / da = 1 at a = 0 too (PyTorch's issue #80761)
    let z = Var::leaf(Tensor::zeros_dtype(&[1, 1], DType::F64));
    assert_eq!(z.det().backward().get(&z).unwrap().item(), 1.0);
}

#[test]
#[should_panic(expected = "inv: the matrix is singular")]
fn inverse_of_a_singular_matrix_panics_in_the_forward_pass() {
    Var::leaf(Tensor::ones(&[2, 2])).inv();
}

#[test]
#[should_panic(expected = "solve: incompatible shapes [3, 3] and [2]")]
fn solve_names_the_shapes_given() {
    Var::leaf(Tensor::eye(3)).solve(&Var::leaf(Tensor::ones(&[2])));
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
        for case in all.iter().filter(|c| !c["grads"].is_null()) {
            let name = name_of(case);
            let a = Var::leaf(tensor_of(input_spec(case, "a"), dt));
            let (y, b) = match case["op"].as_str().unwrap() {
                "solve" => {
                    let b = Var::leaf(tensor_of(input_spec(case, "b"), dt));
                    (a.solve(&b), Some(b))
                }
                "inv" => (a.inv(), None),
                "det" => (a.det(), None),
                "cholesky" => (a.cholesky(), None),
                op => panic!("{name}: no gradient expected for {op}"),
            };
            assert_eq!(y.dtype(), dt);
            golden_close(
                &format!("{name} ({dt}): output"),
                y.value(),
                &tensor_of(&case["output"], DType::F64),
                rtol,
            );
            let grads = y.backward_with(&tensor_of(&case["cotangent"], dt));
            let mut leaves = vec![("a", &a)];
            if let Some(b) = &b {
                leaves.push(("b", b));
            }
            for (input, leaf) in leaves {
                let want = tensor_of(&case["grads"][input], DType::F64);
                let got = grads.get(leaf).unwrap_or_else(|| panic!("{name}: no gradient for {input}"));
                golden_close(&format!("{name} ({dt}): grad {input}"), got, &want, rtol);
            }
            checked += 1;
        }
    }
    assert_eq!(checked, 2 * 16, "solve 6, inv 3, det 4, cholesky 3 cases, twice");
}

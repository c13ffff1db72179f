//! The fused scaled dot-product attention (`Var::scaled_dot_product_attention`): it equals
//! the composed formula (scores, mask, softmax, weighted sum) forward and backward, passes
//! gradcheck and gradgradcheck (the second through its unfused `create_graph` form), and
//! gives the same bits at one and two threads.

use proptest::prelude::*;
use sinew_autograd::{GradcheckOptions, Var, gradcheck, gradgradcheck};
use sinew_tensor::{DType, Generator, Tensor};

fn normal(shape: &[usize], seed: u64) -> Tensor {
    Tensor::randn_with(shape, DType::F64, &mut Generator::new(seed))
}

/// `(.., rows, cols)` values, as a transposed view of a transposed copy when `strided`
/// (so the kernel reads a column-major matrix).
fn operand(lead: &[usize], rows: usize, cols: usize, seed: u64, strided: bool) -> Tensor {
    let mut shape = lead.to_vec();
    shape.extend([rows, cols]);
    let t = normal(&shape, seed);
    if strided { t.transpose(-2, -1).contiguous().transpose(-2, -1) } else { t }
}

/// An additive mask over `(l, s)`: zeros, some `-∞`, and with `dead_row` every key of
/// row 0 hidden.
fn mask(l: usize, s: usize, seed: u64, dead_row: bool) -> Tensor {
    let r = Tensor::rand_with(&[l, s], DType::F64, &mut Generator::new(seed)).to_vec::<f64>();
    let v: Vec<f64> = r
        .iter()
        .enumerate()
        .map(|(i, &u)| if (dead_row && i < s) || u < 0.25 { f64::NEG_INFINITY } else { u - 0.5 })
        .collect();
    Tensor::from_vec(v, &[l, s]).unwrap()
}

/// The composed attention from `Var` ops, written independently of the library's.
fn composed(q: &Var, k: &Var, v: &Var, bias: Option<&Tensor>, causal: bool, scale: f64) -> Var {
    let (l, s) = (q.dims()[q.ndim() - 2], k.dims()[k.ndim() - 2]);
    let mut b = vec![0.0; l * s];
    if let Some(m) = bias {
        b = m.to_vec::<f64>();
    }
    if causal {
        for i in 0..l {
            for j in i + 1..s {
                b[i * s + j] = f64::NEG_INFINITY;
            }
        }
    }
    let keep: Vec<f64> = b.chunks(s).map(|row| row.iter().any(|x| x.is_finite()) as u8 as f64).collect();
    let finite: Vec<f64> = b
        .chunks(s)
        .flat_map(|row| {
            let dead = row.iter().all(|x| !x.is_finite());
            row.iter().map(move |&x| if dead { 0.0 } else { x })
        })
        .collect();
    let scores =
        &q.matmul(&k.t()).mul_scalar(scale) + &Var::constant(Tensor::from_vec(finite, &[l, s]).unwrap());
    let probs = &scores.softmax(-1) * &Var::constant(Tensor::from_vec(keep, &[l, 1]).unwrap());
    probs.matmul(v)
}

fn case() -> impl Strategy<Value = (Vec<usize>, usize, usize, usize, usize, bool, u8, bool, u64)> {
    (
        proptest::collection::vec(1usize..3, 0..3),
        1usize..5,
        1usize..5,
        1usize..4,
        1usize..4,
        any::<bool>(),
        0u8..3, // no mask, a mask, a mask with a dead row
        any::<bool>(),
        any::<u64>(),
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    #[test]
    fn fused_equals_composed_forward_and_backward((lead, l, s, e, ev, causal, m, strided, seed) in case()) {
        let q = Var::leaf(operand(&lead, l, e, seed, strided));
        let k = Var::leaf(operand(&lead, s, e, seed ^ 1, false));
        let v = Var::leaf(operand(&lead, s, ev, seed ^ 2, strided));
        let bias = (m > 0).then(|| mask(l, s, seed ^ 3, m == 2));
        let scale = 0.7;
        let fused = Var::scaled_dot_product_attention(&q, &k, &v, bias.as_ref(), causal, scale);
        let want = composed(&q, &k, &v, bias.as_ref(), causal, scale);
        prop_assert!(fused.value().allclose(want.value(), 1e-12, 1e-12));
        let up = normal(fused.dims(), seed ^ 4);
        let g1 = fused.backward_pass().grad_output(Var::constant(up.clone())).run();
        let g2 = want.backward_pass().grad_output(Var::constant(up)).run();
        for x in [&q, &k, &v] {
            prop_assert!(g1.get(x).unwrap().allclose(g2.get(x).unwrap(), 1e-11, 1e-12));
        }
    }

    #[test]
    fn gradcheck_and_gradgradcheck((lead, l, s, e, ev, causal, m, strided, seed) in case()) {
        let inputs = [operand(&lead, l, e, seed, strided), operand(&lead, s, e, seed ^ 1, false), operand(&lead, s, ev, seed ^ 2, strided)];
        let bias = (m > 0).then(|| mask(l, s, seed ^ 3, m == 2));
        let f = |x: &[Var]| Var::scaled_dot_product_attention(&x[0], &x[1], &x[2], bias.as_ref(), causal, 0.7);
        gradcheck(f, &inputs, GradcheckOptions::default()).map_err(|e| TestCaseError::fail(e.to_string()))?;
        gradgradcheck(f, &inputs, GradcheckOptions::default()).map_err(|e| TestCaseError::fail(e.to_string()))?;
    }
}

#[test]
fn a_query_that_sees_no_key_returns_zeros_and_passes_no_gradient() {
    let (q, k, v) = (
        Var::leaf(normal(&[1, 3, 2], 1)),
        Var::leaf(normal(&[1, 4, 2], 2)),
        Var::leaf(normal(&[1, 4, 2], 3)),
    );
    let bias = mask(3, 4, 4, true);
    let y = Var::scaled_dot_product_attention(&q, &k, &v, Some(&bias), false, 1.0);
    assert_eq!(y.value().narrow(1, 0, 1).to_vec::<f64>(), [0.0, 0.0]);
    let g = y.sum_all().backward();
    assert_eq!(g.get(&q).unwrap().narrow(1, 0, 1).to_vec::<f64>(), [0.0, 0.0]);
    assert!(g.get(&k).unwrap().to_vec::<f64>().iter().all(|x| x.is_finite()));
}

#[test]
fn same_bits_at_one_and_two_threads() {
    // large enough for the items to run in parallel
    let mut g = Generator::new(7);
    let shape = [8, 4, 64, 32];
    let (q, k, v) = (
        Var::leaf(Tensor::randn_with(&shape, DType::F32, &mut g)),
        Var::leaf(Tensor::randn_with(&shape, DType::F32, &mut g)),
        Var::leaf(Tensor::randn_with(&shape, DType::F32, &mut g)),
    );
    let run = |threads: usize| {
        sinew_tensor::set_num_threads(threads);
        let y = Var::scaled_dot_product_attention(&q, &k, &v, None, true, 0.125);
        let grads = y.square().sum_all().backward();
        sinew_tensor::set_num_threads(0);
        [y.value(), grads.get(&q).unwrap(), grads.get(&k).unwrap(), grads.get(&v).unwrap()]
            .map(|t| t.to_vec::<f32>())
    };
    assert_eq!(run(1), run(2));
}

#[test]
fn mismatched_shapes_name_them() {
    let (q, k) = (Tensor::zeros(&[2, 3, 4]), Tensor::zeros(&[2, 5, 4]));
    let e = Tensor::try_scaled_dot_product_attention(&q, &k, &q, None, false, 1.0).unwrap_err();
    assert!(e.to_string().contains("for q [2, 3, 4], got [2, 5, 4] and [2, 3, 4]"), "{e}");
    let e = Tensor::try_scaled_dot_product_attention(&q, &k, &k, Some(&Tensor::zeros(&[4, 5])), false, 1.0)
        .unwrap_err();
    assert!(e.to_string().contains("broadcast to the scores [2, 3, 5]"), "{e}");
}

//! The fused batch normalisation with batch statistics (`Var::batch_norm_training`): it
//! equals the composed formula forward and backward, passes gradcheck and gradgradcheck
//! (the second through its unfused `create_graph` form), and gives the same bits at one
//! and two threads.

use proptest::prelude::*;
use sinew_autograd::{GradcheckOptions, Var, gradcheck, gradgradcheck};
use sinew_tensor::{DType, Generator, Tensor};

fn normal(shape: &[usize], seed: u64) -> Tensor {
    Tensor::randn_with(shape, DType::F64, &mut Generator::new(seed))
}

/// The composed formula, written independently of the library's.
fn composed(x: &Var, w: Option<&Var>, b: Option<&Var>, eps: f64) -> Var {
    let c = x.dims()[1];
    let moved = x.transpose(0, 1).reshape(&[c, x.numel() / c]); // (C, everything else)
    let mean = moved.mean(&[1], true);
    let centred = &moved - &mean;
    let var = centred.square().mean(&[1], true);
    let mut y = &centred / &var.add_scalar(eps).sqrt();
    if let Some(w) = w {
        y = &y * &w.reshape(&[c, 1]);
    }
    if let Some(b) = b {
        y = &y + &b.reshape(&[c, 1]);
    }
    let mut dims = x.dims().to_vec();
    dims.swap(0, 1);
    y.reshape(&dims).transpose(0, 1)
}

fn case() -> impl Strategy<Value = (Vec<usize>, u8, u64)> {
    (proptest::collection::vec(1usize..4, 0..3), 0u8..4, any::<u64>())
}

fn shape_of(rest: &[usize]) -> Vec<usize> {
    let mut s = vec![3, 2];
    s.extend(rest);
    s
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    #[test]
    fn fused_equals_composed_forward_and_backward((rest, affine, seed) in case()) {
        let shape = shape_of(&rest);
        let x = Var::leaf(normal(&shape, seed));
        let w = (affine & 1 == 1).then(|| Var::leaf(normal(&[2], seed ^ 1)));
        let b = (affine & 2 == 2).then(|| Var::leaf(normal(&[2], seed ^ 2)));
        let (y, mean, var) = Var::batch_norm_training(&x, w.as_ref(), b.as_ref(), 1e-5);
        let want = composed(&x, w.as_ref(), b.as_ref(), 1e-5);
        prop_assert!(y.value().allclose(want.value(), 1e-10, 1e-12));
        prop_assert!(mean.allclose(&x.value().mean(&[0, 2, 3][..x.ndim() - 1], false), 1e-12, 1e-12));
        prop_assert!(var.allclose(&x.value().var(&[0, 2, 3][..x.ndim() - 1], false, false), 1e-12, 1e-12));
        let up = Var::constant(normal(&shape, seed ^ 3));
        let g1 = y.backward_pass().grad_output(up.clone()).run();
        let g2 = want.backward_pass().grad_output(up).run();
        for v in std::iter::once(&x).chain(&w).chain(&b) {
            prop_assert!(g1.get(v).unwrap().allclose(g2.get(v).unwrap(), 1e-9, 1e-11));
        }
    }

    #[test]
    fn gradcheck_and_gradgradcheck((rest, affine, seed) in case()) {
        let shape = shape_of(&rest);
        let inputs = [normal(&shape, seed), normal(&[2], seed ^ 1), normal(&[2], seed ^ 2)];
        let f = |v: &[Var]| {
            let w = (affine & 1 == 1).then_some(&v[1]);
            let b = (affine & 2 == 2).then_some(&v[2]);
            Var::batch_norm_training(&v[0], w, b, 1e-3).0
        };
        gradcheck(f, &inputs, GradcheckOptions::default()).map_err(|e| TestCaseError::fail(e.to_string()))?;
        gradgradcheck(f, &inputs, GradcheckOptions::default()).map_err(|e| TestCaseError::fail(e.to_string()))?;
    }
}

#[test]
fn same_bits_at_one_and_two_threads() {
    let mut g = Generator::new(3);
    let x = Var::leaf(Tensor::randn_with(&[16, 8, 32, 32], DType::F32, &mut g));
    let w = Var::leaf(Tensor::randn_with(&[8], DType::F32, &mut g));
    let up = Var::constant(Tensor::randn_with(&[16, 8, 32, 32], DType::F32, &mut g));
    let run = |threads: usize| {
        sinew_tensor::set_num_threads(threads);
        let (y, mean, var) = Var::batch_norm_training(&x, Some(&w), None, 1e-5);
        let grads = y.backward_pass().grad_output(up.clone()).run();
        sinew_tensor::set_num_threads(0);
        [y.value(), &mean, &var, grads.get(&x).unwrap(), grads.get(&w).unwrap()].map(|t| t.to_vec::<f32>())
    };
    assert_eq!(run(1), run(2));
}

#[test]
fn wrong_channel_counts_name_the_shapes() {
    let e = Tensor::zeros(&[4, 3, 2])
        .try_batch_norm_training(None, Some(&Tensor::zeros(&[4])), 1e-5)
        .unwrap_err();
    assert!(e.to_string().contains("expected bias of shape [3]"), "{e}");
}

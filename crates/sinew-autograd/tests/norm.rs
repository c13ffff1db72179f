//! The fused LayerNorm and softmax ops against the formulas they replace: the same values
//! and first-order gradients as the unfused chain of `Var` ops, the same gradient from
//! the kernel as from the composed rule `create_graph` uses, and the same bits for any
//! number of threads.

use proptest::prelude::*;
use sinew_autograd::Var;
use sinew_tensor::{DType, Generator, Tensor};

fn randn(shape: &[usize], dtype: DType, g: &mut Generator) -> Tensor {
    Tensor::randn_with(shape, dtype, g)
}

/// LayerNorm as `functional::layer_norm` composed it before it was fused.
fn layer_norm_unfused(x: &Var, k: usize, w: Option<&Var>, b: Option<&Var>, eps: f64) -> Var {
    let dims: Vec<isize> = (x.ndim() - k..x.ndim()).map(|d| d as isize).collect();
    let mean = x.mean(&dims, true);
    let var = x.var(&dims, false, true);
    let mut y = &(x - &mean) * &var.add_scalar(eps).rsqrt();
    if let Some(w) = w {
        y = &y * w;
    }
    if let Some(b) = b {
        y = &y + b;
    }
    y
}

/// The gradients of `out` for `vars` after a backward pass with upstream `dy`, first
/// order or with `create_graph`.
fn grads_of(out: &Var, dy: &Tensor, vars: &[&Var], create_graph: bool) -> Vec<Tensor> {
    let g = out.backward_pass().grad_output(dy.clone()).create_graph(create_graph).run();
    vars.iter().map(|v| g.get(v).expect("a gradient").clone()).collect()
}

fn bits(t: &Tensor) -> Vec<u64> {
    t.to_dtype(DType::F64).to_vec::<f64>().iter().map(|v| v.to_bits()).collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    #[test]
    fn layer_norm_equals_the_unfused_chain(
        lead in proptest::collection::vec(1usize..5, 0..=2),
        normalized in proptest::collection::vec(1usize..6, 1..=2),
        affine in 0u8..4,
        seed in any::<u64>(),
    ) {
        let mut g = Generator::new(seed);
        let shape: Vec<usize> = lead.iter().chain(&normalized).copied().collect();
        let x = Var::leaf(&randn(&shape, DType::F64, &mut g) * 3.0);
        let w = (affine & 1 == 1).then(|| Var::leaf(randn(&normalized, DType::F64, &mut g)));
        let b = (affine & 2 == 2).then(|| Var::leaf(randn(&normalized, DType::F64, &mut g)));
        let dy = randn(&shape, DType::F64, &mut g);
        let vars: Vec<&Var> = [Some(&x), w.as_ref(), b.as_ref()].into_iter().flatten().collect();
        let fused = x.layer_norm(&normalized, w.as_ref(), b.as_ref(), 1e-5);
        let unfused = layer_norm_unfused(&x, normalized.len(), w.as_ref(), b.as_ref(), 1e-5);
        prop_assert!(fused.value().allclose(unfused.value(), 1e-12, 1e-12));
        let kernel = grads_of(&fused, &dy, &vars, false);
        let composed = grads_of(&fused, &dy, &vars, true);
        let reference = grads_of(&unfused, &dy, &vars, false);
        for ((k, c), r) in kernel.iter().zip(&composed).zip(&reference) {
            prop_assert!(k.allclose(r, 1e-10, 1e-10), "kernel {:?} vs unfused {:?}", k.to_vec::<f64>(), r.to_vec::<f64>());
            prop_assert!(c.allclose(r, 1e-10, 1e-10), "composed {:?} vs unfused {:?}", c.to_vec::<f64>(), r.to_vec::<f64>());
        }
    }

    /// The softmax kernels give the bits of the composed rules, in f32 and f64.
    #[test]
    fn softmax_kernel_gradients_equal_the_composed_rules(
        shape in proptest::collection::vec(1usize..7, 1..=4),
        pick in any::<usize>(),
        f32_: bool,
        seed in any::<u64>(),
    ) {
        let dtype = if f32_ { DType::F32 } else { DType::F64 };
        let mut g = Generator::new(seed);
        let d = (pick % shape.len()) as isize;
        let x = Var::leaf(randn(&shape, dtype, &mut g));
        let dy = randn(&shape, dtype, &mut g);
        for y in [x.softmax(d), x.log_softmax(d)] {
            let kernel = grads_of(&y, &dy, &[&x], false);
            let composed = grads_of(&y, &dy, &[&x], true);
            prop_assert_eq!(bits(&kernel[0]), bits(&composed[0]));
        }
    }
}

/// Forward and backward of the fused ops on the GPT shapes (above the parallel
/// threshold): the same bits with one thread and with two.
#[test]
fn fused_ops_are_bit_identical_for_any_thread_count() {
    let mut g = Generator::new(11);
    let x = Var::leaf(randn(&[2048, 128], DType::F32, &mut g));
    let w = Var::leaf(randn(&[128], DType::F32, &mut g));
    let b = Var::leaf(randn(&[128], DType::F32, &mut g));
    let dy = randn(&[2048, 128], DType::F32, &mut g);
    let s = Var::leaf(randn(&[8, 4, 64, 64], DType::F32, &mut g));
    let ds = randn(&[8, 4, 64, 64], DType::F32, &mut g);
    assert!(x.numel() >= sinew_tensor::parallel::PARALLEL_ELEMENT_THRESHOLD);
    let run = |threads: usize| {
        sinew_tensor::set_num_threads(threads);
        let y = x.layer_norm(&[128], Some(&w), Some(&b), 1e-5);
        let mut out = vec![y.value().clone()];
        out.extend(grads_of(&y, &dy, &[&x, &w, &b], false));
        let p = s.softmax(-1);
        out.push(p.value().clone());
        out.extend(grads_of(&p, &ds, &[&s], false));
        out.extend(grads_of(&s.log_softmax(-1), &ds, &[&s], false));
        sinew_tensor::set_num_threads(0);
        out.iter().map(bits).collect::<Vec<_>>()
    };
    assert_eq!(run(1), run(2));
}

//! The engine as a whole: higher-order gradients (a Hessian-vector product checked by
//! finite differences, a gradient penalty that trains), grad modes, retained
//! intermediates, and memory: graphs are freed on drop, deep graphs drop without
//! recursion (flat memory over a training loop is in `memory.rs`, alone in its process).

use sinew_autograd::{Gradients, Param, Var, grad, no_grad};
use sinew_tensor::{DType, Generator, Tensor};

fn randn(shape: &[usize], g: &mut Generator) -> Tensor {
    Tensor::randn_with(shape, DType::F64, g)
}

/// A 4-8-1 tanh MLP's mean squared error, as a function of its flat parameter vector.
fn mlp_loss(w: &Var, x: &Var, y: &Var) -> Var {
    let w1 = w.narrow(0, 0, 32).reshape(&[4, 8]);
    let b1 = w.narrow(0, 32, 8);
    let w2 = w.narrow(0, 40, 8).reshape(&[8, 1]);
    let h = (&x.matmul(&w1) + &b1).tanh();
    (&h.matmul(&w2) - y).square().mean_all()
}

#[test]
fn hessian_vector_product_matches_finite_differences() {
    let mut g = Generator::new(3);
    let (x, y) = (Var::constant(randn(&[16, 4], &mut g)), Var::constant(randn(&[16, 1], &mut g)));
    let w0 = randn(&[48], &mut g);
    let v = randn(&[48], &mut g);
    let gradient_at = |w: &Tensor| -> Tensor {
        let w = Var::leaf(w.clone());
        mlp_loss(&w, &x, &y).backward().get(&w).unwrap().clone()
    };
    // analytic: H·v = d/dw <∇L(w), v>
    let w = Var::leaf(w0.clone());
    let gw = grad(&mlp_loss(&w, &x, &y), &[&w], None, true).remove(0).unwrap();
    let hv = (&gw * &Var::constant(v.clone())).sum_all().backward().get(&w).unwrap().clone();
    // numeric: (∇L(w + εv) - ∇L(w - εv)) / 2ε
    let eps = 1e-5;
    let plus = gradient_at(&(&w0 + &(&v * eps)));
    let minus = gradient_at(&(&w0 - &(&v * eps)));
    let numeric = (&plus - &minus) / (2.0 * eps);
    assert!(hv.allclose(&numeric, 1e-6, 1e-8), "H·v {hv} vs finite differences {numeric}");
}

#[test]
fn gradient_penalty_trains() {
    // A critic f(x) = tanh(x W1 + b1) w2; penalty E[(‖∂f/∂x‖ - 1)²] as in WGAN-GP.
    let mut g = Generator::new(11);
    let w1 = Param::new("w1", randn(&[2, 16], &mut g).mul_scalar(0.1));
    let b1 = Param::new("b1", Tensor::zeros_dtype(&[16], DType::F64));
    let w2 = Param::new("w2", randn(&[16, 1], &mut g).mul_scalar(0.1));
    let params = [&w1, &b1, &w2];
    let x = randn(&[64, 2], &mut g);
    let penalty = |params: &[&Param]| -> Var {
        let xv = Var::leaf(x.clone());
        let out = (&xv.matmul(&params[0].var()) + &params[1].var()).tanh().matmul(&params[2].var());
        let dx = grad(&out.sum_all(), &[&xv], None, true).remove(0).unwrap();
        (dx.norm(2.0, &[1], false) - 1.0).square().mean_all()
    };
    let start = penalty(&params).item();
    for _ in 0..300 {
        let loss = penalty(&params);
        let grads = loss.backward();
        for p in params {
            let step = grads.get_id(p.id()).expect("every parameter gets a second-order gradient") * 0.5;
            let new = &p.value() - &step;
            p.set_value(new);
        }
    }
    let end = penalty(&params).item();
    assert!(start > 0.5 && end < 0.01, "penalty went from {start} to {end}");
}

#[test]
fn graph_is_freed_after_backward_and_drop() {
    let x = Var::leaf(Tensor::ones(&[3]));
    let h = x.exp();
    let y = (&h * &h).sum_all();
    let (wh, wy) = (h.downgrade(), y.downgrade());
    let grads = y.backward();
    drop((h, y));
    assert!(!wh.is_alive() && !wy.is_alive(), "a graph node outlived its last Var");
    assert_eq!(grads.get(&x).unwrap().dims(), &[3]);
}

#[test]
fn a_million_op_chain_drops_without_recursion() {
    let x = Var::leaf(Tensor::scalar(1.0f32));
    let mut y = x.clone();
    for _ in 0..1_000_000 {
        y = y.add_scalar(1e-7);
    }
    drop(y); // recursive drop of this chain would overflow the stack
}

#[test]
fn no_grad_detach_and_constants_record_nothing() {
    let x = Var::leaf(Tensor::ones(&[2]));
    assert!(!no_grad(|| x.exp()).requires_grad());
    assert!(!x.detach().requires_grad());
    let y = (&x.detach() * &x).sum_all();
    assert_eq!(y.backward().get(&x).unwrap().to_vec::<f32>(), vec![1.0, 1.0]);
    let c = Var::constant(Tensor::ones(&[2]));
    assert!(!c.exp().requires_grad());
    assert!(c.exp().sum_all().backward().is_empty());
}

#[test]
fn intermediates_only_when_retained() {
    let x = Var::leaf(Tensor::from_vec(vec![1.0f64, 2.0], &[2]).unwrap());
    let h = x.square();
    let y = h.sum_all();
    assert!(y.backward().get(&h).is_none());
    let g = y.backward_pass().retain(&[&h]).run();
    assert_eq!(g.get(&h).unwrap().to_vec::<f64>(), vec![1.0, 1.0]);
    assert_eq!(g.get(&x).unwrap().to_vec::<f64>(), vec![2.0, 4.0]);
}

#[test]
fn non_scalar_outputs_take_an_upstream_gradient() {
    let x = Var::leaf(Tensor::from_vec(vec![1.0f64, 2.0, 3.0], &[3]).unwrap());
    let y = x.square();
    let up = Tensor::from_vec(vec![1.0f64, 0.0, 2.0], &[3]).unwrap();
    assert_eq!(y.backward_with(&up).get(&x).unwrap().to_vec::<f64>(), vec![2.0, 0.0, 12.0]);
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| y.backward()));
    assert!(r.is_err(), "backward of a non-scalar without an upstream gradient must panic");
}

#[test]
fn accumulation_over_micro_batches_equals_one_big_batch() {
    let mut g = Generator::new(9);
    let w = Param::new("w", randn(&[3, 1], &mut g));
    let x = randn(&[8, 3], &mut g);
    let loss_of = |xb: &Tensor| x_loss(&w.var(), xb);
    let full = loss_of(&x).backward();
    let mut acc = Gradients::new();
    for part in x.split(4, 0) {
        acc.accumulate(&loss_of(&part).backward());
    }
    acc.scale(0.5);
    assert!(acc.get_id(w.id()).unwrap().allclose(full.get_id(w.id()).unwrap(), 1e-12, 1e-12));
}

fn x_loss(w: &Var, x: &Tensor) -> Var {
    Var::constant(x.clone()).matmul(w).square().mean_all()
}

#[test]
fn vars_cross_threads() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Var>();
    assert_send_sync::<Param>();
    let x = Var::leaf(Tensor::ones(&[4]));
    let y = std::thread::spawn({
        let x = x.clone();
        move || x.exp().sum_all()
    })
    .join()
    .unwrap();
    assert!((y.backward().get(&x).unwrap().sum_all().item() - 4.0 * 1f64.exp()).abs() < 1e-5);
}

#[test]
fn anomaly_mode_names_the_op() {
    let x = Var::leaf(Tensor::from_vec(vec![0.0f64], &[1]).unwrap());
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        sinew_autograd::detect_anomaly(|| x.sqrt().sum_all().backward())
    }));
    let msg = r.unwrap_err().downcast::<String>().unwrap();
    assert!(msg.contains("backward of `sqrt`") && msg.contains("gradient of input 0"), "{msg}");
}

#[test]
fn linear_layer_weight_gradients_are_contiguous() {
    // y = x·Wᵀ with W (out, in): the gradient of W must arrive contiguous, so optimizers
    // update it without a copy
    let mut g = Generator::new(1);
    let w = Var::leaf(randn(&[5, 3], &mut g));
    let x = Var::constant(randn(&[4, 3], &mut g));
    let grads = x.matmul(&w.t()).square().sum_all().backward();
    let gw = grads.get(&w).unwrap();
    assert!(gw.is_contiguous(), "strides {:?}", gw.strides());
    let want = x.value().t().matmul(&(x.value().matmul(&w.value().t()) * 2.0)).t();
    assert!(gw.allclose(&want, 1e-12, 1e-12));
}

#[test]
fn in_place_slice_accumulation_matches_the_differentiable_rule() {
    // first-order passes add slice gradients into one buffer in place; passes that build a
    // graph use the differentiable zero-pad rule. Both must agree, also when slices overlap
    // with other uses of the same input.
    let mut g = Generator::new(4);
    let x = Var::leaf(randn(&[12, 5], &mut g));
    let loss = || {
        let mut acc = x.sum_all();
        for t in 0..12 {
            acc = &acc + &(&x.select(0, t) * (t as f64 + 1.0)).sin().sum_all();
        }
        let strided = x.slice(0, 1, 12, 3).square().sum_all();
        &acc + &strided
    };
    let fast = loss().backward();
    let graph = loss().backward_pass().create_graph(true).run();
    assert!(fast.get(&x).unwrap().allclose(graph.get(&x).unwrap(), 1e-12, 1e-12));
}

#[test]
fn scalars_on_the_left_of_operators() {
    let x = Var::leaf(Tensor::from_vec(vec![1.0f64, 2.0], &[2]).unwrap());
    let y = &(&(2.0 * &x) + &(1.0 - &x)) + &(4.0 / &x); // 2x + 1 - x + 4/x
    assert_eq!(y.value().to_vec::<f64>(), vec![6.0, 5.0]);
    let g = y.sum_all().backward();
    assert_eq!(g.get(&x).unwrap().to_vec::<f64>(), vec![1.0 - 4.0, 1.0 - 1.0]); // 1 - 4/x²
}

#[test]
fn leaf_hook_sees_every_final_leaf_gradient_once_and_in_finishing_order() {
    // w2 is used only by the last op, w1 only by the first: w2 finishes first
    let x = Var::constant(Tensor::from_vec(vec![1.0f64, -2.0, 3.0], &[3]).unwrap());
    let w1 = Var::leaf(Tensor::from_vec(vec![0.5f64, 1.5, -1.0], &[3]).unwrap());
    let w2 = Var::leaf(Tensor::from_vec(vec![2.0f64, 0.0, 1.0], &[3]).unwrap());
    let shared = Var::leaf(Tensor::scalar(3.0f64)); // used twice: its gradient sums two paths
    let h = x.mul(&w1).mul(&shared).tanh();
    let y = h.mul(&w2).mul(&shared).sum_all();
    let mut seen: Vec<(sinew_autograd::VarId, Vec<f64>)> = Vec::new();
    let grads = y.backward_pass().on_leaf_gradient(|id, g| seen.push((id, g.to_vec::<f64>()))).run();
    assert_eq!(seen.len(), 3);
    for (id, g) in &seen {
        assert_eq!(&grads.get_id(*id).unwrap().to_vec::<f64>(), g);
    }
    let position = |v: &Var| seen.iter().position(|(id, _)| *id == v.id()).unwrap();
    assert!(position(&w2) < position(&w1), "w2's gradient is final before w1's");
}

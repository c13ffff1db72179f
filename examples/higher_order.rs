//! Gradients of gradients: a Hessian-vector product of a small network's loss, checked
//! against finite differences of its gradient, and a gradient penalty (the norm of
//! d(output)/d(input), as in WGAN-GP) driven to 1 by training through it.
//!
//! Run with `cargo run --release --example higher_order`.

use sinew::autograd::grad;
use sinew::prelude::*;

fn main() {
    let mut g = Generator::new(0);
    let x = Var::constant(Tensor::randn_with(&[32, 3], DType::F64, &mut g));
    let y = Var::constant(Tensor::randn_with(&[32, 1], DType::F64, &mut g));
    let w0 = Tensor::randn_with(&[3, 1], DType::F64, &mut g);
    let v = Tensor::randn_with(&[3, 1], DType::F64, &mut g);
    let loss_at = |w: &Var| (&x.matmul(w).tanh() - &y).square().mean_all();

    // H·v = d/dw <∇L(w), v>
    let w = Var::leaf(w0.clone());
    let gw = grad(&loss_at(&w), &[&w], None, true).remove(0).expect("gradient");
    let hv = (&gw * &Var::constant(v.clone())).sum_all().backward().get(&w).expect("hvp").clone();
    let eps = 1e-5;
    let grad_at = |w: Tensor| {
        let w = Var::leaf(w);
        loss_at(&w).backward().get(&w).expect("gradient").clone()
    };
    let numeric = (&grad_at(&w0 + &(&v * eps)) - &grad_at(&w0 - &(&v * eps))) / (2.0 * eps);
    println!("Hessian-vector product      {:?}", hv.to_vec::<f64>());
    println!("finite differences of grads {:?}", numeric.to_vec::<f64>());
    println!("max difference {:.2e}", (&hv - &numeric).abs().max_all().item());

    // a critic whose input-gradient norm is pushed to 1
    let critic = Sequential::new().add(Linear::new(2, 32, &mut g)).add(Tanh).add(Linear::new(32, 1, &mut g));
    let points = Tensor::randn_with(&[128, 2], DType::F32, &mut g);
    let mut opt = Adam::new(critic.parameters(), 0.01);
    for step in 0..=300 {
        let input = Var::leaf(points.clone());
        let out = critic.forward(&input).sum_all();
        let dx = grad(&out, &[&input], None, true).remove(0).expect("input gradient");
        let penalty = (dx.norm(2.0, &[1], false) - 1.0).square().mean_all();
        if step % 100 == 0 {
            println!("step {step:3}: gradient penalty {:.5}", penalty.item());
        }
        opt.step(&penalty.backward());
    }
}

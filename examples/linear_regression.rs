//! The design document's model: 100 samples of `y = 3x + U(0,1)`, one `Dense(1)` unit,
//! plain SGD (learning rate 0.01) on the mean squared error, batches of 32, 1000 epochs.
//!
//! Until `sinew-autograd` lands, the gradients of the MSE are written out by hand with
//! tensor ops: for `ŷ = xw + b`, `dL/dw = 2/n · xᵀ(ŷ - y)` and `dL/db = 2/n · Σ(ŷ - y)`.
//!
//! Run with `cargo run --release --example linear_regression`.

use std::time::Instant;

use sinew::prelude::*;

fn main() {
    let mut rng = Generator::new(42);
    let n = 100;
    let x = Tensor::rand_with(&[n, 1], DType::F32, &mut rng);
    let noise = Tensor::rand_with(&[n, 1], DType::F32, &mut rng);
    let y = &(&x * 3.0) + &noise;

    // Keras' Dense(1) starts from a Glorot-uniform weight (limit sqrt(6/2)) and zero bias.
    let mut w = Tensor::uniform_with(&[1, 1], -3f64.sqrt(), 3f64.sqrt(), DType::F32, &mut rng);
    let mut b = Tensor::zeros(&[1]);
    let (lr, epochs, batch) = (0.01, 1000, 32);

    let start = Instant::now();
    let mut order: Vec<i64> = (0..n as i64).collect();
    for _ in 0..epochs {
        rng.shuffle(&mut order);
        for chunk in order.chunks(batch) {
            let idx = Tensor::from_slice(chunk, &[chunk.len()]).expect("indices");
            let (xb, yb) = (x.index_select(0, &idx), y.index_select(0, &idx));
            let err = &(&xb.matmul(&w) + &b) - &yb; // (B, 1)
            let scale = 2.0 / chunk.len() as f64;
            let grad_w = xb.t().matmul(&err) * scale;
            let grad_b = err.sum(&[0], false) * scale;
            w = &w - &(grad_w * lr);
            b = &b - &(grad_b * lr);
        }
    }
    let elapsed = start.elapsed();
    let loss = (&(&x.matmul(&w) + &b) - &y).square().mean_all().item();

    println!("learned weight {:.4} (true 3), bias {:.4} (true 0.5 on average)", w.item(), b.item());
    println!("final MSE {loss:.5} (the noise alone gives 1/12 = 0.0833)");
    println!("{epochs} epochs of {} steps in {:.1} ms", n.div_ceil(batch), elapsed.as_secs_f64() * 1e3);
}

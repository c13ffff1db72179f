//! The design document's model, as its Keras original: 100 samples of `y = 3x + U(0,1)`,
//! one `Dense(1)` unit (Glorot-uniform weight, zero bias), plain SGD with learning rate
//! 0.01 on the mean squared error, batches of 32 shuffled each epoch, 1000 epochs.
//!
//! Run with `cargo run --release --example linear_regression`.

use std::time::Instant;

use sinew::nn::init;
use sinew::prelude::*;

fn main() {
    let mut rng = Generator::new(42);
    let n = 100;
    let x = Tensor::rand_with(&[n, 1], DType::F32, &mut rng);
    let noise = Tensor::rand_with(&[n, 1], DType::F32, &mut rng);
    let y = &(&x * 3.0) + &noise;

    let dense = Linear::new(1, 1, &mut rng);
    dense.weight.set_value(init::xavier_uniform(&[1, 1], 1.0, &mut rng));
    dense.bias.as_ref().expect("bias").set_value(Tensor::zeros(&[1]));
    let mut opt = Sgd::new(dense.parameters(), 0.01);
    let (epochs, batch) = (1000, 32);

    let start = Instant::now();
    let mut order: Vec<i64> = (0..n as i64).collect();
    for _ in 0..epochs {
        rng.shuffle(&mut order);
        for chunk in order.chunks(batch) {
            let idx = Tensor::from_slice(chunk, &[chunk.len()]).expect("indices");
            let (xb, yb) = (Var::constant(x.index_select(0, &idx)), Var::constant(y.index_select(0, &idx)));
            let loss = mse_loss(&dense.forward(&xb), &yb, Reduction::Mean);
            opt.step(&loss.backward());
        }
    }
    let elapsed = start.elapsed();
    let loss = no_grad(|| {
        mse_loss(&dense.forward(&Var::constant(x.clone())), &Var::constant(y.clone()), Reduction::Mean)
    });

    let (w, b) = (dense.weight.value().item(), dense.bias.as_ref().expect("bias").value().item());
    println!("learned weight {w:.4} (true 3), bias {b:.4} (true 0.5 on average)");
    println!("final MSE {:.5} (the noise alone gives 1/12 = 0.0833)", loss.item());
    println!(
        "{epochs} epochs of {} steps in {:.1} ms ({:.1} µs per step; Keras needs about 33 s)",
        n.div_ceil(batch),
        elapsed.as_secs_f64() * 1e3,
        elapsed.as_secs_f64() * 1e6 / (epochs * n.div_ceil(batch)) as f64
    );
}

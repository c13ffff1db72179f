//! A memory task an LSTM must solve across time: a sequence of 20 random numbers is
//! shown one step at a time, with a marker on one random step; the network must output
//! the number that carried the marker, at the end. A plain feed-forward read of the last
//! step cannot do it; the LSTM learns to store the marked value.
//!
//! Run with `cargo run --release --example sequence_lstm`.

use sinew::nn::{Lstm, RecurrentOptions};
use sinew::prelude::*;

#[derive(Module)]
struct Recall {
    lstm: Lstm,
    head: Linear,
}

impl Forward for Recall {
    fn forward(&self, x: &Var) -> Var {
        let out = self.lstm.forward(x); // (N, T, H)
        self.head.forward(&out.select(1, out.dims()[1] - 1))
    }
}

/// A batch: inputs (n, t, 2) = (value, marker), targets (n, 1) = the marked value.
fn batch(n: usize, t: usize, g: &mut Generator) -> (Tensor, Tensor) {
    let mut x = vec![0f32; n * t * 2];
    let mut y = vec![0f32; n];
    for i in 0..n {
        let marked = g.index(t);
        for s in 0..t {
            let v = g.uniform_f32() * 2.0 - 1.0;
            x[(i * t + s) * 2] = v;
            if s == marked {
                x[(i * t + s) * 2 + 1] = 1.0;
                y[i] = v;
            }
        }
    }
    (Tensor::from_vec(x, &[n, t, 2]).expect("x"), Tensor::from_vec(y, &[n, 1]).expect("y"))
}

fn main() {
    let mut g = Generator::new(3);
    let model = Recall {
        lstm: Lstm::new(2, 32, RecurrentOptions::default().batch_first(true), &mut g),
        head: Linear::new(32, 1, &mut g),
    };
    let mut opt = Adam::new(model.parameters(), 0.01);
    let (tx, ty) = batch(256, 20, &mut g);
    let baseline = ty.var(&[], false, false).item();
    println!("predicting the mean would give an MSE of {baseline:.4}");
    for step in 0..=400 {
        let (x, y) = batch(64, 20, &mut g);
        let loss = mse_loss(&model.forward(&Var::constant(x)), &Var::constant(y), Reduction::Mean);
        opt.step(&loss.backward());
        if step % 100 == 0 {
            let test = no_grad(|| {
                mse_loss(
                    &model.forward(&Var::constant(tx.clone())),
                    &Var::constant(ty.clone()),
                    Reduction::Mean,
                )
            });
            println!("step {step:3}: train MSE {:.4}, held-out MSE {:.4}", loss.item(), test.item());
        }
    }
}

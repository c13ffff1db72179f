//! XOR, the classic problem a linear model cannot solve: a 2-8-1 tanh network trained with
//! Adam on the four points reaches 100%.
//!
//! Run with `cargo run --release --example xor`.

use sinew::nn::loss::binary_cross_entropy_with_logits;
use sinew::prelude::*;

fn main() {
    let mut g = Generator::new(1);
    let x = Tensor::from_vec(vec![0f32, 0., 0., 1., 1., 0., 1., 1.], &[4, 2]).expect("4 points");
    let y = Tensor::from_vec(vec![0f32, 1., 1., 0.], &[4, 1]).expect("4 labels");
    let model = Sequential::new().add(Linear::new(2, 8, &mut g)).add(Tanh).add(Linear::new(8, 1, &mut g));
    let mut opt = Adam::new(model.parameters(), 0.05);
    let (xv, yv) = (Var::constant(x.clone()), Var::constant(y.clone()));
    for step in 0..=500 {
        let loss = binary_cross_entropy_with_logits(&model.forward(&xv), &yv, None, Reduction::Mean);
        if step % 100 == 0 {
            println!("step {step:3}: loss {:.5}", loss.item());
        }
        opt.step(&loss.backward());
    }
    let p = no_grad(|| model.forward(&xv).sigmoid()).value().to_vec::<f32>();
    for (i, prob) in p.iter().enumerate() {
        let (a, b) = (x.to_vec::<f32>()[2 * i], x.to_vec::<f32>()[2 * i + 1]);
        println!("{a} XOR {b} -> {prob:.3}");
    }
    let correct = p.iter().zip(y.to_vec::<f32>()).filter(|(p, t)| (**p > 0.5) == (*t > 0.5)).count();
    println!("accuracy {}/4", correct);
}

//! A generative adversarial network on 2-D data: a generator learns to turn Gaussian
//! noise into points on a ring of eight clusters, against a discriminator. Writes
//! `gan_samples.png` (real points grey, generated points red).
//!
//! Run with `cargo run --release --example gan`.

#[path = "common/png.rs"]
mod png;

use std::f64::consts::PI;

use sinew::nn::loss::binary_cross_entropy_with_logits;
use sinew::prelude::*;

fn ring(n: usize, g: &mut Generator) -> Tensor {
    let pts: Vec<f32> = (0..n)
        .flat_map(|_| {
            let k = g.index(8) as f64 * PI / 4.0;
            [(2.0 * k.cos() + 0.05 * g.normal_f64()) as f32, (2.0 * k.sin() + 0.05 * g.normal_f64()) as f32]
        })
        .collect();
    Tensor::from_vec(pts, &[n, 2]).expect("points")
}

fn mlp(sizes: &[usize], g: &mut Generator) -> Sequential {
    let mut m = Sequential::new();
    for (i, w) in sizes.windows(2).enumerate() {
        m = m.add(Linear::new(w[0], w[1], g));
        if i + 2 < sizes.len() {
            m = m.add(Relu);
        }
    }
    m
}

fn main() -> std::io::Result<()> {
    let mut g = Generator::new(8);
    let generator = mlp(&[4, 64, 64, 2], &mut g);
    let critic = mlp(&[2, 64, 64, 1], &mut g);
    let mut opt_g = Adam::new(generator.parameters(), 1e-3);
    let mut opt_d = Adam::new(critic.parameters(), 1e-3);
    let batch = 128;
    let ones = Var::constant(Tensor::ones(&[batch, 1]));
    let zeros = Var::constant(Tensor::zeros(&[batch, 1]));
    for step in 0..=3000 {
        // discriminator: real -> 1, generated -> 0 (the generator's output is detached)
        let real = Var::constant(ring(batch, &mut g));
        let noise = Var::constant(Tensor::randn_with(&[batch, 4], DType::F32, &mut g));
        let fake = generator.forward(&noise).detach();
        let d_loss = &binary_cross_entropy_with_logits(&critic.forward(&real), &ones, None, Reduction::Mean)
            + &binary_cross_entropy_with_logits(&critic.forward(&fake), &zeros, None, Reduction::Mean);
        opt_d.step(&d_loss.backward());
        // generator: make the discriminator say 1 (only the generator's parameters step)
        let noise = Var::constant(Tensor::randn_with(&[batch, 4], DType::F32, &mut g));
        let g_loss = binary_cross_entropy_with_logits(
            &critic.forward(&generator.forward(&noise)),
            &ones,
            None,
            Reduction::Mean,
        );
        opt_g.step(&g_loss.backward());
        if step % 1000 == 0 {
            println!("step {step:4}: discriminator {:.3}, generator {:.3}", d_loss.item(), g_loss.item());
        }
    }
    // picture: real points grey, generated red, on [-3, 3]²
    let (w, span) = (300usize, 3.0f32);
    let mut rgb = vec![255u8; w * w * 3];
    let mut plot = |pts: &[f32], colour: [u8; 3]| {
        for p in pts.chunks(2) {
            let (c, r) = (
                ((p[0] / span + 1.0) / 2.0 * w as f32) as usize,
                ((1.0 - p[1] / span) / 2.0 * w as f32) as usize,
            );
            if c < w && r < w {
                rgb[(r * w + c) * 3..(r * w + c) * 3 + 3].copy_from_slice(&colour);
            }
        }
    };
    plot(&ring(1000, &mut g).to_vec::<f32>(), [150, 150, 150]);
    let noise = Var::constant(Tensor::randn_with(&[1000, 4], DType::F32, &mut g));
    let fake = no_grad(|| generator.forward(&noise)).value().to_vec::<f32>();
    plot(&fake, [220, 30, 30]);
    png::write_rgb(std::path::Path::new("gan_samples.png"), w, w, &rgb)?;
    let radius = fake.chunks(2).map(|p| ((p[0] * p[0] + p[1] * p[1]) as f64).sqrt()).sum::<f64>() / 1000.0;
    println!(
        "generated points lie at mean radius {radius:.2} (the ring has radius 2); wrote gan_samples.png"
    );
    Ok(())
}

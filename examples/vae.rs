//! A variational autoencoder on the 8×8 handwritten digits: an encoder to an 8-dimensional
//! Gaussian, the reparameterisation trick, a decoder back to pixels, trained on
//! reconstruction (binary cross entropy) plus the KL divergence to N(0, 1). Writes
//! `vae_samples.png`: decodings of random latent points.
//!
//! Run with `cargo run --release --example vae`.

#[path = "common/png.rs"]
mod png;

use sinew::nn::loss::binary_cross_entropy_with_logits;
use sinew::prelude::*;

#[derive(Module)]
struct Vae {
    enc: Linear,
    mu: Linear,
    logvar: Linear,
    dec1: Linear,
    dec2: Linear,
}

impl Vae {
    fn new(g: &mut Generator) -> Self {
        Vae {
            enc: Linear::new(64, 128, g),
            mu: Linear::new(128, 8, g),
            logvar: Linear::new(128, 8, g),
            dec1: Linear::new(8, 128, g),
            dec2: Linear::new(128, 64, g),
        }
    }

    /// Pixel logits for latent points.
    fn decode(&self, z: &Var) -> Var {
        self.dec2.forward(&self.dec1.forward(z).relu())
    }

    /// The loss of a batch: reconstruction + KL, per image.
    fn loss(&self, x: &Var, g: &mut Generator) -> Var {
        let h = self.enc.forward(x).relu();
        let (mu, logvar) = (self.mu.forward(&h), self.logvar.forward(&h));
        let eps = Var::constant(Tensor::randn_with(mu.dims(), DType::F32, g));
        let z = &mu + &(&(&logvar * 0.5).exp() * &eps);
        let n = x.dims()[0] as f64;
        let recon = binary_cross_entropy_with_logits(&self.decode(&z), x, None, Reduction::Sum) / n;
        // KL(N(mu, σ²) || N(0, 1)) = -½ Σ (1 + log σ² - mu² - σ²)
        let kl = (&(&logvar.add_scalar(1.0) - &mu.square()) - &logvar.exp()).sum_all() * (-0.5 / n);
        &recon + &kl
    }
}

/// The bundled digits' pixels, scaled to [0, 1] (dividing by 16 is exact).
fn digits() -> Tensor {
    sinew::data::datasets::digits().features().div_scalar(16.0)
}

fn main() -> std::io::Result<()> {
    let mut g = Generator::new(5);
    let x = digits();
    let n = x.dims()[0];
    let vae = Vae::new(&mut g);
    let mut opt = Adam::new(vae.parameters(), 2e-3);
    let mut order: Vec<i64> = (0..n as i64).collect();
    for epoch in 1..=40 {
        g.shuffle(&mut order);
        let mut total = 0.0;
        for chunk in order.chunks(128) {
            let xb =
                Var::constant(x.index_select(0, &Tensor::from_slice(chunk, &[chunk.len()]).expect("index")));
            let loss = vae.loss(&xb, &mut g);
            total += loss.item() * chunk.len() as f64;
            opt.step(&loss.backward());
        }
        if epoch % 10 == 0 {
            println!("epoch {epoch:2}: loss per image {:.2}", total / n as f64);
        }
    }
    let z = Var::constant(Tensor::randn_with(&[32, 8], DType::F32, &mut g));
    let samples = no_grad(|| vae.decode(&z).sigmoid()).value().to_vec::<f32>();
    let images: Vec<Vec<f32>> = samples.chunks(64).map(|c| c.to_vec()).collect();
    png::write_grey_grid(std::path::Path::new("vae_samples.png"), &images, 8, 8, 6)?;
    println!("wrote vae_samples.png (32 samples from the prior)");
    Ok(())
}

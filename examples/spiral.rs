//! Two interleaved spirals, classified by a 2-64-64-2 tanh MLP trained with Keras-style
//! `fit`; writes the learned decision boundary to `spiral.png` (classes coloured,
//! training points dark).
//!
//! Run with `cargo run --release --example spiral`.

#[path = "common/png.rs"]
mod png;

use std::f64::consts::PI;

use sinew::prelude::*;
use sinew::train::metrics::Accuracy;

fn spirals(n: usize, g: &mut Generator) -> (Tensor, Tensor) {
    let (mut xs, mut ys) = (Vec::new(), Vec::new());
    for class in 0..2 {
        for i in 0..n {
            let r = i as f64 / n as f64 * 5.0 + 0.3;
            let t = 1.75 * i as f64 / n as f64 * 2.0 * PI + class as f64 * PI;
            xs.push((r * t.cos() + 0.05 * g.normal_f64()) as f32);
            xs.push((r * t.sin() + 0.05 * g.normal_f64()) as f32);
            ys.push(class as i64);
        }
    }
    (Tensor::from_vec(xs, &[2 * n, 2]).expect("points"), Tensor::from_vec(ys, &[2 * n]).expect("labels"))
}

fn main() -> std::io::Result<()> {
    let mut g = Generator::new(2);
    let (x, y) = spirals(300, &mut g);
    let model = Sequential::new()
        .add(Linear::new(2, 64, &mut g))
        .add(Tanh)
        .add(Linear::new(64, 64, &mut g))
        .add(Tanh)
        .add(Linear::new(64, 2, &mut g));
    let mut opt = Adam::new(model.parameters(), 0.01);
    let history = Trainer::new(&model, &mut opt, Loss::CrossEntropy)
        .epochs(300)
        .batch_size(600)
        .metric(Accuracy::default())
        .verbosity(Verbosity::Quiet)
        .fit(&x, &y);
    println!(
        "final loss {:.4}, accuracy {:.3}",
        history.get("loss").last().unwrap(),
        history.get("accuracy").last().unwrap()
    );

    // decision boundary on a grid
    let (w, h, span) = (240usize, 240usize, 6.0f32);
    let grid: Vec<f32> = (0..h)
        .flat_map(|r| {
            (0..w).flat_map(move |c| {
                [(c as f32 / w as f32 - 0.5) * 2.0 * span, (0.5 - r as f32 / h as f32) * 2.0 * span]
            })
        })
        .collect();
    let classes = predict(&model, &Tensor::from_vec(grid, &[w * h, 2]).expect("grid"), 4096)
        .argmax(-1, false)
        .to_vec::<i64>();
    let mut rgb: Vec<u8> =
        classes.iter().flat_map(|&c| if c == 0 { [250, 200, 120] } else { [120, 170, 250] }).collect();
    let (pts, labels) = (x.to_vec::<f32>(), y.to_vec::<i64>());
    for (p, &l) in pts.chunks(2).zip(&labels) {
        let c = ((p[0] / (2.0 * span) + 0.5) * w as f32) as usize;
        let r = ((0.5 - p[1] / (2.0 * span)) * h as f32) as usize;
        if c < w && r < h {
            let o = (r * w + c) * 3;
            rgb[o..o + 3].copy_from_slice(if l == 0 { &[160, 80, 0] } else { &[0, 60, 160] });
        }
    }
    png::write_rgb(std::path::Path::new("spiral.png"), w, h, &rgb)?;
    println!("wrote spiral.png ({w}x{h})");
    Ok(())
}

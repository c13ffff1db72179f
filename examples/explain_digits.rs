//! Explains a convolutional network's digit predictions: trains the digits CNN (8×8
//! images, bundled with sinew), prints its summary, then for one test image of each digit
//! computes saliency, integrated gradients, occlusion and Grad-CAM for the predicted class
//! and writes them side by side to `explain_digits.png`: one row per digit; columns input,
//! saliency, integrated gradients (red for, blue against), occlusion (same colours),
//! Grad-CAM of the second convolution over the input. Also checks integrated gradients'
//! completeness on every row.
//!
//! Run with `cargo run --release --example explain_digits`.

#[path = "common/png.rs"]
mod png;

use sinew::data::{datasets, stratified_train_test_split};
use sinew::explain::{Attribution, GradCam, IntegratedGradients, Interpolation, Occlusion, Saliency, Target};
use sinew::nn::summary_with_input;
use sinew::prelude::*;
use sinew::train::metrics::Accuracy;

/// The network of the `digits_cnn` example, with named layers so that Grad-CAM can ask
/// for `conv2`.
#[derive(Module)]
struct DigitsCnn {
    conv1: Conv2d,
    relu1: Relu,
    pool: MaxPool2d,
    conv2: Conv2d,
    relu2: Relu,
    flatten: Flatten,
    dropout: Dropout,
    fc: Linear,
}

impl Forward for DigitsCnn {
    fn forward(&self, x: &Var) -> Var {
        let h = self.pool.forward(&self.relu1.forward(&self.conv1.forward(x)));
        let h = self.relu2.forward(&self.conv2.forward(&h));
        self.fc.forward(&self.dropout.forward(&self.flatten.forward(&h)))
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let digits = datasets::digits();
    let (train_idx, test_idx) = stratified_train_test_split(digits.targets(), 0.2, 0);
    let images = |idx: &[usize]| {
        let d = digits.select(idx);
        (d.features().div_scalar(16.0).reshape(&[idx.len(), 1, 8, 8]), d.targets().clone())
    };
    let (x_train, y_train) = images(&train_idx);
    let (x_test, y_test) = images(&test_idx);

    let mut g = Generator::new(3);
    let same = Conv2dOptions::default().padding(1);
    let model = DigitsCnn {
        conv1: Conv2d::new(1, 32, 3, same, &mut g),
        relu1: Relu,
        pool: MaxPool2d::new(2),
        conv2: Conv2d::new(32, 64, 3, same, &mut g),
        relu2: Relu,
        flatten: Flatten::new(),
        dropout: Dropout::new(0.3, 4),
        fc: Linear::new(64 * 4 * 4, 10, &mut g),
    };
    println!("{}\n", summary_with_input(&model, &[1, 1, 8, 8]));

    let mut opt = Adam::new(model.parameters(), 2e-3);
    Trainer::new(&model, &mut opt, Loss::CrossEntropy)
        .epochs(12)
        .batch_size(64)
        .seed(3)
        .verbosity(Verbosity::Quiet)
        .metric(Accuracy::default())
        .fit(&x_train, &y_train);
    model.eval();
    let mut metrics: Vec<Box<dyn sinew::train::metrics::Metric>> = vec![Box::new(Accuracy::default())];
    let logs = evaluate(&model, &x_test, &y_test, &Loss::CrossEntropy, &mut metrics, 256);
    println!("test accuracy {:.4} on {} images", logs["accuracy"], y_test.numel());
    assert!(logs["accuracy"] >= 0.95, "below the 95% this example expects");

    // the first test image of each digit, explained for the class the model predicts
    let labels = y_test.to_vec::<i64>();
    let rows: Vec<usize> =
        (0..10).map(|d| labels.iter().position(|&l| l == d).expect("every digit")).collect();
    let index = Tensor::from_vec(rows.iter().map(|&r| r as i64).collect::<Vec<_>>(), &[10])?;
    let x = x_test.index_select(0, &index);
    let predicted: Vec<usize> = no_grad(|| model.forward(&Var::constant(x.clone())))
        .value()
        .argmax(1, false)
        .to_vec::<i64>()
        .into_iter()
        .map(|c| c as usize)
        .collect();
    let target = Target::Classes(&predicted);

    let saliency = Saliency::new(&model).attribute(&x, &target)?;
    let ig = IntegratedGradients::new(&model).steps(64).attribute_with_delta(&x, &target)?;
    let occlusion = Occlusion::new(&model, &[1, 2, 2]).perturbations_per_eval(49).attribute(&x, &target)?;
    let cam = GradCam::new(&model, "conv2").attribute_upsampled(&x, &target, Interpolation::Bilinear)?;

    // integrated gradients' completeness: the attributions of a row sum to f(x) − f(0)
    let logits = |t: &Tensor| no_grad(|| model.forward(&Var::constant(t.clone()))).value().clone();
    let (fx, f0) = (logits(&x), logits(&x.zeros_like()));
    let sums = ig.attributions.sum(&[1, 2, 3], false).to_vec::<f32>();
    for (i, &c) in predicted.iter().enumerate() {
        let gap = fx.to_vec::<f32>()[i * 10 + c] - f0.to_vec::<f32>()[i * 10 + c];
        let delta = ig.delta.to_vec::<f32>()[i];
        assert!((sums[i] - gap - delta).abs() <= 1e-4 * gap.abs().max(1.0), "row {i}");
        assert!(delta.abs() <= 0.05 * gap.abs().max(1.0), "row {i}: delta {delta} for a gap of {gap}");
    }
    println!(
        "integrated gradients: largest |delta| {:.2e} (64 Gauss–Legendre steps)",
        ig.delta.abs().max_all().item()
    );

    let path = std::path::Path::new("explain_digits.png");
    write_grid(
        path,
        &x,
        &[
            (&saliency, Style::Magnitude),
            (&ig.attributions, Style::Signed),
            (&occlusion, Style::Signed),
            (&cam, Style::Overlay),
        ],
    )?;
    println!(
        "wrote {} (rows: digits 0–9; columns: input, saliency, integrated gradients, occlusion, Grad-CAM)",
        path.display()
    );
    for (d, c) in predicted.iter().enumerate() {
        if *c != d {
            println!("  row {d}: predicted {c}");
        }
    }
    Ok(())
}

/// How a map is coloured, each scaled by its row's largest magnitude.
#[derive(Clone, Copy, PartialEq)]
enum Style {
    /// Black to yellow (saliency).
    Magnitude,
    /// Red where it speaks for the class, blue against, white for nothing.
    Signed,
    /// Red laid over the grey input (Grad-CAM).
    Overlay,
}

/// One row per image: the input in grey, then each map in its style.
fn write_grid(path: &std::path::Path, x: &Tensor, maps: &[(&Tensor, Style)]) -> std::io::Result<()> {
    const SCALE: usize = 16;
    const GAP: usize = 4;
    let (n, side) = (x.dims()[0], 8);
    let cell = side * SCALE + GAP;
    let (w, h) = ((maps.len() + 1) * cell, n * cell);
    let mut rgb = vec![255u8; w * h * 3];
    let pixels = x.to_vec::<f32>();
    for row in 0..n {
        let input = &pixels[row * 64..(row + 1) * 64];
        let mut paint = |col: usize, colour: &dyn Fn(usize) -> [u8; 3]| {
            for y in 0..side * SCALE {
                for xx in 0..side * SCALE {
                    let o = ((row * cell + y) * w + col * cell + xx) * 3;
                    rgb[o..o + 3].copy_from_slice(&colour((y / SCALE) * side + xx / SCALE));
                }
            }
        };
        let grey = |p: usize| (input[p].clamp(0.0, 1.0) * 255.0) as u8;
        paint(0, &|p| [grey(p); 3]);
        for (k, (map, style)) in maps.iter().enumerate() {
            let v = map.to_vec::<f32>()[row * 64..(row + 1) * 64].to_vec();
            let top = v.iter().fold(1e-12f32, |m, a| m.max(a.abs()));
            paint(k + 1, &|p| {
                let t = v[p] / top;
                match style {
                    Style::Magnitude => [(t * 255.0) as u8, (t * t * 230.0) as u8, 0],
                    Style::Signed => {
                        let a = (t.abs() * 255.0) as u8;
                        if t >= 0.0 { [255, 255 - a, 255 - a] } else { [255 - a, 255 - a, 255] }
                    }
                    Style::Overlay => {
                        // the input's grey blended towards red by the map
                        let (g, t) = (grey(p) as f32, t.clamp(0.0, 1.0) * 0.7);
                        [((1.0 - t) * g + t * 255.0) as u8, ((1.0 - t) * g) as u8, ((1.0 - t) * g) as u8]
                    }
                }
            });
        }
    }
    png::write_rgb(path, w, h, &rgb)
}

//! Networks built from sinew-nn layers learn real tasks: XOR to 100%, the two-spiral
//! problem to at least 98%, and a small CNN on the handwritten digits (vendored in
//! `crates/sinew-data/data/digits.csv`) to at least 97% test accuracy on a stratified 80/20 split.
//!
//! The optimizer crate builds on nn, so these tests carry a ten-line Adam of their own.

use sinew_autograd::{Param, Var};
use sinew_nn::loss::{CrossEntropyOptions, Reduction, binary_cross_entropy_with_logits, cross_entropy};
use sinew_nn::{Conv2d, Flatten, Forward, Linear, MaxPool2d, Module, Relu, Sequential, Tanh};
use sinew_tensor::{Conv2dOptions, Generator, Tensor};

/// Adam (β = 0.9, 0.999, ε = 1e-8), enough for these tests.
struct Adam {
    params: Vec<Param>,
    m: Vec<Vec<f32>>,
    v: Vec<Vec<f32>>,
    lr: f32,
    t: i32,
}

impl Adam {
    fn new(params: Vec<Param>, lr: f32) -> Self {
        let m = params.iter().map(|p| vec![0.0; p.numel()]).collect();
        let v = params.iter().map(|p| vec![0.0; p.numel()]).collect();
        Adam { params, m, v, lr, t: 0 }
    }

    fn step(&mut self, loss: &Var) {
        let grads = loss.backward();
        self.t += 1;
        let (b1, b2) = (0.9f32, 0.999f32);
        let (c1, c2) = (1.0 - b1.powi(self.t), 1.0 - b2.powi(self.t));
        for (i, p) in self.params.iter().enumerate() {
            let Some(g) = grads.get_id(p.id()) else { continue };
            let g = g.to_vec::<f32>();
            let mut value = p.value_mut();
            for (k, w) in value.as_mut_slice::<f32>().iter_mut().enumerate() {
                self.m[i][k] = b1 * self.m[i][k] + (1.0 - b1) * g[k];
                self.v[i][k] = b2 * self.v[i][k] + (1.0 - b2) * g[k] * g[k];
                *w -= self.lr * (self.m[i][k] / c1) / ((self.v[i][k] / c2).sqrt() + 1e-8);
            }
        }
    }
}

fn accuracy(logits: &Tensor, labels: &[i64]) -> f64 {
    let pred = logits.argmax(-1, false).to_vec::<i64>();
    pred.iter().zip(labels).filter(|(p, l)| p == l).count() as f64 / labels.len() as f64
}

#[test]
fn xor_reaches_100_percent() {
    let mut g = Generator::new(1);
    let net = Sequential::new().add(Linear::new(2, 8, &mut g)).add(Tanh).add(Linear::new(8, 1, &mut g));
    let x = Var::constant(Tensor::from_vec(vec![0f32, 0., 0., 1., 1., 0., 1., 1.], &[4, 2]).unwrap());
    let y = Var::constant(Tensor::from_vec(vec![0f32, 1., 1., 0.], &[4, 1]).unwrap());
    let mut opt = Adam::new(net.parameters(), 0.05);
    for _ in 0..500 {
        opt.step(&binary_cross_entropy_with_logits(&net.forward(&x), &y, None, Reduction::Mean));
    }
    let pred = net.forward(&x).value().gt_scalar(0.0).to_vec::<f32>();
    assert_eq!(pred, vec![0.0, 1.0, 1.0, 0.0]);
}

/// Two interleaved spirals, `n` points each, with a little noise.
fn spirals(n: usize, g: &mut Generator) -> (Tensor, Vec<i64>) {
    let mut xs = Vec::with_capacity(4 * n);
    let mut ys = Vec::with_capacity(2 * n);
    for class in 0..2 {
        for i in 0..n {
            let r = i as f64 / n as f64 * 5.0 + 0.3;
            let t =
                1.75 * i as f64 / n as f64 * 2.0 * std::f64::consts::PI + class as f64 * std::f64::consts::PI;
            xs.push((r * t.cos() + 0.05 * g.normal_f64()) as f32);
            xs.push((r * t.sin() + 0.05 * g.normal_f64()) as f32);
            ys.push(class);
        }
    }
    (Tensor::from_vec(xs, &[2 * n, 2]).unwrap(), ys)
}

#[test]
fn two_spirals_reach_98_percent() {
    let mut g = Generator::new(2);
    let (x, labels) = spirals(200, &mut g);
    let targets = Tensor::from_vec(labels.clone(), &[labels.len()]).unwrap();
    let net = Sequential::new()
        .add(Linear::new(2, 64, &mut g))
        .add(Tanh)
        .add(Linear::new(64, 64, &mut g))
        .add(Tanh)
        .add(Linear::new(64, 2, &mut g));
    let xv = Var::constant(x);
    let mut opt = Adam::new(net.parameters(), 0.01);
    for _ in 0..1500 {
        opt.step(&cross_entropy(&net.forward(&xv), &targets, &CrossEntropyOptions::default()));
    }
    let acc = accuracy(net.forward(&xv).value(), &labels);
    assert!(acc >= 0.98, "two-spiral accuracy {acc}");
}

/// The digits, scaled to [0, 1], as (N, 1, 8, 8) images and labels.
fn digits() -> (Tensor, Vec<i64>) {
    let text = include_str!("../../sinew-data/data/digits.csv");
    let mut pixels = Vec::new();
    let mut labels = Vec::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let values: Vec<f32> = line.split(',').map(|v| v.trim().parse().expect("number")).collect();
        assert_eq!(values.len(), 65);
        pixels.extend(values[..64].iter().map(|v| v / 16.0));
        labels.push(values[64] as i64);
    }
    let n = labels.len();
    (Tensor::from_vec(pixels, &[n, 1, 8, 8]).unwrap(), labels)
}

#[test]
fn cnn_on_digits_reaches_97_percent() {
    let (images, labels) = digits();
    assert_eq!(labels.len(), 1797);
    // stratified 80/20 split, seeded
    let mut g = Generator::new(3);
    let (mut train, mut test) = (Vec::new(), Vec::new());
    for class in 0..10 {
        let mut idx: Vec<i64> = (0..labels.len() as i64).filter(|&i| labels[i as usize] == class).collect();
        g.shuffle(&mut idx);
        let cut = idx.len() * 4 / 5;
        train.extend_from_slice(&idx[..cut]);
        test.extend_from_slice(&idx[cut..]);
    }
    let pick = |ids: &[i64]| {
        let t = Tensor::from_slice(ids, &[ids.len()]).unwrap();
        (images.index_select(0, &t), ids.iter().map(|&i| labels[i as usize]).collect::<Vec<i64>>())
    };
    let (x_test, y_test) = pick(&test);
    let same = Conv2dOptions::default().padding(1);
    let net = Sequential::new()
        .add(Conv2d::new(1, 32, 3, same, &mut g))
        .add(Relu)
        .add(MaxPool2d::new(2))
        .add(Conv2d::new(32, 64, 3, same, &mut g))
        .add(Relu)
        .add(Flatten::new())
        .add(Linear::new(64 * 4 * 4, 10, &mut g));
    let mut opt = Adam::new(net.parameters(), 0.002);
    for _epoch in 0..15 {
        g.shuffle(&mut train);
        for batch in train.chunks(64) {
            let (xb, yb) = pick(batch);
            let targets = Tensor::from_vec(yb, &[batch.len()]).unwrap();
            opt.step(&cross_entropy(
                &net.forward(&Var::constant(xb)),
                &targets,
                &CrossEntropyOptions::default(),
            ));
        }
    }
    net.eval();
    let acc = accuracy(net.forward(&Var::constant(x_test)).value(), &y_test);
    assert!(acc >= 0.97, "digits test accuracy {acc}");
}

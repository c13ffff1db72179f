//! LayerNorm and softmax on the GPT training shapes, f32:
//! - `layer_norm_f32_2048x128`: B·T = 2048 rows of width 128 with weight and bias.
//!   `composed_*` is the chain of `Var` ops `functional::layer_norm` used to be (mean,
//!   var, sub, add_scalar, rsqrt, mul, mul weight, add bias) and its reversed backward;
//! - `softmax_f32_32x4x64x64`: attention scores (batch 32, 4 heads, 64 × 64), softmax
//!   along the last dimension. `composed_backward` is the rule `Var::softmax` used to
//!   be, `y·(g - Σ g·y)` as three tensor ops and a sum.
#![allow(missing_docs)]

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use sinew_autograd::Var;
use sinew_tensor::{DType, Generator, Tensor};

/// The unfused LayerNorm formula, as `functional::layer_norm` composed it.
fn layer_norm_composed(x: &Var, w: &Var, b: &Var, eps: f64) -> Var {
    let mean = x.mean(&[-1], true);
    let var = x.var(&[-1], false, true);
    &(&(&(x - &mean) * &var.add_scalar(eps).rsqrt()) * w) + b
}

fn layer_norm(c: &mut Criterion) {
    let mut g = c.benchmark_group("layer_norm_f32_2048x128");
    g.sample_size(30);
    let mut rng = Generator::new(0);
    let (rows, n) = (2048, 128);
    let xt = Tensor::randn_with(&[rows, n], DType::F32, &mut rng);
    let wt = Tensor::uniform_with(&[n], 0.5, 1.5, DType::F32, &mut rng);
    let bt = Tensor::randn_with(&[n], DType::F32, &mut rng);
    let dy = Tensor::randn_with(&[rows, n], DType::F32, &mut rng);
    let (x, w, b) = (Var::leaf(xt.clone()), Var::leaf(wt.clone()), Var::leaf(bt.clone()));
    g.bench_function("composed_forward", |bench| {
        bench.iter(|| black_box(layer_norm_composed(&x, &w, &b, 1e-5)))
    });
    g.bench_function("composed_fwd_bwd", |bench| {
        bench.iter(|| black_box(layer_norm_composed(&x, &w, &b, 1e-5).backward_with(&dy)))
    });
    g.finish();
}

fn softmax(c: &mut Criterion) {
    let mut g = c.benchmark_group("softmax_f32_32x4x64x64");
    g.sample_size(30);
    let mut rng = Generator::new(1);
    let shape = [32, 4, 64, 64];
    let xt = Tensor::randn_with(&shape, DType::F32, &mut rng);
    let dy = Tensor::randn_with(&shape, DType::F32, &mut rng);
    let y = xt.softmax(-1);
    let x = Var::leaf(xt.clone());
    g.bench_function("forward", |bench| bench.iter(|| black_box(xt.softmax(-1))));
    g.bench_function("composed_backward", |bench| {
        bench.iter(|| black_box(y.mul(&dy.sub(&dy.mul(&y).sum(&[-1], true)))))
    });
    g.bench_function("var_fwd_bwd", |bench| bench.iter(|| black_box(x.softmax(-1).backward_with(&dy))));
    g.finish();
}

criterion_group!(benches, layer_norm, softmax);
criterion_main!(benches);

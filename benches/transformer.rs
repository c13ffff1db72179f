//! The kernels of the GPT workload (`gpt_char_l2_d128_h4_t64_b32_adam`), f32, at its
//! shapes: batch 32, 64 positions, width 128, 4 heads of 32.
//! - `attention/*`: causal scaled dot-product attention on `(32, 4, 64, 32)` heads read
//!   through the strides of a packed `(32, 64, 3·128)` projection, as the model does;
//!   forward, and forward + backward, fused (`Var::scaled_dot_product_attention`) and
//!   composed from matmul, mask, softmax and matmul.
//! - `linear_3d/*`: `Linear(128, 512)` on `(32, 64, 128)`: forward, and forward +
//!   backward (the weight gradient is one GEMM over all 2048 rows).
#![allow(missing_docs)]

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use sinew_autograd::Var;
use sinew_tensor::{DType, Generator, Tensor};

fn attention(c: &mut Criterion) {
    let mut g = c.benchmark_group("attention_b32_h4_t64_d32");
    g.sample_size(30);
    let mut rng = Generator::new(5);
    let (b, t, heads, d) = (32, 64, 4, 32);
    let qkv = Var::leaf(Tensor::randn_with(&[b, t, 3 * heads * d], DType::F32, &mut rng));
    let heads_of = |x: &Var| {
        let x = x.reshape(&[b, t, 3, heads, d]).permute(&[2, 0, 3, 1, 4]);
        (x.select(0, 0), x.select(0, 1), x.select(0, 2))
    };
    let scale = 1.0 / (d as f64).sqrt();
    let causal = Tensor::from_vec(
        (0..t * t).map(|i| if i % t > i / t { f32::NEG_INFINITY } else { 0.0 }).collect(),
        &[t, t],
    )
    .expect("t·t values");
    let fused = |x: &Var| {
        let (q, k, v) = heads_of(x);
        Var::scaled_dot_product_attention(&q, &k, &v, None, true, scale)
    };
    let composed = |x: &Var| {
        let (q, k, v) = heads_of(x);
        let scores = &q.matmul(&k.t()).mul_scalar(scale) + &Var::constant(causal.clone());
        scores.softmax(-1).matmul(&v)
    };
    g.bench_function("fused/forward", |bench| {
        bench.iter(|| black_box(sinew_autograd::no_grad(|| fused(&qkv))))
    });
    g.bench_function("composed/forward", |bench| {
        bench.iter(|| black_box(sinew_autograd::no_grad(|| composed(&qkv))))
    });
    g.bench_function("fused/forward_backward", |bench| {
        bench.iter(|| black_box(fused(&qkv).sum_all().backward()))
    });
    g.bench_function("composed/forward_backward", |bench| {
        bench.iter(|| black_box(composed(&qkv).sum_all().backward()))
    });
    g.finish();
}

fn linear_3d(c: &mut Criterion) {
    let mut g = c.benchmark_group("linear_3d_b32_t64_128_to_512");
    g.sample_size(30);
    let mut rng = Generator::new(6);
    let x = Var::leaf(Tensor::randn_with(&[32, 64, 128], DType::F32, &mut rng));
    let w = Var::leaf(Tensor::randn_with(&[512, 128], DType::F32, &mut rng));
    let bias = Var::leaf(Tensor::randn_with(&[512], DType::F32, &mut rng));
    let dy = Var::constant(Tensor::randn_with(&[32, 64, 512], DType::F32, &mut rng));
    let linear = || sinew_nn::functional::linear(&x, &w, Some(&bias));
    g.bench_function("forward", |bench| bench.iter(|| black_box(sinew_autograd::no_grad(linear))));
    g.bench_function("forward_backward", |bench| {
        bench.iter(|| black_box(linear().backward_pass().grad_output(dy.clone()).run()))
    });
    g.finish();
}

criterion_group!(benches, attention, linear_3d);
criterion_main!(benches);

//! Exact GELU in f32 on a (2048, 512) activation (a transformer MLP's hidden layer): the
//! forward, the fused backward kernel (`Tensor::gelu_backward`) against the chain of
//! tensor ops the backward rule used before it, and the tanh form, at 1 and 2 threads.
//! `torch_reference.py` prints PyTorch's `F.gelu` and `aten::gelu_backward` on the same
//! shape, in the same units (microseconds per call).
#![allow(missing_docs)]

use std::f64::consts::{FRAC_1_SQRT_2, PI};
use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use sinew_tensor::{DType, Generator, Tensor, set_num_threads};

/// The gradient as the backward rule composed it before the fused kernel (ten tensors).
fn composed_backward(x: &Tensor, g: &Tensor) -> Tensor {
    let cdf = x.mul_scalar(FRAC_1_SQRT_2).erf().mul_scalar(0.5).add_scalar(0.5);
    let pdf = x.square().mul_scalar(-0.5).exp().mul_scalar(1.0 / (2.0 * PI).sqrt());
    g.mul(&cdf.add(&x.mul(&pdf)))
}

fn gelu(c: &mut Criterion) {
    let mut group = c.benchmark_group("gelu_f32_2048x512");
    group.sample_size(30);
    let mut rng = Generator::new(0);
    let x = Tensor::randn_with(&[2048, 512], DType::F32, &mut rng);
    let g = Tensor::randn_with(&[2048, 512], DType::F32, &mut rng);
    group.throughput(Throughput::Elements(x.numel() as u64));
    for threads in [1, 2] {
        set_num_threads(threads);
        let id = |name: &str| BenchmarkId::new(name, format!("{threads}t"));
        group.bench_function(id("forward"), |b| b.iter(|| black_box(x.gelu())));
        group.bench_function(id("backward"), |b| b.iter(|| black_box(x.gelu_backward(&g))));
        group.bench_function(id("backward_composed"), |b| b.iter(|| black_box(composed_backward(&x, &g))));
        group.bench_function(id("tanh_forward"), |b| b.iter(|| black_box(x.gelu_tanh())));
        group.bench_function(id("tanh_backward"), |b| b.iter(|| black_box(x.gelu_tanh_backward(&g))));
    }
    set_num_threads(0);
    group.finish();
}

criterion_group!(benches, gelu);
criterion_main!(benches);

//! Autograd overhead and a real forward+backward:
//! - `chain_1000_tiny_ops`: forward and backward through 1,000 ops on a one-element
//!   tensor; throughput in elements = ops, so the time per op is 1 / (elem/s).
//! - `mlp_784_512_256_10_b128`: forward + backward (no optimizer) of the anchor MLP,
//!   cross entropy on batch 128, f32.
#![allow(missing_docs)]

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use sinew_autograd::{Param, Var};
use sinew_tensor::{DType, Generator, Tensor};

fn chain(c: &mut Criterion) {
    let mut g = c.benchmark_group("autograd");
    g.throughput(Throughput::Elements(1000));
    let x = Var::leaf(Tensor::scalar(0.5f32));
    g.bench_function("chain_1000_tiny_ops", |b| {
        b.iter(|| {
            let mut y = x.clone();
            for i in 0..250 {
                y = (&y * 1.0001).add_scalar(0.001 * i as f64);
                y = &y * &x;
                y = y.tanh();
            }
            black_box(y.backward())
        })
    });
    g.finish();
}

fn mlp(c: &mut Criterion) {
    let mut g = c.benchmark_group("autograd");
    g.sample_size(20);
    let mut rng = Generator::new(0);
    let dims = [784, 512, 256, 10];
    let params: Vec<(Param, Param)> = dims
        .windows(2)
        .map(|w| {
            let bound = 1.0 / (w[0] as f64).sqrt();
            (
                Param::new(
                    "weight",
                    Tensor::uniform_with(&[w[1], w[0]], -bound, bound, DType::F32, &mut rng),
                ),
                Param::new("bias", Tensor::uniform_with(&[w[1]], -bound, bound, DType::F32, &mut rng)),
            )
        })
        .collect();
    let x = Var::constant(Tensor::randn_with(&[128, 784], DType::F32, &mut rng));
    let targets = Tensor::rand_int_with(&[128], 0, 10, &mut rng);
    let onehot = Var::constant(targets.one_hot(10));
    g.bench_function("mlp_784_512_256_10_b128_fwd_bwd", |b| {
        b.iter(|| {
            let mut h = x.clone();
            for (i, (w, bias)) in params.iter().enumerate() {
                h = &h.matmul(&w.var().t()) + &bias.var();
                if i + 1 < params.len() {
                    h = h.relu();
                }
            }
            let loss = -(&h.log_softmax(-1) * &onehot).sum_all() / 128.0;
            black_box(loss.backward())
        })
    });
    g.finish();
}

criterion_group!(benches, chain, mlp);
criterion_main!(benches);

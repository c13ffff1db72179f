//! Elementwise add/mul and a fused chain on 1M and 16M f32 elements, reported as bytes
//! moved per second (two inputs read, one output written).
#![allow(missing_docs)]

use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use sinew_tensor::{DType, Generator, Tensor};

fn elementwise(c: &mut Criterion) {
    let mut g = c.benchmark_group("elementwise_f32");
    g.sample_size(20);
    let mut rng = Generator::new(1);
    for n in [1usize << 20, 1 << 24] {
        let a = Tensor::randn_with(&[n], DType::F32, &mut rng);
        let b = Tensor::randn_with(&[n], DType::F32, &mut rng);
        g.throughput(Throughput::Bytes(3 * 4 * n as u64));
        g.bench_with_input(BenchmarkId::new("add", n), &n, |bench, _| bench.iter(|| black_box(&a + &b)));
        g.bench_with_input(BenchmarkId::new("mul", n), &n, |bench, _| bench.iter(|| black_box(&a * &b)));
        // a*b + a, relu: one pass through `try_zip_map`, against three separate ops
        g.bench_with_input(BenchmarkId::new("fused_mul_add_relu", n), &n, |bench, _| {
            bench.iter(|| {
                black_box(a.try_zip_map::<f32, f32>(&b, "fused", |x, y| (x * y + x).max(0.0)).unwrap())
            })
        });
        g.bench_with_input(BenchmarkId::new("unfused_mul_add_relu", n), &n, |bench, _| {
            bench.iter(|| black_box((&(&a * &b) + &a).relu()))
        });
    }
    g.finish();
}

criterion_group!(benches, elementwise);
criterion_main!(benches);

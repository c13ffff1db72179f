//! f32 matmul at N = 256, 1024, 2048 through `Tensor::matmul`, next to a direct faer
//! call on the same buffers (the overhead target is under 5%). Throughput is in
//! elements = FLOPs (2·N³), so criterion's "elem/s" reads as FLOP/s.
#![allow(missing_docs)]

use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use faer::{Accum, MatMut, MatRef, Par};
use sinew_tensor::{DType, Generator, Tensor, kernels::gemm};

fn matmul(c: &mut Criterion) {
    let mut g = c.benchmark_group("matmul_f32");
    g.sample_size(10);
    let mut rng = Generator::new(0);
    for n in [256usize, 1024, 2048] {
        let a = Tensor::randn_with(&[n, n], DType::F32, &mut rng);
        let b = Tensor::randn_with(&[n, n], DType::F32, &mut rng);
        g.throughput(Throughput::Elements(2 * (n as u64).pow(3)));
        g.bench_with_input(BenchmarkId::new("sinew", n), &n, |bench, _| {
            bench.iter(|| black_box(a.matmul(&b)));
        });
        let (ad, bd) = (a.to_vec::<f32>(), b.to_vec::<f32>());
        let mut cd = vec![0f32; n * n];
        let par = gemm::par_for(n, n, n);
        g.bench_with_input(BenchmarkId::new("faer_direct", n), &n, |bench, _| {
            bench.iter(|| {
                let am = MatRef::from_row_major_slice(&ad, n, n);
                let bm = MatRef::from_row_major_slice(&bd, n, n);
                let cm = MatMut::from_row_major_slice_mut(&mut cd, n, n);
                sinew_tensor::parallel::install(|| {
                    faer::linalg::matmul::matmul(cm, Accum::Replace, am, bm, 1.0f32, par);
                });
                black_box(&cd);
            });
        });
        let _ = Par::Seq;
    }
    g.finish();
}

/// A linear layer on a few rows, `x (m×k) · Wᵀ` with `W (n×k)` row-major (one sequence
/// through a transformer, a recurrence step): sinew next to one sequential faer
/// call on the same buffers.
fn skinny(c: &mut Criterion) {
    let mut g = c.benchmark_group("skinny");
    g.sample_size(20);
    let mut rng = Generator::new(0);
    for (k, n) in [(384usize, 1536usize), (1536, 384), (384, 384)] {
        let w = Tensor::randn_with(&[n, k], DType::F32, &mut rng);
        let wd = w.to_vec::<f32>();
        for m in [1usize, 4, 16, 32] {
            let x = Tensor::randn_with(&[m, k], DType::F32, &mut rng);
            let xd = x.to_vec::<f32>();
            let id = format!("{m}x{k}x{n}");
            g.throughput(Throughput::Elements(2 * (m * k * n) as u64));
            g.bench_function(BenchmarkId::new("sinew", &id), |bench| {
                bench.iter(|| black_box(x.matmul(&w.t())))
            });
            let mut cd = vec![0f32; m * n];
            g.bench_function(BenchmarkId::new("faer_seq", &id), |bench| {
                bench.iter(|| {
                    let am = MatRef::from_row_major_slice(&xd, m, k);
                    let bm = MatRef::from_row_major_slice(&wd, n, k).transpose();
                    let cm = MatMut::from_row_major_slice_mut(&mut cd, m, n);
                    faer::linalg::matmul::matmul(cm, Accum::Replace, am, bm, 1.0f32, Par::Seq);
                    black_box(&cd);
                });
            });
            // the same product on a row-major copy of Wᵀ: what a transposed weight layout
            // would buy (faer packs less; 3× at 4 rows, ~20% at 16)
            let wt = w.t().contiguous().to_vec::<f32>();
            g.bench_function(BenchmarkId::new("faer_seq_wt", &id), |bench| {
                bench.iter(|| {
                    let am = MatRef::from_row_major_slice(&xd, m, k);
                    let bm = MatRef::from_row_major_slice(&wt, k, n);
                    let cm = MatMut::from_row_major_slice_mut(&mut cd, m, n);
                    faer::linalg::matmul::matmul(cm, Accum::Replace, am, bm, 1.0f32, Par::Seq);
                    black_box(&cd);
                });
            });
        }
    }
    g.finish();
}

criterion_group!(benches, matmul, skinny);
criterion_main!(benches);

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

criterion_group!(benches, matmul);
criterion_main!(benches);

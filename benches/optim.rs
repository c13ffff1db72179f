//! One Adam step over 1M and 10M `f32` parameters, as one parameter and as 10 parameters
//! of 1M, reported as bytes moved per second: per parameter element the step reads and
//! writes the parameter, reads the gradient and reads and writes both moments, 7 × 4
//! bytes. `torch_reference.py` prints PyTorch's `Adam(foreach=True)` in the same units.
#![allow(missing_docs)]

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use sinew_autograd::{Gradients, Param};
use sinew_optim::{Adam, Optimizer};
use sinew_tensor::{DType, Generator, Tensor};

const M: usize = 1 << 20;

fn adam(c: &mut Criterion) {
    let mut g = c.benchmark_group("optim");
    g.sample_size(10);
    let mut rng = Generator::new(0);
    for (name, sizes) in [("adam_1M", vec![M]), ("adam_10M", vec![10 * M]), ("adam_10x1M", vec![M; 10])] {
        let params: Vec<Param> = sizes
            .iter()
            .enumerate()
            .map(|(i, &n)| Param::new(format!("p{i}"), Tensor::randn_with(&[n], DType::F32, &mut rng)))
            .collect();
        let mut grads = Gradients::new();
        for p in &params {
            grads.insert(p.id(), Tensor::randn_with(&[p.numel()], DType::F32, &mut rng));
        }
        let mut opt = Adam::new(params, 1e-3);
        opt.step(&grads); // creates the moments
        let total: usize = sizes.iter().sum();
        g.throughput(Throughput::Bytes(7 * 4 * total as u64));
        g.bench_function(BenchmarkId::from_parameter(name), |bench| bench.iter(|| opt.step(&grads)));
    }
    g.finish();
}

criterion_group!(benches, adam);
criterion_main!(benches);

//! conv2d forward (and its two gradient kernels) on the LeNet-5 shapes of the anchor
//! workload `lenet5_b64_sgd`: batch 64, conv 1→6 k5 p2 on 28×28, conv 6→16 k5 on 14×14.
#![allow(missing_docs)]

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use sinew_tensor::{Conv2dOptions, DType, Generator, Tensor};

fn conv(c: &mut Criterion) {
    let mut g = c.benchmark_group("conv2d_lenet_b64");
    g.sample_size(30);
    let mut rng = Generator::new(2);
    let layers = [
        ("conv1_1x28x28_k5p2", [64, 1, 28, 28], [6, 1, 5, 5], 2),
        ("conv2_6x14x14_k5", [64, 6, 14, 14], [16, 6, 5, 5], 0),
    ];
    for (name, xs, ws, pad) in layers {
        let x = Tensor::randn_with(&xs, DType::F32, &mut rng);
        let w = Tensor::randn_with(&ws, DType::F32, &mut rng);
        let b = Tensor::zeros(&[ws[0]]);
        let o = Conv2dOptions::default().padding(pad);
        let y = x.conv2d(&w, Some(&b), o);
        let dy = Tensor::randn_with(y.dims(), DType::F32, &mut rng);
        g.bench_function(format!("{name}/forward"), |bench| {
            bench.iter(|| black_box(x.conv2d(&w, Some(&b), o)))
        });
        g.bench_function(format!("{name}/input_grad"), |bench| {
            bench.iter(|| black_box(Tensor::conv2d_input_grad(&dy, &w, [xs[2], xs[3]], o)))
        });
        g.bench_function(format!("{name}/weight_grad"), |bench| {
            bench.iter(|| black_box(Tensor::conv2d_weight_grad(&x, &dy, [ws[2], ws[3]], o)))
        });
    }
    g.finish();
}

criterion_group!(benches, conv);
criterion_main!(benches);

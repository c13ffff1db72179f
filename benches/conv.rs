//! conv2d forward (and its two gradient kernels) and 2×2 max pooling (forward and
//! backward) on the LeNet-5 shapes of the anchor workload `lenet5_b64_sgd`: batch 64,
//! conv 1→6 k5 p2 on 28×28, conv 6→16 k5 on 14×14, pools after each; the 3×3 convolutions
//! of `cnn_cifar_bn_b64_sgd` (batch 64, 32→32 on 32×32, 64→64 on 16×16); and a transposed
//! convolution that doubles the resolution (a decoder's upsampling: 64→32 channels,
//! 16×16 → 32×32, k4 s2 p1), forward and both gradients.
#![allow(missing_docs)]

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use sinew_tensor::{Conv2dOptions, DType, Generator, Pool2dOptions, Tensor};

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

fn pool(c: &mut Criterion) {
    let mut g = c.benchmark_group("max_pool2d_lenet_b64");
    g.sample_size(30);
    let mut rng = Generator::new(3);
    for (name, xs) in [("pool1_6x28x28", [64, 6, 28, 28]), ("pool2_16x10x10", [64, 16, 10, 10])] {
        // post-ReLU activations, as in the network: half zeros, the rest random
        let x = Tensor::randn_with(&xs, DType::F32, &mut rng).relu();
        let o = Pool2dOptions::new(2);
        let (y, idx) = x.max_pool2d(o);
        let dy = Tensor::randn_with(y.dims(), DType::F32, &mut rng);
        g.bench_function(format!("{name}/forward"), |bench| bench.iter(|| black_box(x.max_pool2d(o))));
        g.bench_function(format!("{name}/backward"), |bench| {
            bench.iter(|| black_box(Tensor::max_pool2d_backward(&dy, &idx, &xs, o)))
        });
    }
    g.finish();
}

fn conv_cifar(c: &mut Criterion) {
    let mut g = c.benchmark_group("conv2d_cifar_b64");
    g.sample_size(10);
    let mut rng = Generator::new(4);
    for (name, xs, ws) in [
        ("conv2_32x32x32_k3p1", [64, 32, 32, 32], [32, 32, 3, 3]),
        ("conv4_64x16x16_k3p1", [64, 64, 16, 16], [64, 64, 3, 3]),
    ] {
        let x = Tensor::randn_with(&xs, DType::F32, &mut rng);
        let w = Tensor::randn_with(&ws, DType::F32, &mut rng);
        let o = Conv2dOptions::default().padding(1);
        let dy = Tensor::randn_with(x.conv2d(&w, None, o).dims(), DType::F32, &mut rng);
        g.bench_function(format!("{name}/forward"), |bench| bench.iter(|| black_box(x.conv2d(&w, None, o))));
        g.bench_function(format!("{name}/input_grad"), |bench| {
            bench.iter(|| black_box(Tensor::conv2d_input_grad(&dy, &w, [xs[2], xs[3]], o)))
        });
        g.bench_function(format!("{name}/weight_grad"), |bench| {
            bench.iter(|| black_box(Tensor::conv2d_weight_grad(&x, &dy, [ws[2], ws[3]], o)))
        });
    }
    g.finish();
}

fn conv_transpose(c: &mut Criterion) {
    let mut g = c.benchmark_group("conv_transpose2d_b16_64to32_16x16_k4s2p1");
    g.sample_size(20);
    let mut rng = Generator::new(5);
    let x = Tensor::randn_with(&[16, 64, 16, 16], DType::F32, &mut rng);
    let w = Tensor::randn_with(&[64, 32, 4, 4], DType::F32, &mut rng);
    let o = Conv2dOptions::default().stride(2).padding(1);
    let y = x.conv_transpose2d(&w, None, o);
    let dy = Tensor::randn_with(y.dims(), DType::F32, &mut rng);
    g.bench_function("forward", |bench| bench.iter(|| black_box(x.conv_transpose2d(&w, None, o))));
    g.bench_function("input_grad", |bench| {
        bench.iter(|| black_box(Tensor::conv_transpose2d_input_grad(&dy, &w, [16, 16], o)))
    });
    g.bench_function("weight_grad", |bench| {
        bench.iter(|| black_box(Tensor::conv_transpose2d_weight_grad(&x, &dy, [4, 4], o)))
    });
    g.finish();
}

criterion_group!(benches, conv, pool, conv_cifar, conv_transpose);
criterion_main!(benches);

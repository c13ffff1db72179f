//! The anchor workloads of `shared/anchors/bench_torch.py`, in sinew, timed the same way
//! (warm-up, then the median of 5 repetitions of `iters` steps) and printed in the same
//! `name: X ms/step` lines, so the two outputs sit side by side. A step is: forward, loss,
//! backward, optimizer step (gradients are returned, never accumulated, so there is no
//! zero-grad), f32.
//!
//! `cargo run --release -p sinew-benches --bin workloads [THREADS [NAME_PREFIX]]`

use std::time::Instant;

use sinew_autograd::Var;
use sinew_nn::loss::{CrossEntropyOptions, Reduction, cross_entropy, mse_loss};
use sinew_nn::{Conv2d, Flatten, Forward, LSTM, Linear, MaxPool2d, Module, ReLU, Sequential};
use sinew_optim::{Adam, Optimizer, Sgd};
use sinew_tensor::{Conv2dOptions, DType, Generator, Tensor};

fn bench(name: &str, mut step: impl FnMut(), iters: usize) {
    if std::env::args().nth(2).is_some_and(|only| !name.starts_with(&only)) {
        return;
    }
    for _ in 0..5 {
        step();
    }
    let mut meds: Vec<f64> = (0..5)
        .map(|_| {
            let t = Instant::now();
            for _ in 0..iters {
                step();
            }
            t.elapsed().as_secs_f64() / iters as f64 * 1e3
        })
        .collect();
    meds.sort_by(f64::total_cmp);
    println!("{name}: {:.3} ms/step (min {:.3})", meds[2], meds[0]);
}

fn classify_step<'a>(
    model: &'a dyn Forward,
    opt: &'a mut dyn Optimizer,
    x: &'a Tensor,
    y: &'a Tensor,
) -> impl FnMut() + 'a {
    let opts = CrossEntropyOptions::default();
    move || {
        let loss = cross_entropy(&model.forward(&Var::constant(x.clone())), y, &opts);
        let grads = loss.backward();
        drop(loss); // free the graph first, so the step updates parameters in place
        opt.step(&grads);
    }
}

#[derive(Module)]
struct LstmClassifier {
    l: LSTM,
    o: Linear,
}

impl Forward for LstmClassifier {
    fn forward(&self, x: &Var) -> Var {
        let out = self.l.forward(x);
        self.o.forward(&out.select(1, out.dims()[1] - 1))
    }
}

fn main() {
    if let Some(t) = std::env::args().nth(1).and_then(|a| a.parse().ok()) {
        sinew_tensor::set_num_threads(t);
    }
    let mut g = Generator::new(0);

    // 1. the design document's linear regression: one step on 32 rows
    let m = Linear::new(1, 1, &mut g);
    let mut opt = Sgd::new(m.parameters(), 0.01);
    let x = Tensor::rand_with(&[32, 1], DType::F32, &mut g);
    let y = &(&x * 3.0) + &Tensor::rand_with(&[32, 1], DType::F32, &mut g);
    let (xv, yv) = (Var::constant(x), Var::constant(y));
    bench(
        "linreg_step_b32",
        || {
            let grads = mse_loss(&m.forward(&xv), &yv, Reduction::Mean).backward();
            opt.step(&grads);
        },
        2000,
    );

    // 2. MLP 784-512-256-10, batch 128, cross entropy; SGD with momentum, then Adam
    let mlp = Sequential::new()
        .add(Linear::new(784, 512, &mut g))
        .add(ReLU)
        .add(Linear::new(512, 256, &mut g))
        .add(ReLU)
        .add(Linear::new(256, 10, &mut g));
    let x = Tensor::randn_with(&[128, 784], DType::F32, &mut g);
    let y = Tensor::rand_int_with(&[128], 0, 10, &mut g);
    let mut sgd = Sgd::momentum(mlp.parameters(), 0.01, 0.9);
    bench("mlp_784_512_256_10_b128_sgd", classify_step(&mlp, &mut sgd, &x, &y), 30);
    let mut adam = Adam::new(mlp.parameters(), 1e-3);
    bench("mlp_784_512_256_10_b128_adam", classify_step(&mlp, &mut adam, &x, &y), 30);

    // 3. LeNet-5, 1x28x28, batch 64, SGD with momentum
    let lenet = Sequential::new()
        .add(Conv2d::new(1, 6, 5, Conv2dOptions::default().padding(2), &mut g))
        .add(ReLU)
        .add(MaxPool2d::new(2))
        .add(Conv2d::new(6, 16, 5, Conv2dOptions::default(), &mut g))
        .add(ReLU)
        .add(MaxPool2d::new(2))
        .add(Flatten::new())
        .add(Linear::new(400, 120, &mut g))
        .add(ReLU)
        .add(Linear::new(120, 84, &mut g))
        .add(ReLU)
        .add(Linear::new(84, 10, &mut g));
    let x = Tensor::randn_with(&[64, 1, 28, 28], DType::F32, &mut g);
    let y = Tensor::rand_int_with(&[64], 0, 10, &mut g);
    let mut sgd = Sgd::momentum(lenet.parameters(), 0.01, 0.9);
    bench("lenet5_b64_sgd", classify_step(&lenet, &mut sgd, &x, &y), 10);

    // 4. LSTM: 32 steps, batch 32, input 32, hidden 128, classify the last step, Adam
    let lstm = LstmClassifier { l: LSTM::new(32, 128, 1, true, &mut g), o: Linear::new(128, 10, &mut g) };
    let x = Tensor::randn_with(&[32, 32, 32], DType::F32, &mut g);
    let y = Tensor::rand_int_with(&[32], 0, 10, &mut g);
    let mut adam = Adam::new(lstm.parameters(), 1e-3);
    bench("lstm_t32_b32_h128_adam", classify_step(&lstm, &mut adam, &x, &y), 10);

    // 5. matmul throughput
    let matmul_wanted = std::env::args()
        .nth(2)
        .is_none_or(|only| "matmul_f32".starts_with(&only) || only.starts_with("matmul"));
    for n in [256usize, 1024, 2048].into_iter().filter(|_| matmul_wanted) {
        let a = Tensor::randn_with(&[n, n], DType::F32, &mut g);
        let b = Tensor::randn_with(&[n, n], DType::F32, &mut g);
        let it = if n <= 256 {
            50
        } else if n == 1024 {
            10
        } else {
            3
        };
        for _ in 0..3 {
            std::hint::black_box(a.matmul(&b));
        }
        let mut ts: Vec<f64> = (0..5)
            .map(|_| {
                let t = Instant::now();
                for _ in 0..it {
                    std::hint::black_box(a.matmul(&b));
                }
                t.elapsed().as_secs_f64() / it as f64
            })
            .collect();
        ts.sort_by(f64::total_cmp);
        println!("matmul_f32_{n}: {:.1} GFLOP/s", 2.0 * (n as f64).powi(3) / ts[2] / 1e9);
    }
}

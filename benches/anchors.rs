//! The anchor training workloads of `shared/anchors/bench_torch.py`, built once for the
//! `workloads` runner and the `training` criterion bench: the same shapes, data sizes and
//! hyperparameters. A step is forward, loss, backward and optimizer step, in f32
//! (gradients are returned, never accumulated, so there is no zero-grad).

use sinew_autograd::Var;
use sinew_nn::loss::{CrossEntropyOptions, Reduction, cross_entropy, mse_loss};
use sinew_nn::{
    Conv2d, Flatten, Forward, Linear, Lstm, MaxPool2d, Module, RecurrentOptions, Relu, Sequential,
};
use sinew_optim::{Adam, Optimizer, Sgd};
use sinew_tensor::{Conv2dOptions, DType, Generator, Tensor};

/// One workload: its name in `bench_torch.py`, the steps per timed repetition there, and
/// a closure that runs one training step (owning its model, optimizer and data).
pub struct Workload {
    pub name: &'static str,
    #[allow(dead_code)] // read by the `workloads` runner; criterion picks its own counts
    pub iters: usize,
    pub step: Box<dyn FnMut()>,
}

/// A classification step: cross entropy of `model(x)` against `y`, then the update.
fn classify_step(
    model: impl Forward + 'static,
    mut opt: impl Optimizer + 'static,
    x: Tensor,
    y: Tensor,
) -> Box<dyn FnMut()> {
    let opts = CrossEntropyOptions::default();
    Box::new(move || {
        let loss = cross_entropy(&model.forward(&Var::constant(x.clone())), &y, &opts);
        let grads = loss.backward();
        drop(loss); // free the graph first, so the step updates parameters in place
        opt.step(&grads);
    })
}

#[derive(Module)]
struct LstmClassifier {
    l: Lstm,
    o: Linear,
}

impl Forward for LstmClassifier {
    fn forward(&self, x: &Var) -> Var {
        let out = self.l.forward(x);
        self.o.forward(&out.select(1, out.dims()[1] - 1))
    }
}

fn mlp(g: &mut Generator) -> Sequential {
    Sequential::new()
        .add(Linear::new(784, 512, g))
        .add(Relu)
        .add(Linear::new(512, 256, g))
        .add(Relu)
        .add(Linear::new(256, 10, g))
}

/// The five training workloads, in `bench_torch.py`'s order.
pub fn training_workloads() -> Vec<Workload> {
    let mut g = Generator::new(0);
    let mut all = Vec::new();

    // 1. the design document's linear regression: one step on 32 rows
    let m = Linear::new(1, 1, &mut g);
    let mut opt = Sgd::new(m.parameters(), 0.01);
    let x = Tensor::rand_with(&[32, 1], DType::F32, &mut g);
    let y = &(&x * 3.0) + &Tensor::rand_with(&[32, 1], DType::F32, &mut g);
    let (xv, yv) = (Var::constant(x), Var::constant(y));
    let step = Box::new(move || {
        let grads = mse_loss(&m.forward(&xv), &yv, Reduction::Mean).backward();
        opt.step(&grads);
    });
    all.push(Workload { name: "linreg_step_b32", iters: 2000, step });

    // 2. MLP 784-512-256-10, batch 128, cross entropy; SGD with momentum, then Adam
    let x = Tensor::randn_with(&[128, 784], DType::F32, &mut g);
    let y = Tensor::rand_int_with(&[128], 0, 10, &mut g);
    let model = mlp(&mut g);
    let sgd = Sgd::momentum(model.parameters(), 0.01, 0.9);
    let step = classify_step(model, sgd, x.clone(), y.clone());
    all.push(Workload { name: "mlp_784_512_256_10_b128_sgd", iters: 30, step });
    let model = mlp(&mut g);
    let adam = Adam::new(model.parameters(), 1e-3);
    all.push(Workload {
        name: "mlp_784_512_256_10_b128_adam",
        iters: 30,
        step: classify_step(model, adam, x, y),
    });

    // 3. LeNet-5, 1x28x28, batch 64, SGD with momentum
    let lenet = Sequential::new()
        .add(Conv2d::new(1, 6, 5, Conv2dOptions::default().padding(2), &mut g))
        .add(Relu)
        .add(MaxPool2d::new(2))
        .add(Conv2d::new(6, 16, 5, Conv2dOptions::default(), &mut g))
        .add(Relu)
        .add(MaxPool2d::new(2))
        .add(Flatten::new())
        .add(Linear::new(400, 120, &mut g))
        .add(Relu)
        .add(Linear::new(120, 84, &mut g))
        .add(Relu)
        .add(Linear::new(84, 10, &mut g));
    let x = Tensor::randn_with(&[64, 1, 28, 28], DType::F32, &mut g);
    let y = Tensor::rand_int_with(&[64], 0, 10, &mut g);
    let sgd = Sgd::momentum(lenet.parameters(), 0.01, 0.9);
    all.push(Workload { name: "lenet5_b64_sgd", iters: 10, step: classify_step(lenet, sgd, x, y) });

    // 4. LSTM: 32 steps, batch 32, input 32, hidden 128, classify the last step, Adam
    let lstm = LstmClassifier {
        l: Lstm::new(32, 128, RecurrentOptions::default().batch_first(true), &mut g),
        o: Linear::new(128, 10, &mut g),
    };
    let x = Tensor::randn_with(&[32, 32, 32], DType::F32, &mut g);
    let y = Tensor::rand_int_with(&[32], 0, 10, &mut g);
    let adam = Adam::new(lstm.parameters(), 1e-3);
    all.push(Workload { name: "lstm_t32_b32_h128_adam", iters: 10, step: classify_step(lstm, adam, x, y) });
    all
}

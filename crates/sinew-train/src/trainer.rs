//! [`Trainer`]: Keras' `fit`, plus [`evaluate`] and [`predict`].

use std::sync::Arc;

use sinew_autograd::{Var, no_grad};
use sinew_nn::Forward;
use sinew_nn::loss::{
    CrossEntropyOptions, Reduction, binary_cross_entropy_with_logits, cross_entropy, l1_loss, mse_loss,
};
use sinew_optim::Optimizer;
use sinew_tensor::{DType, Generator, Tensor};

use crate::callbacks::{Callback, Context};
use crate::history::{History, Logs};
use crate::metrics::Metric;
use crate::progress::{Progress, Verbosity};

/// A loss written as a function of predictions and a batch of targets.
pub type LossFn = Arc<dyn Fn(&Var, &Tensor) -> Var + Send + Sync>;

/// The loss `fit` minimises, from predictions and a batch of targets.
#[derive(Clone)]
pub enum Loss {
    /// Mean squared error (targets reshaped to the predictions' shape).
    Mse,
    /// Mean absolute error.
    L1,
    /// Cross entropy of logits `(N, C)` with class-index targets.
    CrossEntropy,
    /// Binary cross entropy of logits with 0/1 targets.
    BinaryCrossEntropyWithLogits,
    /// Any function of predictions and targets returning a scalar.
    Custom(LossFn),
}

impl Loss {
    /// The scalar loss of one batch.
    ///
    /// # Panics
    /// If the targets do not fit the predictions (the loss's own message).
    pub fn compute(&self, predictions: &Var, targets: &Tensor) -> Var {
        let shaped = || {
            let t = if targets.numel() == predictions.numel() {
                targets.reshape(predictions.dims())
            } else {
                targets.clone()
            };
            Var::constant(t.to_dtype(predictions.dtype()))
        };
        match self {
            Loss::Mse => mse_loss(predictions, &shaped(), Reduction::Mean),
            Loss::L1 => l1_loss(predictions, &shaped(), Reduction::Mean),
            Loss::CrossEntropy => {
                cross_entropy(predictions, &targets.to_dtype(DType::I64), &CrossEntropyOptions::default())
            }
            Loss::BinaryCrossEntropyWithLogits => {
                binary_cross_entropy_with_logits(predictions, &shaped(), None, Reduction::Mean)
            }
            Loss::Custom(f) => f(predictions, targets),
        }
    }
}

/// Where validation data comes from.
#[derive(Clone, Default)]
pub enum Validation {
    /// No validation.
    #[default]
    None,
    /// The last fraction of the training data, held out before shuffling (as Keras).
    Split(f64),
    /// Separate data.
    Data(Tensor, Tensor),
}

/// A Keras-like training run: model, optimizer, loss, metrics, callbacks and settings,
/// then [`Trainer::fit`].
///
/// ```
/// use sinew_nn::{Linear, Module, ReLU, Sequential};
/// use sinew_optim::Adam;
/// use sinew_tensor::{DType, Generator, Tensor};
/// use sinew_train::{Loss, Trainer, Verbosity, metrics::Accuracy};
///
/// let mut g = Generator::new(0);
/// let x = Tensor::randn_with(&[200, 2], DType::F32, &mut g);
/// let y = x.select(1, 0).gt_scalar(0.0).to_dtype(DType::I64);   // the sign of the first feature
/// let model = Sequential::new().add(Linear::new(2, 16, &mut g)).add(ReLU).add(Linear::new(16, 2, &mut g));
/// let mut opt = Adam::new(model.parameters(), 0.01);
/// let history = Trainer::new(&model, &mut opt, Loss::CrossEntropy)
///     .epochs(20)
///     .batch_size(32)
///     .metric(Accuracy::default())
///     .validation_split(0.2)
///     .verbosity(Verbosity::Quiet)
///     .fit(&x, &y);
/// assert!(history.get("val_accuracy").last().copied().unwrap() > 0.9);
/// ```
pub struct Trainer<'a> {
    model: &'a dyn Forward,
    optimizer: &'a mut dyn Optimizer,
    loss: Loss,
    metrics: Vec<Box<dyn Metric>>,
    callbacks: Vec<Box<dyn Callback + 'a>>,
    epochs: usize,
    initial_epoch: usize,
    batch_size: usize,
    shuffle: bool,
    seed: u64,
    validation: Validation,
    verbosity: Verbosity,
}

impl<'a> Trainer<'a> {
    /// Trains `model` with `optimizer` on `loss`: 1 epoch, batches of 32, shuffled with
    /// seed 0, no validation, progress on `Auto`.
    pub fn new(model: &'a dyn Forward, optimizer: &'a mut dyn Optimizer, loss: Loss) -> Self {
        Trainer {
            model,
            optimizer,
            loss,
            metrics: Vec::new(),
            callbacks: Vec::new(),
            epochs: 1,
            initial_epoch: 0,
            batch_size: 32,
            shuffle: true,
            seed: 0,
            validation: Validation::None,
            verbosity: Verbosity::Auto,
        }
    }
    /// Number of epochs to run up to (Keras' `epochs`).
    pub fn epochs(mut self, n: usize) -> Self {
        self.epochs = n;
        self
    }
    /// The epoch to start from when resuming (Keras' `initial_epoch`); with the model and
    /// optimizer restored, the run continues exactly as if never stopped.
    pub fn initial_epoch(mut self, e: usize) -> Self {
        self.initial_epoch = e;
        self
    }
    /// Samples per batch.
    ///
    /// # Panics
    /// If zero.
    #[track_caller]
    pub fn batch_size(mut self, b: usize) -> Self {
        assert!(b > 0, "Trainer: batch size must be positive");
        self.batch_size = b;
        self
    }
    /// Whether to shuffle each epoch (seeded; each epoch's order depends only on the
    /// seed and the epoch number).
    pub fn shuffle(mut self, on: bool) -> Self {
        self.shuffle = on;
        self
    }
    /// The shuffling seed.
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }
    /// Adds a metric (reported on training and validation data).
    pub fn metric(mut self, m: impl Metric + 'static) -> Self {
        self.metrics.push(Box::new(m));
        self
    }
    /// Adds a callback.
    pub fn callback(mut self, c: impl Callback + 'a) -> Self {
        self.callbacks.push(Box::new(c));
        self
    }
    /// Holds out the last `fraction` of the data for validation.
    pub fn validation_split(mut self, fraction: f64) -> Self {
        self.validation = Validation::Split(fraction);
        self
    }
    /// Validates on separate data.
    pub fn validation_data(mut self, x: &Tensor, y: &Tensor) -> Self {
        self.validation = Validation::Data(x.clone(), y.clone());
        self
    }
    /// How much to print.
    pub fn verbosity(mut self, v: Verbosity) -> Self {
        self.verbosity = v;
        self
    }

    /// Runs the epochs; returns the per-epoch logs.
    ///
    /// # Panics
    /// If `x` and `y` disagree on the number of samples.
    #[track_caller]
    pub fn fit(mut self, x: &Tensor, y: &Tensor) -> History {
        let n = x.dims().first().copied().unwrap_or(0);
        assert_eq!(
            y.dims().first().copied(),
            Some(n),
            "Trainer::fit: x has {n} samples but y has shape {:?}",
            y.dims()
        );
        let (train_x, train_y, val) = match &self.validation {
            Validation::None => (x.clone(), y.clone(), None),
            Validation::Data(vx, vy) => (x.clone(), y.clone(), Some((vx.clone(), vy.clone()))),
            Validation::Split(f) => {
                let held = ((n as f64) * f.clamp(0.0, 1.0)).round() as usize;
                let keep = n - held;
                (
                    x.narrow(0, 0, keep),
                    y.narrow(0, 0, keep),
                    Some((x.narrow(0, keep, held), y.narrow(0, keep, held))),
                )
            }
        };
        let n_train = train_x.dims()[0];
        let batches = n_train.div_ceil(self.batch_size);
        let mut progress = Progress::new(self.verbosity, self.epochs);
        let mut history = History::default();
        let mut callbacks = std::mem::take(&mut self.callbacks);
        let mut ctx = Context {
            model: self.model,
            optimizer: &mut *self.optimizer,
            stop_training: false,
            global_step: 0,
        };
        for c in callbacks.iter_mut() {
            c.on_train_begin(&mut ctx);
        }
        self.model.train();
        for epoch in self.initial_epoch..self.epochs {
            for c in callbacks.iter_mut() {
                c.on_epoch_begin(epoch, &mut ctx);
            }
            let mut order: Vec<i64> = (0..n_train as i64).collect();
            if self.shuffle {
                Generator::new(self.seed ^ (epoch as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15))
                    .shuffle(&mut order);
            }
            progress.epoch_begin(epoch, batches);
            for m in self.metrics.iter_mut() {
                m.reset();
            }
            let (mut loss_sum, mut seen) = (0.0, 0usize);
            for chunk in order.chunks(self.batch_size) {
                let idx = Tensor::from_slice(chunk, &[chunk.len()]).expect("1-D index");
                let (xb, yb) = (train_x.index_select(0, &idx), train_y.index_select(0, &idx));
                let pred = self.model.forward(&Var::constant(xb));
                let loss = self.loss.compute(&pred, &yb);
                let grads = loss.backward();
                let (l, pred) = (loss.item(), pred.value().clone());
                // drop the graph before the step: it holds the parameters' values, and the
                // optimizer updates them in place only when nothing else does
                drop(loss);
                ctx.optimizer.step(&grads);
                ctx.global_step += 1;
                loss_sum += l * chunk.len() as f64;
                seen += chunk.len();
                for m in self.metrics.iter_mut() {
                    m.update(&pred, &yb);
                }
                progress.batch_end(loss_sum / seen as f64);
                for c in callbacks.iter_mut() {
                    c.on_batch_end(ctx.global_step, l, &mut ctx);
                }
                if ctx.stop_training {
                    break;
                }
            }
            let mut logs = Logs::new();
            logs.insert("loss".into(), loss_sum / seen.max(1) as f64);
            for m in &self.metrics {
                logs.insert(m.name(), m.value());
            }
            logs.insert("lr".into(), ctx.optimizer.lr());
            if let Some((vx, vy)) = &val {
                let v = evaluate(self.model, vx, vy, &self.loss, &mut self.metrics, self.batch_size);
                self.model.train();
                for (k, value) in v {
                    logs.insert(format!("val_{k}"), value);
                }
            }
            for c in callbacks.iter_mut() {
                c.on_epoch_end(epoch, &mut logs, &mut ctx);
            }
            progress.epoch_end(epoch, &logs);
            history.epochs.push(logs);
            if ctx.stop_training {
                break;
            }
        }
        for c in callbacks.iter_mut() {
            c.on_train_end(&mut ctx);
        }
        history
    }
}

/// The loss and metrics of `model` on `(x, y)` in evaluation mode, without recording a
/// graph (Keras' `evaluate`). Leaves the model in evaluation mode.
pub fn evaluate(
    model: &dyn Forward,
    x: &Tensor,
    y: &Tensor,
    loss: &Loss,
    metrics: &mut [Box<dyn Metric>],
    batch_size: usize,
) -> Logs {
    model.eval();
    for m in metrics.iter_mut() {
        m.reset();
    }
    let n = x.dims().first().copied().unwrap_or(0);
    let (mut sum, mut seen) = (0.0, 0usize);
    no_grad(|| {
        for start in (0..n).step_by(batch_size.max(1)) {
            let len = batch_size.min(n - start);
            let (xb, yb) = (x.narrow(0, start, len), y.narrow(0, start, len));
            let pred = model.forward(&Var::constant(xb));
            sum += loss.compute(&pred, &yb).item() * len as f64;
            seen += len;
            for m in metrics.iter_mut() {
                m.update(pred.value(), &yb);
            }
        }
    });
    let mut logs = Logs::new();
    logs.insert("loss".into(), sum / seen.max(1) as f64);
    for m in metrics.iter() {
        logs.insert(m.name(), m.value());
    }
    logs
}

/// The model's outputs for `x`, batch by batch, in evaluation mode without a graph
/// (Keras' `predict`). Leaves the model in evaluation mode.
pub fn predict(model: &dyn Forward, x: &Tensor, batch_size: usize) -> Tensor {
    model.eval();
    let n = x.dims().first().copied().unwrap_or(0);
    let outputs: Vec<Tensor> = no_grad(|| {
        (0..n)
            .step_by(batch_size.max(1))
            .map(|s| model.forward(&Var::constant(x.narrow(0, s, batch_size.min(n - s)))).value().clone())
            .collect()
    });
    let refs: Vec<&Tensor> = outputs.iter().collect();
    if refs.is_empty() { Tensor::zeros(&[0]) } else { Tensor::cat(&refs, 0) }
}

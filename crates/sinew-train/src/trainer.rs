//! [`Trainer`]: Keras' `fit` over tensors, a [`Dataset`] or a [`DataLoader`], with exact
//! resuming from a checkpoint; plus [`evaluate`], [`evaluate_batches`] and [`predict`].

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use sinew_autograd::{Var, no_grad};
use sinew_data::{DataLoader, Dataset, DistributedSampler, Sample, Sampler, Subset, TensorDataset};
use sinew_nn::Forward;
use sinew_nn::loss::{
    CrossEntropyOptions, Reduction, binary_cross_entropy_with_logits, cross_entropy, l1_loss, mse_loss,
};
use sinew_optim::Optimizer;
use sinew_serialize::{Checkpoint, StateDict};
use sinew_tensor::{Generator, GeneratorState, Tensor};

use crate::callbacks::{Callback, Context};
use crate::data_parallel::{DataParallel, any_rank, combine};
use crate::history::{History, Logs};
use crate::metrics::Metric;
use crate::progress::{Progress, Verbosity};
use crate::state::{
    CallbackState, KEY_CALLBACKS, KEY_GENERATORS, KEY_HISTORY, KEY_LOADER_SEED, KEY_SEED, KEY_STOPPED,
    KEY_VERSION, ResumeError, SavedTrainer, encode_callbacks, encode_generators, encode_history,
};

/// A loss written as a function of predictions and a batch of targets.
pub type LossFn = Arc<dyn Fn(&Var, &Tensor) -> Var + Send + Sync>;

/// The loss `fit` minimises, from predictions and a batch of targets.
#[derive(Clone)]
pub enum Loss {
    /// Mean squared error (targets reshaped to the predictions' shape).
    Mse,
    /// Mean absolute error.
    L1,
    /// Cross entropy of logits `(N, C)` with `i64` class-index targets (float labels are
    /// an error, as in [`cross_entropy`]: cast them with `to_dtype(DType::I64)`).
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
    ///
    /// ```
    /// use sinew_autograd::Var;
    /// use sinew_tensor::Tensor;
    /// use sinew_train::Loss;
    /// let pred = Var::constant(Tensor::from([[1.0f32], [2.0]]));
    /// // targets of shape (N,) are reshaped to the predictions' (N, 1)
    /// assert_eq!(Loss::Mse.compute(&pred, &Tensor::from(vec![0.0f32, 4.0])).item(), 2.5);
    /// assert_eq!(Loss::L1.compute(&pred, &Tensor::from(vec![0.0f32, 4.0])).item(), 1.5);
    /// // equal logits over two classes: cross entropy ln 2
    /// let logits = Var::constant(Tensor::zeros(&[3, 2]));
    /// let ce = Loss::CrossEntropy.compute(&logits, &Tensor::from(vec![0i64, 1, 1])).item();
    /// assert!((ce - 2f64.ln()).abs() < 1e-6);
    /// ```
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
            // class indices must be int64, as for `cross_entropy` itself: float labels are
            // refused, not truncated
            Loss::CrossEntropy => cross_entropy(predictions, targets, &CrossEntropyOptions::default()),
            Loss::BinaryCrossEntropyWithLogits => {
                binary_cross_entropy_with_logits(predictions, &shaped(), None, Reduction::Mean)
            }
            Loss::Custom(f) => f(predictions, targets),
        }
    }
}

/// Where validation data comes from (see also [`Trainer::validation_dataset`] and
/// [`Trainer::validation_loader`]).
#[derive(Debug, Clone, Default)]
pub enum Validation {
    /// No validation.
    #[default]
    None,
    /// The last fraction of the training data, held out before shuffling (as Keras).
    Split(f64),
    /// Separate data.
    Data(Tensor, Tensor),
}

/// A data loader, as the trainer sees it: the batches of any epoch.
trait EpochSource {
    fn num_batches(&self) -> usize;
    fn epoch_batches(&self, epoch: u64) -> Box<dyn Iterator<Item = Sample> + '_>;
    fn set_epoch(&self, epoch: u64);
    /// The seed, if the loader shuffles (an unshuffled loader's seed does not matter, and
    /// asking for an unset one would draw from the global generator).
    fn shuffle_seed(&self) -> Option<u64>;
}

impl<D: Dataset + 'static> EpochSource for DataLoader<D> {
    fn num_batches(&self) -> usize {
        self.len()
    }
    fn epoch_batches(&self, epoch: u64) -> Box<dyn Iterator<Item = Sample> + '_> {
        Box::new(self.iter_epoch(epoch))
    }
    fn set_epoch(&self, epoch: u64) {
        DataLoader::set_epoch(self, epoch)
    }
    fn shuffle_seed(&self) -> Option<u64> {
        self.is_shuffled().then(|| self.initial_seed())
    }
}

/// Validation data, however it was given.
enum Val<'a> {
    None,
    Split(f64),
    Tensors(Tensor, Tensor),
    Dataset(Box<dyn Dataset + 'a>),
    Loader(&'a dyn EpochSource),
}

/// Training data: batched and shuffled by the trainer, or by a loader.
enum TrainData<'d> {
    Indexed(&'d dyn Dataset),
    Loader(&'d dyn EpochSource),
}

/// What [`Trainer::resume_from`] read, applied by `fit`.
struct Resume {
    epoch: usize,
    step: usize,
    saved: SavedTrainer,
}

/// Epoch and step counts past this are not from a real run (and would overflow the
/// counters that continue them).
const MAX_PLAUSIBLE_COUNT: u64 = 1 << 53;

/// A Keras-like training run: model, optimizer, loss, metrics, callbacks and settings,
/// then [`fit`](Trainer::fit) over tensors, [`fit_dataset`](Trainer::fit_dataset) over a
/// [`Dataset`], or [`fit_loader`](Trainer::fit_loader) over a [`DataLoader`].
///
/// ```
/// use sinew_nn::{Linear, Module, Relu, Sequential};
/// use sinew_optim::Adam;
/// use sinew_tensor::{DType, Generator, Tensor};
/// use sinew_train::{Loss, Trainer, Verbosity, metrics::Accuracy};
///
/// let mut g = Generator::new(0);
/// let x = Tensor::randn_with(&[200, 2], DType::F32, &mut g);
/// let y = x.select(1, 0).gt_scalar(0.0).to_dtype(DType::I64);   // the sign of the first feature
/// let model = Sequential::new().add(Linear::new(2, 16, &mut g)).add(Relu).add(Linear::new(16, 2, &mut g));
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
///
/// Every epoch's batches depend only on the seed (the trainer's, or the loader's) and the
/// epoch number, so a run resumed with [`resume_from`](Trainer::resume_from) from a
/// checkpoint ([`ModelCheckpoint`](crate::ModelCheckpoint) with a non-safetensors path)
/// ends with the same parameters and the same [`History`], bit for bit, as one never
/// interrupted.
pub struct Trainer<'a> {
    model: &'a dyn Forward,
    optimizer: &'a mut dyn Optimizer,
    loss: Loss,
    metrics: Vec<Box<dyn Metric + 'a>>,
    callbacks: Vec<Box<dyn Callback + 'a>>,
    epochs: usize,
    initial_epoch: usize,
    batch_size: usize,
    shuffle: bool,
    seed: u64,
    validation: Val<'a>,
    verbosity: Verbosity,
    resume: Option<Resume>,
    data_parallel: Option<&'a dyn DataParallel>,
}

impl<'a> Trainer<'a> {
    /// Trains `model` with `optimizer` on `loss`: 1 epoch, batches of 32, shuffled with
    /// seed 0, no validation, progress on `Auto`.
    ///
    /// ```
    /// use sinew_nn::{Linear, Module};
    /// use sinew_optim::Sgd;
    /// use sinew_tensor::{Generator, Tensor};
    /// use sinew_train::{Loss, Trainer, Verbosity};
    /// // fit y = 2x + 1
    /// let x = Tensor::from_vec((0..8).map(|i| i as f32 / 8.0).collect(), &[8, 1])?;
    /// let y = x.mul_scalar(2.0).add_scalar(1.0);
    /// let model = Linear::new(1, 1, &mut Generator::new(0));
    /// let mut opt = Sgd::new(model.parameters(), 0.5);
    /// let history =
    ///     Trainer::new(&model, &mut opt, Loss::Mse).epochs(200).batch_size(8).verbosity(Verbosity::Quiet).fit(&x, &y);
    /// assert!(history.get("loss")[199] < 1e-4);
    /// assert!((model.weight.value().item() - 2.0).abs() < 0.05);
    /// # Ok::<(), sinew_tensor::TensorError>(())
    /// ```
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
            validation: Val::None,
            verbosity: Verbosity::Auto,
            resume: None,
            data_parallel: None,
        }
    }
    /// Number of epochs to run up to (Keras' `epochs`).
    ///
    /// ```
    /// use sinew_nn::{Linear, Module};
    /// use sinew_optim::Sgd;
    /// use sinew_tensor::{Generator, Tensor};
    /// use sinew_train::{Loss, Trainer, Verbosity};
    /// let x = Tensor::from_vec(vec![0.0f32, 1.0, 2.0, 3.0], &[4, 1])?;
    /// let model = Linear::new(1, 1, &mut Generator::new(0));
    /// let mut opt = Sgd::new(model.parameters(), 0.05);
    /// let history = Trainer::new(&model, &mut opt, Loss::Mse).epochs(3).verbosity(Verbosity::Quiet).fit(&x, &x);
    /// assert_eq!(history.len(), 3);
    /// # Ok::<(), sinew_tensor::TensorError>(())
    /// ```
    pub fn epochs(mut self, n: usize) -> Self {
        self.epochs = n;
        self
    }
    /// The epoch to start from when resuming by hand (Keras' `initial_epoch`): with the
    /// model and optimizer restored, the run continues as if never stopped, as long as no
    /// callback carries state. [`resume_from`](Trainer::resume_from) does all of it.
    ///
    /// ```
    /// use sinew_nn::{Linear, Module};
    /// use sinew_optim::Sgd;
    /// use sinew_tensor::{Generator, Tensor};
    /// use sinew_train::{Loss, Trainer, Verbosity};
    /// let x = Tensor::from_vec(vec![0.0f32, 1.0, 2.0, 3.0], &[4, 1])?;
    /// let run = |split: bool| {
    ///     let model = Linear::new(1, 1, &mut Generator::new(0));
    ///     let mut opt = Sgd::new(model.parameters(), 0.05);
    ///     let mut losses = Vec::new();
    ///     if split {
    ///         // two epochs, then (same model and optimizer, no stateful callback) epochs 2 and 3
    ///         let first = Trainer::new(&model, &mut opt, Loss::Mse).epochs(2).batch_size(2).verbosity(Verbosity::Quiet);
    ///         losses.extend(first.fit(&x, &x).get("loss"));
    ///         let rest = Trainer::new(&model, &mut opt, Loss::Mse).epochs(4).initial_epoch(2).batch_size(2);
    ///         losses.extend(rest.verbosity(Verbosity::Quiet).fit(&x, &x).get("loss"));
    ///     } else {
    ///         let all = Trainer::new(&model, &mut opt, Loss::Mse).epochs(4).batch_size(2).verbosity(Verbosity::Quiet);
    ///         losses.extend(all.fit(&x, &x).get("loss"));
    ///     }
    ///     losses
    /// };
    /// // the continued run shuffles epochs 2 and 3 as the uninterrupted one does
    /// assert_eq!(run(true), run(false));
    /// assert_eq!(run(true).len(), 4);
    /// # Ok::<(), sinew_tensor::TensorError>(())
    /// ```
    pub fn initial_epoch(mut self, e: usize) -> Self {
        self.initial_epoch = e;
        self
    }
    /// Samples per batch ([`fit`](Trainer::fit) and [`fit_dataset`](Trainer::fit_dataset);
    /// a [`DataLoader`] has its own).
    ///
    /// # Panics
    /// If zero.
    ///
    /// ```
    /// use sinew_nn::{Linear, Module};
    /// use sinew_optim::Sgd;
    /// use sinew_tensor::{Generator, Tensor};
    /// use sinew_train::{Callback, Context, Loss, Trainer, Verbosity};
    /// /// Counts optimizer steps.
    /// struct Steps(usize);
    /// impl Callback for Steps {
    ///     fn on_batch_end(&mut self, _: usize, _: f64, _: &mut Context<'_>) {
    ///         self.0 += 1;
    ///     }
    /// }
    /// let x = Tensor::from_vec((0..10).map(|i| i as f32).collect(), &[10, 1])?;
    /// let model = Linear::new(1, 1, &mut Generator::new(0));
    /// let mut opt = Sgd::new(model.parameters(), 1e-3);
    /// let mut steps = Steps(0);
    /// Trainer::new(&model, &mut opt, Loss::Mse)
    ///     .epochs(2)
    ///     .batch_size(4)
    ///     .callback(&mut steps)
    ///     .verbosity(Verbosity::Quiet)
    ///     .fit(&x, &x);
    /// assert_eq!(steps.0, 2 * 3); // batches of 4, 4 and 2 per epoch
    /// # Ok::<(), sinew_tensor::TensorError>(())
    /// ```
    #[track_caller]
    pub fn batch_size(mut self, b: usize) -> Self {
        assert!(b > 0, "Trainer: batch size must be positive");
        self.batch_size = b;
        self
    }
    /// Whether to shuffle each epoch (seeded; each epoch's order depends only on the
    /// seed and the epoch number). A [`DataLoader`] shuffles by its own settings.
    ///
    /// ```
    /// use sinew_nn::{Linear, Module};
    /// use sinew_optim::Sgd;
    /// use sinew_tensor::{Generator, Tensor};
    /// use sinew_train::{Loss, Trainer, Verbosity};
    /// let x = Tensor::from_vec((0..8).map(|i| i as f32 / 8.0).collect(), &[8, 1])?;
    /// let losses = |shuffle: bool, seed: u64| {
    ///     let model = Linear::new(1, 1, &mut Generator::new(0));
    ///     let mut opt = Sgd::new(model.parameters(), 0.1);
    ///     let t = Trainer::new(&model, &mut opt, Loss::Mse).epochs(2).batch_size(2).shuffle(shuffle).seed(seed);
    ///     t.verbosity(Verbosity::Quiet).fit(&x, &x).get("loss")
    /// };
    /// // in order, the seed does not matter; shuffled, it does
    /// assert_eq!(losses(false, 0), losses(false, 1));
    /// assert_ne!(losses(true, 0), losses(true, 1));
    /// # Ok::<(), sinew_tensor::TensorError>(())
    /// ```
    pub fn shuffle(mut self, on: bool) -> Self {
        self.shuffle = on;
        self
    }
    /// The shuffling seed (a [`DataLoader`] has its own).
    ///
    /// ```
    /// use sinew_nn::{Linear, Module};
    /// use sinew_optim::Sgd;
    /// use sinew_tensor::{Generator, Tensor};
    /// use sinew_train::{Loss, Trainer, Verbosity};
    /// let x = Tensor::from_vec((0..8).map(|i| i as f32 / 8.0).collect(), &[8, 1])?;
    /// let weight_after = |seed: u64| {
    ///     let model = Linear::new(1, 1, &mut Generator::new(0));
    ///     let mut opt = Sgd::new(model.parameters(), 0.1);
    ///     Trainer::new(&model, &mut opt, Loss::Mse).epochs(2).batch_size(2).seed(seed).verbosity(Verbosity::Quiet).fit(&x, &x);
    ///     model.weight.value().item()
    /// };
    /// // the same seed, the same batches, bit for bit
    /// assert_eq!(weight_after(7), weight_after(7));
    /// assert_ne!(weight_after(7), weight_after(8));
    /// # Ok::<(), sinew_tensor::TensorError>(())
    /// ```
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }
    /// Adds a metric (reported on training and validation data). Lend one (`&mut m`) to
    /// read it after `fit`.
    ///
    /// ```
    /// use sinew_nn::{Linear, Module};
    /// use sinew_optim::Sgd;
    /// use sinew_tensor::{Generator, Tensor};
    /// use sinew_train::metrics::{Accuracy, Metric};
    /// use sinew_train::{Loss, Trainer, Verbosity};
    /// // the class is the sign of x
    /// let x = Tensor::from([[-2.0f32], [-1.0], [1.0], [2.0]]);
    /// let y = Tensor::from(vec![0i64, 0, 1, 1]);
    /// let model = Linear::new(1, 2, &mut Generator::new(0));
    /// let mut opt = Sgd::new(model.parameters(), 0.5);
    /// let mut acc = Accuracy::default();
    /// let history = Trainer::new(&model, &mut opt, Loss::CrossEntropy)
    ///     .epochs(30)
    ///     .metric(&mut acc)
    ///     .validation_data(&x, &y)
    ///     .verbosity(Verbosity::Quiet)
    ///     .fit(&x, &y);
    /// assert_eq!(history.get("val_accuracy")[29], 1.0);
    /// assert_eq!(history.get("accuracy").len(), 30);
    /// assert_eq!(acc.value(), 1.0); // the lent metric, last updated on the validation data
    /// # Ok::<(), sinew_tensor::TensorError>(())
    /// ```
    pub fn metric(mut self, m: impl Metric + 'a) -> Self {
        self.metrics.push(Box::new(m));
        self
    }
    /// Adds a callback. Lend one (`&mut c`) to read it after `fit` (see
    /// [`Callback`](crate::Callback)).
    ///
    /// ```
    /// use sinew_nn::{Linear, Module};
    /// use sinew_optim::Sgd;
    /// use sinew_tensor::{Generator, Tensor};
    /// use sinew_train::{Callback, Context, Logs, Loss, Trainer, Verbosity};
    /// /// Stops training once the loss is below a target (a hand-written callback).
    /// struct StopBelow(f64);
    /// impl Callback for StopBelow {
    ///     fn on_epoch_end(&mut self, _: usize, logs: &mut Logs, ctx: &mut Context<'_>) {
    ///         if logs["loss"] < self.0 {
    ///             ctx.stop_training = true;
    ///         }
    ///     }
    /// }
    /// let x = Tensor::from_vec((0..8).map(|i| i as f32 / 8.0).collect(), &[8, 1])?;
    /// let model = Linear::new(1, 1, &mut Generator::new(0));
    /// let mut opt = Sgd::new(model.parameters(), 0.5);
    /// let history = Trainer::new(&model, &mut opt, Loss::Mse)
    ///     .epochs(1000)
    ///     .callback(StopBelow(1e-3))
    ///     .verbosity(Verbosity::Quiet)
    ///     .fit(&x, &x);
    /// let loss = history.get("loss");
    /// assert!(loss.len() < 1000 && loss[loss.len() - 1] < 1e-3 && loss[loss.len() - 2] >= 1e-3);
    /// # Ok::<(), sinew_tensor::TensorError>(())
    /// ```
    pub fn callback(mut self, c: impl Callback + 'a) -> Self {
        self.callbacks.push(Box::new(c));
        self
    }
    /// Where validation data comes from.
    ///
    /// ```
    /// use sinew_nn::{Linear, Module};
    /// use sinew_optim::Sgd;
    /// use sinew_tensor::{Generator, Tensor};
    /// use sinew_train::{Loss, Trainer, Validation, Verbosity};
    /// let x = Tensor::from_vec((0..8).map(|i| i as f32 / 8.0).collect(), &[8, 1])?;
    /// let val = |v: Validation| {
    ///     let model = Linear::new(1, 1, &mut Generator::new(0));
    ///     let mut opt = Sgd::new(model.parameters(), 0.1);
    ///     Trainer::new(&model, &mut opt, Loss::Mse).epochs(2).validation(v).verbosity(Verbosity::Quiet).fit(&x, &x).get("val_loss")
    /// };
    /// assert!(val(Validation::None).is_empty());
    /// assert_eq!(val(Validation::Split(0.25)).len(), 2);
    /// assert_eq!(val(Validation::Data(x.clone(), x.clone())).len(), 2);
    /// # Ok::<(), sinew_tensor::TensorError>(())
    /// ```
    pub fn validation(mut self, v: Validation) -> Self {
        self.validation = match v {
            Validation::None => Val::None,
            Validation::Split(f) => Val::Split(f),
            Validation::Data(x, y) => Val::Tensors(x, y),
        };
        self
    }
    /// Holds out the last `fraction` of the data for validation ([`fit`](Trainer::fit)
    /// and [`fit_dataset`](Trainer::fit_dataset) only).
    ///
    /// ```
    /// use sinew_nn::{Linear, Module};
    /// use sinew_optim::Sgd;
    /// use sinew_tensor::{Generator, Tensor};
    /// use sinew_train::{Loss, Trainer, Verbosity, evaluate};
    /// let x = Tensor::from_vec((0..8).map(|i| i as f32 / 8.0).collect(), &[8, 1])?;
    /// let model = Linear::new(1, 1, &mut Generator::new(0));
    /// let mut opt = Sgd::new(model.parameters(), 0.1);
    /// // model.fit(x, x, validation_split=0.25): the last 2 of 8 samples are held out
    /// let history =
    ///     Trainer::new(&model, &mut opt, Loss::Mse).epochs(2).validation_split(0.25).verbosity(Verbosity::Quiet).fit(&x, &x);
    /// let held_out = x.narrow(0, 6, 2);
    /// let last = evaluate(&model, &held_out, &held_out, &Loss::Mse, &mut [], 32);
    /// assert_eq!(history.get("val_loss")[1], last["loss"]);
    /// # Ok::<(), sinew_tensor::TensorError>(())
    /// ```
    pub fn validation_split(mut self, fraction: f64) -> Self {
        self.validation = Val::Split(fraction);
        self
    }
    /// Validates on separate data.
    ///
    /// ```
    /// use sinew_nn::{Linear, Module};
    /// use sinew_optim::Sgd;
    /// use sinew_tensor::{Generator, Tensor};
    /// use sinew_train::{Loss, Trainer, Verbosity, evaluate};
    /// let x = Tensor::from_vec((0..8).map(|i| i as f32 / 8.0).collect(), &[8, 1])?;
    /// let (x_val, y_val) = (Tensor::from([[2.0f32], [3.0]]), Tensor::from([[2.0f32], [3.0]]));
    /// let model = Linear::new(1, 1, &mut Generator::new(0));
    /// let mut opt = Sgd::new(model.parameters(), 0.1);
    /// let history = Trainer::new(&model, &mut opt, Loss::Mse)
    ///     .epochs(2)
    ///     .validation_data(&x_val, &y_val)
    ///     .verbosity(Verbosity::Quiet)
    ///     .fit(&x, &x);
    /// // an epoch's val_loss is the model's loss on the validation data at the end of the epoch
    /// let now = evaluate(&model, &x_val, &y_val, &Loss::Mse, &mut [], 32);
    /// assert_eq!(history.get("val_loss")[1], now["loss"]);
    /// # Ok::<(), sinew_tensor::TensorError>(())
    /// ```
    pub fn validation_data(mut self, x: &Tensor, y: &Tensor) -> Self {
        self.validation = Val::Tensors(x.clone(), y.clone());
        self
    }
    /// Validates on a dataset, in index order, in batches of
    /// [`batch_size`](Trainer::batch_size). A reference to a dataset is a dataset.
    ///
    /// ```
    /// use sinew_data::{TensorDataset, datasets, train_test_split};
    /// use sinew_nn::{Linear, Module};
    /// use sinew_optim::Adam;
    /// use sinew_tensor::Generator;
    /// use sinew_train::{Loss, Trainer, Verbosity};
    ///
    /// let iris = datasets::iris();
    /// let (train, val) = train_test_split(150, 0.2, 0);
    /// let (train, val) = (iris.select(&train), iris.select(&val));
    /// let model = Linear::new(4, 3, &mut Generator::new(0));
    /// let mut opt = Adam::new(model.parameters(), 0.05);
    /// let history = Trainer::new(&model, &mut opt, Loss::CrossEntropy)
    ///     .epochs(3)
    ///     .validation_dataset(&val)
    ///     .verbosity(Verbosity::Quiet)
    ///     .fit_dataset(&train);
    /// assert_eq!(history.get("val_loss").len(), 3);
    /// ```
    pub fn validation_dataset(mut self, dataset: impl Dataset + 'a) -> Self {
        self.validation = Val::Dataset(Box::new(dataset));
        self
    }
    /// Validates on the batches of a loader (epoch `e` validates on
    /// [`iter_epoch(e)`](DataLoader::iter_epoch), so even a shuffling loader gives the same
    /// numbers when the run is resumed).
    ///
    /// ```
    /// use sinew_data::{DataLoader, TensorDataset};
    /// use sinew_nn::{Linear, Module};
    /// use sinew_optim::Sgd;
    /// use sinew_tensor::{Generator, Tensor};
    /// use sinew_train::{Loss, Trainer, Verbosity, evaluate};
    /// let x = Tensor::from_vec((0..8).map(|i| i as f32 / 8.0).collect(), &[8, 1])?;
    /// let val = DataLoader::new(TensorDataset::new(x.clone(), x.clone()), 3);
    /// let model = Linear::new(1, 1, &mut Generator::new(0));
    /// let mut opt = Sgd::new(model.parameters(), 0.1);
    /// let history =
    ///     Trainer::new(&model, &mut opt, Loss::Mse).epochs(2).validation_loader(&val).verbosity(Verbosity::Quiet).fit(&x, &x);
    /// // batches of 3, 3 and 2, weighted by size: the mean over the 8 samples
    /// let whole = evaluate(&model, &x, &x, &Loss::Mse, &mut [], 8);
    /// assert!((history.get("val_loss")[1] - whole["loss"]).abs() < 1e-6);
    /// # Ok::<(), sinew_tensor::TensorError>(())
    /// ```
    pub fn validation_loader<D: Dataset + 'static>(mut self, loader: &'a DataLoader<D>) -> Self {
        self.validation = Val::Loader(loader);
        self
    }
    /// How much to print.
    ///
    /// ```
    /// use sinew_nn::{Linear, Module};
    /// use sinew_optim::Sgd;
    /// use sinew_tensor::{Generator, Tensor};
    /// use sinew_train::{Loss, Trainer, Verbosity};
    /// let x = Tensor::from_vec(vec![0.0f32, 1.0, 2.0, 3.0], &[4, 1])?;
    /// let model = Linear::new(1, 1, &mut Generator::new(0));
    /// let mut opt = Sgd::new(model.parameters(), 0.05);
    /// // Keras' verbose=0: no bar and no lines; the history is the same as with them
    /// let history = Trainer::new(&model, &mut opt, Loss::Mse).epochs(2).verbosity(Verbosity::Quiet).fit(&x, &x);
    /// assert_eq!(history.len(), 2);
    /// assert_eq!(Verbosity::default(), Verbosity::Auto);
    /// # Ok::<(), sinew_tensor::TensorError>(())
    /// ```
    pub fn verbosity(mut self, v: Verbosity) -> Self {
        self.verbosity = v;
        self
    }

    /// Runs `fit` as one rank of a data-parallel job (`sinew-distributed`'s
    /// `DistributedDataParallel`, given here and as the model): every rank calls `fit`
    /// with the same data and settings, trains on its shard with `batch_size` samples a
    /// batch, steps with gradients averaged over the ranks, and logs the loss and metrics
    /// over all the ranks' samples; rank 0 alone shows progress and writes files. See
    /// [`DataParallel`] for the rules.
    ///
    /// ```no_run
    /// # fn doc(ddp: &(impl sinew_nn::Forward + sinew_train::DataParallel), x: &sinew_tensor::Tensor, y: &sinew_tensor::Tensor) {
    /// use sinew_nn::Module;
    /// use sinew_optim::Adam;
    /// use sinew_train::{Loss, Trainer, metrics::Accuracy};
    /// // ddp: a DistributedDataParallel wrapping the model, on every rank
    /// let mut opt = Adam::new(ddp.parameters(), 1e-3);
    /// let history = Trainer::new(ddp, &mut opt, Loss::CrossEntropy)
    ///     .data_parallel(ddp)
    ///     .epochs(10)
    ///     .batch_size(32) // per rank
    ///     .metric(Accuracy::default())
    ///     .validation_split(0.2)
    ///     .fit(x, y); // the same x and y on every rank
    /// # }
    /// ```
    pub fn data_parallel(mut self, job: &'a dyn DataParallel) -> Self {
        self.data_parallel = Some(job);
        self
    }

    /// Restores a run from a checkpoint file and continues it: see
    /// [`resume_from_checkpoint`](Trainer::resume_from_checkpoint).
    ///
    /// # Errors
    /// If the file cannot be read ([`ResumeError::Serialize`]), or as
    /// [`resume_from_checkpoint`](Trainer::resume_from_checkpoint).
    ///
    /// ```
    /// use sinew_nn::{Linear, Module};
    /// use sinew_optim::Sgd;
    /// use sinew_tensor::{Generator, Tensor};
    /// use sinew_train::{Loss, ModelCheckpoint, Trainer, Verbosity};
    /// let path = std::env::temp_dir().join(format!("doc-resume-from-{}.sinew", std::process::id()));
    /// let x = Tensor::from_vec((0..8).map(|i| i as f32 / 8.0).collect(), &[8, 1])?;
    /// let fresh = || Linear::new(1, 1, &mut Generator::new(0));
    /// // an uninterrupted run of 4 epochs
    /// let model = fresh();
    /// let mut opt = Sgd::new(model.parameters(), 0.1);
    /// let whole = Trainer::new(&model, &mut opt, Loss::Mse).epochs(4).batch_size(2).verbosity(Verbosity::Quiet).fit(&x, &x);
    /// // a run interrupted after 2 epochs, saved by ModelCheckpoint ...
    /// let model2 = fresh();
    /// let mut opt2 = Sgd::new(model2.parameters(), 0.1);
    /// Trainer::new(&model2, &mut opt2, Loss::Mse)
    ///     .epochs(2)
    ///     .batch_size(2)
    ///     .callback(ModelCheckpoint::new(&path))
    ///     .verbosity(Verbosity::Quiet)
    ///     .fit(&x, &x);
    /// // ... and resumed in a new process, from a new model and optimizer, with the same
    /// // callbacks (added before `resume_from`, which restores their state)
    /// let model3 = fresh();
    /// let mut opt3 = Sgd::new(model3.parameters(), 0.1);
    /// let resumed = Trainer::new(&model3, &mut opt3, Loss::Mse)
    ///     .epochs(4)
    ///     .batch_size(2)
    ///     .verbosity(Verbosity::Quiet)
    ///     .callback(ModelCheckpoint::new(&path))
    ///     .resume_from(&path)?
    ///     .fit(&x, &x);
    /// assert_eq!(resumed, whole); // the whole history, bit for bit
    /// assert_eq!(model3.weight.value().item(), model.weight.value().item());
    /// # std::fs::remove_file(&path).ok();
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn resume_from(self, path: impl AsRef<Path>) -> Result<Self, ResumeError> {
        let ckpt = Checkpoint::load(path)?;
        self.resume_from_checkpoint(&ckpt)
    }

    /// Restores a run from a checkpoint: the model's state dict, the optimizer's state and
    /// every callback's state now, and, when `fit` starts, the epoch and step to continue
    /// from, the history so far and the shuffling seed. `fit` then returns the whole
    /// history (the checkpoint's epochs, then the new ones), and the run ends exactly as
    /// an uninterrupted one.
    ///
    /// The checkpoint can be one [`ModelCheckpoint`](crate::ModelCheckpoint) wrote (a
    /// path not ending in `.safetensors`), or one saved by hand with a model state dict,
    /// an optimizer state, the epochs completed (`epoch`) and optionally the step count;
    /// then callbacks start afresh and the trainer keeps its own seed.
    ///
    /// Callbacks get their state back here, by name ([`Callback::name`](crate::Callback::name),
    /// the type's name by default) and order among callbacks of that name: add the
    /// callbacks of the interrupted run *before* calling this. The checkpoint's seed replaces
    /// the trainer's; a training [`DataLoader`] must shuffle with the seed it had.
    ///
    /// ```
    /// use sinew_nn::{Linear, Module};
    /// use sinew_optim::{Adam, ExponentialLr};
    /// use sinew_tensor::{DType, Generator, Tensor};
    /// use sinew_train::{Every, Loss, LrScheduleCallback, ModelCheckpoint, Trainer, Verbosity};
    ///
    /// let mut g = Generator::new(0);
    /// let x = Tensor::randn_with(&[40, 3], DType::F32, &mut g);
    /// let y = x.sum(&[1], true);
    /// let path = std::env::temp_dir().join(format!("doc-resume-{}.sinew", std::process::id()));
    /// let run = |epochs: usize, resume: bool| {
    ///     let model = Linear::new(3, 1, &mut Generator::new(1));
    ///     let mut opt = Adam::new(model.parameters(), 0.1);
    ///     let mut trainer = Trainer::new(&model, &mut opt, Loss::Mse)
    ///         .epochs(epochs)
    ///         .batch_size(8)
    ///         .callback(LrScheduleCallback::new(ExponentialLr { gamma: 0.9 }, Every::Epoch))
    ///         .callback(ModelCheckpoint::new(&path))
    ///         .verbosity(Verbosity::Quiet);
    ///     if resume {
    ///         trainer = trainer.resume_from(&path).unwrap();
    ///     }
    ///     let history = trainer.fit(&x, &y);
    ///     (model.weight.value().to_vec::<f32>(), history)
    /// };
    /// let (straight, history) = run(6, false);
    /// run(2, false);                          // interrupted after 2 epochs...
    /// let (resumed, history2) = run(6, true); // ...and continued from the file
    /// assert_eq!(straight, resumed);
    /// assert_eq!(history, history2);
    /// # std::fs::remove_file(&path).ok();
    /// ```
    ///
    /// Everything in the checkpoint is checked before anything is changed; on error the
    /// model, the optimizer and every callback are exactly as they were.
    ///
    /// # Errors
    /// If the state dict does not fit the model, the checkpoint has no optimizer state or
    /// it does not fit the optimizer, the trainer's entries in the metadata cannot be
    /// decoded or disagree with the checkpoint (a history of another length, implausible
    /// epoch or step counts), a saved callback state has no callback in this trainer or
    /// does not decode, or a restored callback state does not fit the model
    /// ([`Callback::check_resume`](crate::Callback::check_resume)).
    pub fn resume_from_checkpoint(mut self, checkpoint: &Checkpoint) -> Result<Self, ResumeError> {
        let saved = SavedTrainer::from_metadata(&checkpoint.metadata)?;
        let opt_state = checkpoint.optimizer.as_ref().ok_or(ResumeError::NoOptimizerState)?;
        let to_usize = |v: u64, what: &str| {
            if v > MAX_PLAUSIBLE_COUNT {
                return Err(ResumeError::Mismatch(format!(
                    "the checkpoint's {what} count {v} is not from a real run"
                )));
            }
            usize::try_from(v).map_err(|_| ResumeError::Mismatch(format!("{what} {v} does not fit in usize")))
        };
        let epoch = to_usize(checkpoint.epoch, "epoch")?;
        let step = to_usize(checkpoint.step, "step")?;
        if checkpoint.metadata.contains_key(KEY_HISTORY) && saved.history.len() != epoch {
            return Err(ResumeError::Mismatch(format!(
                "the checkpoint is after epoch {epoch} but its history holds {} epochs",
                saved.history.len()
            )));
        }
        // the model's random generators (Dropout's masks) must match by name; checked
        // before anything is loaded
        if let Some(saved_generators) = &saved.generators {
            let names = |v: &[(String, GeneratorState)]| v.iter().map(|(n, _)| n.clone()).collect::<Vec<_>>();
            let (ours, theirs) = (names(&self.model.generator_states()), names(saved_generators));
            if ours != theirs {
                return Err(ResumeError::Mismatch(format!(
                    "the model's random generators are {ours:?}, the checkpoint saved {theirs:?}"
                )));
            }
        }
        // check the model's state dict without loading it
        self.model
            .check_state_dict(checkpoint.model.as_slice(), true)
            .map_err(|report| ResumeError::Serialize(sinew_serialize::SerializeError::StateDict(report)))?;
        // then change things, each step refusing without change, and undo the earlier
        // ones if a later one refuses
        let optimizer_before = self.optimizer.state();
        self.optimizer.load_state(opt_state)?;
        let callbacks_before: Vec<Option<CallbackState>> = self.callbacks.iter().map(|c| c.state()).collect();
        let restored = restore_callbacks(&mut self.callbacks, &saved.callbacks)
            .and_then(|()| self.callbacks.iter().try_for_each(|c| c.check_resume(self.model)));
        if let Err(e) = restored {
            for (c, before) in self.callbacks.iter_mut().zip(&callbacks_before) {
                if let Some(state) = before {
                    c.load_state(state).expect("a callback takes back the state it gave");
                }
            }
            self.optimizer.load_state(&optimizer_before).expect("the optimizer takes back its own state");
            return Err(e);
        }
        checkpoint.model.load_into(self.model, true).expect("the state dict was checked above");
        if let Some(saved_generators) = &saved.generators {
            self.model.load_generator_states(saved_generators).expect("names checked above");
        }
        self.resume = Some(Resume { epoch, step, saved });
        Ok(self)
    }

    /// Runs the epochs over tensors whose dimension 0 indexes samples; returns the
    /// per-epoch logs.
    ///
    /// # Panics
    /// If `x` and `y` disagree on the number of samples, or as
    /// [`fit_dataset`](Trainer::fit_dataset).
    ///
    /// ```
    /// use sinew_nn::{Linear, Module};
    /// use sinew_optim::Sgd;
    /// use sinew_tensor::{Generator, Tensor};
    /// use sinew_train::{Loss, Trainer, Verbosity};
    /// // model.fit(x, y, epochs=3, batch_size=4): dimension 0 indexes the samples
    /// let x = Tensor::from_vec((0..8).map(|i| i as f32 / 8.0).collect(), &[8, 1])?;
    /// let y = x.mul_scalar(-1.0);
    /// let model = Linear::new(1, 1, &mut Generator::new(0));
    /// let mut opt = Sgd::new(model.parameters(), 0.2);
    /// let history = Trainer::new(&model, &mut opt, Loss::Mse).epochs(3).batch_size(4).verbosity(Verbosity::Quiet).fit(&x, &y);
    /// let loss = history.get("loss");
    /// assert_eq!(loss.len(), 3);
    /// assert!(loss[2] < loss[0]);
    /// # Ok::<(), sinew_tensor::TensorError>(())
    /// ```
    #[track_caller]
    pub fn fit(self, x: &Tensor, y: &Tensor) -> History {
        let n = x.dims().first().copied().unwrap_or(0);
        assert_eq!(
            y.dims().first().copied(),
            Some(n),
            "Trainer::fit: x has {n} samples but y has shape {:?}",
            y.dims()
        );
        if let Val::Split(f) = self.validation {
            // views, as before: validation batches are narrowed, not gathered
            let held = held_out(n, f);
            let keep = n - held;
            let train = TensorDataset::new(x.narrow(0, 0, keep), y.narrow(0, 0, keep));
            let val = Val::Tensors(x.narrow(0, keep, held), y.narrow(0, keep, held));
            return self.run(TrainData::Indexed(&train), Some(val));
        }
        let train = TensorDataset::new(x.clone(), y.clone());
        self.run(TrainData::Indexed(&train), None)
    }

    /// Runs the epochs over a [`Dataset`], batched by [`batch_size`](Trainer::batch_size)
    /// and shuffled by [`shuffle`](Trainer::shuffle) and [`seed`](Trainer::seed) exactly as
    /// [`fit`](Trainer::fit) does (each batch one [`get_batch`](Dataset::get_batch)). With
    /// [`validation_split`](Trainer::validation_split), the last samples are held out.
    ///
    /// ```
    /// use sinew_data::{Dataset, Sample};
    /// use sinew_nn::{Linear, Module};
    /// use sinew_optim::Sgd;
    /// use sinew_tensor::{Generator, Tensor};
    /// use sinew_train::{Loss, Trainer, Verbosity};
    ///
    /// /// y = 2x - 1 for x in [0, 1), generated on demand.
    /// struct Line(usize);
    /// impl Dataset for Line {
    ///     fn len(&self) -> usize {
    ///         self.0
    ///     }
    ///     fn get(&self, i: usize) -> Sample {
    ///         let x = i as f32 / self.0 as f32;
    ///         (Tensor::from_vec(vec![x], &[1]).unwrap(), Tensor::from_vec(vec![2.0 * x - 1.0], &[1]).unwrap())
    ///     }
    /// }
    ///
    /// let model = Linear::new(1, 1, &mut Generator::new(0));
    /// let mut opt = Sgd::new(model.parameters(), 0.5);
    /// let history = Trainer::new(&model, &mut opt, Loss::Mse)
    ///     .epochs(100)
    ///     .batch_size(16)
    ///     .validation_split(0.25)
    ///     .verbosity(Verbosity::Quiet)
    ///     .fit_dataset(&Line(64));
    /// assert!(history.get("val_loss")[99] < 1e-3);
    /// ```
    ///
    /// # Panics
    /// As [`fit_loader`](Trainer::fit_loader) when resuming.
    #[track_caller]
    pub fn fit_dataset<D: Dataset>(self, dataset: &D) -> History {
        if let Val::Split(f) = self.validation {
            let n = dataset.len();
            let keep = n - held_out(n, f);
            let whole: &dyn Dataset = dataset;
            let train = Subset::new(whole, (0..keep).collect());
            let val = Val::Dataset(Box::new(Subset::new(whole, (keep..n).collect())));
            return self.run(TrainData::Indexed(&train), Some(val));
        }
        self.run(TrainData::Indexed(dataset), None)
    }

    /// Runs the epochs over a [`DataLoader`]'s batches: epoch `e` is the loader's
    /// [`iter_epoch(e)`](DataLoader::iter_epoch), so its batch size, shuffling, seed,
    /// `drop_last`, collate function and worker threads apply (the trainer's
    /// `batch_size`, `shuffle` and `seed` do not). After each epoch the loader's epoch
    /// counter is set to the next one. Validate with
    /// [`validation_loader`](Trainer::validation_loader),
    /// [`validation_dataset`](Trainer::validation_dataset) or
    /// [`validation_data`](Trainer::validation_data).
    ///
    /// ```
    /// use sinew_data::{DataLoader, datasets, stratified_train_test_split};
    /// use sinew_nn::{Linear, Module, Relu, Sequential};
    /// use sinew_optim::Adam;
    /// use sinew_tensor::Generator;
    /// use sinew_train::{Loss, Trainer, Verbosity, metrics::Accuracy};
    ///
    /// let digits = datasets::digits().map_features(|x| x.div_scalar(16.0));
    /// let (train, val) = stratified_train_test_split(digits.targets(), 0.2, 0);
    /// let train = DataLoader::new(digits.select(&train), 64).shuffle(true).seed(1).num_workers(1);
    /// let val = DataLoader::new(digits.select(&val), 256);
    /// let mut g = Generator::new(0);
    /// let model = Sequential::new().add(Linear::new(64, 32, &mut g)).add(Relu).add(Linear::new(32, 10, &mut g));
    /// let mut opt = Adam::new(model.parameters(), 3e-3);
    /// let history = Trainer::new(&model, &mut opt, Loss::CrossEntropy)
    ///     .epochs(8)
    ///     .metric(Accuracy::default())
    ///     .validation_loader(&val)
    ///     .verbosity(Verbosity::Quiet)
    ///     .fit_loader(&train);
    /// assert!(history.get("val_accuracy")[7] > 0.9);
    /// assert_eq!(train.epoch(), 8);
    /// ```
    ///
    /// # Panics
    /// With [`validation_split`](Trainer::validation_split) (a loader's data cannot be
    /// split; use a separate validation loader); when resuming, if the loader shuffles
    /// with a seed other than the checkpoint's, or the checkpoint holds state for a
    /// callback this trainer does not have, or that a callback cannot read.
    #[track_caller]
    pub fn fit_loader<D: Dataset + 'static>(self, loader: &DataLoader<D>) -> History {
        assert!(
            !matches!(self.validation, Val::Split(_)),
            "Trainer::fit_loader: validation_split cannot split a DataLoader; \
             use validation_loader, validation_dataset or validation_data"
        );
        self.run(TrainData::Loader(loader), None)
    }

    /// The training loop every `fit` shares. `split_val` replaces the trainer's
    /// validation when the training data was split.
    #[track_caller]
    fn run<'d>(mut self, data: TrainData<'d>, split_val: Option<Val<'d>>) -> History
    where
        'a: 'd,
    {
        let validation: Val<'d> = split_val.unwrap_or(std::mem::replace(&mut self.validation, Val::None));
        let loader_seed = data.loader_seed();
        let start = self.restore(loader_seed);
        if start.stopped {
            // the interrupted run had already been stopped by a callback
            return start.history;
        }
        let dp = self.data_parallel;
        let shard = dp.map(|d| DistributedSampler::new(d.world_size(), d.rank()));
        let n_batches = data.num_batches(self.batch_size, shard.as_ref());
        let rank = dp.map_or(0, |d| d.rank());
        let verbosity = if rank == 0 { self.verbosity } else { Verbosity::Quiet };
        let mut run = Run {
            ctx: Context {
                model: self.model,
                optimizer: &mut *self.optimizer,
                stop_training: false,
                global_step: start.step,
                rank,
            },
            callbacks: std::mem::take(&mut self.callbacks),
            progress: Progress::new(verbosity, self.epochs),
            history: start.history,
            dp,
        };
        run.begin_training();
        for epoch in start.epoch..self.epochs {
            run.begin_epoch(epoch, n_batches, &mut self.metrics);
            let batches =
                data.epoch_batches(epoch, self.batch_size, self.shuffle.then_some(self.seed), shard.as_ref());
            let mut logs = run.train_epoch(&self.loss, &mut self.metrics, batches);
            data.finish_epoch(epoch);
            logs.extend(validation.validate(
                epoch,
                self.model,
                &self.loss,
                &mut self.metrics,
                self.batch_size,
                dp,
            ));
            run.end_epoch(epoch, logs, self.seed, loader_seed);
            if run.ctx.stop_training {
                break;
            }
        }
        run.end_training()
    }

    /// Where the run starts: at `initial_epoch` with an empty history, or, after
    /// [`resume_from`](Trainer::resume_from), where the checkpoint left off (its epoch,
    /// step, history and stop flag; its seed replaces the trainer's).
    ///
    /// # Panics
    /// If the training loader shuffles with a seed other than the checkpoint's.
    #[track_caller]
    fn restore(&mut self, loader_seed: Option<u64>) -> Start {
        let mut start =
            Start { epoch: self.initial_epoch, step: 0, history: History::default(), stopped: false };
        if let Some(resume) = self.resume.take() {
            let saved = resume.saved;
            if let Some(seed) = saved.seed {
                self.seed = seed;
            }
            if let (Some(want), Some(have)) = (saved.loader_seed, loader_seed) {
                assert_eq!(
                    want, have,
                    "Trainer: resuming: the checkpoint's training DataLoader shuffled with seed {want}, \
                     this one with {have}; build the loader with .seed({want})"
                );
            }
            start.history.epochs = saved.history;
            start.epoch = resume.epoch;
            start.step = resume.step;
            start.stopped = saved.stopped;
        }
        start
    }
}

/// Where a run starts ([`Trainer::restore`]).
struct Start {
    epoch: usize,
    step: usize,
    history: History,
    /// The interrupted run had already been stopped by a callback.
    stopped: bool,
}

/// What the steps of a run share once it has begun: the callbacks' context (model,
/// optimizer, step count, stop flag), the callbacks, the progress display and the history.
struct Run<'t, 'c> {
    ctx: Context<'t>,
    callbacks: Vec<Box<dyn Callback + 'c>>,
    progress: Progress,
    history: History,
    /// The data-parallel job this run is one rank of.
    dp: Option<&'t dyn DataParallel>,
}

impl Run<'_, '_> {
    /// Every callback's `on_train_begin`, then the model in training mode.
    fn begin_training(&mut self) {
        for c in self.callbacks.iter_mut() {
            c.on_train_begin(&mut self.ctx);
        }
        self.ctx.model.train();
    }

    /// Every callback's `on_epoch_begin`, the progress display's new epoch, and the
    /// training metrics reset.
    fn begin_epoch(&mut self, epoch: usize, n_batches: usize, metrics: &mut [Box<dyn Metric + '_>]) {
        for c in self.callbacks.iter_mut() {
            c.on_epoch_begin(epoch, &mut self.ctx);
        }
        self.progress.epoch_begin(epoch, n_batches);
        for m in metrics.iter_mut() {
            m.reset();
        }
    }

    /// One pass over an epoch's batches: forward, loss, backward and optimizer step for
    /// each, with the metrics, the progress display and every callback's `on_batch_end`
    /// after it; stops early when a callback asks to. Returns the epoch's training logs:
    /// the mean loss over samples, each metric, and the learning rate.
    #[track_caller]
    fn train_epoch(
        &mut self,
        loss_fn: &Loss,
        metrics: &mut [Box<dyn Metric + '_>],
        batches: impl Iterator<Item = Sample>,
    ) -> Logs {
        let ctx = &mut self.ctx;
        let (mut loss_sum, mut seen) = (0.0, 0usize);
        for (xb, yb) in batches {
            let len = xb.dims().first().copied().unwrap_or(1);
            let pred = ctx.model.forward(&Var::constant(xb));
            let loss = loss_fn.compute(&pred, &yb);
            let grads = match self.dp {
                Some(dp) => dp.backward(&loss),
                None => loss.backward(),
            };
            let (l, pred) = (loss.item(), pred.value().clone());
            // drop the graph before the step: it holds the parameters' values, and the
            // optimizer updates them in place only when nothing else does
            drop(loss);
            ctx.optimizer.step(&grads);
            ctx.global_step += 1;
            loss_sum += l * len as f64;
            seen += len;
            for m in metrics.iter_mut() {
                m.update(&pred, &yb);
            }
            self.progress.batch_end(loss_sum / seen as f64);
            for c in self.callbacks.iter_mut() {
                c.on_batch_end(ctx.global_step, l, ctx);
            }
            if let Some(dp) = self.dp {
                // a callback may stop on one rank only (a NaN loss there): all stop together,
                // or the others would wait in the next step's reduction forever
                ctx.stop_training = any_rank(dp, ctx.stop_training);
            }
            if ctx.stop_training {
                break;
            }
        }
        if let Some(dp) = self.dp {
            (loss_sum, seen) = combine(dp, loss_sum, seen, metrics);
        }
        let mut logs = Logs::new();
        logs.insert("loss".into(), loss_sum / seen.max(1) as f64);
        for m in metrics.iter() {
            logs.insert(m.name(), m.value());
        }
        logs.insert("lr".into(), ctx.optimizer.lr());
        logs
    }

    /// Every callback's `on_epoch_end` (which may add to `logs`), the progress display's
    /// summary, the logs into the history, and, if a callback wants one, a checkpoint of
    /// the whole run for the callbacks that do.
    fn end_epoch(&mut self, epoch: usize, mut logs: Logs, seed: u64, loader_seed: Option<u64>) {
        for c in self.callbacks.iter_mut() {
            c.on_epoch_end(epoch, &mut logs, &mut self.ctx);
        }
        if let Some(dp) = self.dp {
            self.ctx.stop_training = any_rank(dp, self.ctx.stop_training);
        }
        self.progress.epoch_end(epoch, &logs);
        self.history.epochs.push(logs);
        // files are written by rank 0 alone
        if self.ctx.rank == 0 && self.callbacks.iter().any(|c| c.wants_checkpoint()) {
            let ckpt = snapshot(&self.ctx, epoch + 1, seed, loader_seed, &self.history, &self.callbacks);
            for c in self.callbacks.iter_mut().filter(|c| c.wants_checkpoint()) {
                c.on_checkpoint(epoch, &ckpt);
            }
        }
    }

    /// Every callback's `on_train_end`; returns the history.
    fn end_training(mut self) -> History {
        for c in self.callbacks.iter_mut() {
            c.on_train_end(&mut self.ctx);
        }
        self.history
    }
}

impl TrainData<'_> {
    /// Batches per epoch (of this rank's shard, if it is one of a data-parallel job).
    fn num_batches(&self, batch_size: usize, shard: Option<&DistributedSampler>) -> usize {
        match self {
            TrainData::Indexed(ds) => match shard {
                Some(s) => s.num_samples(ds.len()).div_ceil(batch_size),
                None => ds.len().div_ceil(batch_size),
            },
            TrainData::Loader(l) => l.num_batches(),
        }
    }

    /// The training loader's seed, if it shuffles (saved in checkpoints, and checked when
    /// resuming).
    fn loader_seed(&self) -> Option<u64> {
        match self {
            TrainData::Loader(l) => l.shuffle_seed(),
            TrainData::Indexed(_) => None,
        }
    }

    /// The batches of `epoch`: a dataset's samples in chunks of `batch_size`, in a
    /// Fisher-Yates order drawn from `shuffle_seed` and the epoch number (in order without
    /// one), or, for one rank of a data-parallel job, the chunks of this rank's `shard` of
    /// that order; or a loader's batches of that epoch.
    fn epoch_batches(
        &self,
        epoch: usize,
        batch_size: usize,
        shuffle_seed: Option<u64>,
        shard: Option<&DistributedSampler>,
    ) -> Box<dyn Iterator<Item = Sample> + '_> {
        match self {
            TrainData::Indexed(ds) => {
                let mut order: Vec<usize> = (0..ds.len()).collect();
                if let Some(seed) = shuffle_seed {
                    Generator::new(seed ^ (epoch as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15))
                        .shuffle(&mut order);
                }
                if let Some(s) = shard {
                    order = s.shard(order);
                }
                let bs = batch_size;
                let ds = *ds;
                Box::new(
                    (0..order.len().div_ceil(bs))
                        .map(move |b| ds.get_batch(&order[b * bs..((b + 1) * bs).min(order.len())])),
                )
            }
            TrainData::Loader(l) => l.epoch_batches(epoch as u64),
        }
    }

    /// After `epoch`: a loader moves on to the next epoch.
    fn finish_epoch(&self, epoch: usize) {
        if let TrainData::Loader(l) = self {
            l.set_epoch(epoch as u64 + 1);
        }
    }
}

impl Val<'_> {
    /// The validation pass after `epoch`: the loss and metrics on the validation data,
    /// named `val_*`, with the model back in training mode afterwards; no logs without
    /// validation data (the `fit`s turn a split into data before the run).
    #[track_caller]
    fn validate(
        &self,
        epoch: usize,
        model: &dyn Forward,
        loss: &Loss,
        metrics: &mut [Box<dyn Metric + '_>],
        batch_size: usize,
        dp: Option<&dyn DataParallel>,
    ) -> Logs {
        let Some(logs) = self.evaluate(epoch, model, loss, metrics, batch_size, dp) else {
            return Logs::new();
        };
        model.train();
        logs.into_iter().map(|(k, value)| (format!("val_{k}"), value)).collect()
    }

    /// The loss and metrics on the validation data after `epoch`, in evaluation mode, or
    /// `None` without validation data. On a rank of a data-parallel job, each rank
    /// evaluates every `world_size`-th sample from its rank (a loader: its batches, as
    /// they are) and the sums are combined over the ranks.
    #[track_caller]
    fn evaluate(
        &self,
        epoch: usize,
        model: &dyn Forward,
        loss: &Loss,
        metrics: &mut [Box<dyn Metric + '_>],
        batch_size: usize,
        dp: Option<&dyn DataParallel>,
    ) -> Option<Logs> {
        let bs = batch_size.max(1);
        // this rank's samples: all of them, or every world_size-th from its rank (no
        // padding here: a repeated sample would count twice)
        let (rank, size) = dp.map_or((0, 1), |d| (d.rank(), d.world_size()));
        let (sum, seen) = match self {
            Val::None | Val::Split(_) => return None,
            Val::Tensors(vx, vy) => {
                let n = vx.dims().first().copied().unwrap_or(0);
                let start = rank.min(n);
                let (vx, vy) = (vx.slice(0, start, n, size), vy.slice(0, start, n, size)); // views
                evaluate_sums(model, tensor_batches(&vx, &vy, bs), loss, metrics)
            }
            Val::Dataset(ds) => {
                let idx: Vec<usize> = (rank..ds.len()).step_by(size).collect();
                evaluate_sums(model, idx.chunks(bs).map(|chunk| ds.get_batch(chunk)), loss, metrics)
            }
            Val::Loader(l) => evaluate_sums(model, l.epoch_batches(epoch as u64), loss, metrics),
        };
        let (sum, seen) = match dp {
            Some(dp) => combine(dp, sum, seen, metrics),
            None => (sum, seen),
        };
        Some(logs_of(sum, seen, metrics))
    }
}

/// The number of samples `validation_split(fraction)` holds out.
fn held_out(n: usize, fraction: f64) -> usize {
    (((n as f64) * fraction.clamp(0.0, 1.0)).round() as usize).min(n)
}

/// The whole run after `epochs_done` epochs, as a checkpoint.
fn snapshot(
    ctx: &Context<'_>,
    epochs_done: usize,
    seed: u64,
    loader_seed: Option<u64>,
    history: &History,
    callbacks: &[Box<dyn Callback + '_>],
) -> Checkpoint {
    let mut metadata = BTreeMap::new();
    metadata.insert(KEY_VERSION.to_string(), "1".to_string());
    metadata.insert(KEY_SEED.to_string(), seed.to_string());
    if let Some(s) = loader_seed {
        metadata.insert(KEY_LOADER_SEED.to_string(), s.to_string());
    }
    metadata.insert(KEY_STOPPED.to_string(), ctx.stop_training.to_string());
    metadata.insert(KEY_HISTORY.to_string(), encode_history(&history.epochs));
    let states: Vec<(String, Option<CallbackState>)> =
        callbacks.iter().map(|c| (c.name(), c.state())).collect();
    metadata.insert(KEY_CALLBACKS.to_string(), encode_callbacks(&states));
    metadata.insert(KEY_GENERATORS.to_string(), encode_generators(&ctx.model.generator_states()));
    Checkpoint {
        model: StateDict::from(ctx.model.state_dict()),
        optimizer: Some(ctx.optimizer.state()),
        scheduler: None,
        epoch: epochs_done as u64,
        step: ctx.global_step as u64,
        rng: None,
        metadata,
    }
}

/// Gives each callback the state saved under its name and rank among callbacks of that
/// name. Every saved state must find its callback.
fn restore_callbacks(
    callbacks: &mut [Box<dyn Callback + '_>],
    saved: &[(String, Option<CallbackState>)],
) -> Result<(), ResumeError> {
    let rank = |names: &[String]| -> Vec<(String, usize)> {
        let mut seen: BTreeMap<&str, usize> = BTreeMap::new();
        names
            .iter()
            .map(|n| {
                let r = seen.entry(n).or_insert(0);
                *r += 1;
                (n.clone(), *r - 1)
            })
            .collect()
    };
    let saved_keys = rank(&saved.iter().map(|(n, _)| n.clone()).collect::<Vec<_>>());
    let ours = rank(&callbacks.iter().map(|c| c.name()).collect::<Vec<_>>());
    for (key, (_, state)) in saved_keys.iter().zip(saved) {
        let Some(state) = state else { continue };
        let Some(i) = ours.iter().position(|k| k == key) else {
            return Err(ResumeError::Mismatch(format!(
                "the checkpoint holds the state of callback `{}` (number {} of that name), which this \
                 trainer does not have; add the callbacks of the interrupted run",
                key.0,
                key.1 + 1
            )));
        };
        callbacks[i].load_state(state).map_err(|e| match e {
            ResumeError::Decode { what, msg } => {
                ResumeError::Decode { what: format!("the state of callback `{}` ({what})", key.0), msg }
            }
            other => other,
        })?;
    }
    Ok(())
}

/// The loss and metrics of `model` on `(x, y)` in evaluation mode, without recording a
/// graph (Keras' `evaluate`), in batches of `batch_size` rows. Leaves the model in
/// evaluation mode.
///
/// ```
/// use sinew_nn::Linear;
/// use sinew_tensor::{Generator, Tensor};
/// use sinew_train::metrics::{Mae, Metric};
/// use sinew_train::{Loss, evaluate};
/// // y = x exactly, except the second target is off by 2
/// let model = Linear::new(1, 1, &mut Generator::new(0));
/// model.weight.set_value(Tensor::ones(&[1, 1]));
/// model.bias.as_ref().unwrap().set_value(Tensor::zeros(&[1]));
/// let (x, y) = (Tensor::from([[1.0f32], [2.0]]), Tensor::from([[1.0f32], [4.0]]));
/// let mut metrics: Vec<Box<dyn Metric>> = vec![Box::new(Mae::default())];
/// let logs = evaluate(&model, &x, &y, &Loss::Mse, &mut metrics, 1);
/// assert_eq!(logs["loss"], 2.0); // (0² + 2²) / 2
/// assert_eq!(logs["mae"], 1.0);
/// ```
pub fn evaluate(
    model: &dyn Forward,
    x: &Tensor,
    y: &Tensor,
    loss: &Loss,
    metrics: &mut [Box<dyn Metric + '_>],
    batch_size: usize,
) -> Logs {
    evaluate_batches(model, tensor_batches(x, y, batch_size.max(1)), loss, metrics)
}

/// `(x, y)` in batches of `batch_size` rows (narrowed views).
fn tensor_batches<'t>(x: &'t Tensor, y: &'t Tensor, batch_size: usize) -> impl Iterator<Item = Sample> + 't {
    let n = x.dims().first().copied().unwrap_or(0);
    (0..n).step_by(batch_size).map(move |start| {
        let len = batch_size.min(n - start);
        (x.narrow(0, start, len), y.narrow(0, start, len))
    })
}

/// The loss and metrics of `model` over batches of `(features, targets)`, a
/// [`DataLoader`] for one, in evaluation mode without recording a graph. The loss is the
/// mean over samples (each batch's weighted by its size). Leaves the model in evaluation
/// mode.
///
/// ```
/// use sinew_data::{DataLoader, datasets};
/// use sinew_nn::Linear;
/// use sinew_tensor::Generator;
/// use sinew_train::metrics::{Accuracy, Metric};
/// use sinew_train::{Loss, evaluate, evaluate_batches};
///
/// let iris = datasets::iris();
/// let model = Linear::new(4, 3, &mut Generator::new(0));
/// let mut metrics: Vec<Box<dyn Metric>> = vec![Box::new(Accuracy::default())];
/// let by_loader = evaluate_batches(&model, &DataLoader::new(iris.clone(), 32), &Loss::CrossEntropy, &mut metrics);
/// let by_tensors = evaluate(&model, iris.features(), iris.targets(), &Loss::CrossEntropy, &mut metrics, 32);
/// assert_eq!(by_loader, by_tensors);
/// ```
pub fn evaluate_batches(
    model: &dyn Forward,
    batches: impl IntoIterator<Item = Sample>,
    loss: &Loss,
    metrics: &mut [Box<dyn Metric + '_>],
) -> Logs {
    let (sum, seen) = evaluate_sums(model, batches, loss, metrics);
    logs_of(sum, seen, metrics)
}

/// [`evaluate_batches`]' pass: the metrics updated, and the loss summed over samples
/// with the number of samples.
fn evaluate_sums(
    model: &dyn Forward,
    batches: impl IntoIterator<Item = Sample>,
    loss: &Loss,
    metrics: &mut [Box<dyn Metric + '_>],
) -> (f64, usize) {
    model.eval();
    for m in metrics.iter_mut() {
        m.reset();
    }
    let (mut sum, mut seen) = (0.0, 0usize);
    no_grad(|| {
        for (xb, yb) in batches {
            let len = xb.dims().first().copied().unwrap_or(1);
            let pred = model.forward(&Var::constant(xb));
            sum += loss.compute(&pred, &yb).item() * len as f64;
            seen += len;
            for m in metrics.iter_mut() {
                m.update(pred.value(), &yb);
            }
        }
    });
    (sum, seen)
}

/// The logs of an evaluation: the mean loss and each metric's value.
fn logs_of(sum: f64, seen: usize, metrics: &[Box<dyn Metric + '_>]) -> Logs {
    let mut logs = Logs::new();
    logs.insert("loss".into(), sum / seen.max(1) as f64);
    for m in metrics.iter() {
        logs.insert(m.name(), m.value());
    }
    logs
}

/// The model's outputs for `x`, batch by batch, in evaluation mode without a graph
/// (Keras' `predict`). Leaves the model in evaluation mode.
///
/// ```
/// use sinew_nn::Linear;
/// use sinew_tensor::{Generator, Tensor};
/// use sinew_train::predict;
/// let model = Linear::new(1, 1, &mut Generator::new(0));
/// model.weight.set_value(Tensor::from([[2.0f32]]));
/// model.bias.as_ref().unwrap().set_value(Tensor::ones(&[1]));
/// // model.predict(x, batch_size=2): batches of 2 and 1, concatenated
/// let y = predict(&model, &Tensor::from([[0.0f32], [1.0], [2.0]]), 2);
/// assert_eq!(y.dims(), &[3, 1]);
/// assert_eq!(y.to_vec::<f32>(), vec![1.0, 3.0, 5.0]);
/// ```
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

impl std::fmt::Debug for Loss {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Loss::Mse => f.write_str("Mse"),
            Loss::L1 => f.write_str("L1"),
            Loss::CrossEntropy => f.write_str("CrossEntropy"),
            Loss::BinaryCrossEntropyWithLogits => f.write_str("BinaryCrossEntropyWithLogits"),
            Loss::Custom(_) => f.write_str("Custom(..)"),
        }
    }
}

/// The settings, and the names of the metrics and callbacks.
impl std::fmt::Debug for Trainer<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Trainer")
            .field("loss", &self.loss)
            .field("epochs", &self.epochs)
            .field("initial_epoch", &self.initial_epoch)
            .field("batch_size", &self.batch_size)
            .field("shuffle", &self.shuffle)
            .field("seed", &self.seed)
            .field("metrics", &self.metrics.iter().map(|m| m.name()).collect::<Vec<_>>())
            .field("callbacks", &self.callbacks.iter().map(|c| c.name()).collect::<Vec<_>>())
            .field("verbosity", &self.verbosity)
            .field("resuming", &self.resume.is_some())
            .finish_non_exhaustive()
    }
}

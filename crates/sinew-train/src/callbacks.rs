//! Callbacks: code that runs at the edges of training (Keras' callbacks).
//! [`EarlyStopping`], [`ModelCheckpoint`], [`LrScheduleCallback`], [`ReduceLrOnPlateauCallback`],
//! [`TerminateOnNaN`] and [`CsvLogger`]; implement [`Callback`] for your own.
//!
//! A callback that counts or remembers something saves it with [`Callback::state`] and
//! restores it with [`Callback::load_state`], so a run resumed from a checkpoint
//! ([`Trainer::resume_from`](crate::Trainer::resume_from)) continues exactly.

use std::io::Write;
use std::path::PathBuf;

use sinew_nn::Forward;
use sinew_optim::{LrSchedule, Optimizer, PlateauMode, ReduceLrOnPlateau, StateTensor};
use sinew_serialize::Checkpoint;
use sinew_tensor::Tensor;

use crate::history::Logs;
use crate::state::{CallbackState, ResumeError};

/// What a callback can see and change during training.
pub struct Context<'a> {
    /// The model being trained.
    pub model: &'a dyn Forward,
    /// Its optimizer (learning rates can be changed here).
    pub optimizer: &'a mut dyn Optimizer,
    /// Set to stop training after the current epoch.
    pub stop_training: bool,
    /// Optimizer steps taken so far.
    pub global_step: usize,
    /// This process's rank in a data-parallel job (0 otherwise): callbacks that write
    /// files or print do so on rank 0 only.
    pub rank: usize,
}

impl Context<'_> {
    /// Whether this process is rank 0 of its job (or not part of one): the one that
    /// writes files and prints.
    pub fn is_root(&self) -> bool {
        self.rank == 0
    }
}

/// Hooks called by [`Trainer::fit`](crate::Trainer::fit). Every method has a default that
/// does nothing.
///
/// Order at the end of an epoch: every callback's [`on_epoch_end`](Callback::on_epoch_end)
/// (in the order they were added), then, if any callback
/// [`wants_checkpoint`](Callback::wants_checkpoint), a [`Checkpoint`] of the whole run
/// (model, optimizer, epoch, step, history, every callback's [`state`](Callback::state)) is
/// built once and handed to those callbacks' [`on_checkpoint`](Callback::on_checkpoint).
///
/// `fit` takes its callbacks by value, but `&mut C` is a callback when `C` is: lend one to
/// read it after training.
///
/// ```
/// use sinew_nn::{Linear, Module};
/// use sinew_optim::Sgd;
/// use sinew_tensor::{DType, Generator, Tensor};
/// use sinew_train::{EarlyStopping, Loss, Trainer, Verbosity};
///
/// let mut g = Generator::new(2);
/// let x = Tensor::randn_with(&[64, 4], DType::F32, &mut g);
/// let y = x.sum(&[1], true);
/// let model = Linear::new(4, 1, &mut g);
/// let mut opt = Sgd::new(model.parameters(), 0.05);
/// let mut stop = EarlyStopping::new("loss", 3).min_delta(1e-3);
/// let history = Trainer::new(&model, &mut opt, Loss::Mse)
///     .epochs(500)
///     .batch_size(16)
///     .callback(&mut stop) // lent, not given
///     .verbosity(Verbosity::Quiet)
///     .fit(&x, &y);
/// // the callback is still ours
/// let stopped = stop.stopped_epoch.expect("should have stopped early");
/// assert_eq!(history.len(), stopped + 1);
/// let losses = history.get("loss");
/// let best = stop.best().unwrap();
/// assert!(losses.contains(&best) && best < losses[0]);
/// assert_eq!(stop.wait(), 3); // the patience it ran out of
/// assert_eq!(losses[stop.best_epoch().unwrap()], best);
/// ```
///
/// A callback with state saves it as serde data, so a resumed run continues exactly:
///
/// ```
/// use sinew_train::{Callback, CallbackState, Context, Logs, ResumeError};
///
/// /// Counts the epochs whose loss went up.
/// #[derive(Default)]
/// struct Worse {
///     last: Option<f64>,
///     count: usize,
/// }
///
/// impl Callback for Worse {
///     fn on_epoch_end(&mut self, _epoch: usize, logs: &mut Logs, _ctx: &mut Context<'_>) {
///         let loss = logs["loss"];
///         self.count += usize::from(self.last.is_some_and(|l| loss > l));
///         self.last = Some(loss);
///     }
///     fn state(&self) -> Option<CallbackState> {
///         Some(CallbackState::encode(&(self.last, self.count)))
///     }
///     fn load_state(&mut self, state: &CallbackState) -> Result<(), ResumeError> {
///         (self.last, self.count) = state.decode()?;
///         Ok(())
///     }
/// }
///
/// let before = Worse { last: Some(0.5), count: 2 };
/// let mut after = Worse::default();
/// after.load_state(&before.state().unwrap())?;
/// assert_eq!((after.last, after.count), (Some(0.5), 2));
/// # Ok::<(), ResumeError>(())
/// ```
pub trait Callback: Send {
    /// Before the first epoch (after any state restored by
    /// [`load_state`](Callback::load_state)).
    fn on_train_begin(&mut self, ctx: &mut Context<'_>) {
        let _ = ctx;
    }
    /// Before each epoch (0-based).
    fn on_epoch_begin(&mut self, epoch: usize, ctx: &mut Context<'_>) {
        let _ = (epoch, ctx);
    }
    /// After each optimizer step, with the batch's loss.
    fn on_batch_end(&mut self, step: usize, loss: f64, ctx: &mut Context<'_>) {
        let _ = (step, loss, ctx);
    }
    /// After each epoch, with its logs (`loss`, metrics, `val_*`, `lr`); may add entries.
    fn on_epoch_end(&mut self, epoch: usize, logs: &mut Logs, ctx: &mut Context<'_>) {
        let _ = (epoch, logs, ctx);
    }
    /// After the last epoch.
    fn on_train_end(&mut self, ctx: &mut Context<'_>) {
        let _ = ctx;
    }

    /// The name its state is saved under in a checkpoint (by default the type's name).
    /// Two callbacks of one type are told apart by their order.
    fn name(&self) -> String {
        std::any::type_name::<Self>().to_string()
    }
    /// What it must remember across a checkpoint (counters, best values), or `None` if
    /// nothing (the default).
    fn state(&self) -> Option<CallbackState> {
        None
    }
    /// Restores what [`state`](Callback::state) saved; called before
    /// [`on_train_begin`](Callback::on_train_begin) when resuming.
    ///
    /// # Errors
    /// If `state` is not what this callback saves ([`CallbackState::decode`]'s error).
    fn load_state(&mut self, state: &CallbackState) -> Result<(), ResumeError> {
        let _ = state;
        Ok(())
    }
    /// After [`load_state`](Callback::load_state), when resuming: checks that the
    /// restored state fits the model it will act on (saved weights of the right names,
    /// shapes and dtypes), so that a checkpoint that does not fit is refused by
    /// [`Trainer::resume_from`](crate::Trainer::resume_from) instead of failing epochs
    /// later. The default accepts.
    ///
    /// # Errors
    /// [`ResumeError::Mismatch`] saying what does not fit.
    fn check_resume(&self, model: &dyn Forward) -> Result<(), ResumeError> {
        let _ = model;
        Ok(())
    }
    /// Whether it wants a [`Checkpoint`] of the run at the end of this epoch (asked after
    /// every callback's [`on_epoch_end`](Callback::on_epoch_end)).
    fn wants_checkpoint(&self) -> bool {
        false
    }
    /// Receives the checkpoint it asked for: the run as it stands after epoch `epoch`,
    /// ready to [`save`](Checkpoint::save) and to resume from.
    fn on_checkpoint(&mut self, epoch: usize, checkpoint: &Checkpoint) {
        let _ = (epoch, checkpoint);
    }
}

macro_rules! forward_callback {
    () => {
        fn on_train_begin(&mut self, ctx: &mut Context<'_>) {
            (**self).on_train_begin(ctx)
        }
        fn on_epoch_begin(&mut self, epoch: usize, ctx: &mut Context<'_>) {
            (**self).on_epoch_begin(epoch, ctx)
        }
        fn on_batch_end(&mut self, step: usize, loss: f64, ctx: &mut Context<'_>) {
            (**self).on_batch_end(step, loss, ctx)
        }
        fn on_epoch_end(&mut self, epoch: usize, logs: &mut Logs, ctx: &mut Context<'_>) {
            (**self).on_epoch_end(epoch, logs, ctx)
        }
        fn on_train_end(&mut self, ctx: &mut Context<'_>) {
            (**self).on_train_end(ctx)
        }
        fn name(&self) -> String {
            (**self).name()
        }
        fn state(&self) -> Option<CallbackState> {
            (**self).state()
        }
        fn load_state(&mut self, state: &CallbackState) -> Result<(), ResumeError> {
            (**self).load_state(state)
        }
        fn check_resume(&self, model: &dyn Forward) -> Result<(), ResumeError> {
            (**self).check_resume(model)
        }
        fn wants_checkpoint(&self) -> bool {
            (**self).wants_checkpoint()
        }
        fn on_checkpoint(&mut self, epoch: usize, checkpoint: &Checkpoint) {
            (**self).on_checkpoint(epoch, checkpoint)
        }
    };
}

/// A borrowed callback is a callback (see [`Callback`]'s example): it stays the caller's,
/// to read after `fit`.
impl<C: Callback + ?Sized> Callback for &mut C {
    forward_callback!();
}

/// A boxed callback is a callback.
impl<C: Callback + ?Sized> Callback for Box<C> {
    forward_callback!();
}

/// Whether a monitored quantity improves downwards (losses) or upwards (accuracies);
/// `Auto` decides by name (`acc`, `f1`, `precision`, `recall`, `r2` go up).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Mode {
    /// Guess from the name.
    #[default]
    Auto,
    /// Lower is better.
    Min,
    /// Higher is better.
    Max,
}

impl Mode {
    fn resolve(self, monitor: &str) -> Mode {
        match self {
            Mode::Auto if ["acc", "f1", "precision", "recall", "r2"].iter().any(|k| monitor.contains(k)) => {
                Mode::Max
            }
            Mode::Auto => Mode::Min,
            m => m,
        }
    }

    fn better(self, value: f64, best: f64, min_delta: f64) -> bool {
        match self {
            Mode::Max => value > best + min_delta,
            _ => value < best - min_delta,
        }
    }
}

/// Stops training when a monitored quantity stops improving (Keras' `EarlyStopping`),
/// optionally restoring the weights of the best epoch.
///
/// ```
/// use sinew_train::EarlyStopping;
/// let stop = EarlyStopping::new("val_loss", 5).min_delta(1e-4).restore_best_weights(true);
/// ```
pub struct EarlyStopping {
    monitor: String,
    patience: usize,
    min_delta: f64,
    mode: Mode,
    restore_best: bool,
    best: Option<f64>,
    wait: usize,
    best_weights: Option<Vec<(String, Tensor)>>,
    best_epoch: Option<usize>,
    verbose: bool,
    /// The epoch training stopped at, if it did.
    pub stopped_epoch: Option<usize>,
}

impl EarlyStopping {
    /// Stops after `patience` epochs without improvement of `monitor`.
    ///
    /// ```
    /// use sinew_nn::{Linear, Module};
    /// use sinew_optim::Sgd;
    /// use sinew_tensor::{Generator, Tensor};
    /// use sinew_train::{EarlyStopping, Loss, Trainer, Verbosity};
    /// let x = Tensor::from_vec(vec![0.0f32, 1.0, 2.0, 3.0], &[4, 1])?;
    /// let model = Linear::new(1, 1, &mut Generator::new(0));
    /// let mut opt = Sgd::new(model.parameters(), 0.0); // a model that no longer learns
    /// // keras.callbacks.EarlyStopping(monitor="val_loss", patience=2)
    /// let mut stop = EarlyStopping::new("val_loss", 2).verbose(false);
    /// let history = Trainer::new(&model, &mut opt, Loss::Mse)
    ///     .epochs(100)
    ///     .validation_data(&x, &x)
    ///     .callback(&mut stop)
    ///     .verbosity(Verbosity::Quiet)
    ///     .fit(&x, &x);
    /// // epoch 0 sets the best value; epochs 1 and 2 do not improve on it: stop
    /// assert_eq!(history.len(), 3);
    /// assert_eq!(stop.stopped_epoch, Some(2));
    /// assert_eq!(stop.best_epoch(), Some(0));
    /// # Ok::<(), sinew_tensor::TensorError>(())
    /// ```
    pub fn new(monitor: &str, patience: usize) -> Self {
        EarlyStopping {
            monitor: monitor.to_string(),
            patience,
            min_delta: 0.0,
            mode: Mode::Auto,
            restore_best: false,
            best: None,
            wait: 0,
            best_weights: None,
            best_epoch: None,
            verbose: true,
            stopped_epoch: None,
        }
    }
    /// Whether it says so on stderr when it stops training and when it restores the best
    /// weights, as Keras' `EarlyStopping(verbose=1)` does (default on).
    ///
    /// ```
    /// let quiet = sinew_train::EarlyStopping::new("val_loss", 3).verbose(false);
    /// ```
    pub fn verbose(mut self, on: bool) -> Self {
        self.verbose = on;
        self
    }
    /// The epoch (0-based) of the best value so far (Keras' `best_epoch`).
    ///
    /// ```
    /// assert_eq!(sinew_train::EarlyStopping::new("val_loss", 5).best_epoch(), None);
    /// ```
    pub fn best_epoch(&self) -> Option<usize> {
        self.best_epoch
    }
    /// The smallest change that counts as an improvement.
    ///
    /// ```
    /// use sinew_nn::{Linear, Module};
    /// use sinew_optim::Sgd;
    /// use sinew_tensor::{Generator, Tensor};
    /// use sinew_train::{EarlyStopping, Loss, Trainer, Verbosity};
    /// let x = Tensor::from_vec(vec![0.0f32, 1.0, 2.0, 3.0], &[4, 1])?;
    /// let model = Linear::new(1, 1, &mut Generator::new(0));
    /// let mut opt = Sgd::new(model.parameters(), 1e-4); // learning, but slowly
    /// let mut stop = EarlyStopping::new("loss", 1).min_delta(0.1).verbose(false);
    /// let history = Trainer::new(&model, &mut opt, Loss::Mse)
    ///     .epochs(100)
    ///     .callback(&mut stop)
    ///     .verbosity(Verbosity::Quiet)
    ///     .fit(&x, &x);
    /// // the loss falls every epoch, but by less than 0.1, which does not count
    /// let loss = history.get("loss");
    /// assert!(loss[1] < loss[0] && loss[0] - loss[1] < 0.1);
    /// assert_eq!(history.len(), 2);
    /// # Ok::<(), sinew_tensor::TensorError>(())
    /// ```
    pub fn min_delta(mut self, d: f64) -> Self {
        self.min_delta = d.abs();
        self
    }
    /// Min, max or auto.
    ///
    /// ```
    /// use sinew_nn::{Linear, Module};
    /// use sinew_optim::Sgd;
    /// use sinew_tensor::{Generator, Tensor};
    /// use sinew_train::{EarlyStopping, Loss, Mode, Trainer, Verbosity};
    /// let x = Tensor::from_vec(vec![0.0f32, 1.0, 2.0, 3.0], &[4, 1])?;
    /// let model = Linear::new(1, 1, &mut Generator::new(0));
    /// let mut opt = Sgd::new(model.parameters(), 0.05);
    /// // Auto reads "loss" as lower-is-better; Max says higher is: a falling loss never improves
    /// let mut stop = EarlyStopping::new("loss", 2).mode(Mode::Max).verbose(false);
    /// let history = Trainer::new(&model, &mut opt, Loss::Mse)
    ///     .epochs(100)
    ///     .callback(&mut stop)
    ///     .verbosity(Verbosity::Quiet)
    ///     .fit(&x, &x);
    /// assert!(history.get("loss")[2] < history.get("loss")[0]);
    /// assert_eq!(stop.stopped_epoch, Some(2));
    /// # Ok::<(), sinew_tensor::TensorError>(())
    /// ```
    pub fn mode(mut self, mode: Mode) -> Self {
        self.mode = mode;
        self
    }
    /// Restore the best epoch's weights when training ends.
    ///
    /// ```
    /// use sinew_nn::{Linear, Module};
    /// use sinew_optim::Sgd;
    /// use sinew_tensor::{Generator, Tensor};
    /// use sinew_train::{EarlyStopping, Loss, Trainer, Verbosity};
    /// let x = Tensor::from_vec(vec![1.0f32, 2.0], &[2, 1])?;
    /// let y = Tensor::zeros(&[2, 1]);
    /// // a learning rate so large that training diverges after the first update
    /// let run = |epochs: usize, stop: Option<EarlyStopping>| {
    ///     let model = Linear::new(1, 1, &mut Generator::new(0));
    ///     let mut opt = Sgd::new(model.parameters(), 2.0);
    ///     let mut trainer = Trainer::new(&model, &mut opt, Loss::Mse)
    ///         .epochs(epochs)
    ///         .validation_data(&x, &y)
    ///         .verbosity(Verbosity::Quiet);
    ///     if let Some(stop) = stop {
    ///         trainer = trainer.callback(stop);
    ///     }
    ///     let history = trainer.fit(&x, &y);
    ///     (history, model.weight.value().to_vec::<f32>())
    /// };
    /// let (history, restored) = run(100, Some(EarlyStopping::new("val_loss", 2).restore_best_weights(true).verbose(false)));
    /// let val = history.get("val_loss");
    /// assert_eq!(val.len(), 3);
    /// assert!(val[0] < val[1] && val[1] < val[2]);
    /// // the weights are those at the end of the best epoch, the first
    /// let (_, after_one_epoch) = run(1, None);
    /// assert_eq!(restored, after_one_epoch);
    /// # Ok::<(), sinew_tensor::TensorError>(())
    /// ```
    pub fn restore_best_weights(mut self, on: bool) -> Self {
        self.restore_best = on;
        self
    }
    /// The best value of the monitored quantity seen so far.
    ///
    /// ```
    /// use sinew_train::EarlyStopping;
    /// assert_eq!(EarlyStopping::new("val_loss", 5).best(), None);
    /// ```
    pub fn best(&self) -> Option<f64> {
        self.best
    }
    /// Epochs since the last improvement.
    ///
    /// ```
    /// use sinew_train::EarlyStopping;
    /// assert_eq!(EarlyStopping::new("val_loss", 5).wait(), 0);
    /// ```
    pub fn wait(&self) -> usize {
        self.wait
    }
}

/// A saved tensor back, its shape checked against its data.
fn saved_tensor(t: StateTensor) -> Result<Tensor, ResumeError> {
    t.into_tensor().map_err(|e| ResumeError::Decode { what: "a saved tensor".into(), msg: e.to_string() })
}

/// Best value, epochs waited, stopped epoch, best epoch, best weights. The weights' bincode
/// is that of the `SavedTensor` enum sinew-train had before it used `StateTensor`
/// (same variants in the same order: F32, F64, I64), so older checkpoints still resume.
type EarlyStoppingState =
    (Option<f64>, usize, Option<usize>, Option<usize>, Option<Vec<(String, StateTensor)>>);

impl Callback for EarlyStopping {
    fn on_epoch_end(&mut self, epoch: usize, logs: &mut Logs, ctx: &mut Context<'_>) {
        let Some(&value) = logs.get(&self.monitor) else { return };
        let mode = self.mode.resolve(&self.monitor);
        if self.best.is_none_or(|b| mode.better(value, b, self.min_delta)) {
            self.best = Some(value);
            self.best_epoch = Some(epoch);
            self.wait = 0;
            if self.restore_best {
                self.best_weights = Some(ctx.model.state_dict());
            }
        } else {
            self.wait += 1;
            if self.wait >= self.patience {
                ctx.stop_training = true;
                self.stopped_epoch = Some(epoch);
                if self.verbose {
                    eprintln!(
                        "Epoch {}: early stopping ({} did not improve for {} epochs)",
                        epoch + 1,
                        self.monitor,
                        self.wait
                    );
                }
            }
        }
    }

    fn on_train_end(&mut self, ctx: &mut Context<'_>) {
        if let Some(w) = self.best_weights.take() {
            ctx.model.load_state_dict(&w, true).expect("restoring the model's own state dict");
            if self.verbose
                && let Some(e) = self.best_epoch
            {
                eprintln!("Restoring model weights from the end of the best epoch: {}.", e + 1);
            }
        }
    }

    /// Best value, epochs waited, the epoch it stopped at, and the best weights if it
    /// restores them.
    fn state(&self) -> Option<CallbackState> {
        let weights = self
            .best_weights
            .as_ref()
            .map(|w| w.iter().map(|(n, t)| (n.clone(), StateTensor::from_tensor(t))).collect());
        let state: EarlyStoppingState = (self.best, self.wait, self.stopped_epoch, self.best_epoch, weights);
        Some(CallbackState::encode(&state))
    }

    fn load_state(&mut self, state: &CallbackState) -> Result<(), ResumeError> {
        let (best, wait, stopped, best_epoch, weights): EarlyStoppingState = state.decode()?;
        self.best_weights = weights
            .map(|w| {
                w.into_iter().map(|(n, t)| Ok((n, saved_tensor(t)?))).collect::<Result<Vec<_>, ResumeError>>()
            })
            .transpose()?;
        (self.best, self.wait, self.stopped_epoch, self.best_epoch) = (best, wait, stopped, best_epoch);
        Ok(())
    }

    /// The restored best weights must be a state dict of this model, or restoring them
    /// at the end of `fit` would fail after the remaining epochs ran.
    fn check_resume(&self, model: &dyn Forward) -> Result<(), ResumeError> {
        match &self.best_weights {
            Some(w) => model.check_state_dict(w, true).map(|_| ()).map_err(|report| {
                ResumeError::Mismatch(format!(
                    "EarlyStopping's saved best weights do not fit the model: {report}"
                ))
            }),
            None => Ok(()),
        }
    }
}

/// Saves the run after each epoch, or only when the monitored quantity improves (Keras'
/// `ModelCheckpoint`). `{epoch}` in the path is replaced by the epoch number (1-based).
/// Saves are atomic.
///
/// What it saves depends on the path: a `.safetensors` file gets the model's weights only
/// (readable by PyTorch); any other path gets a full sinew [`Checkpoint`] (model,
/// optimizer, epoch, step, history, every callback's state), which
/// [`Trainer::resume_from`](crate::Trainer::resume_from) continues exactly.
/// [`weights_only`](ModelCheckpoint::weights_only) overrides the choice.
///
/// ```
/// use sinew_nn::{Linear, Module};
/// use sinew_optim::Sgd;
/// use sinew_serialize::Checkpoint;
/// use sinew_tensor::{DType, Generator, Tensor};
/// use sinew_train::{Loss, ModelCheckpoint, Trainer, Verbosity};
///
/// let dir = std::env::temp_dir().join(format!("doc-model-checkpoint-{}", std::process::id()));
/// std::fs::create_dir_all(&dir)?;
/// let mut g = Generator::new(0);
/// let x = Tensor::randn_with(&[32, 2], DType::F32, &mut g);
/// let y = x.sum(&[1], true);
/// let model = Linear::new(2, 1, &mut g);
/// let mut opt = Sgd::new(model.parameters(), 0.1);
/// let mut saver = ModelCheckpoint::new(dir.join("run-{epoch}.sinew"));
/// Trainer::new(&model, &mut opt, Loss::Mse)
///     .epochs(3)
///     .callback(&mut saver)
///     .callback(ModelCheckpoint::new(dir.join("weights.safetensors")))
///     .verbosity(Verbosity::Quiet)
///     .fit(&x, &y);
/// assert_eq!(saver.saved.len(), 3);
/// let last = Checkpoint::load(&saver.saved[2])?;
/// assert_eq!((last.epoch, last.step), (3, 3));
/// assert!(last.optimizer.is_some());
/// assert_eq!(sinew_serialize::load_safetensors(dir.join("weights.safetensors"))?.len(), 2);
/// # std::fs::remove_dir_all(&dir).ok();
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct ModelCheckpoint {
    path: PathBuf,
    monitor: String,
    save_best_only: bool,
    weights_only: bool,
    mode: Mode,
    best: Option<f64>,
    pending: Option<PathBuf>,
    /// Files written so far.
    pub saved: Vec<PathBuf>,
}

impl ModelCheckpoint {
    /// Saves every epoch to `path`: weights only for a `.safetensors` path, else a full
    /// checkpoint.
    ///
    /// ```
    /// use sinew_nn::{Linear, Module};
    /// use sinew_optim::Sgd;
    /// use sinew_tensor::{Generator, Tensor};
    /// use sinew_train::{Loss, ModelCheckpoint, Trainer, Verbosity};
    /// let dir = std::env::temp_dir().join(format!("doc-checkpoint-new-{}", std::process::id()));
    /// std::fs::create_dir_all(&dir)?;
    /// let x = Tensor::from_vec(vec![0.0f32, 1.0, 2.0, 3.0], &[4, 1])?;
    /// let model = Linear::new(1, 1, &mut Generator::new(0));
    /// let mut opt = Sgd::new(model.parameters(), 0.05);
    /// let mut saver = ModelCheckpoint::new(dir.join("weights-{epoch}.safetensors"));
    /// Trainer::new(&model, &mut opt, Loss::Mse).epochs(2).callback(&mut saver).verbosity(Verbosity::Quiet).fit(&x, &x);
    /// assert_eq!(saver.saved, [dir.join("weights-1.safetensors"), dir.join("weights-2.safetensors")]);
    /// // the last file holds the final weights
    /// let last = sinew_serialize::load_safetensors(&saver.saved[1])?;
    /// assert_eq!(last[0].1.to_vec::<f32>(), model.weight.value().to_vec::<f32>());
    /// # std::fs::remove_dir_all(&dir).ok();
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn new(path: impl Into<PathBuf>) -> Self {
        let path = path.into();
        let weights_only = path.extension().is_some_and(|e| e == "safetensors");
        ModelCheckpoint {
            path,
            monitor: "val_loss".into(),
            save_best_only: false,
            weights_only,
            mode: Mode::Auto,
            best: None,
            pending: None,
            saved: Vec::new(),
        }
    }
    /// Saves only when `monitor` improves.
    ///
    /// ```
    /// use sinew_nn::{Linear, Module};
    /// use sinew_optim::Sgd;
    /// use sinew_tensor::{Generator, Tensor};
    /// use sinew_train::{Loss, ModelCheckpoint, Trainer, Verbosity};
    /// let dir = std::env::temp_dir().join(format!("doc-checkpoint-best-{}", std::process::id()));
    /// std::fs::create_dir_all(&dir)?;
    /// let x = Tensor::from_vec(vec![0.0f32, 1.0, 2.0, 3.0], &[4, 1])?;
    /// let model = Linear::new(1, 1, &mut Generator::new(0));
    /// let mut opt = Sgd::new(model.parameters(), 0.0); // the loss never improves after epoch 1
    /// let mut saver = ModelCheckpoint::new(dir.join("best-{epoch}.safetensors")).best_only("loss");
    /// Trainer::new(&model, &mut opt, Loss::Mse).epochs(3).callback(&mut saver).verbosity(Verbosity::Quiet).fit(&x, &x);
    /// assert_eq!(saver.saved, [dir.join("best-1.safetensors")]);
    /// # std::fs::remove_dir_all(&dir).ok();
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn best_only(mut self, monitor: &str) -> Self {
        self.monitor = monitor.to_string();
        self.save_best_only = true;
        self
    }
    /// Min, max or auto, for [`best_only`](ModelCheckpoint::best_only).
    ///
    /// ```
    /// use sinew_nn::{Linear, Module};
    /// use sinew_optim::Sgd;
    /// use sinew_tensor::{Generator, Tensor};
    /// use sinew_train::{Loss, Mode, ModelCheckpoint, Trainer, Verbosity};
    /// let dir = std::env::temp_dir().join(format!("doc-checkpoint-mode-{}", std::process::id()));
    /// std::fs::create_dir_all(&dir)?;
    /// let x = Tensor::from_vec(vec![0.0f32, 1.0, 2.0, 3.0], &[4, 1])?;
    /// let model = Linear::new(1, 1, &mut Generator::new(0));
    /// let mut opt = Sgd::new(model.parameters(), 0.05);
    /// let mut lowest = ModelCheckpoint::new(dir.join("min-{epoch}.safetensors")).best_only("loss");
    /// let mut highest = ModelCheckpoint::new(dir.join("max-{epoch}.safetensors")).best_only("loss").mode(Mode::Max);
    /// let history = Trainer::new(&model, &mut opt, Loss::Mse)
    ///     .epochs(3)
    ///     .callback(&mut lowest)
    ///     .callback(&mut highest)
    ///     .verbosity(Verbosity::Quiet)
    ///     .fit(&x, &x);
    /// // the loss falls every epoch: each is a new minimum, none a new maximum
    /// let loss = history.get("loss");
    /// assert!(loss[0] > loss[1] && loss[1] > loss[2]);
    /// assert_eq!((lowest.saved.len(), highest.saved.len()), (3, 1));
    /// # std::fs::remove_dir_all(&dir).ok();
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn mode(mut self, mode: Mode) -> Self {
        self.mode = mode;
        self
    }
    /// Whether to save the weights only, as safetensors (`true`), or a full sinew
    /// [`Checkpoint`] (`false`), whatever the path's extension.
    ///
    /// ```
    /// use sinew_train::ModelCheckpoint;
    /// let full = ModelCheckpoint::new("run.safetensors").weights_only(false);
    /// # let _ = full;
    /// ```
    pub fn weights_only(mut self, on: bool) -> Self {
        self.weights_only = on;
        self
    }

    fn record(&mut self, path: PathBuf, result: sinew_serialize::Result<()>) {
        match result {
            Ok(()) => self.saved.push(path),
            Err(e) => eprintln!("ModelCheckpoint: could not save {}: {e}", path.display()),
        }
    }
}

impl Callback for ModelCheckpoint {
    fn on_epoch_end(&mut self, epoch: usize, logs: &mut Logs, ctx: &mut Context<'_>) {
        if self.save_best_only {
            let Some(&value) = logs.get(&self.monitor) else { return };
            let mode = self.mode.resolve(&self.monitor);
            if !self.best.is_none_or(|b| mode.better(value, b, 0.0)) {
                return;
            }
            self.best = Some(value);
        }
        let path = PathBuf::from(self.path.to_string_lossy().replace("{epoch}", &(epoch + 1).to_string()));
        if self.weights_only {
            let result = sinew_serialize::save_safetensors(&path, &ctx.model.state_dict());
            self.record(path, result);
        } else {
            // saved once every callback has finished the epoch, so their states are in it
            self.pending = Some(path);
        }
    }

    fn wants_checkpoint(&self) -> bool {
        self.pending.is_some()
    }

    fn on_checkpoint(&mut self, _epoch: usize, checkpoint: &Checkpoint) {
        if let Some(path) = self.pending.take() {
            let result = checkpoint.save(&path);
            self.record(path, result);
        }
    }

    /// The best monitored value so far.
    fn state(&self) -> Option<CallbackState> {
        Some(CallbackState::encode(&self.best))
    }

    fn load_state(&mut self, state: &CallbackState) -> Result<(), ResumeError> {
        self.best = state.decode()?;
        Ok(())
    }
}

/// When a [`LrScheduleCallback`] advances its schedule.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Every {
    /// Once per epoch.
    Epoch,
    /// Once per optimizer step (warm-up, one-cycle).
    Step,
}

/// Sets the optimizer's learning rates from a schedule, per epoch or per step.
///
/// At the start of its first `fit` it records each group's rate as the schedule's base
/// and sets the step-0 rate; after that (a resumed run, or the same callback lent to a
/// second `fit`) it continues from its count and leaves the current rates alone until
/// its next step. Its state is the base rates and the count.
pub struct LrScheduleCallback {
    schedule: Box<dyn LrSchedule>,
    every: Every,
    base_lrs: Vec<f64>,
    count: usize,
}

impl LrScheduleCallback {
    /// Applies `schedule` every epoch or every step.
    ///
    /// ```
    /// use sinew_nn::{Linear, Module};
    /// use sinew_optim::{Optimizer, Sgd, StepLr};
    /// use sinew_tensor::{Generator, Tensor};
    /// use sinew_train::{Every, Loss, LrScheduleCallback, Trainer, Verbosity};
    /// let x = Tensor::from_vec(vec![0.0f32, 1.0, 2.0, 3.0], &[4, 1])?;
    /// let model = Linear::new(1, 1, &mut Generator::new(0));
    /// let mut opt = Sgd::new(model.parameters(), 0.1);
    /// // torch.optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.5), stepped every epoch
    /// let schedule = LrScheduleCallback::new(StepLr { step_size: 1, gamma: 0.5 }, Every::Epoch);
    /// Trainer::new(&model, &mut opt, Loss::Mse).epochs(3).callback(schedule).verbosity(Verbosity::Quiet).fit(&x, &x);
    /// assert!((opt.lr() - 0.1 * 0.5f64.powi(3)).abs() < 1e-12);
    /// # Ok::<(), sinew_tensor::TensorError>(())
    /// ```
    pub fn new(schedule: impl LrSchedule + 'static, every: Every) -> Self {
        LrScheduleCallback { schedule: Box::new(schedule), every, base_lrs: Vec::new(), count: 0 }
    }

    fn apply(&self, opt: &mut dyn Optimizer) {
        for (g, &base) in opt.param_groups_mut().iter_mut().zip(&self.base_lrs) {
            g.lr = self.schedule.lr(self.count, base);
        }
    }
}

impl Callback for LrScheduleCallback {
    fn on_train_begin(&mut self, ctx: &mut Context<'_>) {
        if self.base_lrs.is_empty() {
            self.base_lrs = ctx.optimizer.param_groups().iter().map(|g| g.lr).collect();
            self.apply(ctx.optimizer);
        }
    }
    fn on_batch_end(&mut self, _: usize, _: f64, ctx: &mut Context<'_>) {
        if self.every == Every::Step {
            self.count += 1;
            self.apply(ctx.optimizer);
        }
    }
    fn on_epoch_end(&mut self, _: usize, _: &mut Logs, ctx: &mut Context<'_>) {
        if self.every == Every::Epoch {
            self.count += 1;
            self.apply(ctx.optimizer);
        }
    }
    fn state(&self) -> Option<CallbackState> {
        Some(CallbackState::encode(&(&self.base_lrs, self.count)))
    }
    fn load_state(&mut self, state: &CallbackState) -> Result<(), ResumeError> {
        let (base_lrs, count): (Vec<f64>, usize) = state.decode()?;
        if let Some(bad) = base_lrs.iter().find(|lr| !(lr.is_finite() && **lr >= 0.0)) {
            return Err(ResumeError::Mismatch(format!(
                "LrScheduleCallback: saved base rate {bad} is not a finite rate"
            )));
        }
        (self.base_lrs, self.count) = (base_lrs, count);
        Ok(())
    }
}

/// Reduces the learning rate when a monitored quantity plateaus.
#[derive(Debug)]
pub struct ReduceLrOnPlateauCallback {
    /// The plateau logic and its settings.
    pub inner: ReduceLrOnPlateau,
    monitor: String,
}

impl ReduceLrOnPlateauCallback {
    /// Watches `monitor` (mode from its name), with PyTorch's defaults.
    ///
    /// ```
    /// use sinew_nn::{Linear, Module};
    /// use sinew_optim::{Optimizer, Sgd};
    /// use sinew_tensor::{Generator, Tensor};
    /// use sinew_train::{Loss, ReduceLrOnPlateauCallback, Trainer, Verbosity};
    /// let x = Tensor::from_vec(vec![0.0f32, 1.0, 2.0, 3.0], &[4, 1])?;
    /// let model = Linear::new(1, 1, &mut Generator::new(0));
    /// model.weight.set_value(Tensor::zeros(&[1, 1]));
    /// model.bias.as_ref().unwrap().set_value(Tensor::zeros(&[1]));
    /// let mut opt = Sgd::new(model.parameters(), 0.1);
    /// // ReduceLROnPlateau(opt, patience=0): the loss is stuck at 0 (the model is already exact)
    /// let mut plateau = ReduceLrOnPlateauCallback::new("loss");
    /// plateau.inner.patience = 0;
    /// let history = Trainer::new(&model, &mut opt, Loss::Mse)
    ///     .epochs(3)
    ///     .callback(plateau)
    ///     .verbosity(Verbosity::Quiet)
    ///     .fit(&x, &Tensor::zeros(&[4, 1]));
    /// assert_eq!(history.get("loss"), [0.0, 0.0, 0.0]);
    /// // epoch 0 sets the best; epochs 1 and 2 each reduce the rate by the factor 0.1
    /// assert!((opt.lr() - 1e-3).abs() < 1e-12);
    /// # Ok::<(), sinew_tensor::TensorError>(())
    /// ```
    pub fn new(monitor: &str) -> Self {
        let mode = if Mode::Auto.resolve(monitor) == Mode::Max { PlateauMode::Max } else { PlateauMode::Min };
        ReduceLrOnPlateauCallback { inner: ReduceLrOnPlateau::new(mode), monitor: monitor.to_string() }
    }
}

impl Callback for ReduceLrOnPlateauCallback {
    fn on_epoch_end(&mut self, _: usize, logs: &mut Logs, ctx: &mut Context<'_>) {
        if let Some(&v) = logs.get(&self.monitor) {
            self.inner.step(v, ctx.optimizer);
        }
    }
    /// The whole [`ReduceLrOnPlateau`]: settings, best value, bad-epoch and cooldown
    /// counters (restoring it replaces `inner`).
    fn state(&self) -> Option<CallbackState> {
        Some(CallbackState::encode(&self.inner))
    }
    fn load_state(&mut self, state: &CallbackState) -> Result<(), ResumeError> {
        let inner: ReduceLrOnPlateau = state.decode()?;
        inner.validate()?;
        self.inner = inner;
        Ok(())
    }
}

/// Stops training as soon as a batch loss is NaN or infinite.
#[derive(Clone, Copy, Debug, Default)]
pub struct TerminateOnNaN {
    /// The step at which it stopped training, if it did.
    pub stopped_at: Option<usize>,
}

impl Callback for TerminateOnNaN {
    fn on_batch_end(&mut self, step: usize, loss: f64, ctx: &mut Context<'_>) {
        if !loss.is_finite() && self.stopped_at.is_none() {
            self.stopped_at = Some(step);
            ctx.stop_training = true;
        }
    }
    fn state(&self) -> Option<CallbackState> {
        Some(CallbackState::encode(&self.stopped_at))
    }
    fn load_state(&mut self, state: &CallbackState) -> Result<(), ResumeError> {
        self.stopped_at = state.decode()?;
        Ok(())
    }
}

/// Appends one CSV row per epoch (`epoch,` then every log, in name order) to a file.
///
/// The file is created or truncated when training starts, except in a run resumed from a
/// checkpoint that holds this logger's state (its columns): then rows are appended to the
/// existing file.
#[derive(Debug)]
pub struct CsvLogger {
    path: PathBuf,
    columns: Option<Vec<String>>,
    restored: bool,
}

impl CsvLogger {
    /// Logs to `path` (created or truncated at the start of training).
    ///
    /// ```
    /// use sinew_nn::{Linear, Module};
    /// use sinew_optim::Sgd;
    /// use sinew_tensor::{Generator, Tensor};
    /// use sinew_train::{CsvLogger, Loss, Trainer, Verbosity};
    /// let path = std::env::temp_dir().join(format!("doc-csv-logger-{}.csv", std::process::id()));
    /// let x = Tensor::from_vec(vec![0.0f32, 1.0, 2.0, 3.0], &[4, 1])?;
    /// let model = Linear::new(1, 1, &mut Generator::new(0));
    /// let mut opt = Sgd::new(model.parameters(), 0.05);
    /// let history = Trainer::new(&model, &mut opt, Loss::Mse)
    ///     .epochs(2)
    ///     .callback(CsvLogger::new(&path))
    ///     .verbosity(Verbosity::Quiet)
    ///     .fit(&x, &x);
    /// let csv = std::fs::read_to_string(&path)?;
    /// let lines: Vec<&str> = csv.lines().collect();
    /// assert_eq!(lines.len(), 3); // a header, then one row per epoch
    /// assert!(lines[0].starts_with("epoch,"));
    /// let loss_column = lines[0].split(',').position(|c| c == "loss").unwrap();
    /// let first_loss: f64 = lines[1].split(',').nth(loss_column).unwrap().parse()?;
    /// assert!((first_loss - history.get("loss")[0]).abs() < 1e-9);
    /// # std::fs::remove_file(&path).ok();
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn new(path: impl Into<PathBuf>) -> Self {
        CsvLogger { path: path.into(), columns: None, restored: false }
    }
}

impl Callback for CsvLogger {
    fn on_train_begin(&mut self, ctx: &mut Context<'_>) {
        if std::mem::take(&mut self.restored) || !ctx.is_root() {
            return;
        }
        self.columns = None;
        if let Err(e) = std::fs::write(&self.path, "") {
            eprintln!("CsvLogger: cannot write {}: {e}", self.path.display());
        }
    }
    fn state(&self) -> Option<CallbackState> {
        Some(CallbackState::encode(&self.columns))
    }
    fn load_state(&mut self, state: &CallbackState) -> Result<(), ResumeError> {
        self.columns = state.decode()?;
        self.restored = true;
        Ok(())
    }
    fn on_epoch_end(&mut self, epoch: usize, logs: &mut Logs, ctx: &mut Context<'_>) {
        if !ctx.is_root() {
            return;
        }
        let mut out = String::new();
        let columns = self.columns.get_or_insert_with(|| {
            let cols: Vec<String> = logs.keys().cloned().collect();
            out.push_str(&format!("epoch,{}\n", cols.join(",")));
            cols
        });
        let values: Vec<String> =
            columns.iter().map(|c| logs.get(c).map_or(String::new(), |v| v.to_string())).collect();
        out.push_str(&format!("{},{}\n", epoch + 1, values.join(",")));
        let written = std::fs::OpenOptions::new()
            .append(true)
            .open(&self.path)
            .and_then(|mut f| f.write_all(out.as_bytes()));
        if let Err(e) = written {
            eprintln!("CsvLogger: cannot write {}: {e}", self.path.display());
        }
    }
}

impl std::fmt::Debug for Context<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Context")
            .field("lr", &self.optimizer.lr())
            .field("stop_training", &self.stop_training)
            .field("global_step", &self.global_step)
            .finish_non_exhaustive()
    }
}

/// The settings and counters; the saved best weights as their names only.
impl std::fmt::Debug for EarlyStopping {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EarlyStopping")
            .field("monitor", &self.monitor)
            .field("patience", &self.patience)
            .field("min_delta", &self.min_delta)
            .field("mode", &self.mode)
            .field("restore_best_weights", &self.restore_best)
            .field("best", &self.best)
            .field("best_epoch", &self.best_epoch)
            .field("wait", &self.wait)
            .field("stopped_epoch", &self.stopped_epoch)
            .field(
                "best_weights",
                &self.best_weights.as_ref().map(|w| w.iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>()),
            )
            .finish()
    }
}

impl std::fmt::Debug for LrScheduleCallback {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LrScheduleCallback")
            .field("every", &self.every)
            .field("base_lrs", &self.base_lrs)
            .field("count", &self.count)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The enum `EarlyStopping` saved its weights as before it used `StateTensor`.
    #[derive(serde::Serialize, serde::Deserialize, Debug, PartialEq)]
    enum LegacySavedTensor {
        F32(Vec<usize>, Vec<f32>),
        F64(Vec<usize>, Vec<f64>),
        I64(Vec<usize>, Vec<i64>),
    }

    #[test]
    fn early_stopping_weights_keep_their_bincode() {
        let legacy = vec![
            ("w".to_string(), LegacySavedTensor::F32(vec![2], vec![1.5, -0.0])),
            ("d".to_string(), LegacySavedTensor::F64(vec![1, 1], vec![f64::MIN_POSITIVE])),
            ("n".to_string(), LegacySavedTensor::I64(vec![3], vec![i64::MIN, 0, 7])),
        ];
        let tensors = [
            Tensor::from_vec(vec![1.5f32, -0.0], &[2]).unwrap(),
            Tensor::from_vec(vec![f64::MIN_POSITIVE], &[1, 1]).unwrap(),
            Tensor::from_vec(vec![i64::MIN, 0, 7], &[3]).unwrap(),
        ];
        let now: Vec<(String, StateTensor)> =
            legacy.iter().zip(&tensors).map(|((n, _), t)| (n.clone(), StateTensor::from_tensor(t))).collect();
        let old_state = (Some(0.5f64), 2usize, None::<usize>, Some(1usize), Some(legacy));
        let new_state: EarlyStoppingState = (Some(0.5), 2, None, Some(1), Some(now));
        assert_eq!(CallbackState::encode(&old_state), CallbackState::encode(&new_state));
        // and an old state loads
        let mut stop = EarlyStopping::new("val_loss", 3).restore_best_weights(true);
        stop.load_state(&CallbackState::encode(&old_state)).unwrap();
        let w = stop.best_weights.as_ref().unwrap();
        assert_eq!(w[2].1.to_vec::<i64>(), vec![i64::MIN, 0, 7]);
        assert_eq!(w[0].1.to_vec::<f32>()[0], 1.5);
    }
}

//! Callbacks: code that runs at the edges of training (Keras' callbacks).
//! [`EarlyStopping`], [`ModelCheckpoint`], [`LrScheduleCallback`], [`ReduceLrOnPlateauCallback`],
//! [`TerminateOnNaN`] and [`CsvLogger`]; implement [`Callback`] for your own.

use std::io::Write;
use std::path::PathBuf;

use sinew_nn::Forward;
use sinew_optim::{LrSchedule, Optimizer, PlateauMode, ReduceLrOnPlateau};
use sinew_tensor::Tensor;

use crate::history::Logs;

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
}

/// Hooks called by [`Trainer::fit`](crate::Trainer::fit). Every method has an empty default.
pub trait Callback: Send {
    /// Before the first epoch.
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
    /// The epoch training stopped at, if it did.
    pub stopped_epoch: Option<usize>,
}

impl EarlyStopping {
    /// Stops after `patience` epochs without improvement of `monitor`.
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
            stopped_epoch: None,
        }
    }
    /// The smallest change that counts as an improvement.
    pub fn min_delta(mut self, d: f64) -> Self {
        self.min_delta = d.abs();
        self
    }
    /// Min, max or auto.
    pub fn mode(mut self, mode: Mode) -> Self {
        self.mode = mode;
        self
    }
    /// Restore the best epoch's weights when training ends.
    pub fn restore_best_weights(mut self, on: bool) -> Self {
        self.restore_best = on;
        self
    }
}

impl Callback for EarlyStopping {
    fn on_epoch_end(&mut self, epoch: usize, logs: &mut Logs, ctx: &mut Context<'_>) {
        let Some(&value) = logs.get(&self.monitor) else { return };
        let mode = self.mode.resolve(&self.monitor);
        if self.best.is_none_or(|b| mode.better(value, b, self.min_delta)) {
            self.best = Some(value);
            self.wait = 0;
            if self.restore_best {
                self.best_weights = Some(ctx.model.state_dict());
            }
        } else {
            self.wait += 1;
            if self.wait >= self.patience {
                ctx.stop_training = true;
                self.stopped_epoch = Some(epoch);
            }
        }
    }

    fn on_train_end(&mut self, ctx: &mut Context<'_>) {
        if let Some(w) = self.best_weights.take() {
            ctx.model.load_state_dict(&w, true).expect("restoring the model's own state dict");
        }
    }
}

/// Saves the model's state dict as safetensors after each epoch, or only when the
/// monitored quantity improves (Keras' `ModelCheckpoint`). `{epoch}` in the path is
/// replaced by the epoch number (1-based). Saves are atomic.
pub struct ModelCheckpoint {
    path: PathBuf,
    monitor: String,
    save_best_only: bool,
    mode: Mode,
    best: Option<f64>,
    /// Files written so far.
    pub saved: Vec<PathBuf>,
}

impl ModelCheckpoint {
    /// Saves every epoch to `path`.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        ModelCheckpoint {
            path: path.into(),
            monitor: "val_loss".into(),
            save_best_only: false,
            mode: Mode::Auto,
            best: None,
            saved: Vec::new(),
        }
    }
    /// Saves only when `monitor` improves.
    pub fn best_only(mut self, monitor: &str) -> Self {
        self.monitor = monitor.to_string();
        self.save_best_only = true;
        self
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
        match sinew_serialize::save_safetensors(&path, &ctx.model.state_dict()) {
            Ok(()) => self.saved.push(path),
            Err(e) => eprintln!("ModelCheckpoint: could not save: {e}"),
        }
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
pub struct LrScheduleCallback {
    schedule: Box<dyn LrSchedule>,
    every: Every,
    base_lrs: Vec<f64>,
    count: usize,
}

impl LrScheduleCallback {
    /// Applies `schedule` every epoch or every step.
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
        self.base_lrs = ctx.optimizer.param_groups().iter().map(|g| g.lr).collect();
        self.apply(ctx.optimizer);
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
}

/// Reduces the learning rate when a monitored quantity plateaus.
pub struct ReduceLrOnPlateauCallback {
    /// The plateau logic and its settings.
    pub inner: ReduceLrOnPlateau,
    monitor: String,
}

impl ReduceLrOnPlateauCallback {
    /// Watches `monitor` (mode from its name), with PyTorch's defaults.
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
}

/// Appends one CSV row per epoch (`epoch,` then every log, in name order) to a file.
pub struct CsvLogger {
    path: PathBuf,
    columns: Option<Vec<String>>,
}

impl CsvLogger {
    /// Logs to `path` (created or truncated at the start of training).
    pub fn new(path: impl Into<PathBuf>) -> Self {
        CsvLogger { path: path.into(), columns: None }
    }
}

impl Callback for CsvLogger {
    fn on_train_begin(&mut self, _: &mut Context<'_>) {
        self.columns = None;
        if let Err(e) = std::fs::write(&self.path, "") {
            eprintln!("CsvLogger: cannot write {}: {e}", self.path.display());
        }
    }
    fn on_epoch_end(&mut self, epoch: usize, logs: &mut Logs, _: &mut Context<'_>) {
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

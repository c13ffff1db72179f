//! # sinew-train
//!
//! A Keras-like training loop: [`Trainer`] (`fit` over tensors, `fit_dataset` over a
//! `sinew_data::Dataset`, `fit_loader` over a `sinew_data::DataLoader`, with epochs,
//! batches, validation, metrics, callbacks and progress, and an exact
//! [`resume_from`](Trainer::resume_from) a checkpoint), [`evaluate`],
//! [`evaluate_batches`] and [`predict`], the [`metrics`], and the
//! [`callbacks`](Callback) Keras users expect.
//!
//! ```
//! use sinew_nn::{Linear, Module};
//! use sinew_optim::Sgd;
//! use sinew_tensor::{DType, Generator, Tensor};
//! use sinew_train::{Loss, Trainer, Verbosity};
//!
//! // the design document's regression: y = 3x + U(0, 1)
//! let mut g = Generator::new(42);
//! let x = Tensor::rand_with(&[100, 1], DType::F32, &mut g);
//! let y = &(&x * 3.0) + &Tensor::rand_with(&[100, 1], DType::F32, &mut g);
//! let model = Linear::new(1, 1, &mut g);
//! let mut opt = Sgd::new(model.parameters(), 0.1);
//! let history = Trainer::new(&model, &mut opt, Loss::Mse).epochs(200).batch_size(32).verbosity(Verbosity::Quiet).fit(&x, &y);
//! assert!(history.get("loss").last().copied().unwrap() < 0.1);
//! ```

mod callbacks;
mod data_parallel;
mod history;
pub mod metrics;
mod progress;
mod state;
mod trainer;

pub use callbacks::{
    Callback, Context, CsvLogger, EarlyStopping, Every, LrScheduleCallback, Mode, ModelCheckpoint,
    ReduceLrOnPlateauCallback, TerminateOnNaN,
};
pub use data_parallel::DataParallel;
pub use history::{History, Logs};
pub use progress::Verbosity;
pub use state::{CallbackState, ResumeError};
pub use trainer::{Loss, LossFn, Trainer, Validation, evaluate, evaluate_batches, predict};

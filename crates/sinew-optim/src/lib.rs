//! # sinew-optim
//!
//! Optimizers, learning-rate schedules and gradient clipping, with PyTorch's update
//! rules, defaults and names. It needs parameters and gradients, not layers: it depends
//! on `sinew-autograd`, not on `sinew-nn`.
//!
//! ```
//! use sinew_autograd::{Param, Var};
//! use sinew_optim::{Adam, CosineAnnealingLr, Optimizer, Scheduler, clip_grad_norm};
//! use sinew_tensor::{DType, Generator, Tensor};
//!
//! let mut g = Generator::new(0);
//! let w = Param::new("w", Tensor::randn_with(&[3, 1], DType::F32, &mut g));
//! let x = Var::constant(Tensor::randn_with(&[16, 3], DType::F32, &mut g));
//! let y = Var::constant(Tensor::randn_with(&[16, 1], DType::F32, &mut g));
//! let mut opt = Adam::new(vec![w.clone()], 0.05);
//! let mut sched = Scheduler::new(CosineAnnealingLr { t_max: 50, eta_min: 1e-4 }, &mut opt);
//! for _ in 0..50 {
//!     let loss = (&x.matmul(&w.var()) - &y).square().mean_all();
//!     let mut grads = loss.backward();
//!     clip_grad_norm(&mut grads, 1.0, 2.0);
//!     opt.step(&grads);
//!     sched.step(&mut opt);
//! }
//! ```
//!
//! Updates are in place: once the previous step's graph is dropped, a step writes into
//! the parameters' and the state's own buffers. State ([`OptimizerState`],
//! [`SchedulerState`]) is plain serde data, so a resumed run continues exactly.

mod adam;
mod clip;
mod optimizer;
mod rmsprop;
mod schedule;
mod sgd;
mod state;

pub use adam::{Adam, AdamConfig, AdamW};
pub use clip::{clip_grad_norm, clip_grad_value};
pub use optimizer::{Optimizer, ParamGroup};
pub use rmsprop::{Adagrad, AdagradConfig, RmsProp, RmsPropConfig};
pub use schedule::{
    CosineAnnealingLr, ExponentialLr, LinearLr, LrSchedule, MultiStepLr, OneCycleLr, PlateauMode,
    ReduceLrOnPlateau, Scheduler, SchedulerState, StepLr, Then,
};
pub use sgd::{Sgd, SgdConfig};
pub use state::{GroupState, OptimizerState, StateError, StateTensor};

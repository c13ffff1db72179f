//! # sinew
//!
//! Deep learning in pure Rust. This facade re-exports sinew's crates so that one
//! dependency brings everything; depend on the individual crates to take only what you
//! need.
//!
//! | module | crate | what |
//! | --- | --- | --- |
//! | [`tensor`] | `sinew-tensor` | n-d tensors, broadcasting, reductions, matmul and convolution on faer |
//! | [`autograd`] | `sinew-autograd` | `Var`, reverse-mode gradients of any order, `Param`, `gradcheck` |
//! | [`nn`] | `sinew-nn` | `Module` (derivable), layers, activations, losses, initialisation |
//! | [`optim`] | `sinew-optim` | SGD, Adam, AdamW, RMSprop, Adagrad, LR schedules, clipping |
//! | [`serialize`] | `sinew-serialize` | safetensors to and from PyTorch, atomic saves |
//!
//! The data and training crates join this facade as they land (see `ARCHITECTURE.md`).
//!
//! ```
//! use sinew::prelude::*;
//! let x = Tensor::linspace(-1.0, 1.0, 5);
//! assert_eq!(x.relu().sum_all().item(), 1.5);
//! ```

pub use sinew_autograd as autograd;
pub use sinew_nn as nn;
pub use sinew_optim as optim;
pub use sinew_serialize as serialize;
pub use sinew_tensor as tensor;

/// The names most programs need: `use sinew::prelude::*;`.
pub mod prelude {
    pub use sinew_autograd::{Gradients, Param, Var, no_grad};
    pub use sinew_nn::loss::{CrossEntropyOptions, Reduction, cross_entropy, mse_loss};
    pub use sinew_nn::{
        BatchNorm1d, BatchNorm2d, Conv2d, Dropout, Embedding, Flatten, Forward, LayerNorm, Linear, MaxPool2d,
        Module, ReLU, Sequential, Sigmoid, Tanh,
    };
    pub use sinew_optim::{Adam, AdamW, Optimizer, Scheduler, Sgd, clip_grad_norm};
    pub use sinew_tensor::{Conv2dOptions, DType, Generator, Pool2dOptions, Tensor, manual_seed};
}

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
//!
//! The layer, optimizer, serialization, data and training crates join this facade as
//! they land (see `ARCHITECTURE.md`).
//!
//! ```
//! use sinew::prelude::*;
//! let x = Tensor::linspace(-1.0, 1.0, 5);
//! assert_eq!(x.relu().sum_all().item(), 1.5);
//! ```

pub use sinew_autograd as autograd;
pub use sinew_tensor as tensor;

/// The names most programs need: `use sinew::prelude::*;`.
pub mod prelude {
    pub use sinew_autograd::{Gradients, Param, Var, no_grad};
    pub use sinew_tensor::{DType, Generator, Tensor, manual_seed};
}

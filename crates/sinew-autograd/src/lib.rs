//! # sinew-autograd
//!
//! Reverse-mode automatic differentiation on [`sinew_tensor::Tensor`]: a dynamic graph
//! recorded as you compute, gradients of gradients, and a numerical gradient checker.
//!
//! ```
//! use sinew_autograd::Var;
//! use sinew_tensor::{DType, Generator, Tensor};
//!
//! let mut g = Generator::new(0);
//! let x = Var::constant(Tensor::randn_with(&[8, 3], DType::F64, &mut g));
//! let w = Var::leaf(Tensor::randn_with(&[3, 1], DType::F64, &mut g));
//! let loss = x.matmul(&w).tanh().square().mean_all();
//! let grads = loss.backward();
//! assert_eq!(grads.get(&w).unwrap().dims(), &[3, 1]);
//! ```
//!
//! ## How it works
//! Every op on [`Var`] computes its value with a tensor op and records a backward rule
//! next to it ([`Var::from_op`]). The graph lives in the `Var`s (no global tape), so it is
//! freed when they drop. [`Var::backward`] walks it once in reverse topological order and
//! returns [`Gradients`]; nothing is stored inside the variables. Backward rules are
//! written with `Var` ops, so a pass with `create_graph(true)` returns gradients that are
//! themselves differentiable; without it, the rules run under [`no_grad`] and record
//! nothing.
//!
//! ## Checking gradients
//! [`gradcheck`] and [`gradgradcheck`] compare a backward pass with central finite
//! differences in `f64`, and on failure name the input, the index and both values.

mod anomaly;
mod engine;
mod gradcheck;
mod mode;
mod ops;
mod param;
mod var;

pub use anomaly::{detect_anomaly, set_anomaly_detection};
pub use engine::{BackwardPass, Gradients, grad};
pub use gradcheck::{GradcheckError, GradcheckOptions, gradcheck, gradgradcheck};
pub use mode::{GradModeGuard, enable_grad, is_grad_enabled, no_grad, set_grad_enabled};
pub use param::{Param, ParamValueMut};
pub use var::{BackwardCtx, BackwardFn, Var, VarId, WeakVar};

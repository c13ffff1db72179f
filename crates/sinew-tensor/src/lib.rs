//! # sinew-tensor
//!
//! N-dimensional tensors for the sinew deep-learning library: `f32`/`f64`/`i64` elements,
//! NumPy/PyTorch broadcasting, zero-copy views, reductions, indexing, matrix products and
//! `torch.linalg` basics (solve, inv, det, cholesky, qr, svd, eigh, lstsq) on
//! [faer](https://docs.rs/faer) and convolution/pooling kernels. It knows nothing about
//! gradients: that is `sinew-autograd`'s job, built on top.
//!
//! ```
//! use sinew_tensor::{DType, Generator, Tensor};
//!
//! let mut g = Generator::new(0);
//! let x = Tensor::randn_with(&[64, 784], DType::F32, &mut g);   // a batch of inputs
//! let w = Tensor::randn_with(&[128, 784], DType::F32, &mut g);  // PyTorch's Linear layout
//! let b = Tensor::zeros(&[128]);
//! let h = (x.matmul(&w.t()) + &b).relu();                        // w.t() is a view: no copy
//! let p = h.softmax(-1);
//! assert_eq!(p.dims(), &[64, 128]);
//! assert!((p.sum(&[-1], false).mean_all().item() - 1.0).abs() < 1e-5);
//! ```
//!
//! ## Conventions
//! - PyTorch's names, defaults and semantics. Dimension arguments are `isize` and may be
//!   negative (`-1` is the last dimension).
//! - Shape errors are programmer errors: they panic at the caller's line with the op's
//!   name and the shapes involved. Ops where recovery is plausible have a `try_` twin
//!   returning [`Result`] (`try_matmul`, `try_reshape`, `try_cat`, `try_broadcast_to`, ...).
//! - There is no boolean dtype: comparisons return 0/1 in the operands' dtype.
//! - Large elementwise and reduction work runs on sinew's own thread pool
//!   ([`set_num_threads`]); results do not depend on the number of threads.

mod attention;
mod batch_norm;
mod binary;
pub mod buffer;
mod bytes;
mod convert;
mod convolution;
mod dtype;
mod error;
mod index;
pub mod kernels;
mod linalg;
mod matmul;
mod norm;
pub mod parallel;
mod pooling;
mod random;
mod recurrent;
mod reduce;
pub mod shape;
pub mod simd;
mod tensor;
mod unary;
mod view;

pub use buffer::{buffer_cache_bytes, clear_buffer_cache, set_buffer_cache_limit};
pub use bytes::check_byte_len;
pub use convolution::{Conv1dOptions, Conv2dOptions};
pub use dtype::{DType, Element, Float};
pub use error::{Result, TensorError};
pub use parallel::{num_threads, set_num_threads};
pub use pooling::Pool2dOptions;
pub use random::{Generator, GeneratorState, manual_seed, with_global_generator};
pub use shape::Layout;
pub use tensor::{StorageElement, Tensor};

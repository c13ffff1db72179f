//! # sinew-serialize
//!
//! Moving weights in and out of sinew: safetensors files that PyTorch reads and writes
//! (`safetensors.torch.save_file(model.state_dict())`), loaded into sinew modules by
//! PyTorch's parameter names.
//!
//! ```no_run
//! use sinew_nn::{Linear, Module, ReLU, Sequential};
//! use sinew_serialize::load_safetensors;
//! use sinew_tensor::Generator;
//!
//! let mut g = Generator::new(0);
//! let model = Sequential::new().add(Linear::new(4, 8, &mut g)).add(ReLU).add(Linear::new(8, 3, &mut g));
//! let state = load_safetensors("mlp.safetensors")?;          // from PyTorch
//! model.load_state_dict(&state, true).expect("names and shapes match");
//! # Ok::<(), sinew_serialize::SerializeError>(())
//! ```
//!
//! Every write is atomic (temporary file, sync, rename), and every read checks what it
//! reads: a truncated or corrupt file is an `Err`, never a panic.

mod atomic;
mod error;
mod safetensors;

pub use crate::safetensors::{load_safetensors, read_safetensors, save_safetensors, write_safetensors};
pub use atomic::write_atomic;
pub use error::{Result, SerializeError};

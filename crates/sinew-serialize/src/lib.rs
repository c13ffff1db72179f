//! # sinew-serialize
//!
//! Moving weights and training state in and out of sinew:
//!
//! - **safetensors**, the format PyTorch reads and writes
//!   (`safetensors.torch.save_file(model.state_dict())`): [`save_module`] /
//!   [`load_module`] move a module's [`StateDict`] by PyTorch's parameter names;
//!   [`read_safetensors`] / [`write_safetensors`] work on named tensors.
//! - **PyTorch's `torch.save` files** (`.pt`, `.pth`, `.bin`), read as
//!   `torch.load(path, weights_only=True)` reads them and without running their code:
//!   [`load_torch`] gives their tensors, [`load_torch_object`] the whole object (a
//!   checkpoint's parts by key); [`load_module`] takes them as it takes safetensors.
//! - **checkpoints**, sinew's own format: a [`Checkpoint`] holds the state dict with the
//!   optimizer's and scheduler's state, epoch and step, the data generator's state and
//!   metadata, so a run resumed in a fresh process continues bit for bit.
//!
//! ```
//! use sinew_nn::{Linear, Module, Relu, Sequential};
//! use sinew_serialize::{load_module, save_module};
//! use sinew_tensor::Generator;
//!
//! let mut g = Generator::new(0);
//! let model = Sequential::new().add(Linear::new(4, 8, &mut g)).add(Relu).add(Linear::new(8, 3, &mut g));
//! let path = std::env::temp_dir().join(format!("doc-lib-{}.safetensors", std::process::id()));
//! save_module(&path, &model)?;                     // PyTorch can load this file
//! let report = load_module(&path, &model, true)?;  // and so can sinew, by name
//! assert!(report.is_clean());
//! # std::fs::remove_file(&path).ok();
//! # Ok::<(), sinew_serialize::SerializeError>(())
//! ```
//!
//! Every write is atomic (temporary file, sync, rename), and every read checks what it
//! reads: a truncated, corrupt or foreign file is an `Err` naming the problem, never a
//! panic, and no length declared inside a file is allocated before the bytes behind it
//! are known to be there.

mod atomic;
mod checkpoint;
mod crc32;
mod element;
mod error;
mod guard;
mod safetensors;
mod state_dict;
mod torch;

pub use crate::safetensors::{load_safetensors, read_safetensors, save_safetensors, write_safetensors};
pub use atomic::write_atomic;
pub use checkpoint::{CHECKPOINT_MAGIC, CHECKPOINT_VERSION, Checkpoint};
pub use crc32::crc32;
pub use error::{Result, SerializeError};
pub use guard::decode_bounded;
pub use state_dict::{StateDict, load_module, save_module};
pub use torch::{TorchValue, load_torch, load_torch_object, read_torch, read_torch_object};

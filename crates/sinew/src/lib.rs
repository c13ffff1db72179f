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
//! | [`data`] | `sinew-data` | datasets, `DataLoader`, splits, scalers, CSV/IDX readers, bundled digits and iris |
//! | [`train`] | `sinew-train` | Keras-like `fit`/`evaluate`/`predict`, metrics, callbacks, progress |
//! | [`explain`] | `sinew-explain` | attributions as Captum computes them: saliency, integrated gradients, SmoothGrad, occlusion, Grad-CAM |
//! | `models` (feature `models`) | `sinew-models` | pretrained architectures from Hugging Face files: BERT, GPT-2, tokenizers |
//! | `distributed` (feature `distributed`) | `sinew-distributed` | data-parallel training over MPI: `DistributedDataParallel`, `SyncBatchNorm` |
//!
//! The [`guide`] is the user guide: getting started, tensors, autograd, building models,
//! training, saving and loading, a PyTorch cheat sheet and performance notes. Its pages
//! are the markdown files of this crate's `docs/` directory (`crates/sinew/docs/` in the
//! repository), and every Rust example in them is compiled and run as a test of this
//! crate.
//!
//! ```
//! use sinew::prelude::*;
//!
//! let mut g = Generator::new(0);
//! // points in the plane, labelled by the sign of x·y
//! let x = Tensor::randn_with(&[256, 2], DType::F32, &mut g);
//! let y = x.select(1, 0).mul(&x.select(1, 1)).gt_scalar(0.0).to_dtype(DType::I64);
//!
//! let model = Sequential::new().add(Linear::new(2, 32, &mut g)).add(Relu).add(Linear::new(32, 2, &mut g));
//! let mut opt = Adam::new(model.parameters(), 0.01);
//! let mut first = None;
//! for _ in 0..300 {
//!     let logits = model.forward(&Var::constant(x.clone()));
//!     let loss = cross_entropy(&logits, &y, &CrossEntropyOptions::default());
//!     first.get_or_insert(loss.item());
//!     opt.step(&loss.backward());
//! }
//! let logits = model.forward(&Var::constant(x.clone()));
//! let accuracy = logits.argmax(-1, false).eq(&y).mean_all().item();
//! assert!(accuracy > 0.9, "accuracy {accuracy}");
//! ```

// Inlined: the crates' items are documented as this crate's modules, so the facade's
// documentation (also `cargo doc -p sinew --no-deps`, docs.rs) shows all of sinew.
#[doc(inline)]
pub use sinew_autograd as autograd;
#[doc(inline)]
pub use sinew_data as data;
#[cfg(feature = "distributed")]
#[doc(inline)]
pub use sinew_distributed as distributed;
#[doc(inline)]
pub use sinew_explain as explain;
#[cfg(feature = "models")]
#[doc(inline)]
pub use sinew_models as models;
#[doc(inline)]
pub use sinew_nn as nn;
#[doc(inline)]
pub use sinew_optim as optim;
#[doc(inline)]
pub use sinew_serialize as serialize;
#[doc(inline)]
pub use sinew_tensor as tensor;
#[doc(inline)]
pub use sinew_train as train;

/// The user guide, one module per page (the files of this crate's `docs/` directory).
///
/// | page | what it covers |
/// | --- | --- |
/// | [`getting_started`](guide::getting_started) | setup, a first model with `fit` and by hand, the crates, the examples |
/// | [`tensors`](guide::tensors) | creation, dtypes, views, elementwise ops, reductions, indexing, matmul, convolution, random numbers |
/// | [`autograd`](guide::autograd) | `Var`, `backward` and `Gradients`, `Param`, `no_grad`, `grad`, higher order, custom ops, `gradcheck` |
/// | [`models`](guide::models) | `Module`, `#[derive(Module)]`, `Forward`, the layers, `Sequential`, initialisation |
/// | [`training`](guide::training) | `Trainer::fit`, metrics, callbacks, `DataLoader`, custom loops, optimizers, schedules, clipping, accumulation |
/// | [`saving`](guide::saving) | safetensors to and from PyTorch, state dicts, checkpoints and resuming |
/// | [`pytorch_cheatsheet`](guide::pytorch_cheatsheet) | PyTorch expression → sinew expression, and the differences that matter |
/// | [`performance`](guide::performance) | threads, determinism, views and contiguity, matmul parallelism, the benchmarks |
/// | `pretrained` (feature `models`) | loading a Hugging Face model, tokenization, sentence embeddings, fine-tuning |
/// | `distributed` (feature `distributed`) | data-parallel training on MPI: one machine, several, threads per rank, what to expect |
pub mod guide {
    #[doc = include_str!("../docs/getting-started.md")]
    pub mod getting_started {}

    #[doc = include_str!("../docs/tensors.md")]
    pub mod tensors {}

    #[doc = include_str!("../docs/autograd.md")]
    pub mod autograd {}

    #[doc = include_str!("../docs/models.md")]
    pub mod models {}

    #[doc = include_str!("../docs/training.md")]
    pub mod training {}

    #[doc = include_str!("../docs/saving.md")]
    pub mod saving {}

    #[doc = include_str!("../docs/pytorch-cheatsheet.md")]
    pub mod pytorch_cheatsheet {}

    #[doc = include_str!("../docs/performance.md")]
    pub mod performance {}

    #[cfg(feature = "models")]
    #[doc = include_str!("../docs/pretrained.md")]
    pub mod pretrained {}

    #[cfg(feature = "distributed")]
    #[doc = include_str!("../docs/distributed.md")]
    pub mod distributed {}
}

/// The names most programs need: `use sinew::prelude::*;`.
pub mod prelude {
    pub use sinew_autograd::{Gradients, Param, Var, no_grad};
    pub use sinew_data::{DataLoader, Dataset, TensorDataset};
    pub use sinew_nn::loss::{CrossEntropyOptions, Reduction, cross_entropy, mse_loss};
    pub use sinew_nn::{
        BatchNorm1d, BatchNorm2d, Conv2d, Dropout, Embedding, Flatten, Forward, LayerNorm, Linear, MaxPool2d,
        Module, Relu, Sequential, Sigmoid, Tanh,
    };
    pub use sinew_optim::{Adam, AdamW, Optimizer, Scheduler, Sgd, clip_grad_norm};
    pub use sinew_tensor::{Conv2dOptions, DType, Generator, Pool2dOptions, Tensor, manual_seed};
    pub use sinew_train::{Loss, Trainer, Verbosity, evaluate, predict};
}

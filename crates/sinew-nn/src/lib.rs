//! # sinew-nn
//!
//! Layers, activations, losses and initialisation for sinew, with PyTorch's names,
//! defaults and parameter layouts, so that a PyTorch `state_dict` loads unchanged.
//!
//! ```
//! use sinew_nn::loss::{CrossEntropyOptions, cross_entropy};
//! use sinew_nn::{Forward, Linear, Module, Relu, Sequential};
//! use sinew_autograd::Var;
//! use sinew_tensor::{DType, Generator, Tensor};
//!
//! let mut g = Generator::new(0);
//! let net = Sequential::new().add(Linear::new(4, 16, &mut g)).add(Relu).add(Linear::new(16, 3, &mut g));
//! let x = Var::constant(Tensor::randn_with(&[8, 4], DType::F32, &mut g));
//! let y = Tensor::rand_int_with(&[8], 0, 3, &mut g);
//! let loss = cross_entropy(&net.forward(&x), &y, &CrossEntropyOptions::default());
//! let grads = loss.backward();
//! assert!(net.parameters().iter().all(|p| grads.get_id(p.id()).is_some()));
//! ```
//!
//! - [`Module`] (derivable with `#[derive(Module)]`) names parameters and buffers and
//!   switches train/eval; [`Forward`] is `forward(&Var) -> Var`.
//! - Layers: [`Linear`], [`Conv1d`], [`Conv2d`], [`ConvTranspose2d`], pooling, [`Flatten`],
//!   [`Dropout`], [`BatchNorm1d`]/[`BatchNorm2d`], [`LayerNorm`], [`Embedding`],
//!   [`Rnn`], [`Lstm`], [`Gru`], [`MultiheadAttention`] and
//!   [`attention::scaled_dot_product_attention`], [`Sequential`], and the activation modules.
//! - [`functional`]: the layers as functions of inputs and weights (`F.linear`,
//!   `F.layer_norm`, `F.batch_norm`, `F.embedding`, `F.conv2d`, `F.dropout`).
//! - [`loss`]: MSE, L1, Huber, smooth L1, BCE, BCE with logits, cross entropy, NLL, KL.
//! - [`init`]: PyTorch's initialisers, seeded.
//! - [`hooks`]: the output of every named submodule during a forward pass (forward hooks);
//!   [`summary`] / [`summary_with_input`]: Keras' `model.summary()`.

// lets `#[derive(Module)]` name this crate `sinew_nn` from inside it, too
#[allow(unused_extern_crates)]
extern crate self as sinew_nn;

mod activation;
pub mod attention;
mod conv;
pub mod functional;
mod gradcheck;
pub mod hooks;
pub mod init;
mod linear;
pub mod loss;
mod module;
mod norm;
mod recurrent;
mod summary;

pub use activation::{
    Elu, Gelu, GeluTanh, Identity, LeakyRelu, LogSoftmax, Relu, Sigmoid, Silu, Softmax, Softplus, Tanh,
};
pub use attention::{
    AttentionMask, MultiheadAttention, MultiheadAttentionOptions, scaled_dot_product_attention,
};
pub use conv::{AdaptiveAvgPool2d, AvgPool2d, Conv1d, Conv2d, ConvTranspose2d, MaxPool2d};
pub use gradcheck::{ParamGradcheckError, gradcheck_module, gradcheck_params};
pub use linear::{Embedding, Flatten, Linear, Sequential};
pub use module::{Buffer, Forward, LoadReport, Module, ModuleTree, Visitor};
pub use norm::{BatchNorm1d, BatchNorm2d, Dropout, LayerNorm};
pub use recurrent::{Gru, Lstm, RecurrentOptions, RecurrentWeights, Rnn, RnnNonlinearity};
pub use sinew_nn_derive::Module;
pub use summary::{Summary, SummaryRow, summary, summary_with_input};

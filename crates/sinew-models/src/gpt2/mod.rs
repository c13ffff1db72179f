//! GPT-2-style decoders (`transformers.GPT2LMHeadModel`): a configuration
//! ([`Gpt2Config`]), the model with Hugging Face's parameter names and `Conv1D` layouts
//! (so a `model.safetensors` folder loads as it is, [`Gpt2LMHeadModel::from_pretrained`]),
//! a head tied to the token embedding as one parameter, a key/value cache
//! ([`KvCache`]) and generation ([`Gpt2LMHeadModel::generate`]: greedy, temperature,
//! top-k, top-p; stop tokens; batches of prompts of different lengths).

mod config;
mod generate;
mod model;
mod pretrained;

pub use config::{Activation, Gpt2Config};
pub use generate::{GenerateOptions, Sampling};
pub use model::{
    Conv1D, Gpt2Attention, Gpt2Block, Gpt2Input, Gpt2LMHeadModel, Gpt2Mlp, Gpt2Model, KvCache, causal_lm_loss,
};

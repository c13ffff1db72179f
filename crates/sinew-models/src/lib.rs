//! Pretrained architectures for sinew, loaded from the files Hugging Face ships.
//!
//! The first family is BERT ([`bert`]): encoders of any size driven by `config.json`,
//! loaded from `model.safetensors` by Hugging Face's parameter names, with
//! tokenization from `tokenizer.json` ([`Tokenizer`], the `tokenizers` feature, on by
//! default), sentence embeddings as sentence-transformers computes them
//! ([`SentenceEmbedder`], [`PoolingMode`], [`cosine_similarity`], [`semantic_search`]) and
//! a classification head for fine-tuning ([`bert::BertForSequenceClassification`]).
//!
//! The second is GPT-2 ([`gpt2`]): decoders loaded the same way (Hugging Face's `Conv1D`
//! layouts, a head tied to the token embedding as one parameter), trained from scratch or
//! further, and generating text ([`gpt2::Gpt2LMHeadModel::generate`]: greedy,
//! temperature, top-k, top-p, a key/value cache, left-padded batches).
//!
//! A loaded model is an ordinary sinew module: `no_grad` for inference, `train()` and an
//! optimizer for fine-tuning, `cast(DType::F64)` for double precision. A model is `Sync`:
//! one loaded model serves inference from several threads at once (each call builds its
//! own graph; nothing in a forward pass mutates the model, but for the dropout
//! generators in training mode, which are behind a lock).

mod activation;
mod error;
mod init;

pub mod bert;
#[cfg(feature = "tokenizers")]
mod embedder;
pub mod gpt2;
mod sentence;
#[cfg(feature = "tokenizers")]
mod tokenizer;

#[cfg(feature = "tokenizers")]
pub use embedder::SentenceEmbedder;
pub use error::{ModelError, Result};
pub use sentence::{Hit, PoolingMode, cosine_similarity, l2_normalize, semantic_search};
#[cfg(feature = "tokenizers")]
pub use tokenizer::Tokenizer;

//! BERT encoders (`transformers.BertModel` and its family: bert-base, MiniLM, ...) driven by
//! a Hugging Face `config.json`, with Hugging Face's parameter names, so that a model
//! folder loads as it is ([`BertModel::from_pretrained`]).

mod classify;
mod config;
mod model;
mod pretrained;

pub use classify::{BertForSequenceClassification, ClassifierPooling};
pub use config::{Activation, BertConfig};
pub use model::{
    BertAttention, BertEmbeddings, BertInput, BertLayer, BertModel, BertOutput, BertPooler,
    BertResidualOutput, BertSelfAttention,
};

//! `BertConfig`: the architecture as Hugging Face's `config.json` describes it.

use std::path::Path;

use serde::{Deserialize, Serialize};

pub use crate::activation::Activation;
use crate::error::{ModelError, Result};

/// A BERT encoder's shape and hyper-parameters, read from `config.json` with Hugging
/// Face's field names and defaults (those of `transformers.BertConfig`). Fields sinew does
/// not use (`architectures`, `use_cache`, ...) are ignored.
///
/// ```
/// use sinew_models::bert::{Activation, BertConfig};
/// let c = BertConfig::from_json(r#"{"hidden_size": 64, "num_hidden_layers": 2,
///     "num_attention_heads": 4, "intermediate_size": 128, "hidden_act": "gelu_new"}"#)?;
/// assert_eq!((c.hidden_size, c.head_dim(), c.hidden_act), (64, 16, Activation::GeluTanh));
/// assert_eq!(c.vocab_size, 30522); // Hugging Face's default
/// # Ok::<(), sinew_models::ModelError>(())
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct BertConfig {
    /// Number of token ids.
    pub vocab_size: usize,
    /// Width of every hidden state.
    pub hidden_size: usize,
    /// Number of encoder layers.
    pub num_hidden_layers: usize,
    /// Attention heads per layer (`hidden_size` must be a multiple).
    pub num_attention_heads: usize,
    /// Width of the intermediate (feed-forward) projection.
    pub intermediate_size: usize,
    /// The intermediate projection's activation.
    pub hidden_act: Activation,
    /// Dropout after the embeddings and each sublayer's output projection (training only).
    pub hidden_dropout_prob: f64,
    /// Dropout on the attention probabilities (training only).
    pub attention_probs_dropout_prob: f64,
    /// Longest sequence the position embeddings cover.
    pub max_position_embeddings: usize,
    /// Number of token types (segments); 1 or 2 in practice.
    pub type_vocab_size: usize,
    /// LayerNorm's epsilon.
    pub layer_norm_eps: f64,
    /// The padding token's id.
    pub pad_token_id: usize,
    /// Standard deviation of the random initialisation ([`crate::bert::BertModel::new`]).
    pub initializer_range: f64,
    /// Only `"absolute"` (learned positions) is supported.
    pub position_embedding_type: String,
    /// `"bert"` for the family; checked when present.
    pub model_type: Option<String>,
}

impl Default for BertConfig {
    /// `transformers.BertConfig()`: bert-base-uncased.
    fn default() -> Self {
        BertConfig {
            vocab_size: 30522,
            hidden_size: 768,
            num_hidden_layers: 12,
            num_attention_heads: 12,
            intermediate_size: 3072,
            hidden_act: Activation::Gelu,
            hidden_dropout_prob: 0.1,
            attention_probs_dropout_prob: 0.1,
            max_position_embeddings: 512,
            type_vocab_size: 2,
            layer_norm_eps: 1e-12,
            pad_token_id: 0,
            initializer_range: 0.02,
            position_embedding_type: "absolute".into(),
            model_type: None,
        }
    }
}

impl BertConfig {
    /// Parses and validates a `config.json` text.
    ///
    /// # Errors
    /// [`ModelError::Config`] for malformed JSON, an unknown activation, or sizes that do
    /// not make a BERT (see [`BertConfig::validate`]).
    pub fn from_json(text: &str) -> Result<Self> {
        crate::error::parse_config(text, BertConfig::validate)
    }

    /// Reads and validates `config.json` (or any file of that form).
    ///
    /// # Errors
    /// [`ModelError::Io`] if the file cannot be read, [`ModelError::Config`] (naming the
    /// file) if it is not a valid BERT configuration.
    pub fn from_file(path: impl AsRef<Path>) -> Result<Self> {
        crate::error::read_config(path.as_ref(), BertConfig::validate)
    }

    /// Checks that the sizes make a BERT: every size non-zero, `hidden_size` a multiple
    /// of `num_attention_heads`, dropout probabilities in `[0, 1)`, a positive epsilon,
    /// absolute position embeddings and, when named, the `bert` model type.
    ///
    /// # Errors
    /// [`ModelError::Config`] naming the first field that is wrong.
    pub fn validate(&self) -> Result<()> {
        let bad = |msg: String| Err(ModelError::Config { path: None, msg });
        for (name, value) in [
            ("vocab_size", self.vocab_size),
            ("hidden_size", self.hidden_size),
            ("num_attention_heads", self.num_attention_heads),
            ("intermediate_size", self.intermediate_size),
            ("max_position_embeddings", self.max_position_embeddings),
            ("type_vocab_size", self.type_vocab_size),
        ] {
            if value == 0 {
                return bad(format!("{name} must be positive, got 0"));
            }
        }
        if !self.hidden_size.is_multiple_of(self.num_attention_heads) {
            return bad(format!(
                "hidden_size {} is not a multiple of num_attention_heads {}",
                self.hidden_size, self.num_attention_heads
            ));
        }
        for (name, p) in [
            ("hidden_dropout_prob", self.hidden_dropout_prob),
            ("attention_probs_dropout_prob", self.attention_probs_dropout_prob),
        ] {
            if !(0.0..1.0).contains(&p) {
                return bad(format!("{name} must be in [0, 1), got {p}"));
            }
        }
        if !(self.layer_norm_eps > 0.0 && self.layer_norm_eps.is_finite()) {
            return bad(format!("layer_norm_eps must be positive, got {}", self.layer_norm_eps));
        }
        if self.position_embedding_type != "absolute" {
            return bad(format!(
                "position_embedding_type {:?} is not supported (only \"absolute\")",
                self.position_embedding_type
            ));
        }
        if let Some(t) = &self.model_type
            && t != "bert"
        {
            return bad(format!("model_type {t:?} is not a BERT (expected \"bert\")"));
        }
        if self.pad_token_id >= self.vocab_size {
            return bad(format!(
                "pad_token_id {} is outside vocab_size {}",
                self.pad_token_id, self.vocab_size
            ));
        }
        Ok(())
    }

    /// Width of one attention head: `hidden_size / num_attention_heads`.
    pub fn head_dim(&self) -> usize {
        self.hidden_size / self.num_attention_heads
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_bert_base_and_unknown_fields_are_ignored() {
        let c =
            BertConfig::from_json(r#"{"architectures": ["BertModel"], "initializer_range": 0.02}"#).unwrap();
        assert_eq!(c, BertConfig::default());
    }

    #[test]
    fn wrong_configs_name_the_field() {
        let cases = [
            (r#"{"hidden_size": 100, "num_attention_heads": 12}"#, "not a multiple"),
            (r#"{"hidden_act": "mish"}"#, "unknown variant"),
            (r#"{"num_hidden_layers": "six"}"#, "invalid type"),
            (r#"{"vocab_size": 0}"#, "vocab_size must be positive"),
            (r#"{"hidden_dropout_prob": 1.5}"#, "hidden_dropout_prob"),
            (r#"{"position_embedding_type": "relative_key"}"#, "relative_key"),
            (r#"{"model_type": "gpt2"}"#, "gpt2"),
            (r#"{"layer_norm_eps": 0}"#, "layer_norm_eps"),
            ("[1, 2", "EOF"),
        ];
        for (json, want) in cases {
            let err = BertConfig::from_json(json).unwrap_err().to_string();
            assert!(err.contains(want), "{json}: {err}");
        }
    }
}

//! `Gpt2Config`: a GPT-2 decoder as Hugging Face's `config.json` describes it.

use std::path::Path;

use serde::{Deserialize, Serialize};

pub use crate::activation::Activation;
use crate::error::{ModelError, Result};

/// A GPT-2 decoder's shape and hyper-parameters, read from `config.json` with Hugging
/// Face's field names and defaults (those of `transformers.GPT2Config`: the 124M-parameter
/// `gpt2`). Fields sinew does not use are ignored.
///
/// One field is sinew's own: `lm_head_bias` (default `false`, as `GPT2LMHeadModel`) gives
/// the language-model head a bias, as nanoGPT-style models written by hand often have.
///
/// ```
/// use sinew_models::gpt2::Gpt2Config;
/// let c = Gpt2Config::from_json(r#"{"vocab_size": 65, "n_positions": 64, "n_embd": 128,
///     "n_layer": 2, "n_head": 4, "tie_word_embeddings": false}"#)?;
/// assert_eq!((c.head_dim(), c.inner_dim(), c.tie_word_embeddings), (32, 512, false));
/// assert_eq!(Gpt2Config::default().vocab_size, 50257); // Hugging Face's default
/// # Ok::<(), sinew_models::ModelError>(())
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Gpt2Config {
    /// Vocabulary size: rows of `wte` and of the head.
    pub vocab_size: usize,
    /// Longest sequence (rows of `wpe`), prompt and generated tokens together.
    pub n_positions: usize,
    /// Width of the residual stream.
    pub n_embd: usize,
    /// Number of blocks.
    pub n_layer: usize,
    /// Attention heads per block.
    pub n_head: usize,
    /// Width of the MLP; `None` is `4 * n_embd`.
    pub n_inner: Option<usize>,
    /// The MLP's activation (`"gelu_new"` for GPT-2).
    pub activation_function: Activation,
    /// Dropout on the residual branches (attention and MLP outputs).
    pub resid_pdrop: f64,
    /// Dropout on the summed embeddings.
    pub embd_pdrop: f64,
    /// Dropout on the attention probabilities.
    pub attn_pdrop: f64,
    /// LayerNorm's epsilon.
    pub layer_norm_epsilon: f64,
    /// Standard deviation of the random initialisation.
    pub initializer_range: f64,
    /// Scale attention scores by `1/√head_dim`.
    pub scale_attn_weights: bool,
    /// Also scale block `i`'s scores by `1/(i + 1)`.
    pub scale_attn_by_inverse_layer_idx: bool,
    /// Whether the head shares the token embedding's matrix (one parameter).
    pub tie_word_embeddings: bool,
    /// Beginning-of-text id.
    pub bos_token_id: Option<usize>,
    /// End-of-text id: where generation stops by default (an id outside the vocabulary,
    /// as `gpt2`'s default in a smaller vocabulary, never stops it).
    pub eos_token_id: Option<usize>,
    /// sinew's own: a bias on the language-model head.
    pub lm_head_bias: bool,
    /// `"gpt2"` when set.
    pub model_type: Option<String>,
    /// Cross-attention (encoder-decoder use): not supported, must be `false`.
    pub add_cross_attention: bool,
}

impl Default for Gpt2Config {
    fn default() -> Self {
        Gpt2Config {
            vocab_size: 50257,
            n_positions: 1024,
            n_embd: 768,
            n_layer: 12,
            n_head: 12,
            n_inner: None,
            activation_function: Activation::GeluTanh,
            resid_pdrop: 0.1,
            embd_pdrop: 0.1,
            attn_pdrop: 0.1,
            layer_norm_epsilon: 1e-5,
            initializer_range: 0.02,
            scale_attn_weights: true,
            scale_attn_by_inverse_layer_idx: false,
            tie_word_embeddings: true,
            bos_token_id: Some(50256),
            eos_token_id: Some(50256),
            lm_head_bias: false,
            model_type: None,
            add_cross_attention: false,
        }
    }
}

impl Gpt2Config {
    /// Parses and validates `config.json` text.
    ///
    /// # Errors
    /// [`ModelError::Config`] naming the field for malformed JSON or an impossible shape.
    pub fn from_json(text: &str) -> Result<Self> {
        crate::error::parse_config(text, Gpt2Config::validate)
    }

    /// Reads and validates a `config.json` file.
    ///
    /// # Errors
    /// [`ModelError::MissingFile`] / [`ModelError::Io`] for the file,
    /// [`ModelError::Config`] (naming the file) for its contents.
    pub fn from_file(path: impl AsRef<Path>) -> Result<Self> {
        crate::error::read_config(path.as_ref(), Gpt2Config::validate)
    }

    /// The configuration as `config.json` text (Hugging Face's names, plus
    /// `model_type: "gpt2"`), which `transformers` reads back.
    pub fn to_json(&self) -> String {
        let mut c = self.clone();
        c.model_type.get_or_insert_with(|| "gpt2".into());
        serde_json::to_string_pretty(&c).expect("a Gpt2Config serialises")
    }

    /// Checks that the configuration describes a buildable decoder.
    ///
    /// # Errors
    /// [`ModelError::Config`] naming the offending field.
    pub fn validate(&self) -> Result<()> {
        let bad = |msg: String| Err(ModelError::Config { path: None, msg });
        for (name, value) in [
            ("vocab_size", self.vocab_size),
            ("n_positions", self.n_positions),
            ("n_embd", self.n_embd),
            ("n_head", self.n_head),
            ("n_inner", self.inner_dim()),
        ] {
            if value == 0 {
                return bad(format!("{name} must be positive, got 0"));
            }
        }
        if !self.n_embd.is_multiple_of(self.n_head) {
            return bad(format!("n_embd {} is not a multiple of n_head {}", self.n_embd, self.n_head));
        }
        for (name, p) in [
            ("resid_pdrop", self.resid_pdrop),
            ("embd_pdrop", self.embd_pdrop),
            ("attn_pdrop", self.attn_pdrop),
        ] {
            if !(0.0..1.0).contains(&p) {
                return bad(format!("{name} must be in [0, 1), got {p}"));
            }
        }
        if !(self.layer_norm_epsilon > 0.0 && self.layer_norm_epsilon.is_finite()) {
            return bad(format!("layer_norm_epsilon must be positive, got {}", self.layer_norm_epsilon));
        }
        if self.add_cross_attention {
            return bad("add_cross_attention is not supported (a decoder-only GPT-2)".into());
        }
        if let Some(t) = &self.model_type
            && t != "gpt2"
        {
            return bad(format!("model_type {t:?} is not a GPT-2 (expected \"gpt2\")"));
        }
        Ok(())
    }

    /// Width of one attention head, `n_embd / n_head`.
    pub fn head_dim(&self) -> usize {
        self.n_embd / self.n_head
    }

    /// Width of the MLP: `n_inner`, or `4 * n_embd`.
    pub fn inner_dim(&self) -> usize {
        self.n_inner.unwrap_or(4 * self.n_embd)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_gpt2_small_and_unknown_fields_are_ignored() {
        let c = Gpt2Config::from_json(r#"{"architectures": ["GPT2LMHeadModel"], "n_ctx": 1024}"#).unwrap();
        assert_eq!(c, Gpt2Config::default());
        assert_eq!((c.head_dim(), c.inner_dim()), (64, 3072));
    }

    #[test]
    fn a_config_survives_its_json() {
        let c = Gpt2Config { n_layer: 3, n_inner: Some(40), lm_head_bias: true, ..Gpt2Config::default() };
        let back = Gpt2Config::from_json(&c.to_json()).unwrap();
        assert_eq!(back, Gpt2Config { model_type: Some("gpt2".into()), ..c });
    }

    #[test]
    fn wrong_configs_name_the_field() {
        let cases = [
            (r#"{"n_embd": 100, "n_head": 12}"#, "not a multiple"),
            (r#"{"activation_function": "mish"}"#, "unknown variant"),
            (r#"{"n_layer": "six"}"#, "invalid type"),
            (r#"{"vocab_size": 0}"#, "vocab_size must be positive"),
            (r#"{"n_inner": 0}"#, "n_inner must be positive"),
            (r#"{"attn_pdrop": 1.5}"#, "attn_pdrop"),
            (r#"{"layer_norm_epsilon": 0}"#, "layer_norm_epsilon"),
            (r#"{"model_type": "bert"}"#, "not a GPT-2"),
            (r#"{"add_cross_attention": true}"#, "add_cross_attention"),
            ("{", "EOF"),
        ];
        for (json, want) in cases {
            let err = Gpt2Config::from_json(json).unwrap_err().to_string();
            assert!(err.contains(want), "{json}: {err}");
        }
    }
}

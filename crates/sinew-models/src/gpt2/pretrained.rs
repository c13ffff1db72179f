//! Loading a GPT-2 from a Hugging Face model folder (`config.json` + `model.safetensors`),
//! and saving one that `transformers` loads.

use std::path::Path;

use sinew_nn::Module;
use sinew_tensor::Tensor;

use super::config::Gpt2Config;
use super::model::Gpt2LMHeadModel;
use crate::error::{ModelError, Result, load_folder_weights, load_strict};
use crate::init::Init;

impl Gpt2LMHeadModel {
    /// Loads `config.json` and `model.safetensors` (or an older folder's `pytorch_model.bin`)
    /// from a Hugging Face model folder (what
    /// `save_pretrained` writes, or a downloaded `gpt2`), in evaluation mode, in the
    /// weights' element type.
    ///
    /// The weights are matched by Hugging Face's names, strictly (every tensor the
    /// configuration implies, with its shape, and nothing else), with what
    /// `GPT2LMHeadModel.from_pretrained` also accepts:
    ///
    /// - the bare `GPT2Model` names of the original `gpt2` upload (`h.0.attn.c_attn.weight`,
    ///   `wte.weight`, ...) as well as `transformer.`-prefixed ones;
    /// - the causal-mask buffers `h.{i}.attn.bias` / `h.{i}.attn.masked_bias` older
    ///   versions saved, ignored;
    /// - a tied head from either name: `transformer.wte.weight` (what `save_pretrained`
    ///   keeps) or `lm_head.weight` alone.
    ///
    /// # Errors
    /// [`ModelError::MissingFile`] for a missing file, [`ModelError::Config`] for a bad
    /// `config.json`, [`ModelError::Weights`] for an unreadable weights file and
    /// [`ModelError::Mismatch`] (naming the tensors) for weights that do not fit the
    /// configuration. Nothing panics on a bad folder.
    pub fn from_pretrained(dir: impl AsRef<Path>) -> Result<Self> {
        let dir = dir.as_ref();
        let config = Gpt2Config::from_file(dir.join("config.json"))?;
        load_folder_weights(dir, |weights| Gpt2LMHeadModel::from_weights(&config, weights))
    }

    /// Builds a model for `config` holding `weights` (named as Hugging Face names them; see
    /// [`Gpt2LMHeadModel::from_pretrained`]), in evaluation mode.
    ///
    /// # Errors
    /// [`ModelError::Mismatch`] if the weights do not fit the configuration.
    pub fn from_weights(config: &Gpt2Config, weights: Vec<(String, Tensor)>) -> Result<Self> {
        config.validate()?;
        let weights = canonical_names(weights, config.tie_word_embeddings);
        let model = Gpt2LMHeadModel::build(config, &mut Init::zeros());
        load_strict(&model, &weights, "transformer.wte.weight")?;
        Ok(model)
    }

    /// Writes `config.json` and `model.safetensors` (a tied matrix once, as
    /// `transformer.wte.weight`) into `dir`, created if needed: a folder
    /// [`Gpt2LMHeadModel::from_pretrained`] and `transformers`' `from_pretrained` read.
    /// Each file is written atomically (a crash leaves the previous one).
    ///
    /// # Errors
    /// [`ModelError::Io`] / [`ModelError::Weights`] naming the file that could not be written.
    pub fn save_pretrained(&self, dir: impl AsRef<Path>) -> Result<()> {
        let dir = dir.as_ref();
        std::fs::create_dir_all(dir).map_err(|source| ModelError::Io { path: dir.to_path_buf(), source })?;
        let config = dir.join("config.json");
        sinew_serialize::write_atomic(&config, self.config().to_json().as_bytes())
            .map_err(|source| ModelError::Weights { path: config, source: Box::new(source) })?;
        let weights = dir.join("model.safetensors");
        sinew_serialize::save_safetensors(&weights, &self.state_dict())
            .map_err(|source| ModelError::Weights { path: weights, source: Box::new(source) })
    }
}

/// The weights under the names sinew's model has: `transformer.` added to bare
/// `GPT2Model` names, causal-mask buffers dropped, a tied head's matrix under
/// `transformer.wte.weight` only.
fn canonical_names(weights: Vec<(String, Tensor)>, tied: bool) -> Vec<(String, Tensor)> {
    let bare = !weights.iter().any(|(n, _)| n.starts_with("transformer.") || n.starts_with("lm_head."));
    let mut weights: Vec<(String, Tensor)> = weights
        .into_iter()
        .map(|(n, t)| if bare { (format!("transformer.{n}"), t) } else { (n, t) })
        .filter(|(n, _)| !(n.ends_with(".attn.bias") || n.ends_with(".attn.masked_bias")))
        .collect();
    if tied {
        let has_wte = weights.iter().any(|(n, _)| n == "transformer.wte.weight");
        match has_wte {
            // both present: the embedding's wins, as the tie makes them one
            true => weights.retain(|(n, _)| n != "lm_head.weight"),
            false => {
                for (n, _) in &mut weights {
                    if n == "lm_head.weight" {
                        *n = "transformer.wte.weight".into();
                    }
                }
            }
        }
    }
    weights
}

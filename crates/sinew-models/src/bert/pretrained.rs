//! Loading a BERT from a Hugging Face model folder (`config.json` + `model.safetensors`).

use std::path::Path;

use sinew_tensor::Tensor;

use super::config::BertConfig;
use super::model::BertModel;
use crate::error::{Result, load_folder_weights, load_strict};
use crate::init::Init;

/// Keys a Hugging Face BERT checkpoint may hold that are not weights: the
/// `position_ids` buffer (`0..max_position_embeddings`), which older `transformers`
/// versions saved and newer ones recompute.
const IGNORED: &[&str] = &["embeddings.position_ids"];

impl BertModel {
    /// Loads `config.json` and `model.safetensors` (or an older folder's `pytorch_model.bin`)
    /// from a Hugging Face model folder
    /// (what `save_pretrained` writes, or a downloaded model), in evaluation mode, in the
    /// weights' element type (cast with [`Module::cast`](sinew_nn::Module::cast) for another).
    ///
    /// The weights are matched by Hugging Face's names, strictly: every tensor the
    /// configuration implies must be present with its shape, and nothing else may be, but
    /// for the `position_ids` buffer. Weights saved from a model with heads
    /// (`BertForSequenceClassification`, ...) carry the encoder under `bert.`: those are
    /// taken and the heads ignored, as `BertModel.from_pretrained` does. The pooler is
    /// built when the file has its weights.
    ///
    /// # Errors
    /// [`ModelError::MissingFile`](crate::ModelError::MissingFile) for a missing file, [`ModelError::Config`](crate::ModelError::Config) for a bad
    /// `config.json`, [`ModelError::Weights`](crate::ModelError::Weights) for an unreadable weights file and
    /// [`ModelError::Mismatch`](crate::ModelError::Mismatch) (naming the tensors) for weights that do not fit the
    /// configuration. Nothing panics on a bad folder.
    pub fn from_pretrained(dir: impl AsRef<Path>) -> Result<Self> {
        let dir = dir.as_ref();
        let config = BertConfig::from_file(dir.join("config.json"))?;
        load_folder_weights(dir, |weights| BertModel::from_weights(&config, weights))
    }

    /// Builds a model for `config` holding `weights` (named as Hugging Face names them),
    /// in evaluation mode: what [`BertModel::from_pretrained`] does once the files are read.
    ///
    /// # Errors
    /// [`ModelError::Mismatch`](crate::ModelError::Mismatch) if the weights do not fit the configuration (the report
    /// names the missing, unexpected and mis-shaped tensors).
    pub fn from_weights(config: &BertConfig, weights: Vec<(String, Tensor)>) -> Result<Self> {
        config.validate()?;
        let weights = encoder_weights(weights);
        let has_pooler = weights.iter().any(|(n, _)| n.starts_with("pooler."));
        let model = BertModel::build(config, has_pooler, &mut Init::zeros());
        load_strict(&model, &weights, "embeddings.word_embeddings.weight")?;
        Ok(model)
    }
}

/// The encoder's tensors: the `bert.` ones of a model with heads, prefix removed, and
/// neither the ignored buffers.
fn encoder_weights(weights: Vec<(String, Tensor)>) -> Vec<(String, Tensor)> {
    let prefixed = weights.iter().any(|(n, _)| n.starts_with("bert."));
    weights
        .into_iter()
        .filter_map(|(name, t)| match prefixed {
            true => name.strip_prefix("bert.").map(|n| (n.to_string(), t)),
            false => Some((name, t)),
        })
        .filter(|(name, _)| !IGNORED.contains(&name.as_str()))
        .collect()
}

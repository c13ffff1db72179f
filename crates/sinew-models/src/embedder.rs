//! `SentenceEmbedder`: a sentence-transformers model folder, loaded whole.

use std::path::Path;

use serde::Deserialize;
use sinew_autograd::{Var, no_grad};
use sinew_tensor::Tensor;

use crate::bert::{BertInput, BertModel};
use crate::error::{ModelError, Result, read_text};
use crate::sentence::{PoolingMode, l2_normalize};
use crate::tokenizer::Tokenizer;

#[derive(Deserialize)]
struct ModuleEntry {
    #[serde(default)]
    path: String,
    #[serde(rename = "type")]
    kind: String,
}

#[derive(Deserialize)]
struct SentenceBertConfig {
    max_seq_length: Option<usize>,
}

/// A sentence-embedding model as sentence-transformers runs it: tokenizer, BERT, pooling
/// and (when `modules.json` lists `Normalize`) L2 normalisation.
///
/// ```no_run
/// use sinew_models::{SentenceEmbedder, cosine_similarity};
/// let model = SentenceEmbedder::from_pretrained("all-MiniLM-L6-v2")?;
/// let e = model.embed(&["A man is eating food.", "A man is eating a piece of bread."])?;
/// println!("{}", cosine_similarity(&e, &e));
/// # Ok::<(), sinew_models::ModelError>(())
/// ```
#[derive(Debug)]
pub struct SentenceEmbedder {
    /// Text to ids.
    pub tokenizer: Tokenizer,
    /// The encoder.
    pub model: BertModel,
    /// Token states to one vector.
    pub pooling: PoolingMode,
    /// Whether embeddings are scaled to unit length.
    pub normalize: bool,
}

impl SentenceEmbedder {
    /// Texts embedded per forward pass by [`SentenceEmbedder::embed`] (sentence-transformers'
    /// default batch size).
    pub const BATCH_SIZE: usize = 32;

    /// Loads a sentence-transformers folder: `tokenizer.json`, the BERT
    /// ([`BertModel::from_pretrained`], evaluation mode), `modules.json` (the pooling
    /// module's folder and whether a `Normalize` module follows; without the file, mean
    /// pooling and no normalisation, as sentence-transformers assumes) and the truncation
    /// length `max_seq_length` of `sentence_bert_config.json` (else the tokenizer's).
    ///
    /// # Errors
    /// Any [`ModelError`] of the parts, naming the file.
    pub fn from_pretrained(dir: impl AsRef<Path>) -> Result<Self> {
        let dir = dir.as_ref();
        let json = |file: &Path, e: serde_json::Error| ModelError::Config {
            path: Some(file.to_path_buf()),
            msg: e.to_string(),
        };
        let mut tokenizer = Tokenizer::from_file(dir.join("tokenizer.json"))?;
        let st_config = dir.join("sentence_bert_config.json");
        if st_config.is_file() {
            let c: SentenceBertConfig =
                serde_json::from_str(&read_text(&st_config)?).map_err(|e| json(&st_config, e))?;
            if let Some(n) = c.max_seq_length {
                tokenizer = tokenizer.with_max_length(n)?;
            }
        }
        let model = BertModel::from_pretrained(dir)?;
        let (mut pooling, mut normalize) = (PoolingMode::Mean, false);
        let modules = dir.join("modules.json");
        if modules.is_file() {
            let entries: Vec<ModuleEntry> =
                serde_json::from_str(&read_text(&modules)?).map_err(|e| json(&modules, e))?;
            for m in &entries {
                if m.kind.ends_with(".Pooling") {
                    pooling = PoolingMode::from_file(dir.join(&m.path).join("config.json"))?;
                } else if m.kind.ends_with(".Normalize") {
                    normalize = true;
                } else if !m.kind.ends_with(".Transformer") {
                    return Err(ModelError::Config {
                        path: Some(modules),
                        msg: format!("module type {:?} is not supported", m.kind),
                    });
                }
            }
        }
        Ok(SentenceEmbedder { tokenizer, model, pooling, normalize })
    }

    /// The embeddings `(texts, hidden)` of `texts`, in the model's element type, computed
    /// without a graph, [`SentenceEmbedder::BATCH_SIZE`] texts at a time.
    ///
    /// # Errors
    /// [`ModelError::Input`] for no texts; the tokenizer's errors.
    pub fn embed(&self, texts: &[&str]) -> Result<Tensor> {
        if texts.is_empty() {
            return Err(ModelError::Input("SentenceEmbedder::embed: no texts".into()));
        }
        let parts = no_grad(|| {
            texts
                .chunks(Self::BATCH_SIZE)
                .map(|chunk| Ok(self.embed_input(&self.tokenizer.encode_batch(chunk)?)?.value().clone()))
                .collect::<Result<Vec<Tensor>>>()
        })?;
        Ok(Tensor::cat(&parts.iter().collect::<Vec<_>>(), 0))
    }

    /// The embeddings of an encoded batch, recording a graph when grad mode is on (so a
    /// loss on embeddings trains the encoder).
    ///
    /// # Errors
    /// As [`BertModel::forward`].
    pub fn embed_input(&self, input: &BertInput) -> Result<Var> {
        let hidden = self.model.forward(input)?.last_hidden_state;
        let pooled = self.pooling.pool(&hidden, input.attention_mask.as_ref());
        Ok(if self.normalize { l2_normalize(&pooled) } else { pooled })
    }
}

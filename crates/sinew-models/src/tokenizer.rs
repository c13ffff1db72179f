//! Tokenization from a Hugging Face `tokenizer.json`, through Hugging Face's own
//! `tokenizers` crate (so ids match the Python tokenizer's exactly), into a
//! [`BertInput`] batch or the ids of one text (GPT-2's byte-level BPE too), and back.

use std::path::Path;

use sinew_tensor::Tensor;
use tokenizers::{PaddingDirection, PaddingParams, PaddingStrategy, TruncationParams};

use crate::bert::BertInput;
use crate::error::{ModelError, Result};

/// A Hugging Face tokenizer that encodes batches of text for a BERT: `[CLS] … [SEP]`
/// around each text (the file's post-processor), each truncated to `max_length` tokens
/// (specials included) and the batch padded on the right to its longest member, with
/// attention masks and token type ids. Encoding takes `&self`, so one tokenizer can
/// serve several threads.
///
/// ```no_run
/// use sinew_models::Tokenizer;
/// let tok = Tokenizer::from_file("all-MiniLM-L6-v2/tokenizer.json")?.with_max_length(256)?;
/// let batch = tok.encode_batch(&["Hello, world!", "A second sentence."])?;
/// assert_eq!(batch.input_ids.dims()[0], 2);
/// # Ok::<(), sinew_models::ModelError>(())
/// ```
#[derive(Clone, Debug)]
pub struct Tokenizer {
    inner: tokenizers::Tokenizer,
    max_length: usize,
}

fn tok_err(e: impl std::fmt::Display) -> ModelError {
    ModelError::Tokenizer(e.to_string())
}

impl Tokenizer {
    /// Reads a `tokenizer.json`. The truncation length is the file's (or 512 when it sets
    /// none); the file's own padding is replaced by padding to the batch's longest text.
    ///
    /// # Errors
    /// [`ModelError::MissingFile`] or [`ModelError::Tokenizer`] for a file the
    /// `tokenizers` crate cannot read.
    pub fn from_file(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let json = crate::error::read_text(path)?;
        let inner: tokenizers::Tokenizer =
            json.parse().map_err(|e| ModelError::Tokenizer(format!("{}: {e}", path.display())))?;
        let max_length = inner.get_truncation().map_or(512, |t| t.max_length);
        Tokenizer { inner, max_length }.with_max_length(max_length)
    }

    /// The same tokenizer truncating to `max_length` tokens, specials included.
    ///
    /// # Errors
    /// [`ModelError::Tokenizer`] if `max_length` is too small to hold the special tokens.
    pub fn with_max_length(mut self, max_length: usize) -> Result<Self> {
        let specials = self.inner.get_post_processor().map_or(0, |p| {
            use tokenizers::tokenizer::PostProcessor;
            p.added_tokens(false)
        });
        if max_length <= specials {
            return Err(ModelError::Tokenizer(format!(
                "max_length {max_length} leaves no room beside the {specials} special tokens"
            )));
        }
        let truncation = TruncationParams { max_length, ..Default::default() };
        self.inner.with_truncation(Some(truncation)).map_err(tok_err)?;
        let pad = self.inner.get_padding().cloned().unwrap_or_default();
        self.inner.with_padding(Some(PaddingParams {
            strategy: PaddingStrategy::BatchLongest,
            direction: PaddingDirection::Right,
            pad_to_multiple_of: None,
            ..pad
        }));
        self.max_length = max_length;
        Ok(self)
    }

    /// The truncation length, specials included.
    pub fn max_length(&self) -> usize {
        self.max_length
    }

    /// The ids of one text, with the special tokens, truncated to `max_length`.
    ///
    /// # Errors
    /// [`ModelError::Tokenizer`] if the tokenizer fails on the text.
    pub fn encode(&self, text: &str) -> Result<Vec<i64>> {
        let enc = self.inner.encode(text, true).map_err(tok_err)?;
        Ok(enc.get_ids().iter().map(|&i| i as i64).collect())
    }

    /// The text of token ids: what [`Tokenizer::encode`] undoes (for a byte-level BPE,
    /// such as GPT-2's, exactly; a WordPiece decoder joins words with spaces), without the
    /// special tokens if `skip_special_tokens`.
    ///
    /// # Errors
    /// [`ModelError::Tokenizer`] for an id outside the vocabulary.
    pub fn decode(&self, ids: &[i64], skip_special_tokens: bool) -> Result<String> {
        let vocab = self.inner.get_vocab_size(true);
        let ids: Vec<u32> = ids
            .iter()
            .map(|&id| match u32::try_from(id) {
                Ok(id) if (id as usize) < vocab => Ok(id),
                _ => Err(ModelError::Tokenizer(format!(
                    "decode: id {id} is outside the vocabulary of {vocab}"
                ))),
            })
            .collect::<Result<_>>()?;
        self.inner.decode(&ids, skip_special_tokens).map_err(tok_err)
    }

    /// The tokens (strings) of one text, as [`Tokenizer::encode`] splits it.
    ///
    /// # Errors
    /// [`ModelError::Tokenizer`] if the tokenizer fails on the text.
    pub fn tokenize(&self, text: &str) -> Result<Vec<String>> {
        Ok(self.inner.encode(text, true).map_err(tok_err)?.get_tokens().to_vec())
    }

    /// A batch: ids, attention mask and token type ids `(texts, longest)`, `i64`.
    ///
    /// # Errors
    /// [`ModelError::Tokenizer`] if the tokenizer fails on a text;
    /// [`ModelError::Input`] for an empty batch.
    pub fn encode_batch(&self, texts: &[&str]) -> Result<BertInput> {
        if texts.is_empty() {
            return Err(ModelError::Input("Tokenizer::encode_batch: no texts".into()));
        }
        self.batch(texts.iter().map(|&t| t.into()).collect())
    }

    /// Text pairs (`[CLS] a [SEP] b [SEP]`, token types 0 then 1), as for sentence-pair
    /// classification.
    ///
    /// # Errors
    /// As [`Tokenizer::encode_batch`].
    pub fn encode_pairs(&self, pairs: &[(&str, &str)]) -> Result<BertInput> {
        if pairs.is_empty() {
            return Err(ModelError::Input("Tokenizer::encode_pairs: no pairs".into()));
        }
        self.batch(pairs.iter().map(|&(a, b)| (a, b).into()).collect())
    }

    /// Encodes, pads and stacks a batch into tensors.
    fn batch(&self, inputs: Vec<tokenizers::EncodeInput<'_>>) -> Result<BertInput> {
        let encodings = self.inner.encode_batch(inputs, true).map_err(tok_err)?;
        let (b, t) = (encodings.len(), encodings[0].get_ids().len());
        let column = |f: &dyn Fn(&tokenizers::Encoding) -> &[u32]| -> Result<Tensor> {
            let data: Vec<i64> = encodings.iter().flat_map(|e| f(e).iter().map(|&v| v as i64)).collect();
            Tensor::from_vec(data, &[b, t]).map_err(tok_err)
        };
        Ok(BertInput {
            input_ids: column(&|e| e.get_ids())?,
            attention_mask: Some(column(&|e| e.get_attention_mask())?),
            token_type_ids: Some(column(&|e| e.get_type_ids())?),
        })
    }
}

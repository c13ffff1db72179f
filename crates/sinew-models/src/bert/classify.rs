//! A sequence-classification head over a BERT (`BertForSequenceClassification`).

use sinew_autograd::Var;
use sinew_nn::{Dropout, Forward, Linear, Module, Visitor};
use sinew_tensor::Generator;

use super::model::{BertInput, BertModel};
use crate::error::{ModelError, Result};
use crate::init::Init;
use crate::sentence::PoolingMode;

/// Which summary of the sequence the classifier reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClassifierPooling {
    /// The pooler's output, `tanh(dense([CLS] state))`: Hugging Face's
    /// `BertForSequenceClassification`. The encoder must have a pooler.
    Pooler,
    /// The mean of the real tokens' last hidden states (sentence-transformers' pooling),
    /// for encoders trained that way, such as MiniLM sentence models.
    Mean,
}

/// A BERT, dropout (`hidden_dropout_prob`) and `Linear(hidden, num_labels)` over the pooled
/// sequence: logits `(batch, num_labels)`. Parameter names are Hugging Face's
/// (`bert.…`, `classifier.weight`), so a `BertForSequenceClassification` checkpoint's
/// state dict loads into it. Gradients reach every encoder weight.
///
/// ```
/// use sinew_models::bert::{BertConfig, BertForSequenceClassification, BertInput, BertModel, ClassifierPooling};
/// use sinew_tensor::{Generator, Tensor};
/// let config = BertConfig::from_json(r#"{"vocab_size": 30, "hidden_size": 8, "num_hidden_layers": 1,
///     "num_attention_heads": 2, "intermediate_size": 16, "max_position_embeddings": 16}"#)?;
/// let mut g = Generator::new(0);
/// let bert = BertModel::new(&config, false, &mut g);
/// let clf = BertForSequenceClassification::new(bert, 3, ClassifierPooling::Mean, &mut g)?;
/// let ids = Tensor::from_vec(vec![1i64, 4, 2, 1, 2, 0], &[2, 3])?;
/// let mask = Tensor::from_vec(vec![1i64, 1, 1, 1, 1, 0], &[2, 3])?;
/// let logits = clf.forward(&BertInput::new(ids).with_attention_mask(mask))?;
/// assert_eq!(logits.dims(), &[2, 3]);
/// # Ok::<(), sinew_models::ModelError>(())
/// ```
#[derive(Debug)]
pub struct BertForSequenceClassification {
    /// `bert`: the encoder.
    pub bert: BertModel,
    /// `classifier`: `Linear(hidden, num_labels)`.
    pub classifier: Linear,
    dropout: Dropout,
    pooling: ClassifierPooling,
}

impl BertForSequenceClassification {
    /// A new head (weights `N(0, initializer_range)`, bias 0) over `bert`, in `bert`'s
    /// element type and in training mode.
    ///
    /// # Errors
    /// [`ModelError::Config`] for [`ClassifierPooling::Pooler`] over an encoder without a
    /// pooler, or zero labels.
    pub fn new(
        bert: BertModel,
        num_labels: usize,
        pooling: ClassifierPooling,
        g: &mut Generator,
    ) -> Result<Self> {
        if num_labels == 0 {
            return Err(ModelError::Config { path: None, msg: "num_labels must be positive".into() });
        }
        if pooling == ClassifierPooling::Pooler && bert.pooler.is_none() {
            return Err(ModelError::Config {
                path: None,
                msg: "ClassifierPooling::Pooler needs an encoder with a pooler (its weights have no pooler.dense)".into(),
            });
        }
        let c = bert.config();
        let mut init = Init::random(g, c.initializer_range);
        let (classifier, dropout) =
            (init.linear(c.hidden_size, num_labels), init.dropout(c.hidden_dropout_prob));
        let dtype = bert.embeddings.word_embeddings.weight.value().dtype();
        let model = BertForSequenceClassification { bert, classifier, dropout, pooling };
        model.classifier.cast(dtype);
        model.train();
        Ok(model)
    }

    /// The logits `(batch, num_labels)`.
    ///
    /// # Errors
    /// As [`BertModel::forward`].
    pub fn forward(&self, input: &BertInput) -> Result<Var> {
        let out = self.bert.forward(input)?;
        let pooled = match self.pooling {
            ClassifierPooling::Pooler => out.pooler_output.expect("checked in new: the encoder has a pooler"),
            ClassifierPooling::Mean => {
                PoolingMode::Mean.pool(&out.last_hidden_state, input.attention_mask.as_ref())
            }
        };
        Ok(self.classifier.forward(&self.dropout.forward(&pooled)))
    }
}

impl Module for BertForSequenceClassification {
    fn visit(&self, v: &mut dyn Visitor) {
        v.module("bert", &self.bert);
        v.module("dropout", &self.dropout);
        v.module("classifier", &self.classifier);
    }
}

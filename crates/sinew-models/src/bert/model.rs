//! The BERT encoder: embeddings, encoder layers and pooler, with Hugging Face's
//! parameter names (`embeddings.word_embeddings.weight`,
//! `encoder.layer.0.attention.self.query.weight`, ...).

use sinew_autograd::Var;
use sinew_nn::{AttentionMask, Dropout, Embedding, Forward, LayerNorm, Linear, Module, Visitor};
use sinew_tensor::{DType, Generator, Tensor};

use super::config::{Activation, BertConfig};
use crate::error::{ModelError, Result, check_ids};
use crate::init::Init;

/// A batch for a BERT: token ids `(batch, seq)` (`i64`), and optionally the attention
/// mask (`i64`, 1 = a real token, 0 = padding) and the token type (segment) ids, both of
/// the same shape. A missing mask attends to every token; missing token types are 0.
///
/// ```
/// use sinew_models::bert::BertInput;
/// use sinew_tensor::Tensor;
/// let ids = Tensor::from_vec(vec![101i64, 7592, 102, 101, 102, 0], &[2, 3])?;
/// let mask = Tensor::from_vec(vec![1i64, 1, 1, 1, 1, 0], &[2, 3])?;
/// let input = BertInput::new(ids).with_attention_mask(mask);
/// assert_eq!(input.input_ids.dims(), &[2, 3]);
/// # Ok::<(), sinew_tensor::TensorError>(())
/// ```
#[derive(Clone, Debug)]
pub struct BertInput {
    /// Token ids, `(batch, seq)`, `i64`.
    pub input_ids: Tensor,
    /// 1 for tokens to attend to, 0 for padding; `(batch, seq)`, `i64`.
    pub attention_mask: Option<Tensor>,
    /// Segment ids, `(batch, seq)`, `i64`.
    pub token_type_ids: Option<Tensor>,
}

impl BertInput {
    /// Ids alone: every token attended to, every token type 0.
    pub fn new(input_ids: Tensor) -> Self {
        BertInput { input_ids, attention_mask: None, token_type_ids: None }
    }

    /// With an attention mask.
    pub fn with_attention_mask(mut self, mask: Tensor) -> Self {
        self.attention_mask = Some(mask);
        self
    }

    /// With token type ids.
    pub fn with_token_type_ids(mut self, token_type_ids: Tensor) -> Self {
        self.token_type_ids = Some(token_type_ids);
        self
    }

    /// `(batch, seq)`.
    pub fn batch_and_len(&self) -> (usize, usize) {
        let d = self.input_ids.dims();
        (d[0], d[1])
    }

    /// Checks shapes, dtypes and id ranges against a configuration.
    fn validate(&self, config: &BertConfig) -> Result<()> {
        let bad = |msg: String| Err(ModelError::Input(format!("BertModel: {msg}")));
        let ids = &self.input_ids;
        if ids.ndim() != 2 || ids.dtype() != DType::I64 {
            return bad(format!(
                "input_ids must be i64 of shape [batch, seq], got {:?} {:?}",
                ids.dtype(),
                ids.dims()
            ));
        }
        let (_, t) = self.batch_and_len();
        if t > config.max_position_embeddings {
            return bad(format!(
                "sequence length {t} exceeds max_position_embeddings {}",
                config.max_position_embeddings
            ));
        }
        let check = |name: &str, x: &Tensor, n: usize| check_ids("BertModel", name, x, ids.dims(), n);
        check("input_ids", ids, config.vocab_size)?;
        if let Some(m) = &self.attention_mask {
            check("attention_mask", m, 2)?;
        }
        if let Some(tt) = &self.token_type_ids {
            check("token_type_ids", tt, config.type_vocab_size)?;
        }
        Ok(())
    }
}

/// What a [`BertModel`] returns.
#[derive(Clone, Debug)]
pub struct BertOutput {
    /// The last layer's hidden states, `(batch, seq, hidden)`.
    pub last_hidden_state: Var,
    /// `tanh(dense(first token))`, `(batch, hidden)`, when the model has a pooler.
    pub pooler_output: Option<Var>,
}

fn layer_norm(config: &BertConfig) -> LayerNorm {
    let mut ln = LayerNorm::new(&[config.hidden_size]);
    ln.eps = config.layer_norm_eps;
    ln
}

/// Word, position and token-type embeddings, summed, then LayerNorm and dropout
/// (`BertEmbeddings`).
#[derive(Debug)]
pub struct BertEmbeddings {
    /// `word_embeddings`: `(vocab_size, hidden)`.
    pub word_embeddings: Embedding,
    /// `position_embeddings`: `(max_position_embeddings, hidden)`.
    pub position_embeddings: Embedding,
    /// `token_type_embeddings`: `(type_vocab_size, hidden)`.
    pub token_type_embeddings: Embedding,
    /// `LayerNorm`.
    pub layer_norm: LayerNorm,
    dropout: Dropout,
}

impl BertEmbeddings {
    fn new(c: &BertConfig, init: &mut Init<'_>) -> Self {
        let h = c.hidden_size;
        BertEmbeddings {
            // nn.Embedding(padding_idx=pad_token_id): that row starts at zero and learns nothing
            word_embeddings: init.table(c.vocab_size, h, Some(c.pad_token_id)),
            position_embeddings: init.table(c.max_position_embeddings, h, None),
            token_type_embeddings: init.table(c.type_vocab_size, h, None),
            layer_norm: layer_norm(c),
            dropout: init.dropout(c.hidden_dropout_prob),
        }
    }

    /// `(batch, seq, hidden)` embeddings of a validated input.
    fn forward(&self, input: &BertInput) -> Var {
        let (b, t) = input.batch_and_len();
        let words = self.word_embeddings.lookup(&input.input_ids);
        let types = match &input.token_type_ids {
            Some(tt) => self.token_type_embeddings.lookup(tt),
            None => self.token_type_embeddings.lookup(&Tensor::zeros_dtype(&[b, t], DType::I64)),
        };
        let positions = Tensor::arange_dtype(0.0, t as f64, 1.0, DType::I64);
        // Hugging Face's order: (words + types) + positions
        let x = &(&words + &types) + &self.position_embeddings.lookup(&positions);
        self.dropout.forward(&self.layer_norm.forward(&x))
    }
}

impl Module for BertEmbeddings {
    fn visit(&self, v: &mut dyn Visitor) {
        v.module("word_embeddings", &self.word_embeddings);
        v.module("position_embeddings", &self.position_embeddings);
        v.module("token_type_embeddings", &self.token_type_embeddings);
        v.module("LayerNorm", &self.layer_norm);
        v.module("dropout", &self.dropout);
    }
}

/// Multi-head self-attention with separate query, key and value projections
/// (`BertSelfAttention`, `attention.self`).
#[derive(Debug)]
pub struct BertSelfAttention {
    /// `query`: `Linear(hidden, hidden)`.
    pub query: Linear,
    /// `key`: `Linear(hidden, hidden)`.
    pub key: Linear,
    /// `value`: `Linear(hidden, hidden)`.
    pub value: Linear,
    heads: usize,
    dropout: Dropout,
}

impl BertSelfAttention {
    /// Attention of `x` `(batch, seq, hidden)` over itself; `keep` is the `(batch, 1, 1,
    /// seq)` keep mask, or `None` when every token is real.
    fn forward(&self, x: &Var, keep: Option<&Tensor>) -> Var {
        let (b, t, e) = (x.dims()[0], x.dims()[1], x.dims()[2]);
        let d = e / self.heads;
        // (b, t, e) -> (b, heads, t, d): a strided view, which the fused attention reads as is
        let split = |y: Var| y.reshape(&[b, t, self.heads, d]).permute(&[0, 2, 1, 3]);
        let (q, k, v) =
            (split(self.query.forward(x)), split(self.key.forward(x)), split(self.value.forward(x)));
        let context = if self.dropout.is_training() && self.dropout.p() > 0.0 {
            // dropout on the attention probabilities needs them: the composed form
            let mut scores = q.matmul(&k.t()).mul_scalar(1.0 / (d as f64).sqrt());
            if let Some(keep) = keep {
                // Hugging Face's additive mask: the dtype's lowest value on padding keys
                let lowest = if scores.dtype() == DType::F32 { f32::MIN as f64 } else { f64::MIN };
                scores =
                    &scores + &Var::constant(keep.eq_scalar(0.0).to_dtype(scores.dtype()).mul_scalar(lowest));
            }
            self.dropout.forward(&scores.softmax(-1)).matmul(&v)
        } else {
            sinew_nn::scaled_dot_product_attention(
                &q,
                &k,
                &v,
                AttentionMask { attn_mask: keep, is_causal: false },
            )
        };
        context.permute(&[0, 2, 1, 3]).reshape(&[b, t, e])
    }
}

impl Module for BertSelfAttention {
    fn visit(&self, v: &mut dyn Visitor) {
        v.module("query", &self.query);
        v.module("key", &self.key);
        v.module("value", &self.value);
        v.module("dropout", &self.dropout);
    }
}

/// A dense projection, dropout, then LayerNorm of it plus the residual: the output
/// sublayer of attention (`attention.output`) and of the feed-forward block (`output`).
#[derive(Debug)]
pub struct BertResidualOutput {
    /// `dense`.
    pub dense: Linear,
    /// `LayerNorm`.
    pub layer_norm: LayerNorm,
    dropout: Dropout,
}

impl BertResidualOutput {
    fn forward(&self, x: &Var, residual: &Var) -> Var {
        self.layer_norm.forward(&(&self.dropout.forward(&self.dense.forward(x)) + residual))
    }
}

impl Module for BertResidualOutput {
    fn visit(&self, v: &mut dyn Visitor) {
        v.module("dense", &self.dense);
        v.module("LayerNorm", &self.layer_norm);
        v.module("dropout", &self.dropout);
    }
}

/// Self-attention and its output sublayer (`BertAttention`, `attention`).
#[derive(Debug)]
pub struct BertAttention {
    /// `self`.
    pub self_attention: BertSelfAttention,
    /// `output`.
    pub output: BertResidualOutput,
}

impl Module for BertAttention {
    fn visit(&self, v: &mut dyn Visitor) {
        v.module("self", &self.self_attention);
        v.module("output", &self.output);
    }
}

/// One encoder layer (`BertLayer`): attention, then the feed-forward block
/// (`intermediate.dense`, the activation, `output`).
#[derive(Debug)]
pub struct BertLayer {
    /// `attention`.
    pub attention: BertAttention,
    /// `intermediate.dense`: `Linear(hidden, intermediate)`.
    pub intermediate: Linear,
    /// `output`.
    pub output: BertResidualOutput,
    activation: Activation,
}

impl BertLayer {
    /// A randomly initialised layer (weights `N(0, initializer_range)`, biases 0), its
    /// dropout seeded from `g`.
    pub fn new(c: &BertConfig, g: &mut Generator) -> Self {
        BertLayer::build(c, &mut Init::random(g, c.initializer_range))
    }

    fn build(c: &BertConfig, init: &mut Init<'_>) -> Self {
        let h = c.hidden_size;
        let self_attention = BertSelfAttention {
            query: init.linear(h, h),
            key: init.linear(h, h),
            value: init.linear(h, h),
            heads: c.num_attention_heads,
            dropout: init.dropout(c.attention_probs_dropout_prob),
        };
        let mut residual = |fin: usize| BertResidualOutput {
            dense: init.linear(fin, h),
            layer_norm: layer_norm(c),
            dropout: init.dropout(c.hidden_dropout_prob),
        };
        let attention = BertAttention { self_attention, output: residual(h) };
        let output = residual(c.intermediate_size);
        BertLayer {
            attention,
            intermediate: init.linear(h, c.intermediate_size),
            output,
            activation: c.hidden_act,
        }
    }

    /// The layer on `x` `(batch, seq, hidden)`; `keep` is the `(batch, 1, 1, seq)` `i64`
    /// keep mask (1 = attend), or `None` to attend everywhere.
    pub fn forward(&self, x: &Var, keep: Option<&Tensor>) -> Var {
        let attended = self.attention.output.forward(&self.attention.self_attention.forward(x, keep), x);
        let inner = self.intermediate.forward(&attended);
        let inner = self.activation.apply(&inner);
        self.output.forward(&inner, &attended)
    }
}

impl Module for BertLayer {
    fn visit(&self, v: &mut dyn Visitor) {
        v.module("attention", &self.attention);
        v.module("intermediate.dense", &self.intermediate);
        v.module("output", &self.output);
    }
}

/// `tanh(dense(hidden state of the first token))` (`BertPooler`).
#[derive(Debug)]
pub struct BertPooler {
    /// `dense`: `Linear(hidden, hidden)`.
    pub dense: Linear,
}

impl Forward for BertPooler {
    /// `(batch, seq, hidden)` to `(batch, hidden)`.
    fn forward(&self, hidden: &Var) -> Var {
        self.dense.forward(&hidden.select(1, 0)).tanh()
    }
}

impl Module for BertPooler {
    fn visit(&self, v: &mut dyn Visitor) {
        v.module("dense", &self.dense);
    }
}

/// A BERT encoder (`transformers.BertModel`): [`BertEmbeddings`], `num_hidden_layers`
/// [`BertLayer`]s under `encoder.layer.{i}`, and an optional [`BertPooler`], sized by a
/// [`BertConfig`].
///
/// ```
/// use sinew_models::bert::{BertConfig, BertInput, BertModel};
/// use sinew_nn::Module;
/// use sinew_tensor::{Generator, Tensor};
/// let config = BertConfig::from_json(r#"{"vocab_size": 50, "hidden_size": 16, "num_hidden_layers": 2,
///     "num_attention_heads": 4, "intermediate_size": 32, "max_position_embeddings": 20}"#)?;
/// let bert = BertModel::new(&config, true, &mut Generator::new(0));
/// bert.eval();
/// let ids = Tensor::from_vec(vec![1i64, 5, 7, 2], &[1, 4])?;
/// let out = bert.forward(&BertInput::new(ids))?;
/// assert_eq!(out.last_hidden_state.dims(), &[1, 4, 16]);
/// assert_eq!(out.pooler_output.unwrap().dims(), &[1, 16]);
/// assert!(bert.named_parameters().iter().any(|(n, _)| n == "encoder.layer.1.attention.self.query.weight"));
/// # Ok::<(), sinew_models::ModelError>(())
/// ```
#[derive(Debug)]
pub struct BertModel {
    config: BertConfig,
    /// `embeddings`.
    pub embeddings: BertEmbeddings,
    /// `encoder.layer`.
    pub layers: Vec<BertLayer>,
    /// `pooler`, if the model has one.
    pub pooler: Option<BertPooler>,
}

impl BertModel {
    /// A randomly initialised model as Hugging Face initialises one (weights
    /// `N(0, initializer_range)`, biases 0, LayerNorms 1 and 0, the padding embedding 0),
    /// in training mode, with or without the pooler. Dropout layers are seeded from `g`.
    pub fn new(config: &BertConfig, with_pooler: bool, g: &mut Generator) -> Self {
        BertModel::build(config, with_pooler, &mut Init::random(g, config.initializer_range))
    }

    pub(crate) fn build(config: &BertConfig, with_pooler: bool, init: &mut Init<'_>) -> Self {
        let embeddings = BertEmbeddings::new(config, init);
        let layers = (0..config.num_hidden_layers).map(|_| BertLayer::build(config, init)).collect();
        let pooler =
            with_pooler.then(|| BertPooler { dense: init.linear(config.hidden_size, config.hidden_size) });
        BertModel { config: config.clone(), embeddings, layers, pooler }
    }

    /// The configuration the model was built from.
    pub fn config(&self) -> &BertConfig {
        &self.config
    }

    /// Runs the encoder. Records a graph when grad mode is on (wrap the call in
    /// `sinew_autograd::no_grad` for inference); dropout applies in training mode only.
    ///
    /// # Errors
    /// [`ModelError::Input`] if the ids are not `i64` `(batch, seq)`, an id, token type or
    /// mask value is out of range, the mask or token types have another shape, or the
    /// sequence is longer than `max_position_embeddings`.
    pub fn forward(&self, input: &BertInput) -> Result<BertOutput> {
        input.validate(&self.config)?;
        let (b, t) = input.batch_and_len();
        // Hugging Face adds finfo.min to the scores of padding keys; an i64 keep mask
        // gives -inf there, the same probabilities. No padding: no mask at all.
        let keep = input
            .attention_mask
            .as_ref()
            .filter(|m| m.to_vec::<i64>().contains(&0))
            .map(|m| m.reshape(&[b, 1, 1, t]));
        let mut x = self.embeddings.forward(input);
        for layer in &self.layers {
            x = layer.forward(&x, keep.as_ref());
        }
        let pooler_output = self.pooler.as_ref().map(|p| p.forward(&x));
        Ok(BertOutput { last_hidden_state: x, pooler_output })
    }
}

impl Module for BertModel {
    fn visit(&self, v: &mut dyn Visitor) {
        v.module("embeddings", &self.embeddings);
        // dotted names, as `#[derive(Module)]` names a `Vec`'s elements
        for (i, layer) in self.layers.iter().enumerate() {
            v.module(&format!("encoder.layer.{i}"), layer);
        }
        if let Some(p) = &self.pooler {
            v.module("pooler", p);
        }
    }
}

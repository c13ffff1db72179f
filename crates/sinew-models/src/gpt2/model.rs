//! The GPT-2 decoder: token and position embeddings, pre-norm blocks, a final LayerNorm
//! and the language-model head, with Hugging Face's parameter names
//! (`transformer.wte.weight`, `transformer.h.0.attn.c_attn.weight`, `lm_head.weight`, ...).

use std::sync::OnceLock;

use sinew_autograd::{Param, Var};
use sinew_nn::{Dropout, Embedding, Forward, LayerNorm, Linear, Module, Visitor};
use sinew_tensor::{DType, Generator, Tensor};

use super::config::{Activation, Gpt2Config};
use crate::error::{ModelError, Result, check_ids};
use crate::init::Init;

/// A batch for a GPT-2: token ids `(batch, len)` (`i64`), and optionally
///
/// - the attention mask, `(batch, past + len)` `i64` (1 = a real token, 0 = padding),
///   covering the cached positions too, as Hugging Face's does;
/// - the position ids, `(batch, len)` `i64`; without them token `j` of the call is at
///   position `past + j`, whatever the mask (as `GPT2Model.forward`). Generation from
///   left-padded prompts passes `cumsum(mask) - 1`, so that every prompt starts at 0.
///
/// ```
/// use sinew_models::gpt2::Gpt2Input;
/// use sinew_tensor::Tensor;
/// let ids = Tensor::from_vec(vec![0i64, 15, 7, 3, 9, 4], &[2, 3])?;
/// let input = Gpt2Input::new(ids).with_attention_mask(Tensor::from_vec(vec![0i64, 1, 1, 1, 1, 1], &[2, 3])?);
/// assert_eq!(input.batch_and_len(), (2, 3));
/// # Ok::<(), sinew_tensor::TensorError>(())
/// ```
#[derive(Clone, Debug)]
pub struct Gpt2Input {
    /// Token ids, `(batch, len)`, `i64`.
    pub input_ids: Tensor,
    /// 1 for tokens to attend to, 0 for padding; `(batch, past + len)`, `i64`.
    pub attention_mask: Option<Tensor>,
    /// Positions of the tokens, `(batch, len)`, `i64`.
    pub position_ids: Option<Tensor>,
}

impl Gpt2Input {
    /// Ids alone: every token attended to, positions counted from the cache's length.
    pub fn new(input_ids: Tensor) -> Self {
        Gpt2Input { input_ids, attention_mask: None, position_ids: None }
    }

    /// With an attention mask over the cached and the new positions.
    pub fn with_attention_mask(mut self, mask: Tensor) -> Self {
        self.attention_mask = Some(mask);
        self
    }

    /// With explicit position ids.
    pub fn with_position_ids(mut self, position_ids: Tensor) -> Self {
        self.position_ids = Some(position_ids);
        self
    }

    /// `(batch, len)`.
    pub fn batch_and_len(&self) -> (usize, usize) {
        let d = self.input_ids.dims();
        (d[0], d.get(1).copied().unwrap_or(0))
    }

    /// Checks shapes, dtypes and ranges against a configuration and the cache's length.
    fn validate(&self, config: &Gpt2Config, past: usize, cached_batch: Option<usize>) -> Result<()> {
        let bad = |msg: String| Err(ModelError::Input(format!("GPT2: {msg}")));
        let ids = &self.input_ids;
        if ids.ndim() != 2 || ids.dtype() != DType::I64 || ids.dims()[1] == 0 {
            return bad(format!(
                "input_ids must be i64 of shape [batch, len] with len > 0, got {:?} {:?}",
                ids.dtype(),
                ids.dims()
            ));
        }
        let (b, t) = self.batch_and_len();
        if let Some(cb) = cached_batch.filter(|&cb| cb != b) {
            return bad(format!("batch of {b} sequences, but the cache holds {cb}"));
        }
        let check = |name: &str, x: &Tensor, dims: &[usize], n: usize| check_ids("GPT2", name, x, dims, n);
        check("input_ids", ids, &[b, t], config.vocab_size)?;
        if let Some(m) = &self.attention_mask {
            check("attention_mask", m, &[b, past + t], 2)?;
        }
        match &self.position_ids {
            Some(p) => check("position_ids", p, &[b, t], config.n_positions)?,
            None if past + t > config.n_positions => {
                return bad(format!(
                    "{} positions ({past} cached + {t} new) exceed n_positions {}",
                    past + t,
                    config.n_positions
                ));
            }
            None => {}
        }
        Ok(())
    }
}

/// Hugging Face's `Conv1D`: an affine map whose weight is stored `(in, out)`, transposed
/// relative to [`Linear`]'s, so `y = x·W + b`. GPT-2's projections are these.
#[derive(Debug)]
pub struct Conv1D {
    /// `(in, out)`.
    pub weight: Param,
    /// `(out)`.
    pub bias: Param,
}

impl Conv1D {
    fn build(init: &mut Init<'_>, fin: usize, fout: usize, std: f64) -> Self {
        Conv1D {
            weight: Param::new("weight", init.normal_with_std(&[fin, fout], std)),
            bias: Param::new("bias", Tensor::zeros(&[fout])),
        }
    }
}

impl Forward for Conv1D {
    fn forward(&self, x: &Var) -> Var {
        &x.matmul(&self.weight.var()) + &self.bias.var()
    }
}

impl Module for Conv1D {
    fn visit(&self, v: &mut dyn Visitor) {
        v.param("weight", &self.weight);
        v.param("bias", &self.bias);
    }
    fn type_name(&self) -> &'static str {
        "Conv1D"
    }
    fn extra_repr(&self) -> String {
        let d = self.weight.value().dims().to_vec();
        format!("nf={}, nx={}", d[1], d[0])
    }
}

/// Keys and values of every block for the positions seen so far: what makes each new
/// token cost one position instead of the whole prefix. Start with [`KvCache::new`],
/// pass it to [`Gpt2LMHeadModel::forward_with_cache`] call after call.
#[derive(Clone, Debug, Default)]
pub struct KvCache {
    /// Per block: keys and values `(batch, heads, len, head_dim)`.
    layers: Vec<(Var, Var)>,
    len: usize,
}

impl KvCache {
    /// An empty cache.
    pub fn new() -> Self {
        KvCache::default()
    }

    /// Positions cached.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether nothing is cached yet.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    fn batch(&self) -> Option<usize> {
        self.layers.first().map(|(k, _)| k.dims()[0])
    }
}

/// Which keys each query of one forward pass sees: the padding mask over all `past + len`
/// positions and causality, with `len` new queries after `past` cached positions. The
/// additive biases are built once per pass, by the first block that asks, and shared.
struct Visibility {
    /// `(batch, past + len)` `i64`, when some position is padding.
    pad: Option<Tensor>,
    past: usize,
    len: usize,
    /// The fused kernel's bias (`-inf`; causality its own flag when nothing is cached).
    fused: OnceLock<Option<Tensor>>,
    /// The composed form's bias (the dtype's lowest value, causality included).
    composed: OnceLock<Option<Tensor>>,
}

impl Visibility {
    fn new(pad: Option<Tensor>, past: usize, len: usize) -> Self {
        Visibility { pad, past, len, fused: OnceLock::new(), composed: OnceLock::new() }
    }

    /// Whether the fused kernel applies causality itself: nothing cached, several queries.
    fn kernel_causal(&self) -> bool {
        self.past == 0 && self.len > 1
    }

    fn fused_bias(&self, dtype: DType) -> Option<&Tensor> {
        self.fused.get_or_init(|| self.bias(self.past > 0, f64::NEG_INFINITY, dtype)).as_ref()
    }

    fn composed_bias(&self, dtype: DType) -> Option<&Tensor> {
        // Hugging Face's mask value, so a row of padding stays finite
        let lowest = if dtype == DType::F32 { f32::MIN as f64 } else { f64::MIN };
        self.composed.get_or_init(|| self.bias(true, lowest, dtype)).as_ref()
    }

    /// The additive bias `(batch | 1, 1, len | 1, past + len)`: 0 where a query sees a key,
    /// `blocked` where not; the causal part only if `with_causal` (else the caller's kernel
    /// applies it). `None` when nothing is hidden.
    fn bias(&self, with_causal: bool, blocked: f64, dtype: DType) -> Option<Tensor> {
        let (l, s) = (self.len, self.past + self.len);
        let causal = with_causal && l > 1;
        if self.pad.is_none() && !causal {
            return None;
        }
        let (b, pad) = match &self.pad {
            Some(p) => (p.dims()[0], p.to_vec::<i64>()),
            None => (1, vec![1; s]),
        };
        let rows = if causal { l } else { 1 };
        let mut data = Vec::with_capacity(b * rows * s);
        for r in 0..b {
            for i in 0..rows {
                data.extend((0..s).map(|j| {
                    let seen = pad[r * s + j] != 0 && (!causal || j <= self.past + i);
                    if seen { 0.0 } else { blocked }
                }));
            }
        }
        Some(Tensor::from_vec(data, &[b, 1, rows, s]).expect("bias values").to_dtype(dtype))
    }
}

/// Causal self-attention with one fused q/k/v projection (`GPT2Attention`, `attn`):
/// `c_attn` `Conv1D(n_embd → 3·n_embd)`, heads, `c_proj` `Conv1D(n_embd → n_embd)`.
#[derive(Debug)]
pub struct Gpt2Attention {
    /// `c_attn`: queries, keys and values, packed along the output.
    pub c_attn: Conv1D,
    /// `c_proj`: the output projection.
    pub c_proj: Conv1D,
    heads: usize,
    scale: f64,
    attn_dropout: Dropout,
    resid_dropout: Dropout,
}

impl Gpt2Attention {
    fn forward(&self, x: &Var, seen: &Visibility, cache: Option<&mut (Var, Var)>) -> Var {
        let (b, t, e) = (x.dims()[0], x.dims()[1], x.dims()[2]);
        let d = e / self.heads;
        // (b, t, 3e) -> (3, b, heads, t, d): q, k, v as strided views, no copy
        let qkv = self.c_attn.forward(x).reshape(&[b, t, 3, self.heads, d]).permute(&[2, 0, 3, 1, 4]);
        let (q, mut k, mut v) = (qkv.select(0, 0), qkv.select(0, 1), qkv.select(0, 2));
        if let Some((past_k, past_v)) = cache {
            if seen.past > 0 {
                k = Var::cat(&[&*past_k, &k], 2);
                v = Var::cat(&[&*past_v, &v], 2);
            }
            (*past_k, *past_v) = (k.clone(), v.clone());
        }
        let context = if self.attn_dropout.is_training() && self.attn_dropout.p() > 0.0 {
            // dropout on the probabilities needs them: the composed form
            let mut scores = q.matmul(&k.t()).mul_scalar(self.scale);
            if let Some(bias) = seen.composed_bias(x.dtype()) {
                scores = &scores + &Var::constant(bias.clone());
            }
            self.attn_dropout.forward(&scores.softmax(-1)).matmul(&v)
        } else {
            let bias = seen.fused_bias(x.dtype());
            Var::scaled_dot_product_attention(&q, &k, &v, bias, seen.kernel_causal(), self.scale)
        };
        let merged = context.permute(&[0, 2, 1, 3]).reshape(&[b, t, e]);
        self.resid_dropout.forward(&self.c_proj.forward(&merged))
    }
}

impl Module for Gpt2Attention {
    fn visit(&self, v: &mut dyn Visitor) {
        v.module("c_attn", &self.c_attn);
        v.module("c_proj", &self.c_proj);
        v.module("attn_dropout", &self.attn_dropout);
        v.module("resid_dropout", &self.resid_dropout);
    }
}

/// The feed-forward block (`GPT2MLP`, `mlp`): `c_fc`, the activation, `c_proj`, dropout.
#[derive(Debug)]
pub struct Gpt2Mlp {
    /// `c_fc`: `Conv1D(n_embd → inner)`.
    pub c_fc: Conv1D,
    /// `c_proj`: `Conv1D(inner → n_embd)`.
    pub c_proj: Conv1D,
    activation: Activation,
    dropout: Dropout,
}

impl Forward for Gpt2Mlp {
    fn forward(&self, x: &Var) -> Var {
        self.dropout.forward(&self.c_proj.forward(&self.activation.apply(&self.c_fc.forward(x))))
    }
}

impl Module for Gpt2Mlp {
    fn visit(&self, v: &mut dyn Visitor) {
        v.module("c_fc", &self.c_fc);
        v.module("c_proj", &self.c_proj);
        v.module("dropout", &self.dropout);
    }
}

/// One pre-norm block (`GPT2Block`): `x + attn(ln_1(x))`, then `x + mlp(ln_2(x))`.
#[derive(Debug)]
pub struct Gpt2Block {
    /// `ln_1`.
    pub ln_1: LayerNorm,
    /// `attn`.
    pub attn: Gpt2Attention,
    /// `ln_2`.
    pub ln_2: LayerNorm,
    /// `mlp`.
    pub mlp: Gpt2Mlp,
}

impl Gpt2Block {
    /// Block `index` of a randomly initialised model (weights `N(0, initializer_range)`,
    /// the residual projections `N(0, initializer_range / √(2·n_layer))`, biases 0), its
    /// dropout seeded from `g`. The index matters with `scale_attn_by_inverse_layer_idx`.
    pub fn new(c: &Gpt2Config, index: usize, g: &mut Generator) -> Self {
        Gpt2Block::build(c, index, &mut Init::random(g, c.initializer_range))
    }

    fn build(c: &Gpt2Config, index: usize, init: &mut Init<'_>) -> Self {
        let (e, inner, std) = (c.n_embd, c.inner_dim(), c.initializer_range);
        // GPT-2's scaled initialisation of the projections into the residual stream
        let residual_std = std / (2.0 * c.n_layer.max(1) as f64).sqrt();
        let mut scale = if c.scale_attn_weights { 1.0 / (c.head_dim() as f64).sqrt() } else { 1.0 };
        if c.scale_attn_by_inverse_layer_idx {
            scale /= (index + 1) as f64;
        }
        let attn = Gpt2Attention {
            c_attn: Conv1D::build(init, e, 3 * e, std),
            c_proj: Conv1D::build(init, e, e, residual_std),
            heads: c.n_head,
            scale,
            attn_dropout: init.dropout(c.attn_pdrop),
            resid_dropout: init.dropout(c.resid_pdrop),
        };
        let mlp = Gpt2Mlp {
            c_fc: Conv1D::build(init, e, inner, std),
            c_proj: Conv1D::build(init, inner, e, residual_std),
            activation: c.activation_function,
            dropout: init.dropout(c.resid_pdrop),
        };
        Gpt2Block { ln_1: layer_norm(c), attn, ln_2: layer_norm(c), mlp }
    }

    /// The block on `x` `(batch, len, n_embd)`, every position seeing itself and those
    /// before it.
    pub fn forward(&self, x: &Var) -> Var {
        self.forward_seeing(x, &Visibility::new(None, 0, x.dims()[1]), None)
    }

    fn forward_seeing(&self, x: &Var, seen: &Visibility, cache: Option<&mut (Var, Var)>) -> Var {
        let x = x + &self.attn.forward(&self.ln_1.forward(x), seen, cache);
        &x + &self.mlp.forward(&self.ln_2.forward(&x))
    }
}

impl Module for Gpt2Block {
    fn visit(&self, v: &mut dyn Visitor) {
        v.module("ln_1", &self.ln_1);
        v.module("attn", &self.attn);
        v.module("ln_2", &self.ln_2);
        v.module("mlp", &self.mlp);
    }
}

fn layer_norm(c: &Gpt2Config) -> LayerNorm {
    let mut ln = LayerNorm::new(&[c.n_embd]);
    ln.eps = c.layer_norm_epsilon;
    ln
}

/// The decoder stack (`GPT2Model`, `transformer`): `wte`, `wpe`, dropout, `n_layer`
/// [`Gpt2Block`]s under `h.{i}`, `ln_f`. Returns hidden states; [`Gpt2LMHeadModel`] adds
/// the head.
#[derive(Debug)]
pub struct Gpt2Model {
    config: Gpt2Config,
    /// `wte`: token embeddings `(vocab_size, n_embd)`.
    pub wte: Embedding,
    /// `wpe`: position embeddings `(n_positions, n_embd)`.
    pub wpe: Embedding,
    /// `h`.
    pub h: Vec<Gpt2Block>,
    /// `ln_f`.
    pub ln_f: LayerNorm,
    drop: Dropout,
}

impl Gpt2Model {
    fn build(config: &Gpt2Config, init: &mut Init<'_>) -> Self {
        Gpt2Model {
            config: config.clone(),
            wte: init.table(config.vocab_size, config.n_embd, None),
            wpe: init.table(config.n_positions, config.n_embd, None),
            drop: init.dropout(config.embd_pdrop),
            h: (0..config.n_layer).map(|i| Gpt2Block::build(config, i, init)).collect(),
            ln_f: layer_norm(config),
        }
    }

    /// The configuration the model was built from.
    pub fn config(&self) -> &Gpt2Config {
        &self.config
    }

    /// Final hidden states `(batch, len, n_embd)` of the new tokens; with a cache, after
    /// its positions, which it then extends.
    ///
    /// # Errors
    /// [`ModelError::Input`] for ids, mask or positions of the wrong shape, dtype or range,
    /// or more positions than `n_positions`.
    pub fn forward(&self, input: &Gpt2Input, mut cache: Option<&mut KvCache>) -> Result<Var> {
        let past = cache.as_ref().map_or(0, |c| c.len);
        input.validate(&self.config, past, cache.as_ref().and_then(|c| c.batch()))?;
        let (b, t) = input.batch_and_len();
        let positions = match &input.position_ids {
            Some(p) => p.clone(),
            None => Tensor::arange_dtype(past as f64, (past + t) as f64, 1.0, DType::I64),
        };
        let x = &self.wte.lookup(&input.input_ids) + &self.wpe.lookup(&positions);
        let mut x = self.drop.forward(&x);
        let pad = input.attention_mask.as_ref().filter(|m| m.to_vec::<i64>().contains(&0)).cloned();
        let seen = Visibility::new(pad, past, t);
        if let Some(c) = cache.as_deref_mut()
            && c.layers.is_empty()
        {
            // placeholders, replaced by the first pass's keys and values
            let empty = Var::constant(Tensor::zeros_dtype(&[b, 0], x.dtype()));
            c.layers = vec![(empty.clone(), empty); self.h.len()];
        }
        for (i, block) in self.h.iter().enumerate() {
            let layer_cache = cache.as_deref_mut().map(|c| &mut c.layers[i]);
            x = block.forward_seeing(&x, &seen, layer_cache);
        }
        if let Some(c) = cache {
            c.len += t;
        }
        Ok(self.ln_f.forward(&x))
    }
}

impl Module for Gpt2Model {
    fn visit(&self, v: &mut dyn Visitor) {
        v.module("wte", &self.wte);
        v.module("wpe", &self.wpe);
        v.module("drop", &self.drop);
        for (i, block) in self.h.iter().enumerate() {
            v.module(&format!("h.{i}"), block);
        }
        v.module("ln_f", &self.ln_f);
    }
}

/// A GPT-2 language model (`transformers.GPT2LMHeadModel`): the [`Gpt2Model`] under
/// `transformer`, and `lm_head`, a bias-free `Linear(n_embd → vocab_size)` unless the
/// configuration says `lm_head_bias`.
///
/// With `tie_word_embeddings` (GPT-2's default) the head's weight **is** the token
/// embedding's parameter: one tensor, one gradient (the sum of both uses), one optimizer
/// slot, named once (`transformer.wte.weight`) in [`Module::named_parameters`] and the
/// state dict, as Hugging Face saves it.
///
/// ```
/// use sinew_models::gpt2::{Gpt2Config, Gpt2LMHeadModel};
/// use sinew_nn::Module;
/// use sinew_tensor::{Generator, Tensor};
/// let config = Gpt2Config::from_json(r#"{"vocab_size": 50, "n_positions": 16, "n_embd": 16,
///     "n_layer": 2, "n_head": 4}"#)?;
/// let gpt = Gpt2LMHeadModel::new(&config, &mut Generator::new(0));
/// let ids = Tensor::from_vec(vec![1i64, 5, 7, 2], &[1, 4])?;
/// assert_eq!(gpt.logits(&ids)?.dims(), &[1, 4, 50]);
/// let names: Vec<String> = gpt.named_parameters().into_iter().map(|(n, _)| n).collect();
/// assert!(names.contains(&"transformer.h.1.attn.c_attn.weight".to_string()));
/// assert!(!names.contains(&"lm_head.weight".to_string())); // tied: it is transformer.wte.weight
/// # Ok::<(), sinew_models::ModelError>(())
/// ```
#[derive(Debug)]
pub struct Gpt2LMHeadModel {
    /// `transformer`.
    pub transformer: Gpt2Model,
    /// `lm_head`; when tied, its weight is `transformer.wte.weight`'s parameter.
    pub lm_head: Linear,
}

impl Gpt2LMHeadModel {
    /// A randomly initialised model as Hugging Face initialises one (weights
    /// `N(0, initializer_range)`, the residual projections scaled by `1/√(2·n_layer)`,
    /// biases 0, LayerNorms 1 and 0), in training mode. Dropout layers are seeded from `g`.
    pub fn new(config: &Gpt2Config, g: &mut Generator) -> Self {
        Gpt2LMHeadModel::build(config, &mut Init::random(g, config.initializer_range))
    }

    pub(crate) fn build(config: &Gpt2Config, init: &mut Init<'_>) -> Self {
        let transformer = Gpt2Model::build(config, init);
        let weight = match config.tie_word_embeddings {
            true => transformer.wte.weight.clone(),
            false => Param::new("weight", init.normal(&[config.vocab_size, config.n_embd])),
        };
        let bias = config.lm_head_bias.then(|| Param::new("bias", Tensor::zeros(&[config.vocab_size])));
        Gpt2LMHeadModel { transformer, lm_head: Linear { weight, bias } }
    }

    /// The configuration the model was built from.
    pub fn config(&self) -> &Gpt2Config {
        &self.transformer.config
    }

    /// Whether the head shares the token embedding's parameter.
    pub fn is_tied(&self) -> bool {
        self.lm_head.weight.id() == self.transformer.wte.weight.id()
    }

    /// Logits `(batch, len, vocab_size)` of a batch of ids `(batch, len)`, every position
    /// seeing those before it.
    ///
    /// # Errors
    /// As [`Gpt2LMHeadModel::forward`].
    pub fn logits(&self, ids: &Tensor) -> Result<Var> {
        self.forward(&Gpt2Input::new(ids.clone()))
    }

    /// Logits `(batch, len, vocab_size)` of an input (mask, positions). Records a graph
    /// when grad mode is on; dropout applies in training mode only.
    ///
    /// # Errors
    /// [`ModelError::Input`] for ids, mask or positions of the wrong shape, dtype or
    /// range, or a sequence longer than `n_positions`.
    pub fn forward(&self, input: &Gpt2Input) -> Result<Var> {
        Ok(self.lm_head.forward(&self.transformer.forward(input, None)?))
    }

    /// Logits `(batch, len, vocab_size)` of the new tokens in `input`, after the positions
    /// in `cache`, which gains them: the logits equal those of the whole sequence at once
    /// at these positions, for the cost of the new ones.
    ///
    /// # Errors
    /// As [`Gpt2LMHeadModel::forward`]; also a batch size other than the cache's, or a
    /// mask not covering the cached positions.
    pub fn forward_with_cache(&self, input: &Gpt2Input, cache: &mut KvCache) -> Result<Var> {
        Ok(self.lm_head.forward(&self.transformer.forward(input, Some(cache))?))
    }

    /// The last position's logits `(batch, vocab_size)` only, extending the cache: the
    /// head (the largest product of a step) runs on one row per sequence.
    pub(crate) fn next_token_logits(&self, input: &Gpt2Input, cache: Option<&mut KvCache>) -> Result<Tensor> {
        let hidden = self.transformer.forward(input, cache)?;
        let last = hidden.select(1, hidden.dims()[1] - 1);
        Ok(self.lm_head.forward(&last).value().clone())
    }

    /// Hugging Face's language-model loss for `labels = ids`: the mean cross entropy of
    /// position `t`'s logits against token `t + 1`, over every sequence.
    ///
    /// # Errors
    /// As [`Gpt2LMHeadModel::forward`], and sequences shorter than 2 tokens.
    pub fn lm_loss(&self, ids: &Tensor) -> Result<Var> {
        let logits = self.logits(ids)?;
        causal_lm_loss(&logits, ids)
    }
}

/// Mean cross entropy of next-token prediction: `logits` `(batch, len, vocab)` at
/// positions `0..len-1` against `ids` `(batch, len)` at `1..len` (what
/// `GPT2LMHeadModel(labels=ids)` computes).
///
/// # Errors
/// [`ModelError::Input`] if the shapes disagree or `len < 2`.
pub fn causal_lm_loss(logits: &Var, ids: &Tensor) -> Result<Var> {
    let d = logits.dims().to_vec();
    if d.len() != 3 || ids.dims() != &d[..2] || d[1] < 2 {
        return Err(ModelError::Input(format!(
            "causal_lm_loss: expected logits [batch, len, vocab] and ids [batch, len] with len >= 2, \
             got {:?} and {:?}",
            d,
            ids.dims()
        )));
    }
    let (b, t, v) = (d[0], d[1], d[2]);
    let predicted = logits.narrow(1, 0, t - 1).reshape(&[b * (t - 1), v]);
    let targets = ids.narrow(1, 1, t - 1).contiguous().reshape(&[b * (t - 1)]);
    Ok(sinew_nn::loss::cross_entropy(&predicted, &targets, &sinew_nn::loss::CrossEntropyOptions::default()))
}

impl Module for Gpt2LMHeadModel {
    fn visit(&self, v: &mut dyn Visitor) {
        v.module("transformer", &self.transformer);
        if self.is_tied() {
            // the weight is transformer.wte.weight, already visited: only a bias is the head's own
            if let Some(bias) = &self.lm_head.bias {
                v.param("lm_head.bias", bias);
            }
        } else {
            v.module("lm_head", &self.lm_head);
        }
    }
}

//! Attention: [`scaled_dot_product_attention`] (`F.scaled_dot_product_attention`) and
//! [`MultiheadAttention`] (`nn.MultiheadAttention`), with PyTorch's parameter names and
//! layouts.
//!
//! ## Masks
//! A mask is a [`Tensor`] broadcastable to the attention scores `(..., L, S)` (queries by
//! keys); its element type says how it is read, mirroring PyTorch's boolean and float masks:
//! - an `i64` mask is a *keep* mask, PyTorch's boolean mask: non-zero (`1`) lets a query
//!   attend to a key, `0` blocks it;
//! - a float (`f32`/`f64`) mask is *added* to the scores, PyTorch's float mask: `0` keeps,
//!   `-inf` blocks, other values bias.
//!
//! A float mask of zeros and ones is therefore **not** a keep mask: convert it with
//! `mask.to_dtype(DType::I64)`. A query whose keys are all blocked attends to nothing and
//! gets zeros (PyTorch's math backend does the same since 2.5), with zero gradients.

use sinew_autograd::{Param, Var};
use sinew_tensor::{DType, Generator, Tensor};

use crate::init;
use crate::linear::Linear;
use crate::module::{Forward, Module, Visitor};

/// What an attention call masks: PyTorch's `attn_mask` and `is_causal` arguments, together.
/// The default masks nothing.
///
/// ```
/// use sinew_nn::AttentionMask;
/// use sinew_tensor::Tensor;
/// let keep = Tensor::from_vec(vec![1i64, 1, 0], &[1, 3])?; // attend to the first two keys
/// let both = AttentionMask::from(&keep).and_causal();
/// assert!(both.is_causal && both.attn_mask.is_some());
/// assert!(AttentionMask::default().attn_mask.is_none() && !AttentionMask::default().is_causal);
/// assert!(AttentionMask::causal().is_causal);
/// # Ok::<(), sinew_tensor::TensorError>(())
/// ```
#[derive(Clone, Copy, Debug, Default)]
pub struct AttentionMask<'a> {
    /// A keep mask (`i64`, non-zero = attend) or an additive float mask, broadcastable to
    /// the scores; see the [module documentation](self#masks).
    pub attn_mask: Option<&'a Tensor>,
    /// Query `i` attends to keys `0..=i` only (top-left aligned, also when `L != S`); it may
    /// be combined with `attn_mask` (unlike in PyTorch), and both then apply.
    pub is_causal: bool,
}

impl<'a> AttentionMask<'a> {
    /// No mask: every query attends to every key.
    ///
    /// ```
    /// use sinew_nn::{AttentionMask, scaled_dot_product_attention};
    /// use sinew_autograd::Var;
    /// use sinew_tensor::Tensor;
    /// let q = Var::constant(Tensor::zeros(&[3, 2])); // equal scores: uniform attention
    /// let v = Var::constant(Tensor::from_vec(vec![0.0f32, 0.0, 3.0, 3.0, 6.0, 6.0], &[3, 2])?);
    /// let y = scaled_dot_product_attention(&q, &q, &v, AttentionMask::none());
    /// // every query averages all three values
    /// assert!(y.value().allclose(&Tensor::full(&[3, 2], 3.0), 1e-6, 1e-6));
    /// # Ok::<(), sinew_tensor::TensorError>(())
    /// ```
    pub fn none() -> Self {
        AttentionMask::default()
    }

    /// The causal pattern alone (`is_causal=True`).
    ///
    /// ```
    /// use sinew_nn::{AttentionMask, scaled_dot_product_attention};
    /// use sinew_autograd::Var;
    /// use sinew_tensor::Tensor;
    /// let q = Var::constant(Tensor::zeros(&[3, 2])); // equal scores
    /// let v = Var::constant(Tensor::from_vec(vec![0.0f32, 0.0, 3.0, 3.0, 6.0, 6.0], &[3, 2])?);
    /// let y = scaled_dot_product_attention(&q, &q, &v, AttentionMask::causal());
    /// // query i averages the values of keys 0..=i
    /// let expected = Tensor::from_vec(vec![0.0f32, 0.0, 1.5, 1.5, 3.0, 3.0], &[3, 2])?;
    /// assert!(y.value().allclose(&expected, 1e-6, 1e-6));
    /// # Ok::<(), sinew_tensor::TensorError>(())
    /// ```
    pub fn causal() -> Self {
        AttentionMask { attn_mask: None, is_causal: true }
    }

    /// This mask and the causal pattern.
    ///
    /// ```
    /// use sinew_nn::{AttentionMask, scaled_dot_product_attention};
    /// use sinew_autograd::Var;
    /// use sinew_tensor::Tensor;
    /// let q = Var::constant(Tensor::zeros(&[3, 2])); // equal scores
    /// let v = Var::constant(Tensor::from_vec(vec![0.0f32, 0.0, 3.0, 3.0, 6.0, 6.0], &[3, 2])?);
    /// let keep = Tensor::from_vec(vec![1i64, 0, 1], &[1, 3])?; // key 1 is padding
    /// let y = scaled_dot_product_attention(&q, &q, &v, AttentionMask::from(&keep).and_causal());
    /// // query 0 and 1 see key 0 only; query 2 averages keys 0 and 2
    /// let expected = Tensor::from_vec(vec![0.0f32, 0.0, 0.0, 0.0, 3.0, 3.0], &[3, 2])?;
    /// assert!(y.value().allclose(&expected, 1e-6, 1e-6));
    /// # Ok::<(), sinew_tensor::TensorError>(())
    /// ```
    pub fn and_causal(mut self) -> Self {
        self.is_causal = true;
        self
    }
}

impl<'a> From<&'a Tensor> for AttentionMask<'a> {
    /// `attn_mask=mask`.
    fn from(mask: &'a Tensor) -> Self {
        AttentionMask { attn_mask: Some(mask), is_causal: false }
    }
}

/// Attention of queries `q` `(..., L, E)` over keys `k` `(..., S, E)` and values `v`
/// `(..., S, Ev)`: `softmax(q·kᵀ/√E + mask)·v`, of shape `(..., L, Ev)`, as
/// `F.scaled_dot_product_attention` (without dropout). Leading dimensions broadcast as in
/// `matmul`.
///
/// `mask` holds PyTorch's `attn_mask` (a keep mask, `i64` non-zero = attend, or an additive
/// float mask, see the [module documentation](self)) and `is_causal`: see [`AttentionMask`].
///
/// # Panics
/// If `q`, `k` or `v` has fewer than two dimensions, the feature sizes of `q` and `k`
/// differ, `k` and `v` have different numbers of keys, or the mask does not broadcast to
/// the scores; the message names the shapes.
///
/// ```
/// use sinew_nn::{AttentionMask, scaled_dot_product_attention};
/// use sinew_autograd::Var;
/// use sinew_tensor::{DType, Generator, Tensor};
/// let mut g = Generator::new(0);
/// let q = Var::leaf(Tensor::randn_with(&[2, 4, 5, 8], DType::F32, &mut g)); // (N, heads, L, E)
/// let k = Var::leaf(Tensor::randn_with(&[2, 4, 5, 8], DType::F32, &mut g));
/// let v = Var::leaf(Tensor::randn_with(&[2, 4, 5, 8], DType::F32, &mut g));
/// let y = scaled_dot_product_attention(&q, &k, &v, AttentionMask::causal());
/// assert_eq!(y.dims(), &[2, 4, 5, 8]);
/// // causal: the first query sees only the first key, so it returns the first value
/// let first = v.value().narrow(2, 0, 1);
/// assert!(y.value().narrow(2, 0, 1).allclose(&first, 1e-6, 1e-6));
/// // the same with an explicit keep mask (i64, 1 = attend)
/// let keep = Tensor::from_vec((0..25).map(|i| (i % 5 <= i / 5) as i64).collect(), &[5, 5])?;
/// let y2 = scaled_dot_product_attention(&q, &k, &v, (&keep).into());
/// assert!(y2.value().allclose(y.value(), 1e-6, 1e-6));
/// # Ok::<(), sinew_tensor::TensorError>(())
/// ```
#[track_caller]
pub fn scaled_dot_product_attention(q: &Var, k: &Var, v: &Var, mask: AttentionMask<'_>) -> Var {
    attention("scaled_dot_product_attention", q, k, v, mask.attn_mask, mask.is_causal, false).0
}

/// The attention output and, when `need_probs`, the attention probabilities `(..., L, S)`.
/// Without them, and when `q`, `k` and `v` share their leading dimensions (no
/// broadcasting), this is one fused op ([`Var::scaled_dot_product_attention`]);
/// otherwise it is composed from matmul, softmax and the mask.
#[track_caller]
fn attention(
    who: &str,
    q: &Var,
    k: &Var,
    v: &Var,
    mask: Option<&Tensor>,
    causal: bool,
    need_probs: bool,
) -> (Var, Option<Var>) {
    assert!(
        q.ndim() >= 2 && k.ndim() >= 2 && v.ndim() >= 2,
        "{who}: expected q, k, v of at least 2 dimensions [.., L, E], [.., S, E], [.., S, Ev], \
         got {:?}, {:?}, {:?}",
        q.dims(),
        k.dims(),
        v.dims()
    );
    let (l, e) = (q.dims()[q.ndim() - 2], q.dims()[q.ndim() - 1]);
    let s = k.dims()[k.ndim() - 2];
    assert!(
        k.dims()[k.ndim() - 1] == e && v.dims()[v.ndim() - 2] == s,
        "{who}: expected k of shape [.., S, {e}] and v of shape [.., S, Ev] for q of shape {:?}, \
         got {:?} and {:?}",
        q.dims(),
        k.dims(),
        v.dims()
    );
    let scale = 1.0 / (e.max(1) as f64).sqrt();
    let lead = |x: &Var| x.dims()[..x.ndim() - 2].to_vec();
    let same_lead = k.ndim() == q.ndim() && v.ndim() == q.ndim() && lead(k) == lead(q) && lead(v) == lead(q);
    if !need_probs && same_lead && q.dtype().is_float() && k.dtype() == q.dtype() && v.dtype() == q.dtype() {
        let bias = mask_bias(who, mask, false, l, s, &scores_dims(q, s), q.dtype());
        return (Var::scaled_dot_product_attention(q, k, v, bias.as_ref(), causal, scale), None);
    }
    let mut scores = q.matmul(&k.t()).mul_scalar(scale);
    let mut keep_rows = None;
    if let Some(bias) = mask_bias(who, mask, causal, l, s, scores.dims(), scores.dtype()) {
        // Rows with every key blocked would be 0/0: give them finite scores, zero them after.
        let dead = bias.max(&[-1], true).eq_scalar(f64::NEG_INFINITY);
        let bias = if dead.sum_all().item() > 0.0 {
            keep_rows = Some(dead.rsub_scalar(1.0));
            dead.where_(&Tensor::full_dtype(&[], 0.0, bias.dtype()), &bias)
        } else {
            bias
        };
        scores = &scores + &Var::constant(bias);
    }
    let mut probs = scores.softmax(-1);
    if let Some(keep) = keep_rows {
        probs = &probs * &Var::constant(keep);
    }
    (probs.matmul(v), Some(probs))
}

/// The shape of `q·kᵀ` for `q (.., L, E)` and `s` keys, when `q` and `k` share leading
/// dimensions.
fn scores_dims(q: &Var, s: usize) -> Vec<usize> {
    let mut dims = q.dims()[..q.ndim() - 1].to_vec();
    dims.push(s);
    dims
}

/// The additive bias of the mask and the causal pattern, if any, in `dtype`.
#[track_caller]
fn mask_bias(
    who: &str,
    mask: Option<&Tensor>,
    causal: bool,
    l: usize,
    s: usize,
    scores: &[usize],
    dtype: DType,
) -> Option<Tensor> {
    let mut bias = causal.then(|| {
        let data: Vec<f64> =
            (0..l * s).map(|idx| if idx % s > idx / s { f64::NEG_INFINITY } else { 0.0 }).collect();
        Tensor::from_vec(data, &[l, s]).expect("l·s values").to_dtype(dtype)
    });
    if let Some(m) = mask {
        let fits =
            sinew_tensor::shape::broadcast_shapes("attn_mask", m.dims(), scores).is_ok_and(|b| b == scores);
        assert!(fits, "{who}: attn_mask of shape {:?} does not broadcast to the scores {scores:?}", m.dims());
        let add = if m.dtype() == DType::I64 {
            let zero = Tensor::full_dtype(&[], 0.0, dtype);
            let blocked = Tensor::full_dtype(&[], f64::NEG_INFINITY, dtype);
            m.ne_scalar(0.0).where_(&zero, &blocked)
        } else {
            m.to_dtype(dtype)
        };
        bias = Some(match bias {
            Some(c) => &add + &c,
            None => add,
        });
    }
    bias
}

/// Multi-head attention (`nn.MultiheadAttention`): queries, keys and values are projected
/// by the rows of `in_proj_weight` `(3E, E)` (queries, keys, values, in that order) plus
/// `in_proj_bias`, split into `num_heads` heads of `E / num_heads` features, attended with
/// [`scaled_dot_product_attention`], concatenated and projected by `out_proj`.
///
/// Initialisation as PyTorch: `in_proj_weight` Xavier-uniform, `in_proj_bias` and
/// `out_proj.bias` zeros, `out_proj.weight` as a [`Linear`]. Inputs are `(L, N, E)`
/// (`(N, L, E)` with `batch_first`, or unbatched `(L, E)`); keys and values have `S` steps
/// in place of `L`. No dropout, no separate key/value sizes, no `add_bias_kv`.
///
/// # Panics
/// The forward methods panic with the layer's description and the shapes if the inputs do
/// not have those shapes or the mask does not fit.
///
/// ```
/// use sinew_nn::{AttentionMask, Forward, Module, MultiheadAttention, MultiheadAttentionOptions};
/// use sinew_autograd::Var;
/// use sinew_tensor::{DType, Generator, Tensor};
/// let mut g = Generator::new(0);
/// // nn.MultiheadAttention(8, 2, batch_first=True)
/// let mha = MultiheadAttention::new(8, 2, MultiheadAttentionOptions::default().batch_first(true), &mut g);
/// let x = Var::constant(Tensor::randn_with(&[3, 5, 8], DType::F32, &mut g)); // (N, L, E)
/// assert_eq!(mha.forward(&x).dims(), &[3, 5, 8]); // self-attention
/// let mem = Var::constant(Tensor::randn_with(&[3, 7, 8], DType::F32, &mut g)); // (N, S, E)
/// let (y, w) = mha.forward_qkv_with_attention(&x, &mem, &mem, AttentionMask::none());
/// assert_eq!((y.dims(), w.dims()), (&[3, 5, 8][..], &[3, 5, 7][..]));
/// let names: Vec<String> = mha.named_parameters().into_iter().map(|(n, _)| n).collect();
/// assert_eq!(names, ["in_proj_weight", "in_proj_bias", "out_proj.weight", "out_proj.bias"]);
/// ```
#[derive(Clone, Debug)]
pub struct MultiheadAttention {
    /// `(3E, E)`: the query, key and value projections stacked by rows.
    pub in_proj_weight: Param,
    /// `(3E)`: their biases.
    pub in_proj_bias: Param,
    /// The output projection `(E, E)`.
    pub out_proj: Linear,
    num_heads: usize,
    batch_first: bool,
}

/// How a [`MultiheadAttention`] lays out its inputs: PyTorch's `batch_first` keyword
/// argument (default `false`).
///
/// ```
/// use sinew_nn::MultiheadAttentionOptions;
/// assert!(MultiheadAttentionOptions::default().batch_first(true).batch_first);
/// assert!(!MultiheadAttentionOptions::default().batch_first);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct MultiheadAttentionOptions {
    /// Inputs and outputs are `(N, L, E)` rather than `(L, N, E)`.
    pub batch_first: bool,
}

impl MultiheadAttentionOptions {
    /// Sets [`batch_first`](Self::batch_first).
    ///
    /// ```
    /// use sinew_nn::{Forward, MultiheadAttention, MultiheadAttentionOptions};
    /// use sinew_autograd::Var;
    /// use sinew_tensor::{Generator, Tensor};
    /// let mut g = Generator::new(0);
    /// let options = MultiheadAttentionOptions::default().batch_first(true);
    /// assert!(options.batch_first);
    /// let mha = MultiheadAttention::new(4, 2, options, &mut g);
    /// // (N, L, E) in and out: a batch of 3 sequences of length 5
    /// assert_eq!(mha.forward(&Var::constant(Tensor::ones(&[3, 5, 4]))).dims(), &[3, 5, 4]);
    /// ```
    pub fn batch_first(mut self, on: bool) -> Self {
        self.batch_first = on;
        self
    }
}

impl MultiheadAttention {
    /// Attention over `embed_dim` features split into `num_heads` heads
    /// (`nn.MultiheadAttention(embed_dim, num_heads, **options)`).
    ///
    /// # Panics
    /// If `num_heads` is zero or does not divide `embed_dim`.
    ///
    /// ```
    /// use sinew_nn::{Module, MultiheadAttention, MultiheadAttentionOptions};
    /// use sinew_tensor::Generator;
    /// // nn.MultiheadAttention(8, 2): packed q/k/v projection and an output projection
    /// let mha = MultiheadAttention::new(8, 2, MultiheadAttentionOptions::default(), &mut Generator::new(0));
    /// let shapes: Vec<(String, Vec<usize>)> =
    ///     mha.named_parameters().into_iter().map(|(n, p)| (n, p.value().dims().to_vec())).collect();
    /// assert_eq!(shapes, [
    ///     ("in_proj_weight".to_string(), vec![24, 8]),
    ///     ("in_proj_bias".to_string(), vec![24]),
    ///     ("out_proj.weight".to_string(), vec![8, 8]),
    ///     ("out_proj.bias".to_string(), vec![8]),
    /// ]);
    /// // biases start at zero, as PyTorch's
    /// assert_eq!(mha.in_proj_bias.value().abs().max_all().item(), 0.0);
    /// ```
    #[track_caller]
    pub fn new(
        embed_dim: usize,
        num_heads: usize,
        options: MultiheadAttentionOptions,
        g: &mut Generator,
    ) -> Self {
        let MultiheadAttentionOptions { batch_first } = options;
        assert!(
            num_heads > 0 && embed_dim.is_multiple_of(num_heads),
            "MultiheadAttention: embed_dim {embed_dim} must be divisible by num_heads {num_heads}"
        );
        let in_proj_weight =
            Param::new("in_proj_weight", init::xavier_uniform(&[3 * embed_dim, embed_dim], 1.0, g));
        let in_proj_bias = Param::new("in_proj_bias", init::zeros(&[3 * embed_dim]));
        let out_proj = Linear::new(embed_dim, embed_dim, g);
        if let Some(b) = &out_proj.bias {
            b.set_value(init::zeros(&[embed_dim]));
        }
        MultiheadAttention { in_proj_weight, in_proj_bias, out_proj, num_heads, batch_first }
    }

    /// The model width `E`.
    pub fn embed_dim(&self) -> usize {
        self.in_proj_weight.value().dims()[1]
    }

    /// Number of heads.
    pub fn num_heads(&self) -> usize {
        self.num_heads
    }

    /// Features per head, `E / num_heads`.
    ///
    /// ```
    /// use sinew_nn::{MultiheadAttention, MultiheadAttentionOptions};
    /// use sinew_tensor::Generator;
    /// let mha = MultiheadAttention::new(12, 3, MultiheadAttentionOptions::default(), &mut Generator::new(0));
    /// assert_eq!((mha.embed_dim(), mha.num_heads(), mha.head_dim()), (12, 3, 4));
    /// ```
    pub fn head_dim(&self) -> usize {
        self.embed_dim() / self.num_heads
    }

    /// Whether inputs and outputs are `(N, L, E)` rather than `(L, N, E)`.
    pub fn batch_first(&self) -> bool {
        self.batch_first
    }

    /// Attention of `query` `(L, N, E)` over `key` and `value` `(S, N, E)` (`(N, L, E)`
    /// and `(N, S, E)` with `batch_first`; unbatched `(L, E)`, `(S, E)`): the output,
    /// shaped like `query` (PyTorch's `mha(q, k, v, need_weights=False)[0]`).
    ///
    /// `mask.attn_mask` (see [the masks](crate::attention#masks): `i64` keeps non-zero
    /// entries, floats are added) is `(L, S)`, `(N·num_heads, L, S)` as in PyTorch, or any
    /// shape broadcastable to `(N, num_heads, L, S)`: a key padding mask `(N, S)` is passed
    /// as `(N, 1, 1, S)`. `mask.is_causal` lets query `i` attend to keys `0..=i` only.
    ///
    /// ```
    /// use sinew_nn::{AttentionMask, MultiheadAttention, MultiheadAttentionOptions};
    /// use sinew_autograd::Var;
    /// use sinew_tensor::{DType, Generator, Tensor};
    /// let mut g = Generator::new(0);
    /// let mha = MultiheadAttention::new(4, 2, MultiheadAttentionOptions::default(), &mut g);
    /// let x = Var::constant(Tensor::randn_with(&[6, 2, 4], DType::F32, &mut g)); // (L, N, E)
    /// let y = mha.forward_qkv(&x, &x, &x, AttentionMask::causal());
    /// assert_eq!(y.dims(), &[6, 2, 4]);
    /// // causal: the first step sees only itself, whatever comes later
    /// let later = Var::constant(Tensor::zeros(&[5, 2, 4]));
    /// let changed = Var::cat(&[&x.narrow(0, 0, 1), &later], 0);
    /// let y2 = mha.forward_qkv(&changed, &changed, &changed, AttentionMask::causal());
    /// assert!(y2.value().narrow(0, 0, 1).allclose(&y.value().narrow(0, 0, 1), 1e-6, 1e-6));
    /// ```
    #[track_caller]
    pub fn forward_qkv(&self, query: &Var, key: &Var, value: &Var, mask: AttentionMask<'_>) -> Var {
        let weights: Vec<Var> = self.parameters().iter().map(|p| p.var()).collect();
        self.run(&weights, query, key, value, mask, false).0
    }

    /// [`MultiheadAttention::forward_qkv`] that also returns the attention weights averaged
    /// over heads, `(N, L, S)` (unbatched `(L, S)`): PyTorch's `mha(q, k, v)` with its
    /// default `need_weights=True`.
    ///
    /// ```
    /// use sinew_nn::{AttentionMask, MultiheadAttention, MultiheadAttentionOptions};
    /// use sinew_autograd::Var;
    /// use sinew_tensor::{DType, Generator, Tensor};
    /// let mut g = Generator::new(0);
    /// let mha = MultiheadAttention::new(4, 2, MultiheadAttentionOptions::default(), &mut g);
    /// let x = Var::constant(Tensor::randn_with(&[6, 2, 4], DType::F32, &mut g)); // (L, N, E)
    /// let (y, w) = mha.forward_qkv_with_attention(&x, &x, &x, AttentionMask::causal());
    /// assert_eq!((y.dims(), w.dims()), (&[6, 2, 4][..], &[2, 6, 6][..]));
    /// assert_eq!(w.value().select(1, 0).to_vec::<f32>()[..6], [1.0, 0.0, 0.0, 0.0, 0.0, 0.0]);
    /// // key padding: the second sequence has only 3 valid keys
    /// let valid: Vec<i64> = (0..12).map(|i| (i < 6 || i % 6 < 3) as i64).collect();
    /// let pad = Tensor::from_vec(valid, &[2, 1, 1, 6])?;
    /// let (_, w) = mha.forward_qkv_with_attention(&x, &x, &x, (&pad).into());
    /// assert_eq!(w.value().select(0, 1).narrow(1, 3, 3).abs().sum_all().item(), 0.0);
    /// # Ok::<(), sinew_tensor::TensorError>(())
    /// ```
    #[track_caller]
    pub fn forward_qkv_with_attention(
        &self,
        query: &Var,
        key: &Var,
        value: &Var,
        mask: AttentionMask<'_>,
    ) -> (Var, Var) {
        let weights: Vec<Var> = self.parameters().iter().map(|p| p.var()).collect();
        let (out, attention) = self.run(&weights, query, key, value, mask, true);
        (out, attention.expect("weights were asked for"))
    }

    /// [`MultiheadAttention::forward_qkv_with_attention`] with `weights` in place of the
    /// parameters (PyTorch's `torch.func.functional_call`): one variable per parameter, in
    /// `named_parameters` order (`in_proj_weight`, `in_proj_bias`, `out_proj.weight`,
    /// `out_proj.bias`) and with the same shapes. Gradients flow to `weights`.
    ///
    /// # Panics
    /// If the number or shapes of `weights` differ from the parameters.
    ///
    /// ```
    /// use sinew_nn::{AttentionMask, Module, MultiheadAttention, MultiheadAttentionOptions};
    /// use sinew_autograd::Var;
    /// use sinew_tensor::{Generator, Tensor};
    /// let options = MultiheadAttentionOptions::default().batch_first(true);
    /// let mha = MultiheadAttention::new(4, 2, options, &mut Generator::new(0));
    /// let w: Vec<Var> = mha.parameters().iter().map(|p| Var::leaf(p.value().clone())).collect();
    /// let x = Var::constant(Tensor::ones(&[1, 3, 4]));
    /// let (y, _) = mha.forward_qkv_with_weights(&w, &x, &x, &x, AttentionMask::none());
    /// assert_eq!(y.sum_all().backward().get(&w[2]).unwrap().dims(), &[4, 4]);
    /// ```
    #[track_caller]
    pub fn forward_qkv_with_weights(
        &self,
        weights: &[Var],
        query: &Var,
        key: &Var,
        value: &Var,
        mask: AttentionMask<'_>,
    ) -> (Var, Var) {
        let params = self.named_parameters();
        assert_eq!(
            weights.len(),
            params.len(),
            "{self}: expected {} weights (in named_parameters order), got {}",
            params.len(),
            weights.len()
        );
        for (w, (name, p)) in weights.iter().zip(&params) {
            let want = p.value().dims().to_vec();
            assert!(
                w.dims() == want.as_slice(),
                "{self}: expected {name} of shape {want:?}, got {:?}",
                w.dims()
            );
        }
        let (out, attention) = self.run(weights, query, key, value, mask, true);
        (out, attention.expect("weights were asked for"))
    }

    #[track_caller]
    fn run(
        &self,
        weights: &[Var],
        query: &Var,
        key: &Var,
        value: &Var,
        mask: AttentionMask<'_>,
        need_weights: bool,
    ) -> (Var, Option<Var>) {
        let AttentionMask { attn_mask: mask, is_causal: causal } = mask;
        let (e, heads, d) = (self.embed_dim(), self.num_heads, self.head_dim());
        let (l_ax, n_ax) = if self.batch_first { (1, 0) } else { (0, 1) };
        let batched = query.ndim() == 3;
        let layout = |len: &str| {
            if !batched {
                format!("[{len}, {e}]")
            } else if self.batch_first {
                format!("[N, {len}, {e}]")
            } else {
                format!("[{len}, N, {e}]")
            }
        };
        assert!(
            (query.ndim() == 2 || query.ndim() == 3) && query.dims()[query.ndim() - 1] == e,
            "{self}: expected query of shape {} (or unbatched [L, {e}]), got {:?}",
            layout("L"),
            query.dims()
        );
        let fits = |kv: &Var| {
            kv.ndim() == query.ndim()
                && kv.dims()[kv.ndim() - 1] == e
                && (!batched || kv.dims()[n_ax] == query.dims()[n_ax])
        };
        assert!(
            fits(key) && fits(value) && key.dims() == value.dims(),
            "{self}: expected key and value of shape {} for query of shape {:?}, got {:?} and {:?}",
            layout("S"),
            query.dims(),
            key.dims(),
            value.dims()
        );
        // to (N, L, E)
        let to_batch_first = |x: &Var| {
            if !batched {
                x.unsqueeze(0)
            } else if self.batch_first {
                x.clone()
            } else {
                x.transpose(0, 1)
            }
        };
        let (n, l) = if batched { (query.dims()[n_ax], query.dims()[l_ax]) } else { (1, query.dims()[0]) };
        let s = if batched { key.dims()[l_ax] } else { key.dims()[0] };

        let (w_in, b_in) = (&weights[0], &weights[1]);
        let (w_out, b_out) = (&weights[2], weights.get(3));
        let project = |x: &Var, w: &Var, b: &Var| &to_batch_first(x).matmul(&w.t()) + b;
        let (q, k, v) = if query.id() == key.id() && key.id() == value.id() {
            // self-attention: one product for all three projections
            let qkv = project(query, w_in, b_in).chunk(3, -1);
            (qkv[0].clone(), qkv[1].clone(), qkv[2].clone())
        } else {
            let (w, b) = (w_in.chunk(3, 0), b_in.chunk(3, 0));
            (project(query, &w[0], &b[0]), project(key, &w[1], &b[1]), project(value, &w[2], &b[2]))
        };
        // (N, len, E) -> (N, heads, len, d)
        let split = |x: &Var, len: usize| x.reshape(&[n, len, heads, d]).permute(&[0, 2, 1, 3]);
        let mask = self.head_mask(mask, n, l, s);
        let (q, k, v) = (split(&q, l), split(&k, s), split(&v, s));
        let (out, probs) = attention(&self.to_string(), &q, &k, &v, mask.as_ref(), causal, need_weights);
        let out = out.permute(&[0, 2, 1, 3]).reshape(&[n, l, e]).matmul(&w_out.t());
        let out = match b_out {
            Some(b) => &out + b,
            None => out,
        };
        let out = if !batched {
            out.squeeze_dim(0)
        } else if self.batch_first {
            out
        } else {
            out.transpose(0, 1)
        };
        let avg = probs.map(|probs| {
            let w = probs.mean(&[1], false);
            if batched { w } else { w.squeeze_dim(0) }
        });
        (out, avg)
    }

    /// Brings a mask to a shape broadcastable to `(N, heads, L, S)`.
    #[track_caller]
    fn head_mask(&self, m: Option<&Tensor>, n: usize, l: usize, s: usize) -> Option<Tensor> {
        let m = m?;
        let heads = self.num_heads;
        let full = [n, heads, l, s];
        let fits = match m.ndim() {
            2 => m.dims() == [l, s],
            3 => m.dims() == [n * heads, l, s],
            4 => sinew_tensor::shape::broadcast_shapes("attn_mask", m.dims(), &full).is_ok_and(|b| b == full),
            _ => false,
        };
        assert!(
            fits,
            "{self}: expected attn_mask of shape [{l}, {s}], [{}, {l}, {s}] or broadcastable to \
             [{n}, {heads}, {l}, {s}], got {:?}",
            n * heads,
            m.dims()
        );
        Some(if m.ndim() == 3 { m.reshape(&full) } else { m.clone() })
    }
}

impl std::fmt::Display for MultiheadAttention {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "MultiheadAttention({})", self.extra_repr())
    }
}

impl Module for MultiheadAttention {
    fn visit(&self, v: &mut dyn Visitor) {
        v.param("in_proj_weight", &self.in_proj_weight);
        v.param("in_proj_bias", &self.in_proj_bias);
        v.module("out_proj", &self.out_proj);
    }
    fn extra_repr(&self) -> String {
        let mut s = format!("embed_dim={}, num_heads={}", self.embed_dim(), self.num_heads);
        if self.batch_first {
            s += ", batch_first=True";
        }
        s
    }
}

impl Forward for MultiheadAttention {
    /// Self-attention of `x` (no mask), without the attention weights.
    #[track_caller]
    fn forward(&self, x: &Var) -> Var {
        let weights: Vec<Var> = self.parameters().iter().map(|p| p.var()).collect();
        let y = self.run(&weights, x, x, x, AttentionMask::none(), false).0;
        crate::hooks::observed(self, y)
    }
}

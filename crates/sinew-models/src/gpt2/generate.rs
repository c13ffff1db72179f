//! Autoregressive generation: greedy or sampled (temperature, top-k, top-p, seeded), with
//! a key/value cache, stop tokens, and batches of prompts of different lengths.

use sinew_autograd::no_grad;
use sinew_tensor::{DType, Generator, Tensor};

use super::model::{Gpt2Input, Gpt2LMHeadModel, KvCache};
use crate::error::{ModelError, Result};

/// How the next token is chosen from a position's logits.
#[derive(Clone, Debug, PartialEq)]
pub enum Sampling {
    /// The most likely token (the first, on ties), as `do_sample=False`.
    Greedy,
    /// A draw from `softmax(logits / temperature)`, restricted to the `top_k` most likely
    /// tokens and then to the smallest set of them whose probability reaches `top_p`
    /// (Hugging Face's order of the three), from a generator seeded with `seed`.
    Sample {
        /// Above 0; below 1 sharpens, above 1 flattens.
        temperature: f64,
        /// Keep only this many of the most likely tokens (ties with the last kept).
        top_k: Option<usize>,
        /// Nucleus: keep the most likely tokens until their probability reaches this, in (0, 1].
        top_p: Option<f64>,
        /// Seed of the draws: the same seed, model and prompts give the same tokens.
        seed: u64,
    },
}

impl Sampling {
    /// Sampling at `temperature`, from all tokens, seeded.
    pub fn with_temperature(temperature: f64, seed: u64) -> Self {
        Sampling::Sample { temperature, top_k: None, top_p: None, seed }
    }

    /// The same, restricted to the `k` most likely tokens (greedy stays greedy).
    pub fn top_k(self, k: usize) -> Self {
        match self {
            Sampling::Sample { temperature, top_p, seed, .. } => {
                Sampling::Sample { temperature, top_k: Some(k), top_p, seed }
            }
            greedy => greedy,
        }
    }

    /// The same, restricted to the nucleus of probability `p` (greedy stays greedy).
    pub fn top_p(self, p: f64) -> Self {
        match self {
            Sampling::Sample { temperature, top_k, seed, .. } => {
                Sampling::Sample { temperature, top_k, top_p: Some(p), seed }
            }
            greedy => greedy,
        }
    }

    fn validate(&self) -> Result<()> {
        if let Sampling::Sample { temperature, top_k, top_p, .. } = *self {
            let bad = |msg: String| Err(ModelError::Input(format!("generate: {msg}")));
            if !(temperature > 0.0 && temperature.is_finite()) {
                return bad(format!("temperature must be positive and finite, got {temperature}"));
            }
            if top_k == Some(0) {
                return bad("top_k must be at least 1, got 0".into());
            }
            if let Some(p) = top_p.filter(|p| !(*p > 0.0 && *p <= 1.0)) {
                return bad(format!("top_p must be in (0, 1], got {p}"));
            }
        }
        Ok(())
    }
}

/// What [`Gpt2LMHeadModel::generate`] does: how many tokens, how they are chosen, where
/// to stop, whether to cache keys and values.
///
/// ```
/// use sinew_models::gpt2::{GenerateOptions, Sampling};
/// let opts = GenerateOptions::new(50)
///     .with_sampling(Sampling::with_temperature(0.8, 42).top_k(40).top_p(0.95))
///     .with_stop_tokens(&[50256]);
/// assert!(opts.use_cache);
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct GenerateOptions {
    /// At most this many tokens are appended to each prompt.
    pub max_new_tokens: usize,
    /// How each token is chosen.
    pub sampling: Sampling,
    /// A sequence ends after producing any of these (the stop token is returned).
    pub stop_tokens: Vec<i64>,
    /// Keep keys and values between steps (each step then costs one position); without,
    /// every step runs the whole sequence again. Both give the same tokens.
    pub use_cache: bool,
    /// The id left padding and finished sequences are filled with (never attended to).
    pub pad_token_id: i64,
}

impl GenerateOptions {
    /// Greedy, `max_new_tokens` tokens, no stop token, with the cache, padding id 0.
    pub fn new(max_new_tokens: usize) -> Self {
        GenerateOptions {
            max_new_tokens,
            sampling: Sampling::Greedy,
            stop_tokens: Vec::new(),
            use_cache: true,
            pad_token_id: 0,
        }
    }

    /// With another way of choosing tokens.
    pub fn with_sampling(mut self, sampling: Sampling) -> Self {
        self.sampling = sampling;
        self
    }

    /// Stopping each sequence at any of these ids.
    pub fn with_stop_tokens(mut self, ids: &[i64]) -> Self {
        self.stop_tokens = ids.to_vec();
        self
    }

    /// Without the key/value cache.
    pub fn without_cache(mut self) -> Self {
        self.use_cache = false;
        self
    }
}

impl Gpt2LMHeadModel {
    /// Continues each prompt (token ids) by up to `opts.max_new_tokens` tokens and returns
    /// the new tokens of each, in the prompts' order (a sequence that produced a stop token
    /// ends with it). Prompts of different lengths run as one batch, left-padded, with an
    /// attention mask and positions counted from each prompt's first token, so a prompt's
    /// tokens do not depend on the others in its batch. Runs under `no_grad`, in whatever
    /// mode the model is in (call `eval()` first for a model with dropout).
    ///
    /// ```
    /// use sinew_models::gpt2::{GenerateOptions, Gpt2Config, Gpt2LMHeadModel, Sampling};
    /// use sinew_nn::Module;
    /// use sinew_tensor::Generator;
    /// let config = Gpt2Config::from_json(r#"{"vocab_size": 30, "n_positions": 32, "n_embd": 16,
    ///     "n_layer": 2, "n_head": 2}"#)?;
    /// let gpt = Gpt2LMHeadModel::new(&config, &mut Generator::new(0));
    /// gpt.eval();
    /// let greedy = gpt.generate(&[vec![1, 2, 3], vec![4]], &GenerateOptions::new(5))?;
    /// assert_eq!((greedy[0].len(), greedy[1].len()), (5, 5));
    /// let opts = GenerateOptions::new(5).with_sampling(Sampling::with_temperature(1.0, 7).top_k(5));
    /// assert_eq!(gpt.generate(&[vec![1, 2, 3]], &opts)?, gpt.generate(&[vec![1, 2, 3]], &opts)?);
    /// # Ok::<(), sinew_models::ModelError>(())
    /// ```
    ///
    /// # Errors
    /// [`ModelError::Input`] for no prompts, an empty prompt, an id outside the vocabulary,
    /// a prompt plus `max_new_tokens` longer than `n_positions`, or bad sampling parameters.
    pub fn generate<P: AsRef<[i64]>>(&self, prompts: &[P], opts: &GenerateOptions) -> Result<Vec<Vec<i64>>> {
        let bad = |msg: String| Err(ModelError::Input(format!("generate: {msg}")));
        opts.sampling.validate()?;
        let config = self.config();
        if prompts.is_empty() {
            return bad("no prompts".into());
        }
        let width = prompts.iter().map(|p| p.as_ref().len()).max().unwrap_or(0);
        if let Some(i) = prompts.iter().position(|p| p.as_ref().is_empty()) {
            return bad(format!("prompt {i} is empty"));
        }
        if width + opts.max_new_tokens > config.n_positions {
            return bad(format!(
                "the longest prompt ({width} tokens) plus max_new_tokens {} exceeds n_positions {}",
                opts.max_new_tokens, config.n_positions
            ));
        }
        let vocab = config.vocab_size as i64;
        for (i, p) in prompts.iter().enumerate() {
            if let Some(id) = p.as_ref().iter().find(|&&id| !(0..vocab).contains(&id)) {
                return bad(format!("prompt {i} holds id {id}, outside 0..{vocab}"));
            }
        }
        if !(0..vocab).contains(&opts.pad_token_id) {
            return bad(format!("pad_token_id {} is outside 0..{vocab}", opts.pad_token_id));
        }
        no_grad(|| self.generate_checked(prompts, width, opts))
    }

    fn generate_checked<P: AsRef<[i64]>>(
        &self,
        prompts: &[P],
        width: usize,
        opts: &GenerateOptions,
    ) -> Result<Vec<Vec<i64>>> {
        let b = prompts.len();
        // left padding: the sequences' ends align, so each step appends one column
        let mut ids = vec![opts.pad_token_id; b * width];
        let mut mask = vec![0i64; b * width];
        for (r, p) in prompts.iter().enumerate() {
            let p = p.as_ref();
            let start = r * width + width - p.len();
            ids[start..start + p.len()].copy_from_slice(p);
            mask[start..start + p.len()].fill(1);
        }
        // Hugging Face's positions for a padded batch: cumsum(mask) - 1, padding at 0
        let mut last_position = vec![-1i64; b];
        let mut positions = vec![0i64; b * width];
        for r in 0..b {
            for j in 0..width {
                if mask[r * width + j] == 1 {
                    last_position[r] += 1;
                    positions[r * width + j] = last_position[r];
                }
            }
        }
        let tensor = |v: Vec<i64>, cols: usize| Tensor::from_vec(v, &[b, cols]).expect("b × cols ids");
        let (mut all_ids, mut all_mask, mut all_positions) = (ids.clone(), mask.clone(), positions.clone());
        let mut input = Gpt2Input::new(tensor(ids, width))
            .with_attention_mask(tensor(mask, width))
            .with_position_ids(tensor(positions, width));
        let mut cache = KvCache::new();
        let mut rng = match opts.sampling {
            Sampling::Sample { seed, .. } => Some(Generator::new(seed)),
            Sampling::Greedy => None,
        };
        let mut out = vec![Vec::new(); b];
        let mut finished = vec![false; b];
        let mut cols = width;
        for _ in 0..opts.max_new_tokens {
            let logits = self.next_token_logits(&input, opts.use_cache.then_some(&mut cache))?;
            let logits = logits.to_dtype(DType::F64).to_vec::<f64>();
            let vocab = logits.len() / b;
            let mut next = vec![opts.pad_token_id; b];
            for r in 0..b {
                if finished[r] {
                    continue;
                }
                let row = &logits[r * vocab..(r + 1) * vocab];
                let token = choose(row, &opts.sampling, rng.as_mut()) as i64;
                next[r] = token;
                out[r].push(token);
                finished[r] = opts.stop_tokens.contains(&token);
            }
            if finished.iter().all(|&f| f) {
                break;
            }
            for p in &mut last_position {
                *p += 1;
            }
            cols += 1;
            // the grown mask: the new token of every sequence is attended to (a finished
            // sequence's padding only affects that sequence, whose tokens are no longer read)
            all_mask = append_column(&all_mask, &vec![1; b], b);
            let mask = tensor(all_mask.clone(), cols);
            input = if opts.use_cache {
                Gpt2Input::new(tensor(next.clone(), 1))
                    .with_attention_mask(mask)
                    .with_position_ids(tensor(last_position.clone(), 1))
            } else {
                all_ids = append_column(&all_ids, &next, b);
                all_positions = append_column(&all_positions, &last_position, b);
                Gpt2Input::new(tensor(all_ids.clone(), cols))
                    .with_attention_mask(mask)
                    .with_position_ids(tensor(all_positions.clone(), cols))
            };
        }
        Ok(out)
    }
}

/// `rows` (row-major, `b` rows) with one more column, `column`.
fn append_column(rows: &[i64], column: &[i64], b: usize) -> Vec<i64> {
    let cols = rows.len() / b;
    let mut out = Vec::with_capacity(rows.len() + b);
    for r in 0..b {
        out.extend_from_slice(&rows[r * cols..(r + 1) * cols]);
        out.push(column[r]);
    }
    out
}

/// The next token from one position's logits.
fn choose(logits: &[f64], sampling: &Sampling, rng: Option<&mut Generator>) -> usize {
    let Sampling::Sample { temperature, top_k, top_p, .. } = *sampling else {
        return argmax(logits);
    };
    let rng = rng.expect("a sampling generation has a generator");
    let scaled: Vec<f64> = logits.iter().map(|&x| x / temperature).collect();
    let weights = filtered_probabilities(&scaled, top_k, top_p);
    let total: f64 = weights.iter().sum();
    let mut u = rng.uniform_f64() * total;
    for (i, &w) in weights.iter().enumerate() {
        if w > 0.0 {
            if u < w {
                return i;
            }
            u -= w;
        }
    }
    // rounding left u at the end: the last token with weight
    weights.iter().rposition(|&w| w > 0.0).unwrap_or_else(|| argmax(logits))
}

fn argmax(x: &[f64]) -> usize {
    let mut best = 0;
    for (i, &v) in x.iter().enumerate() {
        if v > x[best] {
            best = i;
        }
    }
    best
}

/// Softmax probabilities after Hugging Face's top-k (keep the `k` largest, and ties with
/// the `k`-th) and top-p filters (keep the most likely tokens while the probability before
/// each is below `p`: the smallest set reaching `p`, at least one token). Filtered tokens
/// get 0; the rest are not renormalised (the caller draws in proportion).
fn filtered_probabilities(scaled: &[f64], top_k: Option<usize>, top_p: Option<f64>) -> Vec<f64> {
    let mut order: Vec<usize> = (0..scaled.len()).collect();
    order.sort_by(|&a, &b| scaled[b].total_cmp(&scaled[a]));
    let mut kept = scaled.len();
    if let Some(k) = top_k.filter(|&k| k < scaled.len()) {
        let threshold = scaled[order[k - 1]];
        kept = order.iter().take_while(|&&i| scaled[i] >= threshold).count();
    }
    let max = scaled[order[0]];
    let mut probs = vec![0.0; scaled.len()];
    let mut total = 0.0;
    for &i in &order[..kept] {
        probs[i] = (scaled[i] - max).exp();
        total += probs[i];
    }
    if let Some(p) = top_p {
        let mut cumulative = 0.0;
        let mut nucleus = 0;
        for &i in &order[..kept] {
            if nucleus > 0 && cumulative >= p {
                break;
            }
            cumulative += probs[i] / total;
            nucleus += 1;
        }
        for &i in &order[nucleus..kept] {
            probs[i] = 0.0;
        }
    }
    probs
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn top_k_keeps_the_k_largest_and_their_ties() {
        let x = [1.0, 3.0, 2.0, 3.0, 0.0];
        let kept = |k| filtered_probabilities(&x, Some(k), None).iter().filter(|&&p| p > 0.0).count();
        assert_eq!((kept(1), kept(2), kept(3), kept(9)), (2, 2, 3, 5));
    }

    #[test]
    fn top_p_keeps_the_smallest_set_reaching_p() {
        // probabilities 0.5, 0.25, 0.125, 0.125 (as logs)
        let x = [0.5f64.ln(), 0.25f64.ln(), 0.125f64.ln(), 0.125f64.ln()];
        let kept = |p| filtered_probabilities(&x, None, Some(p)).iter().filter(|&&q| q > 0.0).count();
        assert_eq!((kept(0.1), kept(0.5), kept(0.6), kept(0.75), kept(0.8), kept(1.0)), (1, 1, 2, 2, 3, 4));
    }

    #[test]
    fn draws_follow_the_probabilities() {
        let x = [0.0, 1.0f64.ln() + 1.0, 0.0];
        let mut rng = Generator::new(3);
        let s = Sampling::with_temperature(1.0, 0);
        let mut counts = [0usize; 3];
        for _ in 0..20_000 {
            counts[choose(&x, &s, Some(&mut rng))] += 1;
        }
        // probabilities 1/(2+e), e/(2+e), 1/(2+e)
        let e = std::f64::consts::E;
        let want = [1.0 / (2.0 + e), e / (2.0 + e), 1.0 / (2.0 + e)];
        for (c, w) in counts.iter().zip(want) {
            assert!((*c as f64 / 20_000.0 - w).abs() < 0.015, "{counts:?} vs {want:?}");
        }
        // a low temperature is nearly greedy; greedy takes the first maximum
        let cold = Sampling::with_temperature(0.01, 0);
        assert!((0..100).all(|_| choose(&x, &cold, Some(&mut rng)) == 1));
        assert_eq!(choose(&[1.0, 2.0, 2.0], &Sampling::Greedy, None), 1);
    }

    #[test]
    fn bad_sampling_parameters_are_named() {
        for (s, want) in [
            (Sampling::with_temperature(0.0, 0), "temperature"),
            (Sampling::with_temperature(1.0, 0).top_k(0), "top_k"),
            (Sampling::with_temperature(1.0, 0).top_p(1.5), "top_p"),
            (Sampling::with_temperature(f64::NAN, 0), "temperature"),
        ] {
            assert!(s.validate().unwrap_err().to_string().contains(want), "{s:?}");
        }
    }
}

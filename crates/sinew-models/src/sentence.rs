//! Sentence embeddings as sentence-transformers computes them: a transformer, a pooling
//! of its token states (`1_Pooling/config.json`), an optional L2 normalisation
//! (`modules.json`), and the two uses of the result: cosine similarity and semantic search.

use std::path::Path;

use serde::Deserialize;
use sinew_autograd::Var;
use sinew_tensor::{DType, Tensor};

use crate::error::{ModelError, Result, read_text};

/// How token states become one vector per sentence (sentence-transformers' `Pooling`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum PoolingMode {
    /// The mean of the real tokens' states (`pooling_mode_mean_tokens`).
    Mean,
    /// The first (`[CLS]`) token's state (`pooling_mode_cls_token`).
    Cls,
    /// The elementwise maximum over the real tokens (`pooling_mode_max_tokens`).
    Max,
}

#[derive(Deserialize)]
struct PoolingFile {
    #[serde(default)]
    pooling_mode_cls_token: bool,
    #[serde(default)]
    pooling_mode_mean_tokens: bool,
    #[serde(default)]
    pooling_mode_max_tokens: bool,
    #[serde(default)]
    pooling_mode_mean_sqrt_len_tokens: bool,
    #[serde(default)]
    pooling_mode_weightedmean_tokens: bool,
    #[serde(default)]
    pooling_mode_lasttoken: bool,
}

impl PoolingMode {
    /// Reads `1_Pooling/config.json`'s text: exactly one of the CLS, mean and max modes.
    ///
    /// ```
    /// use sinew_models::PoolingMode;
    /// let mode = PoolingMode::from_json(r#"{"word_embedding_dimension": 384, "pooling_mode_cls_token": false,
    ///     "pooling_mode_mean_tokens": true, "pooling_mode_max_tokens": false}"#)?;
    /// assert_eq!(mode, PoolingMode::Mean);
    /// # Ok::<(), sinew_models::ModelError>(())
    /// ```
    ///
    /// # Errors
    /// [`ModelError::Config`] for malformed JSON, no mode, several modes (sentence-transformers
    /// would concatenate them) or a mode sinew does not implement.
    pub fn from_json(text: &str) -> Result<Self> {
        let bad = |msg: String| ModelError::Config { path: None, msg };
        let f: PoolingFile = serde_json::from_str(text).map_err(|e| bad(e.to_string()))?;
        for (on, name) in [
            (f.pooling_mode_mean_sqrt_len_tokens, "pooling_mode_mean_sqrt_len_tokens"),
            (f.pooling_mode_weightedmean_tokens, "pooling_mode_weightedmean_tokens"),
            (f.pooling_mode_lasttoken, "pooling_mode_lasttoken"),
        ] {
            if on {
                return Err(bad(format!("{name} is not supported (only cls, mean or max pooling)")));
            }
        }
        match (f.pooling_mode_cls_token, f.pooling_mode_mean_tokens, f.pooling_mode_max_tokens) {
            (true, false, false) => Ok(PoolingMode::Cls),
            (false, true, false) => Ok(PoolingMode::Mean),
            (false, false, true) => Ok(PoolingMode::Max),
            (false, false, false) => Err(bad("no pooling mode is set".into())),
            _ => Err(bad("several pooling modes are set (their concatenation is not supported)".into())),
        }
    }

    /// Reads a pooling configuration file.
    ///
    /// # Errors
    /// As [`PoolingMode::from_json`], naming the file; [`ModelError::MissingFile`].
    pub fn from_file(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        PoolingMode::from_json(&read_text(path)?).map_err(|e| e.in_file(path))
    }

    /// Pools `hidden` `(batch, seq, dim)` over the tokens whose `mask` `(batch, seq)`
    /// (`i64`, 1 = real token) is set, or over every token without a mask, to
    /// `(batch, dim)`.
    ///
    /// ```
    /// use sinew_models::PoolingMode;
    /// use sinew_autograd::Var;
    /// use sinew_tensor::Tensor;
    /// let hidden = Var::constant(Tensor::from_vec(vec![1.0f32, 2.0, 3.0, 4.0, 100.0, 100.0], &[1, 3, 2])?);
    /// let mask = Tensor::from_vec(vec![1i64, 1, 0], &[1, 3])?; // the last token is padding
    /// assert_eq!(PoolingMode::Mean.pool(&hidden, Some(&mask)).value().to_vec::<f32>(), vec![2.0, 3.0]);
    /// assert_eq!(PoolingMode::Max.pool(&hidden, Some(&mask)).value().to_vec::<f32>(), vec![3.0, 4.0]);
    /// assert_eq!(PoolingMode::Cls.pool(&hidden, Some(&mask)).value().to_vec::<f32>(), vec![1.0, 2.0]);
    /// // without a mask every token counts
    /// let all = PoolingMode::Mean.pool(&hidden, None).value().to_vec::<f32>();
    /// assert!((all[0] - 104.0 / 3.0).abs() < 1e-5 && (all[1] - 106.0 / 3.0).abs() < 1e-5);
    /// # Ok::<(), sinew_tensor::TensorError>(())
    /// ```
    pub fn pool(self, hidden: &Var, mask: Option<&Tensor>) -> Var {
        let Some(mask) = mask else {
            return match self {
                PoolingMode::Cls => hidden.select(1, 0),
                PoolingMode::Mean => hidden.mean(&[1], false),
                PoolingMode::Max => hidden.max_dim(1, false).0,
            };
        };
        let keep = mask.to_dtype(hidden.dtype()).unsqueeze(-1); // (batch, seq, 1)
        match self {
            PoolingMode::Cls => hidden.select(1, 0),
            PoolingMode::Mean => {
                // sentence-transformers: sum(h · mask) / clamp(sum(mask), min = 1e-9)
                let count = keep.sum(&[1], false).clamp(Some(1e-9), None);
                (hidden * &Var::constant(keep)).sum(&[1], false).div(&Var::constant(count))
            }
            PoolingMode::Max => {
                // padding set to -1e9 first, as sentence-transformers does
                let pad = keep.rsub_scalar(1.0).mul_scalar(-1e9);
                (&(hidden * &Var::constant(keep)) + &Var::constant(pad)).max_dim(1, false).0
            }
        }
    }
}

/// Rows scaled to unit L2 norm: `x / max(‖x‖, 1e-12)` (`F.normalize(x, dim=-1)`).
///
/// ```
/// use sinew_models::l2_normalize;
/// use sinew_autograd::Var;
/// use sinew_tensor::Tensor;
/// let x = Var::constant(Tensor::from_vec(vec![3.0f32, 4.0, 0.0, 0.0], &[2, 2])?);
/// assert_eq!(l2_normalize(&x).value().to_vec::<f32>(), vec![0.6, 0.8, 0.0, 0.0]);
/// # Ok::<(), sinew_tensor::TensorError>(())
/// ```
pub fn l2_normalize(x: &Var) -> Var {
    x.div(&x.norm(2.0, &[-1], true).clamp(Some(1e-12), None))
}

/// The cosine similarities of every row of `a` `(n, dim)` with every row of `b` `(m, dim)`:
/// `(n, m)`, as `sentence_transformers.util.cos_sim`.
///
/// ```
/// use sinew_models::cosine_similarity;
/// use sinew_tensor::Tensor;
/// let a = Tensor::from_vec(vec![1.0f32, 0.0, 1.0, 1.0], &[2, 2])?;
/// let s = cosine_similarity(&a, &a).to_vec::<f32>();
/// assert!((s[0] - 1.0).abs() < 1e-6 && (s[1] - 0.5f32.sqrt()).abs() < 1e-6);
/// # Ok::<(), sinew_tensor::TensorError>(())
/// ```
///
/// # Panics
/// If `a` and `b` are not matrices with the same number of columns.
#[track_caller]
pub fn cosine_similarity(a: &Tensor, b: &Tensor) -> Tensor {
    assert!(
        a.ndim() == 2 && b.ndim() == 2 && a.dims()[1] == b.dims()[1],
        "cosine_similarity: expected (n, dim) and (m, dim), got {:?} and {:?}",
        a.dims(),
        b.dims()
    );
    let unit = |x: &Tensor| l2_normalize(&Var::constant(x.clone())).value().clone();
    unit(a).matmul(&unit(b).t())
}

/// One hit of a [`semantic_search`]: the corpus row and its cosine similarity.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Hit {
    /// Row of the corpus.
    pub corpus_id: usize,
    /// Cosine similarity to the query.
    pub score: f64,
}

/// For each query row, the `k` corpus rows most similar to it by cosine similarity, best
/// first (ties by lower row), as `sentence_transformers.util.semantic_search`.
///
/// ```
/// use sinew_models::semantic_search;
/// use sinew_tensor::Tensor;
/// let corpus = Tensor::from_vec(vec![1.0f32, 0.0, 0.0, 1.0, 1.0, 1.0], &[3, 2])?;
/// let query = Tensor::from_vec(vec![0.1f32, 1.0], &[1, 2])?;
/// let hits = semantic_search(&query, &corpus, 2);
/// assert_eq!(hits[0].iter().map(|h| h.corpus_id).collect::<Vec<_>>(), vec![1, 2]);
/// # Ok::<(), sinew_tensor::TensorError>(())
/// ```
///
/// # Panics
/// As [`cosine_similarity`].
#[track_caller]
pub fn semantic_search(queries: &Tensor, corpus: &Tensor, k: usize) -> Vec<Vec<Hit>> {
    let scores = cosine_similarity(queries, corpus).to_dtype(DType::F64);
    let m = corpus.dims()[0];
    if m == 0 {
        return vec![Vec::new(); queries.dims()[0]];
    }
    scores
        .to_vec::<f64>()
        .chunks(m.max(1))
        .take(queries.dims()[0])
        .map(|row| {
            let mut hits: Vec<Hit> =
                row.iter().enumerate().map(|(corpus_id, &score)| Hit { corpus_id, score }).collect();
            hits.sort_by(|a, b| b.score.total_cmp(&a.score).then(a.corpus_id.cmp(&b.corpus_id)));
            hits.truncate(k);
            hits
        })
        .collect()
}

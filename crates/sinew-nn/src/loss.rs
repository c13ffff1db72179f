//! Loss functions, as functions and as modules, with PyTorch's names, defaults and
//! `reduction` (mean, sum, none). Each is written with stable formulas: cross entropy
//! goes through `log_softmax`, the logits form of binary cross entropy never takes the
//! log of a sigmoid, and `binary_cross_entropy` clamps its logs at -100 as PyTorch does.

use sinew_autograd::Var;
use sinew_tensor::{DType, Tensor};

/// How a loss combines per-element values.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Reduction {
    /// The mean (PyTorch's default).
    #[default]
    Mean,
    /// The sum.
    Sum,
    /// No reduction: one value per element.
    None,
}

fn reduce(per_element: Var, reduction: Reduction) -> Var {
    match reduction {
        Reduction::Mean => per_element.mean_all(),
        Reduction::Sum => per_element.sum_all(),
        Reduction::None => per_element,
    }
}

#[track_caller]
fn same_shape(name: &str, input: &Var, target: &Var) {
    assert!(
        input.dims() == target.dims(),
        "{name}: input of shape {:?} and target of shape {:?} must match",
        input.dims(),
        target.dims()
    );
}

/// Mean squared error `(x - y)²` (`F.mse_loss`).
///
/// ```
/// use sinew_nn::loss::{Reduction, mse_loss};
/// use sinew_autograd::Var;
/// use sinew_tensor::Tensor;
/// let x = Var::constant(Tensor::from_vec(vec![1.0f32, 2.0], &[2])?);
/// let y = Var::constant(Tensor::from_vec(vec![0.0f32, 4.0], &[2])?);
/// assert_eq!(mse_loss(&x, &y, Reduction::Mean).item(), 2.5);
/// # Ok::<(), sinew_tensor::TensorError>(())
/// ```
#[track_caller]
pub fn mse_loss(input: &Var, target: &Var, reduction: Reduction) -> Var {
    same_shape("mse_loss", input, target);
    reduce((input - target).square(), reduction)
}

/// Mean absolute error `|x - y|` (`F.l1_loss`).
///
/// ```
/// use sinew_nn::loss::{Reduction, l1_loss};
/// use sinew_autograd::Var;
/// use sinew_tensor::Tensor;
/// let x = Var::constant(Tensor::from_vec(vec![1.0f32, 2.0], &[2])?);
/// let y = Var::constant(Tensor::from_vec(vec![0.0f32, 4.0], &[2])?);
/// assert_eq!(l1_loss(&x, &y, Reduction::Mean).item(), 1.5);
/// assert_eq!(l1_loss(&x, &y, Reduction::Sum).item(), 3.0);
/// # Ok::<(), sinew_tensor::TensorError>(())
/// ```
#[track_caller]
pub fn l1_loss(input: &Var, target: &Var, reduction: Reduction) -> Var {
    same_shape("l1_loss", input, target);
    reduce((input - target).abs(), reduction)
}

/// Huber loss (`F.huber_loss`): `0.5·d²` where `|d| < delta`, else `delta·(|d| - 0.5·delta)`.
///
/// ```
/// use sinew_nn::loss::{Reduction, huber_loss};
/// use sinew_autograd::Var;
/// use sinew_tensor::Tensor;
/// // F.huber_loss(tensor([0.5, 3.]), tensor([0., 0.]), delta=1.0, reduction="none")
/// let x = Var::constant(Tensor::from_vec(vec![0.5f32, 3.0], &[2])?);
/// let y = Var::constant(Tensor::zeros(&[2]));
/// assert_eq!(huber_loss(&x, &y, 1.0, Reduction::None).value().to_vec::<f32>(), vec![0.125, 2.5]);
/// assert_eq!(huber_loss(&x, &y, 1.0, Reduction::Mean).item(), 1.3125);
/// # Ok::<(), sinew_tensor::TensorError>(())
/// ```
#[track_caller]
pub fn huber_loss(input: &Var, target: &Var, delta: f64, reduction: Reduction) -> Var {
    same_shape("huber_loss", input, target);
    let d = input - target;
    let a = d.abs();
    let small = a.value().lt_scalar(delta);
    let quadratic = &d.square() * 0.5;
    let linear = (&a - 0.5 * delta) * delta;
    reduce(Var::where_(&small, &quadratic, &linear), reduction)
}

/// Smooth L1 loss (`F.smooth_l1_loss`): Huber loss divided by `beta`.
///
/// ```
/// use sinew_nn::loss::{Reduction, smooth_l1_loss};
/// use sinew_autograd::Var;
/// use sinew_tensor::Tensor;
/// // beta = 2: 0.5·d²/beta = 0.25 for d = 1, |d| - beta/2 = 2 for d = 3
/// let x = Var::constant(Tensor::from_vec(vec![1.0f32, 3.0], &[2])?);
/// let y = Var::constant(Tensor::zeros(&[2]));
/// assert_eq!(smooth_l1_loss(&x, &y, 2.0, Reduction::None).value().to_vec::<f32>(), vec![0.25, 2.0]);
/// assert_eq!(smooth_l1_loss(&x, &y, 2.0, Reduction::Sum).item(), 2.25);
/// # Ok::<(), sinew_tensor::TensorError>(())
/// ```
#[track_caller]
pub fn smooth_l1_loss(input: &Var, target: &Var, beta: f64, reduction: Reduction) -> Var {
    same_shape("smooth_l1_loss", input, target);
    if beta == 0.0 {
        return l1_loss(input, target, reduction);
    }
    huber_loss(input, target, beta, reduction) / beta
}

/// Binary cross entropy on probabilities (`F.binary_cross_entropy`); the logs are clamped
/// at -100 so that a probability of exactly 0 or 1 gives a finite loss.
///
/// # Panics
/// If shapes differ or an input is outside `[0, 1]`.
///
/// ```
/// use sinew_nn::loss::{Reduction, binary_cross_entropy};
/// use sinew_autograd::Var;
/// use sinew_tensor::Tensor;
/// let p = Var::constant(Tensor::from_vec(vec![0.5f32, 0.0], &[2])?);
/// let y = Var::constant(Tensor::ones(&[2]));
/// // -log(0.5), and -log(0) clamped at 100
/// let per = binary_cross_entropy(&p, &y, Reduction::None).value().clone();
/// assert!(per.allclose(&Tensor::from_vec(vec![2f32.ln(), 100.0], &[2])?, 1e-6, 1e-6));
/// # Ok::<(), sinew_tensor::TensorError>(())
/// ```
#[track_caller]
pub fn binary_cross_entropy(input: &Var, target: &Var, reduction: Reduction) -> Var {
    same_shape("binary_cross_entropy", input, target);
    let v = input.value();
    assert!(
        v.ge_scalar(0.0).mul(&v.le_scalar(1.0)).sum_all().item() as usize == v.numel(),
        "binary_cross_entropy: inputs must be probabilities in [0, 1] (apply sigmoid, or use binary_cross_entropy_with_logits)"
    );
    // log clamped at -100; where a probability is exactly 0 the log is taken of 1 and
    // replaced, so that its backward (g / p) never computes 0 / 0 = NaN
    let clamped_log = |p: &Var| {
        let positive = p.value().gt_scalar(0.0);
        let safe = Var::where_(&positive, p, &p.ones_like()).log();
        Var::where_(&positive, &safe, &Var::constant(p.value().full_like(-100.0))).clamp(Some(-100.0), None)
    };
    let log_p = clamped_log(input);
    let log_1mp = clamped_log(&input.rsub_scalar(1.0));
    let per = -(&(target * &log_p) + &(&target.rsub_scalar(1.0) * &log_1mp));
    reduce(per, reduction)
}

/// Binary cross entropy on logits (`F.binary_cross_entropy_with_logits`), stable for any
/// logit: `(1 - y)·x + (1 + (w - 1)·y)·(log(1 + e^-|x|) + max(-x, 0))` with optional
/// `pos_weight` `w` (broadcast over the last dimension).
///
/// ```
/// use sinew_nn::loss::{Reduction, binary_cross_entropy_with_logits};
/// use sinew_autograd::Var;
/// use sinew_tensor::Tensor;
/// let x = Var::constant(Tensor::from_vec(vec![0.0f32, 100.0], &[2])?);
/// let y = Var::constant(Tensor::ones(&[2]));
/// // logit 0 is probability 1/2: loss ln 2; logit 100 is finite and ~0 (no overflow)
/// let per = binary_cross_entropy_with_logits(&x, &y, None, Reduction::None).value().clone();
/// assert!(per.allclose(&Tensor::from_vec(vec![2f32.ln(), 0.0], &[2])?, 1e-6, 1e-6));
/// // pos_weight=3 triples the loss of positive targets
/// let w = Tensor::from_vec(vec![3.0f32], &[1])?;
/// let weighted = binary_cross_entropy_with_logits(&x, &y, Some(&w), Reduction::None).value().clone();
/// assert!((weighted.to_vec::<f32>()[0] - 3.0 * 2f32.ln()).abs() < 1e-6);
/// # Ok::<(), sinew_tensor::TensorError>(())
/// ```
#[track_caller]
pub fn binary_cross_entropy_with_logits(
    input: &Var,
    target: &Var,
    pos_weight: Option<&Tensor>,
    reduction: Reduction,
) -> Var {
    same_shape("binary_cross_entropy_with_logits", input, target);
    // log(1 + e^-|x|) + max(-x, 0) = softplus(-x), computed without overflow; |x| and
    // max(-x, 0) take the same branch at x = 0, so that the gradient there is -1/2 (the
    // subgradients of abs and relu, 0 each, would give 0)
    let negative = input.value().lt_scalar(0.0);
    let abs = Var::where_(&negative, &input.neg(), input);
    let neg_part = Var::where_(&negative, &input.neg(), &input.zeros_like());
    let softplus_neg = &abs.neg().exp().log1p() + &neg_part;
    let per = match pos_weight {
        None => &(&target.rsub_scalar(1.0) * input) + &softplus_neg,
        Some(w) => {
            let w = Var::constant(w.to_dtype(input.dtype()));
            let coef = &(&(&w - 1.0) * target) + 1.0;
            &(&target.rsub_scalar(1.0) * input) + &(&coef * &softplus_neg)
        }
    };
    reduce(per, reduction)
}

/// Options of [`cross_entropy`] beyond the reduction, with PyTorch's defaults.
#[derive(Clone, Debug)]
pub struct CrossEntropyOptions {
    /// A weight per class, `(C)`.
    pub weight: Option<Tensor>,
    /// A target value whose samples are ignored (PyTorch's default, and ours: -100).
    pub ignore_index: Option<i64>,
    /// Mixes the one-hot target with the uniform distribution: `(1 - ε)·onehot + ε/C`.
    pub label_smoothing: f64,
    /// Mean, sum or none.
    pub reduction: Reduction,
}

impl Default for CrossEntropyOptions {
    fn default() -> Self {
        CrossEntropyOptions {
            weight: None,
            ignore_index: Some(-100),
            label_smoothing: 0.0,
            reduction: Reduction::Mean,
        }
    }
}

/// Checks class-index targets of a `(N, C)` or `(N, C, d...)` input and returns them flat,
/// with the class dimension moved last in the input.
#[track_caller]
fn class_targets(name: &str, input: &Var, target: &Tensor, ignore: Option<i64>) -> (Var, Vec<i64>) {
    assert!(input.ndim() >= 2, "{name}: input must be (N, C) or (N, C, d...), got {:?}", input.dims());
    assert_eq!(target.dtype(), DType::I64, "{name}: class targets must be int64, got {}", target.dtype());
    let c = input.dims()[1];
    let mut expect = input.dims().to_vec();
    expect.remove(1);
    assert!(
        target.dims() == expect,
        "{name}: input {:?} needs targets of shape {expect:?}, got {:?}",
        input.dims(),
        target.dims()
    );
    let t = target.to_vec::<i64>();
    if let Some(bad) = t.iter().find(|&&k| Some(k) != ignore && (k < 0 || k as usize >= c)) {
        panic!("{name}: target class {bad} is out of range for {c} classes");
    }
    // (N, C, d...) -> (N·d..., C)
    let moved = if input.ndim() > 2 {
        let mut perm: Vec<usize> = (0..input.ndim()).filter(|&d| d != 1).collect();
        perm.push(1);
        input.permute(&perm).reshape(&[t.len(), c])
    } else {
        input.clone()
    };
    (moved, t)
}

/// The options of [`nll_loss`]: `F.nll_loss`'s `weight`, `ignore_index` and `reduction`,
/// with its defaults (no weights, ignore -100, mean), as [`CrossEntropyOptions`] has them.
///
/// ```
/// use sinew_nn::loss::{NllLossOptions, Reduction};
/// let o = NllLossOptions { reduction: Reduction::Sum, ..NllLossOptions::default() };
/// assert_eq!((o.ignore_index, o.reduction), (Some(-100), Reduction::Sum));
/// ```
#[derive(Clone, Debug)]
pub struct NllLossOptions {
    /// A weight per class, `(C)`.
    pub weight: Option<Tensor>,
    /// A target value whose samples are ignored (PyTorch's default, and ours: -100).
    pub ignore_index: Option<i64>,
    /// Mean, sum or none.
    pub reduction: Reduction,
}

impl Default for NllLossOptions {
    fn default() -> Self {
        NllLossOptions { weight: None, ignore_index: Some(-100), reduction: Reduction::Mean }
    }
}

/// Negative log likelihood of log-probabilities `(N, C)` (or `(N, C, d...)`) with `i64`
/// class targets (`F.nll_loss`); `weight` and `ignore_index` as in PyTorch (the mean
/// divides by the total weight of the counted samples).
///
/// # Panics
/// If shapes disagree or a class is out of range (the message names it).
///
/// ```
/// use sinew_nn::loss::{NllLossOptions, nll_loss};
/// use sinew_autograd::Var;
/// use sinew_tensor::Tensor;
/// let log_probs = Var::leaf(Tensor::from([[-0.5f64, -1.0], [-2.0, -0.25]]));
/// let target = Tensor::from([1i64, -100]); // the second sample is ignored
/// let loss = nll_loss(&log_probs, &target, &NllLossOptions::default());
/// assert_eq!(loss.value().item(), 1.0);
/// let g = loss.backward().get(&log_probs).unwrap().to_vec::<f64>();
/// assert_eq!(g, [0.0, -1.0, 0.0, 0.0]);
/// ```
#[track_caller]
pub fn nll_loss(log_probs: &Var, target: &Tensor, options: &NllLossOptions) -> Var {
    let (lp, t) = class_targets("nll_loss", log_probs, target, options.ignore_index);
    weighted_nll(&lp, &t, options.weight.as_ref(), options.ignore_index, options.reduction, target.dims())
}

fn sample_weights(t: &[i64], weight: Option<&Tensor>, ignore: Option<i64>, dtype: DType) -> Tensor {
    let w = weight.map(|w| w.to_vec::<f64>());
    let per: Vec<f64> = t
        .iter()
        .map(|&k| if Some(k) == ignore { 0.0 } else { w.as_ref().map_or(1.0, |w| w[k as usize]) })
        .collect();
    Tensor::from_vec(per, &[t.len()]).expect("shape").to_dtype(dtype)
}

fn weighted_nll(
    lp: &Var,
    t: &[i64],
    weight: Option<&Tensor>,
    ignore: Option<i64>,
    reduction: Reduction,
    shape: &[usize],
) -> Var {
    let safe: Vec<i64> = t.iter().map(|&k| if Some(k) == ignore { 0 } else { k }).collect();
    let idx = Tensor::from_vec(safe, &[t.len(), 1]).expect("shape");
    let picked = lp.gather(1, &idx).reshape(&[t.len()]);
    let w = sample_weights(t, weight, ignore, lp.dtype());
    let per = -(&picked * &Var::constant(w.clone()));
    match reduction {
        Reduction::Mean => per.sum_all() / w.sum_all().item(),
        Reduction::Sum => per.sum_all(),
        Reduction::None => per.reshape(shape),
    }
}

/// Cross entropy of raw logits `(N, C)` (or `(N, C, d...)`) and `i64` class targets
/// (`F.cross_entropy`), through `log_softmax` so extreme logits stay finite; with class
/// weights, `ignore_index` and label smoothing as in PyTorch.
///
/// # Panics
/// If shapes disagree or a class is out of range (the message names it).
///
/// ```
/// use sinew_nn::loss::{CrossEntropyOptions, cross_entropy};
/// use sinew_autograd::Var;
/// use sinew_tensor::Tensor;
/// let logits = Var::constant(Tensor::from_vec(vec![1000.0f32, 0.0, 0.0, 1000.0], &[2, 2])?);
/// let target = Tensor::from_vec(vec![0i64, 1], &[2])?;
/// assert_eq!(cross_entropy(&logits, &target, &CrossEntropyOptions::default()).item(), 0.0);
/// # Ok::<(), sinew_tensor::TensorError>(())
/// ```
#[track_caller]
pub fn cross_entropy(logits: &Var, target: &Tensor, opts: &CrossEntropyOptions) -> Var {
    let (x, t) = class_targets("cross_entropy", logits, target, opts.ignore_index);
    let c = x.dims()[1];
    let lp = x.log_softmax(1);
    let nll = weighted_nll(&lp, &t, opts.weight.as_ref(), opts.ignore_index, opts.reduction, target.dims());
    let eps = opts.label_smoothing;
    if eps == 0.0 {
        return nll;
    }
    // smoothing term: -Σ_c w_c·log p_c / C per sample, reduced like the nll term
    let class_w = match &opts.weight {
        Some(w) => Var::constant(w.to_dtype(lp.dtype()).reshape(&[1, c])),
        None => Var::constant(Tensor::ones_dtype(&[1, c], lp.dtype())),
    };
    let keep = Var::constant(sample_weights(&t, None, opts.ignore_index, lp.dtype()));
    let smooth_per = -(&(&lp * &class_w).sum(&[1], false) * &keep) / c as f64;
    let smooth = match opts.reduction {
        Reduction::Mean => {
            let denom =
                sample_weights(&t, opts.weight.as_ref(), opts.ignore_index, lp.dtype()).sum_all().item();
            smooth_per.sum_all() / denom
        }
        Reduction::Sum => smooth_per.sum_all(),
        Reduction::None => smooth_per.reshape(target.dims()),
    };
    &(&nll * (1.0 - eps)) + &(&smooth * eps)
}

/// How [`kl_div`] reduces.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum KlReduction {
    /// Mean over every element (PyTorch's default, though `BatchMean` is the true KL).
    #[default]
    Mean,
    /// Sum divided by the batch size: the mathematical KL divergence per sample.
    BatchMean,
    /// The sum.
    Sum,
    /// No reduction.
    None,
}

/// KL divergence `Σ y·(log y - x)` where `input` holds log-probabilities and `target`
/// probabilities (or log-probabilities with `log_target`), as `F.kl_div`.
///
/// ```
/// use sinew_nn::loss::{KlReduction, kl_div};
/// use sinew_autograd::Var;
/// use sinew_tensor::Tensor;
/// let p = Tensor::from_vec(vec![0.5f64, 0.5], &[1, 2])?;
/// let q = Tensor::from_vec(vec![0.25f64, 0.75], &[1, 2])?;
/// // F.kl_div(q.log(), p, reduction="batchmean") = Σ p·log(p/q)
/// let kl = kl_div(&Var::constant(q.log()), &Var::constant(p.clone()), KlReduction::BatchMean, false);
/// let expected = 0.5 * (0.5f64 / 0.25).ln() + 0.5 * (0.5f64 / 0.75).ln();
/// assert!((kl.item() - expected).abs() < 1e-12);
/// // with log_target the target is given as log-probabilities too
/// let kl2 = kl_div(&Var::constant(q.log()), &Var::constant(p.log()), KlReduction::BatchMean, true);
/// assert!((kl2.item() - expected).abs() < 1e-12);
/// # Ok::<(), sinew_tensor::TensorError>(())
/// ```
#[track_caller]
pub fn kl_div(input: &Var, target: &Var, reduction: KlReduction, log_target: bool) -> Var {
    same_shape("kl_div", input, target);
    let per = if log_target {
        &target.exp() * &(target - input)
    } else {
        // y·log y is 0 where y == 0
        let positive = target.value().gt_scalar(0.0);
        let safe = Var::where_(&positive, target, &target.ones_like());
        &(target * &safe.log()) - &(target * input)
    };
    match reduction {
        KlReduction::Mean => per.mean_all(),
        KlReduction::BatchMean => per.sum_all() / input.dims().first().copied().unwrap_or(1).max(1) as f64,
        KlReduction::Sum => per.sum_all(),
        KlReduction::None => per,
    }
}

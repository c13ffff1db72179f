//! The layers as functions of their inputs and weights (`torch.nn.functional`): what a
//! layer's `forward` calls, for code that holds its own weights (`F.linear(x, w, b)`) or
//! wants dropout without building a module around a generator.
//!
//! Activations, softmax and pooling are methods on [`Var`] (`x.relu()`,
//! `x.max_pool2d(..)`); the losses are in [`crate::loss`].

use sinew_autograd::Var;
use sinew_tensor::{Conv2dOptions, DType, Generator, Tensor};

use crate::module::Buffer;

/// `y = x·Wᵀ + b` (`F.linear`): `x` `(.., in)`, `weight` `(out, in)`, `bias` `(out)`.
///
/// # Panics
/// If the shapes do not fit (the message names them).
///
/// ```
/// use sinew_nn::functional::linear;
/// use sinew_autograd::Var;
/// use sinew_tensor::Tensor;
/// let x = Var::constant(Tensor::from([[1.0f32, 2.0]]));
/// let w = Var::leaf(Tensor::from([[1.0f32, 0.0], [1.0, 1.0], [0.0, -1.0]])); // (3, 2)
/// let b = Var::leaf(Tensor::from([0.5f32, 0.0, 1.0]));
/// let y = linear(&x, &w, Some(&b));
/// assert_eq!(y.value().to_vec::<f32>(), [1.5, 3.0, -1.0]);
/// let grads = y.sum_all().backward();
/// assert_eq!(grads.get(&w).unwrap().to_vec::<f32>(), [1.0, 2.0, 1.0, 2.0, 1.0, 2.0]);
/// ```
#[track_caller]
pub fn linear(x: &Var, weight: &Var, bias: Option<&Var>) -> Var {
    let ok = weight.ndim() == 2
        && x.ndim() >= 1
        && x.dims()[x.ndim() - 1] == weight.dims()[1]
        && bias.is_none_or(|b| b.dims() == [weight.dims()[0]]);
    assert!(
        ok,
        "linear: expected input [.., in], weight [out, in] and bias [out], got {:?}, {:?} and {:?}",
        x.dims(),
        weight.dims(),
        bias.map(|b| b.dims().to_vec())
    );
    let y = x.matmul(&weight.t());
    match bias {
        Some(b) => &y + b,
        None => y,
    }
}

/// Normalises over the trailing `normalized_shape` dimensions, then scales and shifts
/// (`F.layer_norm`): `(x - mean) / √(var + eps)·weight + bias`, biased variance. One
/// fused op ([`Var::layer_norm`]), whose backward is one pass over the rows.
///
/// # Panics
/// If `x` does not end in `normalized_shape`, or `weight`/`bias` are not shaped like it.
///
/// ```
/// use sinew_nn::functional::layer_norm;
/// use sinew_autograd::Var;
/// use sinew_tensor::Tensor;
/// let x = Var::constant(Tensor::from([[1.0f64, 3.0], [10.0, 30.0]]));
/// let y = layer_norm(&x, &[2], None, None, 0.0);
/// assert!(y.value().allclose(&Tensor::from([[-1.0f64, 1.0], [-1.0, 1.0]]), 1e-12, 1e-12));
/// ```
#[track_caller]
pub fn layer_norm(
    x: &Var,
    normalized_shape: &[usize],
    weight: Option<&Var>,
    bias: Option<&Var>,
    eps: f64,
) -> Var {
    let k = normalized_shape.len();
    let fits = |p: Option<&Var>| p.is_none_or(|p| p.dims() == normalized_shape);
    assert!(
        x.ndim() >= k && x.dims()[x.ndim() - k..] == *normalized_shape && fits(weight) && fits(bias),
        "layer_norm: expected input ending in {normalized_shape:?} and weight and bias of that shape, \
         got {:?}, {:?} and {:?}",
        x.dims(),
        weight.map(|w| w.dims().to_vec()),
        bias.map(|b| b.dims().to_vec())
    );
    x.layer_norm(normalized_shape, weight, bias, eps)
}

/// How [`batch_norm`] normalises: `F.batch_norm`'s `training`, `momentum` and `eps`, with
/// its defaults (`false`, 0.1, 1e-5).
///
/// ```
/// use sinew_nn::functional::BatchNormOptions;
/// let o = BatchNormOptions { training: true, ..BatchNormOptions::default() };
/// assert_eq!((o.training, o.momentum, o.eps), (true, 0.1, 1e-5));
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct BatchNormOptions {
    /// Normalise with the batch's statistics (and update the running ones), rather than
    /// with the running statistics.
    pub training: bool,
    /// Weight of the new batch in the running estimates.
    pub momentum: f64,
    /// Added to the variance.
    pub eps: f64,
}

impl Default for BatchNormOptions {
    fn default() -> Self {
        BatchNormOptions { training: false, momentum: 0.1, eps: 1e-5 }
    }
}

/// Batch normalisation over dimension 1 of `x` `(N, C, ..)` (`F.batch_norm`).
///
/// In training (or without running statistics) each channel is normalised with the
/// batch's mean and biased variance, and the running `(mean, var)` buffers, if given, move
/// `momentum` of the way to the batch's mean and unbiased variance. In evaluation the
/// running statistics normalise. `weight` and `bias` `(C)` scale and shift.
///
/// # Panics
/// If `x` has fewer than two dimensions, or the statistics, weight or bias are not `(C)`.
///
/// ```
/// use sinew_nn::Buffer;
/// use sinew_nn::functional::{BatchNormOptions, batch_norm};
/// use sinew_autograd::Var;
/// use sinew_tensor::Tensor;
/// let x = Var::constant(Tensor::from([[1.0f64], [3.0]])); // (N = 2, C = 1)
/// let (mean, var) = (Buffer::new(Tensor::zeros_dtype(&[1], sinew_tensor::DType::F64)), Buffer::new(Tensor::from([1.0f64])));
/// let train = BatchNormOptions { training: true, eps: 0.0, ..BatchNormOptions::default() };
/// let y = batch_norm(&x, Some((&mean, &var)), None, None, &train);
/// assert_eq!(y.value().to_vec::<f64>(), [-1.0, 1.0]);
/// // running statistics: 0.9·0 + 0.1·2 and 0.9·1 + 0.1·2 (unbiased variance of [1, 3])
/// assert!((mean.value().item() - 0.2).abs() < 1e-12 && (var.value().item() - 1.1).abs() < 1e-12);
/// ```
#[track_caller]
pub fn batch_norm(
    x: &Var,
    running: Option<(&Buffer, &Buffer)>,
    weight: Option<&Var>,
    bias: Option<&Var>,
    options: &BatchNormOptions,
) -> Var {
    assert!(x.ndim() >= 2, "batch_norm: expected input of shape [N, C, ..], got {:?}", x.dims());
    let c = x.dims()[1];
    let channel_sized = |what: &str, dims: Option<Vec<usize>>| {
        if let Some(d) = dims {
            assert!(
                d == [c],
                "batch_norm: expected {what} of shape [{c}] for input {:?}, got {d:?}",
                x.dims()
            );
        }
    };
    if let Some((m, v)) = running {
        channel_sized("running_mean", Some(m.value().dims().to_vec()));
        channel_sized("running_var", Some(v.value().dims().to_vec()));
    }
    channel_sized("weight", weight.map(|w| w.dims().to_vec()));
    channel_sized("bias", bias.map(|b| b.dims().to_vec()));

    let mut bshape = vec![1usize; x.ndim()];
    bshape[1] = c;
    let (mean, var) = match running {
        Some((rm, rv)) if !options.training => (
            Var::constant(rm.value().to_dtype(x.dtype()).reshape(&bshape)),
            Var::constant(rv.value().to_dtype(x.dtype()).reshape(&bshape)),
        ),
        _ => {
            // the batch's statistics: one fused op
            let (y, mean, var) = Var::batch_norm_training(x, weight, bias, options.eps);
            if let Some((rm, rv)) = running.filter(|_| options.training) {
                update_running(rm, rv, &mean, &var, (x.numel() / c.max(1)) as f64, options.momentum);
            }
            return y;
        }
    };
    let mut y = &(x - &mean) * &var.add_scalar(options.eps).rsqrt();
    if let Some(w) = weight {
        y = &y * &w.reshape(&bshape);
    }
    if let Some(b) = bias {
        y = &y + &b.reshape(&bshape);
    }
    y
}

/// Moves the running statistics `momentum` of the way to the batch's mean and unbiased
/// variance (`(C)` tensors over `n` values per channel).
fn update_running(rm: &Buffer, rv: &Buffer, mean: &Tensor, var: &Tensor, n: f64, momentum: f64) {
    let dt = rm.value().dtype();
    let unbiased = var.mul_scalar(n / (n - 1.0).max(1.0)).to_dtype(dt);
    rm.set(&(&rm.value() * (1.0 - momentum)) + &(&mean.to_dtype(dt) * momentum));
    rv.set(&(&rv.value() * (1.0 - momentum)) + &(&unbiased * momentum));
}

/// The rows of `weight` `(num, dim)` at `ids` (`i64`, any shape): shape `ids.shape + [dim]`
/// (`F.embedding`). Gradients flow to the rows used.
///
/// # Panics
/// If `ids` is not `i64`, `weight` is not 2-D, or an id is out of range (the message names
/// it).
///
/// ```
/// use sinew_nn::functional::embedding;
/// use sinew_autograd::Var;
/// use sinew_tensor::Tensor;
/// let table = Var::leaf(Tensor::from([[0.0f32, 0.0], [1.0, 1.0], [2.0, 2.0]]));
/// let ids = Tensor::from([[2i64, 0], [1, 1]]);
/// let e = embedding(&ids, &table);
/// assert_eq!(e.dims(), &[2, 2, 2]);
/// assert_eq!(e.value().to_vec::<f32>(), [2.0, 2.0, 0.0, 0.0, 1.0, 1.0, 1.0, 1.0]);
/// // row 1 was used twice
/// let g = e.sum_all().backward().get(&table).unwrap().to_vec::<f32>();
/// assert_eq!(g, [1.0, 1.0, 2.0, 2.0, 1.0, 1.0]);
/// ```
#[track_caller]
pub fn embedding(ids: &Tensor, weight: &Var) -> Var {
    embedding_with_padding(ids, weight, None)
}

/// [`embedding`] with PyTorch's `padding_idx`: the row `padding_idx` is looked up as any
/// other, but gets no gradient (`F.embedding(ids, weight, padding_idx)`), so training
/// leaves the padding vector as it is.
///
/// # Panics
/// As [`embedding`], and if `padding_idx` is out of range.
///
/// ```
/// use sinew_nn::functional::embedding_with_padding;
/// use sinew_autograd::Var;
/// use sinew_tensor::Tensor;
/// let table = Var::leaf(Tensor::from([[5.0f32, 5.0], [1.0, 1.0]]));
/// let ids = Tensor::from([0i64, 1, 0]);
/// let e = embedding_with_padding(&ids, &table, Some(0));
/// assert_eq!(e.value().to_vec::<f32>(), [5.0, 5.0, 1.0, 1.0, 5.0, 5.0]);
/// let g = e.sum_all().backward().get(&table).unwrap().to_vec::<f32>();
/// assert_eq!(g, [0.0, 0.0, 1.0, 1.0]); // the padding row learns nothing
/// ```
#[track_caller]
pub fn embedding_with_padding(ids: &Tensor, weight: &Var, padding_idx: Option<usize>) -> Var {
    assert!(weight.ndim() == 2, "embedding: expected a weight of shape [num, dim], got {:?}", weight.dims());
    let (num, dim) = (weight.dims()[0], weight.dims()[1]);
    assert_eq!(ids.dtype(), DType::I64, "Embedding({num}, {dim}): ids must be int64, got {}", ids.dtype());
    let flat = ids.reshape(&[ids.numel()]);
    let list = flat.to_vec::<i64>();
    if let Some(bad) = list.iter().find(|&&i| i < 0 || i as usize >= num) {
        panic!("Embedding({num}, {dim}): id {bad} is out of range 0..{num}");
    }
    let mut shape = ids.dims().to_vec();
    shape.push(dim);
    let pad = padding_idx.map(|p| {
        assert!(p < num, "Embedding({num}, {dim}): padding_idx {p} is out of range 0..{num}");
        p as i64
    });
    let rows = match pad.filter(|p| list.contains(p)) {
        None => weight.index_select(0, &flat),
        Some(p) => {
            // the upstream gradient of the padding positions is dropped before it is scattered
            let keep: Vec<f64> = list.iter().map(|&i| (i != p) as u8 as f64).collect();
            let keep =
                Tensor::from_vec(keep, &[list.len(), 1]).expect("one flag per id").to_dtype(weight.dtype());
            let idx = flat.clone();
            Var::from_op("embedding", weight.value().index_select(0, &flat), &[weight], move |ctx| {
                let zeros = Var::constant(Tensor::zeros_dtype(ctx.inputs[0].dims(), ctx.grad.dtype()));
                vec![Some(zeros.index_add(0, &idx, &ctx.grad.mul(&Var::constant(keep.clone()))))]
            })
        }
    };
    rows.reshape(&shape)
}

/// 2-D convolution (`F.conv2d`): `x` `(N, C, H, W)`, `weight` `(out, C/groups, kH, kW)`,
/// `bias` `(out)`. The same op as [`Var::conv2d`].
///
/// ```
/// use sinew_nn::functional::conv2d;
/// use sinew_autograd::Var;
/// use sinew_tensor::{Conv2dOptions, Tensor};
/// let x = Var::constant(Tensor::ones(&[1, 1, 4, 4]));
/// let w = Var::leaf(Tensor::ones(&[1, 1, 3, 3]));
/// let y = conv2d(&x, &w, None, Conv2dOptions::default().padding(1));
/// assert_eq!(y.dims(), &[1, 1, 4, 4]);
/// assert_eq!(y.value().to_vec::<f32>()[..4], [4.0, 6.0, 6.0, 4.0]); // corner, edges, corner
/// ```
#[track_caller]
pub fn conv2d(x: &Var, weight: &Var, bias: Option<&Var>, options: Conv2dOptions) -> Var {
    x.conv2d(weight, bias, options)
}

/// Zeroes each element with probability `p` and scales the rest by `1/(1-p)`, masks drawn
/// from `g` (`F.dropout(x, p, training=True)`; in evaluation, simply do not call it).
///
/// # Panics
/// If `p` is outside `[0, 1)`.
///
/// ```
/// use sinew_nn::functional::dropout;
/// use sinew_autograd::Var;
/// use sinew_tensor::{Generator, Tensor};
/// let x = Var::constant(Tensor::ones(&[1000]));
/// let y = dropout(&x, 0.5, &mut Generator::new(0));
/// let v = y.value().to_vec::<f32>();
/// assert!(v.iter().all(|&e| e == 0.0 || e == 2.0));
/// let kept = v.iter().filter(|&&e| e == 2.0).count();
/// assert!((kept as i64 - 500).abs() < 60);
/// ```
#[track_caller]
pub fn dropout(x: &Var, p: f64, g: &mut Generator) -> Var {
    assert!((0.0..1.0).contains(&p), "dropout: probability {p} must be in [0, 1)");
    if p == 0.0 {
        return x.clone();
    }
    let mask = Tensor::bernoulli_with(x.dims(), 1.0 - p, x.dtype(), g);
    x * &Var::constant(mask.mul_scalar(1.0 / (1.0 - p)))
}

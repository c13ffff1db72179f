//! Layers whose behaviour depends on training mode or on batch statistics:
//! [`Dropout`], [`BatchNorm1d`], [`BatchNorm2d`], and [`LayerNorm`].

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use sinew_autograd::{Param, Var, no_grad};
use sinew_tensor::{Generator, Tensor};

use crate::module::{Buffer, Forward, Module, Visitor};

/// Zeroes each element with probability `p` in training and scales the rest by
/// `1/(1-p)`; the identity in evaluation (`nn.Dropout`). Its masks come from its own
/// seeded generator, so a run is reproducible.
///
/// ```
/// use sinew_nn::{Dropout, Forward, Module};
/// use sinew_autograd::Var;
/// use sinew_tensor::Tensor;
/// let drop = Dropout::new(0.5, 42);
/// let x = Var::constant(Tensor::ones(&[1000]));
/// let kept = drop.forward(&x).value().gt_scalar(0.0).sum_all().item();
/// assert!((kept - 500.0).abs() < 60.0);
/// drop.eval();
/// assert_eq!(drop.forward(&x).value().sum_all().item(), 1000.0);
/// ```
#[derive(Debug)]
pub struct Dropout {
    p: f64,
    training: AtomicBool,
    rng: Mutex<Generator>,
}

impl Dropout {
    /// Dropout with probability `p`, masks drawn from a generator seeded with `seed`.
    ///
    /// # Panics
    /// If `p` is outside `[0, 1)`.
    #[track_caller]
    pub fn new(p: f64, seed: u64) -> Self {
        assert!((0.0..1.0).contains(&p), "Dropout: probability {p} must be in [0, 1)");
        Dropout { p, training: AtomicBool::new(true), rng: Mutex::new(Generator::new(seed)) }
    }

    /// The drop probability.
    pub fn p(&self) -> f64 {
        self.p
    }
}

impl Module for Dropout {
    fn visit(&self, v: &mut dyn Visitor) {
        v.generator("generator", &self.rng);
    }
    fn set_own_training(&self, training: bool) {
        self.training.store(training, Ordering::Relaxed);
    }
}

impl Forward for Dropout {
    fn forward(&self, x: &Var) -> Var {
        if !self.training.load(Ordering::Relaxed) || self.p == 0.0 {
            return x.clone();
        }
        let mask = {
            let mut g = self.rng.lock().unwrap_or_else(|e| e.into_inner());
            Tensor::bernoulli_with(x.dims(), 1.0 - self.p, x.dtype(), &mut g)
        };
        x * &Var::constant(mask.mul_scalar(1.0 / (1.0 - self.p)))
    }
}

/// Batch normalisation over the channel dimension 1 (`nn.BatchNorm1d` for `(N, C)` or
/// `(N, C, L)`, `nn.BatchNorm2d` for `(N, C, H, W)`): in training it normalises with the
/// batch's statistics and updates running estimates (`momentum` 0.1, unbiased variance);
/// in evaluation it uses the running estimates.
#[derive(Debug)]
pub struct BatchNorm {
    /// Scale `γ`, `(C)`, initialised to ones.
    pub weight: Param,
    /// Shift `β`, `(C)`, initialised to zeros.
    pub bias: Param,
    /// Running mean, `(C)`.
    pub running_mean: Buffer,
    /// Running (unbiased) variance, `(C)`.
    pub running_var: Buffer,
    /// Number of training batches seen (`i64` scalar).
    pub num_batches_tracked: Buffer,
    /// Added to the variance.
    pub eps: f64,
    /// Weight of the new batch in the running estimates.
    pub momentum: f64,
    spatial: bool,
    training: AtomicBool,
}

/// `nn.BatchNorm1d`.
pub type BatchNorm1d = BatchNorm;
/// `nn.BatchNorm2d`.
pub type BatchNorm2d = BatchNorm;

impl BatchNorm {
    /// Batch norm over `(N, C)` or `(N, C, L)` inputs (eps 1e-5, momentum 0.1).
    pub fn new_1d(channels: usize) -> Self {
        BatchNorm::build(channels, false)
    }

    /// Batch norm over `(N, C, H, W)` inputs (eps 1e-5, momentum 0.1).
    pub fn new_2d(channels: usize) -> Self {
        BatchNorm::build(channels, true)
    }

    fn build(c: usize, spatial: bool) -> Self {
        BatchNorm {
            weight: Param::new("weight", Tensor::ones(&[c])),
            bias: Param::new("bias", Tensor::zeros(&[c])),
            running_mean: Buffer::new(Tensor::zeros(&[c])),
            running_var: Buffer::new(Tensor::ones(&[c])),
            num_batches_tracked: Buffer::new(Tensor::scalar(0i64)),
            eps: 1e-5,
            momentum: 0.1,
            spatial,
            training: AtomicBool::new(true),
        }
    }

    /// Whether the layer is in training mode.
    pub fn is_training(&self) -> bool {
        self.training.load(Ordering::Relaxed)
    }
}

impl Module for BatchNorm {
    fn visit(&self, v: &mut dyn Visitor) {
        v.param("weight", &self.weight);
        v.param("bias", &self.bias);
        v.buffer("running_mean", &self.running_mean);
        v.buffer("running_var", &self.running_var);
        v.buffer("num_batches_tracked", &self.num_batches_tracked);
    }
    fn set_own_training(&self, training: bool) {
        self.training.store(training, Ordering::Relaxed);
    }
}

impl Forward for BatchNorm {
    #[track_caller]
    fn forward(&self, x: &Var) -> Var {
        let c = self.weight.value().dims()[0];
        let name = if self.spatial { "BatchNorm2d" } else { "BatchNorm1d" };
        let ok = if self.spatial { x.ndim() == 4 } else { x.ndim() == 2 || x.ndim() == 3 };
        assert!(
            ok && x.dims()[1] == c,
            "{name}({c}): expected input of shape {}, got {:?}",
            if self.spatial { format!("[N, {c}, H, W]") } else { format!("[N, {c}] or [N, {c}, L]") },
            x.dims()
        );
        // statistics over every dimension but the channel one
        let dims: Vec<isize> = (0..x.ndim() as isize).filter(|&d| d != 1).collect();
        let mut bshape = vec![1usize; x.ndim()];
        bshape[1] = c;
        let as_param = |p: &Param| p.var().reshape(&bshape);
        let (mean, var) = if self.is_training() {
            let mean = x.mean(&dims, true);
            let var = x.var(&dims, false, true);
            no_grad(|| {
                let n = (x.numel() / c) as f64;
                let m = self.momentum;
                let dt = self.running_mean.value().dtype();
                let batch_mean = mean.value().reshape(&[c]).to_dtype(dt);
                let unbiased = var.value().reshape(&[c]).mul_scalar(n / (n - 1.0).max(1.0)).to_dtype(dt);
                let rm = &(&self.running_mean.value() * (1.0 - m)) + &(&batch_mean * m);
                let rv = &(&self.running_var.value() * (1.0 - m)) + &(&unbiased * m);
                self.running_mean.set(rm);
                self.running_var.set(rv);
                let count = self.num_batches_tracked.value().add_scalar(1.0);
                self.num_batches_tracked.set(count);
            });
            (mean, var)
        } else {
            let rm = Var::constant(self.running_mean.value().to_dtype(x.dtype()).reshape(&bshape));
            let rv = Var::constant(self.running_var.value().to_dtype(x.dtype()).reshape(&bshape));
            (rm, rv)
        };
        let normalized = &(x - &mean) * &var.add_scalar(self.eps).rsqrt();
        &(&normalized * &as_param(&self.weight)) + &as_param(&self.bias)
    }
}

/// Layer normalisation over the last dimensions (`nn.LayerNorm`), with a learned
/// elementwise scale (ones) and shift (zeros).
#[derive(Clone, Debug)]
pub struct LayerNorm {
    /// Scale, shaped like the normalised dimensions.
    pub weight: Param,
    /// Shift, shaped like the normalised dimensions.
    pub bias: Param,
    /// Added to the variance (PyTorch: 1e-5).
    pub eps: f64,
}

impl LayerNorm {
    /// Normalises over trailing dimensions of shape `normalized_shape`.
    pub fn new(normalized_shape: &[usize]) -> Self {
        LayerNorm {
            weight: Param::new("weight", Tensor::ones(normalized_shape)),
            bias: Param::new("bias", Tensor::zeros(normalized_shape)),
            eps: 1e-5,
        }
    }
}

impl Module for LayerNorm {
    fn visit(&self, v: &mut dyn Visitor) {
        v.param("weight", &self.weight);
        v.param("bias", &self.bias);
    }
}

impl Forward for LayerNorm {
    #[track_caller]
    fn forward(&self, x: &Var) -> Var {
        let shape = self.weight.value().dims().to_vec();
        let k = shape.len();
        assert!(
            x.ndim() >= k && x.dims()[x.ndim() - k..] == shape[..],
            "LayerNorm({shape:?}): expected input ending in {shape:?}, got {:?}",
            x.dims()
        );
        let dims: Vec<isize> = (x.ndim() - k..x.ndim()).map(|d| d as isize).collect();
        let mean = x.mean(&dims, true);
        let var = x.var(&dims, false, true);
        let normalized = &(x - &mean) * &var.add_scalar(self.eps).rsqrt();
        &(&normalized * &self.weight.var()) + &self.bias.var()
    }
}

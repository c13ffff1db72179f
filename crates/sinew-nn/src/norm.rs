//! Layers whose behaviour depends on training mode or on batch statistics:
//! [`Dropout`], [`BatchNorm1d`], [`BatchNorm2d`], and [`LayerNorm`].

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use sinew_autograd::{Param, Var, no_grad};
use sinew_tensor::{Generator, Tensor};

use crate::functional::{self, BatchNormOptions};
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
    ///
    /// ```
    /// use sinew_nn::{Dropout, Forward, Module};
    /// use sinew_autograd::Var;
    /// use sinew_tensor::Tensor;
    /// // nn.Dropout(0.5): in training, zeros or survivors scaled by 1/(1 - p)
    /// let drop = Dropout::new(0.5, 0);
    /// let x = Var::constant(Tensor::ones(&[1000]));
    /// let y = drop.forward(&x).value().to_vec::<f32>();
    /// assert!(y.iter().all(|&v| v == 0.0 || v == 2.0));
    /// let kept = y.iter().filter(|&&v| v == 2.0).count();
    /// assert!((400..600).contains(&kept));
    /// // in evaluation mode it is the identity
    /// drop.eval();
    /// assert_eq!(drop.forward(&x).value().to_vec::<f32>(), vec![1.0; 1000]);
    /// ```
    #[track_caller]
    pub fn new(p: f64, seed: u64) -> Self {
        assert!((0.0..1.0).contains(&p), "Dropout: probability {p} must be in [0, 1)");
        Dropout { p, training: AtomicBool::new(true), rng: Mutex::new(Generator::new(seed)) }
    }

    /// The drop probability.
    pub fn p(&self) -> f64 {
        self.p
    }

    /// Whether the layer is in training mode (new layers are), where it drops.
    ///
    /// ```
    /// use sinew_nn::{Dropout, Module};
    /// let drop = Dropout::new(0.1, 0);
    /// assert!(drop.is_training());
    /// drop.eval();
    /// assert!(!drop.is_training());
    /// ```
    pub fn is_training(&self) -> bool {
        self.training.load(Ordering::Relaxed)
    }
}

impl Module for Dropout {
    fn visit(&self, v: &mut dyn Visitor) {
        v.generator("generator", &self.rng);
    }
    fn set_own_training(&self, training: bool) {
        self.training.store(training, Ordering::Relaxed);
    }
    fn extra_repr(&self) -> String {
        format!("p={}", self.p)
    }
}

impl Forward for Dropout {
    fn forward(&self, x: &Var) -> Var {
        if !self.training.load(Ordering::Relaxed) || self.p == 0.0 {
            return crate::hooks::observed(self, x.clone());
        }
        let mut g = self.rng.lock().unwrap_or_else(|e| e.into_inner());
        let y = functional::dropout(x, self.p, &mut g);
        crate::hooks::observed(self, y)
    }
}

/// Batch normalisation's parameters, running statistics and forward, shared by
/// [`BatchNorm1d`] and [`BatchNorm2d`] (which differ only in the input ranks they accept).
macro_rules! batch_norm {
    ($(#[$doc:meta])* $name:ident, $torch:literal, spatial = $spatial:literal, $shape:literal) => {
        $(#[$doc])*
        #[derive(Debug)]
        pub struct $name {
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
            /// Added to the variance (PyTorch: 1e-5).
            pub eps: f64,
            /// Weight of the new batch in the running estimates (PyTorch: 0.1).
            pub momentum: f64,
            training: AtomicBool,
        }

        impl $name {
            #[doc = concat!("`", $torch, "(channels)`: batch norm over ", $shape, " inputs (eps 1e-5, momentum 0.1).")]
            pub fn new(channels: usize) -> Self {
                $name {
                    weight: Param::new("weight", Tensor::ones(&[channels])),
                    bias: Param::new("bias", Tensor::zeros(&[channels])),
                    running_mean: Buffer::new(Tensor::zeros(&[channels])),
                    running_var: Buffer::new(Tensor::ones(&[channels])),
                    num_batches_tracked: Buffer::new(Tensor::scalar(0i64)),
                    eps: 1e-5,
                    momentum: 0.1,
                    training: AtomicBool::new(true),
                }
            }

            /// Whether the layer is in training mode.
            pub fn is_training(&self) -> bool {
                self.training.load(Ordering::Relaxed)
            }

            /// The number of channels `C`.
            pub fn num_features(&self) -> usize {
                self.weight.value().dims()[0]
            }
        }

        impl Module for $name {
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
            fn extra_repr(&self) -> String {
                format!("{}, eps={}, momentum={}", self.num_features(), self.eps, self.momentum)
            }
        }

        impl Forward for $name {
            #[track_caller]
            fn forward(&self, x: &Var) -> Var {
                let c = self.num_features();
                let ok = if $spatial { x.ndim() == 4 } else { x.ndim() == 2 || x.ndim() == 3 };
                assert!(
                    ok && x.dims()[1] == c,
                    "{}({c}): expected input of shape {}, got {:?}",
                    stringify!($name),
                    if $spatial { format!("[N, {c}, H, W]") } else { format!("[N, {c}] or [N, {c}, L]") },
                    x.dims()
                );
                let options = BatchNormOptions { training: self.is_training(), momentum: self.momentum, eps: self.eps };
                let (w, b) = (self.weight.var(), self.bias.var());
                let y = functional::batch_norm(
                    x,
                    Some((&self.running_mean, &self.running_var)),
                    Some(&w),
                    Some(&b),
                    &options,
                );
                if options.training {
                    no_grad(|| self.num_batches_tracked.set(self.num_batches_tracked.value().add_scalar(1.0)));
                }
                crate::hooks::observed(self, y)
            }
        }
    };
}

batch_norm! {
    /// Batch normalisation of `(N, C)` or `(N, C, L)` inputs over the channel dimension 1
    /// (`nn.BatchNorm1d`): in training it normalises with the batch's statistics and
    /// updates the running estimates (`momentum` 0.1, unbiased variance); in evaluation it
    /// uses the running estimates.
    ///
    /// ```
    /// use sinew_nn::{BatchNorm1d, Forward, Module};
    /// use sinew_autograd::Var;
    /// use sinew_tensor::Tensor;
    /// let bn = BatchNorm1d::new(2);
    /// let x = Var::constant(Tensor::from([[1.0f32, 10.0], [3.0, 30.0]]));
    /// // training: each channel normalised by its batch statistics
    /// assert!(bn.forward(&x).value().allclose(&Tensor::from([[-1.0f32, -1.0], [1.0, 1.0]]), 1e-3, 1e-3));
    /// // running mean moved 10% of the way to the batch mean [2, 20]
    /// assert!(bn.running_mean.value().allclose(&Tensor::from([0.2f32, 2.0]), 1e-6, 1e-6));
    /// assert_eq!(bn.num_batches_tracked.value().item(), 1.0);
    /// bn.eval(); // now the running statistics normalise
    /// assert_eq!(bn.forward(&x).dims(), &[2, 2]);
    /// ```
    BatchNorm1d, "nn.BatchNorm1d", spatial = false, "`(N, C)` or `(N, C, L)`"
}

batch_norm! {
    /// Batch normalisation of `(N, C, H, W)` inputs over the channel dimension 1
    /// (`nn.BatchNorm2d`), statistics over batch and space; see [`BatchNorm1d`]. A
    /// distinct type, so a 2-d layer cannot be built where a 1-d one was meant.
    ///
    /// ```
    /// use sinew_nn::{BatchNorm2d, Forward, Module};
    /// use sinew_autograd::Var;
    /// use sinew_tensor::{DType, Generator, Tensor};
    /// let bn = BatchNorm2d::new(3);
    /// let x = Var::constant(Tensor::randn_with(&[4, 3, 5, 5], DType::F32, &mut Generator::new(0)));
    /// let y = bn.forward(&x);
    /// // per channel: mean 0, (biased) variance 1 over N, H, W
    /// let mean = y.value().mean(&[0, 2, 3], false);
    /// assert!(mean.abs().max_all().item() < 1e-5);
    /// let names: Vec<String> = bn.state_dict().into_iter().map(|(n, _)| n).collect();
    /// assert_eq!(names, ["weight", "bias", "running_mean", "running_var", "num_batches_tracked"]);
    /// ```
    BatchNorm2d, "nn.BatchNorm2d", spatial = true, "`(N, C, H, W)`"
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
    ///
    /// ```
    /// use sinew_nn::{Forward, LayerNorm};
    /// use sinew_autograd::Var;
    /// use sinew_tensor::Tensor;
    /// // nn.LayerNorm(4): each row to mean 0, variance 1
    /// let ln = LayerNorm::new(&[4]);
    /// let x = Var::constant(Tensor::from_vec(vec![1.0f32, 2.0, 3.0, 4.0], &[1, 4])?);
    /// let y = ln.forward(&x).value().clone();
    /// let s = (1.25f32 + 1e-5).sqrt(); // the row's variance is 1.25
    /// let expected = Tensor::from_vec(vec![-1.5 / s, -0.5 / s, 0.5 / s, 1.5 / s], &[1, 4])?;
    /// assert!(y.allclose(&expected, 1e-5, 1e-6));
    /// # Ok::<(), sinew_tensor::TensorError>(())
    /// ```
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
    fn extra_repr(&self) -> String {
        let shape: Vec<String> = self.weight.value().dims().iter().map(|d| d.to_string()).collect();
        format!("({},), eps={}", shape.join(", "), self.eps)
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
        let y = functional::layer_norm(x, &shape, Some(&self.weight.var()), Some(&self.bias.var()), self.eps);
        crate::hooks::observed(self, y)
    }
}

//! [`SyncBatchNorm`]: batch normalisation whose training statistics are those of the
//! global batch, all-reduced over the ranks, with the matching backward.

use std::sync::atomic::{AtomicBool, Ordering};

use sinew_autograd::{Param, Var, no_grad};
use sinew_nn::functional::{self, BatchNormOptions};
use sinew_nn::{BatchNorm1d, BatchNorm2d, Buffer, Forward, Module, Visitor};
use sinew_tensor::Tensor;

use crate::world::World;

/// Batch normalisation over the channel dimension 1 of `(N, C, ...)` inputs whose
/// training-mode mean and variance are computed over the whole global batch, all the
/// ranks' samples together (`nn.SyncBatchNorm`). With it, data-parallel training of a
/// network with batch normalisation equals one-process training with the global batch;
/// with plain [`BatchNorm2d`] (PyTorch's default too) each rank normalises by its own
/// shard's statistics.
///
/// The statistics travel as one all-reduce of `[Σx, Σx², count]` per layer and forward,
/// and the backward pass all-reduces their gradients (the all-reduce is a differentiable
/// op, [`World::all_reduce_sum_var`]), so every rank's input gradient accounts for the
/// other ranks' samples. Running estimates, evaluation mode and state-dict names are
/// [`BatchNorm2d`]'s, so a checkpoint moves between the two, and
/// [`from_batch_norm_2d`](SyncBatchNorm::from_batch_norm_2d) converts a layer
/// (`convert_sync_batchnorm`). In training, every rank must run the layer the same number
/// of times.
#[derive(Debug)]
pub struct SyncBatchNorm {
    /// Scale `γ`, `(C)`.
    pub weight: Param,
    /// Shift `β`, `(C)`.
    pub bias: Param,
    /// Running mean, `(C)`.
    pub running_mean: Buffer,
    /// Running (unbiased) variance, `(C)`.
    pub running_var: Buffer,
    /// Number of training batches seen (`i64` scalar).
    pub num_batches_tracked: Buffer,
    /// Added to the variance (1e-5).
    pub eps: f64,
    /// Weight of the new batch in the running estimates (0.1).
    pub momentum: f64,
    training: AtomicBool,
    world: World,
}

macro_rules! from_batch_norm {
    ($fn:ident, $ty:ty) => {
        #[doc = concat!("Takes over a [`", stringify!($ty), "`]'s parameters, running statistics and settings.")]
        pub fn $fn(bn: $ty, world: &World) -> SyncBatchNorm {
            let training = bn.is_training();
            SyncBatchNorm {
                weight: bn.weight,
                bias: bn.bias,
                running_mean: bn.running_mean,
                running_var: bn.running_var,
                num_batches_tracked: bn.num_batches_tracked,
                eps: bn.eps,
                momentum: bn.momentum,
                training: AtomicBool::new(training),
                world: world.clone(),
            }
        }
    };
}

impl SyncBatchNorm {
    /// `nn.SyncBatchNorm(channels)` over `world` (eps 1e-5, momentum 0.1).
    pub fn new(channels: usize, world: &World) -> SyncBatchNorm {
        SyncBatchNorm::from_batch_norm_2d(BatchNorm2d::new(channels), world)
    }

    from_batch_norm!(from_batch_norm_2d, BatchNorm2d);
    from_batch_norm!(from_batch_norm_1d, BatchNorm1d);

    /// Whether the layer is in training mode.
    pub fn is_training(&self) -> bool {
        self.training.load(Ordering::Relaxed)
    }

    /// The number of channels `C`.
    pub fn num_features(&self) -> usize {
        self.weight.value().dims()[0]
    }
}

impl Module for SyncBatchNorm {
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
        format!(
            "{}, eps={}, momentum={}, ranks={}",
            self.num_features(),
            self.eps,
            self.momentum,
            self.world.size()
        )
    }
}

impl Forward for SyncBatchNorm {
    #[track_caller]
    fn forward(&self, x: &Var) -> Var {
        let c = self.num_features();
        assert!(
            x.ndim() >= 2 && x.dims()[1] == c,
            "SyncBatchNorm({c}): expected input of shape [N, {c}, ...], got {:?}",
            x.dims()
        );
        let (w, b) = (self.weight.var(), self.bias.var());
        if !self.is_training() {
            let options = BatchNormOptions { training: false, momentum: self.momentum, eps: self.eps };
            let running = Some((&self.running_mean, &self.running_var));
            return functional::batch_norm(x, running, Some(&w), Some(&b), &options);
        }
        // local Σx, Σx² per channel and the sample count, summed over the ranks at once
        let others: Vec<isize> = (0..x.ndim() as isize).filter(|&d| d != 1).collect();
        let local_count = (x.numel() / c) as f64;
        let count = Var::constant(Tensor::full_dtype(&[1], local_count, x.dtype()));
        let stats = Var::cat(&[&x.sum(&others, false), &x.square().sum(&others, false), &count], 0);
        let global = self.world.all_reduce_sum_var(&stats);
        let n = global.value().narrow(0, 2 * c, 1).item();
        assert!(n > 0.0, "SyncBatchNorm: the global batch is empty");
        let mean = global.narrow(0, 0, c).div_scalar(n);
        let var = &global.narrow(0, c, c).div_scalar(n) - &mean.square(); // biased
        let mut shape = vec![1; x.ndim()];
        shape[1] = c;
        let inv_std = var.add_scalar(self.eps).rsqrt();
        let y = &(&(x - &mean.reshape(&shape)) * &(&inv_std * &w).reshape(&shape)) + &b.reshape(&shape);
        no_grad(|| {
            let m = self.momentum;
            let unbiased = if n > 1.0 { var.value() * (n / (n - 1.0)) } else { var.value().clone() };
            let update = |buffer: &Buffer, batch: &Tensor| {
                let old = buffer.value();
                buffer.set(&(&old * (1.0 - m)) + &(batch.to_dtype(old.dtype()) * m));
            };
            update(&self.running_mean, mean.value());
            update(&self.running_var, &unbiased);
            self.num_batches_tracked.set(self.num_batches_tracked.value().add_scalar(1.0));
        });
        y
    }
}

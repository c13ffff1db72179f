//! [`SyncBatchNorm`]: batch normalisation whose training statistics are those of the
//! global batch, all-reduced over the ranks, with the matching backward.

use sinew_autograd::{Var, no_grad};
use sinew_nn::functional::{self, BatchNormOptions};
use sinew_nn::{BatchNorm2d, Buffer, Forward, Module, Visitor, hooks};
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
/// (`convert_sync_batchnorm`) and [`into_batch_norm_2d`](SyncBatchNorm::into_batch_norm_2d)
/// back. In training, every rank must run the layer the same number
/// of times.
#[derive(Debug)]
pub struct SyncBatchNorm {
    /// The parameters, running estimates and settings, a `BatchNorm2d`'s.
    bn: BatchNorm2d,
    world: World,
}

impl SyncBatchNorm {
    /// `nn.SyncBatchNorm(channels)` over `world` (eps 1e-5, momentum 0.1).
    pub fn new(channels: usize, world: &World) -> SyncBatchNorm {
        SyncBatchNorm::from_batch_norm_2d(BatchNorm2d::new(channels), world)
    }

    /// Takes over a [`BatchNorm2d`]: its parameters, running estimates, `eps`, `momentum`
    /// and mode (`nn.SyncBatchNorm.convert_sync_batchnorm`).
    pub fn from_batch_norm_2d(bn: BatchNorm2d, world: &World) -> SyncBatchNorm {
        SyncBatchNorm { bn, world: world.clone() }
    }

    /// The parameters (`weight`, `bias`), running estimates and settings.
    pub fn batch_norm(&self) -> &BatchNorm2d {
        &self.bn
    }

    /// Back to a plain [`BatchNorm2d`] (for one process, or per-rank statistics).
    pub fn into_batch_norm_2d(self) -> BatchNorm2d {
        self.bn
    }

    /// Whether the layer is in training mode.
    pub fn is_training(&self) -> bool {
        self.bn.is_training()
    }

    /// The number of channels `C`.
    pub fn num_features(&self) -> usize {
        self.bn.num_features()
    }
}

impl Module for SyncBatchNorm {
    fn visit(&self, v: &mut dyn Visitor) {
        self.bn.visit(v);
    }
    fn set_own_training(&self, training: bool) {
        self.bn.set_own_training(training);
    }
    fn extra_repr(&self) -> String {
        format!("{}, ranks={}", self.bn.extra_repr(), self.world.size())
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
        let bn = &self.bn;
        let (w, b) = (bn.weight.var(), bn.bias.var());
        if !self.is_training() {
            let options = BatchNormOptions { training: false, momentum: bn.momentum, eps: bn.eps };
            let running = Some((&bn.running_mean, &bn.running_var));
            return hooks::observed(self, functional::batch_norm(x, running, Some(&w), Some(&b), &options));
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
        let inv_std = var.add_scalar(bn.eps).rsqrt();
        let y = &(&(x - &mean.reshape(&shape)) * &(&inv_std * &w).reshape(&shape)) + &b.reshape(&shape);
        no_grad(|| {
            let m = bn.momentum;
            let unbiased = if n > 1.0 { var.value() * (n / (n - 1.0)) } else { var.value().clone() };
            let update = |buffer: &Buffer, batch: &Tensor| {
                let old = buffer.value();
                buffer.set(&(&old * (1.0 - m)) + &(batch.to_dtype(old.dtype()) * m));
            };
            update(&bn.running_mean, mean.value());
            update(&bn.running_var, &unbiased);
            bn.num_batches_tracked.set(bn.num_batches_tracked.value().add_scalar(1.0));
        });
        hooks::observed(self, y)
    }
}

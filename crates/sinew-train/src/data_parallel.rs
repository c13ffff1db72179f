//! [`DataParallel`]: what [`Trainer::fit`](crate::Trainer::fit) needs to run on every rank
//! of a data-parallel job, and the exact combination of the ranks' losses and metrics.

use sinew_autograd::{Gradients, Var};

use crate::metrics::Metric;

/// A data-parallel job as the trainer sees it: this process's rank among
/// `world_size`, a backward pass whose gradients are averaged over the ranks, and a sum
/// over the ranks. `sinew-distributed`'s `DistributedDataParallel` implements it over
/// MPI; with [`Trainer::data_parallel`](crate::Trainer::data_parallel), `fit` then runs
/// on every rank:
///
/// - each rank trains on its shard of the training data (PyTorch's `DistributedSampler`
///   rules: one shared shuffle per epoch, padded to equal shards), `batch_size` samples a
///   batch per rank, so the global batch is `batch_size × world_size`;
/// - the gradients of every step are the ranks' average ([`backward`](DataParallel::backward));
/// - the logged loss and metrics, training and validation, are over all the ranks'
///   samples, summed as exact counts ([`Metric::accumulators`]), not averaged averages;
///   each rank validates a disjoint part of the validation data;
/// - progress is shown, files are written ([`Callback::on_checkpoint`](crate::Callback::on_checkpoint),
///   [`CsvLogger`](crate::CsvLogger)) and logs are printed on rank 0 only; every other
///   callback runs on every rank with the same logs, and a stop asked for on any rank
///   (after a batch or an epoch) stops them all, so that no rank waits for the others in
///   a step they will not take.
///
/// A training [`DataLoader`](sinew_data::DataLoader) given to `fit_loader` is used as it
/// is: give it a [`DistributedSampler`](sinew_data::DistributedSampler).
pub trait DataParallel {
    /// This process's rank, `0..world_size`.
    fn rank(&self) -> usize;
    /// The number of ranks.
    fn world_size(&self) -> usize;
    /// The backward pass of `loss`, with the parameters' gradients averaged over the
    /// ranks.
    fn backward(&self, loss: &Var) -> Gradients;
    /// Sums `values` element-wise over the ranks, in place.
    fn all_reduce_sum(&self, values: &mut [f64]);
}

/// Sums, over the ranks, a loss summed over `seen` samples and every metric's
/// accumulators, and sets the metrics to the sums; returns the global loss sum and count.
///
/// # Panics
/// If a metric has no accumulators.
pub(crate) fn combine(
    dp: &dyn DataParallel,
    loss_sum: f64,
    seen: usize,
    metrics: &mut [Box<dyn Metric + '_>],
) -> (f64, usize) {
    let mut values = vec![loss_sum, seen as f64];
    let mut lengths = Vec::with_capacity(metrics.len());
    for m in metrics.iter() {
        let acc = m.accumulators().unwrap_or_else(|| {
            panic!(
                "Trainer: metric `{}` has no accumulators, so its value over all the ranks cannot be \
                 computed; implement Metric::accumulators for it",
                m.name()
            )
        });
        lengths.push(acc.len());
        values.extend(acc);
    }
    dp.all_reduce_sum(&mut values);
    let mut at = 2;
    for (m, len) in metrics.iter_mut().zip(lengths) {
        m.set_accumulators(&values[at..at + len]);
        at += len;
    }
    (values[0], values[1] as usize)
}

/// Whether `flag` is set on any rank (every rank gets the same answer).
pub(crate) fn any_rank(dp: &dyn DataParallel, flag: bool) -> bool {
    let mut v = [f64::from(u8::from(flag))];
    dp.all_reduce_sum(&mut v);
    v[0] > 0.0
}

//! [`Sampler`]: which samples an epoch visits, in which order; [`DistributedSampler`]: one
//! rank's shard of a data set, as `torch.utils.data.distributed.DistributedSampler` cuts it.

use sinew_tensor::{Generator, GeneratorState};

/// Chooses the indices an epoch of a [`DataLoader`](crate::DataLoader) visits, in order
/// (`torch.utils.data.Sampler`). Given to a loader with
/// [`DataLoader::sampler`](crate::DataLoader::sampler), it replaces the loader's own
/// `0..len` order and shuffle.
///
/// An implementation must be a pure function of `(dataset_len, epoch)`: the loader asks
/// again for every epoch, from any thread, and background workers rely on getting the same
/// answer.
///
/// ```
/// use sinew_data::{DataLoader, Sampler, datasets};
///
/// /// Every other sample, backwards.
/// struct EveryOtherReversed;
/// impl Sampler for EveryOtherReversed {
///     fn indices(&self, dataset_len: usize, _epoch: u64) -> Vec<usize> {
///         (0..dataset_len).rev().step_by(2).collect()
///     }
/// }
/// let loader = DataLoader::new(datasets::iris(), 10).sampler(EveryOtherReversed);
/// assert_eq!(loader.len(), 8); // 75 samples
/// assert_eq!(loader.epoch_order(0)[..3], [149, 147, 145]);
/// ```
pub trait Sampler: Send + Sync {
    /// The indices epoch `epoch` visits, in order (each below `dataset_len`; repeats are
    /// allowed).
    fn indices(&self, dataset_len: usize, epoch: u64) -> Vec<usize>;

    /// How many indices [`indices`](Sampler::indices) returns for a data set of
    /// `dataset_len` samples (override when it can be known without building the order).
    fn num_samples(&self, dataset_len: usize) -> usize {
        self.indices(dataset_len, 0).len()
    }
}

/// The permutation of `0..n` drawn from ChaCha stream `epoch` of `seed`: the order a
/// shuffling [`DataLoader`](crate::DataLoader) uses, shared with [`DistributedSampler`] so
/// that a one-process run and a distributed one shuffle alike.
pub(crate) fn seeded_permutation(n: usize, seed: u64, epoch: u64) -> Vec<usize> {
    let mut order: Vec<usize> = (0..n).collect();
    let base = Generator::new(seed).state();
    let mut g = Generator::from_state(GeneratorState { stream: epoch, word_pos: 0, ..base });
    g.shuffle(&mut order);
    order
}

/// One rank's disjoint shard of a data set, for data-parallel training on `num_replicas`
/// processes (`torch.utils.data.distributed.DistributedSampler`, with its rules):
///
/// - **Order.** With [`shuffle`](DistributedSampler::shuffle) (the default), every rank
///   draws the same permutation from the seed and the epoch, so the shards stay disjoint
///   and change every epoch; the loader's epoch counter (or
///   [`DataLoader::set_epoch`](crate::DataLoader::set_epoch)) is PyTorch's
///   `sampler.set_epoch`.
/// - **Uneven sizes.** The order is padded by repeating its first indices up to the next
///   multiple of `num_replicas`, so every rank gets `ceil(n / num_replicas)` samples; with
///   [`drop_last`](DistributedSampler::drop_last) it is truncated instead, to
///   `floor(n / num_replicas)` each.
/// - **Shard.** Rank `r` takes positions `r, r + num_replicas, r + 2·num_replicas, …`.
///
/// Hence the `k`-th batches of size `B / num_replicas` of all the ranks together hold
/// exactly the samples of the `k`-th batch of size `B` of a one-process loader over the
/// same (padded) order — which is why data-parallel training with this sampler equals
/// one-process training with the global batch.
///
/// ```
/// use sinew_data::{DataLoader, DistributedSampler, Sampler, datasets};
///
/// let (n, replicas) = (10, 3);
/// let shards: Vec<Vec<usize>> = (0..replicas)
///     .map(|rank| DistributedSampler::new(replicas, rank).shuffle(false).indices(n, 0))
///     .collect();
/// assert_eq!(shards, [vec![0, 3, 6, 9], vec![1, 4, 7, 0], vec![2, 5, 8, 1]]); // padded to 12
///
/// let dropped = DistributedSampler::new(replicas, 2).shuffle(false).drop_last(true);
/// assert_eq!(dropped.indices(n, 0), [2, 5, 8]); // truncated to 9
///
/// // in a loader: this rank's batches, reshuffled each epoch
/// let loader = DataLoader::new(datasets::iris(), 25).sampler(DistributedSampler::new(2, 0).seed(7));
/// assert_eq!(loader.len(), 3); // 75 samples on each of 2 ranks
/// assert_ne!(loader.epoch_order(0), loader.epoch_order(1));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DistributedSampler {
    num_replicas: usize,
    rank: usize,
    shuffle: bool,
    seed: u64,
    drop_last: bool,
}

impl DistributedSampler {
    /// The shard of rank `rank` out of `num_replicas`, shuffled with seed 0, padded.
    ///
    /// # Panics
    /// If `num_replicas` is 0 or `rank >= num_replicas`.
    #[track_caller]
    pub fn new(num_replicas: usize, rank: usize) -> DistributedSampler {
        assert!(num_replicas > 0, "DistributedSampler: num_replicas must be positive");
        assert!(
            rank < num_replicas,
            "DistributedSampler: rank {rank} is out of range for {num_replicas} replicas"
        );
        DistributedSampler { num_replicas, rank, shuffle: true, seed: 0, drop_last: false }
    }

    /// Whether to shuffle each epoch (default `true`, as PyTorch).
    pub fn shuffle(mut self, shuffle: bool) -> DistributedSampler {
        self.shuffle = shuffle;
        self
    }

    /// The shuffling seed (default 0); it must be the same on every rank.
    pub fn seed(mut self, seed: u64) -> DistributedSampler {
        self.seed = seed;
        self
    }

    /// Truncate the order to a multiple of `num_replicas` instead of padding it (default
    /// `false`).
    pub fn drop_last(mut self, drop_last: bool) -> DistributedSampler {
        self.drop_last = drop_last;
        self
    }

    /// The number of ranks.
    pub fn num_replicas(&self) -> usize {
        self.num_replicas
    }

    /// This rank.
    pub fn rank(&self) -> usize {
        self.rank
    }

    /// This rank's shard of `order`, an order of the whole data set that every rank
    /// shares: `order` padded by repeating it from its start (or truncated, with
    /// `drop_last`) to a multiple of `num_replicas`, then every `num_replicas`-th entry
    /// from position `rank`. [`indices`](Sampler::indices) is this applied to the
    /// sampler's own order; a training loop with an order of its own uses it directly.
    ///
    /// ```
    /// use sinew_data::DistributedSampler;
    /// let order = vec![4, 2, 0, 1, 3];
    /// assert_eq!(DistributedSampler::new(2, 1).shard(order.clone()), [2, 1, 4]); // padded with 4
    /// assert_eq!(DistributedSampler::new(2, 1).drop_last(true).shard(order), [2, 1]);
    /// ```
    pub fn shard(&self, mut order: Vec<usize>) -> Vec<usize> {
        let total = self.num_samples(order.len()) * self.num_replicas;
        if order.is_empty() {
            return order;
        }
        // pad by cycling through the order from its start (PyTorch repeats the whole list
        // when the padding is longer than it), or truncate
        let mut i = 0;
        while order.len() < total {
            order.push(order[i]);
            i += 1;
        }
        order.truncate(total);
        order.into_iter().skip(self.rank).step_by(self.num_replicas).collect()
    }
}

impl Sampler for DistributedSampler {
    fn indices(&self, dataset_len: usize, epoch: u64) -> Vec<usize> {
        let order = if self.shuffle {
            seeded_permutation(dataset_len, self.seed, epoch)
        } else {
            (0..dataset_len).collect()
        };
        self.shard(order)
    }

    fn num_samples(&self, dataset_len: usize) -> usize {
        if self.drop_last { dataset_len / self.num_replicas } else { dataset_len.div_ceil(self.num_replicas) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn matches_pytorch_on_uneven_sizes() {
        // torch.utils.data.distributed.DistributedSampler(range(n), N, r, shuffle=False)
        let unshuffled = |n, replicas, rank, drop_last| {
            DistributedSampler::new(replicas, rank).shuffle(false).drop_last(drop_last).indices(n, 0)
        };
        assert_eq!(unshuffled(7, 2, 0, false), [0, 2, 4, 6]);
        assert_eq!(unshuffled(7, 2, 1, false), [1, 3, 5, 0]);
        assert_eq!(unshuffled(7, 2, 1, true), [1, 3, 5]);
        // padding longer than the data set: the list is repeated
        assert_eq!(unshuffled(2, 5, 3, false), [1]);
        assert_eq!(unshuffled(2, 5, 4, false), [0]);
        assert_eq!(unshuffled(2, 5, 4, true), Vec::<usize>::new());
        assert_eq!(unshuffled(0, 3, 1, false), Vec::<usize>::new());
    }

    #[test]
    #[should_panic(expected = "rank 3 is out of range for 3 replicas")]
    fn rank_out_of_range_is_refused() {
        let _ = DistributedSampler::new(3, 3);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        /// The shards are disjoint where nothing is padded, cover the data set, have the
        /// promised length, and interleave back into one shared (shuffled) order.
        #[test]
        fn shards_partition_the_shared_order(
            n in 0usize..60, replicas in 1usize..6, seed in 0u64..4, epoch in 0u64..3, drop_last: bool,
        ) {
            let shards: Vec<Vec<usize>> = (0..replicas)
                .map(|r| DistributedSampler::new(replicas, r).seed(seed).drop_last(drop_last).indices(n, epoch))
                .collect();
            let per_rank = DistributedSampler::new(replicas, 0).drop_last(drop_last).num_samples(n);
            for s in &shards {
                prop_assert_eq!(s.len(), per_rank);
            }
            // interleave: position k·replicas + r is shard r's k-th index
            let merged: Vec<usize> = (0..per_rank).flat_map(|k| shards.iter().map(move |s| s[k])).collect();
            let shared = seeded_permutation(n, seed, epoch);
            let head = merged.len().min(n);
            prop_assert_eq!(&merged[..head], &shared[..head]);
            for (k, &i) in merged[head..].iter().enumerate() {
                prop_assert_eq!(i, shared[k % n.max(1)]);
            }
            if !drop_last {
                let mut seen = merged.clone();
                seen.sort_unstable();
                seen.dedup();
                prop_assert_eq!(seen, (0..n).collect::<Vec<_>>());
            }
        }
    }
}

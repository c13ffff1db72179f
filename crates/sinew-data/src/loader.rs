//! [`DataLoader`]: batches of a [`Dataset`] in a seeded, per-epoch order, optionally
//! prepared by background threads.

use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, sync_channel};
use std::sync::{Arc, OnceLock};
use std::thread::JoinHandle;

use sinew_tensor::with_global_generator;

use crate::dataset::{Dataset, Sample};
use crate::sampler::{Sampler, seeded_permutation};

/// A custom collate function: samples in, one batch out.
type CollateFn = dyn Fn(&[Sample]) -> Sample + Send + Sync;

/// Iterates over a [`Dataset`] in batches (`torch.utils.data.DataLoader`).
///
/// - **Order.** Without [`shuffle`](DataLoader::shuffle), samples come in index order. With
///   it, each epoch has its own permutation, a function of the seed and the epoch number
///   only: the same seed gives the same batches, run after run.
/// - **Epochs.** Each call to [`iter`](DataLoader::iter) (or `for batch in &loader`) runs
///   the current epoch and advances the counter, so consecutive epochs differ;
///   [`set_epoch`](DataLoader::set_epoch) restarts anywhere (for a resumed run) and
///   [`iter_epoch`](DataLoader::iter_epoch) replays one without touching the counter.
/// - **Batches.** `batch_size` samples each; the last batch is smaller unless
///   [`drop_last`](DataLoader::drop_last). A batch is built by the dataset's
///   [`get_batch`](Dataset::get_batch) (one `index_select` per tensor for a
///   [`TensorDataset`](crate::TensorDataset)), or by [`collate_fn`](DataLoader::collate_fn).
/// - **Background threads.** With [`num_workers`](DataLoader::num_workers)` > 0`, worker
///   threads build the next batches while the caller trains on the current one. Batch `b`
///   is built by worker `b % num_workers` and handed over through that worker's bounded
///   channel, so batches arrive in exactly the same order, with exactly the same values, as
///   without workers. Dropping the iterator stops the workers; a panic in a worker is
///   re-raised by the iterator.
///
/// ```
/// use sinew_data::{DataLoader, datasets};
///
/// let loader = DataLoader::new(datasets::iris(), 32).shuffle(true).seed(7).num_workers(1);
/// assert_eq!(loader.len(), 5); // 150 = 4 × 32 + 22
/// for epoch in 0..2 {
///     let mut seen = 0;
///     for (x, y) in &loader {
///         assert_eq!(x.dims()[1], 4);
///         seen += y.dims()[0];
///     }
///     assert_eq!(seen, 150);
///     assert_eq!(loader.epoch(), epoch + 1);
/// }
/// ```
pub struct DataLoader<D> {
    dataset: Arc<D>,
    batch_size: usize,
    shuffle: bool,
    drop_last: bool,
    seed: OnceLock<u64>,
    epoch: AtomicU64,
    num_workers: usize,
    prefetch: usize,
    collate: Option<Arc<CollateFn>>,
    sampler: Option<Arc<dyn Sampler>>,
}

impl<D> fmt::Debug for DataLoader<D> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DataLoader")
            .field("batch_size", &self.batch_size)
            .field("shuffle", &self.shuffle)
            .field("drop_last", &self.drop_last)
            .field("seed", &self.seed.get())
            .field("epoch", &self.epoch.load(Ordering::Relaxed))
            .field("num_workers", &self.num_workers)
            .field("prefetch", &self.prefetch)
            .field("collate_fn", &self.collate.as_ref().map(|_| "custom"))
            .field("sampler", &self.sampler.as_ref().map(|_| "custom"))
            .finish_non_exhaustive()
    }
}

impl<D: Dataset + 'static> DataLoader<D> {
    /// A loader of `batch_size` samples a batch, in index order, on the calling thread.
    ///
    /// # Panics
    /// If `batch_size` is 0.
    ///
    /// ```
    /// use sinew_data::{DataLoader, datasets};
    /// let loader = DataLoader::new(datasets::digits(), 100);
    /// assert_eq!(loader.len(), 18);
    /// ```
    #[track_caller]
    pub fn new(dataset: D, batch_size: usize) -> DataLoader<D> {
        DataLoader::from_arc(Arc::new(dataset), batch_size)
    }

    /// [`DataLoader::new`] over a dataset already shared (several loaders over one
    /// dataset, or a dataset the caller keeps using).
    ///
    /// # Panics
    /// If `batch_size` is 0.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use sinew_data::{DataLoader, datasets};
    /// let ds = Arc::new(datasets::iris());
    /// let small = DataLoader::from_arc(ds.clone(), 10);
    /// let large = DataLoader::from_arc(ds, 50);
    /// assert_eq!((small.len(), large.len()), (15, 3));
    /// ```
    #[track_caller]
    pub fn from_arc(dataset: Arc<D>, batch_size: usize) -> DataLoader<D> {
        assert!(batch_size > 0, "DataLoader: batch_size must be positive");
        DataLoader {
            dataset,
            batch_size,
            shuffle: false,
            drop_last: false,
            seed: OnceLock::new(),
            epoch: AtomicU64::new(0),
            num_workers: 0,
            prefetch: 2,
            collate: None,
            sampler: None,
        }
    }

    /// Whether to visit samples in a new random order each epoch (default `false`).
    ///
    /// ```
    /// use sinew_data::{DataLoader, datasets};
    /// let loader = DataLoader::new(datasets::iris(), 10).shuffle(true).seed(0);
    /// assert_ne!(loader.epoch_order(0), (0..150).collect::<Vec<_>>());
    /// ```
    ///
    /// # Panics
    /// If the loader has a [`sampler`](DataLoader::sampler): the sampler decides the order.
    #[track_caller]
    pub fn shuffle(mut self, shuffle: bool) -> DataLoader<D> {
        assert!(
            !(shuffle && self.sampler.is_some()),
            "DataLoader: shuffle is mutually exclusive with a sampler (shuffle in the sampler)"
        );
        self.shuffle = shuffle;
        self
    }

    /// The seed of the shuffling order. Without it, a seed is drawn once from the
    /// process-wide generator ([`sinew_tensor::manual_seed`]) the first time an order is
    /// needed, so `manual_seed` makes a whole program reproducible.
    ///
    /// ```
    /// use sinew_data::{DataLoader, datasets};
    /// let a = DataLoader::new(datasets::iris(), 10).shuffle(true).seed(3);
    /// let b = DataLoader::new(datasets::iris(), 10).shuffle(true).seed(3);
    /// assert_eq!(a.epoch_order(5), b.epoch_order(5));
    /// assert_ne!(a.epoch_order(5), a.epoch_order(6));
    /// ```
    pub fn seed(mut self, seed: u64) -> DataLoader<D> {
        self.seed = OnceLock::from(seed);
        self
    }

    /// Whether to drop the last batch when it is smaller than `batch_size` (default
    /// `false`).
    ///
    /// ```
    /// use sinew_data::{DataLoader, datasets};
    /// assert_eq!(DataLoader::new(datasets::iris(), 40).drop_last(true).len(), 3);
    /// assert_eq!(DataLoader::new(datasets::iris(), 40).len(), 4);
    /// ```
    pub fn drop_last(mut self, drop_last: bool) -> DataLoader<D> {
        self.drop_last = drop_last;
        self
    }

    /// The number of background threads that build batches ahead of the caller (default
    /// 0: batches are built on the calling thread when asked for). Results do not depend
    /// on it.
    ///
    /// ```
    /// use sinew_data::{DataLoader, datasets};
    /// let inline = DataLoader::new(datasets::digits(), 64).shuffle(true).seed(1);
    /// let threaded = DataLoader::new(datasets::digits(), 64).shuffle(true).seed(1).num_workers(2);
    /// for ((x1, y1), (x2, y2)) in inline.iter().zip(threaded.iter()) {
    ///     assert_eq!(x1.to_vec::<f32>(), x2.to_vec::<f32>());
    ///     assert_eq!(y1.to_vec::<i64>(), y2.to_vec::<i64>());
    /// }
    /// ```
    pub fn num_workers(mut self, num_workers: usize) -> DataLoader<D> {
        self.num_workers = num_workers;
        self
    }

    /// How many finished batches each worker may hold ready (default 2, PyTorch's
    /// `prefetch_factor`; at least 1). Only matters with workers.
    ///
    /// ```
    /// use sinew_data::{DataLoader, datasets};
    /// let loader = DataLoader::new(datasets::iris(), 16).num_workers(1).prefetch(4);
    /// assert_eq!(loader.iter().count(), 10);
    /// ```
    pub fn prefetch(mut self, batches_per_worker: usize) -> DataLoader<D> {
        self.prefetch = batches_per_worker.max(1);
        self
    }

    /// Builds batches with `f` from the batch's samples (fetched one by one with
    /// [`Dataset::get`]) instead of the dataset's [`get_batch`](Dataset::get_batch).
    ///
    /// ```
    /// use sinew_data::{DataLoader, Sample, datasets, default_collate};
    /// // one-hot targets, built per batch
    /// let loader = DataLoader::new(datasets::iris(), 8).collate_fn(|samples: &[Sample]| {
    ///     let (x, y) = default_collate(samples);
    ///     (x, y.one_hot(3))
    /// });
    /// let (_, y) = loader.iter().next().unwrap();
    /// assert_eq!(y.dims(), &[8, 3]);
    /// ```
    pub fn collate_fn(mut self, f: impl Fn(&[Sample]) -> Sample + Send + Sync + 'static) -> DataLoader<D> {
        self.collate = Some(Arc::new(f));
        self
    }

    /// Visits the indices `sampler` chooses, epoch by epoch, instead of `0..len`
    /// (`DataLoader(sampler=...)`): a [`DistributedSampler`](crate::DistributedSampler)
    /// for one rank's shard, or any [`Sampler`]. The epoch number the sampler sees is the
    /// loader's epoch counter.
    ///
    /// # Panics
    /// If the loader shuffles: the sampler decides the order.
    ///
    /// ```
    /// use sinew_data::{DataLoader, DistributedSampler, datasets};
    /// let rank1 = DataLoader::new(datasets::iris(), 10)
    ///     .sampler(DistributedSampler::new(3, 1).shuffle(false));
    /// assert_eq!(rank1.len(), 5); // 50 samples
    /// let (_, y) = rank1.iter().next().unwrap();
    /// assert_eq!(y.dims(), &[10]);
    /// assert_eq!(rank1.epoch_order(0)[..3], [1, 4, 7]);
    /// ```
    #[track_caller]
    pub fn sampler(mut self, sampler: impl Sampler + 'static) -> DataLoader<D> {
        assert!(
            !self.shuffle,
            "DataLoader: a sampler is mutually exclusive with shuffle (shuffle in the sampler)"
        );
        self.sampler = Some(Arc::new(sampler));
        self
    }

    /// The dataset.
    ///
    /// ```
    /// use sinew_data::{DataLoader, Dataset, datasets};
    /// assert_eq!(DataLoader::new(datasets::iris(), 8).dataset().len(), 150);
    /// ```
    pub fn dataset(&self) -> &D {
        &self.dataset
    }

    /// Whether it shuffles (set by [`shuffle`](DataLoader::shuffle)).
    ///
    /// ```
    /// use sinew_data::{DataLoader, datasets};
    /// assert!(!DataLoader::new(datasets::iris(), 8).is_shuffled());
    /// assert!(DataLoader::new(datasets::iris(), 8).shuffle(true).is_shuffled());
    /// ```
    pub fn is_shuffled(&self) -> bool {
        self.shuffle
    }

    /// Samples per batch.
    ///
    /// ```
    /// use sinew_data::{DataLoader, datasets};
    /// assert_eq!(DataLoader::new(datasets::iris(), 8).batch_size(), 8);
    /// ```
    pub fn batch_size(&self) -> usize {
        self.batch_size
    }

    /// The number of batches in an epoch.
    ///
    /// ```
    /// use sinew_data::{DataLoader, datasets};
    /// assert_eq!(DataLoader::new(datasets::iris(), 100).len(), 2);
    /// ```
    pub fn len(&self) -> usize {
        let n = match &self.sampler {
            Some(s) => s.num_samples(self.dataset.len()),
            None => self.dataset.len(),
        };
        if self.drop_last { n / self.batch_size } else { n.div_ceil(self.batch_size) }
    }

    /// Whether an epoch has no batches.
    ///
    /// ```
    /// use sinew_data::{DataLoader, datasets};
    /// assert!(DataLoader::new(datasets::iris(), 200).drop_last(true).is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The epoch the next [`iter`](DataLoader::iter) will run (starts at 0).
    ///
    /// ```
    /// use sinew_data::{DataLoader, datasets};
    /// let loader = DataLoader::new(datasets::iris(), 50);
    /// let _ = loader.iter();
    /// assert_eq!(loader.epoch(), 1);
    /// ```
    pub fn epoch(&self) -> u64 {
        self.epoch.load(Ordering::Relaxed)
    }

    /// Sets the epoch the next [`iter`](DataLoader::iter) runs (to resume a run, or like
    /// PyTorch's `sampler.set_epoch`).
    ///
    /// ```
    /// use sinew_data::{DataLoader, datasets};
    /// let loader = DataLoader::new(datasets::iris(), 50).shuffle(true).seed(0);
    /// let first: Vec<_> = loader.iter().map(|(_, y)| y.to_vec::<i64>()).collect();
    /// loader.set_epoch(0);
    /// let again: Vec<_> = loader.iter().map(|(_, y)| y.to_vec::<i64>()).collect();
    /// assert_eq!(first, again);
    /// ```
    pub fn set_epoch(&self, epoch: u64) {
        self.epoch.store(epoch, Ordering::Relaxed);
    }

    /// The seed of the shuffling order (drawing it from the process-wide generator if
    /// none was given).
    ///
    /// ```
    /// use sinew_data::{DataLoader, datasets};
    /// assert_eq!(DataLoader::new(datasets::iris(), 8).seed(9).initial_seed(), 9);
    /// ```
    pub fn initial_seed(&self) -> u64 {
        *self.seed.get_or_init(|| with_global_generator(|g| g.int_in(i64::MIN, i64::MAX) as u64))
    }

    /// The order in which epoch `epoch` visits the samples: the
    /// [`sampler`](DataLoader::sampler)'s indices if it has one, else `0..len` unshuffled,
    /// or a permutation drawn from ChaCha stream `epoch` of the loader's seed.
    ///
    /// ```
    /// use sinew_data::{DataLoader, datasets};
    /// let loader = DataLoader::new(datasets::iris(), 8);
    /// assert_eq!(loader.epoch_order(3)[..3], [0, 1, 2]);
    /// ```
    pub fn epoch_order(&self, epoch: u64) -> Vec<usize> {
        let n = self.dataset.len();
        match &self.sampler {
            Some(s) => s.indices(n, epoch),
            None if self.shuffle => seeded_permutation(n, self.initial_seed(), epoch),
            None => (0..n).collect(),
        }
    }

    /// The batches of the current epoch; advances the epoch counter.
    ///
    /// ```
    /// use sinew_data::{DataLoader, datasets};
    /// let loader = DataLoader::new(datasets::iris(), 64).shuffle(true).seed(0);
    /// let epoch0: Vec<_> = loader.iter().map(|(_, y)| y.to_vec::<i64>()).collect();
    /// let epoch1: Vec<_> = loader.iter().map(|(_, y)| y.to_vec::<i64>()).collect();
    /// assert_ne!(epoch0, epoch1);
    /// ```
    pub fn iter(&self) -> Batches<D> {
        let epoch = self.epoch.fetch_add(1, Ordering::Relaxed);
        self.iter_epoch(epoch)
    }

    /// The batches of epoch `epoch`, leaving the epoch counter alone.
    ///
    /// ```
    /// use sinew_data::{DataLoader, datasets};
    /// let loader = DataLoader::new(datasets::iris(), 64).shuffle(true).seed(0);
    /// let a: Vec<_> = loader.iter_epoch(4).map(|(x, _)| x.to_vec::<f32>()).collect();
    /// let b: Vec<_> = loader.iter_epoch(4).map(|(x, _)| x.to_vec::<f32>()).collect();
    /// assert_eq!(a, b);
    /// assert_eq!(loader.epoch(), 0);
    /// ```
    pub fn iter_epoch(&self, epoch: u64) -> Batches<D> {
        let plan =
            Plan { order: Arc::new(self.epoch_order(epoch)), batch_size: self.batch_size, len: self.len() };
        let workers = self.num_workers.min(plan.len);
        let source = if workers == 0 {
            Source::Inline { dataset: self.dataset.clone(), collate: self.collate.clone() }
        } else {
            spawn_workers(&self.dataset, &self.collate, &plan, workers, self.prefetch)
        };
        Batches { plan, next: 0, source }
    }
}

impl<D: Dataset + 'static> IntoIterator for &DataLoader<D> {
    type Item = Sample;
    type IntoIter = Batches<D>;

    /// [`DataLoader::iter`].
    fn into_iter(self) -> Batches<D> {
        self.iter()
    }
}

/// Which samples make up each batch of one epoch.
#[derive(Clone)]
struct Plan {
    order: Arc<Vec<usize>>,
    batch_size: usize,
    len: usize,
}

impl Plan {
    fn batch(&self, b: usize) -> &[usize] {
        let start = b * self.batch_size;
        let end = (start + self.batch_size).min(self.order.len());
        &self.order[start..end]
    }
}

fn build<D: Dataset>(dataset: &D, collate: Option<&CollateFn>, indices: &[usize]) -> Sample {
    match collate {
        None => dataset.get_batch(indices),
        Some(f) => {
            let samples: Vec<Sample> = indices.iter().map(|&i| dataset.get(i)).collect();
            f(&samples)
        }
    }
}

enum Source<D> {
    Inline { dataset: Arc<D>, collate: Option<Arc<CollateFn>> },
    Workers { receivers: Vec<Receiver<Sample>>, handles: Vec<Option<JoinHandle<()>>>, stop: Arc<AtomicBool> },
}

fn spawn_workers<D: Dataset + 'static>(
    dataset: &Arc<D>,
    collate: &Option<Arc<CollateFn>>,
    plan: &Plan,
    workers: usize,
    prefetch: usize,
) -> Source<D> {
    let stop = Arc::new(AtomicBool::new(false));
    let mut receivers = Vec::with_capacity(workers);
    let mut handles = Vec::with_capacity(workers);
    for w in 0..workers {
        let (tx, rx) = sync_channel::<Sample>(prefetch);
        let (dataset, collate, plan, stop) = (dataset.clone(), collate.clone(), plan.clone(), stop.clone());
        let handle = std::thread::Builder::new()
            .name(format!("sinew-data-{w}"))
            .spawn(move || {
                for b in (w..plan.len).step_by(workers) {
                    if stop.load(Ordering::Relaxed) {
                        return;
                    }
                    let batch = build(&*dataset, collate.as_deref(), plan.batch(b));
                    if tx.send(batch).is_err() {
                        return; // the iterator was dropped
                    }
                }
            })
            .expect("DataLoader: could not spawn a worker thread");
        receivers.push(rx);
        handles.push(Some(handle));
    }
    Source::Workers { receivers, handles, stop }
}

/// The batches of one epoch of a [`DataLoader`], in order. Owns what it needs, so it
/// can outlive the borrow of the loader; dropping it early stops the loader's workers.
///
/// ```
/// use sinew_data::{DataLoader, datasets};
/// let loader = DataLoader::new(datasets::iris(), 32).num_workers(2);
/// let mut batches = loader.iter();
/// assert_eq!(batches.len(), 5);
/// let (x, y) = batches.next().unwrap();
/// assert_eq!((x.dims(), y.dims()), (&[32, 4][..], &[32][..]));
/// drop(batches); // stops the workers
/// ```
pub struct Batches<D> {
    plan: Plan,
    next: usize,
    source: Source<D>,
}

impl<D> fmt::Debug for Batches<D> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Batches")
            .field("next", &self.next)
            .field("len", &self.plan.len)
            .finish_non_exhaustive()
    }
}

impl<D: Dataset> Iterator for Batches<D> {
    type Item = Sample;

    fn next(&mut self) -> Option<Sample> {
        if self.next >= self.plan.len {
            return None;
        }
        let b = self.next;
        self.next += 1;
        Some(match &mut self.source {
            Source::Inline { dataset, collate } => build(&**dataset, collate.as_deref(), self.plan.batch(b)),
            Source::Workers { receivers, handles, .. } => {
                let w = b % receivers.len();
                match receivers[w].recv() {
                    Ok(batch) => batch,
                    Err(_) => {
                        // the worker hung up before sending batch `b`: it panicked
                        if let Some(Err(payload)) = handles[w].take().map(JoinHandle::join) {
                            std::panic::resume_unwind(payload);
                        }
                        panic!("DataLoader: worker {w} stopped before producing batch {b}");
                    }
                }
            }
        })
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let left = self.plan.len - self.next;
        (left, Some(left))
    }
}

impl<D: Dataset> ExactSizeIterator for Batches<D> {}

impl<D> Drop for Batches<D> {
    fn drop(&mut self) {
        if let Source::Workers { receivers, handles, stop } = &mut self.source {
            stop.store(true, Ordering::Relaxed);
            receivers.clear(); // a worker blocked on a full channel now gets an error
            for h in handles.iter_mut().filter_map(Option::take) {
                let _ = h.join();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::TensorDataset;
    use sinew_tensor::Tensor;

    fn numbered(n: usize) -> TensorDataset {
        let x = Tensor::arange(0.0, (2 * n) as f64, 1.0).reshape(&[n, 2]);
        let y = Tensor::from_vec((0..n as i64).collect(), &[n]).unwrap();
        TensorDataset::new(x, y)
    }

    fn targets<D: Dataset + 'static>(batches: Batches<D>) -> Vec<Vec<i64>> {
        batches.map(|(_, y)| y.to_vec::<i64>()).collect()
    }

    #[test]
    fn unshuffled_order_and_partial_last_batch() {
        let loader = DataLoader::new(numbered(7), 3);
        assert_eq!(loader.len(), 3);
        assert_eq!(targets(loader.iter()), vec![vec![0, 1, 2], vec![3, 4, 5], vec![6]]);
        let (x, _) = loader.iter().last().unwrap();
        assert_eq!(x.dims(), &[1, 2]);
        assert_eq!(x.to_vec::<f32>(), vec![12.0, 13.0]);
    }

    #[test]
    fn drop_last_drops_only_the_partial_batch() {
        let loader = DataLoader::new(numbered(7), 3).drop_last(true);
        assert_eq!(loader.len(), 2);
        assert_eq!(targets(loader.iter()), vec![vec![0, 1, 2], vec![3, 4, 5]]);
        let exact = DataLoader::new(numbered(6), 3).drop_last(true);
        assert_eq!(targets(exact.iter()).len(), 2);
        let none = DataLoader::new(numbered(2), 3).drop_last(true).num_workers(2);
        assert!(none.is_empty());
        assert_eq!(none.iter().count(), 0);
    }

    #[test]
    fn same_seed_same_batches_and_each_epoch_a_permutation() {
        let a = DataLoader::new(numbered(50), 8).shuffle(true).seed(11);
        let b = DataLoader::new(numbered(50), 8).shuffle(true).seed(11);
        let c = DataLoader::new(numbered(50), 8).shuffle(true).seed(12);
        let (a0, a1) = (targets(a.iter()), targets(a.iter()));
        assert_eq!(a0, targets(b.iter()));
        assert_eq!(a1, targets(b.iter()));
        assert_ne!(a0, a1, "epochs should differ");
        assert_ne!(a0, targets(c.iter()), "seeds should differ");
        for epoch in [a0, a1] {
            let mut all: Vec<i64> = epoch.concat();
            all.sort();
            assert_eq!(all, (0..50).collect::<Vec<_>>());
        }
        // resuming at an epoch replays it
        a.set_epoch(1);
        assert_eq!(targets(a.iter()), targets(b.iter_epoch(1)));
    }

    #[test]
    fn workers_give_identical_batches_in_the_same_order() {
        let inline = DataLoader::new(numbered(103), 10).shuffle(true).seed(5);
        for workers in [1, 2, 3, 16] {
            for prefetch in [1, 3] {
                let threaded = DataLoader::new(numbered(103), 10)
                    .shuffle(true)
                    .seed(5)
                    .num_workers(workers)
                    .prefetch(prefetch);
                for epoch in 0..2 {
                    let want: Vec<Sample> = inline.iter_epoch(epoch).collect();
                    let got: Vec<Sample> = threaded.iter_epoch(epoch).collect();
                    assert_eq!(want.len(), got.len());
                    for ((wx, wy), (gx, gy)) in want.iter().zip(&got) {
                        assert_eq!(wx.dims(), gx.dims());
                        assert_eq!(wx.to_vec::<f32>(), gx.to_vec::<f32>());
                        assert_eq!(wy.to_vec::<i64>(), gy.to_vec::<i64>());
                    }
                }
            }
        }
    }

    #[test]
    fn custom_collate_sees_samples_in_batch_order() {
        let loader = DataLoader::new(numbered(5), 2).num_workers(2).collate_fn(|s: &[Sample]| {
            let ids: Vec<i64> = s.iter().map(|(_, y)| y.item() as i64 * 10).collect();
            let n = ids.len();
            (Tensor::zeros(&[n]), Tensor::from_vec(ids, &[n]).unwrap())
        });
        assert_eq!(targets(loader.iter()), vec![vec![0, 10], vec![20, 30], vec![40]]);
    }

    #[test]
    fn dropping_an_unfinished_iterator_stops_workers() {
        let loader = DataLoader::new(numbered(1000), 1).num_workers(2).prefetch(1);
        let mut it = loader.iter();
        assert_eq!(it.next().unwrap().1.to_vec::<i64>(), vec![0]);
        drop(it); // must not hang
    }

    struct Exploding;
    impl Dataset for Exploding {
        fn len(&self) -> usize {
            4
        }
        fn get(&self, index: usize) -> Sample {
            assert!(index != 2, "sample 2 is broken");
            (Tensor::zeros(&[1]), Tensor::zeros(&[1]))
        }
    }

    #[test]
    #[should_panic(expected = "sample 2 is broken")]
    fn a_worker_panic_reaches_the_caller() {
        let loader = DataLoader::new(Exploding, 1).num_workers(2);
        for _ in loader.iter() {}
    }

    #[test]
    fn distributed_shards_batch_into_the_global_batches() {
        // two ranks' k-th batches of 4 hold the samples of the one-process k-th batch of 8
        let whole = DataLoader::new(numbered(30), 8).shuffle(true).seed(3);
        let ranks: Vec<_> = (0..2)
            .map(|r| DataLoader::new(numbered(30), 4).sampler(crate::DistributedSampler::new(2, r).seed(3)))
            .collect();
        for epoch in 0..2 {
            let global = targets(whole.iter_epoch(epoch));
            let shards: Vec<_> = ranks.iter().map(|l| targets(l.iter_epoch(epoch))).collect();
            assert_eq!(shards[0].len(), 4);
            for (k, batch) in global.iter().enumerate() {
                let mut want = batch.clone();
                let mut got = [shards[0][k].clone(), shards[1][k].clone()].concat();
                want.sort_unstable();
                got.sort_unstable();
                assert_eq!(got, want, "epoch {epoch}, batch {k}");
            }
        }
    }

    #[test]
    #[should_panic(expected = "mutually exclusive")]
    fn shuffle_and_sampler_together_are_refused() {
        let _ = DataLoader::new(numbered(4), 2).shuffle(true).sampler(crate::DistributedSampler::new(1, 0));
    }

    #[test]
    fn unseeded_loader_follows_manual_seed() {
        // the only test touching the process-wide generator in this crate
        sinew_tensor::manual_seed(123);
        let a = DataLoader::new(numbered(20), 4).shuffle(true);
        let oa = a.epoch_order(0);
        sinew_tensor::manual_seed(123);
        let b = DataLoader::new(numbered(20), 4).shuffle(true);
        assert_eq!(oa, b.epoch_order(0));
        assert_eq!(a.initial_seed(), b.initial_seed());
    }
}

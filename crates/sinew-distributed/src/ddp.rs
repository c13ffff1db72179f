//! [`DistributedDataParallel`]: a model replicated on every rank whose gradients are
//! averaged by bucketed all-reduce, started while the backward pass is still running.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use sinew_autograd::{Gradients, Var, VarId, is_grad_enabled};
use sinew_nn::{Forward, Module, Visitor};
use sinew_tensor::Tensor;
use sinew_train::DataParallel;

use crate::bucket::{BucketPlan, DEFAULT_BUCKET_CAP_BYTES};
use crate::digest::state_digest;
use crate::error::Result;
use crate::reducer::{Flat, Part, Reducer};
use crate::world::World;

/// A model trained data-parallel over the ranks of a [`World`]
/// (`torch.nn.parallel.DistributedDataParallel`), with PyTorch's semantics:
///
/// - **Start.** [`new`](DistributedDataParallel::new) overwrites every parameter and
///   buffer with rank 0's, so all the replicas start equal whatever their seeds.
/// - **Forward.** The wrapped module's; in a training-mode forward that records a graph,
///   the buffers (BatchNorm's running statistics) are first broadcast from rank 0
///   ([`broadcast_buffers`](DistributedDataParallel::broadcast_buffers), on by default).
///   An evaluation-mode forward, or one under `no_grad`, makes no collective call, so
///   rank 0 may evaluate alone.
/// - **Backward.** [`backward`](DistributedDataParallel::backward) runs the local backward
///   pass and returns the gradients averaged over the ranks. The parameters are grouped in
///   buckets (25 MiB by default, in reverse order, the first one ≤ 1 MiB) flattened into
///   contiguous buffers; a bucket is handed to a reduction thread (a blocking
///   `MPI_Allreduce` on a communicator of its own) as soon as the backward pass has
///   finished all its gradients, while the earlier layers' gradients are still being
///   computed. Buckets are reduced in the same order on every rank. Without
///   `MPI_THREAD_MULTIPLE` the reductions run inline, after each bucket completes.
/// - **Gradient accumulation.** Inside [`no_sync`](DistributedDataParallel::no_sync),
///   `backward` only accumulates locally; the next `backward` outside it reduces the
///   accumulated sum with its own gradients, in one round of communication.
/// - **Equality.** Every rank receives the same averaged gradients, so identical
///   optimizer steps keep the replicas bit-identical;
///   [`check_in_sync`](DistributedDataParallel::check_in_sync) proves it by comparing a
///   digest of the parameters and buffers across ranks.
///
/// Parameter names are the wrapped module's own (no `module.` prefix, unlike PyTorch):
/// a checkpoint of the wrapper loads into the bare model and back.
///
/// A parameter that gets no gradient on a rank (unused in its forward) counts as a zero
/// gradient there, so its bucket is still reduced and every rank steps alike.
///
/// ```no_run
/// use sinew_autograd::Var;
/// use sinew_distributed::{DistributedDataParallel, World};
/// use sinew_nn::loss::{Reduction, mse_loss};
/// use sinew_nn::{Forward, Linear, Module};
/// use sinew_optim::{Optimizer, Sgd};
/// use sinew_tensor::{Generator, Tensor};
///
/// let world = World::init()?;
/// let model = DistributedDataParallel::new(&world, Linear::new(4, 1, &mut Generator::new(0)));
/// let mut opt = Sgd::new(model.parameters(), 0.1);
/// // each rank its own shard of the batch (see DistributedSampler)
/// let x = Var::constant(Tensor::full(&[8, 4], world.rank() as f64));
/// let loss = mse_loss(&model.forward(&x), &Var::constant(Tensor::zeros(&[8, 1])), Reduction::Mean);
/// let grads = model.backward(&loss); // averaged over the ranks
/// opt.step(&grads);
/// model.check_in_sync()?; // the replicas are still equal
/// # Ok::<(), sinew_distributed::DistributedError>(())
/// ```
pub struct DistributedDataParallel<M> {
    module: M,
    world: World,
    plan: BucketPlan,
    buckets: Mutex<Buckets>,
    broadcast_buffers: AtomicBool,
    /// Set by `train()` / `eval()` on the wrapper.
    training: AtomicBool,
    no_sync: AtomicBool,
    /// Gradients accumulated inside `no_sync`.
    accumulated: Mutex<Option<Gradients>>,
    last: Mutex<ReductionStats>,
}

/// How the last synchronised [`backward`](DistributedDataParallel::backward) reduced its
/// buckets (PyTorch's DDP logging data, in small).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReductionStats {
    /// Buckets reduced.
    pub buckets: usize,
    /// Of those, the buckets whose all-reduce started while the backward pass was still
    /// running (the rest started after it, because their first parameters' gradients are
    /// the last ones computed).
    pub started_during_backward: usize,
    /// Bytes all-reduced.
    pub bytes: usize,
}

impl<M: std::fmt::Debug> std::fmt::Debug for DistributedDataParallel<M> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DistributedDataParallel")
            .field("module", &self.module)
            .field("world", &self.world)
            .field("buckets", &self.plan.buckets.len())
            .finish_non_exhaustive()
    }
}

/// The buckets' buffers (`None` while a bucket is being reduced) and their reducer,
/// kept between steps.
struct Buckets {
    flats: Vec<Option<Flat>>,
    reducer: Reducer,
}

impl<M: Module> DistributedDataParallel<M> {
    /// Wraps `module`, whose parameters and buffers are overwritten with rank 0's, with
    /// buckets of 25 MiB.
    ///
    /// Every rank must build the same architecture (same parameters, in the same order,
    /// of the same shapes): the broadcast would otherwise fail or mix tensors up.
    pub fn new(world: &World, module: M) -> DistributedDataParallel<M> {
        DistributedDataParallel::with_bucket_cap(world, module, DEFAULT_BUCKET_CAP_BYTES)
    }

    /// [`new`](DistributedDataParallel::new) with buckets of at most `cap_bytes`
    /// (PyTorch's `bucket_cap_mb`; the first bucket is capped at 1 MiB as well).
    pub fn with_bucket_cap(world: &World, module: M, cap_bytes: usize) -> DistributedDataParallel<M> {
        for p in module.parameters() {
            let mut value = p.value_mut();
            world.broadcast(&mut value, 0);
        }
        for (_, b) in module.named_buffers() {
            world.broadcast(&mut b.value_mut(), 0);
        }
        let plan = BucketPlan::new(&module.parameters(), cap_bytes.max(1));
        let flats = plan.buckets.iter().map(|b| Some(Flat::new(b.dtype, b.len))).collect();
        let buckets = Buckets { flats, reducer: Reducer::new(world) };
        DistributedDataParallel {
            module,
            world: world.clone(),
            plan,
            buckets: Mutex::new(buckets),
            broadcast_buffers: AtomicBool::new(true),
            training: AtomicBool::new(true),
            no_sync: AtomicBool::new(false),
            accumulated: Mutex::new(None),
            last: Mutex::new(ReductionStats::default()),
        }
    }

    /// Whether a training-mode forward that records a graph first broadcasts the buffers
    /// from rank 0 (default `true`, PyTorch's `broadcast_buffers`). Off, each rank keeps
    /// its own running statistics.
    pub fn broadcast_buffers(self, on: bool) -> DistributedDataParallel<M> {
        self.broadcast_buffers.store(on, Ordering::Relaxed);
        self
    }

    /// The wrapped module.
    pub fn module(&self) -> &M {
        &self.module
    }

    /// The wrapped module, unwrapped.
    pub fn into_inner(self) -> M {
        self.module
    }

    /// The world it trains over.
    pub fn world(&self) -> &World {
        &self.world
    }

    /// The gradient buckets, in the order their reductions start.
    pub fn buckets(&self) -> &BucketPlan {
        &self.plan
    }

    /// How the last synchronised `backward` reduced the gradients.
    pub fn last_reduction(&self) -> ReductionStats {
        *self.last.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Until the guard is dropped, [`backward`](DistributedDataParallel::backward)
    /// accumulates gradients locally without communicating (PyTorch's `no_sync()`); the
    /// first `backward` after it reduces the accumulated sum together with its own
    /// gradients.
    ///
    /// ```no_run
    /// # use sinew_autograd::Var;
    /// # use sinew_distributed::{DistributedDataParallel, World};
    /// # use sinew_nn::loss::{Reduction, mse_loss};
    /// # use sinew_nn::{Forward, Linear};
    /// # use sinew_tensor::{Generator, Tensor};
    /// # let world = World::init()?;
    /// # let model = DistributedDataParallel::new(&world, Linear::new(4, 1, &mut Generator::new(0)));
    /// # let loss_of = |i: usize| mse_loss(&model.forward(&Var::constant(Tensor::full(&[2, 4], i as f64))),
    /// #     &Var::constant(Tensor::zeros(&[2, 1])), Reduction::Mean);
    /// {
    ///     let _local = model.no_sync();
    ///     for micro in 0..3 {
    ///         model.backward(&loss_of(micro)); // accumulated, no communication
    ///     }
    /// }
    /// let mut grads = model.backward(&loss_of(3)); // the sum of 4 micro-batches, averaged over ranks
    /// grads.scale(1.0 / 4.0);
    /// # Ok::<(), sinew_distributed::DistributedError>(())
    /// ```
    pub fn no_sync(&self) -> NoSync<'_> {
        let was = self.no_sync.swap(true, Ordering::Relaxed);
        NoSync { flag: &self.no_sync, was }
    }

    /// Runs the backward pass of `loss` and returns the gradients of the parameters
    /// averaged over the ranks (other leaves' gradients stay local). Every rank must call
    /// it for every step, in the same order.
    ///
    /// # Panics
    /// If a parameter's gradient has another dtype or shape than the parameter had when
    /// the wrapper was built (cast the model before wrapping it).
    pub fn backward(&self, loss: &Var) -> Gradients {
        if self.no_sync.load(Ordering::Relaxed) {
            let grads = loss.backward();
            let mut acc = self.accumulated.lock().unwrap_or_else(|e| e.into_inner());
            acc.get_or_insert_with(Gradients::new).accumulate(&grads);
            return grads;
        }
        self.reduce(|hook| loss.backward_pass().on_leaf_gradient(hook).run())
    }

    /// Averages `grads` over the ranks through the same buckets as
    /// [`backward`](DistributedDataParallel::backward), for gradients computed some other
    /// way (a custom backward, `sinew_autograd::grad`); every rank must call it. Like
    /// `backward`, it includes what [`no_sync`](DistributedDataParallel::no_sync)
    /// accumulated, and a parameter without a gradient counts as zero.
    pub fn all_reduce_gradients(&self, grads: &Gradients) -> Gradients {
        self.reduce(|hook| {
            for slot in self.plan.buckets.iter().flat_map(|b| &b.slots) {
                if let Some(g) = grads.get_id(slot.id) {
                    hook(slot.id, g);
                }
            }
            grads.clone()
        })
    }

    /// Runs `produce` (the local backward pass), which hands each parameter's final
    /// gradient to the hook it is given and returns all the gradients. Each bucket is
    /// handed to the reducer as soon as it is complete (and every earlier bucket has
    /// been), while `produce` goes on; returns the gradients with the parameters'
    /// replaced by their averages over the ranks, once every bucket is reduced.
    fn reduce(&self, produce: impl FnOnce(&mut dyn FnMut(VarId, &Tensor)) -> Gradients) -> Gradients {
        let accumulated = self.accumulated.lock().unwrap_or_else(|e| e.into_inner()).take();
        let accumulated = accumulated.as_ref();
        let mut state = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        let Buckets { flats, reducer } = &mut *state;
        let buckets = &self.plan.buckets;
        let mut missing: Vec<usize> = buckets.iter().map(|b| b.slots.len()).collect();
        let mut written: Vec<Vec<bool>> = buckets.iter().map(|b| vec![false; b.slots.len()]).collect();
        let mut parts: Vec<Vec<Part>> = buckets.iter().map(|b| Vec::with_capacity(b.slots.len())).collect();
        let mut next = 0;
        let mut grads = produce(&mut |id: VarId, grad: &Tensor| {
            let Some(&(b, s)) = self.plan.place.get(&id) else { return };
            let slot = &buckets[b].slots[s];
            assert!(
                grad.dtype() == buckets[b].dtype && grad.dims() == slot.dims.as_slice(),
                "DistributedDataParallel: a gradient of {} {:?} for a parameter registered as {} {:?} \
                 (cast or reshape the model before wrapping it)",
                grad.dtype(),
                grad.dims(),
                buckets[b].dtype,
                slot.dims
            );
            let extra = accumulated.and_then(|a| a.get_id(id)).cloned();
            parts[b].push(Part { offset: slot.offset, len: slot.len(), grad: Some(grad.clone()), extra });
            written[b][s] = true;
            missing[b] -= 1;
            while next < buckets.len() && missing[next] == 0 {
                let flat = flats[next].take().expect("each bucket is reduced once");
                reducer.submit(next, flat, std::mem::take(&mut parts[next]), &mut flats[next]);
                next += 1;
            }
        });
        let started_during_backward = next;
        // parameters the pass did not reach: their accumulated gradient, or zeros
        for b in next..buckets.len() {
            let flat = flats[b].take().expect("each bucket is reduced once");
            for (s, slot) in buckets[b].slots.iter().enumerate() {
                if !written[b][s] {
                    let extra = accumulated.and_then(|a| a.get_id(slot.id)).cloned();
                    parts[b].push(Part { offset: slot.offset, len: slot.len(), grad: None, extra });
                }
            }
            reducer.submit(b, flat, std::mem::take(&mut parts[b]), &mut flats[b]);
        }
        reducer.collect(flats);
        for (bucket, flat) in buckets.iter().zip(flats.iter()) {
            let reduced = flat.as_ref().expect("every bucket is back").reduced();
            for slot in &bucket.slots {
                grads.insert(slot.id, reduced.narrow(0, slot.offset, slot.len()).reshape(&slot.dims));
            }
        }
        let bytes = buckets.iter().map(|b| b.len * b.dtype.size_in_bytes()).sum();
        *self.last.lock().unwrap_or_else(|e| e.into_inner()) =
            ReductionStats { buckets: buckets.len(), started_during_backward, bytes };
        grads
    }

    /// Checks that every rank holds bit-identical parameters and buffers, by comparing a
    /// digest of them (two small all-reduces).
    ///
    /// # Errors
    /// [`DistributedError::Mismatch`](crate::DistributedError::Mismatch) if they differ.
    pub fn check_in_sync(&self) -> Result<()> {
        self.world.check_same("the parameters and buffers", state_digest(&self.module))
    }
}

/// The guard of [`DistributedDataParallel::no_sync`].
#[derive(Debug)]
pub struct NoSync<'a> {
    flag: &'a AtomicBool,
    was: bool,
}

impl Drop for NoSync<'_> {
    fn drop(&mut self) {
        self.flag.store(self.was, Ordering::Relaxed);
    }
}

impl<M: Module> Module for DistributedDataParallel<M> {
    fn visit(&self, v: &mut dyn Visitor) {
        self.module.visit(v);
    }
    fn set_own_training(&self, training: bool) {
        self.training.store(training, Ordering::Relaxed);
        self.module.set_own_training(training);
    }
    fn extra_repr(&self) -> String {
        self.module.extra_repr()
    }
    fn type_name(&self) -> &'static str {
        self.module.type_name()
    }
}

/// `Trainer::fit` on every rank: `Trainer::new(&ddp, ..).data_parallel(&ddp)`.
impl<M: Module> DataParallel for DistributedDataParallel<M> {
    fn rank(&self) -> usize {
        self.world.rank()
    }
    fn world_size(&self) -> usize {
        self.world.size()
    }
    fn backward(&self, loss: &Var) -> Gradients {
        DistributedDataParallel::backward(self, loss)
    }
    fn all_reduce_sum(&self, values: &mut [f64]) {
        self.world.all_reduce_sum_slice(values);
    }
}

impl<M: Forward> Forward for DistributedDataParallel<M> {
    fn forward(&self, x: &Var) -> Var {
        let training = self.training.load(Ordering::Relaxed);
        if training && is_grad_enabled() && self.broadcast_buffers.load(Ordering::Relaxed) {
            for (_, b) in self.module.named_buffers() {
                self.world.broadcast(&mut b.value_mut(), 0);
            }
        }
        self.module.forward(x)
    }
}

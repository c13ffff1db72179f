//! [`DistributedDataParallel`]: a model replicated on every rank whose gradients are
//! averaged by bucketed all-reduce, started while the backward pass is still running.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use mpi::collective::SystemOperation;
use mpi::request::{Request, Scope};
use mpi::traits::CommunicatorCollectives;
use sinew_autograd::{Gradients, Param, Var, VarId, is_grad_enabled};
use sinew_nn::{Forward, Module, Visitor};
use sinew_tensor::{DType, Tensor};
use sinew_train::DataParallel;

use crate::bucket::{BucketPlan, DEFAULT_BUCKET_CAP_BYTES};
use crate::digest::state_digest;
use crate::error::Result;
use crate::world::World;

/// A model trained data-parallel over the ranks of a [`World`]
/// (`torch.nn.parallel.DistributedDataParallel`), with PyTorch's semantics:
///
/// - **Start.** [`new`](DistributedDataParallel::new) overwrites every parameter and
///   buffer with rank 0's, so all the replicas start equal whatever their seeds.
/// - **Forward.** The wrapped module's; in a forward that records a graph, the buffers
///   (BatchNorm's running statistics) are first broadcast from rank 0
///   ([`broadcast_buffers`](DistributedDataParallel::broadcast_buffers), on by default).
/// - **Backward.** [`backward`](DistributedDataParallel::backward) runs the local backward
///   pass and returns the gradients averaged over the ranks. The parameters are grouped in
///   buckets (25 MiB by default, in reverse order, the first one ≤ 1 MiB) flattened into
///   contiguous buffers; a bucket's non-blocking all-reduce (`MPI_Iallreduce`) starts as
///   soon as the backward pass has finished all its gradients, while the earlier layers'
///   gradients are still being computed. Buckets start in the same order on every rank.
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
    params: Vec<Param>,
    plan: BucketPlan,
    /// The buckets' flat buffers, kept between steps.
    flats: Mutex<Vec<Flat>>,
    broadcast_buffers: AtomicBool,
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

/// A bucket's buffers: MPI reads `send` and writes the sum into `recv`.
enum Flat {
    F32 { send: Vec<f32>, recv: Vec<f32> },
    F64 { send: Vec<f64>, recv: Vec<f64> },
}

/// A bucket's reduction in flight.
enum InFlight<'a, S: Scope<'a>> {
    F32(Request<'a, [f32], S>),
    F64(Request<'a, [f64], S>),
}

impl<'a, S: Scope<'a>> InFlight<'a, S> {
    /// Lets MPI progress the reduction (`MPI_Test`); `None` once it has finished.
    fn test(self) -> Option<InFlight<'a, S>> {
        match self {
            InFlight::F32(r) => r.test().err().map(InFlight::F32),
            InFlight::F64(r) => r.test().err().map(InFlight::F64),
        }
    }

    fn wait(self) {
        match self {
            InFlight::F32(r) => r.wait_without_status(),
            InFlight::F64(r) => r.wait_without_status(),
        }
    }
}

impl Flat {
    fn new(dtype: DType, len: usize) -> Flat {
        match dtype {
            DType::F32 => Flat::F32 { send: vec![0.0; len], recv: vec![0.0; len] },
            DType::F64 => Flat::F64 { send: vec![0.0; len], recv: vec![0.0; len] },
            DType::I64 => panic!("DistributedDataParallel: an i64 parameter has no gradient to reduce"),
        }
    }

    /// Writes `grad` (plus `extra`, a gradient accumulated before) at `offset`.
    #[track_caller]
    fn write(&mut self, offset: usize, grad: &Tensor, extra: Option<&Tensor>) {
        fn put<T: sinew_tensor::StorageElement + Copy + std::ops::AddAssign>(
            dst: &mut [T],
            grad: &Tensor,
            extra: Option<&Tensor>,
        ) {
            dst.copy_from_slice(&grad.contiguous_slice::<T>());
            if let Some(e) = extra {
                for (d, e) in dst.iter_mut().zip(e.contiguous_slice::<T>().iter()) {
                    *d += *e;
                }
            }
        }
        let n = grad.numel();
        match self {
            Flat::F32 { send, .. } => put(&mut send[offset..offset + n], grad, extra),
            Flat::F64 { send, .. } => put(&mut send[offset..offset + n], grad, extra),
        }
    }

    fn zero(&mut self, offset: usize, len: usize) {
        match self {
            Flat::F32 { send, .. } => send[offset..offset + len].fill(0.0),
            Flat::F64 { send, .. } => send[offset..offset + len].fill(0.0),
        }
    }

    /// Starts the bucket's all-reduce.
    fn start<'a, S: Scope<'a>>(&'a mut self, world: &World, scope: S) -> InFlight<'a, S> {
        let comm = world.communicator();
        match self {
            Flat::F32 { send, recv } => InFlight::F32(comm.immediate_all_reduce_into(
                scope,
                &send[..],
                &mut recv[..],
                SystemOperation::sum(),
            )),
            Flat::F64 { send, recv } => InFlight::F64(comm.immediate_all_reduce_into(
                scope,
                &send[..],
                &mut recv[..],
                SystemOperation::sum(),
            )),
        }
    }

    /// The reduced sum at `offset`, divided by `ranks`, as a tensor of shape `dims`.
    fn averaged(&self, offset: usize, dims: &[usize], ranks: usize) -> Tensor {
        let n: usize = dims.iter().product();
        let t = match self {
            Flat::F32 { recv, .. } => {
                let r = ranks as f32;
                Tensor::from_vec(recv[offset..offset + n].iter().map(|v| v / r).collect(), dims)
            }
            Flat::F64 { recv, .. } => {
                let r = ranks as f64;
                Tensor::from_vec(recv[offset..offset + n].iter().map(|v| v / r).collect(), dims)
            }
        };
        t.expect("a slot's length matches its shape")
    }
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
        let params = module.parameters();
        let plan = BucketPlan::new(&params, cap_bytes.max(1));
        let flats = plan.buckets.iter().map(|b| Flat::new(b.dtype, b.len)).collect();
        DistributedDataParallel {
            module,
            world: world.clone(),
            params,
            plan,
            flats: Mutex::new(flats),
            broadcast_buffers: AtomicBool::new(true),
            no_sync: AtomicBool::new(false),
            accumulated: Mutex::new(None),
            last: Mutex::new(ReductionStats::default()),
        }
    }

    /// Whether a forward that records a graph first broadcasts the buffers from rank 0
    /// (default `true`, PyTorch's `broadcast_buffers`). Off, each rank keeps its own
    /// running statistics.
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
            let acc = acc.get_or_insert_with(Gradients::new);
            for p in &self.params {
                if let Some(g) = grads.get_id(p.id()) {
                    match acc.get_id(p.id()) {
                        Some(prev) => {
                            let sum = prev + g;
                            acc.insert(p.id(), sum);
                        }
                        None => acc.insert(p.id(), g.clone()),
                    }
                }
            }
            return grads;
        }
        let accumulated = self.accumulated.lock().unwrap_or_else(|e| e.into_inner()).take();
        let mut flats = self.flats.lock().unwrap_or_else(|e| e.into_inner());
        let mut grads = self.reduce_during_backward(loss, &mut flats, accumulated.as_ref());
        let ranks = self.world.size();
        for (bucket, flat) in self.plan.buckets.iter().zip(flats.iter()) {
            for slot in &bucket.slots {
                grads.insert(slot.id, flat.averaged(slot.offset, &slot.dims, ranks));
            }
        }
        grads
    }

    /// The local backward pass, starting each bucket's all-reduce from the leaf-gradient
    /// hook as soon as the bucket is complete (and every earlier bucket started); returns
    /// once all the reductions have finished, their sums in the buffers' `recv` halves.
    fn reduce_during_backward(
        &self,
        loss: &Var,
        flats: &mut [Flat],
        accumulated: Option<&Gradients>,
    ) -> Gradients {
        let buckets = &self.plan.buckets;
        let mut missing: Vec<usize> = buckets.iter().map(|b| b.slots.len()).collect();
        let mut written: Vec<Vec<bool>> = buckets.iter().map(|b| vec![false; b.slots.len()]).collect();
        mpi::request::scope(|scope| {
            let mut ready: Vec<Option<&mut Flat>> = flats.iter_mut().map(Some).collect();
            let mut in_flight: Vec<Option<InFlight<'_, _>>> = Vec::with_capacity(buckets.len());
            let mut next = 0;
            let grads = loss
                .backward_pass()
                .on_leaf_gradient(|id: VarId, grad: &Tensor| {
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
                    let extra = accumulated.and_then(|a| a.get_id(id));
                    ready[b].as_mut().expect("a bucket is written before it starts").write(slot.offset, grad, extra);
                    written[b][s] = true;
                    missing[b] -= 1;
                    while next < buckets.len() && missing[next] == 0 {
                        let flat = ready[next].take().expect("each bucket starts once");
                        in_flight.push(Some(flat.start(&self.world, scope)));
                        next += 1;
                    }
                    // Open MPI moves a non-blocking collective forward only inside MPI calls
                    for r in in_flight.iter_mut() {
                        *r = r.take().and_then(InFlight::test);
                    }
                })
                .run();
            let started_during_backward = next;
            // parameters the pass did not reach: their accumulated gradient, or zeros
            for b in next..buckets.len() {
                let flat = ready[b].take().expect("each bucket starts once");
                for (s, slot) in buckets[b].slots.iter().enumerate() {
                    if !written[b][s] {
                        match accumulated.and_then(|a| a.get_id(slot.id)) {
                            Some(acc) => flat.write(slot.offset, acc, None),
                            None => flat.zero(slot.offset, slot.len()),
                        }
                    }
                }
                in_flight.push(Some(flat.start(&self.world, scope)));
            }
            for r in in_flight.into_iter().flatten() {
                r.wait();
            }
            let bytes = buckets.iter().map(|b| b.len * if b.dtype == DType::F32 { 4 } else { 8 }).sum();
            *self.last.lock().unwrap_or_else(|e| e.into_inner()) =
                ReductionStats { buckets: buckets.len(), started_during_backward, bytes };
            grads
        })
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
        if is_grad_enabled() && self.broadcast_buffers.load(Ordering::Relaxed) {
            for (_, b) in self.module.named_buffers() {
                self.world.broadcast(&mut b.value_mut(), 0);
            }
        }
        self.module.forward(x)
    }
}

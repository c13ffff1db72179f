//! [`World`]: this process's place among the ranks of an MPI job, and the collectives
//! sinew needs (all-reduce, broadcast, barrier), on tensors and slices.

use std::ffi::{c_int, c_void};
use std::sync::Arc;
use std::thread::ThreadId;

use mpi::Threading;
use mpi::collective::SystemOperation;
use mpi::datatype::Equivalence;
use mpi::environment::Universe;
use mpi::ffi;
use mpi::raw::AsRaw;
use mpi::topology::SimpleCommunicator;
use mpi::traits::{Communicator, CommunicatorCollectives, Root};
use sinew_autograd::Var;
use sinew_tensor::{DType, Tensor};

use crate::error::{DistributedError, Result};

/// The MPI job this process is part of: its rank among `size` processes, and the
/// collectives over all of them (`torch.distributed` with the MPI backend, over
/// `MPI_COMM_WORLD`).
///
/// [`World::init`] starts MPI once per process; the last clone dropped finalises it. A
/// collective must be called by every rank, in the same order: that is what keeps the
/// ranks in step. `World` is cheap to clone and can be shared with threads when the MPI
/// library runs with `MPI_THREAD_MULTIPLE` (Open MPI does); with a lower level, calling
/// it from a thread other than the one that initialised MPI panics rather than corrupting
/// MPI's state.
///
/// A panic on any rank after `init` aborts the whole job (`MPI_Abort`), so the other
/// ranks exit with an error instead of waiting forever in their next collective.
///
/// ```no_run
/// use sinew_distributed::World;
/// use sinew_tensor::Tensor;
///
/// let world = World::init()?; // run under `mpirun -np N`
/// let mine = Tensor::full(&[3], world.rank() as f64);
/// let total = world.all_reduce_sum(&mine); // 0 + 1 + ... + (N - 1), on every rank
/// assert_eq!(total.to_vec::<f64>()[0], (0..world.size()).sum::<usize>() as f64);
/// # Ok::<(), sinew_distributed::DistributedError>(())
/// ```
#[derive(Clone)]
pub struct World {
    inner: Arc<Inner>,
}

/// A communicator and this process's place in it.
struct Inner {
    /// Freed (for a duplicate) before `env` can finalise MPI.
    comm: SimpleCommunicator,
    rank: usize,
    size: usize,
    env: Arc<Env>,
}

/// MPI itself: finalised when the last communicator that needs it is gone.
struct Env {
    threading: Threading,
    init_thread: ThreadId,
    /// The address that stands for `MPI_IN_PLACE` in this MPI library, if known.
    in_place: Option<usize>,
    _universe: Universe,
}

// SAFETY: the MPI handles are plain values that MPI lets any thread use when it provides
// MPI_THREAD_MULTIPLE; below that level every method first checks (`check_thread`) that it
// runs on the thread that initialised MPI, so no MPI call is ever made from another
// thread. Dropping (MPI_Comm_free, MPI_Finalize) is the one call that can happen
// elsewhere, and MPI requires only that nothing else is in flight on that communicator
// then, which holding the last handle gives.
unsafe impl Send for Inner {}
// SAFETY: as for Send: concurrent calls happen only with MPI_THREAD_MULTIPLE.
unsafe impl Sync for Inner {}
// SAFETY: as for Inner.
unsafe impl Send for Env {}
// SAFETY: as for Inner.
unsafe impl Sync for Env {}

impl std::fmt::Debug for World {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("World")
            .field("rank", &self.inner.rank)
            .field("size", &self.inner.size)
            .field("threading", &self.inner.env.threading)
            .finish()
    }
}

impl World {
    /// Initialises MPI (asking for `MPI_THREAD_MULTIPLE`) and installs the panic hook that
    /// aborts the job when this rank panics. Run the program under `mpirun -np N`; started
    /// alone, it is a world of one.
    ///
    /// # Errors
    /// [`DistributedError::AlreadyInitialized`] if MPI was initialised before.
    pub fn init() -> Result<World> {
        let (universe, threading) = mpi::initialize_with_threading(Threading::Multiple)
            .ok_or(DistributedError::AlreadyInitialized)?;
        let comm = universe.world();
        let (rank, size) = (comm.rank() as usize, comm.size() as usize);
        install_abort_on_panic(rank);
        let in_place = in_place_sentinel(&mpi::environment::library_version().unwrap_or_default());
        let env = Arc::new(Env {
            threading,
            init_thread: std::thread::current().id(),
            in_place,
            _universe: universe,
        });
        Ok(World { inner: Arc::new(Inner { comm, rank, size, env }) })
    }

    /// A world over the same ranks with a communicator of its own (`MPI_Comm_dup`): its
    /// collectives never match the original's, so two threads can each run collectives
    /// on one of them at the same time without mixing them up. Every rank must call it.
    pub fn duplicate(&self) -> World {
        let comm = self.communicator().duplicate();
        World {
            inner: Arc::new(Inner {
                comm,
                rank: self.inner.rank,
                size: self.inner.size,
                env: self.inner.env.clone(),
            }),
        }
    }

    /// This process's rank, `0..size`.
    pub fn rank(&self) -> usize {
        self.inner.rank
    }

    /// The number of ranks.
    pub fn size(&self) -> usize {
        self.inner.size
    }

    /// Whether this is rank 0, the one that logs and writes checkpoints.
    pub fn is_root(&self) -> bool {
        self.inner.rank == 0
    }

    /// The thread support MPI provides (`Multiple` lets any thread call collectives).
    pub fn threading(&self) -> Threading {
        self.inner.env.threading
    }

    /// The communicator, for collectives this type does not wrap.
    pub fn communicator(&self) -> &SimpleCommunicator {
        self.check_thread();
        &self.inner.comm
    }

    /// Waits until every rank has called it.
    pub fn barrier(&self) {
        self.communicator().barrier();
    }

    /// Ends the whole job now with `code` (`MPI_Abort`): every rank exits.
    pub fn abort(&self, code: i32) -> ! {
        self.inner.comm.abort(code)
    }

    #[track_caller]
    fn check_thread(&self) {
        let env = &self.inner.env;
        if env.threading != Threading::Multiple {
            assert_eq!(
                std::thread::current().id(),
                env.init_thread,
                "World: MPI provides {:?} thread support, so it is called only from the thread that ran World::init",
                env.threading
            );
        }
    }

    /// Sums `values` element by element over all ranks, in place (`MPI_Allreduce` with
    /// `MPI_IN_PLACE`, which spares MPI the copy of a separate send buffer into the
    /// result; through a copy of `values` with an MPI library whose `MPI_IN_PLACE` is not
    /// known).
    ///
    /// # Panics
    /// If `values` has more than `i32::MAX` elements (MPI counts are C `int`s).
    pub fn all_reduce_sum_slice<T: Equivalence + Copy>(&self, values: &mut [T]) {
        let comm = self.communicator();
        let Some(in_place) = self.inner.env.in_place else {
            let send = values.to_vec();
            comm.all_reduce_into(&send[..], values, SystemOperation::sum());
            return;
        };
        let count =
            c_int::try_from(values.len()).expect("World: an all-reduce of more than i32::MAX elements");
        // SAFETY: `in_place` is this library's MPI_IN_PLACE (in_place_sentinel), with which
        // MPI_Allreduce reads and writes `values` only: `count` elements of `T`'s datatype
        // at a pointer valid for them, borrowed mutably for the whole (blocking) call.
        unsafe {
            ffi::MPI_Allreduce(
                in_place as *const c_void,
                values.as_mut_ptr().cast::<c_void>(),
                count,
                T::equivalent_datatype().as_raw(),
                SystemOperation::sum().as_raw(),
                comm.as_raw(),
            );
        }
    }

    /// The element-wise sum of `t` over all ranks (`dist.all_reduce(t, SUM)`); `t` must
    /// have the same shape and dtype on every rank.
    pub fn all_reduce_sum(&self, t: &Tensor) -> Tensor {
        let mut out = t.contiguous();
        match out.dtype() {
            DType::F32 => self.all_reduce_sum_slice(out.as_mut_slice::<f32>()),
            DType::F64 => self.all_reduce_sum_slice(out.as_mut_slice::<f64>()),
            DType::I64 => self.all_reduce_sum_slice(out.as_mut_slice::<i64>()),
        }
        out
    }

    /// [`all_reduce_sum`](World::all_reduce_sum) as a differentiable op: the gradient of
    /// each rank's input is the sum over ranks of the gradients of the output, so the
    /// backward pass is an all-reduce too (run by every rank, as the forward was). This
    /// is what makes [`SyncBatchNorm`](crate::SyncBatchNorm)'s statistics differentiable.
    pub fn all_reduce_sum_var(&self, x: &Var) -> Var {
        let world = self.clone();
        Var::from_op("all_reduce_sum", self.all_reduce_sum(x.value()), &[x], move |ctx| {
            vec![Some(world.all_reduce_sum_var(ctx.grad))]
        })
    }

    /// The largest and smallest of `value` over all ranks.
    pub fn all_reduce_min_max(&self, value: u64) -> (u64, u64) {
        let (mut min, mut max) = (0u64, 0u64);
        self.communicator().all_reduce_into(&value, &mut min, SystemOperation::min());
        self.communicator().all_reduce_into(&value, &mut max, SystemOperation::max());
        (min, max)
    }

    /// Overwrites `values` on every rank with rank `root`'s (`MPI_Bcast`).
    pub fn broadcast_slice<T: Equivalence>(&self, values: &mut [T], root: usize) {
        self.communicator().process_at_rank(root as i32).broadcast_into(values);
    }

    /// Overwrites `t` on every rank with rank `root`'s (`dist.broadcast(t, root)`); `t`
    /// must have the same shape and dtype on every rank.
    pub fn broadcast(&self, t: &mut Tensor, root: usize) {
        match t.dtype() {
            DType::F32 => self.broadcast_slice(t.as_mut_slice::<f32>(), root),
            DType::F64 => self.broadcast_slice(t.as_mut_slice::<f64>(), root),
            DType::I64 => self.broadcast_slice(t.as_mut_slice::<i64>(), root),
        }
    }

    /// Checks that `value` is the same on every rank.
    ///
    /// # Errors
    /// [`DistributedError::Mismatch`] naming `what` if it is not.
    pub fn check_same(&self, what: &str, value: u64) -> Result<()> {
        let (min, max) = self.all_reduce_min_max(value);
        if min == max {
            Ok(())
        } else {
            Err(DistributedError::Mismatch {
                what: what.to_string(),
                detail: format!(
                    "rank {} has {value:#018x}; the ranks range over {min:#018x}..={max:#018x}",
                    self.rank()
                ),
            })
        }
    }
}

/// The address of `MPI_IN_PLACE` in the MPI library that `library_version` describes.
/// It is a C macro, not a symbol, so rsmpi cannot export it; the libraries' ABIs fix it:
/// `(void *) 1` in Open MPI, `(void *) -1` in MPICH and the libraries built on it (Intel
/// MPI, MVAPICH, Cray MPICH). Unknown libraries get `None` (no in-place collectives).
fn in_place_sentinel(library_version: &str) -> Option<usize> {
    if library_version.starts_with("Open MPI") {
        Some(1)
    } else if ["MPICH", "Intel(R) MPI", "MVAPICH"].iter().any(|name| library_version.contains(name)) {
        Some(usize::MAX)
    } else {
        None
    }
}

/// After the default report of a panic, end the whole job: without this, the other ranks
/// would wait forever in their next collective for a rank that is gone.
fn install_abort_on_panic(rank: usize) {
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        previous(info);
        if mpi::environment::is_initialized() && !mpi::environment::is_finalized() {
            eprintln!("sinew-distributed: rank {rank} panicked; aborting the MPI job");
            SimpleCommunicator::world().abort(101);
        }
    }));
}

#[cfg(test)]
mod tests {
    use super::in_place_sentinel;

    #[test]
    fn mpi_in_place_is_known_for_open_mpi_and_mpich_only() {
        let open_mpi =
            "Open MPI v4.1.4, package: Debian OpenMPI, ident: 4.1.4, repo rev: v4.1.4, May 26, 2022";
        assert_eq!(in_place_sentinel(open_mpi), Some(1));
        assert_eq!(in_place_sentinel("MPICH Version:\t4.0.2\nMPICH Release date: ..."), Some(usize::MAX));
        assert_eq!(in_place_sentinel("Intel(R) MPI Library 2021.6 for Linux* OS"), Some(usize::MAX));
        assert_eq!(in_place_sentinel("Some Other MPI 1.0"), None);
        assert_eq!(in_place_sentinel(""), None);
    }
}

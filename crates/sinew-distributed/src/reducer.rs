//! A bucket's flat buffers ([`Flat`]) and where their all-reduce runs ([`Reducer`]): on
//! a thread of its own, so that it overlaps the rest of the backward pass, or inline.

use std::sync::mpsc::{Receiver, Sender, channel};
use std::thread::JoinHandle;

use mpi::Threading;
use mpi::datatype::Equivalence;
use sinew_tensor::{DType, Float, StorageElement, Tensor};

use crate::world::World;

/// A bucket's flat buffer: its gradients, divided by the number of ranks, are written
/// into it, MPI sums it over the ranks in place, and its views become the averaged
/// gradients. It stays allocated from step to step (fresh memory costs MPI page faults
/// and page pinning at every step); it is written in place when the caller has dropped
/// the last step's gradients, and copied on write when it still holds them. One buffer,
/// not a send and a receive buffer: the fill takes the place of the copy of the send
/// buffer into the result that MPI makes otherwise, so the bucketed path moves no more
/// bytes than one raw `MPI_Allreduce` does.
pub(crate) struct Flat {
    buffer: Tensor,
}

/// One parameter's part of a bucket: its gradient (and a gradient accumulated under
/// `no_sync`) to write at `offset`, zeros where it has neither.
pub(crate) struct Part {
    pub(crate) offset: usize,
    pub(crate) len: usize,
    pub(crate) grad: Option<Tensor>,
    pub(crate) extra: Option<Tensor>,
}

impl Flat {
    pub(crate) fn new(dtype: DType, len: usize) -> Flat {
        assert!(dtype != DType::I64, "DistributedDataParallel: an i64 parameter has no gradient to reduce");
        Flat { buffer: Tensor::zeros_dtype(&[len], dtype) }
    }

    /// Fills the bucket from `parts`, each gradient divided by `ranks` on the way in (as
    /// PyTorch divides before reducing, so that the reduced buffer is the average), and
    /// sums it over the ranks (one in-place `MPI_Allreduce`).
    fn fill_and_reduce(&mut self, parts: &[Part], ranks: usize, world: &World) {
        match self.buffer.dtype() {
            DType::F32 => fill_and_reduce(self.buffer.as_mut_slice::<f32>(), parts, ranks, world),
            DType::F64 => fill_and_reduce(self.buffer.as_mut_slice::<f64>(), parts, ranks, world),
            DType::I64 => unreachable!("Flat::new refuses i64"),
        }
    }

    /// The reduced buffer, a flat tensor: the gradients are views of it.
    pub(crate) fn reduced(&self) -> &Tensor {
        &self.buffer
    }
}

fn fill_and_reduce<T: Float + StorageElement + Equivalence>(
    buffer: &mut [T],
    parts: &[Part],
    ranks: usize,
    world: &World,
) {
    // Each term is the correctly rounded quotient g / ranks, as PyTorch's. With a power of
    // two ranks, 1 / ranks is exact, so the product with it is that same quotient (both
    // round the same real number), and a product is cheaper than a division.
    let divisor = T::from_f64(ranks as f64);
    let reciprocal = ranks.is_power_of_two().then(|| T::ONE / divisor);
    for p in parts {
        let dst = &mut buffer[p.offset..p.offset + p.len];
        let g = p.grad.as_ref().map(|g| g.contiguous_slice::<T>());
        let e = p.extra.as_ref().map(|e| e.contiguous_slice::<T>());
        let (g, e) = (g.as_deref(), e.as_deref());
        match reciprocal {
            Some(r) => average_into(dst, g, e, |x| x * r),
            None => average_into(dst, g, e, |x| x / divisor),
        }
    }
    world.all_reduce_sum_slice(buffer);
}

/// `dst = scale(g + e)` of whichever of the two gradients there are, zeros for neither.
#[inline(always)]
fn average_into<T: Float>(dst: &mut [T], g: Option<&[T]>, e: Option<&[T]>, scale: impl Fn(T) -> T) {
    sinew_tensor::simd::vectorized(|| match (g, e) {
        (Some(g), None) | (None, Some(g)) => dst.iter_mut().zip(g).for_each(|(d, &g)| *d = scale(g)),
        (Some(g), Some(e)) => dst.iter_mut().zip(g.iter().zip(e)).for_each(|(d, (&g, &e))| *d = scale(g + e)),
        (None, None) => dst.fill(T::ZERO),
    });
}

/// Where buckets are all-reduced.
pub(crate) enum Reducer {
    /// A thread of its own, with a duplicate communicator (so that its collectives never
    /// interleave with the caller's, such as `SyncBatchNorm`'s during the same backward
    /// pass), running each bucket's blocking all-reduce while the caller's backward pass
    /// goes on: PyTorch's MPI backend works the same way, and MPI's blocking collectives
    /// are its fastest (Open MPI's non-blocking ones progress only inside MPI calls and use
    /// slower algorithms). Needs `MPI_THREAD_MULTIPLE`.
    Thread(ReduceThread),
    /// On the calling thread, when it is handed the bucket (no overlap).
    Inline(World),
}

/// A bucket to fill and reduce on the reduction thread.
struct Job {
    bucket: usize,
    flat: Flat,
    parts: Vec<Part>,
}

pub(crate) struct ReduceThread {
    jobs: Option<Sender<Job>>,
    done: Receiver<(usize, Flat)>,
    handle: Option<JoinHandle<()>>,
    /// Buckets handed over and not yet collected.
    pending: usize,
}

impl Reducer {
    /// A thread if MPI allows calls from any thread, else inline. Collective: every rank
    /// must call it (it duplicates the communicator).
    pub(crate) fn new(world: &World) -> Reducer {
        if world.threading() != Threading::Multiple {
            return Reducer::Inline(world.clone());
        }
        let comm = world.duplicate();
        let (jobs, queue) = channel::<Job>();
        let (finished, done) = channel();
        let handle = std::thread::Builder::new()
            .name("sinew-ddp-reduce".into())
            .spawn(move || {
                for Job { bucket, mut flat, parts } in queue {
                    flat.fill_and_reduce(&parts, comm.size(), &comm);
                    drop(parts); // let go of the gradients before handing the bucket back
                    if finished.send((bucket, flat)).is_err() {
                        return;
                    }
                }
            })
            .expect("DistributedDataParallel: could not spawn the reduction thread");
        Reducer::Thread(ReduceThread { jobs: Some(jobs), done, handle: Some(handle), pending: 0 })
    }

    /// Starts (or, inline, runs) filling bucket `bucket` from `parts` and reducing it;
    /// `slot` is where it comes back.
    pub(crate) fn submit(
        &mut self,
        bucket: usize,
        mut flat: Flat,
        parts: Vec<Part>,
        slot: &mut Option<Flat>,
    ) {
        match self {
            Reducer::Thread(t) => {
                let job = Job { bucket, flat, parts };
                t.jobs.as_ref().expect("the thread runs").send(job).expect("the reduction thread is alive");
                t.pending += 1;
            }
            Reducer::Inline(world) => {
                flat.fill_and_reduce(&parts, world.size(), world);
                *slot = Some(flat);
            }
        }
    }

    /// Waits for every submitted bucket and puts each back in its slot.
    pub(crate) fn collect(&mut self, slots: &mut [Option<Flat>]) {
        if let Reducer::Thread(t) = self {
            while t.pending > 0 {
                let (b, flat) = t.done.recv().expect("the reduction thread is alive");
                slots[b] = Some(flat);
                t.pending -= 1;
            }
        }
    }
}

impl Drop for ReduceThread {
    fn drop(&mut self) {
        self.jobs.take(); // the thread's loop ends
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

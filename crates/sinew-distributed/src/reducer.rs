//! A bucket's flat buffers ([`Flat`]) and where their all-reduce runs ([`Reducer`]): on
//! a thread of its own, so that it overlaps the rest of the backward pass, or inline.

use std::sync::mpsc::{Receiver, Sender, channel};
use std::thread::JoinHandle;

use mpi::Threading;
use mpi::collective::SystemOperation;
use mpi::datatype::Equivalence;
use mpi::traits::CommunicatorCollectives;
use sinew_tensor::{DType, StorageElement, Tensor};

use crate::world::World;

/// A bucket's buffers: its gradients, divided by the number of ranks, are written into
/// `send`; MPI sums them into `recv`, whose views become the averaged gradients.
/// Both stay allocated from step to step (fresh memory costs MPI page faults and page
/// pinning at every step); `recv` is written in place when the caller has dropped the
/// last step's gradients, and copied on write when it still holds them.
pub(crate) struct Flat {
    send: SendBuffer,
    recv: Tensor,
}

/// The send buffer of a bucket of either float type.
enum SendBuffer {
    F32(Vec<f32>),
    F64(Vec<f64>),
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
        let send = match dtype {
            DType::F32 => SendBuffer::F32(vec![0.0; len]),
            DType::F64 => SendBuffer::F64(vec![0.0; len]),
            DType::I64 => panic!("DistributedDataParallel: an i64 parameter has no gradient to reduce"),
        };
        Flat { send, recv: Tensor::zeros_dtype(&[len], dtype) }
    }

    /// Fills the bucket from `parts`, each gradient divided by `ranks` on the way in (as
    /// PyTorch divides before reducing, so that the reduced buffer is the average), and
    /// sums it over the ranks (one `MPI_Allreduce`).
    fn fill_and_reduce(&mut self, parts: &[Part], ranks: usize, world: &World) {
        match &mut self.send {
            SendBuffer::F32(send) => {
                fill_and_reduce(send, self.recv.as_mut_slice::<f32>(), parts, ranks as f32, world)
            }
            SendBuffer::F64(send) => {
                fill_and_reduce(send, self.recv.as_mut_slice::<f64>(), parts, ranks as f64, world)
            }
        }
    }

    /// The reduced buffer, a flat tensor: the gradients are views of it.
    pub(crate) fn reduced(&self) -> &Tensor {
        &self.recv
    }
}

fn fill_and_reduce<T>(send: &mut [T], recv: &mut [T], parts: &[Part], ranks: T, world: &World)
where
    T: StorageElement + Equivalence + Copy + Default + std::ops::Add<Output = T> + std::ops::Div<Output = T>,
{
    // the division stays a division (not a product with 1/ranks), so that each term is
    // the correctly rounded quotient, as PyTorch's
    for p in parts {
        let dst = &mut send[p.offset..p.offset + p.len];
        let g = p.grad.as_ref().map(|g| g.contiguous_slice::<T>());
        let e = p.extra.as_ref().map(|e| e.contiguous_slice::<T>());
        match (g, e) {
            (Some(g), None) | (None, Some(g)) => {
                dst.iter_mut().zip(g.iter()).for_each(|(d, &g)| *d = g / ranks)
            }
            (Some(g), Some(e)) => {
                dst.iter_mut().zip(g.iter().zip(e.iter())).for_each(|(d, (&g, &e))| *d = (g + e) / ranks);
            }
            (None, None) => dst.fill(T::default()),
        }
    }
    world.communicator().all_reduce_into(&send[..], recv, SystemOperation::sum());
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

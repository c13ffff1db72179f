//! # sinew-distributed
//!
//! Data-parallel training for the sinew deep-learning library across processes and
//! machines, on MPI (through the [`mpi`](https://docs.rs/mpi) crate, rsmpi), with
//! PyTorch's `torch.distributed` semantics:
//!
//! - `World`: this process's rank in the MPI job and the collectives (all-reduce,
//!   broadcast, barrier) on tensors; a panic on one rank aborts the job instead of
//!   leaving the others waiting.
//! - `DistributedDataParallel`: parameters and buffers broadcast from rank 0 at the
//!   start; after backward, gradients averaged by bucketed all-reduce (25 MiB buckets
//!   flattened into contiguous buffers, each started from the backward pass as soon as its
//!   gradients are final); `no_sync` for gradient accumulation; a digest check that every
//!   replica is bit-identical. `Trainer::data_parallel` (sinew-train) runs `fit` on every
//!   rank through it.
//! - `SyncBatchNorm`: batch statistics of the global batch, with their backward.
//! - [`DistributedSampler`] (from `sinew-data`): each rank a disjoint shard of the data,
//!   reshuffled identically on every rank each epoch.
//!
//! Everything that talks to MPI is behind the crate's `mpi` feature (the facade's
//! `distributed` feature), which needs an MPI library to build against: on Debian,
//! `apt-get install libopenmpi-dev openmpi-bin libclang-dev`. Without it the crate holds
//! only what needs no MPI (the sampler, the bucket plan, the digest), so a workspace that
//! depends on it still builds everywhere.
//!
//! ```no_run
//! # #[cfg(feature = "mpi")] {
//! use sinew_autograd::Var;
//! use sinew_data::{DataLoader, datasets};
//! use sinew_distributed::{DistributedDataParallel, DistributedSampler, World};
//! use sinew_nn::loss::{CrossEntropyOptions, cross_entropy};
//! use sinew_nn::{Forward, Linear, Module, Relu, Sequential};
//! use sinew_optim::{Optimizer, Sgd};
//! use sinew_tensor::Generator;
//!
//! // run with: mpirun -np 2 target/release/examples/...
//! let world = World::init().expect("MPI");
//! let mut g = Generator::new(0);
//! let net = Sequential::new().add(Linear::new(64, 32, &mut g)).add(Relu).add(Linear::new(32, 10, &mut g));
//! let model = DistributedDataParallel::new(&world, net); // rank 0's weights everywhere
//! let mut opt = Sgd::new(model.parameters(), 0.1);
//! // a global batch of 64: 64 / size samples per rank, from this rank's shard
//! let shard = DistributedSampler::new(world.size(), world.rank()).seed(1);
//! let loader = DataLoader::new(datasets::digits(), 64 / world.size()).sampler(shard);
//! for _epoch in 0..3 {
//!     for (x, y) in &loader {
//!         let loss = cross_entropy(&model.forward(&Var::constant(x)), &y, &CrossEntropyOptions::default());
//!         let grads = model.backward(&loss); // averaged over the ranks
//!         opt.step(&grads);
//!     }
//! }
//! model.check_in_sync().expect("replicas are bit-identical");
//! # }
//! ```
//!
//! See `docs/distributed.md` for running on one machine and on several.

mod bucket;
#[cfg(feature = "mpi")]
mod ddp;
mod digest;
#[cfg(feature = "mpi")]
mod error;
#[cfg(feature = "mpi")]
mod reducer;
#[cfg(feature = "mpi")]
mod sync_batch_norm;
#[cfg(feature = "mpi")]
mod world;

pub use bucket::{Bucket, BucketPlan, DEFAULT_BUCKET_CAP_BYTES, Slot};
pub use digest::state_digest;
pub use sinew_data::{DistributedSampler, Sampler};

#[cfg(feature = "mpi")]
pub use ddp::{DistributedDataParallel, NoSync, ReductionStats};
#[cfg(feature = "mpi")]
pub use error::{DistributedError, Result};
#[cfg(feature = "mpi")]
pub use mpi;
#[cfg(feature = "mpi")]
pub use sync_batch_norm::SyncBatchNorm;
#[cfg(feature = "mpi")]
pub use world::World;

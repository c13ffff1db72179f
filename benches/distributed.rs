//! Data-parallel speed, run under MPI by `benches/distributed.sh` (which runs every
//! configuration in one sitting and prints the table):
//!
//! - `allreduce`: the time to average a model's gradients through
//!   `DistributedDataParallel`'s buckets (each gradient divided by the rank count into a
//!   flat bucket buffer, one in-place `MPI_Allreduce` per bucket on the reduction thread,
//!   the averaged gradients views of the buffers), against one raw `MPI_Allreduce` of the
//!   same bytes in one buffer (separate send and receive buffers, as a user calls it; and
//!   in place, MPI's least work); 1, 25 and 100 MiB of f32 gradients in parameters of
//!   1 MiB.
//! - `train`: samples per second of the anchor MLP (784-512-256-10, SGD momentum, global
//!   batch 128) and the CIFAR-size CNN (global batch 64, BatchNorm per rank as PyTorch
//!   DDP's default, SGD momentum 0.9, lr 0.01): with N ranks, each rank trains on
//!   `batch / N` through `DistributedDataParallel`; with one rank, plain one-process
//!   training on the whole batch (what a user would run), with `SINEW_THREADS` threads.
//!
//! Not criterion: every rank must time the same number of steps, since each step is a
//! collective. Each figure is the median of 7 repetitions after a warm-up, taken on
//! rank 0.

#[path = "anchors.rs"]
#[allow(dead_code)]
mod anchors;

use std::time::Instant;

use sinew_autograd::{Gradients, Var};
use sinew_distributed::{DistributedDataParallel, World};
use sinew_nn::{Forward, Linear, Module, Sequential};
use sinew_optim::{Optimizer, Sgd};
use sinew_tensor::{DType, Generator, Tensor};

const REPS: usize = 7;

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// Seconds per call of `f`, the median over repetitions of `iters` calls, with every rank
/// starting each repetition together.
fn time(world: &World, iters: usize, mut f: impl FnMut()) -> f64 {
    for _ in 0..2 {
        f();
    }
    let reps = (0..REPS)
        .map(|_| {
            world.barrier();
            let t = Instant::now();
            for _ in 0..iters {
                f();
            }
            t.elapsed().as_secs_f64() / iters as f64
        })
        .collect();
    median(reps)
}

fn allreduce(world: &World) {
    const MIB: usize = 1024 * 1024;
    let sizes: Vec<usize> = match std::env::var("SINEW_ALLREDUCE_MIB") {
        Ok(list) => {
            list.split(',').map(|m| m.trim().parse().expect("SINEW_ALLREDUCE_MIB: sizes in MiB")).collect()
        }
        Err(_) => vec![1, 25, 100],
    };
    for mib in sizes {
        // parameters of 1 MiB each (256 × 1024 f32)
        let mut g = Generator::new(0);
        let mut net = Sequential::new();
        for _ in 0..mib {
            net = net.add(Linear::with_bias(1024, 256, false, &mut g));
        }
        let ddp = DistributedDataParallel::new(world, net);
        let grads: Gradients = {
            let mut gr = Gradients::new();
            for p in ddp.parameters() {
                gr.insert(p.id(), Tensor::randn_with(p.value().dims(), DType::F32, &mut g));
            }
            gr
        };
        let iters = (200 / mib).clamp(3, 50);
        let bucketed = time(world, iters, || {
            std::hint::black_box(ddp.all_reduce_gradients(&grads));
        });
        let send = vec![1.0f32; mib * MIB / 4];
        let mut recv = vec![0.0f32; mib * MIB / 4];
        let raw = time(world, iters, || {
            use sinew_distributed::mpi::collective::SystemOperation;
            use sinew_distributed::mpi::traits::CommunicatorCollectives;
            world.communicator().all_reduce_into(&send[..], &mut recv[..], SystemOperation::sum());
        });
        recv.fill(0.0); // zeros stay zeros, however often they are summed in place
        let in_place = time(world, iters, || world.all_reduce_sum_slice(&mut recv[..]));
        if world.is_root() {
            println!(
                "  (raw MPI_Allreduce in place: {:.3} ms; bucketed {:.0}% of it)",
                in_place * 1e3,
                100.0 * in_place / bucketed
            );
            let gbs = |t: f64| (mib * MIB) as f64 / t / 1e9;
            println!(
                "allreduce {mib:3} MiB on {} ranks: raw MPI_Allreduce {:8.3} ms ({:5.2} GB/s), bucketed {:8.3} ms \
                 ({:5.2} GB/s, {} buckets): {:.0}% of raw",
                world.size(),
                raw * 1e3,
                gbs(raw),
                bucketed * 1e3,
                gbs(bucketed),
                ddp.buckets().buckets.len(),
                100.0 * raw / bucketed
            );
        }
    }
}

/// Samples per second of `steps` training steps of `model` on a global `batch`.
fn train<M: Forward + 'static>(
    world: &World,
    name: &str,
    model: M,
    input: &[usize],
    batch: usize,
    lr: f64,
    iters: usize,
) {
    let mut g = Generator::new(1 + world.rank() as u64);
    let local = batch / world.size();
    let mut shape = vec![local];
    shape.extend_from_slice(input);
    let x = Var::constant(Tensor::randn_with(&shape, DType::F32, &mut g));
    let y = Tensor::from_vec((0..local as i64).map(|i| i % 10).collect(), &[local]).unwrap();
    // every rank training alone on its share of the batch, all at once: the step without
    // its communication (with one rank, the whole run)
    let local_seconds = {
        let mut opt = Sgd::momentum(model.parameters(), lr, 0.9);
        time(world, iters, || {
            let loss = anchors::classify_loss(&model.forward(&x), &y);
            let grads = loss.backward();
            drop(loss);
            opt.step(&grads);
        })
    };
    let seconds = if world.size() == 1 {
        local_seconds
    } else {
        let ddp = DistributedDataParallel::new(world, model);
        let mut opt = Sgd::momentum(ddp.parameters(), lr, 0.9);
        time(world, iters, || {
            let loss = anchors::classify_loss(&ddp.forward(&x), &y);
            let grads = ddp.backward(&loss);
            drop(loss);
            opt.step(&grads);
        })
    };
    if world.is_root() {
        println!(
            "train {name} on {} ranks x {} threads: {:8.1} samples/s ({:.2} ms a step; {:.2} ms of it computing \
             batch {local} alone)",
            world.size(),
            sinew_tensor::num_threads(),
            batch as f64 / seconds,
            seconds * 1e3,
            local_seconds * 1e3
        );
    }
}

fn main() {
    let world = World::init().expect("MPI initialises");
    let threads: usize = std::env::var("SINEW_THREADS").ok().and_then(|t| t.parse().ok()).unwrap_or(1);
    sinew_tensor::set_num_threads(threads);
    // cargo bench adds `--bench`
    let which = std::env::args().skip(1).find(|a| !a.starts_with("--")).unwrap_or_default();
    if (which.is_empty() || which == "allreduce") && world.size() > 1 {
        allreduce(&world);
    }
    if which.is_empty() || which == "train" {
        let mut g = Generator::new(0);
        train(&world, "mlp_784_512_256_10_b128_sgd", anchors::mlp(&mut g), &[784], 128, 0.01, 30);
        train(&world, "cnn_cifar_bn_b64_sgd", anchors::cifar_cnn(&mut g), &[3, 32, 32], 64, 0.01, 5);
    }
}

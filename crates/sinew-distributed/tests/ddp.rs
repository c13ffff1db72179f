//! Data-parallel training equals one-process training. Run under MPI (see .ci/run):
//!
//! ```text
//! CARGO_TARGET_X86_64_UNKNOWN_LINUX_GNU_RUNNER="mpirun --oversubscribe -np 3" \
//!     cargo test -p sinew-distributed --features mpi --test ddp
//! ```
//!
//! Every rank runs the same checks in the same order (a plain `main`, not libtest, whose
//! threads would interleave the collectives). A failed check panics, which aborts the
//! whole job, so `mpirun` fails. Every rank also trains, alone, the one-process reference
//! with the global batch, and compares its replica with it after every step.
//! `SINEW_EXPECT_RANKS=N` makes the run fail unless it really has N ranks.

use sinew_autograd::Var;
use sinew_data::{DataLoader, Dataset, DistributedSampler, TensorDataset, datasets};
use sinew_distributed::{DistributedDataParallel, SyncBatchNorm, World, state_digest};
use sinew_nn::loss::{CrossEntropyOptions, cross_entropy};
use sinew_nn::{BatchNorm2d, Conv2d, Flatten, Forward, Linear, MaxPool2d, Module, Relu, Sequential, Tanh};
use sinew_optim::{Adam, Optimizer, Sgd};
use sinew_tensor::{Conv2dOptions, DType, Generator, Tensor};
use sinew_train::metrics::{Accuracy, F1};
use sinew_train::{DataParallel, Loss, ModelCheckpoint, Trainer, Verbosity};

/// The global batch: divisible by 2 and 3 ranks.
const BATCH: usize = 60;
/// Samples used: a multiple of the batch, so no rank's shard needs padding.
const SAMPLES: usize = 1200;
const TOLERANCE: f64 = 1e-6;

fn digits(image: bool) -> TensorDataset {
    let all = datasets::digits();
    let ds = all.select(&(0..SAMPLES).collect::<Vec<_>>());
    ds.map_features(|x| {
        let x = x.to_dtype(DType::F64).div_scalar(16.0);
        if image { x.reshape(&[SAMPLES, 1, 8, 8]) } else { x }
    })
}

/// The largest absolute difference between two modules' parameters and buffers.
fn max_difference(a: &dyn Module, b: &dyn Module) -> f64 {
    let (sa, sb) = (a.state_dict(), b.state_dict());
    assert_eq!(sa.len(), sb.len());
    sa.iter()
        .zip(&sb)
        .map(|((na, ta), (nb, tb))| {
            assert_eq!(na, nb);
            (&ta.to_dtype(DType::F64) - &tb.to_dtype(DType::F64)).abs().max_all().item()
        })
        .fold(0.0, f64::max)
}

fn loss(model: &dyn Forward, x: Tensor, y: &Tensor) -> Var {
    cross_entropy(&model.forward(&Var::constant(x)), y, &CrossEntropyOptions::default())
}

/// Trains `make`'s model on the digits for `epochs`, one-process with the global batch and
/// data-parallel on `world` with `BATCH / size` per rank, checking after every step that
/// the replicas are bit-identical and equal to the one-process model.
fn train_both<M: Forward + 'static, O: Optimizer>(
    world: &World,
    what: &str,
    reference: M,
    replica: M,
    optimizer: impl Fn(Vec<sinew_autograd::Param>) -> O,
    image: bool,
    epochs: u64,
) -> DistributedDataParallel<M> {
    let (rank, size) = (world.rank(), world.size());
    let seed = 5;
    let whole = DataLoader::new(digits(image), BATCH).shuffle(true).seed(seed);
    let shard =
        DataLoader::new(digits(image), BATCH / size).sampler(DistributedSampler::new(size, rank).seed(seed));
    assert_eq!(whole.len(), shard.len());

    let mut ref_opt = optimizer(reference.parameters());
    let model = DistributedDataParallel::new(world, replica);
    assert!(
        max_difference(&reference, &model) == 0.0,
        "{what}: the broadcast gave every rank rank 0's weights"
    );
    let mut opt = optimizer(model.parameters());
    let mut worst = 0.0f64;
    for epoch in 0..epochs {
        for ((xg, yg), (x, y)) in whole.iter_epoch(epoch).zip(shard.iter_epoch(epoch)) {
            ref_opt.step(&loss(&reference, xg, &yg).backward());
            opt.step(&model.backward(&loss(&model, x, &y)));
            model.check_in_sync().unwrap_or_else(|e| panic!("{what}, epoch {epoch}: {e}"));
            worst = worst.max(max_difference(&reference, &model));
            assert!(
                worst <= TOLERANCE,
                "{what}, epoch {epoch}: replica differs from one-process training by {worst:e}"
            );
        }
    }
    if world.is_root() {
        println!("{what}: {epochs} epochs on {size} ranks, largest difference from one process {worst:.1e}");
    }
    model
}

fn mlp(seed: u64) -> Sequential {
    let mut g = Generator::new(seed);
    let net = Sequential::new().add(Linear::new(64, 32, &mut g)).add(Tanh).add(Linear::new(32, 10, &mut g));
    net.cast(DType::F64);
    net
}

/// Rank 0 builds the reference's weights; the other ranks start elsewhere, on purpose.
fn replica_seed(world: &World, seed: u64) -> u64 {
    if world.is_root() { seed } else { 1000 + world.rank() as u64 }
}

fn digits_mlp_equals_one_process(world: &World) {
    let sgd = |p| Sgd::momentum(p, 0.05, 0.9);
    train_both(world, "digits MLP, SGD momentum", mlp(0), mlp(replica_seed(world, 0)), sgd, false, 3);
}

fn cnn(seed: u64, bn: impl Forward + 'static) -> Sequential {
    let mut g = Generator::new(seed);
    let net = Sequential::new()
        .add(Conv2d::new(1, 6, 3, Conv2dOptions::default().padding(1), &mut g))
        .add(bn)
        .add(Relu)
        .add(MaxPool2d::new(2))
        .add(Flatten::new())
        .add(Linear::new(6 * 4 * 4, 10, &mut g));
    net.cast(DType::F64);
    net
}

fn batch_norm_cnn_with_sync_batch_norm_equals_one_process(world: &World) {
    let reference = cnn(1, BatchNorm2d::new(6));
    let replica = cnn(replica_seed(world, 1), SyncBatchNorm::new(6, world));
    let adam = |p| Adam::new(p, 1e-2);
    let model =
        train_both(world, "BatchNorm CNN with SyncBatchNorm, Adam", reference, replica, adam, true, 2);
    // the running statistics are the global batch's too: evaluation agrees
    model.eval();
    let x = digits(true).features().narrow(0, 0, 100);
    let out = sinew_autograd::no_grad(|| model.forward(&Var::constant(x)));
    let digest = state_digest(model.module());
    world.check_same("evaluation outputs", out.value().sum_all().item().to_bits() ^ digest).unwrap();
}

/// Plain BatchNorm under DDP keeps per-rank statistics (PyTorch's default), and the
/// buffers broadcast from rank 0 before every training forward keep replicas identical.
fn per_rank_batch_norm_stays_in_sync(world: &World) {
    let model = DistributedDataParallel::new(world, cnn(replica_seed(world, 2), BatchNorm2d::new(6)));
    let mut opt = Sgd::new(model.parameters(), 0.05);
    let shard =
        DataLoader::new(digits(true), 20).sampler(DistributedSampler::new(world.size(), world.rank()));
    for (x, y) in shard.iter().take(5) {
        opt.step(&model.backward(&loss(&model, x, &y)));
    }
    // each rank's last forward moved its running statistics by its own shard: they differ
    assert!(model.check_in_sync().is_err() == (world.size() > 1));
    // the next training forward starts from rank 0's: fed the same batch everywhere, every
    // rank then moves them alike
    let _ = model.forward(&Var::constant(digits(true).features().narrow(0, 0, 8)));
    model.check_in_sync().unwrap();
    // an evaluation-mode forward makes no collective call: rank 0 may run one alone
    model.eval();
    if world.is_root() {
        let _ = model.forward(&Var::constant(digits(true).features().narrow(0, 0, 2)));
    }
    world.barrier();
}

/// `no_sync` over three micro-batches, then one synchronised backward, equals one
/// synchronised backward of the whole batch.
fn no_sync_accumulates_then_reduces_once(world: &World) {
    let model = DistributedDataParallel::new(world, mlp(replica_seed(world, 3)));
    let data = digits(false);
    let (x, y) = data.get_batch(&(world.rank() * 24..(world.rank() + 1) * 24).collect::<Vec<_>>());
    let whole = model.backward(&loss(&model, x.clone(), &y).mul_scalar(4.0));
    {
        let _local = model.no_sync();
        for m in 0..3 {
            let local = model.backward(&loss(&model, x.narrow(0, 6 * m, 6), &y.narrow(0, 6 * m, 6)));
            assert!(local.len() == 4);
        }
    }
    let micro = model.backward(&loss(&model, x.narrow(0, 18, 6), &y.narrow(0, 18, 6)));
    for p in model.parameters() {
        let (a, b) = (whole.get_id(p.id()).unwrap(), micro.get_id(p.id()).unwrap());
        let diff = (a - b).abs().max_all().item();
        assert!(diff < 1e-12, "no_sync: accumulated gradients differ by {diff:e}");
    }
}

/// Buckets small enough that every parameter has its own give the same gradients as one
/// bucket: bit for bit on 2 ranks, to rounding on more (MPI picks its reduction algorithm,
/// hence the order of the sum, by message size).
fn bucket_size_does_not_change_the_result(world: &World) {
    let one = DistributedDataParallel::with_bucket_cap(world, mlp(4), 1 << 30);
    let many = DistributedDataParallel::with_bucket_cap(world, mlp(4), 1);
    assert_eq!(one.buckets().buckets.len(), 1);
    assert_eq!(many.buckets().buckets.len(), 4);
    let data = digits(false);
    let (x, y) = data.get_batch(&(world.rank() * 10..(world.rank() + 1) * 10).collect::<Vec<_>>());
    let (g1, g2) = (one.backward(&loss(&one, x.clone(), &y)), many.backward(&loss(&many, x, &y)));
    // one bucket per parameter, each started from inside the backward pass as its gradient is final
    let stats = many.last_reduction();
    assert_eq!((stats.buckets, stats.started_during_backward), (4, 4));
    assert_eq!(one.last_reduction().buckets, 1);
    // and reducing gradients computed by a plain backward goes through the same buckets
    let (x, y) = data.get_batch(&(world.rank() * 10..(world.rank() + 1) * 10).collect::<Vec<_>>());
    let g3 = many.all_reduce_gradients(&loss(&many, x, &y).backward());
    let same = |a: &Tensor, b: &Tensor| {
        let d = (a - b).abs().max_all().item();
        if world.size() <= 2 { d == 0.0 } else { d <= 1e-15 * a.abs().max_all().item().max(1.0) }
    };
    for (p1, p2) in one.parameters().iter().zip(many.parameters()) {
        let (a, b, c) =
            (g1.get_id(p1.id()).unwrap(), g2.get_id(p2.id()).unwrap(), g3.get_id(p2.id()).unwrap());
        assert!(same(a, b), "one bucket and one per parameter differ");
        assert!(same(b, c), "backward and all_reduce_gradients differ");
    }
}

/// `Trainer::fit` on every rank (`data_parallel`) with batches of `60 / size` equals a
/// one-process `fit` with batches of 60: parameters, training loss, accuracy and the
/// validation metrics (computed from counts over the ranks' disjoint validation parts);
/// only rank 0 writes checkpoints.
fn configured<'a>(
    model: &'a dyn Forward,
    opt: &'a mut Sgd,
    dp: Option<&'a dyn DataParallel>,
    batch: usize,
) -> Trainer<'a> {
    let trainer = Trainer::new(model, opt, Loss::CrossEntropy)
        .epochs(3)
        .batch_size(batch)
        .metric(Accuracy::default())
        .metric(F1::new(10))
        .validation_split(0.25) // 900 training samples: 15 batches of 60
        .verbosity(Verbosity::Quiet);
    match dp {
        Some(dp) => trainer.data_parallel(dp),
        None => trainer,
    }
}

fn trainer_fit_equals_one_process(world: &World) {
    let data = digits(false);
    let (x, y) = (data.features().clone(), data.targets().clone());
    let reference = mlp(6);
    let mut ref_opt = Sgd::momentum(reference.parameters(), 0.05, 0.9);
    let want = configured(&reference, &mut ref_opt, None, BATCH).fit(&x, &y);

    let model = DistributedDataParallel::new(world, mlp(replica_seed(world, 6)));
    let mut opt = Sgd::momentum(model.parameters(), 0.05, 0.9);
    // only rank 0 writes: only its folder exists
    let dir = std::env::temp_dir().join(format!("sinew-ddp-fit-{}", std::process::id()));
    if world.is_root() {
        std::fs::create_dir_all(&dir).unwrap();
    }
    let mut saver = ModelCheckpoint::new(dir.join("epoch-{epoch}.sinew"));
    let got =
        configured(&model, &mut opt, Some(&model), BATCH / world.size()).callback(&mut saver).fit(&x, &y);

    let params = max_difference(&reference, &model);
    assert!(params <= TOLERANCE, "fit: replica differs from one-process fit by {params:e}");
    model.check_in_sync().unwrap();
    for key in ["loss", "accuracy", "f1", "val_loss", "val_accuracy", "val_f1"] {
        for (epoch, (a, b)) in want.get(key).iter().zip(got.get(key)).enumerate() {
            assert!(
                (a - b).abs() <= 1e-9,
                "fit: {key} of epoch {epoch}: {a} one-process, {b} on {} ranks",
                world.size()
            );
        }
    }
    assert_eq!(want.get("val_accuracy"), got.get("val_accuracy"), "counts give exactly the same accuracy");
    assert_eq!(saver.saved.len(), if world.is_root() { 3 } else { 0 }, "rank 0 alone writes checkpoints");
    world.barrier();
    if world.is_root() {
        println!(
            "Trainer::fit on {} ranks: largest parameter difference from one process {params:.1e}, \
             validation accuracy {:.4} after 3 epochs (one process: {:.4})",
            world.size(),
            got.get("val_accuracy")[2],
            want.get("val_accuracy")[2]
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

/// gradcheck and gradgradcheck of `SyncBatchNorm` (training, f64) through the ranks: the
/// checked function is the loss summed over the ranks (one number, on every rank) as a
/// function of rank 0's input; the other ranks feed fixed data, so that perturbing rank
/// 0's input alone moves it, and check a zero function (their input's influence times 0)
/// that makes the same collective calls in the same order.
fn sync_batch_norm_gradcheck(world: &World) {
    let bn = SyncBatchNorm::new(3, world);
    bn.cast(DType::F64);
    let rank = world.rank() as u64;
    let data = Tensor::randn_with(&[2, 3, 2, 2], DType::F64, &mut Generator::new(10 + rank));
    let weights =
        Var::constant(Tensor::randn_with(&[2, 3, 2, 2], DType::F64, &mut Generator::new(20 + rank)));
    let f = |v: &[Var]| {
        let x =
            if world.is_root() { v[0].clone() } else { &Var::constant(data.clone()) + &v[0].mul_scalar(0.0) };
        let local = bn.forward(&x).mul(&weights).sum_all().reshape(&[1]);
        let total = world.all_reduce_sum_var(&local).sum_all();
        if world.is_root() { total } else { total.mul_scalar(0.0) }
    };
    let opts = sinew_autograd::GradcheckOptions::default();
    sinew_autograd::gradcheck(f, std::slice::from_ref(&data), opts)
        .unwrap_or_else(|e| panic!("SyncBatchNorm gradcheck: {e}"));
    sinew_autograd::gradgradcheck(f, std::slice::from_ref(&data), opts)
        .unwrap_or_else(|e| panic!("SyncBatchNorm gradgradcheck: {e}"));
    if world.is_root() {
        println!("SyncBatchNorm: gradcheck and gradgradcheck through {} ranks pass", world.size());
    }
}

fn collectives(world: &World) {
    let n = world.size();
    let mine = Tensor::full_dtype(&[2, 3], world.rank() as f64 + 1.0, DType::F32);
    let total = world.all_reduce_sum(&mine);
    assert_eq!(total.to_vec::<f32>(), vec![(n * (n + 1) / 2) as f32; 6]);
    let mut t = Tensor::full_dtype(&[4], world.rank() as f64, DType::I64);
    world.broadcast(&mut t, n - 1);
    assert_eq!(t.to_vec::<i64>(), vec![(n - 1) as i64; 4]);
    // the differentiable all-reduce: d/dx_r Σ_ranks Σ(all_reduce(x)) = size
    let x = Var::leaf(Tensor::full_dtype(&[3], 2.0, DType::F64));
    let g = world.all_reduce_sum_var(&x).sum_all().backward();
    assert_eq!(g.get(&x).unwrap().to_vec::<f64>(), vec![n as f64; 3]);
    assert!(world.check_same("a rank's number", world.rank() as u64).is_err() == (n > 1));
    world.barrier();
}

fn main() {
    let world = World::init().expect("MPI initialises");
    if let Ok(expected) = std::env::var("SINEW_EXPECT_RANKS") {
        assert_eq!(world.size().to_string(), expected, "the job has the wrong number of ranks");
    }
    sinew_tensor::set_num_threads(1); // one core per rank, as the job is laid out
    collectives(&world);
    sync_batch_norm_gradcheck(&world);
    digits_mlp_equals_one_process(&world);
    batch_norm_cnn_with_sync_batch_norm_equals_one_process(&world);
    per_rank_batch_norm_stays_in_sync(&world);
    no_sync_accumulates_then_reduces_once(&world);
    bucket_size_does_not_change_the_result(&world);
    trainer_fit_equals_one_process(&world);
    world.barrier();
    if world.is_root() {
        println!("ddp: every check passed on {} ranks", world.size());
    }
}

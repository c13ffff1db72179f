//! `Trainer::data_parallel` without MPI: two threads act as two ranks over an in-memory
//! all-reduce, and their `fit` equals a one-process `fit` with the global batch. (The
//! same over real MPI ranks is `sinew-distributed`'s `ddp` test.)

use std::sync::{Barrier, Mutex};

use sinew_autograd::{Gradients, Var};
use sinew_data::datasets;
use sinew_nn::{Linear, Module, Sequential, Tanh};
use sinew_optim::Sgd;
use sinew_tensor::{DType, Generator, Tensor};
use sinew_train::metrics::{Accuracy, ConfusionMatrix};
use sinew_train::{CsvLogger, DataParallel, History, Loss, Trainer, Verbosity};

/// Ranks that are threads: each `all_reduce_sum` posts its values, waits for the others,
/// and sums them all in rank order (so every rank gets the same bits).
struct Threads {
    size: usize,
    barrier: Barrier,
    posted: Mutex<Vec<Vec<f64>>>,
}

impl Threads {
    fn new(size: usize) -> Threads {
        Threads { size, barrier: Barrier::new(size), posted: Mutex::new(vec![Vec::new(); size]) }
    }

    fn all_reduce_sum(&self, rank: usize, values: &mut [f64]) {
        self.posted.lock().unwrap()[rank] = values.to_vec();
        self.barrier.wait();
        {
            let posted = self.posted.lock().unwrap();
            for (i, v) in values.iter_mut().enumerate() {
                *v = posted.iter().map(|p| p[i]).sum();
            }
        }
        self.barrier.wait(); // nobody posts the next call's values before all have read
    }
}

/// One thread's rank, with its replica's parameters.
struct Rank<'a> {
    rank: usize,
    threads: &'a Threads,
    model: &'a Sequential,
}

impl DataParallel for Rank<'_> {
    fn rank(&self) -> usize {
        self.rank
    }
    fn world_size(&self) -> usize {
        self.threads.size
    }
    fn backward(&self, loss: &Var) -> Gradients {
        let mut grads = loss.backward();
        let params = self.model.parameters();
        let mut flat: Vec<f64> =
            params.iter().flat_map(|p| grads.get_id(p.id()).unwrap().to_vec::<f64>()).collect();
        self.all_reduce_sum(&mut flat);
        let mut at = 0;
        for p in &params {
            let n = p.numel();
            let mean: Vec<f64> = flat[at..at + n].iter().map(|v| v / self.threads.size as f64).collect();
            grads.insert(p.id(), Tensor::from_vec(mean, p.value().dims()).unwrap());
            at += n;
        }
        grads
    }
    fn all_reduce_sum(&self, values: &mut [f64]) {
        self.threads.all_reduce_sum(self.rank, values);
    }
}

fn mlp() -> Sequential {
    let mut g = Generator::new(3);
    let net = Sequential::new().add(Linear::new(64, 16, &mut g)).add(Tanh).add(Linear::new(16, 10, &mut g));
    net.cast(DType::F64);
    net
}

fn fit(
    model: &Sequential,
    dp: Option<&dyn DataParallel>,
    batch: usize,
    csv: Option<&std::path::Path>,
) -> History {
    let ds = datasets::digits().select(&(0..600).collect::<Vec<_>>());
    let (x, y) = (ds.features().to_dtype(DType::F64).div_scalar(16.0), ds.targets().clone());
    let mut opt = Sgd::momentum(model.parameters(), 0.1, 0.9);
    let mut t = Trainer::new(model, &mut opt, Loss::CrossEntropy)
        .epochs(3)
        .batch_size(batch)
        .metric(Accuracy::default())
        .metric(ConfusionMatrix::new(10))
        .validation_split(0.25) // 450 training samples: 225 per rank, an odd shard size
        .verbosity(Verbosity::Quiet);
    if let Some(path) = csv {
        t = t.callback(CsvLogger::new(path));
    }
    if let Some(dp) = dp {
        t = t.data_parallel(dp);
    }
    t.fit(&x, &y)
}

#[test]
fn two_thread_ranks_fit_like_one_process_with_the_global_batch() {
    let reference = mlp();
    let want = fit(&reference, None, 30, None);

    let threads = Threads::new(2);
    let dir = std::env::temp_dir().join(format!("sinew-dp-threads-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let results: Vec<(History, Vec<(String, Tensor)>)> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..2)
            .map(|rank| {
                let (threads, dir) = (&threads, &dir);
                s.spawn(move || {
                    let model = mlp();
                    let dp = Rank { rank, threads, model: &model };
                    let csv = dir.join(format!("rank{rank}.csv"));
                    let history = fit(&model, Some(&dp), 15, Some(&csv));
                    (history, model.state_dict())
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for (rank, (history, state)) in results.iter().enumerate() {
        for key in ["loss", "accuracy", "confusion_matrix", "val_loss", "val_accuracy"] {
            for (a, b) in want.get(key).iter().zip(history.get(key)) {
                assert!((a - b).abs() < 1e-12, "rank {rank}, {key}: {a} one-process, {b} data-parallel");
            }
        }
        assert_eq!(want.get("val_accuracy"), history.get("val_accuracy"), "exact counts");
        for ((name, a), (_, b)) in reference.state_dict().iter().zip(state) {
            let d = (a - b).abs().max_all().item();
            assert!(d < 1e-12, "rank {rank}, {name} differs by {d:e}");
        }
    }
    assert!(dir.join("rank0.csv").exists(), "rank 0 logs");
    assert!(!dir.join("rank1.csv").exists(), "rank 1 writes no file");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Stops training when it is told to, on one rank only.
struct StopOn {
    rank: usize,
    me: usize,
    step: usize,
}

impl sinew_train::Callback for StopOn {
    fn on_batch_end(&mut self, step: usize, _loss: f64, ctx: &mut sinew_train::Context<'_>) {
        if self.me == self.rank && step == self.step {
            ctx.stop_training = true;
        }
    }
}

#[test]
fn a_stop_on_one_rank_stops_every_rank() {
    let threads = Threads::new(2);
    let ds = datasets::digits().select(&(0..200).collect::<Vec<_>>());
    let (x, y) = (ds.features().to_dtype(DType::F64), ds.targets().clone());
    let steps: Vec<usize> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..2)
            .map(|rank| {
                let (threads, x, y) = (&threads, &x, &y);
                s.spawn(move || {
                    let model = mlp();
                    let dp = Rank { rank, threads, model: &model };
                    let mut opt = Sgd::new(model.parameters(), 0.1);
                    let mut seen = StepCounter(0);
                    // rank 1 alone asks to stop after step 7 of the first epoch (of 10 per epoch)
                    Trainer::new(&model, &mut opt, Loss::CrossEntropy)
                        .epochs(3)
                        .batch_size(10)
                        .verbosity(Verbosity::Quiet)
                        .callback(StopOn { rank: 1, me: rank, step: 7 })
                        .callback(&mut seen)
                        .data_parallel(&dp)
                        .fit(x, y);
                    seen.0
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert_eq!(steps, [7, 7], "both ranks stop after the same step");
}

/// Counts the batches trained.
struct StepCounter(usize);

impl sinew_train::Callback for StepCounter {
    fn on_batch_end(&mut self, _: usize, _: f64, _: &mut sinew_train::Context<'_>) {
        self.0 += 1;
    }
}

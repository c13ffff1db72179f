//! A data-parallel run checkpointed on 3 ranks and resumed on 2 ends where one process
//! training with the same global batch ends.
//!
//! Run it without an MPI runner (`cargo test -p sinew-distributed --features mpi --test
//! resume`): it launches `mpirun -np 3` on itself for the first two epochs (rank 0 writes
//! a checkpoint after each), then `mpirun -np 2` to resume from the second checkpoint and
//! train two more, and compares the final checkpoint with a one-process `fit` of four
//! epochs that it runs itself.

mod common;

use std::ffi::OsStr;
use std::path::{Path, PathBuf};

use sinew_data::{TensorDataset, datasets};
use sinew_distributed::{DistributedDataParallel, World};
use sinew_nn::{Linear, Module, Sequential, Tanh};
use sinew_optim::Sgd;
use sinew_serialize::Checkpoint;
use sinew_tensor::{DType, Generator, Tensor};
use sinew_train::metrics::Accuracy;
use sinew_train::{Loss, ModelCheckpoint, Trainer, Verbosity};

const GLOBAL_BATCH: usize = 60;
const EPOCHS: usize = 4;

fn data() -> (Tensor, Tensor) {
    let ds: TensorDataset = datasets::digits().select(&(0..1200).collect::<Vec<_>>());
    (ds.features().to_dtype(DType::F64).div_scalar(16.0), ds.targets().clone())
}

fn mlp() -> Sequential {
    let mut g = Generator::new(11);
    let net = Sequential::new().add(Linear::new(64, 32, &mut g)).add(Tanh).add(Linear::new(32, 10, &mut g));
    net.cast(DType::F64);
    net
}

fn trainer<'a>(
    model: &'a dyn sinew_nn::Forward,
    opt: &'a mut Sgd,
    batch: usize,
    epochs: usize,
) -> Trainer<'a> {
    Trainer::new(model, opt, Loss::CrossEntropy)
        .epochs(epochs)
        .batch_size(batch)
        .metric(Accuracy::default())
        .validation_split(0.25)
        .verbosity(Verbosity::Quiet)
}

/// One rank of phase `first` (epochs 0-1, checkpointing) or `second` (resume, epochs 2-3).
fn rank_main(phase: &str, dir: &Path) {
    let world = World::init().expect("MPI initialises");
    let model = DistributedDataParallel::new(&world, mlp());
    let mut opt = Sgd::momentum(model.parameters(), 0.05, 0.9);
    let (x, y) = data();
    let batch = GLOBAL_BATCH / world.size();
    let saver = ModelCheckpoint::new(dir.join(format!("{phase}-{{epoch}}.sinew")));
    let t = trainer(&model, &mut opt, batch, if phase == "first" { 2 } else { EPOCHS })
        .data_parallel(&model)
        .callback(saver);
    let t = if phase == "first" {
        t
    } else {
        // every rank reads the checkpoint rank 0 wrote, on another number of ranks
        t.resume_from(dir.join("first-2.sinew")).expect("the 3-rank checkpoint resumes on 2 ranks")
    };
    t.fit(&x, &y);
}

fn launch(ranks: usize, phase: &str, dir: &Path) {
    let env = [("SINEW_RESUME_PHASE", OsStr::new(phase)), ("SINEW_RESUME_DIR", dir.as_os_str())];
    let status = common::mpirun_self(ranks, env)
        .status()
        .expect("mpirun starts (is Open MPI installed? see docs/distributed.md)");
    assert!(status.success(), "phase {phase} on {ranks} ranks failed: {status}");
}

fn main() {
    if let Ok(phase) = std::env::var("SINEW_RESUME_PHASE") {
        let dir =
            PathBuf::from(std::env::var("SINEW_RESUME_DIR").expect("SINEW_RESUME_DIR is set with the phase"));
        rank_main(&phase, &dir);
        return;
    }
    common::assert_not_under_mpirun("resume");
    let dir = std::env::temp_dir().join(format!("sinew-resume-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    launch(3, "first", &dir);
    launch(2, "second", &dir);

    // one process, the global batch, all four epochs
    let reference = mlp();
    let mut opt = Sgd::momentum(reference.parameters(), 0.05, 0.9);
    let (x, y) = data();
    let history = trainer(&reference, &mut opt, GLOBAL_BATCH, EPOCHS).fit(&x, &y);

    let last =
        Checkpoint::load(dir.join(format!("second-{EPOCHS}.sinew"))).expect("the resumed run's checkpoint");
    assert_eq!(last.epoch, EPOCHS as u64);
    let mut worst = 0.0f64;
    for (name, want) in reference.state_dict() {
        let got = last.model.get(&name).unwrap_or_else(|| panic!("the checkpoint has {name}"));
        worst = worst.max((&want - &got.to_dtype(DType::F64)).abs().max_all().item());
    }
    assert!(worst <= 1e-6, "3 ranks then 2 differ from one process by {worst:e}");
    println!(
        "resume: 2 epochs on 3 ranks + 2 on 2 ranks = 4 epochs in one process to {worst:.1e} \
         (validation accuracy {:.4})",
        history.get("val_accuracy")[EPOCHS - 1]
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

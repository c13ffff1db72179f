//! A training run killed with SIGKILL at any moment, through `fit` and `ModelCheckpoint`
//! (not a hand-written save loop): after every kill the checkpoint loads and the run
//! resumes from it, and killed saves leave no pile of temporary files behind.
//!
//! The test binary re-runs itself (`current_exe()` with `--exact child_trainer`) as the
//! child; the child test is a no-op without its environment variable.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use sinew_nn::{Forward, Linear, Module, Relu, Sequential};
use sinew_optim::Adam;
use sinew_serialize::Checkpoint;
use sinew_tensor::{DType, Generator, Tensor};
use sinew_train::{Callback, Context, Logs, Loss, ModelCheckpoint, Trainer, Verbosity};

const CHILD: &str = "SINEW_TEST_KILLED_TRAINER_DIR";

fn model() -> Sequential {
    let mut g = Generator::new(2);
    // about 8 MB of weights, so that a save takes long enough to be killed in
    Sequential::new().add(Linear::new(16, 512, &mut g)).add(Relu).add(Linear::new(512, 4000, &mut g))
}

fn data() -> (Tensor, Tensor) {
    let mut g = Generator::new(3);
    let x = Tensor::randn_with(&[16, 16], DType::F32, &mut g);
    let y = Tensor::rand_int_with(&[16], 0, 4000, &mut g);
    (x, y)
}

/// Prints `epoch N` when an epoch ends, just before `ModelCheckpoint` saves it.
struct Announce;
impl Callback for Announce {
    fn on_epoch_end(&mut self, epoch: usize, _: &mut Logs, _: &mut Context<'_>) {
        let mut out = std::io::stdout();
        // the parent closing the pipe ends the run
        if writeln!(out, "epoch {epoch}").and_then(|()| out.flush()).is_err() {
            std::process::exit(0);
        }
    }
}

fn trainer<'a>(m: &'a Sequential, opt: &'a mut Adam, path: &Path, epochs: usize) -> Trainer<'a> {
    Trainer::new(m, opt, Loss::CrossEntropy)
        .epochs(epochs)
        .batch_size(16)
        .verbosity(Verbosity::Quiet)
        .callback(Announce)
        .callback(ModelCheckpoint::new(path))
}

/// Child: trains for a very long time, resuming from the checkpoint when there is one.
#[test]
fn child_trainer() {
    let Ok(dir) = std::env::var(CHILD) else { return };
    let path = PathBuf::from(dir).join("run.sinew");
    let (x, y) = data();
    let m = model();
    let mut opt = Adam::new(m.parameters(), 1e-3);
    let mut t = trainer(&m, &mut opt, &path, 1_000_000);
    if path.exists() {
        t = t.resume_from(&path).expect("the child resumes from the last checkpoint");
    }
    t.fit(&x, &y);
}

#[test]
fn a_run_killed_mid_save_resumes_from_its_last_checkpoint() {
    let dir = std::env::temp_dir().join(format!("sinew-train-killed-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("run.sinew");
    let mut last_epoch = 0u64;
    for round in 0..16u64 {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args(["--exact", "child_trainer", "--nocapture", "--test-threads=1"])
            .env(CHILD, &dir)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let wait_for = 1 + round % 3; // epochs announced before the kill
        let mut seen = 0;
        while seen < wait_for {
            let line = lines.next().expect("the child stopped before the kill").unwrap();
            if line.starts_with("epoch ") {
                seen += 1;
            }
        }
        // a few milliseconds more or less, so that kills land in encoding, writing, syncing
        std::thread::sleep(std::time::Duration::from_millis(round * 5));
        child.kill().unwrap(); // SIGKILL, often while ModelCheckpoint is saving
        child.wait().unwrap();
        if !path.exists() {
            assert_eq!(round, 0, "round {round}: the checkpoint file disappeared");
            continue;
        }
        let ckpt = Checkpoint::load(&path)
            .unwrap_or_else(|e| panic!("round {round}: the checkpoint does not load after a kill: {e}"));
        assert!(
            ckpt.epoch >= last_epoch,
            "round {round}: went back from epoch {last_epoch} to {}",
            ckpt.epoch
        );
        last_epoch = ckpt.epoch;
        // and it resumes in this process
        let m = model();
        let mut opt = Adam::new(m.parameters(), 1e-3);
        let t = trainer(&m, &mut opt, &dir.join("probe.sinew"), ckpt.epoch as usize)
            .resume_from(&path)
            .unwrap_or_else(|e| panic!("round {round}: resume refused: {e}"));
        drop(t);
        assert!(
            m.forward(&sinew_autograd::Var::constant(data().0))
                .value()
                .to_vec::<f32>()
                .iter()
                .all(|v| v.is_finite())
        );
    }
    assert!(last_epoch >= 6, "the runs made too little progress to test anything ({last_epoch} epochs)");
    let temporaries: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().contains(".tmp-"))
        .map(|e| e.file_name())
        .collect();
    eprintln!("{} temporary files left after 16 kills", temporaries.len());
    // only the last child's interrupted save may remain: each save removes the leftovers
    // of processes that are gone
    assert!(temporaries.len() <= 1, "temporary files accumulate: {temporaries:?}");
    std::fs::remove_dir_all(&dir).unwrap();
}

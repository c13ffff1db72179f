//! Tests that need a second process. This test binary re-runs itself
//! (`std::env::current_exe()` with `--exact NAME`) to run one of the `child_*` tests,
//! which do nothing unless their environment variable is set.
//!
//! - Crash safety: a child saves over an existing checkpoint in a loop, printing a line
//!   after each save; the parent reads `k` lines, kills it with SIGKILL, and loads the
//!   file, which is always either the old state or one of the new ones (never torn), and
//!   at least the `k`-th new one. 30 rounds with varying `k`; no sleeps, no timing. The
//!   child encodes each state before announcing the previous save, so the kill tends to
//!   land mid-write: with `std::fs::write` in place of the atomic write this test fails
//!   within a round or two (a truncated file).
//! - Exact resume: a run of `N` steps straight equals, bit for bit, `K` steps, a
//!   checkpoint, and `N - K` steps in a fresh process that rebuilds the model from the
//!   checkpoint (model, Adam, cosine schedule, step, data RNG).

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use sinew_autograd::Var;
use sinew_nn::loss::{Reduction, mse_loss};
use sinew_nn::{BatchNorm1d, Forward, Linear, Module, Sequential, Tanh};
use sinew_optim::{Adam, CosineAnnealingLr, Optimizer, Scheduler};
use sinew_serialize::{Checkpoint, StateDict, load_safetensors, save_module, write_atomic};
use sinew_tensor::{DType, Generator, Tensor};

const CRASH_CHILD: &str = "SINEW_TEST_CRASH_CHILD_PATH";
const RESUME_CHILD: &str = "SINEW_TEST_RESUME_CHILD_CKPT";
const RESUME_OUT: &str = "SINEW_TEST_RESUME_CHILD_OUT";

/// A fresh directory for one test.
fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("sinew-serialize-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// This test binary, running only the test `name`.
fn child(name: &str) -> Command {
    let mut c = Command::new(std::env::current_exe().unwrap());
    c.args(["--exact", name, "--nocapture", "--test-threads=1"]);
    c
}

// ---------------------------------------------------------------------------------------
// crash safety

/// The checkpoint of save number `i` (0 is the state before the child starts): about a
/// megabyte, so a kill often lands mid-write, with `i` in every part.
fn crash_state(i: u64) -> Checkpoint {
    let mut model = StateDict::new();
    model.insert("w", Tensor::full_dtype(&[1 << 18], i as f64, DType::F32));
    model.insert("count", Tensor::scalar(i as i64));
    Checkpoint {
        model,
        step: i,
        metadata: [("i".to_string(), i.to_string())].into(),
        ..Checkpoint::default()
    }
}

/// `c` is exactly `crash_state(c.step)`.
fn assert_is_crash_state(c: &Checkpoint) {
    let i = c.step;
    let w = c.model.get("w").expect("w");
    assert_eq!(w.dims(), &[1 << 18]);
    assert!(w.to_vec::<f32>().iter().all(|&v| v == i as f32), "w of state {i}");
    assert_eq!(c.model.get("count").unwrap().to_vec::<i64>(), vec![i as i64]);
    assert_eq!(c.metadata["i"], i.to_string());
}

/// Child: saves states 1, 2, 3, ... over the file, printing `saved i` after each save.
///
/// Each state is encoded *before* the line about the previous save is printed, so the
/// line is followed at once by the write itself (`Checkpoint::save` is exactly
/// `write_atomic(path, to_bytes())`): a kill that follows the parent's reading a line
/// lands in the middle of writing, not of encoding, as often as scheduling allows.
#[test]
fn child_crash_saver() {
    let Ok(path) = std::env::var(CRASH_CHILD) else { return };
    let mut out = std::io::stdout();
    for i in 1..=100_000u64 {
        let bytes = crash_state(i).to_bytes().unwrap();
        // the parent closing the pipe (or dying) ends the loop
        if i > 1 && writeln!(out, "saved {}", i - 1).and_then(|()| out.flush()).is_err() {
            return;
        }
        write_atomic(Path::new(&path), &bytes).unwrap();
    }
}

#[test]
fn checkpoint_survives_being_killed_mid_save() {
    let dir = scratch("crash");
    let path = dir.join("ckpt.sinew");
    let (mut old, mut new) = (0, 0);
    for round in 0..30u64 {
        let k = (round * 7) % 12; // 0..=11 saves before the kill, in a scrambled order
        crash_state(0).save(&path).unwrap();
        let mut proc = child("child_crash_saver")
            .env(CRASH_CHILD, &path)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(proc.stdout.take().unwrap()).lines();
        let mut seen = 0;
        while seen < k {
            let line = lines.next().expect("the child stopped before the kill").unwrap();
            if line.starts_with("saved ") {
                seen += 1;
            }
        }
        proc.kill().unwrap(); // SIGKILL: no destructors, no flushing
        proc.wait().unwrap();
        let c = Checkpoint::load(&path)
            .unwrap_or_else(|e| panic!("round {round}: killed after {k} saves, the file does not load: {e}"));
        assert_is_crash_state(&c);
        if c.step == 0 {
            assert_eq!(k, 0, "round {round}: the old state after {k} completed saves");
            old += 1;
        } else {
            assert!(c.step >= k, "round {round}: state {} after {k} completed saves", c.step);
            new += 1;
        }
    }
    let leftovers = std::fs::read_dir(&dir).unwrap().count() - 1;
    println!(
        "{old} rounds found the old state, {new} a new one; {leftovers} interrupted saves left temporary files"
    );
    assert!(new >= 25);
    std::fs::remove_dir_all(&dir).unwrap();
}

// ---------------------------------------------------------------------------------------
// exact resume

const STEPS: u64 = 40;
const SPLIT: u64 = 17;
const LR: f64 = 0.02;
const DATA_SEED: u64 = 42;

fn build(init_seed: u64) -> Sequential {
    let mut g = Generator::new(init_seed);
    Sequential::new()
        .add(Linear::new(4, 8, &mut g))
        .add(BatchNorm1d::new(8))
        .add(Tanh)
        .add(Linear::new(8, 1, &mut g))
}

fn schedule() -> CosineAnnealingLr {
    CosineAnnealingLr { t_max: STEPS as usize, eta_min: 1e-4 }
}

/// One step on a fresh batch drawn from `data`: `y = x·w + noise`, MSE, Adam, schedule.
fn train_step(
    model: &Sequential,
    opt: &mut Adam,
    sched: &mut Scheduler<CosineAnnealingLr>,
    data: &mut Generator,
) {
    let w = Tensor::from_vec(vec![0.5f32, -1.0, 2.0, 0.25], &[4, 1]).unwrap();
    let x = Tensor::randn_with(&[16, 4], DType::F32, data);
    let noise = Tensor::randn_with(&[16, 1], DType::F32, data).mul_scalar(0.1);
    let y = &x.matmul(&w) + &noise;
    let loss = mse_loss(&model.forward(&Var::constant(x)), &Var::constant(y), Reduction::Mean);
    opt.step(&loss.backward());
    sched.step(opt);
}

fn optimizer(model: &Sequential) -> (Adam, Scheduler<CosineAnnealingLr>) {
    let mut opt = Adam::new(model.parameters(), LR);
    let sched = Scheduler::new(schedule(), &mut opt);
    (opt, sched)
}

fn bits(state: &[(String, Tensor)]) -> Vec<(String, DType, Vec<usize>, Vec<u64>)> {
    state
        .iter()
        .map(|(n, t)| {
            let b = match t.dtype() {
                DType::F32 => t.to_vec::<f32>().iter().map(|v| v.to_bits() as u64).collect(),
                DType::F64 => t.to_vec::<f64>().iter().map(|v| v.to_bits()).collect(),
                DType::I64 => t.to_vec::<i64>().iter().map(|&v| v as u64).collect(),
            };
            (n.clone(), t.dtype(), t.dims().to_vec(), b)
        })
        .collect()
}

/// Resumes from `ckpt` in this process: a model built with another initialisation, then
/// everything restored from the checkpoint (each part optional, to show it matters).
fn resume(ckpt: &Checkpoint, restore_optimizer: bool, restore_rng: bool) -> Sequential {
    let model = build(12345);
    assert!(ckpt.model.load_into(&model, true).unwrap().is_clean());
    let (mut opt, mut sched) = optimizer(&model);
    if restore_optimizer {
        opt.load_state(ckpt.optimizer.as_ref().unwrap()).unwrap();
    }
    sched.load_state(ckpt.scheduler.clone().unwrap(), &mut opt).unwrap();
    let mut data =
        if restore_rng { Generator::from_state(ckpt.rng.unwrap()) } else { Generator::new(DATA_SEED) };
    for _ in ckpt.step..STEPS {
        train_step(&model, &mut opt, &mut sched, &mut data);
    }
    model
}

/// Child: loads the checkpoint, trains to the end, saves the final state dict.
#[test]
fn child_resume() {
    let Ok(ckpt_path) = std::env::var(RESUME_CHILD) else { return };
    let out = std::env::var(RESUME_OUT).unwrap();
    let ckpt = Checkpoint::load(&ckpt_path).unwrap();
    assert_eq!((ckpt.step, ckpt.epoch), (SPLIT, 0));
    let model = resume(&ckpt, true, true);
    save_module(Path::new(&out), &model).unwrap();
}

#[test]
fn resumed_training_in_a_fresh_process_is_bit_identical() {
    let dir = scratch("resume");
    // straight through
    let straight = build(0);
    let (mut opt, mut sched) = optimizer(&straight);
    let mut data = Generator::new(DATA_SEED);
    for _ in 0..STEPS {
        train_step(&straight, &mut opt, &mut sched, &mut data);
    }
    let want = bits(&straight.state_dict());

    // SPLIT steps, then a checkpoint
    let model = build(0);
    let (mut opt, mut sched) = optimizer(&model);
    let mut data = Generator::new(DATA_SEED);
    for _ in 0..SPLIT {
        train_step(&model, &mut opt, &mut sched, &mut data);
    }
    let ckpt = Checkpoint {
        optimizer: Some(opt.state()),
        scheduler: Some(sched.state()),
        step: SPLIT,
        rng: Some(data.state()),
        ..Checkpoint::new(&model)
    };
    let ckpt_path = dir.join("split.sinew");
    ckpt.save(&ckpt_path).unwrap();
    drop((model, opt, sched, data));

    // the rest in a fresh process
    let out = dir.join("final.safetensors");
    let result = child("child_resume").env(RESUME_CHILD, &ckpt_path).env(RESUME_OUT, &out).output().unwrap();
    assert!(
        result.status.success(),
        "child failed:\n{}\n{}",
        String::from_utf8_lossy(&result.stdout),
        String::from_utf8_lossy(&result.stderr)
    );
    let got = bits(&load_safetensors(&out).unwrap());
    assert_eq!(got.len(), want.len());
    for (g, w) in got.iter().zip(&want) {
        assert!(g == w, "{}: resumed {:?} != straight {:?}", w.0, g.3, w.3);
    }
    // the batch-norm counter went all the way
    let nbt = got.iter().find(|t| t.0 == "1.num_batches_tracked").unwrap();
    assert_eq!((nbt.1, nbt.3.clone()), (DType::I64, vec![STEPS]));

    // each restored part matters: without the optimizer state or the data generator
    // the run ends elsewhere (so the comparison above is not vacuous)
    let loaded = Checkpoint::load(&ckpt_path).unwrap();
    assert_eq!(bits(&resume(&loaded, true, true).state_dict()), want, "in-process resume");
    assert_ne!(bits(&resume(&loaded, false, true).state_dict()), want, "fresh optimizer");
    assert_ne!(bits(&resume(&loaded, true, false).state_dict()), want, "fresh data generator");
    std::fs::remove_dir_all(&dir).unwrap();
}

//! A rank that fails mid-training ends the whole job within seconds, and the checkpoint
//! written before the failure still loads.
//!
//! Run it without an MPI runner (`cargo test -p sinew-distributed --features mpi --test
//! faults`): it launches `mpirun -np 3` on itself, once per drill, with a timeout. In a
//! drill, the ranks train a small model data-parallel; rank 0 saves a checkpoint after
//! step 2; at step 4 rank 1 panics (drill `panic`) or is killed by SIGKILL (drill `kill`)
//! while the others are waiting for it in an all-reduce.

mod common;

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use sinew_autograd::Var;
use sinew_distributed::{DistributedDataParallel, World};
use sinew_nn::loss::{Reduction, mse_loss};
use sinew_nn::{Forward, Linear, Module, Sequential, Tanh};
use sinew_optim::{Optimizer, Sgd};
use sinew_serialize::{load_module, save_module};
use sinew_tensor::{Generator, Tensor};

const RANKS: usize = 3;
/// How long the surviving ranks may take to exit after the fault.
const EXIT_WITHIN: Duration = Duration::from_secs(15);

fn model() -> Sequential {
    let mut g = Generator::new(0);
    Sequential::new().add(Linear::new(4, 16, &mut g)).add(Tanh).add(Linear::new(16, 1, &mut g))
}

fn now_ms() -> u128 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis()
}

/// One rank of a drill.
fn drill(kind: &str, dir: &Path) {
    let world = World::init().expect("MPI initialises");
    let net = DistributedDataParallel::new(&world, model());
    let mut opt = Sgd::new(net.parameters(), 0.05);
    let mut g = Generator::new(world.rank() as u64);
    for step in 0..1000 {
        if step == 4 && world.rank() == 1 {
            std::fs::write(dir.join("fault_at_ms"), now_ms().to_string()).unwrap();
            match kind {
                "panic" => panic!("drill: rank 1 fails at step {step}"),
                _ => {
                    let pid = std::process::id().to_string();
                    let _ = Command::new("kill").args(["-9", &pid]).status();
                    unreachable!("SIGKILL did not end the process");
                }
            }
        }
        let x = Tensor::randn_with(&[8, 4], sinew_tensor::DType::F32, &mut g);
        let y = x.sum(&[1], true).tanh();
        let loss = mse_loss(&net.forward(&Var::constant(x)), &Var::constant(y), Reduction::Mean);
        opt.step(&net.backward(&loss));
        if step == 2 && world.is_root() {
            save_module(dir.join("model.safetensors"), &net).expect("checkpoint written");
        }
    }
    unreachable!("the drill's fault should have ended the job");
}

/// Launches one drill under mpirun and checks how it ended.
fn run_drill(kind: &str) {
    let dir: PathBuf = std::env::temp_dir().join(format!("sinew-faults-{kind}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let started = Instant::now();
    let env = [("SINEW_FAULT_DRILL", OsStr::new(kind)), ("SINEW_FAULT_DIR", dir.as_os_str())];
    let mut child = common::mpirun_self(RANKS, env)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("mpirun starts (is Open MPI installed? see docs/distributed.md)");
    let deadline = started + Duration::from_secs(120);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("drill {kind}: the job still runs 120 s after starting: the surviving ranks hang");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let ended_ms = now_ms();
    let output = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!status.success(), "drill {kind}: mpirun reported success after a rank failed");
    let fault_ms: u128 = std::fs::read_to_string(dir.join("fault_at_ms"))
        .unwrap_or_else(|_| panic!("drill {kind}: rank 1 never reached its fault; stderr:\n{stderr}"))
        .parse()
        .unwrap();
    let took = Duration::from_millis((ended_ms - fault_ms) as u64);
    assert!(took <= EXIT_WITHIN, "drill {kind}: the job took {took:?} to end after the fault");
    if kind == "panic" {
        assert!(stderr.contains("drill: rank 1 fails at step 4"), "the panic message is reported:\n{stderr}");
        assert!(
            stderr.contains("rank 1 panicked; aborting the MPI job"),
            "the abort is explained:\n{stderr}"
        );
    }
    // the checkpoint rank 0 wrote before the fault loads, complete
    let fresh = model();
    let report = load_module(dir.join("model.safetensors"), &fresh, true).expect("the checkpoint loads");
    assert!(report.is_clean());
    println!("drill {kind}: rank 1 failed; the job ended {took:?} later with {status}; the checkpoint loads");
    std::fs::remove_dir_all(&dir).unwrap();
}

fn main() {
    if let Ok(kind) = std::env::var("SINEW_FAULT_DRILL") {
        let dir =
            PathBuf::from(std::env::var("SINEW_FAULT_DIR").expect("SINEW_FAULT_DIR is set with the drill"));
        drill(&kind, &dir);
        return;
    }
    common::assert_not_under_mpirun("faults");
    for kind in ["panic", "kill"] {
        run_drill(kind);
    }
}

//! The workloads of `benches/torch_workloads.py` (the anchors of
//! `shared/anchors/bench_torch.py` and the newer ones), in sinew, timed the same way
//! (warm-up, then the median of 5 repetitions of `iters` steps) and printed in the same
//! `name: X ms/step` lines, so the two outputs sit side by side. A training step is:
//! forward, loss, backward, optimizer step (gradients are returned, never accumulated,
//! so there is no zero-grad), f32; an inference step is one forward without a graph.
//!
//! `cargo run --release -p sinew-benches --bin workloads [THREADS [NAME_PREFIX]]`, or
//! `--list` for the workload names.

use std::time::Instant;

use sinew_tensor::{DType, Generator, Tensor};

#[path = "anchors.rs"]
mod anchors;

fn bench(name: &str, step: &mut dyn FnMut(), iters: usize) {
    if std::env::args().nth(2).is_some_and(|only| !name.starts_with(&only)) {
        return;
    }
    for _ in 0..5 {
        step();
    }
    let mut meds: Vec<f64> = (0..5)
        .map(|_| {
            let t = Instant::now();
            for _ in 0..iters {
                step();
            }
            t.elapsed().as_secs_f64() / iters as f64 * 1e3
        })
        .collect();
    meds.sort_by(f64::total_cmp);
    println!("{name}: {:.3} ms/step (min {:.3})", meds[2], meds[0]);
}

fn main() {
    if std::env::args().nth(1).as_deref() == Some("--list") {
        anchors::training_workloads().iter().for_each(|w| println!("{}", w.name));
        return;
    }
    if let Some(t) = std::env::args().nth(1).and_then(|a| a.parse().ok()) {
        sinew_tensor::set_num_threads(t);
    }
    for mut w in anchors::training_workloads() {
        bench(w.name, &mut w.step, w.iters);
    }
    let mut g = Generator::new(1);

    // matmul throughput
    let matmul_wanted = std::env::args()
        .nth(2)
        .is_none_or(|only| "matmul_f32".starts_with(&only) || only.starts_with("matmul"));
    for n in [256usize, 1024, 2048].into_iter().filter(|_| matmul_wanted) {
        let a = Tensor::randn_with(&[n, n], DType::F32, &mut g);
        let b = Tensor::randn_with(&[n, n], DType::F32, &mut g);
        let it = if n <= 256 {
            50
        } else if n == 1024 {
            10
        } else {
            3
        };
        for _ in 0..3 {
            std::hint::black_box(a.matmul(&b));
        }
        let mut ts: Vec<f64> = (0..5)
            .map(|_| {
                let t = Instant::now();
                for _ in 0..it {
                    std::hint::black_box(a.matmul(&b));
                }
                t.elapsed().as_secs_f64() / it as f64
            })
            .collect();
        ts.sort_by(f64::total_cmp);
        println!("matmul_f32_{n}: {:.1} GFLOP/s", 2.0 * (n as f64).powi(3) / ts[2] / 1e9);
    }
}

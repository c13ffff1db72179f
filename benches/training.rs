//! The workloads of `benches/torch_workloads.py` under criterion: one step each (training,
//! or a forward for the inference ones), with exactly the shapes and hyperparameters of
//! the PyTorch script. The `workloads` binary prints the same lines as the script.
#![allow(missing_docs)]

use criterion::{Criterion, criterion_group, criterion_main};

#[path = "anchors.rs"]
mod anchors;

fn training(c: &mut Criterion) {
    let mut group = c.benchmark_group("workload_step");
    group.sample_size(20);
    for mut w in anchors::training_workloads() {
        for _ in 0..3 {
            (w.step)(); // warm up: optimizer state, buffer cache
        }
        group.bench_function(w.name, |b| b.iter(&mut w.step));
    }
    group.finish();
}

criterion_group!(benches, training);
criterion_main!(benches);

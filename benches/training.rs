//! The anchor training workloads (`shared/anchors/bench_torch.py`) under criterion: one
//! training step each, with exactly the shapes and hyperparameters of the PyTorch script.
//! The `workloads` binary prints the same workloads as `bench_torch.py`'s lines.
#![allow(missing_docs)]

use criterion::{Criterion, criterion_group, criterion_main};

#[path = "anchors.rs"]
mod anchors;

fn training(c: &mut Criterion) {
    let mut group = c.benchmark_group("train_step");
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

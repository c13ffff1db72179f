//! 10,000 training steps of a small MLP keep the live heap flat: graphs are freed after
//! every step and nothing accumulates. Alone in its test binary, so that no other test
//! allocates while the heap is counted.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicIsize, Ordering};

use sinew_autograd::Param;
use sinew_autograd::Var;
use sinew_tensor::{DType, Generator, Tensor};

/// Counts live heap bytes, to prove that training does not leak.
struct CountingAlloc;
static LIVE: AtomicIsize = AtomicIsize::new(0);

// SAFETY: forwards to the system allocator and only counts.
unsafe impl GlobalAlloc for CountingAlloc {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        LIVE.fetch_add(l.size() as isize, Ordering::Relaxed);
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        LIVE.fetch_sub(l.size() as isize, Ordering::Relaxed);
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(p, l) }
    }
}

#[global_allocator]
static ALLOC: CountingAlloc = CountingAlloc;

#[test]
fn training_memory_stays_flat() {
    let mut g = Generator::new(5);
    let w1 = Param::new("w1", Tensor::randn_with(&[8, 32], DType::F32, &mut g).mul_scalar(0.3));
    let w2 = Param::new("w2", Tensor::randn_with(&[32, 1], DType::F32, &mut g).mul_scalar(0.3));
    let x = Var::constant(Tensor::randn_with(&[16, 8], DType::F32, &mut g));
    let y = Var::constant(Tensor::randn_with(&[16, 1], DType::F32, &mut g));
    let step = || {
        let loss = (&x.matmul(&w1.var()).relu().matmul(&w2.var()) - &y).square().mean_all();
        let grads = loss.backward();
        drop(loss);
        for p in [&w1, &w2] {
            let gp = grads.get_id(p.id()).unwrap().to_vec::<f32>();
            let mut v = p.value_mut();
            for (a, b) in v.as_mut_slice::<f32>().iter_mut().zip(gp) {
                *a -= 0.01 * b;
            }
        }
    };
    for _ in 0..100 {
        step();
    }
    let before = LIVE.load(Ordering::SeqCst);
    for _ in 0..10_000 {
        step();
    }
    let after = LIVE.load(Ordering::SeqCst);
    assert!(
        (after - before).abs() < 64 << 10,
        "live heap grew by {} bytes over 10,000 steps",
        after - before
    );
}

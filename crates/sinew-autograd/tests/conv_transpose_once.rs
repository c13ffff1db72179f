//! `Var::conv_transpose2d` computes its value with one run of the kernel: the forward
//! allocates one buffer of the output's size, never a second one just to learn that size.
//! Alone in its test binary, so that no other test allocates while allocations are counted.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use sinew_autograd::Var;
use sinew_tensor::{Conv2dOptions, DType, Generator, Tensor, set_buffer_cache_limit};

/// Counts, while armed, the allocations of exactly `WATCHED` bytes.
struct CountingAlloc;
static ARMED: AtomicBool = AtomicBool::new(false);
static WATCHED: AtomicUsize = AtomicUsize::new(0);
static HITS: AtomicUsize = AtomicUsize::new(0);

// SAFETY: forwards to the system allocator and only counts.
unsafe impl GlobalAlloc for CountingAlloc {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        if ARMED.load(Ordering::Relaxed) && l.size() == WATCHED.load(Ordering::Relaxed) {
            HITS.fetch_add(1, Ordering::Relaxed);
        }
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(p, l) }
    }
}

#[global_allocator]
static ALLOC: CountingAlloc = CountingAlloc;

#[test]
fn conv_transpose2d_forward_allocates_its_output_once() {
    // no cached buffer may stand in for a fresh one
    set_buffer_cache_limit(0);
    let mut g = Generator::new(3);
    let x = Var::leaf(Tensor::randn_with(&[1, 3, 5, 7], DType::F64, &mut g));
    let w = Var::leaf(Tensor::randn_with(&[3, 2, 3, 3], DType::F64, &mut g));
    let o = Conv2dOptions::default().stride(2);
    let out = [1, 2, 11, 15]; // (5 − 1)·2 + 3, (7 − 1)·2 + 3
    WATCHED.store(out.iter().product::<usize>() * 8, Ordering::SeqCst);

    ARMED.store(true, Ordering::SeqCst);
    let y = x.conv_transpose2d(&w, None, o);
    ARMED.store(false, Ordering::SeqCst);
    assert_eq!(y.dims(), &out);
    assert_eq!(HITS.load(Ordering::SeqCst), 1, "output-sized buffers allocated by the forward");

    // the recorded op still differentiates: ⟨convT(x), dy⟩ = ⟨x, dx⟩
    let dy = Tensor::randn_with(&out, DType::F64, &mut g);
    let grads = y.mul(&Var::constant(dy.clone())).sum_all().backward();
    let dx = grads.get(&x).unwrap();
    let lhs = y.value().mul(&dy).sum_all().item();
    assert!((lhs - x.value().mul(dx).sum_all().item()).abs() < 1e-9);
}

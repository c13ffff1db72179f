//! After the first step (which creates the state buffers), a step allocates nothing per
//! parameter: counted with a counting global allocator over steps 2..10 of SGD with
//! momentum, Adam, RMSprop and Adagrad, over 10 and 20 `f32` parameters of shape
//! (64, 32) (small: the serial path), with the gradients prepared up front.
//! Run with `--nocapture` to see the counts.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use sinew_autograd::{Gradients, Param};
use sinew_optim::{Adagrad, Adam, Optimizer, RmsProp, Sgd};
use sinew_tensor::{DType, Generator, Tensor};

/// Counts the allocations (and reallocations) of the current thread.
struct Counting;

thread_local! {
    static ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
}

fn bump() {
    let _ = ALLOCATIONS.try_with(|c| c.set(c.get() + 1));
}

// SAFETY: forwards to the system allocator; the count is a thread-local `Cell` with a
// const initialiser and no destructor, so counting never allocates or re-enters.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        bump();
        // SAFETY: same contract as ours.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        bump();
        // SAFETY: same contract as ours.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        bump();
        // SAFETY: same contract as ours.
        unsafe { System.realloc(ptr, layout, new_size) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as ours.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn allocations() -> u64 {
    ALLOCATIONS.with(Cell::get)
}

const SHAPE: [usize; 2] = [64, 32];
const COUNTED_STEPS: u64 = 9;

/// Allocations per step over steps 2..10, for `n` parameters.
fn per_step(build: fn(Vec<Param>) -> Box<dyn Optimizer>, n: usize) -> f64 {
    let mut g = Generator::new(n as u64);
    let params: Vec<Param> =
        (0..n).map(|i| Param::new(format!("p{i}"), Tensor::randn_with(&SHAPE, DType::F32, &mut g))).collect();
    let steps: Vec<Gradients> = (0..=COUNTED_STEPS)
        .map(|_| {
            let mut grads = Gradients::new();
            for p in &params {
                let t = Tensor::randn_with(&SHAPE, DType::F32, &mut g);
                assert!(t.is_contiguous());
                grads.insert(p.id(), t);
            }
            grads
        })
        .collect();
    let mut opt = build(params.clone());
    opt.step(&steps[0]); // creates the state
    let before = allocations();
    for grads in &steps[1..] {
        opt.step(grads);
    }
    let count = allocations() - before;
    drop(opt);
    count as f64 / COUNTED_STEPS as f64
}

type Build = fn(Vec<Param>) -> Box<dyn Optimizer>;

#[test]
fn steps_after_the_first_allocate_nothing_per_parameter() {
    let cases: [(&str, Build); 4] = [
        ("sgd_momentum", |p| Box::new(Sgd::momentum(p, 0.1, 0.9))),
        ("adam", |p| Box::new(Adam::new(p, 1e-3))),
        ("rmsprop", |p| Box::new(RmsProp::new(p, 1e-2))),
        ("adagrad", |p| Box::new(Adagrad::new(p, 1e-2))),
    ];
    for (name, build) in cases {
        let (a10, a20) = (per_step(build, 10), per_step(build, 20));
        let per_param = (a20 - a10) / 10.0;
        let fixed = a10 - 10.0 * per_param;
        eprintln!(
            "{name}: {a10} allocations per step with 10 parameters, {a20} with 20: \
             {per_param} per parameter, {fixed} fixed"
        );
        assert_eq!(per_param, 0.0, "{name}: a step allocates per parameter");
        assert_eq!(fixed, 0.0, "{name}: a step allocates outside the parameter loop");
    }
}

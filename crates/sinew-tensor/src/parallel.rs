//! Threads: one rayon pool owned by sinew, sized by [`set_num_threads`], used by faer's
//! parallel matmul and by the large elementwise, reduction and convolution kernels.
//!
//! Work is split into chunks whose boundaries depend only on the problem size, never on
//! the number of threads, so results are identical for any thread count.

use std::mem::MaybeUninit;
use std::sync::atomic::{AtomicUsize, Ordering};

use rayon::prelude::*;
use std::sync::{Arc, OnceLock, RwLock};

static NUM_THREADS: AtomicUsize = AtomicUsize::new(0);
static POOL: OnceLock<RwLock<Option<Arc<rayon::ThreadPool>>>> = OnceLock::new();

/// Elementwise and reduction work below this many elements runs on the calling thread:
/// below it, waking a second thread costs more than it saves (measured in
/// `benches/elementwise.rs`).
pub const PARALLEL_ELEMENT_THRESHOLD: usize = 1 << 17;

/// Chunk length for parallel elementwise kernels (fixed, so results never depend on the
/// thread count).
pub const CHUNK: usize = 1 << 15;

/// Sets the number of threads sinew's kernels may use (`torch.set_num_threads`).
/// `0` restores the default: the number of available cores.
///
/// ```
/// sinew_tensor::set_num_threads(1);
/// assert_eq!(sinew_tensor::num_threads(), 1);
/// sinew_tensor::set_num_threads(0);
/// ```
pub fn set_num_threads(n: usize) {
    NUM_THREADS.store(n, Ordering::SeqCst);
    let lock = POOL.get_or_init(|| RwLock::new(None));
    *lock.write().unwrap_or_else(|e| e.into_inner()) = None;
}

/// The number of threads kernels use (the available cores unless [`set_num_threads`] said otherwise).
///
/// ```
/// use sinew_tensor::{num_threads, set_num_threads};
/// assert!(num_threads() >= 1);   // torch.get_num_threads()
/// set_num_threads(3);
/// assert_eq!(num_threads(), 3);
/// set_num_threads(0);   // back to the number of cores
/// ```
pub fn num_threads() -> usize {
    static CORES: OnceLock<usize> = OnceLock::new();
    match NUM_THREADS.load(Ordering::Relaxed) {
        // `available_parallelism` reads cgroup files on Linux: ask once.
        0 => *CORES.get_or_init(|| std::thread::available_parallelism().map_or(1, |n| n.get())),
        n => n,
    }
}

fn pool() -> Arc<rayon::ThreadPool> {
    let lock = POOL.get_or_init(|| RwLock::new(None));
    if let Some(p) = lock.read().unwrap_or_else(|e| e.into_inner()).as_ref() {
        return p.clone();
    }
    let mut guard = lock.write().unwrap_or_else(|e| e.into_inner());
    if let Some(p) = guard.as_ref() {
        return p.clone();
    }
    let p = Arc::new(
        rayon::ThreadPoolBuilder::new()
            .num_threads(num_threads())
            .thread_name(|i| format!("sinew-{i}"))
            .build()
            .expect("sinew: could not start the thread pool"),
    );
    *guard = Some(p.clone());
    p
}

/// Runs `f` inside sinew's pool, so that rayon iterators and faer's `Par::rayon(0)` in it
/// use [`num_threads`] threads. Runs `f` directly when only one thread is allowed or when
/// already on one of the pool's threads.
///
/// ```
/// use sinew_tensor::parallel::install;
/// use sinew_tensor::set_num_threads;
/// set_num_threads(2);
/// let on_pool = install(|| rayon::current_thread_index().is_some());
/// assert!(on_pool);   // ran on one of sinew's two threads
/// set_num_threads(1);
/// assert!(!install(|| rayon::current_thread_index().is_some()));   // one thread: run directly
/// set_num_threads(0);
/// ```
pub fn install<R: Send>(f: impl FnOnce() -> R + Send) -> R {
    if num_threads() <= 1 || rayon::current_thread_index().is_some() {
        return f();
    }
    pool().install(f)
}

/// Whether work of `n` elements should be spread over threads.
///
/// ```
/// use sinew_tensor::parallel::{PARALLEL_ELEMENT_THRESHOLD, worth_parallel};
/// use sinew_tensor::set_num_threads;
/// set_num_threads(4);
/// assert!(!worth_parallel(1000));
/// assert!(worth_parallel(PARALLEL_ELEMENT_THRESHOLD));
/// set_num_threads(1);
/// assert!(!worth_parallel(PARALLEL_ELEMENT_THRESHOLD));   // one thread: never
/// set_num_threads(0);
/// ```
#[inline]
pub fn worth_parallel(n: usize) -> bool {
    n >= PARALLEL_ELEMENT_THRESHOLD && num_threads() > 1
}

/// Builds a vector of `n` elements without zero-filling it first: `fill(start, chunk)`
/// writes every element of `chunk`, which holds elements `start..start + chunk.len()`.
/// Chunks of [`CHUNK`] are filled in parallel when `n` is worth it, serially otherwise.
///
/// # Safety
/// `fill` must initialise every element of every chunk it is given (the vector is
/// returned as if it had: an element it skips would be read uninitialised).
pub(crate) unsafe fn build_vec<U: Send + Copy>(
    n: usize,
    fill: impl Fn(usize, &mut [MaybeUninit<U>]) + Sync + Send,
) -> Vec<U> {
    let mut v: Vec<U> = crate::buffer::take(n);
    let spare = &mut v.spare_capacity_mut()[..n];
    if worth_parallel(n) {
        install(|| spare.par_chunks_mut(CHUNK).enumerate().for_each(|(i, c)| fill(i * CHUNK, c)));
    } else {
        fill(0, spare);
    }
    // SAFETY: `fill` wrote every element of every chunk (the caller's obligation), and the
    // chunks cover `0..n`; if it panicked we never get here and `v` drops with length 0.
    unsafe { v.set_len(n) };
    v
}

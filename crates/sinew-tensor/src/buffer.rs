//! A cache of freed tensor buffers, so a training loop that allocates the same sizes
//! step after step reuses warm memory instead of asking the system for fresh pages.
//!
//! Why: a buffer above glibc's mmap threshold (128 KiB at first) is a fresh `mmap` on
//! every allocation and an `munmap` on every free, and smaller ones at the top of the
//! heap are trimmed back to the system; either way each step page-faults on every
//! activation and gradient it writes. On LeNet-5 (batch 64) that was half of a training
//! step. PyTorch keeps such a cache for GPU memory; sinew keeps one for host memory.
//!
//! How: when a tensor's storage drops, its vector goes into a bucket keyed by
//! (alignment, capacity in bytes), unless it is smaller than [`MIN_CACHED_BYTES`] (the
//! allocator is fast there), not fully initialised, or the cache is full. Kernels ask for
//! output vectors through `take` / `scratch` / `filled` (crate-internal), which pop a
//! bucket of exactly that size. Buckets are keyed by bytes and alignment, not by type, so
//! an `f64` buffer can come back as an `i64` one (same size and alignment, which is all
//! the allocator needs to free it correctly). When a buffer does not fit under the limit,
//! the buckets used longest ago are released first.

use std::collections::HashMap;
use std::mem::{align_of, size_of};
use std::ptr::NonNull;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Buffers smaller than this are freed, not cached.
pub const MIN_CACHED_BYTES: usize = 32 * 1024;

/// The default limit on cached bytes (256 MiB).
pub const DEFAULT_CACHE_LIMIT: usize = 256 << 20;

static LIMIT: AtomicUsize = AtomicUsize::new(DEFAULT_CACHE_LIMIT);
static CACHE: Mutex<Cache> = Mutex::new(Cache { buckets: None, bytes: 0, tick: 0 });

/// A freed allocation: pointer and its layout's size and alignment.
struct Block {
    ptr: NonNull<u8>,
}

// SAFETY: a `Block` is an owned, unaliased heap allocation with no thread affinity.
unsafe impl Send for Block {}

struct Bucket {
    blocks: Vec<Block>,
    last_used: u64,
}

struct Cache {
    /// Keyed by (alignment, bytes). `None` until first use (`HashMap::new` is not const).
    buckets: Option<HashMap<(usize, usize), Bucket>>,
    bytes: usize,
    tick: u64,
}

impl Cache {
    fn buckets(&mut self) -> &mut HashMap<(usize, usize), Bucket> {
        self.buckets.get_or_insert_with(HashMap::new)
    }

    /// Frees the blocks of the bucket used longest ago (other than `keep`). False when
    /// there is nothing left to free.
    fn release_oldest(&mut self, keep: (usize, usize)) -> bool {
        let Some(key) = self
            .buckets()
            .iter()
            .filter(|(k, b)| **k != keep && !b.blocks.is_empty())
            .min_by_key(|(_, b)| b.last_used)
            .map(|(k, _)| *k)
        else {
            return false;
        };
        let bucket = self.buckets().remove(&key).expect("key just found");
        self.bytes -= key.1 * bucket.blocks.len();
        for block in bucket.blocks {
            // SAFETY: the block was allocated with exactly this size and alignment.
            unsafe { free_block(block, key) };
        }
        true
    }

    fn clear(&mut self) {
        for (key, bucket) in self.buckets().drain() {
            for block in bucket.blocks {
                // SAFETY: as in `release_oldest`.
                unsafe { free_block(block, key) };
            }
        }
        self.bytes = 0;
    }
}

/// Frees a cached block by rebuilding the vector it came from (a `Vec<u8>`-sized view
/// would have the wrong alignment, so use a type of the recorded alignment).
///
/// # Safety
/// `block` must have been allocated by `Vec` with layout `(key.1 bytes, key.0 align)`.
unsafe fn free_block(block: Block, (align, bytes): (usize, usize)) {
    let layout = std::alloc::Layout::from_size_align(bytes, align).expect("layout of a live allocation");
    // SAFETY: the caller guarantees the layout is the allocation's.
    unsafe { std::alloc::dealloc(block.ptr.as_ptr(), layout) };
}

fn lock() -> std::sync::MutexGuard<'static, Cache> {
    CACHE.lock().unwrap_or_else(|e| e.into_inner())
}

/// Sets the most bytes of freed tensor buffers sinew keeps for reuse (default 256 MiB);
/// `0` turns the cache off and frees what it holds. Cached memory still counts in the
/// process's resident size, so lower it if memory is tight.
///
/// ```
/// sinew_tensor::set_buffer_cache_limit(64 << 20);
/// assert!(sinew_tensor::buffer_cache_bytes() <= 64 << 20);
/// sinew_tensor::set_buffer_cache_limit(sinew_tensor::buffer::DEFAULT_CACHE_LIMIT);
/// ```
pub fn set_buffer_cache_limit(bytes: usize) {
    LIMIT.store(bytes, Ordering::Relaxed);
    let mut cache = lock();
    while cache.bytes > bytes && cache.release_oldest((0, 0)) {}
}

/// Bytes currently held by the buffer cache.
///
/// ```
/// use sinew_tensor::{Tensor, buffer_cache_bytes, clear_buffer_cache};
/// clear_buffer_cache();
/// assert_eq!(buffer_cache_bytes(), 0);
/// drop(Tensor::zeros(&[1024]));   // 4 KiB: too small to cache, freed
/// assert_eq!(buffer_cache_bytes(), 0);
/// drop(Tensor::zeros(&[64 * 1024]));   // 256 KiB: kept for reuse
/// assert_eq!(buffer_cache_bytes(), 256 * 1024);
/// ```
pub fn buffer_cache_bytes() -> usize {
    lock().bytes
}

/// Frees every cached buffer (the cache stays on).
///
/// ```
/// use sinew_tensor::{Tensor, buffer_cache_bytes, clear_buffer_cache};
/// drop(Tensor::zeros(&[256, 256]));
/// assert!(buffer_cache_bytes() >= 256 * 256 * 4);
/// clear_buffer_cache();
/// assert_eq!(buffer_cache_bytes(), 0);
/// ```
pub fn clear_buffer_cache() {
    lock().clear();
}

fn key_of<T>(capacity: usize) -> (usize, usize) {
    (align_of::<T>(), bytes_of::<T>(capacity))
}

/// Bytes of `n` elements of `T`.
///
/// # Panics
/// If they exceed `isize::MAX` (no allocation can be that large), naming the size: a
/// wrapped product must never select a smaller buffer.
#[track_caller]
fn bytes_of<T>(n: usize) -> usize {
    match n.checked_mul(size_of::<T>()) {
        Some(bytes) if bytes <= isize::MAX as usize => bytes,
        _ => panic!(
            "sinew: a tensor buffer of {n} elements of {} is larger than any allocation can be",
            std::any::type_name::<T>()
        ),
    }
}

/// Panics with the size that could not be had, instead of the process abort that Rust's
/// infallible allocation ends in, so that a too-large tensor is an error its caller sees.
#[track_caller]
fn out_of_memory<T>(n: usize) -> ! {
    panic!(
        "sinew: out of memory: could not allocate a tensor buffer of {n} elements of {} ({} bytes)",
        std::any::type_name::<T>(),
        n * size_of::<T>()
    )
}

/// An empty vector with capacity for exactly `n` elements, from the cache when a freed
/// buffer of that size is there.
///
/// # Panics
/// If the memory cannot be allocated (never aborts).
#[track_caller]
pub(crate) fn take<T: Copy>(n: usize) -> Vec<T> {
    // `take_cached` checks the size first (`key_of`)
    take_cached(n).unwrap_or_else(|| {
        let mut v = Vec::new();
        if v.try_reserve_exact(n).is_err() {
            out_of_memory::<T>(n);
        }
        v
    })
}

/// `n` zero elements in fresh memory, which the allocator hands out lazily (untouched
/// pages cost nothing), as `vec![0; n]` does, but a panic instead of an abort when the
/// memory cannot be had.
#[track_caller]
fn zeroed<T: crate::dtype::Element>(n: usize) -> Vec<T> {
    let bytes = bytes_of::<T>(n);
    if bytes == 0 {
        return vec![T::ZERO; n];
    }
    let layout = std::alloc::Layout::array::<T>(n).expect("size checked by bytes_of");
    // SAFETY: the layout has a non-zero size (checked just above).
    let ptr = unsafe { std::alloc::alloc_zeroed(layout) };
    if ptr.is_null() {
        out_of_memory::<T>(n);
    }
    // SAFETY: `ptr` was allocated by the global allocator with the layout of `[T; n]`,
    // which is what a `Vec<T>` of capacity `n` frees with; all `n` elements are zero
    // bytes, which for `f32`, `f64` and `i64` (the only `Element`s) is the value zero.
    unsafe { Vec::from_raw_parts(ptr.cast::<T>(), n, n) }
}

/// A cached buffer for exactly `n` elements (length 0), if there is one.
fn take_cached<T: Copy>(n: usize) -> Option<Vec<T>> {
    let key = key_of::<T>(n);
    if key.1 >= MIN_CACHED_BYTES && size_of::<T>() > 0 {
        let mut cache = lock();
        cache.tick += 1;
        let tick = cache.tick;
        if let Some(bucket) = cache.buckets().get_mut(&key)
            && let Some(block) = bucket.blocks.pop()
        {
            bucket.last_used = tick;
            cache.bytes -= key.1;
            drop(cache);
            // SAFETY: the block was allocated by a `Vec` whose element type had this
            // alignment and whose capacity was `key.1` bytes, which is `n` elements of `T`
            // (same size and alignment: all the allocator needs). Length 0: nothing is
            // read before it is written.
            return Some(unsafe { Vec::from_raw_parts(block.ptr.as_ptr().cast::<T>(), 0, n) });
        }
    }
    None
}

/// A vector of `n` copies of `value`, reusing a cached buffer when there is one.
#[track_caller]
pub(crate) fn filled<T: Copy>(n: usize, value: T) -> Vec<T> {
    let mut v = take(n);
    v.resize(n, value);
    v
}

/// A vector of `n` elements whose values are unspecified, for outputs a kernel overwrites
/// entirely (a GEMM that replaces its output): a cached buffer as its previous tensor left
/// it, or fresh zeroed memory (which the allocator hands out lazily), without the cost of
/// clearing a warm buffer first.
#[track_caller]
pub(crate) fn scratch<T: crate::dtype::Element>(n: usize) -> Vec<T> {
    match take_cached::<T>(n) {
        Some(mut v) => {
            // SAFETY: the cache keeps only buffers whose every element was initialised
            // (`give` takes vectors with `len == capacity`), by a type of the same size and
            // alignment; for `f32`, `f64` and `i64` (the only `Element`s) every bit pattern
            // is a valid value.
            unsafe { v.set_len(n) };
            v
        }
        None => zeroed(n),
    }
}

/// Hands a vector's buffer to the cache (or frees it). Only `f32`, `f64` and `i64`
/// (`Element`s: `Copy`, no padding, every bit pattern valid), so a cached buffer never
/// holds uninitialised bytes that `scratch` could hand out as values.
pub(crate) fn give<T: crate::dtype::Element>(mut v: Vec<T>) {
    let capacity = v.capacity();
    let key = key_of::<T>(capacity);
    let limit = LIMIT.load(Ordering::Relaxed);
    // Only fully initialised buffers: `scratch` hands their old contents out as values.
    if key.1 < MIN_CACHED_BYTES || key.1 > limit || size_of::<T>() == 0 || v.len() != capacity {
        return;
    }
    let mut cache = lock();
    while cache.bytes + key.1 > limit {
        if !cache.release_oldest(key) {
            return; // only this size is cached and it is full: let `v` free itself
        }
    }
    // SAFETY of the later rebuild: we keep the pointer and the exact layout.
    v.clear();
    let ptr = NonNull::new(v.as_mut_ptr().cast::<u8>()).expect("a vector with capacity has a pointer");
    std::mem::forget(v);
    cache.tick += 1;
    let tick = cache.tick;
    cache.bytes += key.1;
    let bucket = cache.buckets().entry(key).or_insert(Bucket { blocks: Vec::new(), last_used: tick });
    bucket.last_used = tick;
    bucket.blocks.push(Block { ptr });
}

#[cfg(test)]
mod tests {
    use super::*;

    // The cache is process-wide; tests in this module use sizes no other test uses.

    #[test]
    fn a_freed_buffer_comes_back_for_the_same_size_and_alignment() {
        let n = 40_000 + 3;
        let v: Vec<f64> = vec![1.5; n];
        let ptr = v.as_ptr() as usize;
        give(v);
        // same bytes and alignment, other type
        let w: Vec<i64> = take(n);
        assert_eq!((w.len(), w.capacity()), (0, n));
        assert_eq!(w.as_ptr() as usize, ptr);
        let z = filled(n, 0i64);
        assert!(z.iter().all(|&x| x == 0));
    }

    #[test]
    fn scratch_reuses_a_fully_initialised_buffer_and_zeroes_a_fresh_one() {
        let n = 40_000 + 11;
        let fresh: Vec<f32> = scratch(n);
        assert!(fresh.len() == n && fresh.iter().all(|&x| x == 0.0));
        give(vec![2.5f32; n]);
        let reused: Vec<f32> = scratch(n);
        assert_eq!(reused.len(), n); // contents unspecified (here: the old values)
        // a vector with spare capacity holds uninitialised elements: never cached
        let mut partial: Vec<f32> = Vec::with_capacity(n + 1);
        partial.extend(std::iter::repeat_n(1.0, n));
        let before = buffer_cache_bytes();
        give(partial);
        assert_eq!(buffer_cache_bytes(), before);
    }

    #[test]
    fn sizes_past_any_allocation_panic_with_the_size_instead_of_wrapping() {
        // (2^62 + 40000) · 4 bytes wraps to 160000: it must not select a cached buffer of
        // that many bytes.
        give(vec![0f32; 40_000]);
        let n = (1usize << 62) + 40_000;
        let err = std::panic::catch_unwind(|| take::<f32>(n)).unwrap_err();
        let msg = err.downcast_ref::<String>().unwrap();
        assert!(msg.contains(&n.to_string()) && msg.contains("f32"), "{msg}");
        assert!(std::panic::catch_unwind(|| scratch::<f64>(n)).is_err());
    }

    #[test]
    fn memory_the_system_refuses_is_a_panic_not_an_abort() {
        // 2^59 f32 = 2 EiB: a valid size that no machine has
        let err = std::panic::catch_unwind(|| scratch::<f32>(1 << 59)).unwrap_err();
        assert!(err.downcast_ref::<String>().unwrap().contains("out of memory"));
        assert!(std::panic::catch_unwind(|| take::<i64>(1 << 59)).is_err());
    }

    #[test]
    fn small_buffers_are_not_cached() {
        let v: Vec<f32> = vec![0.0; 17];
        let before = buffer_cache_bytes();
        give(v);
        assert_eq!(buffer_cache_bytes(), before);
    }

    #[test]
    fn oldest_buckets_are_released_to_stay_under_the_limit() {
        let mut cache = Cache { buckets: None, bytes: 0, tick: 0 };
        let mk = |n: usize| {
            let mut v: Vec<f32> = Vec::with_capacity(n);
            let p = NonNull::new(v.as_mut_ptr().cast::<u8>()).unwrap();
            std::mem::forget(v);
            Block { ptr: p }
        };
        for (i, n) in [50_001usize, 50_002, 50_003].into_iter().enumerate() {
            cache.buckets().insert(key_of::<f32>(n), Bucket { blocks: vec![mk(n)], last_used: i as u64 });
            cache.bytes += n * 4;
        }
        assert!(cache.release_oldest(key_of::<f32>(50_003)));
        assert!(!cache.buckets().contains_key(&key_of::<f32>(50_001)));
        assert_eq!(cache.bytes, (50_002 + 50_003) * 4);
        cache.clear();
        assert_eq!(cache.bytes, 0);
    }
}

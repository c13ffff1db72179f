//! Allocation is bounded by the input: a global allocator records the largest single
//! request (allocation or reallocation) made on this thread while a load runs, and for
//! valid files and hostile ones alike it stays within a small multiple of the input size
//! plus [`SLACK`] for fixed-size buffers. Hostile files declare sizes up to `u32::MAX`
//! per dimension (products far past the address space), or, gzip-compressed, headers
//! that claim far more than the stream inflates to; so nothing may be sized from a
//! declared length. For gzip the bound is taken over the bytes the stream really
//! inflates to (deflate expands at most about 1032 times, so that is itself bounded by
//! the compressed size).
//!
//! Everything runs in one `#[test]` on one thread, so no other test's allocations mix in.
//! Run with `--nocapture` to see each case's ratio.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::io::{Read, Write};

use flate2::Compression;
use flate2::read::MultiGzDecoder;
use flate2::write::GzEncoder;
use sinew_data::{CsvOptions, read_csv_bytes, read_idx_bytes};
use sinew_tensor::DType;

/// Records the largest request of the current thread while armed.
struct Largest;

thread_local! {
    static ARMED: Cell<bool> = const { Cell::new(false) };
    static LARGEST: Cell<usize> = const { Cell::new(0) };
}

fn note(size: usize) {
    if ARMED.try_with(Cell::get).unwrap_or(false) {
        let _ = LARGEST.try_with(|m| m.set(m.get().max(size)));
    }
}

// SAFETY: forwards every call unchanged to the system allocator; the bookkeeping is two
// thread-local `Cell`s with const initialisers and no destructors, so it never allocates
// or re-enters the allocator.
unsafe impl GlobalAlloc for Largest {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note(layout.size());
        // SAFETY: same contract as ours.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        note(layout.size());
        // SAFETY: same contract as ours.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note(new_size);
        // SAFETY: same contract as ours.
        unsafe { System.realloc(ptr, layout, new_size) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as ours.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Largest = Largest;

/// Room for fixed-size buffers (the inflater's window and state, error messages).
const SLACK: usize = 64 << 10;

/// Runs `f` and returns the largest single allocation request it made on this thread.
fn largest_request<R>(f: impl FnOnce() -> R) -> (R, usize) {
    LARGEST.with(|m| m.set(0));
    ARMED.with(|a| a.set(true));
    let r = f();
    ARMED.with(|a| a.set(false));
    (r, LARGEST.with(Cell::get))
}

/// Asserts the bound for one load over `base` bytes; returns whether the load succeeded.
fn check<T, E>(what: &str, base: usize, factor: usize, load: impl FnOnce() -> Result<T, E>) -> bool {
    let (result, largest) = largest_request(load);
    let bound = factor * base + SLACK;
    println!(
        "{what}: largest request {largest} B for {base} B of input ({:.2}x)",
        largest as f64 / base as f64
    );
    assert!(largest <= bound, "{what}: a request of {largest} B for {base} B of input (bound {bound} B)");
    result.is_ok()
}

fn idx(code: u8, dims: &[u32], data: &[u8]) -> Vec<u8> {
    let mut f = vec![0, 0, code, dims.len() as u8];
    for d in dims {
        f.extend(d.to_be_bytes());
    }
    f.extend_from_slice(data);
    f
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut e = GzEncoder::new(Vec::new(), Compression::best());
    e.write_all(bytes).unwrap();
    e.finish().unwrap()
}

/// What a gzip stream really inflates to (all members), computed outside any measured load.
fn inflated_len(gz: &[u8]) -> usize {
    let mut out = Vec::new();
    let _ = MultiGzDecoder::new(gz).read_to_end(&mut out);
    out.len()
}

/// Per input byte: an IDX `u8` element read as `i64` takes 8 bytes.
const IDX_FACTOR: usize = 16;
/// Per input byte: a line of `n` fields (`n - 1` delimiters) holds `n` field slices of 24
/// bytes, and a header as many names.
const CSV_FACTOR: usize = 24;

fn idx_cases() {
    // valid: MNIST-shaped images (60 of 28×28) and labels, every dtype
    let pixels: Vec<u8> = (0..60 * 28 * 28).map(|i| (i * 7 % 256) as u8).collect();
    let images = idx(0x08, &[60, 28, 28], &pixels);
    let labels = idx(0x08, &[60], &pixels[..60]);
    let floats = idx(0x0E, &[100, 8], &[0x3f; 6400]);
    let mut valid = vec![("images", images.clone()), ("labels", labels), ("f64", floats)];
    valid.push(("i16", idx(0x0B, &[500], &[1; 1000])));
    for (name, file) in &valid {
        for dtype in [None, Some(DType::F32), Some(DType::F64)] {
            let ok = check(&format!("valid IDX {name} as {dtype:?}"), file.len(), IDX_FACTOR, || {
                read_idx_bytes(file, dtype)
            });
            assert!(ok, "{name}");
            let gz = gzip(file);
            let ok =
                check(&format!("valid gzip IDX {name} as {dtype:?}"), inflated_len(&gz), IDX_FACTOR, || {
                    read_idx_bytes(&gz, dtype)
                });
            assert!(ok, "{name}");
        }
    }

    // hostile: sizes the data cannot back
    let max = u32::MAX;
    let hostile: Vec<(&str, Vec<u8>)> = vec![
        ("60000×28×28 u8 declared, 1 KB present", idx(0x08, &[60_000, 28, 28], &pixels[..1024])),
        ("u32::MAX×4 f64 declared, none present", idx(0x0E, &[max, 4], &[])),
        ("u32::MAX×u32::MAX u8 declared", idx(0x08, &[max, max], &pixels[..100])),
        ("255 dimensions of u32::MAX (product overflows)", idx(0x0E, &[max; 255], &[])),
        (
            "255 dimensions declared, 3 present",
            idx(0x08, &[max; 3], &[])[..]
                .iter()
                .enumerate()
                .map(|(i, &b)| if i == 3 { 255 } else { b })
                .collect(),
        ),
        ("one dimension of u32::MAX i32, 4 KB present", idx(0x0C, &[max], &[7; 4096])),
    ];
    for (name, file) in &hostile {
        let ok =
            check(&format!("hostile IDX: {name}"), file.len(), IDX_FACTOR, || read_idx_bytes(file, None));
        assert!(!ok, "{name} loaded");
        // the same, compressed: the header inflates first and lies about the rest
        let gz = gzip(file);
        let ok = check(&format!("hostile gzip IDX: {name}"), inflated_len(&gz), IDX_FACTOR, || {
            read_idx_bytes(&gz, None)
        });
        assert!(!ok, "{name} loaded from gzip");
    }

    // gzip streams that lie about themselves
    let gz = gzip(&images);
    let n = gz.len();
    let mut isize_huge = gz.clone();
    isize_huge[n - 4..].copy_from_slice(&u32::MAX.to_le_bytes()); // the trailer's size field
    // FEXTRA set, with an extra field of 65535 bytes that is not there
    let mut extra = gz[..10].to_vec();
    extra[3] |= 0x04;
    extra.extend([0xff, 0xff]);
    extra.extend_from_slice(&gz[10..]);
    // FNAME set, with a name that never ends
    let mut name = gz[..10].to_vec();
    name[3] |= 0x08;
    name.extend(vec![b'a'; 20_000]);
    let lying: Vec<(&str, Vec<u8>)> = vec![
        ("trailer size u32::MAX", isize_huge),
        ("FEXTRA of 65535 bytes", extra),
        ("unterminated FNAME", name),
    ];
    for (what, bytes) in &lying {
        let base = bytes.len().max(inflated_len(bytes));
        let ok = check(&format!("gzip: {what}"), base, IDX_FACTOR, || read_idx_bytes(bytes, None));
        assert!(!ok, "{what} loaded");
    }

    // gzip bombs: a kilobyte that inflates to a megabyte. Valid, the result is as big as
    // the data it holds; declared larger than that, the reader stops at the declared size
    // and then at the end of the stream, never sizing a buffer from the declaration.
    let zeros = vec![0u8; 1 << 20];
    let bomb = gzip(&idx(0x08, &[1024, 1024], &zeros));
    assert!(bomb.len() < 2 << 10, "a {} B bomb", bomb.len());
    let ok = check("gzip bomb, valid", inflated_len(&bomb), IDX_FACTOR, || read_idx_bytes(&bomb, None));
    assert!(ok);
    let liar = gzip(&idx(0x08, &[max, max], &zeros));
    let ok = check("gzip bomb declaring u32::MAX² bytes", inflated_len(&liar), IDX_FACTOR, || {
        read_idx_bytes(&liar, Some(DType::F32))
    });
    assert!(!ok);
    let liar = gzip(&idx(0x08, &[max], &zeros));
    let ok =
        check("gzip bomb declaring 4 GiB", inflated_len(&liar), IDX_FACTOR, || read_idx_bytes(&liar, None));
    assert!(!ok);
}

fn csv_cases() {
    let header = CsvOptions::new().header(true);
    let mut iris = String::from("a,b,c,d,class\n");
    for i in 0..150 {
        iris.push_str(&format!("5.{},3.{},1.4,0.2,{}\n", i % 10, i % 7, i % 3));
    }
    let rows = "1\n".repeat(50_000);
    let cases: Vec<(&str, Vec<u8>, CsvOptions, bool)> = vec![
        ("valid iris-like", iris.into_bytes(), header.clone(), true),
        ("50k one-cell rows (i64 targets)", rows.clone().into_bytes(), CsvOptions::new(), true),
        (
            "50k one-cell rows (f64 features)",
            rows.into_bytes(),
            CsvOptions::new().target(None).feature_dtype(DType::F64),
            true,
        ),
        ("a 100k-field header", [vec![b','; 100_000], b"\n".to_vec()].concat(), header.clone(), true),
        ("a row of 100k empty fields", vec![b','; 100_000], CsvOptions::new(), false),
        (
            "50k one-digit fields",
            [b"1,".repeat(49_999), b"1".to_vec()].concat(),
            CsvOptions::new().target(None),
            true,
        ),
        (
            "a 100k-byte quoted field with escapes",
            [b"\"".to_vec(), b"\"\"".repeat(50_000), b"\",1\n".to_vec()].concat(),
            CsvOptions::new(),
            false,
        ),
        ("a 100k-digit number", [vec![b'7'; 100_000], b",1\n".to_vec()].concat(), CsvOptions::new(), true),
    ];
    for (what, bytes, opts, valid) in &cases {
        let ok = check(&format!("CSV: {what}"), bytes.len(), CSV_FACTOR, || read_csv_bytes(bytes, opts));
        assert_eq!(ok, *valid, "{what}");
    }
}

#[test]
fn loads_allocate_within_a_multiple_of_the_input() {
    // the tracker sees this thread's requests: check that it does
    let (v, largest) = largest_request(|| vec![0u8; 1 << 20]);
    assert!(largest >= v.len(), "the tracking allocator saw {largest} B");
    drop(v);
    idx_cases();
    csv_cases();
}

//! Allocation is bounded by the input: a global allocator records the largest single
//! request (allocation or reallocation) made on this thread while a load runs, and for
//! valid files and hostile ones alike it stays within a small multiple of the input size
//! plus [`SLACK`] for fixed-size buffers. Hostile inputs declare lengths up to
//! `u64::MAX` (sequence and map lengths, string and byte-string lengths, payload and
//! header lengths) and shapes whose product is huge, so nothing may be sized from a
//! declared length; checkpoint payloads are framed with correct lengths and checksums,
//! so every case reaches the decoder.
//!
//! Everything runs in one `#[test]` on one thread, so no other test's allocations mix in.
//! Run with `--nocapture` to see each case's ratio.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::collections::BTreeMap;

use sinew_autograd::Var;
use sinew_nn::{BatchNorm1d, Forward, Linear, Module, Sequential, Tanh};
use sinew_optim::{Adam, CosineAnnealingLr, Optimizer, Scheduler};
use sinew_serialize::{
    CHECKPOINT_MAGIC, Checkpoint, crc32, read_safetensors, read_torch_object, write_safetensors,
};
use sinew_tensor::{DType, Generator, Tensor};

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

/// Room for fixed-size buffers (B-tree nodes, hash tables' first allocations, messages).
const SLACK: usize = 64 << 10;

/// The bound's factor for checkpoints: a collection grows by doubling as its elements
/// decode, and an element can take one input byte (a varint 0) and 24 bytes in memory
/// (an empty `Vec` of optimizer buffers), so 48 bytes per input byte in the worst case.
const CHECKPOINT_FACTOR: usize = 48;
/// For safetensors: the `safetensors` crate buffers its JSON header as serde `Content`
/// values (its header struct has a flattened field), 32 bytes each for an array element
/// as short as two input bytes (`0,`), in a `Vec` that grows by doubling: 32 bytes per
/// input byte in the worst case. (`f16` data read as `f32` only doubles.)
const SAFETENSORS_FACTOR: usize = 32;

/// For torch.save files: the unpickler makes at most one 32-byte node per opcode (one
/// byte or more), in a `Vec` that grows by doubling, so 64 bytes per input byte; a `u8` or
/// `bool` tensor widens to `i64` (8 bytes per stored byte), and views of one storage may
/// materialise up to 4 times its elements (the reader's limit): 32 bytes per stored byte.
const TORCH_FACTOR: usize = 64;

/// Runs `f` and returns the largest single allocation request it made on this thread.
fn largest_request<R>(f: impl FnOnce() -> R) -> (R, usize) {
    LARGEST.with(|m| m.set(0));
    ARMED.with(|a| a.set(true));
    let r = f();
    ARMED.with(|a| a.set(false));
    (r, LARGEST.with(Cell::get))
}

/// Asserts the bound for one load of `input`; returns whether the load succeeded.
fn check<T, E>(what: &str, input: &[u8], factor: usize, load: impl FnOnce(&[u8]) -> Result<T, E>) -> bool {
    let (result, largest) = largest_request(|| load(input));
    let base = input.len();
    let bound = factor * base + SLACK;
    println!(
        "{what}: largest request {largest} B for {base} B of input ({:.2}x)",
        largest as f64 / base as f64
    );
    assert!(largest <= bound, "{what}: a request of {largest} B for {base} B of input (bound {bound} B)");
    result.is_ok()
}

/// bincode 2's standard varint.
fn varint(v: u64) -> Vec<u8> {
    match v {
        0..=250 => vec![v as u8],
        251..=0xffff => [vec![251], (v as u16).to_le_bytes().to_vec()].concat(),
        0x1_0000..=0xffff_ffff => [vec![252], (v as u32).to_le_bytes().to_vec()].concat(),
        _ => [vec![253], v.to_le_bytes().to_vec()].concat(),
    }
}

/// A length-prefixed byte string.
fn bytes(b: &[u8]) -> Vec<u8> {
    [varint(b.len() as u64), b.to_vec()].concat()
}

/// Frames `payload` as a version-1 checkpoint with correct lengths and checksums.
fn frame(payload: &[u8]) -> Vec<u8> {
    frame_declaring(payload, payload.len() as u64)
}

/// Frames `payload` declaring `len` bytes, header checksum correct for that declaration.
fn frame_declaring(payload: &[u8], len: u64) -> Vec<u8> {
    let mut out = CHECKPOINT_MAGIC.to_vec();
    out.extend_from_slice(&1u32.to_le_bytes());
    out.extend_from_slice(&0u32.to_le_bytes());
    out.extend_from_slice(&len.to_le_bytes());
    let h = crc32(&out);
    out.extend_from_slice(&h.to_le_bytes());
    out.extend_from_slice(payload);
    out.extend_from_slice(&crc32(payload).to_le_bytes());
    out
}

/// After the model: no optimizer, no scheduler, epoch 0, step 0, no RNG, no metadata.
const TAIL: [u8; 6] = [0, 0, 0, 0, 0, 0];

/// One tensor record: name, dtype tag, shape, data.
fn tensor(name: &[u8], tag: u8, shape: &[u64], data: &[u8]) -> Vec<u8> {
    let mut out = bytes(name);
    out.push(tag);
    out.extend(varint(shape.len() as u64));
    for &d in shape {
        out.extend(varint(d));
    }
    out.extend(bytes(data));
    out
}

fn valid_checkpoint() -> Checkpoint {
    let mut g = Generator::new(3);
    let model = Sequential::new()
        .add(Linear::new(16, 64, &mut g))
        .add(BatchNorm1d::new(64))
        .add(Tanh)
        .add(Linear::new(64, 4, &mut g));
    let mut opt = Adam::new(model.parameters(), 0.01);
    let mut sched = Scheduler::new(CosineAnnealingLr { t_max: 10, eta_min: 0.0 }, &mut opt);
    for _ in 0..2 {
        let x = Var::constant(Tensor::randn_with(&[6, 16], DType::F32, &mut g));
        let loss = model.forward(&x).square().mean_all();
        opt.step(&loss.backward());
        sched.step(&mut opt);
    }
    Checkpoint {
        optimizer: Some(opt.state()),
        scheduler: Some(sched.state()),
        epoch: 1,
        step: 2,
        rng: Some(g.state()),
        metadata: BTreeMap::from([("note".into(), "alloc".into())]),
        ..Checkpoint::new(&model)
    }
}

fn checkpoint_cases() {
    let load = |b: &[u8]| Checkpoint::from_bytes(b);
    let good = valid_checkpoint().to_bytes().unwrap();
    assert!(check("valid checkpoint", &good, CHECKPOINT_FACTOR, load));
    let with_metadata = Checkpoint {
        metadata: (0..2000).map(|i| (format!("k{i}"), "v".repeat(i % 7))).collect(),
        ..Checkpoint::default()
    };
    let meta = with_metadata.to_bytes().unwrap();
    assert!(check("valid checkpoint, 2000 metadata entries", &meta, CHECKPOINT_FACTOR, load));

    let max = u64::MAX;
    let ok_f32 = tensor(b"w", 0, &[2, 2], &[0; 16]);
    let payloads: Vec<(&str, Vec<u8>)> = vec![
        ("model of u64::MAX tensors, none present", [varint(max), TAIL.to_vec()].concat()),
        ("tensor name of u64::MAX bytes", [varint(1), varint(max), TAIL.to_vec()].concat()),
        ("tensor name of 2^32 bytes", [varint(1), varint(1 << 32), vec![b'a'; 100], TAIL.to_vec()].concat()),
        (
            "shape of u64::MAX dimensions",
            [varint(1), bytes(b"w"), vec![0], varint(max), TAIL.to_vec()].concat(),
        ),
        (
            "data of u64::MAX bytes",
            [varint(1), bytes(b"w"), vec![0], varint(1), varint(4), varint(max), TAIL.to_vec()].concat(),
        ),
        (
            "shape [2^62, 4] of no data",
            [varint(1), tensor(b"w", 0, &[1 << 62, 4], &[]), TAIL.to_vec()].concat(),
        ),
        (
            "shape [u64::MAX, u64::MAX]",
            [varint(1), tensor(b"w", 1, &[max, max], &[0; 8]), TAIL.to_vec()].concat(),
        ),
        (
            "shape [2^32; 8] of 16 bytes",
            [varint(1), tensor(b"w", 2, &[1 << 32; 8], &[0; 16]), TAIL.to_vec()].concat(),
        ),
        (
            "metadata of u64::MAX entries",
            [varint(1), ok_f32.clone(), vec![0, 0, 0, 0, 0], varint(max)].concat(),
        ),
        ("optimizer: kind of u64::MAX bytes", [varint(0), vec![1], varint(max), vec![0; 64]].concat()),
        (
            "optimizer: u64::MAX parameter steps",
            [varint(0), vec![1], bytes(b"adam"), varint(0), varint(max), vec![1; 64]].concat(),
        ),
        (
            "optimizer: a buffer of u64::MAX f32 values",
            [
                varint(0),
                vec![1],
                bytes(b"adam"),
                varint(0),
                varint(0),
                varint(0),
                varint(1),
                varint(1),
                bytes(b"exp_avg"),
                varint(0),
                varint(1),
                varint(4),
                varint(max),
                vec![0; 64],
            ]
            .concat(),
        ),
        (
            "scheduler: u64::MAX base rates",
            [varint(0), vec![0, 1], varint(0), varint(max), vec![0; 64]].concat(),
        ),
        (
            // the worst ratio a valid payload has: each empty buffer list is one input
            // byte and 24 bytes in memory
            // (70k: just past a power of two, so the last doubling nearly reaches 48x)
            "optimizer: 70k empty buffer lists",
            [
                varint(0),
                vec![1],
                bytes(b"adam"),
                varint(0),
                varint(0),
                varint(0),
                varint(70_000),
                vec![0; 70_000],
                TAIL[1..].to_vec(),
            ]
            .concat(),
        ),
        ("100k empty tensor names (shape [0])", {
            let t = tensor(b"", 0, &[0], &[]);
            [varint(100_000), t.repeat(100_000), TAIL.to_vec()].concat()
        }),
    ];
    for (what, payload) in &payloads {
        check(&format!("checkpoint payload: {what}"), &frame(payload), CHECKPOINT_FACTOR, load);
    }
    // framing that lies: a declared payload length far past the file, and u64::MAX
    let small = [varint(1), ok_f32, TAIL.to_vec()].concat();
    assert!(check("small checkpoint", &frame(&small), CHECKPOINT_FACTOR, load));
    for len in [max, max - 32, 1 << 40, small.len() as u64 + 1] {
        let ok = check(
            &format!("checkpoint declaring {len} payload bytes"),
            &frame_declaring(&small, len),
            4,
            load,
        );
        assert!(!ok);
    }
}

fn safetensors_cases() {
    let load = |b: &[u8]| read_safetensors(b);
    let c = valid_checkpoint();
    let good = write_safetensors(c.model.as_slice()).unwrap();
    assert!(check("valid safetensors", &good, SAFETENSORS_FACTOR, load));
    let with_header = |header: &str, data: &[u8]| {
        [(header.len() as u64).to_le_bytes().to_vec(), header.as_bytes().to_vec(), data.to_vec()].concat()
    };
    let f16 =
        with_header(r#"{"h":{"dtype":"F16","shape":[32768],"data_offsets":[0,65536]}}"#, &[0x3c; 65536]);
    assert!(check("valid f16 safetensors (read as f32)", &f16, SAFETENSORS_FACTOR, load));
    let many: Vec<String> = (0..5000)
        .map(|i| {
            format!("\"t{i}\":{{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[{},{}]}}", 4 * i, 4 * i + 4)
        })
        .collect();
    let order: Vec<String> = (0..5000).map(|i| format!("t{i}")).collect();
    let header =
        format!("{{\"__metadata__\":{{\"sinew.order\":\"{}\"}},{}}}", order.join("\\n"), many.join(","));
    let many = with_header(&header, &[7; 20_000]);
    assert!(check("valid safetensors, 5000 tensors with an order", &many, SAFETENSORS_FACTOR, load));

    let mut huge_len = u64::MAX.to_le_bytes().to_vec();
    huge_len.extend_from_slice(b"{}");
    let mut big_len = (99u64 << 20).to_le_bytes().to_vec();
    big_len.extend_from_slice(b"{\"a\":1}");
    // 16385 elements: just past a power of two, so the last doubling nearly reaches 32x
    let dims = vec!["0"; 16_385].join(",");
    let hostile: Vec<(&str, Vec<u8>)> = vec![
        ("header length u64::MAX", huge_len),
        ("header length 99 MiB, 7 bytes present", big_len),
        (
            "shape [2^62, 4] of no data",
            with_header(r#"{"w":{"dtype":"F32","shape":[4611686018427387904,4],"data_offsets":[0,0]}}"#, &[]),
        ),
        (
            "shape [2^32, 2^32] of 16 bytes",
            with_header(
                r#"{"w":{"dtype":"F64","shape":[4294967296,4294967296],"data_offsets":[0,16]}}"#,
                &[0; 16],
            ),
        ),
        (
            "data offsets past the end",
            with_header(
                r#"{"w":{"dtype":"F32","shape":[4],"data_offsets":[0,18446744073709551615]}}"#,
                &[0; 16],
            ),
        ),
        (
            "a shape of 16385 zeros",
            with_header(&format!(r#"{{"w":{{"dtype":"U8","shape":[{dims}],"data_offsets":[0,1]}}}}"#), &[1]),
        ),
        (
            "an order naming 50k tensors that are not there",
            with_header(
                &format!(
                    r#"{{"__metadata__":{{"sinew.order":"{}"}},"w":{{"dtype":"U8","shape":[1],"data_offsets":[0,1]}}}}"#,
                    (0..50_000).map(|i| format!("n{i}")).collect::<Vec<_>>().join("\\n")
                ),
                &[1],
            ),
        ),
    ];
    for (what, file) in &hostile {
        check(&format!("hostile safetensors: {what}"), file, SAFETENSORS_FACTOR, load);
    }
}

/// A legacy-format stream around `pickle` (magic, protocol, system info, the pickle,
/// then `keys`, a pickled list of storage keys, and `records`).
fn legacy(pickle: &[u8], keys: &[u8], records: &[u8]) -> Vec<u8> {
    let mut b =
        vec![0x80, 0x02, 0x8a, 0x0a, 0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19, b'.'];
    b.extend_from_slice(b"\x80\x02M\xe9\x03.\x80\x02}.");
    b.extend_from_slice(pickle);
    b.extend_from_slice(keys);
    b.extend_from_slice(records);
    b
}

/// `{'w': tensor}` over storage `0` of `numel` elements of `storage` type, viewed with
/// `size` and `stride` (each a pickled tuple).
fn tensor_pickle(storage: &str, numel: u32, size: &[u8], stride: &[u8]) -> Vec<u8> {
    let mut p =
        b"\x80\x02}X\x01\x00\x00\x00wctorch._utils\n_rebuild_tensor_v2\n((X\x07\x00\x00\x00storagectorch\n"
            .to_vec();
    p.extend_from_slice(storage.as_bytes());
    p.extend_from_slice(b"\nX\x01\x00\x00\x000X\x03\x00\x00\x00cpuJ");
    p.extend_from_slice(&numel.to_le_bytes());
    p.extend_from_slice(b"tQK\x00");
    p.extend_from_slice(size);
    p.extend_from_slice(stride);
    p.extend_from_slice(b"\x89ccollections\nOrderedDict\n)RtRs.");
    p
}

fn torch_cases() {
    let load = |b: &[u8]| read_torch_object(b);
    let fixtures: [(&str, &[u8]); 5] = [
        ("mlp.pt", include_bytes!("../../../tests/fixtures/torch/mlp.pt")),
        ("checkpoint.pt", include_bytes!("../../../tests/fixtures/torch/checkpoint.pt")),
        ("dtypes.pt", include_bytes!("../../../tests/fixtures/torch/dtypes.pt")),
        ("views_legacy.pt", include_bytes!("../../../tests/fixtures/torch/views_legacy.pt")),
        ("zip_bomb.pt", include_bytes!("../../../tests/fixtures/torch/hostile/zip_bomb.pt")),
    ];
    for (what, file) in fixtures {
        let ok = check(&format!("torch file {what}"), file, TORCH_FACTOR, load);
        assert_eq!(ok, what != "zip_bomb.pt", "{what}");
    }
    let n = 200_000;
    let nested = [vec![b']'; n], vec![b'a'; n - 1], vec![b'.']].concat();
    let nones = [vec![b'N'; n], vec![b'.']].concat();
    let dups = [b"N".to_vec(), vec![b'2'; n], vec![b'.']].concat();
    let puts: Vec<u8> = [
        b"N".to_vec(),
        (0..n as u32).flat_map(|i| [&[b'r'][..], &i.to_le_bytes()].concat()).collect(),
        vec![b'.'],
    ]
    .concat();
    let laughs = {
        let mut p = b"]q\x00".to_vec();
        for level in 1..40u8 {
            p.push(b'(');
            p.extend(std::iter::repeat_n([b'h', level - 1], 10).flatten());
            p.extend_from_slice(&[b'l', b'q', level]);
        }
        p.push(b'.');
        p
    };
    let no_keys = b"\x80\x02].";
    let one_key = b"\x80\x02]X\x01\x00\x00\x000a.";
    // a 64-element u8 storage, expanded (stride 0) to 2^20 elements: past the view limit
    let expanded = tensor_pickle("ByteStorage", 64, b"J\x00\x00\x10\x00\x85", b"K\x00\x85");
    let records = [64u64.to_le_bytes().to_vec(), vec![1; 64]].concat();
    // a storage declaring 2^31 - 1 floats, 4 present
    let short = tensor_pickle("FloatStorage", 0x7fff_ffff, b"K\x01\x85", b"K\x01\x85");
    let short_records = [0x7fff_ffffu64.to_le_bytes().to_vec(), vec![0; 4]].concat();
    let hostile: Vec<(&str, Vec<u8>)> = vec![
        ("200k nested lists", legacy(&nested, no_keys, &[])),
        ("200k Nones on the stack", legacy(&nones, no_keys, &[])),
        ("200k DUPs", legacy(&dups, no_keys, &[])),
        ("200k memo entries", legacy(&puts, no_keys, &[])),
        ("shared references, 10^39 values", legacy(&laughs, no_keys, &[])),
        ("a u8 storage expanded 2^14 times", legacy(&expanded, one_key, &records)),
        ("a storage of 2^31 floats, 4 bytes present", legacy(&short, one_key, &short_records)),
    ];
    for (what, file) in &hostile {
        // Python reads a pickle whose stack holds more than its result at STOP, too
        let valid = what.contains("Nones") || what.contains("DUPs") || what.contains("memo");
        let ok = check(&format!("hostile torch file: {what}"), file, TORCH_FACTOR, load);
        assert_eq!(ok, valid, "{what}");
    }
}

#[test]
fn loads_allocate_within_a_multiple_of_the_input() {
    // the tracker sees this thread's requests: check that it does
    let (v, largest) = largest_request(|| vec![0u8; 1 << 20]);
    assert!(largest >= v.len(), "the tracking allocator saw {largest} B");
    drop(v);
    checkpoint_cases();
    safetensors_cases();
    torch_cases();
}

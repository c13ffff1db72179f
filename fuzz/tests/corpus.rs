//! The stable check of the fuzz targets: each target's body runs over its seed corpus
//! (`corpus/TARGET/`, which must be exactly what `sinew_fuzz::seeds::all` writes) and over
//! deterministic mutations of every seed (truncations, byte flips, boundary values written
//! over length fields, removed and repeated spans), each case under `catch_unwind`. The
//! test fails if any case panics (or takes more than a few seconds), printing the target
//! and the input in hex.
//!
//! An input that makes sinew panic, once reported, may be parked in
//! `known/TARGET/NAME` (raw bytes; see `known/README.md`): that exact input is then
//! skipped, and the rest of the run still has to pass.
//!
//! Regenerate the corpus after a format change with
//! `cargo test --manifest-path fuzz/Cargo.toml -- --ignored regenerate_corpus`.

use std::cell::Cell;
use std::collections::BTreeSet;
use std::panic::{self, AssertUnwindSafe};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use sinew_fuzz::seeds;

fn fuzz_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn corpus_dir() -> PathBuf {
    fuzz_dir().join("corpus")
}

/// A fuzz target's body.
type Body = fn(&[u8]) -> bool;

/// Each target, and the seeds it must load (the others must be refused).
const TARGETS: [(&str, Body, &[&str]); 7] = [
    (
        "checkpoint_from_bytes",
        sinew_fuzz::checkpoint_from_bytes,
        &["default.sinew", "adam_cosine.sinew", "sgd.sinew", "trainer.sinew"],
    ),
    // the default checkpoint has no optimizer state; SGD's does not fit Adam
    ("checkpoint_payload", sinew_fuzz::checkpoint_payload, &["adam_cosine.bin", "trainer.bin"]),
    (
        "read_safetensors",
        sinew_fuzz::read_safetensors,
        &["model.safetensors", "dtypes.safetensors", "f16_bf16_i32.safetensors"],
    ),
    (
        "read_torch",
        sinew_fuzz::read_torch,
        &[
            "mlp.pt",
            "checkpoint.pt",
            "dtypes.pt",
            "views.pt",
            "protocol4.pt",
            "deflated.pt",
            "views_legacy.pt",
        ],
    ),
    // PyTorch's pickles name storages of other sizes than torch_pickle's 256 bytes
    ("torch_pickle", sinew_fuzz::torch_pickle, &["views.pkl"]),
    (
        "read_idx_bytes",
        sinew_fuzz::read_idx_bytes,
        &["images.idx", "images.idx.gz", "labels.idx", "f32.idx", "i16.idx.gz"],
    ),
    (
        "read_csv_bytes",
        sinew_fuzz::read_csv_bytes,
        &["iris_header.csv", "semicolon_regression.csv", "no_target.csv"],
    ),
];

/// Byte flips per seed (1 to 4 bytes each).
const FLIPS: usize = 3000;
/// Boundary values written over 4 or 8 bytes, per seed.
const BOUNDARIES: usize = 1000;
/// Removed or repeated spans, per seed.
const SPANS: usize = 500;
/// A case slower than this fails too (a loader must not spin on its input).
const SLOW: Duration = Duration::from_secs(5);

/// A deterministic xorshift.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// Little-endian values that stress a declared length, count or shape.
const BOUNDARY_VALUES: [u64; 8] = [0, 1, 0x7fff_ffff, 0xffff_ffff, 1 << 32, 1 << 60, (1 << 63) - 1, u64::MAX];

/// Every mutation of `seed`, in a fixed order.
fn mutations(seed: &[u8], rng: &mut Rng) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    for cut in (0..seed.len()).step_by(1 + seed.len() / 200) {
        out.push(seed[..cut].to_vec());
    }
    if seed.is_empty() {
        return out;
    }
    for _ in 0..FLIPS {
        let mut m = seed.to_vec();
        for _ in 0..1 + rng.below(4) {
            let i = rng.below(m.len());
            m[i] ^= 1 + rng.below(255) as u8;
        }
        out.push(m);
    }
    for _ in 0..BOUNDARIES {
        let mut m = seed.to_vec();
        let v = BOUNDARY_VALUES[rng.below(BOUNDARY_VALUES.len())].to_le_bytes();
        let width = if rng.below(2) == 0 { 4 } else { 8 };
        let at = rng.below(m.len());
        let end = (at + width).min(m.len());
        m[at..end].copy_from_slice(&v[..end - at]);
        out.push(m);
    }
    for _ in 0..SPANS {
        let mut m = seed.to_vec();
        let at = rng.below(m.len());
        let len = 1 + rng.below(16.min(m.len() - at));
        if rng.below(2) == 0 {
            m.drain(at..at + len);
        } else {
            let span = m[at..at + len].to_vec();
            m.splice(at..at, span);
        }
        out.push(m);
    }
    out
}

/// The inputs parked in `known/TARGET/` (reported panics), skipped by the run.
fn known(target: &str) -> BTreeSet<Vec<u8>> {
    let Ok(dir) = std::fs::read_dir(fuzz_dir().join("known").join(target)) else { return BTreeSet::new() };
    dir.map(|e| std::fs::read(e.unwrap().path()).unwrap()).collect()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

thread_local! {
    /// Set while a case runs, so the panic hook stays quiet for the panics we catch and
    /// report ourselves (other tests' panics still print).
    static IN_CASE: Cell<bool> = const { Cell::new(false) };
}

/// Runs one case: `Ok(loaded)`, or the panic's message.
fn run(body: Body, input: &[u8]) -> Result<bool, String> {
    IN_CASE.with(|c| c.set(true));
    let result = panic::catch_unwind(AssertUnwindSafe(|| body(input)));
    IN_CASE.with(|c| c.set(false));
    result.map_err(|p| {
        p.downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| p.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "(a panic without a message)".into())
    })
}

#[test]
fn the_seed_corpus_is_what_the_generator_writes() {
    let want = seeds::all();
    for s in &want {
        let path = corpus_dir().join(s.target).join(s.name);
        let have = std::fs::read(&path)
            .unwrap_or_else(|e| panic!("{}: {e} (regenerate the corpus)", path.display()));
        assert!(have == s.bytes, "{} is stale: regenerate the corpus", path.display());
        assert!(s.bytes.len() <= 8 << 10, "{} is {} bytes: keep seeds small", path.display(), s.bytes.len());
    }
    let expected: BTreeSet<(String, String)> =
        want.iter().map(|s| (s.target.into(), s.name.into())).collect();
    for (target, ..) in TARGETS {
        for entry in std::fs::read_dir(corpus_dir().join(target)).unwrap() {
            let name = entry.unwrap().file_name().into_string().unwrap();
            assert!(
                expected.contains(&(target.to_string(), name.clone())),
                "corpus/{target}/{name} is not generated (libFuzzer's finds belong in another folder: see README.md)"
            );
        }
    }
}

#[test]
fn every_target_survives_its_corpus_and_its_mutations() {
    let default_hook = panic::take_hook();
    panic::set_hook(Box::new(move |info| {
        if !IN_CASE.with(Cell::get) {
            default_hook(info);
        }
    }));
    let start = Instant::now();
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let (mut failures, mut total) = (Vec::new(), 0);
    for (target, body, loads) in TARGETS {
        let dir = corpus_dir().join(target);
        let mut names: Vec<String> =
            std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
        names.sort();
        assert!(names.len() >= 3, "{target}: {} seeds", names.len());
        let known = known(target);
        let (mut cases, mut loaded, mut skipped) = (0, 0, 0);
        for name in &names {
            let seed = std::fs::read(dir.join(name)).unwrap();
            match run(body, &seed) {
                Ok(l) => assert_eq!(l, loads.contains(&name.as_str()), "{target}/{name}: loaded"),
                Err(msg) => failures.push(format!("{target}: seed {name} panicked: {msg}")),
            }
            for m in mutations(&seed, &mut rng) {
                if known.contains(&m) {
                    skipped += 1;
                    continue;
                }
                let t = Instant::now();
                match run(body, &m) {
                    Ok(l) => loaded += l as usize,
                    Err(msg) => failures.push(format!("{target}: panicked ({msg}) on {}", hex(&m))),
                }
                if t.elapsed() > SLOW {
                    failures.push(format!("{target}: {:?} on {}", t.elapsed(), hex(&m)));
                }
                cases += 1;
            }
        }
        total += cases + names.len();
        println!(
            "{target}: {} seeds, {cases} mutations ({loaded} loaded, {skipped} known and skipped)",
            names.len()
        );
    }
    let _ = panic::take_hook();
    println!("{total} cases in {:.2?}", start.elapsed());
    assert!(failures.is_empty(), "{} failing cases:\n{}", failures.len(), failures.join("\n"));
}

#[test]
#[ignore = "writes fuzz/corpus/: run after a format change"]
fn regenerate_corpus() {
    for s in seeds::all() {
        let dir = corpus_dir().join(s.target);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(s.name), &s.bytes).unwrap();
    }
}

#[test]
fn the_harness_reports_a_panic_with_its_input() {
    fn panics_on_0x42(data: &[u8]) -> bool {
        assert!(!data.contains(&0x42), "found 0x42");
        true
    }
    assert_eq!(run(panics_on_0x42, b"ab"), Ok(true));
    assert_eq!(run(panics_on_0x42, b"aB"), Err("found 0x42".to_string()));
    assert_eq!(hex(b"aB"), "6142");
    let mut rng = Rng(1);
    let ms = mutations(b"SINEWCKP\x01\0\0\0", &mut rng);
    assert_eq!(ms.len(), 12 + FLIPS + BOUNDARIES + SPANS);
    assert!(ms.iter().any(|m| m.len() > 12) && ms.iter().any(|m| m.len() < 12));
}

//! The stable check of the fuzz targets: each target's body runs over its seed corpus
//! (`seeds/TARGET/`, which must be exactly what `sinew_fuzz::seeds::all` writes) and over
//! seeded truncations and byte flips of every seed. Regenerate the corpus after a format
//! change with
//! `cargo test --manifest-path fuzz/Cargo.toml --no-default-features -- --ignored regenerate`.

use std::collections::BTreeSet;
use std::path::PathBuf;

use sinew_fuzz::seeds;

fn seeds_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("seeds")
}

/// A fuzz target's body.
type Body = fn(&[u8]) -> bool;

/// Each target, and the seeds it must load (the others must be refused).
const TARGETS: [(&str, Body, &[&str]); 5] = [
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

/// A deterministic xorshift.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % n as u64) as usize
    }
}

#[test]
fn the_seed_corpus_is_what_the_generator_writes() {
    let want = seeds::all();
    for s in &want {
        let path = seeds_dir().join(s.target).join(s.name);
        let have =
            std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e} (regenerate the seeds)", path.display()));
        assert!(have == s.bytes, "{} is stale: regenerate the seeds", path.display());
        assert!(s.bytes.len() <= 8 << 10, "{} is {} bytes: keep seeds small", path.display(), s.bytes.len());
    }
    let expected: BTreeSet<(String, String)> =
        want.iter().map(|s| (s.target.into(), s.name.into())).collect();
    for (target, ..) in TARGETS {
        for entry in std::fs::read_dir(seeds_dir().join(target)).unwrap() {
            let name = entry.unwrap().file_name().into_string().unwrap();
            assert!(
                expected.contains(&(target.to_string(), name.clone())),
                "seeds/{target}/{name} is not generated"
            );
        }
    }
}

#[test]
fn every_target_runs_over_its_seeds_and_their_mutations() {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    for (target, body, loads) in TARGETS {
        let dir = seeds_dir().join(target);
        let mut names: Vec<String> =
            std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
        names.sort();
        assert!(names.len() >= 3, "{target}: {} seeds", names.len());
        let (mut cases, mut loaded) = (0, 0);
        for name in &names {
            let bytes = std::fs::read(dir.join(name)).unwrap();
            assert_eq!(body(&bytes), loads.contains(&name.as_str()), "{target}/{name}");
            for cut in (0..bytes.len()).step_by(1 + bytes.len() / 200) {
                loaded += body(&bytes[..cut]) as usize;
                cases += 1;
            }
            for _ in 0..300 {
                let mut m = bytes.clone();
                for _ in 0..1 + rng.below(4) {
                    let i = rng.below(m.len());
                    m[i] ^= 1 + rng.below(255) as u8;
                }
                loaded += body(&m) as usize;
                cases += 1;
            }
        }
        println!("{target}: {} seeds, {cases} mutations, {loaded} of them loaded", names.len());
    }
}

#[test]
#[ignore = "writes fuzz/seeds/: run after a format change"]
fn regenerate() {
    for s in seeds::all() {
        let dir = seeds_dir().join(s.target);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(s.name), &s.bytes).unwrap();
    }
}

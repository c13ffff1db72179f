//! Loading never trusts the file. Thousands of seeded random truncations and 1-4 byte
//! flips of a valid checkpoint and of a valid safetensors file each give `Ok` or a clean
//! `Err`, never a panic (every call is wrapped in `catch_unwind`); for checkpoints, `Ok`
//! only when both checksums still validate. Corrupt payloads re-framed with valid
//! checksums (so the decoder itself sees garbage) are clean too. Then the named cases:
//! other kinds of file, future versions, and a crafted safetensors header that makes the
//! `safetensors` crate itself panic.

use std::collections::BTreeMap;
use std::panic::{AssertUnwindSafe, catch_unwind};

use sinew_autograd::Var;
use sinew_nn::{BatchNorm1d, Forward, Linear, Module, Sequential, Tanh};
use sinew_optim::{Adam, CosineAnnealingLr, Optimizer, Scheduler};
use sinew_serialize::{
    CHECKPOINT_MAGIC, Checkpoint, SerializeError, StateDict, crc32, read_safetensors, write_safetensors,
};
use sinew_tensor::{DType, Generator, Tensor};

const CASES: usize = 3000;

/// A deterministic xorshift, so every failure is reproducible from the case number.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// A realistic checkpoint: an MLP with batch norm (f32 and an i64 counter), a f64 extra,
/// Adam's state after two steps, a cosine schedule, the data RNG and metadata.
fn valid_checkpoint() -> Checkpoint {
    let mut g = Generator::new(3);
    let model = Sequential::new()
        .add(Linear::new(4, 8, &mut g))
        .add(BatchNorm1d::new(8))
        .add(Tanh)
        .add(Linear::new(8, 1, &mut g));
    let mut opt = Adam::new(model.parameters(), 0.01);
    let mut sched = Scheduler::new(CosineAnnealingLr { t_max: 10, eta_min: 0.0 }, &mut opt);
    for _ in 0..2 {
        let x = Var::constant(Tensor::randn_with(&[6, 4], DType::F32, &mut g));
        let loss = model.forward(&x).square().mean_all();
        opt.step(&loss.backward());
        sched.step(&mut opt);
    }
    let mut c = Checkpoint {
        optimizer: Some(opt.state()),
        scheduler: Some(sched.state()),
        epoch: 1,
        step: 2,
        rng: Some(g.state()),
        metadata: BTreeMap::from([("note".into(), "mutation".into())]),
        ..Checkpoint::new(&model)
    };
    c.model.insert("extra.f64", Tensor::from_vec(vec![1.5f64, -2.25, 1e300], &[3]).unwrap());
    c
}

/// Flips 1-4 bytes at random positions, each with a non-zero mask (so each flip changes
/// the data).
fn flip(bytes: &[u8], rng: &mut Rng) -> Vec<u8> {
    let mut out = bytes.to_vec();
    for _ in 0..1 + rng.below(4) {
        let i = rng.below(out.len());
        out[i] ^= 1 + rng.below(255) as u8;
    }
    out
}

/// Whether both checksums of a (possibly mutated) checkpoint validate for its bytes.
fn checksums_validate(b: &[u8]) -> bool {
    b.len() >= 32
        && crc32(&b[..24]).to_le_bytes() == b[24..28]
        && crc32(&b[28..b.len() - 4]).to_le_bytes() == b[b.len() - 4..]
}

/// Frames `payload` as a version-1 checkpoint with correct lengths and checksums.
fn frame(payload: &[u8]) -> Vec<u8> {
    let mut out = CHECKPOINT_MAGIC.to_vec();
    out.extend_from_slice(&1u32.to_le_bytes());
    out.extend_from_slice(&0u32.to_le_bytes());
    out.extend_from_slice(&(payload.len() as u64).to_le_bytes());
    let h = crc32(&out);
    out.extend_from_slice(&h.to_le_bytes());
    out.extend_from_slice(payload);
    out.extend_from_slice(&crc32(payload).to_le_bytes());
    out
}

/// Loads `bytes`, failing the test on a panic; returns the result.
fn load_checkpoint(bytes: &[u8], what: &str) -> Result<Checkpoint, SerializeError> {
    match catch_unwind(AssertUnwindSafe(|| Checkpoint::from_bytes(bytes))) {
        Ok(r) => {
            if let Err(e) = &r {
                assert!(!e.to_string().is_empty());
            }
            r
        }
        Err(_) => panic!("Checkpoint::from_bytes panicked on {what}"),
    }
}

fn load_safetensors_bytes(bytes: &[u8], what: &str) -> Result<Vec<(String, Tensor)>, SerializeError> {
    match catch_unwind(AssertUnwindSafe(|| read_safetensors(bytes))) {
        Ok(r) => r,
        Err(_) => panic!("read_safetensors panicked on {what}"),
    }
}

#[test]
fn checkpoint_truncations_and_flips_are_clean_errors() {
    let good = valid_checkpoint().to_bytes().unwrap();
    assert!(good.len() > 1000, "a checkpoint of {} bytes is too small to test", good.len());
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let mut kinds: BTreeMap<&str, usize> = BTreeMap::new();
    let mut tally = |e: &SerializeError| {
        let k = match e {
            SerializeError::Truncated { .. } => "truncated",
            SerializeError::Checksum { what: "header", .. } => "header checksum",
            SerializeError::Checksum { .. } => "payload checksum",
            SerializeError::WrongFormat { .. } => "wrong format",
            SerializeError::UnsupportedVersion { .. } => "version",
            _ => "other",
        };
        *kinds.entry(k).or_default() += 1;
    };
    for case in 0..CASES {
        let cut = rng.below(good.len());
        let err = load_checkpoint(&good[..cut], &format!("truncation {case} to {cut} bytes"))
            .expect_err("a truncated checkpoint loaded");
        tally(&err);
    }
    for case in 0..CASES {
        let bad = flip(&good, &mut rng);
        match load_checkpoint(&bad, &format!("flip case {case}")) {
            Ok(c) => {
                // only possible if the flips collided with both checksums
                assert!(checksums_validate(&bad), "flip case {case} loaded with a failing checksum");
                assert!(c.to_bytes().is_ok());
            }
            Err(e) => {
                // a flip inside the payload is always caught by its checksum
                tally(&e);
            }
        }
    }
    // a flip confined to the payload is always a payload checksum error
    for case in 0..CASES / 10 {
        let mut bad = good.clone();
        let i = 28 + rng.below(good.len() - 32);
        bad[i] ^= 1 << rng.below(8);
        let err = load_checkpoint(&bad, &format!("payload flip {case}")).unwrap_err();
        assert!(matches!(err, SerializeError::Checksum { what: "payload", .. }), "{err}");
    }
    println!("checkpoint errors by kind: {kinds:?}");
    assert!(kinds["truncated"] >= CASES && kinds["payload checksum"] > CASES / 2, "{kinds:?}");
}

/// The checksums are recomputed after mutating the payload, so every case reaches the
/// decoder and the tensor checks: each is `Ok` (a flip in a value) or a clean `Err`.
#[test]
fn corrupt_payloads_with_valid_checksums_are_clean() {
    let good = valid_checkpoint().to_bytes().unwrap();
    let payload = &good[28..good.len() - 4];
    let mut rng = Rng(0xD1B5_4A32_D192_ED03);
    let (mut ok, mut err) = (0, 0);
    for case in 0..CASES {
        let mutated = if case % 3 == 0 {
            payload[..rng.below(payload.len())].to_vec()
        } else {
            flip(payload, &mut rng)
        };
        match load_checkpoint(&frame(&mutated), &format!("re-framed case {case}")) {
            Ok(c) => {
                ok += 1;
                // whatever decoded is a valid checkpoint: it encodes and decodes again
                let again = c.to_bytes().unwrap();
                assert_eq!(Checkpoint::from_bytes(&again).unwrap().to_bytes().unwrap(), again, "case {case}");
            }
            Err(_) => err += 1,
        }
    }
    println!("re-framed payloads: {ok} loaded, {err} rejected");
    assert!(err > CASES / 3, "{err} rejections");
}

#[test]
fn safetensors_truncations_and_flips_never_panic() {
    let c = valid_checkpoint();
    let good = write_safetensors(c.model.as_slice()).unwrap();
    let mut rng = Rng(0x2545_F491_4F6C_DD1D);
    for case in 0..CASES {
        let cut = rng.below(good.len());
        assert!(
            load_safetensors_bytes(&good[..cut], &format!("truncation {case}")).is_err(),
            "truncation to {cut} loaded"
        );
    }
    let (mut ok, mut err) = (0, 0);
    for case in 0..CASES {
        let bad = flip(&good, &mut rng);
        match load_safetensors_bytes(&bad, &format!("flip case {case}")) {
            Ok(_) => ok += 1,
            Err(e) => {
                assert!(!e.to_string().is_empty());
                err += 1;
            }
        }
    }
    println!("safetensors flips: {ok} loaded (data bytes have no checksum), {err} rejected");
    assert!(err > 0 && ok > 0);
}

/// A header whose data offsets sum to nearly `usize::MAX`: the `safetensors` crate's
/// final length check (`end + 8 + n`) overflows on it, which panics where overflow checks
/// are on (this test profile). `read_safetensors` rejects it before calling the crate.
#[test]
fn crafted_safetensors_offsets_are_an_error_not_a_panic() {
    let size: u64 = (1 << 61) - 1;
    let entries: Vec<String> = (0..8u64)
        .map(|i| {
            format!(
                "\"t{i}\":{{\"dtype\":\"U8\",\"shape\":[{size}],\"data_offsets\":[{},{}]}}",
                i * size,
                (i + 1) * size
            )
        })
        .collect();
    let header = format!("{{{}}}", entries.join(","));
    let mut bytes = (header.len() as u64).to_le_bytes().to_vec();
    bytes.extend_from_slice(header.as_bytes());
    let err = load_safetensors_bytes(&bytes, "crafted offsets").unwrap_err();
    assert!(matches!(err, SerializeError::SafeTensors(_)), "{err}");
    assert!(err.to_string().contains("impossible data offset"), "{err}");
    // and absurd shapes of small data
    let header = r#"{"w":{"dtype":"F32","shape":[4611686018427387904,4],"data_offsets":[0,0]}}"#;
    let mut bytes = (header.len() as u64).to_le_bytes().to_vec();
    bytes.extend_from_slice(header.as_bytes());
    assert!(load_safetensors_bytes(&bytes, "absurd shape").is_err());
}

#[test]
fn other_kinds_of_file_are_named() {
    let st = write_safetensors(&[("w".into(), Tensor::ones(&[2]))]).unwrap();
    let err = Checkpoint::from_bytes(&st).unwrap_err();
    assert!(matches!(err, SerializeError::WrongFormat { .. }), "{err}");
    assert!(err.to_string().contains("safetensors file"), "{err}");
    let err = Checkpoint::from_bytes(b"PK\x03\x04\x14\x00\x00\x00").unwrap_err();
    assert!(err.to_string().contains("zip"), "{err}");
    let err = Checkpoint::from_bytes(b"#!/bin/sh\necho hi\n").unwrap_err();
    assert!(err.to_string().contains("23 21 2f 62"), "{err}");
    assert!(matches!(Checkpoint::from_bytes(b""), Err(SerializeError::Truncated { .. })));
    // and a checkpoint is not a safetensors file
    let ckpt = Checkpoint::default().to_bytes().unwrap();
    assert!(matches!(read_safetensors(&ckpt), Err(SerializeError::SafeTensors(_))));
}

#[test]
fn a_future_version_says_so() {
    let mut bytes = valid_checkpoint().to_bytes().unwrap();
    bytes[8..12].copy_from_slice(&7u32.to_le_bytes());
    let err = Checkpoint::from_bytes(&bytes).unwrap_err();
    assert!(matches!(err, SerializeError::UnsupportedVersion { found: 7, supported: 1 }), "{err}");
    let msg = err.to_string();
    assert!(msg.contains("version 7") && msg.contains("newer sinew"), "{msg}");
}

#[test]
fn files_on_disk_and_strict_module_loads() {
    let dir = std::env::temp_dir().join(format!("sinew-corruption-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("c.sinew");
    let c = valid_checkpoint();
    c.save(&path).unwrap();
    let back = Checkpoint::load(&path).unwrap();
    assert_eq!(back.to_bytes().unwrap(), c.to_bytes().unwrap());
    // a checkpoint cut short on disk
    let bytes = std::fs::read(&path).unwrap();
    std::fs::write(&path, &bytes[..bytes.len() / 2]).unwrap();
    let err = Checkpoint::load(&path).unwrap_err();
    assert!(matches!(err, SerializeError::Truncated { .. }), "{err}");
    let err = Checkpoint::load(dir.join("missing")).unwrap_err();
    assert!(err.to_string().contains("missing"), "{err}");
    // a state dict with an extra tensor: strict refuses, lenient reports
    let model = Sequential::new()
        .add(Linear::new(4, 8, &mut Generator::new(0)))
        .add(BatchNorm1d::new(8))
        .add(Tanh)
        .add(Linear::new(8, 1, &mut Generator::new(0)));
    match back.model.load_into(&model, true) {
        Err(SerializeError::StateDict(r)) => assert_eq!(r.unexpected, ["extra.f64"]),
        other => panic!("{other:?}"),
    }
    let mut state: StateDict = back.model.clone();
    assert!(state.remove("extra.f64").is_some());
    assert!(state.load_into(&model, true).unwrap().is_clean());
    std::fs::remove_dir_all(&dir).unwrap();
}

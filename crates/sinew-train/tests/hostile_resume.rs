//! Resuming from a checkpoint that was tampered with: crafted trainer metadata (history,
//! callback states, generators, as bincode in base64) and payload mutations with the
//! checksums recomputed, as an attacker would. Each attempt must either be refused by
//! `resume_from_checkpoint` with the model, the optimizer and the callbacks exactly as
//! before, or resume and then train an epoch, and never panic, abort or hang.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::PathBuf;

use sinew_nn::{Dropout, Linear, Module, Relu, Sequential};
use sinew_optim::{Adam, ExponentialLr, Optimizer};
use sinew_serialize::{Checkpoint, crc32};
use sinew_tensor::{DType, Generator, Tensor};
use sinew_train::{
    Callback, CsvLogger, EarlyStopping, Every, Loss, LrScheduleCallback, ModelCheckpoint,
    ReduceLrOnPlateauCallback, ResumeError, Trainer, Verbosity,
};

const EPOCHS: usize = 3;

fn dir() -> PathBuf {
    let d = std::env::temp_dir().join(format!("sinew-hostile-resume-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn data() -> (Tensor, Tensor) {
    let mut g = Generator::new(3);
    let x = Tensor::randn_with(&[32, 3], DType::F64, &mut g);
    let y = x.select(1, 0).gt_scalar(0.0).to_dtype(DType::I64);
    (x, y)
}

fn model(hidden: usize) -> Sequential {
    let mut g = Generator::new(1);
    let m = Sequential::new()
        .add(Linear::new(3, hidden, &mut g))
        .add(Relu)
        .add(Dropout::new(0.2, 4))
        .add(Linear::new(hidden, 2, &mut g));
    m.cast(DType::F64);
    m
}

/// A file name of its own for each call (the tests run in parallel).
fn unique(stem: &str) -> PathBuf {
    static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    dir().join(format!("{stem}-{}", N.fetch_add(1, std::sync::atomic::Ordering::Relaxed)))
}

/// The callbacks of the run, checkpoints written to `ckpt`.
fn callbacks(ckpt: PathBuf) -> Vec<Box<dyn Callback>> {
    let csv = ckpt.with_extension("csv");
    vec![
        Box::new(ModelCheckpoint::new(ckpt)),
        Box::new(LrScheduleCallback::new(ExponentialLr { gamma: 0.9 }, Every::Epoch)),
        Box::new(ReduceLrOnPlateauCallback::new("val_loss")),
        Box::new(EarlyStopping::new("val_loss", 100).restore_best_weights(true)),
        Box::new(CsvLogger::new(csv)),
    ]
}

/// A real checkpoint written by `fit` + `ModelCheckpoint` after `EPOCHS` epochs.
fn fit_checkpoint(hidden: usize) -> Checkpoint {
    let (x, y) = data();
    let m = model(hidden);
    let mut opt = Adam::new(m.parameters(), 0.01);
    let path = unique(&format!("run-{hidden}")).with_extension("sinew");
    let mut t = Trainer::new(&m, &mut opt, Loss::CrossEntropy)
        .epochs(EPOCHS)
        .batch_size(8)
        .verbosity(Verbosity::Quiet);
    for c in callbacks(path.clone()) {
        t = t.callback(c);
    }
    t.validation_split(0.25).fit(&x, &y);
    Checkpoint::load(&path).unwrap()
}

type Snapshot = (Vec<(String, Vec<u64>)>, sinew_optim::OptimizerState, Vec<Option<Vec<u8>>>);

/// What a resume could change, bit for bit.
fn snapshot(m: &Sequential, opt: &Adam, cbs: &[Box<dyn Callback>]) -> Snapshot {
    let params = m
        .state_dict()
        .into_iter()
        .map(|(n, t)| (n, t.to_vec::<f64>().into_iter().map(f64::to_bits).collect()))
        .collect();
    let states = cbs.iter().map(|c| c.state().map(|s| s.as_bytes().to_vec())).collect();
    (params, opt.state(), states)
}

/// Resumes a fresh run from `ckpt`: refused with nothing changed, or resumed and then
/// trained one more epoch. Any panic is a failure (`Err` with the message).
fn attempt(ckpt: &Checkpoint) -> Result<Result<(), ResumeError>, String> {
    catch_unwind(AssertUnwindSafe(|| {
        let (x, y) = data();
        let m = model(8);
        let mut opt = Adam::new(m.parameters(), 0.01);
        let mut cbs = callbacks(unique("resumed").with_extension("sinew"));
        let before = snapshot(&m, &opt, &cbs);
        let outcome = {
            let mut t = Trainer::new(&m, &mut opt, Loss::CrossEntropy)
                .epochs(EPOCHS + 1)
                .batch_size(8)
                .verbosity(Verbosity::Quiet);
            // the callbacks are lent, so that their states can be compared afterwards
            for c in cbs.iter_mut() {
                t = t.callback(c.as_mut());
            }
            match t.resume_from_checkpoint(ckpt) {
                Ok(t) => {
                    t.validation_split(0.25).fit(&x, &y);
                    Ok(())
                }
                Err(e) => Err(e),
            }
        };
        if let Err(e) = &outcome {
            // a refusal changes nothing: parameters, optimizer and callbacks bit for bit
            let after = snapshot(&m, &opt, &cbs);
            assert_eq!(before.0, after.0, "a refused resume changed the model ({e})");
            assert_eq!(before.1, after.1, "a refused resume changed the optimizer ({e})");
            assert_eq!(before.2, after.2, "a refused resume changed a callback ({e})");
        }
        outcome
    }))
    .map_err(|p| {
        p.downcast_ref::<String>()
            .cloned()
            .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_default()
    })
}

/// A refusal found after the optimizer and the callbacks were loaded (EarlyStopping's
/// weights checked against the model) undoes both.
#[test]
fn a_refused_resume_leaves_lent_callbacks_as_they_were() {
    let good = fit_checkpoint(8);
    let mut short = good.clone();
    short
        .metadata
        .insert("sinew_train.callbacks".into(), fit_checkpoint(5).metadata["sinew_train.callbacks"].clone());
    let m = model(8);
    let mut opt = Adam::new(m.parameters(), 0.01);
    let mut cbs = callbacks(unique("lent").with_extension("sinew"));
    let before = snapshot(&m, &opt, &cbs);
    let mut t = Trainer::new(&m, &mut opt, Loss::CrossEntropy).verbosity(Verbosity::Quiet);
    for c in cbs.iter_mut() {
        t = t.callback(c.as_mut());
    }
    assert!(matches!(t.resume_from_checkpoint(&short), Err(ResumeError::Mismatch(_))));
    assert_eq!(snapshot(&m, &opt, &cbs), before);
}

fn b64(bytes: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for c in bytes.chunks(3) {
        let b = [c[0], *c.get(1).unwrap_or(&0), *c.get(2).unwrap_or(&0)];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            out.push(if i <= c.len() { A[(n >> (18 - 6 * i) & 63) as usize] as char } else { '=' });
        }
    }
    out
}

fn unb64(s: &str) -> Vec<u8> {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = Vec::new();
    for c in s.as_bytes().chunks(4) {
        let pad = c.iter().filter(|&&x| x == b'=').count();
        let mut n = 0u32;
        for &x in &c[..4 - pad] {
            n = (n << 6) | A.iter().position(|&a| a == x).unwrap() as u32;
        }
        n <<= 6 * pad as u32;
        out.extend_from_slice(&[(n >> 16) as u8, (n >> 8) as u8, n as u8][..3 - pad]);
    }
    out
}

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

/// One mutation of `bytes`: flips, a huge varint (bincode's 0xFD + u64), truncation, a
/// run of random bytes, or u64::MAX.
fn mutate(bytes: &mut Vec<u8>, rng: &mut Rng) {
    if bytes.is_empty() {
        bytes.push(0);
    }
    let at = rng.below(bytes.len());
    match rng.below(6) {
        0 => {
            for _ in 0..1 + rng.below(4) {
                let i = rng.below(bytes.len());
                bytes[i] ^= 1 << rng.below(8);
            }
        }
        1 => {
            let mut huge = vec![0xFD];
            huge.extend_from_slice(&(1u64 << (30 + rng.below(34))).to_le_bytes());
            bytes.splice(at..at, huge);
        }
        2 => bytes.truncate(at),
        3 => {
            let run: Vec<u8> = (0..17).map(|_| rng.next() as u8).collect();
            let end = (at + 17).min(bytes.len());
            bytes.splice(at..end, run);
        }
        4 => {
            let mut max = vec![0xFD];
            max.extend_from_slice(&u64::MAX.to_le_bytes());
            let end = (at + 9).min(bytes.len());
            bytes.splice(at..end, max);
        }
        _ => bytes[at] = rng.next() as u8,
    }
}

fn check(results: &mut Vec<String>, label: String, ckpt: &Checkpoint) -> bool {
    match attempt(ckpt) {
        Ok(r) => r.is_err(),
        Err(panic) => {
            results.push(format!("{label}: panicked: {panic}"));
            false
        }
    }
}

#[test]
fn mutated_trainer_metadata_is_refused_or_resumes_and_never_panics() {
    let good = fit_checkpoint(8);
    assert!(attempt(&good).unwrap().is_ok(), "the untouched checkpoint resumes");
    let keys: Vec<String> = good
        .metadata
        .keys()
        .filter(|k| k.starts_with("sinew_train.") && !k.ends_with("version"))
        .cloned()
        .collect();
    assert!(keys.iter().any(|k| k.ends_with("callbacks")) && keys.iter().any(|k| k.ends_with("history")));
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let (mut failures, mut refused, mut cases) = (Vec::new(), 0, 0);
    for case in 0..3000 {
        let key = &keys[case % keys.len()];
        let mut ckpt = good.clone();
        let value = ckpt.metadata.get_mut(key).unwrap();
        let mut bytes = if value.parse::<u64>().is_ok() || value == "true" || value == "false" {
            value.clone().into_bytes()
        } else {
            unb64(value)
        };
        mutate(&mut bytes, &mut rng);
        *value = if value.parse::<u64>().is_ok() || value == "true" || value == "false" {
            String::from_utf8_lossy(&bytes).into_owned()
        } else {
            b64(&bytes)
        };
        cases += 1;
        refused += check(&mut failures, format!("case {case} ({key})"), &ckpt) as usize;
    }
    eprintln!("metadata mutations: {cases}, refused {refused}, resumed and trained {}", cases - refused);
    assert!(failures.is_empty(), "{} of {cases}:\n{}", failures.len(), failures.join("\n"));
    assert!(
        refused > cases / 4,
        "only {refused} of {cases} mutations were refused: the test mutates too little"
    );
}

#[test]
fn payload_mutations_with_recomputed_checksums_are_refused_or_resume() {
    let bytes = fit_checkpoint(8).to_bytes().unwrap();
    let payload_len = u64::from_le_bytes(bytes[16..24].try_into().unwrap()) as usize;
    let mut rng = Rng(0x2545_F491_4F6C_DD1D);
    let (mut failures, mut cases, mut refused) = (Vec::new(), 0, 0);
    for case in 0..3000 {
        let mut payload = bytes[28..28 + payload_len].to_vec();
        // in place only (a length change is caught by the framing, which has its own tests)
        for _ in 0..1 + rng.below(3) {
            let i = rng.below(payload.len());
            payload[i] = match rng.below(3) {
                0 => payload[i] ^ (1 << rng.below(8)),
                1 => 0xFF,
                _ => rng.next() as u8,
            };
        }
        let mut file = bytes[..28].to_vec();
        file.extend_from_slice(&payload);
        file.extend_from_slice(&crc32(&payload).to_le_bytes());
        let Ok(ckpt) = Checkpoint::from_bytes(&file) else { continue };
        cases += 1;
        refused += check(&mut failures, format!("payload case {case}"), &ckpt) as usize;
    }
    eprintln!("payload mutations that decode: {cases}, refused at resume {refused}");
    assert!(failures.is_empty(), "{} of {cases}:\n{}", failures.len(), failures.join("\n"));
    assert!(cases > 100, "only {cases} mutations decoded: the test exercises too little");
}

/// The cases found by hand and by the fuzz target, each by name.
#[test]
fn hand_crafted_hostile_checkpoints_are_refused_with_nothing_changed() {
    let good = fit_checkpoint(8);
    let with = |key: &str, value: String| {
        let mut c = good.clone();
        c.metadata.insert(format!("sinew_train.{key}"), value);
        c
    };
    let huge_vec = |n: u64| {
        let mut b = vec![0xFD];
        b.extend_from_slice(&n.to_le_bytes());
        b
    };
    // a callback list claiming 2^40 entries in 10 bytes (aborted on a 1 TB allocation)
    let mut cb = vec![0x01, 0xFD];
    cb.extend_from_slice(&(1u64 << 40).to_le_bytes());
    let cases: Vec<(&str, Checkpoint)> = vec![
        ("callbacks claiming 2^40 bytes", with("callbacks", b64(&cb))),
        ("history claiming u64::MAX epochs", with("history", b64(&huge_vec(u64::MAX)))),
        ("history of 17 random bytes", with("history", b64(&[0xA5; 17]))),
        ("generators claiming 2^62 entries", with("generators", b64(&huge_vec(1 << 62)))),
        ("seed that is not a number", with("seed", "18446744073709551616".into())),
        ("history of another length than the epochs", Checkpoint { epoch: good.epoch - 1, ..good.clone() }),
        ("epoch u64::MAX", Checkpoint { epoch: u64::MAX, ..good.clone() }),
        ("step u64::MAX", Checkpoint { step: u64::MAX, ..good.clone() }),
        ("no optimizer state", Checkpoint { optimizer: None, ..good.clone() }),
    ];
    let mut failures = Vec::new();
    for (name, ckpt) in &cases {
        match attempt(ckpt) {
            Ok(Err(_)) => {}
            Ok(Ok(())) => failures.push(format!("{name}: resumed")),
            Err(p) => failures.push(format!("{name}: panicked: {p}")),
        }
    }
    // an optimizer state that does not fit the model's next step (a negative square
    // average) was refused only after the model had been loaded
    let mut neg = good.clone();
    let opt = neg.optimizer.as_mut().unwrap();
    if let sinew_optim::StateTensor::F64 { data, .. } = &mut opt.buffers[0][1].1 {
        data[0] = -1.0;
    }
    match attempt(&neg) {
        Ok(Err(ResumeError::Optimizer(_))) => {}
        other => failures.push(format!("negative exp_avg_sq: {other:?}")),
    }
    // EarlyStopping's best weights from a model of another width: refused at resume,
    // not at the end of the remaining epochs
    let other = fit_checkpoint(5);
    let mut spliced = good.clone();
    spliced.metadata.insert("sinew_train.callbacks".into(), other.metadata["sinew_train.callbacks"].clone());
    match attempt(&spliced) {
        Ok(Err(ResumeError::Mismatch(msg))) if msg.contains("EarlyStopping") => {}
        other => failures.push(format!("EarlyStopping weights of another model: {other:?}")),
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn the_good_checkpoint_resumes_exactly_where_it_stopped() {
    let good = fit_checkpoint(8);
    let m = model(8);
    let mut opt = Adam::new(m.parameters(), 0.01);
    // without the callbacks whose states it holds, the resume is refused (not a panic
    // in `fit` later)
    let bare = Trainer::new(&m, &mut opt, Loss::CrossEntropy).verbosity(Verbosity::Quiet);
    assert!(
        matches!(bare.resume_from_checkpoint(&good), Err(ResumeError::Mismatch(msg)) if msg.contains("callback"))
    );
    let mut t = Trainer::new(&m, &mut opt, Loss::CrossEntropy).verbosity(Verbosity::Quiet);
    for c in callbacks(unique("good").with_extension("sinew")) {
        t = t.callback(c);
    }
    let t = t.resume_from_checkpoint(&good).unwrap();
    drop(t);
    assert_eq!(opt.state(), *good.optimizer.as_ref().unwrap());
    for (name, t) in m.state_dict() {
        assert_eq!(t.to_vec::<f64>(), good.model.get(&name).unwrap().to_vec::<f64>(), "{name}");
    }
}

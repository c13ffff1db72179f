//! Inputs that once crashed a fuzz target (see `regressions/README.md`), run through it
//! on every stable check: each must be handled (loaded or refused) without a panic; an
//! abort, which `catch_unwind` cannot catch, fails the whole test binary.

use std::path::PathBuf;

fn inputs(target: &str) -> Vec<(String, Vec<u8>)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("regressions").join(target);
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .flatten()
        .map(|e| (e.file_name().to_string_lossy().into_owned(), std::fs::read(e.path()).unwrap()))
        .collect();
    files.sort();
    files
}

#[test]
fn fixed_checkpoint_payload_crashes_stay_fixed() {
    let files = inputs("checkpoint_payload");
    assert!(files.len() >= 2, "the regression inputs are missing");
    for (name, bytes) in files {
        let result = std::panic::catch_unwind(|| sinew_fuzz::checkpoint_payload(&bytes));
        assert!(result.is_ok(), "{name}: the target panicked");
    }
}

#[test]
fn fixed_torch_pickle_failures_stay_fixed() {
    let files = inputs("torch_pickle");
    assert!(!files.is_empty(), "the regression inputs are missing");
    for (name, bytes) in files {
        let result = std::panic::catch_unwind(|| sinew_fuzz::torch_pickle(&bytes));
        assert!(matches!(result, Ok(true)), "{name}: the target panicked or refused a valid pickle");
    }
}

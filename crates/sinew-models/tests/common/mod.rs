//! What the model tests share: the fixture folder, PyTorch's answers, differences, and
//! scratch copies of a fixture model folder to break.

#![allow(dead_code)] // each test file uses part of it

use std::path::{Path, PathBuf};

use sinew_tensor::{DType, Tensor};

/// The workspace's `tests/fixtures/models/`.
pub fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/models")
}

/// The tensors of `tests/fixtures/models/<file>.safetensors`.
pub fn expected(file: &str) -> Vec<(String, Tensor)> {
    let bytes = std::fs::read(fixtures().join(format!("{file}.safetensors"))).unwrap();
    sinew_serialize::read_safetensors(&bytes).unwrap()
}

/// The tensor called `name`.
pub fn get<'a>(t: &'a [(String, Tensor)], name: &str) -> &'a Tensor {
    &t.iter().find(|(n, _)| n == name).unwrap_or_else(|| panic!("fixture has no {name}")).1
}

/// The largest elementwise difference.
pub fn max_diff(a: &Tensor, b: &Tensor) -> f64 {
    assert_eq!(a.dims(), b.dims());
    a.to_dtype(DType::F64).sub(&b.to_dtype(DType::F64)).abs().max_all().item()
}

/// A copy of the fixture folder `folder` (its config.json and model.safetensors) to break
/// in test `test`.
pub fn scratch_copy(folder: &str, test: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("sinew-models-{folder}-{test}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    for f in ["config.json", "model.safetensors"] {
        std::fs::copy(fixtures().join(folder).join(f), dir.join(f)).unwrap();
    }
    dir
}

/// Rewrites a folder's config.json through `edit`.
pub fn edit_config(dir: &Path, edit: impl FnOnce(&mut serde_json::Value)) {
    let path = dir.join("config.json");
    let mut v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    edit(&mut v);
    std::fs::write(path, v.to_string()).unwrap();
}

//! Forward parity with PyTorch: every case of the golden files for the tensor ops
//! (`elementwise`, `binary_broadcast`, `reductions`, `shape`, `matmul`, and the conv /
//! pool / linear / embedding cases of `layers`), computed in f64 (1e-9 relative) and
//! again in f32 (1e-4 relative), through the op table the autograd tests share
//! (`sinew_testing::ops`). The files are PyTorch's float64 answers, copied from
//! `shared/golden/` into `tests/fixtures/`.

use sinew_tensor::Tensor;
use sinew_testing::ops::check_file;

fn forward(json: &str, skip: &[&str]) -> (usize, usize) {
    check_file::<Tensor>(json, skip, |_, _, _| ())
}

#[test]
fn elementwise_matches_pytorch() {
    assert_eq!(forward(include_str!("../../../tests/fixtures/elementwise.json"), &[]), (46, 0));
}

#[test]
fn binary_broadcast_matches_pytorch() {
    assert_eq!(forward(include_str!("../../../tests/fixtures/binary_broadcast.json"), &[]), (28, 0));
}

#[test]
fn reductions_match_pytorch() {
    assert_eq!(forward(include_str!("../../../tests/fixtures/reductions.json"), &[]), (16, 0));
}

#[test]
fn shape_ops_match_pytorch() {
    assert_eq!(forward(include_str!("../../../tests/fixtures/shape.json"), &[]), (7, 0));
}

#[test]
fn matmul_matches_pytorch() {
    assert_eq!(forward(include_str!("../../../tests/fixtures/matmul.json"), &[]), (4, 0));
}

/// `layer_norm` and `batch_norm` are sinew-nn's layers (tested there): their 5 cases are
/// skipped by name of op.
#[test]
fn layer_ops_match_pytorch() {
    let skip = ["layer_norm", "batch_norm"];
    assert_eq!(forward(include_str!("../../../tests/fixtures/layers.json"), &skip), (9, 5));
}

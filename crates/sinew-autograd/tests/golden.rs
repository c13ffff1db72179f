//! Forward and backward parity with PyTorch: every golden case whose op the autograd
//! crate covers (`elementwise`, `binary_broadcast`, `reductions`, `shape`, `matmul`, and
//! the conv / pool / linear / embedding cases of `layers`), through the op table the
//! tensor tests share (`sinew_testing::ops`). Each case builds leaves from the inputs
//! that require a gradient, runs the op, compares the output, then runs
//! `backward_with(cotangent)` and compares every gradient PyTorch gives (the gradient of
//! `sum(output * cotangent)`). Checked in f64 (1e-9 relative) and again with every float
//! input cast to f32 (1e-4 relative). The files are PyTorch's float64 answers, copied from
//! `shared/golden/` into `tests/fixtures/`.

use sinew_autograd::Var;
use sinew_testing::golden::{assert_close, tensor_of};
use sinew_testing::ops::{Case, check_file};

/// Checks every gradient of one evaluated case against PyTorch's, and that every leaf
/// the op used has one.
fn check_gradients(c: &Case<'_, Var>, y: &Var, rtol: f64) {
    let name = c.name();
    let cotangent = tensor_of(&c.case["cotangent"], c.dtype);
    let grads = y.backward_with(&cotangent);
    let want = c.case["grads"].as_object().expect("grads");
    for (input, expected) in want {
        let (_, leaf) = c.leaves.iter().find(|(n, _)| n == input).unwrap_or_else(|| {
            panic!("{name}: PyTorch has a gradient for {input}, which the test never used")
        });
        let g = grads.get(leaf).unwrap_or_else(|| panic!("{name}: no gradient for {input}"));
        assert_eq!(g.dtype(), c.dtype, "{name}: gradient dtype for {input}");
        assert_close(&format!("{name}: grad {input}"), g, expected, rtol);
    }
    for (input, _) in &c.leaves {
        assert!(want.contains_key(input), "{name}: leaf {input} has no PyTorch gradient to compare");
    }
}

fn forward_and_backward(json: &str, skip: &[&str]) -> (usize, usize) {
    check_file::<Var>(json, skip, check_gradients)
}

#[test]
fn elementwise_forward_and_backward_match_pytorch() {
    let n = forward_and_backward(include_str!("../../../tests/fixtures/elementwise.json"), &[]);
    assert_eq!(n, (46, 0));
}

#[test]
fn binary_broadcast_forward_and_backward_match_pytorch() {
    let n = forward_and_backward(include_str!("../../../tests/fixtures/binary_broadcast.json"), &[]);
    assert_eq!(n, (28, 0));
}

#[test]
fn reductions_forward_and_backward_match_pytorch() {
    let n = forward_and_backward(include_str!("../../../tests/fixtures/reductions.json"), &[]);
    assert_eq!(n, (16, 0));
}

#[test]
fn shape_ops_forward_and_backward_match_pytorch() {
    let n = forward_and_backward(include_str!("../../../tests/fixtures/shape.json"), &[]);
    assert_eq!(n, (7, 0));
}

#[test]
fn matmul_forward_and_backward_match_pytorch() {
    let n = forward_and_backward(include_str!("../../../tests/fixtures/matmul.json"), &[]);
    assert_eq!(n, (4, 0));
}

/// `layer_norm` and `batch_norm` have no op in this crate (they belong to the layers
/// built on top of it), so their 5 cases are skipped here by name of op.
#[test]
fn layers_forward_and_backward_match_pytorch() {
    let skip = ["layer_norm", "batch_norm"];
    let n = forward_and_backward(include_str!("../../../tests/fixtures/layers.json"), &skip);
    assert_eq!(n, (9, 5));
}

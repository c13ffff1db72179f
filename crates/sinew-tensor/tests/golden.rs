//! Forward parity with PyTorch: every case of the golden files for the tensor ops
//! (`elementwise`, `binary_broadcast`, `reductions`, `shape`, `matmul`, and the conv /
//! pool / linear / embedding cases of `layers`), computed in f64 (1e-9 relative) and
//! again in f32 (1e-4 relative), through the op table the autograd tests share
//! (`sinew_testing::ops`). The files are PyTorch's float64 answers, copied from
//! `shared/golden/` into the workspace's `tests/fixtures/` (so this crate's package leaves
//! its tests out: see its Cargo.toml). The convolution and pooling cases also run through
//! the gradient ops, in f64.

use serde_json::Value;
use sinew_tensor::{Conv2dOptions, DType, Pool2dOptions, Tensor};
use sinew_testing::golden::{cases, data_of, shape_of, tensor_of};
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

fn input(case: &Value, name: &str, dtype: DType) -> Tensor {
    let inp = case["inputs"].as_array().unwrap().iter().find(|i| i["name"] == name);
    tensor_of(inp.unwrap_or_else(|| panic!("{}: no input {name}", case["name"])), dtype)
}

/// A `{shape, data}` entry against a result, in f64 at 1e-9 relative.
#[track_caller]
fn assert_entry(case: &Value, what: &str, got: &Tensor, want: &Value) {
    let name = case["name"].as_str().unwrap();
    assert_eq!(got.dims(), &shape_of(want)[..], "{name} {what}: shape");
    for (i, (g, w)) in got.to_vec::<f64>().iter().zip(data_of(want)).enumerate() {
        assert!((g - w).abs() <= 1e-9 * w.abs().max(1.0), "{name} {what}[{i}]: got {g}, PyTorch says {w}");
    }
}

/// An attribute given as an int or a list (a single-element list means both axes).
fn attr_pair(case: &Value, key: &str, default: usize) -> [usize; 2] {
    let v: Vec<usize> = match &case["attrs"][key] {
        Value::Null => vec![default],
        Value::Array(a) if a.is_empty() => vec![default],
        Value::Array(a) => a.iter().map(|v| v.as_u64().unwrap() as usize).collect(),
        v => vec![v.as_u64().unwrap() as usize],
    };
    if v.len() == 1 { [v[0], v[0]] } else { [v[0], v[1]] }
}

/// The convolution and pooling cases of `layers.json` through the tensor ops and their
/// gradient ops (`conv2d_input_grad`, `conv2d_weight_grad`, the pooling backwards), in
/// f64 (1e-9 relative): output and the gradients of `sum(output * cotangent)`. conv1d
/// runs as a conv2d of height 1, as the kernels do. (The other layers' cases are
/// autograd's and nn's.)
#[test]
fn conv_and_pool_kernels_match_pytorch() {
    let dt = DType::F64;
    let mut n = 0;
    for case in cases(include_str!("../../../tests/fixtures/layers.json")) {
        let op = case["op"].as_str().unwrap();
        let dy = tensor_of(&case["cotangent"], dt);
        match op {
            "conv2d" | "conv1d" => {
                let (mut x, mut w, b) =
                    (input(&case, "input", dt), input(&case, "weight", dt), input(&case, "bias", dt));
                let mut opts = Conv2dOptions {
                    stride: attr_pair(&case, "stride", 1),
                    padding: attr_pair(&case, "padding", 0),
                    dilation: attr_pair(&case, "dilation", 1),
                    groups: attr_pair(&case, "groups", 1)[0],
                    ..Conv2dOptions::default()
                };
                let mut dy = dy;
                if op == "conv1d" {
                    // (N, C, L) as (N, C, 1, L) with a (1, k) kernel
                    x = x.unsqueeze(2);
                    w = w.unsqueeze(2);
                    dy = dy.unsqueeze(2);
                    opts.stride[0] = 1;
                    opts.padding[0] = 0;
                    opts.dilation[0] = 1;
                }
                let lower = |t: Tensor| if op == "conv1d" { t.squeeze_dim(2) } else { t };
                let kernel = [w.dims()[2], w.dims()[3]];
                let y = x.conv2d(&w, Some(&b), opts);
                assert_entry(&case, "output", &lower(y), &case["output"]);
                let dx = Tensor::conv2d_input_grad(&dy, &w, [x.dims()[2], x.dims()[3]], opts);
                assert_entry(&case, "input grad", &lower(dx), &case["grads"]["input"]);
                let dw = Tensor::conv2d_weight_grad(&x, &dy, kernel, opts);
                assert_entry(&case, "weight grad", &lower(dw), &case["grads"]["weight"]);
                let db = dy.sum(&[0, 2, 3], false);
                assert_entry(&case, "bias grad", &db, &case["grads"]["bias"]);
            }
            "max_pool2d" | "avg_pool2d" => {
                let x = input(&case, "x", dt);
                let kernel = attr_pair(&case, "kernel_size", 0);
                let opts = Pool2dOptions {
                    kernel,
                    stride: if case["attrs"]["stride"].is_null() {
                        kernel
                    } else {
                        attr_pair(&case, "stride", 0)
                    },
                    padding: attr_pair(&case, "padding", 0),
                    dilation: attr_pair(&case, "dilation", 1),
                    ceil_mode: case["attrs"]["ceil_mode"].as_bool().unwrap_or(false),
                };
                let (y, dx) = if op == "max_pool2d" {
                    let (y, idx) = x.max_pool2d(opts);
                    (y, Tensor::max_pool2d_backward(&dy, &idx, x.dims(), opts))
                } else {
                    let include_pad = case["attrs"]["count_include_pad"].as_bool().unwrap_or(true);
                    (
                        x.avg_pool2d(opts, include_pad),
                        Tensor::avg_pool2d_backward(&dy, x.dims(), opts, include_pad),
                    )
                };
                assert_entry(&case, "output", &y, &case["output"]);
                assert_entry(&case, "input grad", &dx, &case["grads"]["x"]);
            }
            "adaptive_avg_pool2d" => {
                let x = input(&case, "x", dt);
                let y = x.adaptive_avg_pool2d(attr_pair(&case, "output_size", 0));
                assert_entry(&case, "output", &y, &case["output"]);
                let dx = Tensor::adaptive_avg_pool2d_backward(&dy, x.dims());
                assert_entry(&case, "input grad", &dx, &case["grads"]["x"]);
            }
            _ => continue,
        }
        n += 1;
    }
    assert_eq!(n, 6, "the conv2d, conv1d and pooling cases");
}

//! Forward parity with PyTorch: every case of the golden files for the tensor ops
//! (`elementwise`, `binary_broadcast`, `reductions`, `shape`, `matmul`), computed in f64
//! (1e-9 relative) and again in f32 (1e-4 relative); and the convolution and pooling
//! cases of `layers`, forward and through the gradient ops, in f64. The files are
//! PyTorch's float64 answers, copied from `shared/golden/` into the workspace's
//! `tests/fixtures/` (so this crate's package leaves its tests out: see its Cargo.toml).

use serde_json::Value;
use sinew_tensor::{Conv2dOptions, Pool2dOptions};
use sinew_tensor::{DType, Tensor};
use sinew_testing::golden::{cases, data_of, shape_of, tensor_of};

fn input(case: &Value, name: &str, dtype: DType) -> Tensor {
    let inp = case["inputs"].as_array().unwrap().iter().find(|i| i["name"] == name);
    tensor_of(inp.unwrap_or_else(|| panic!("{}: no input {name}", case["name"])), dtype)
}

fn first_input(case: &Value, dtype: DType) -> Tensor {
    tensor_of(&case["inputs"][0], dtype)
}

fn attr_isize(case: &Value, key: &str) -> isize {
    case["attrs"][key].as_i64().unwrap_or_else(|| panic!("{}: attr {key}", case["name"])) as isize
}

fn attr_usizes(case: &Value, key: &str) -> Vec<usize> {
    case["attrs"][key].as_array().unwrap().iter().map(|d| d.as_u64().unwrap() as usize).collect()
}

fn assert_matches(case: &Value, got: &Tensor, rtol: f64) {
    let name = case["name"].as_str().unwrap();
    let want_shape = shape_of(&case["output"]);
    assert_eq!(got.dims(), &want_shape[..], "{name}: shape");
    let want: Vec<f64> =
        case["output"]["data"].as_array().unwrap().iter().map(|d| d.as_f64().unwrap()).collect();
    let got = got.to_vec::<f64>();
    for (i, (g, w)) in got.iter().zip(&want).enumerate() {
        let tol = rtol * w.abs().max(1.0);
        assert!((g - w).abs() <= tol, "{name} ({rtol}): element {i} is {g}, PyTorch says {w}");
    }
}

/// Runs `eval` on every case in both precisions.
fn check_family(json: &str, eval: impl Fn(&Value, DType) -> Tensor) -> usize {
    let cases = cases(json);
    for case in &cases {
        assert_matches(case, &eval(case, DType::F64), 1e-9);
        assert_matches(case, &eval(case, DType::F32), 1e-4);
    }
    cases.len()
}

#[test]
fn elementwise_matches_pytorch() {
    let n = check_family(include_str!("../../../tests/fixtures/elementwise.json"), |c, dt| {
        let x = first_input(c, dt);
        match c["op"].as_str().unwrap() {
            "neg" => x.neg(),
            "exp" => x.exp(),
            "abs" => x.abs(),
            "relu" => x.relu(),
            "sigmoid" => x.sigmoid(),
            "tanh" => x.tanh(),
            "sin" => x.sin(),
            "cos" => x.cos(),
            "silu" => x.silu(),
            "gelu" => x.gelu(),
            "gelu_tanh" => x.gelu_tanh(),
            "softplus" => x.softplus(1.0, 20.0),
            "elu" => x.elu(1.0),
            "square" => x.square(),
            "leaky_relu_0.01" => x.leaky_relu(0.01),
            "log" => x.log(),
            "sqrt" => x.sqrt(),
            "rsqrt" => x.rsqrt(),
            "recip" => x.recip(),
            "powf" => x.powf(c["attrs"]["p"].as_f64().unwrap()),
            op => panic!("elementwise: no mapping for op {op}"),
        }
    });
    assert_eq!(n, 46);
}

#[test]
fn binary_broadcast_matches_pytorch() {
    let n = check_family(include_str!("../../../tests/fixtures/binary_broadcast.json"), |c, dt| {
        let (a, b) = (input(c, "a", dt), input(c, "b", dt));
        match c["op"].as_str().unwrap() {
            "add" => &a + &b,
            "sub" => &a - &b,
            "mul" => &a * &b,
            "div" => &a / &b,
            "maximum" => a.maximum(&b),
            "minimum" => a.minimum(&b),
            "pow" => a.pow(&b),
            op => panic!("binary: no mapping for op {op}"),
        }
    });
    assert_eq!(n, 28);
}

#[test]
fn reductions_match_pytorch() {
    let n = check_family(include_str!("../../../tests/fixtures/reductions.json"), |c, dt| {
        let x = first_input(c, dt);
        let a = &c["attrs"];
        let dims: Vec<isize> = a["dim"].as_i64().map(|d| vec![d as isize]).unwrap_or_default();
        let keep = a["keepdim"].as_bool().unwrap_or(false);
        match c["op"].as_str().unwrap() {
            "sum" => x.sum(&dims, keep),
            "mean" => x.mean(&dims, keep),
            "max" => x.max(&dims, keep),
            "var" => x.var(&dims, a["unbiased"].as_bool().unwrap(), keep),
            "logsumexp" => x.logsumexp(&dims, keep),
            "softmax" => x.softmax(dims[0]),
            "log_softmax" => x.log_softmax(dims[0]),
            op => panic!("reductions: no mapping for op {op}"),
        }
    });
    assert_eq!(n, 16);
}

#[test]
fn shape_ops_match_pytorch() {
    let n = check_family(include_str!("../../../tests/fixtures/shape.json"), |c, dt| {
        match c["op"].as_str().unwrap() {
            "permute" => first_input(c, dt).permute(&attr_usizes(c, "perm")),
            "reshape" => first_input(c, dt).reshape(&attr_usizes(c, "shape")),
            "narrow" => first_input(c, dt).narrow(
                attr_isize(c, "dim"),
                attr_isize(c, "start") as usize,
                attr_isize(c, "len") as usize,
            ),
            "cat" => Tensor::cat(&[&input(c, "a", dt), &input(c, "b", dt)], attr_isize(c, "dim")),
            "stack" => Tensor::stack(&[&input(c, "a", dt), &input(c, "b", dt)], attr_isize(c, "dim")),
            "broadcast_to" => first_input(c, dt).broadcast_to(&attr_usizes(c, "shape")),
            "index_select" => input(c, "x", dt).index_select(attr_isize(c, "dim"), &input(c, "idx", dt)),
            op => panic!("shape: no mapping for op {op}"),
        }
    });
    assert_eq!(n, 7);
}

#[test]
fn matmul_matches_pytorch() {
    let n = check_family(include_str!("../../../tests/fixtures/matmul.json"), |c, dt| {
        input(c, "a", dt).matmul(&input(c, "b", dt))
    });
    assert_eq!(n, 4);
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

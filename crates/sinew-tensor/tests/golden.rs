//! Forward parity with PyTorch: every case of the golden files for the tensor ops
//! (`elementwise`, `binary_broadcast`, `reductions`, `shape`, `matmul`), computed in f64
//! (1e-9 relative) and again in f32 (1e-4 relative). The files are PyTorch's float64
//! answers, copied from `shared/golden/` into `tests/fixtures/`.

use serde_json::Value;
use sinew_tensor::{DType, Tensor};
use sinew_testing::golden::{cases, shape_of, tensor_of};

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

//! Forward and backward parity with PyTorch: every golden case whose op the autograd
//! crate covers (`elementwise`, `binary_broadcast`, `reductions`, `shape`, `matmul`, and
//! the conv / pool / linear / embedding cases of `layers`). Each case builds leaves from
//! the inputs that require a gradient, runs the op, compares the output, then runs
//! `backward_with(cotangent)` and compares every gradient PyTorch gives (the gradient of
//! `sum(output * cotangent)`). Checked in f64 (1e-9 relative) and again with every float
//! input cast to f32 (1e-4 relative). The files are PyTorch's float64 answers, copied from
//! `shared/golden/` into `tests/fixtures/`.

use serde_json::Value;
use sinew_autograd::Var;
use sinew_tensor::{Conv1dOptions, Conv2dOptions, DType, Pool2dOptions, Tensor};
use sinew_testing::golden::{cases, data_of, name_of, shape_of, tensor_of};

/// The inputs of one case in one precision. Float inputs that require a gradient become
/// leaves (remembered by name, to look their gradients up), others constants; `i64`
/// inputs are index tensors.
struct Inputs<'a> {
    case: &'a Value,
    dtype: DType,
    leaves: Vec<(String, Var)>,
}

impl<'a> Inputs<'a> {
    fn spec(&self, name: &str) -> &'a Value {
        let inp = self.case["inputs"].as_array().unwrap().iter().find(|i| i["name"] == name);
        inp.unwrap_or_else(|| panic!("{}: no input {name}", name_of(self.case)))
    }

    /// A float input as a variable.
    fn var(&mut self, name: &str) -> Var {
        let spec = self.spec(name);
        assert_ne!(spec["dtype"], "i64", "{}: input {name} is an index tensor", name_of(self.case));
        let t = tensor_of(spec, self.dtype);
        if spec["requires_grad"].as_bool().unwrap_or(false) {
            let v = Var::leaf(t);
            self.leaves.push((name.to_string(), v.clone()));
            v
        } else {
            Var::constant(t)
        }
    }

    /// The first input as a variable.
    fn first(&mut self) -> Var {
        let name = self.case["inputs"][0]["name"].as_str().unwrap().to_string();
        self.var(&name)
    }

    /// An input as a plain tensor (index tensors).
    fn tensor(&self, name: &str) -> Tensor {
        tensor_of(self.spec(name), self.dtype)
    }

    fn attr(&self, key: &str) -> &'a Value {
        let a = &self.case["attrs"][key];
        assert!(!a.is_null(), "{}: no attr {key}", name_of(self.case));
        a
    }

    fn attr_isize(&self, key: &str) -> isize {
        self.attr(key).as_i64().unwrap_or_else(|| panic!("{}: attr {key}", name_of(self.case))) as isize
    }

    fn attr_usize(&self, key: &str) -> usize {
        self.attr(key).as_u64().unwrap_or_else(|| panic!("{}: attr {key}", name_of(self.case))) as usize
    }

    fn attr_usizes(&self, key: &str) -> Vec<usize> {
        self.attr(key).as_array().unwrap().iter().map(|d| d.as_u64().unwrap() as usize).collect()
    }

    /// A per-axis pair given either as one number or as `[h, w]`.
    fn attr_pair(&self, key: &str) -> [usize; 2] {
        let a = self.attr(key);
        match a.as_u64() {
            Some(k) => [k as usize; 2],
            None => {
                let v = self.attr_usizes(key);
                [v[0], v[1]]
            }
        }
    }

    /// Like [`Inputs::attr_pair`], with a default when the attr is absent.
    fn attr_pair_or(&self, key: &str, default: [usize; 2]) -> [usize; 2] {
        if self.case["attrs"][key].is_null() { default } else { self.attr_pair(key) }
    }
}

fn assert_close(what: &str, got: &Tensor, want: &Value, rtol: f64) {
    assert_eq!(got.dims(), &shape_of(want)[..], "{what}: shape");
    let want = data_of(want);
    let got = got.to_vec::<f64>();
    assert_eq!(got.len(), want.len(), "{what}: element count");
    for (i, (g, w)) in got.iter().zip(&want).enumerate() {
        let tol = rtol * w.abs().max(1.0);
        assert!((g - w).abs() <= tol, "{what} ({rtol}): element {i} is {g}, PyTorch says {w}");
    }
}

/// Runs one case in one precision and checks the output and every gradient.
fn check_case(case: &Value, dtype: DType, rtol: f64, eval: &impl Fn(&mut Inputs<'_>) -> Var) {
    let name = name_of(case);
    let mut inputs = Inputs { case, dtype, leaves: Vec::new() };
    let y = eval(&mut inputs);
    assert_eq!(y.dtype(), dtype, "{name}: output dtype");
    assert_close(&format!("{name}: output"), y.value(), &case["output"], rtol);

    let cotangent = tensor_of(&case["cotangent"], dtype);
    let grads = y.backward_with(&cotangent);
    let want = case["grads"].as_object().expect("grads");
    for (input, expected) in want {
        let (_, leaf) = inputs.leaves.iter().find(|(n, _)| n == input).unwrap_or_else(|| {
            panic!("{name}: PyTorch has a gradient for {input}, which the test never used")
        });
        let g = grads.get(leaf).unwrap_or_else(|| panic!("{name}: no gradient for {input}"));
        assert_eq!(g.dtype(), dtype, "{name}: gradient dtype for {input}");
        assert_close(&format!("{name}: grad {input}"), g, expected, rtol);
    }
    for (input, _) in &inputs.leaves {
        assert!(want.contains_key(input), "{name}: leaf {input} has no PyTorch gradient to compare");
    }
}

/// Runs `eval` on every case of a family (except the ops in `skip`) in both precisions;
/// returns (cases checked, cases skipped).
fn check_family(json: &str, skip: &[&str], eval: impl Fn(&mut Inputs<'_>) -> Var) -> (usize, usize) {
    let (mut checked, mut skipped) = (0, 0);
    for case in &cases(json) {
        if skip.contains(&case["op"].as_str().unwrap()) {
            skipped += 1;
            continue;
        }
        check_case(case, DType::F64, 1e-9, &eval);
        check_case(case, DType::F32, 1e-4, &eval);
        checked += 1;
    }
    (checked, skipped)
}

fn op(inputs: &Inputs<'_>) -> String {
    inputs.case["op"].as_str().unwrap().to_string()
}

#[test]
fn elementwise_forward_and_backward_match_pytorch() {
    let n = check_family(include_str!("../../../tests/fixtures/elementwise.json"), &[], |c| {
        let x = c.first();
        match op(c).as_str() {
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
            "powf" => x.powf(c.attr("p").as_f64().unwrap()),
            op => panic!("elementwise: no mapping for op {op}"),
        }
    });
    assert_eq!(n, (46, 0));
}

#[test]
fn binary_broadcast_forward_and_backward_match_pytorch() {
    let n = check_family(include_str!("../../../tests/fixtures/binary_broadcast.json"), &[], |c| {
        let (a, b) = (c.var("a"), c.var("b"));
        match op(c).as_str() {
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
    assert_eq!(n, (28, 0));
}

#[test]
fn reductions_forward_and_backward_match_pytorch() {
    let n = check_family(include_str!("../../../tests/fixtures/reductions.json"), &[], |c| {
        let x = c.first();
        let a = &c.case["attrs"];
        // `dim: null` means every dimension (an empty list)
        let dims: Vec<isize> = a["dim"].as_i64().map(|d| vec![d as isize]).unwrap_or_default();
        let keep = a["keepdim"].as_bool().unwrap_or(false);
        match op(c).as_str() {
            "sum" => x.sum(&dims, keep),
            "mean" => x.mean(&dims, keep),
            "max" => x.max(&dims, keep),
            "var" => x.var(&dims, c.attr("unbiased").as_bool().unwrap(), keep),
            "logsumexp" => x.logsumexp(&dims, keep),
            "softmax" => x.softmax(c.attr_isize("dim")),
            "log_softmax" => x.log_softmax(c.attr_isize("dim")),
            op => panic!("reductions: no mapping for op {op}"),
        }
    });
    assert_eq!(n, (16, 0));
}

#[test]
fn shape_ops_forward_and_backward_match_pytorch() {
    let n = check_family(include_str!("../../../tests/fixtures/shape.json"), &[], |c| match op(c).as_str() {
        "permute" => c.first().permute(&c.attr_usizes("perm")),
        "reshape" => c.first().reshape(&c.attr_usizes("shape")),
        "narrow" => c.first().narrow(c.attr_isize("dim"), c.attr_usize("start"), c.attr_usize("len")),
        "cat" => Var::cat(&[&c.var("a"), &c.var("b")], c.attr_isize("dim")),
        "stack" => Var::stack(&[&c.var("a"), &c.var("b")], c.attr_isize("dim")),
        "broadcast_to" => c.first().broadcast_to(&c.attr_usizes("shape")),
        "index_select" => c.var("x").index_select(c.attr_isize("dim"), &c.tensor("idx")),
        op => panic!("shape: no mapping for op {op}"),
    });
    assert_eq!(n, (7, 0));
}

#[test]
fn matmul_forward_and_backward_match_pytorch() {
    let n =
        check_family(include_str!("../../../tests/fixtures/matmul.json"), &[], |c| match op(c).as_str() {
            "matmul" => c.var("a").matmul(&c.var("b")),
            op => panic!("matmul: no mapping for op {op}"),
        });
    assert_eq!(n, (4, 0));
}

/// `layer_norm` and `batch_norm` have no op in this crate (they belong to the layers
/// built on top of it), so their 5 cases are skipped here by name of op.
#[test]
fn layers_forward_and_backward_match_pytorch() {
    let n = check_family(
        include_str!("../../../tests/fixtures/layers.json"),
        &["layer_norm", "batch_norm"],
        |c| {
            match op(c).as_str() {
                "linear" => {
                    let (x, w, b) = (c.var("input"), c.var("weight"), c.var("bias"));
                    &x.matmul(&w.t()) + &b
                }
                "conv2d" => {
                    let (x, w, b) = (c.var("input"), c.var("weight"), c.var("bias"));
                    let opts = Conv2dOptions {
                        stride: c.attr_pair("stride"),
                        padding: c.attr_pair("padding"),
                        dilation: c.attr_pair("dilation"),
                        groups: c.attr_usize("groups"),
                        ..Conv2dOptions::default()
                    };
                    x.conv2d(&w, Some(&b), opts)
                }
                "conv1d" => {
                    let (x, w, b) = (c.var("input"), c.var("weight"), c.var("bias"));
                    let opts = Conv1dOptions {
                        stride: c.attr_usize("stride"),
                        padding: c.attr_usize("padding"),
                        dilation: c.attr_usize("dilation"),
                        groups: c.attr_usize("groups"),
                    };
                    x.conv1d(&w, Some(&b), opts)
                }
                "max_pool2d" => c.var("x").max_pool2d(pool_options(c)).0,
                "avg_pool2d" => {
                    let count_include_pad = c.attr("count_include_pad").as_bool().unwrap();
                    c.var("x").avg_pool2d(pool_options(c), count_include_pad)
                }
                "adaptive_avg_pool2d" => c.var("x").adaptive_avg_pool2d(c.attr_pair("output_size")),
                "embedding" => {
                    // index_select takes 1-D indices (as torch.index_select): look the flattened
                    // ids up, then restore the ids' shape, as F.embedding does
                    let (w, idx) = (c.var("weight"), c.tensor("idx"));
                    let mut shape = idx.dims().to_vec();
                    shape.push(w.dims()[1]);
                    w.index_select(0, &idx.reshape(&[idx.numel()])).reshape(&shape)
                }
                op => panic!("layers: no mapping for op {op}"),
            }
        },
    );
    assert_eq!(n, (9, 5));
}

/// Pooling options from `kernel_size`, `stride` (PyTorch: the kernel when absent),
/// `padding`, `dilation` and `ceil_mode`.
fn pool_options(c: &Inputs<'_>) -> Pool2dOptions {
    let kernel = c.attr_pair("kernel_size");
    Pool2dOptions {
        kernel,
        stride: c.attr_pair_or("stride", kernel),
        padding: c.attr_pair_or("padding", [0, 0]),
        dilation: c.attr_pair_or("dilation", [1, 1]),
        ceil_mode: c.case["attrs"]["ceil_mode"].as_bool().unwrap_or(false),
    }
}

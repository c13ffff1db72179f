//! Parity of the `nn` layer modules with PyTorch on every case of `layers.json`.
//!
//! Each case is run through the module itself (not the functional op underneath): the
//! layer is built, cast to the precision under test, loaded with PyTorch's parameters by
//! their PyTorch names through a strict `load_state_dict` (batch norm's running
//! statistics included), switched to train or eval mode, and run forward. The output, the
//! gradient of the input (a leaf) and of every parameter (looked up by the parameter's
//! id) after `backward_with(cotangent)` are compared with PyTorch's; after a training
//! batch-norm step, so are the updated running statistics. Checked in f64 at 1e-9
//! relative and again in f32 at 1e-4 relative.

use serde_json::Value;
use sinew_autograd::{Gradients, Param, Var};
use sinew_nn::{
    AdaptiveAvgPool2d, AvgPool2d, BatchNorm1d, BatchNorm2d, Conv1d, Conv2d, Embedding, Forward, LayerNorm,
    Linear, MaxPool2d, Module,
};
use sinew_tensor::{Conv1dOptions, Conv2dOptions, DType, Generator, Pool2dOptions, Tensor};
use sinew_testing::golden::{data_of, shape_of, tensor_of};

const LAYERS: &str = include_str!("../../../tests/fixtures/layers.json");

fn cases() -> Vec<Value> {
    let v: Value = serde_json::from_str(LAYERS).expect("layers.json parses");
    v["cases"].as_array().expect("cases").clone()
}

fn f64s_to(v: &Value, dtype: DType) -> Tensor {
    let data: Vec<f64> = v.as_array().expect("list").iter().map(|d| d.as_f64().unwrap()).collect();
    let n = data.len();
    Tensor::from_vec(data, &[n]).unwrap().to_dtype(dtype)
}

#[track_caller]
fn assert_close(what: &str, got: &Tensor, want: &Value, dtype: DType, rtol: f64) {
    assert_eq!(got.dtype(), dtype, "{what}: dtype");
    assert_eq!(got.dims(), &shape_of(want)[..], "{what}: shape");
    let want = data_of(want);
    let got = got.to_vec::<f64>();
    assert_eq!(got.len(), want.len(), "{what}: element count");
    for (i, (g, w)) in got.iter().zip(&want).enumerate() {
        let tol = rtol * w.abs().max(1.0);
        assert!((g - w).abs() <= tol, "{what} ({dtype}): element {i} is {g}, PyTorch says {w}");
    }
}

/// One case in one precision.
struct Case<'a> {
    case: &'a Value,
    dtype: DType,
}

impl<'a> Case<'a> {
    fn name(&self) -> &'a str {
        self.case["name"].as_str().expect("name")
    }

    fn op(&self) -> &'a str {
        self.case["op"].as_str().expect("op")
    }

    fn spec(&self, input: &str) -> &'a Value {
        let found = self.case["inputs"].as_array().unwrap().iter().find(|i| i["name"] == input);
        found.unwrap_or_else(|| panic!("{}: no input {input}", self.name()))
    }

    fn tensor(&self, input: &str) -> Tensor {
        tensor_of(self.spec(input), self.dtype)
    }

    fn dims(&self, input: &str) -> Vec<usize> {
        shape_of(self.spec(input))
    }

    fn attr(&self, key: &str) -> &'a Value {
        let a = &self.case["attrs"][key];
        assert!(!a.is_null(), "{}: no attr {key}", self.name());
        a
    }

    fn attr_usize(&self, key: &str) -> usize {
        self.attr(key).as_u64().unwrap_or_else(|| panic!("{}: attr {key}", self.name())) as usize
    }

    /// An attr given as one number or as `[h, w]`.
    fn attr_pair(&self, key: &str) -> [usize; 2] {
        let a = self.attr(key);
        match a.as_u64() {
            Some(k) => [k as usize; 2],
            None => {
                let v: Vec<usize> =
                    a.as_array().unwrap().iter().map(|d| d.as_u64().unwrap() as usize).collect();
                [v[0], v[1]]
            }
        }
    }

    fn attr_pair_or(&self, key: &str, default: [usize; 2]) -> [usize; 2] {
        if self.case["attrs"][key].is_null() { default } else { self.attr_pair(key) }
    }

    fn attr_f64(&self, key: &str) -> f64 {
        self.attr(key).as_f64().unwrap_or_else(|| panic!("{}: attr {key}", self.name()))
    }

    fn pool_options(&self) -> Pool2dOptions {
        let kernel = self.attr_pair("kernel_size");
        Pool2dOptions {
            kernel,
            stride: self.attr_pair_or("stride", kernel),
            padding: self.attr_pair_or("padding", [0, 0]),
            dilation: self.attr_pair_or("dilation", [1, 1]),
            ceil_mode: self.case["attrs"]["ceil_mode"].as_bool().unwrap_or(false),
        }
    }

    /// The input fed to the layer: a leaf when PyTorch differentiates it.
    fn input_var(&self, input: &str) -> Var {
        let t = self.tensor(input);
        if self.spec(input)["requires_grad"].as_bool().unwrap_or(false) {
            Var::leaf(t)
        } else {
            Var::constant(t)
        }
    }

    /// The PyTorch state dict of the case: its `weight`/`bias` inputs, plus `extra`
    /// entries such as batch norm's running statistics.
    fn state(&self, extra: Vec<(String, Tensor)>) -> Vec<(String, Tensor)> {
        let mut state: Vec<(String, Tensor)> = ["weight", "bias"]
            .into_iter()
            .filter(|n| self.case["inputs"].as_array().unwrap().iter().any(|i| i["name"] == *n))
            .map(|n| (n.to_string(), self.tensor(n)))
            .collect();
        state.extend(extra);
        state
    }
}

/// What running a case produced.
struct Run {
    output: Var,
    /// The differentiated layer input (name in the fixture, leaf), if any.
    input: Option<(&'static str, Var)>,
    /// Parameters by PyTorch name.
    params: Vec<(String, Param)>,
    /// Buffers to compare with `extra` after the step.
    buffers: Vec<(String, Tensor)>,
}

/// Loads `state` strictly and returns the named parameters.
#[track_caller]
fn load(c: &Case<'_>, m: &dyn Module, state: &[(String, Tensor)]) -> Vec<(String, Param)> {
    m.cast(c.dtype);
    if let Err(report) = m.load_state_dict(state, true) {
        panic!("{}: load_state_dict: {report}", c.name());
    }
    for (name, p) in m.named_parameters() {
        let (_, want) = state.iter().find(|(n, _)| *n == name).unwrap();
        assert_eq!(p.value().to_vec::<f64>(), want.to_vec::<f64>(), "{}: {name} loaded", c.name());
    }
    m.named_parameters()
}

fn run(c: &Case<'_>) -> Run {
    let mut g = Generator::new(7);
    let dtype = c.dtype;
    match c.op() {
        "linear" => {
            let w = c.dims("weight");
            let m = Linear::new(w[1], w[0], &mut g);
            let params = load(c, &m, &c.state(vec![]));
            let x = c.input_var("input");
            Run { output: m.forward(&x), input: Some(("input", x)), params, buffers: vec![] }
        }
        "conv2d" => {
            let w = c.dims("weight");
            let groups = c.attr_usize("groups");
            let opts = Conv2dOptions {
                stride: c.attr_pair("stride"),
                padding: c.attr_pair("padding"),
                dilation: c.attr_pair("dilation"),
                groups,
                ..Conv2dOptions::default()
            };
            let m = Conv2d::with_kernel(w[1] * groups, w[0], [w[2], w[3]], true, opts, &mut g);
            let params = load(c, &m, &c.state(vec![]));
            let x = c.input_var("input");
            Run { output: m.forward(&x), input: Some(("input", x)), params, buffers: vec![] }
        }
        "conv1d" => {
            let w = c.dims("weight");
            let groups = c.attr_usize("groups");
            let opts = Conv1dOptions {
                stride: c.attr_usize("stride"),
                padding: c.attr_usize("padding"),
                dilation: c.attr_usize("dilation"),
                groups,
            };
            let m = Conv1d::new(w[1] * groups, w[0], w[2], opts, &mut g);
            let params = load(c, &m, &c.state(vec![]));
            let x = c.input_var("input");
            Run { output: m.forward(&x), input: Some(("input", x)), params, buffers: vec![] }
        }
        "max_pool2d" => {
            let m = MaxPool2d { options: c.pool_options() };
            let params = load(c, &m, &[]);
            let x = c.input_var("x");
            Run { output: m.forward(&x), input: Some(("x", x)), params, buffers: vec![] }
        }
        "avg_pool2d" => {
            let m = AvgPool2d {
                options: c.pool_options(),
                count_include_pad: c.attr("count_include_pad").as_bool().unwrap(),
            };
            let params = load(c, &m, &[]);
            let x = c.input_var("x");
            Run { output: m.forward(&x), input: Some(("x", x)), params, buffers: vec![] }
        }
        "adaptive_avg_pool2d" => {
            let m = AdaptiveAvgPool2d::new(c.attr_pair("output_size"));
            let params = load(c, &m, &[]);
            let x = c.input_var("x");
            Run { output: m.forward(&x), input: Some(("x", x)), params, buffers: vec![] }
        }
        "layer_norm" => {
            let shape: Vec<usize> = c
                .attr("normalized_shape")
                .as_array()
                .unwrap()
                .iter()
                .map(|d| d.as_u64().unwrap() as usize)
                .collect();
            let mut m = LayerNorm::new(&shape);
            m.eps = c.attr_f64("eps");
            let params = load(c, &m, &c.state(vec![]));
            let x = c.input_var("x");
            Run { output: m.forward(&x), input: Some(("x", x)), params, buffers: vec![] }
        }
        "batch_norm" => {
            let x_dims = c.dims("x");
            let channels = x_dims[1];
            // the two layer types share fields and behaviour: one body for both
            macro_rules! run_batch_norm {
                ($m:expr) => {{
                    let mut m = $m;
                    m.eps = c.attr_f64("eps");
                    let training = c.attr("training").as_bool().unwrap();
                    if training {
                        m.momentum = c.attr_f64("momentum");
                    }
                    let stats = vec![
                        ("running_mean".to_string(), f64s_to(c.attr("running_mean_in"), dtype)),
                        ("running_var".to_string(), f64s_to(c.attr("running_var_in"), dtype)),
                        ("num_batches_tracked".to_string(), Tensor::scalar(0i64)),
                    ];
                    let params = load(c, &m, &c.state(stats));
                    if training {
                        m.train();
                    } else {
                        m.eval();
                    }
                    assert_eq!(m.is_training(), training, "{}: mode", c.name());
                    let x = c.input_var("x");
                    let output = m.forward(&x);
                    let buffers =
                        m.named_buffers().into_iter().map(|(n, b)| (n, b.value().clone())).collect();
                    Run { output, input: Some(("x", x)), params, buffers }
                }};
            }
            match x_dims.len() {
                2 | 3 => run_batch_norm!(BatchNorm1d::new(channels)),
                4 => run_batch_norm!(BatchNorm2d::new(channels)),
                n => panic!("{}: batch norm over a {n}-D input", c.name()),
            }
        }
        "embedding" => {
            let w = c.dims("weight");
            let m = Embedding::new(w[0], w[1], &mut g);
            let params = load(c, &m, &c.state(vec![]));
            let ids = c.tensor("idx");
            let output = m.lookup(&ids);
            // `forward` takes the ids as the numbers of a variable: same answer
            let via_forward = m.forward(&Var::constant(ids.to_dtype(dtype)));
            assert_eq!(via_forward.value().to_vec::<f64>(), output.value().to_vec::<f64>(), "{}", c.name());
            Run { output, input: None, params, buffers: vec![] }
        }
        op => panic!("layers: no module for op {op}"),
    }
}

fn check(case: &Value, dtype: DType, rtol: f64) {
    let c = Case { case, dtype };
    let name = c.name();
    let r = run(&c);
    assert_close(&format!("{name}: output"), r.output.value(), &case["output"], dtype, rtol);

    let cot = tensor_of(&case["cotangent"], dtype);
    let grads: Gradients = r.output.backward_with(&cot);
    let want = case["grads"].as_object().expect("grads");
    let mut compared = 0;
    if let Some((input, leaf)) = &r.input
        && let Some(expected) = want.get(*input)
    {
        let g = grads.get(leaf).unwrap_or_else(|| panic!("{name}: no gradient for input {input}"));
        assert_close(&format!("{name}: grad {input}"), g, expected, dtype, rtol);
        compared += 1;
    }
    for (pname, p) in &r.params {
        let expected =
            want.get(pname).unwrap_or_else(|| panic!("{name}: PyTorch has no gradient for {pname}"));
        let g = grads.get_id(p.id()).unwrap_or_else(|| panic!("{name}: no gradient for parameter {pname}"));
        assert_close(&format!("{name}: grad {pname}"), g, expected, dtype, rtol);
        compared += 1;
    }
    assert_eq!(compared, want.len(), "{name}: every PyTorch gradient compared ({:?})", want.keys());

    if let Some(extra) = case["extra"].as_object() {
        for (key, expected) in extra {
            let (_, buf) = r
                .buffers
                .iter()
                .find(|(n, _)| n == key)
                .unwrap_or_else(|| panic!("{name}: no buffer {key} to compare with extra"));
            assert_close(&format!("{name}: {key} after the step"), buf, expected, dtype, rtol);
        }
        let (_, count) =
            r.buffers.iter().find(|(n, _)| n == "num_batches_tracked").expect("num_batches_tracked");
        assert_eq!(count.to_vec::<i64>(), vec![1], "{name}: num_batches_tracked after one step");
    } else if c.op() == "batch_norm" {
        // evaluation mode leaves the running statistics alone
        let (_, rm) = r.buffers.iter().find(|(n, _)| n == "running_mean").unwrap();
        let before = f64s_to(c.attr("running_mean_in"), dtype);
        assert_eq!(rm.to_vec::<f64>(), before.to_vec::<f64>(), "{name}: eval must not update running_mean");
        let (_, count) = r.buffers.iter().find(|(n, _)| n == "num_batches_tracked").unwrap();
        assert_eq!(count.to_vec::<i64>(), vec![0], "{name}: eval must not count batches");
    }
}

fn check_all(dtype: DType, rtol: f64) -> Vec<String> {
    let mut done = Vec::new();
    for case in &cases() {
        check(case, dtype, rtol);
        done.push(case["name"].as_str().unwrap().to_string());
    }
    done
}

const EXPECTED_CASES: usize = 14;

#[test]
fn every_layer_case_matches_pytorch_in_f64() {
    let done = check_all(DType::F64, 1e-9);
    assert_eq!(done.len(), EXPECTED_CASES, "cases handled: {done:?}");
}

#[test]
fn every_layer_case_matches_pytorch_in_f32() {
    let done = check_all(DType::F32, 1e-4);
    assert_eq!(done.len(), EXPECTED_CASES, "cases handled: {done:?}");
}

/// Every op of the fixture is covered, with both batch-norm modes and both ranks.
#[test]
fn fixture_covers_every_layer_module() {
    let cs = cases();
    let mut ops: Vec<&str> = cs.iter().map(|c| c["op"].as_str().unwrap()).collect();
    ops.sort_unstable();
    ops.dedup();
    assert_eq!(
        ops,
        [
            "adaptive_avg_pool2d",
            "avg_pool2d",
            "batch_norm",
            "conv1d",
            "conv2d",
            "embedding",
            "layer_norm",
            "linear",
            "max_pool2d"
        ]
    );
    let bn: Vec<(bool, usize)> = cs
        .iter()
        .filter(|c| c["op"] == "batch_norm")
        .map(|c| {
            (c["attrs"]["training"].as_bool().unwrap(), c["inputs"][0]["shape"].as_array().unwrap().len())
        })
        .collect();
    assert_eq!(bn, [(true, 2), (false, 2), (true, 4), (false, 4)]);
}

//! Parity of the loss functions with PyTorch on every case of `losses.json`.
//!
//! Every float input that PyTorch differentiates (targets of the regression and binary
//! losses included) is a leaf; the loss is compared, then `backward_with(cotangent)` and
//! the gradient of every such input. Checked in f64 at 1e-9 relative and again with the
//! float inputs cast to f32 at 1e-4 relative.

use serde_json::Value;
use sinew_autograd::Var;
use sinew_nn::loss::{
    CrossEntropyOptions, KlReduction, NllLossOptions, Reduction, binary_cross_entropy,
    binary_cross_entropy_with_logits, cross_entropy, huber_loss, kl_div, l1_loss, mse_loss, nll_loss,
    smooth_l1_loss,
};
use sinew_tensor::{DType, Generator, Tensor};
use sinew_testing::golden::{data_of, shape_of, tensor_of};

const LOSSES: &str = include_str!("../../../tests/fixtures/losses.json");

fn cases() -> Vec<Value> {
    let v: Value = serde_json::from_str(LOSSES).expect("losses.json parses");
    v["cases"].as_array().expect("cases").clone()
}

#[track_caller]
fn assert_close(what: &str, got: &Tensor, want: &Value, dtype: DType, rtol: f64) {
    assert_eq!(got.dtype(), dtype, "{what}: dtype");
    assert_eq!(got.dims(), &shape_of(want)[..], "{what}: shape");
    let want = data_of(want);
    let got = got.to_vec::<f64>();
    for (i, (g, w)) in got.iter().zip(&want).enumerate() {
        let tol = rtol * w.abs().max(1.0);
        assert!((g - w).abs() <= tol, "{what} ({dtype}): element {i} is {g}, PyTorch says {w}");
    }
}

struct Case<'a> {
    case: &'a Value,
    dtype: DType,
    leaves: Vec<(String, Var)>,
}

impl Case<'_> {
    fn name(&self) -> String {
        self.case["name"].as_str().unwrap().to_string()
    }

    fn spec(&self, input: &str) -> &Value {
        let found = self.case["inputs"].as_array().unwrap().iter().find(|i| i["name"] == input);
        found.unwrap_or_else(|| panic!("{}: no input {input}", self.name()))
    }

    /// A float input: a leaf if PyTorch differentiates it.
    fn var(&mut self, input: &str) -> Var {
        let spec = self.spec(input);
        assert_ne!(spec["dtype"], "i64", "{}: {input} is an index tensor", self.name());
        let t = tensor_of(spec, self.dtype);
        if spec["requires_grad"].as_bool().unwrap_or(false) {
            let v = Var::leaf(t);
            self.leaves.push((input.to_string(), v.clone()));
            v
        } else {
            Var::constant(t)
        }
    }

    /// Class indices.
    fn classes(&self, input: &str) -> Tensor {
        let spec = self.spec(input);
        assert_eq!(spec["dtype"], "i64", "{}: {input} holds class indices", self.name());
        tensor_of(spec, self.dtype)
    }

    fn reduction(&self) -> Reduction {
        match self.case["attrs"]["reduction"].as_str().unwrap_or("mean") {
            "mean" => Reduction::Mean,
            "sum" => Reduction::Sum,
            "none" => Reduction::None,
            r => panic!("{}: reduction {r}", self.name()),
        }
    }

    fn attr_f64(&self, key: &str) -> f64 {
        self.case["attrs"][key].as_f64().unwrap_or_else(|| panic!("{}: attr {key}", self.name()))
    }
}

fn eval(c: &mut Case<'_>) -> Var {
    let red = c.reduction();
    match c.case["op"].as_str().unwrap() {
        "mse_loss" => mse_loss(&c.var("input"), &c.var("target"), red),
        "l1_loss" => l1_loss(&c.var("input"), &c.var("target"), red),
        "huber_loss" => huber_loss(&c.var("input"), &c.var("target"), c.attr_f64("delta"), red),
        "binary_cross_entropy" => binary_cross_entropy(&c.var("input"), &c.var("target"), red),
        "binary_cross_entropy_with_logits" => {
            binary_cross_entropy_with_logits(&c.var("input"), &c.var("target"), None, red)
        }
        "cross_entropy" => {
            let opts = CrossEntropyOptions {
                label_smoothing: c.case["attrs"]["label_smoothing"].as_f64().unwrap_or(0.0),
                reduction: red,
                ..CrossEntropyOptions::default()
            };
            cross_entropy(&c.var("input"), &c.classes("target"), &opts)
        }
        "nll_loss" => nll_loss(
            &c.var("input"),
            &c.classes("target"),
            &NllLossOptions { ignore_index: None, reduction: red, ..NllLossOptions::default() },
        ),
        op => panic!("losses: no mapping for op {op}"),
    }
}

fn check(case: &Value, dtype: DType, rtol: f64) {
    let mut c = Case { case, dtype, leaves: Vec::new() };
    let name = c.name();
    let y = eval(&mut c);
    assert_close(&format!("{name}: loss"), y.value(), &case["output"], dtype, rtol);
    let grads = y.backward_with(&tensor_of(&case["cotangent"], dtype));
    let want = case["grads"].as_object().expect("grads");
    for (input, expected) in want {
        let (_, leaf) = c
            .leaves
            .iter()
            .find(|(n, _)| n == input)
            .unwrap_or_else(|| panic!("{name}: PyTorch differentiates {input}, the test did not"));
        let g = grads.get(leaf).unwrap_or_else(|| panic!("{name}: no gradient for {input}"));
        assert_close(&format!("{name}: grad {input}"), g, expected, dtype, rtol);
    }
    assert_eq!(c.leaves.len(), want.len(), "{name}: every leaf has a PyTorch gradient");
}

fn check_all(dtype: DType, rtol: f64) -> usize {
    let all = cases();
    for case in &all {
        check(case, dtype, rtol);
    }
    all.len()
}

#[test]
fn every_loss_case_matches_pytorch_in_f64() {
    assert_eq!(check_all(DType::F64, 1e-9), 12);
}

#[test]
fn every_loss_case_matches_pytorch_in_f32() {
    assert_eq!(check_all(DType::F32, 1e-4), 12);
}

/// The targets of the regression and binary losses are differentiated too, and the huge
/// logits case really is huge.
#[test]
fn fixture_exercises_target_gradients_and_huge_logits() {
    let cs = cases();
    let with_target_grad = cs.iter().filter(|c| c["grads"].get("target").is_some()).count();
    assert_eq!(with_target_grad, 8);
    let huge = cs.iter().find(|c| c["name"] == "cross_entropy_huge_logits").expect("huge logits case");
    let max = data_of(&huge["inputs"][0]).into_iter().fold(0.0f64, |m, v| m.max(v.abs()));
    assert!(max > 100.0, "largest logit {max}");
}

// ---- options the fixture does not cover, against PyTorch's documented formulas ----------
//
// Class weights, `ignore_index`, label smoothing with weights, `pos_weight`, smooth L1,
// KL divergence and the `sum` / `none` reductions, each computed element by element in
// f64 exactly as PyTorch's documentation (and ATen's `cross_entropy_loss_label_smoothing`)
// defines them, and compared at 1e-12 relative.

fn close(what: &str, got: &Var, want: &[f64]) {
    let got = got.value().to_vec::<f64>();
    assert_eq!(got.len(), want.len(), "{what}: element count");
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert!((g - w).abs() <= 1e-12 * w.abs().max(1.0), "{what}: element {i} is {g}, expected {w}");
    }
}

fn reduce_ref(per: &[f64], red: Reduction) -> Vec<f64> {
    match red {
        Reduction::Mean => vec![per.iter().sum::<f64>() / per.len() as f64],
        Reduction::Sum => vec![per.iter().sum()],
        Reduction::None => per.to_vec(),
    }
}

const REDUCTIONS: [Reduction; 3] = [Reduction::Mean, Reduction::Sum, Reduction::None];

fn randn_vec(n: usize, g: &mut Generator) -> Vec<f64> {
    Tensor::randn_with(&[n], DType::F64, g).to_vec::<f64>()
}

fn var(data: &[f64], shape: &[usize]) -> Var {
    Var::constant(Tensor::from_vec(data.to_vec(), shape).unwrap())
}

/// PyTorch's cross entropy of `(N, C, d)` logits, one sample per `(n, d)`.
fn cross_entropy_ref(
    x: &[f64],
    (n, c, d): (usize, usize, usize),
    t: &[i64],
    w: Option<&[f64]>,
    ignore: Option<i64>,
    eps: f64,
    red: Reduction,
) -> Vec<f64> {
    let (mut per, mut weights) = (Vec::new(), Vec::new());
    for i in 0..n {
        for j in 0..d {
            let logit = |k: usize| x[(i * c + k) * d + j];
            let m = (0..c).map(logit).fold(f64::NEG_INFINITY, f64::max);
            let lse = m + (0..c).map(|k| (logit(k) - m).exp()).sum::<f64>().ln();
            let lp = |k: usize| logit(k) - lse;
            let class_w = |k: usize| w.map_or(1.0, |w| w[k]);
            let k = t[i * d + j];
            if Some(k) == ignore {
                per.push(0.0);
                weights.push(0.0);
                continue;
            }
            let nll = -class_w(k as usize) * lp(k as usize);
            let smooth = -(0..c).map(|q| class_w(q) * lp(q)).sum::<f64>();
            per.push((1.0 - eps) * nll + eps / c as f64 * smooth);
            weights.push(class_w(k as usize));
        }
    }
    match red {
        Reduction::Mean => vec![per.iter().sum::<f64>() / weights.iter().sum::<f64>()],
        Reduction::Sum => vec![per.iter().sum()],
        Reduction::None => per,
    }
}

#[test]
fn cross_entropy_and_nll_options_match_pytorch_formulas() {
    let mut g = Generator::new(11);
    let mut checked = 0;
    for (n, c, d) in [(4, 3, 1), (1, 5, 1), (3, 4, 2), (2, 1, 3)] {
        let x = randn_vec(n * c * d, &mut g);
        let t: Vec<i64> = (0..n * d).map(|i| ((i * 7 + 1) % c) as i64).collect();
        let w: Vec<f64> = (0..c).map(|k| 0.3 + 0.4 * k as f64).collect();
        let shape: Vec<usize> = if d == 1 { vec![n, c] } else { vec![n, c, d] };
        let tshape: Vec<usize> = if d == 1 { vec![n] } else { vec![n, d] };
        // ignore: nothing; -100 on every other sample but the first; a real class (not the first sample's)
        let mut variants: Vec<(Option<i64>, Vec<i64>)> = vec![(None, t.clone())];
        variants.push((
            Some(-100),
            t.iter().enumerate().map(|(i, &k)| if i % 2 == 1 { -100 } else { k }).collect(),
        ));
        if c > 1 {
            variants.push((Some((t[0] + 1) % c as i64), t.clone()));
        }
        for (ignore, t) in &variants {
            let target = Tensor::from_vec(t.clone(), &tshape).unwrap();
            for weight in [None, Some(&w[..])] {
                for red in REDUCTIONS {
                    for eps in [0.0, 0.1, 0.4] {
                        let opts = CrossEntropyOptions {
                            weight: weight.map(|w| Tensor::from_vec(w.to_vec(), &[c]).unwrap()),
                            ignore_index: *ignore,
                            label_smoothing: eps,
                            reduction: red,
                        };
                        let got = cross_entropy(&var(&x, &shape), &target, &opts);
                        let want = cross_entropy_ref(&x, (n, c, d), t, weight, *ignore, eps, red);
                        close(&format!("cross_entropy {shape:?} {opts:?}"), &got, &want);
                        checked += 1;
                    }
                    // nll_loss of log-probabilities is cross entropy without smoothing
                    let wt = weight.map(|w| Tensor::from_vec(w.to_vec(), &[c]).unwrap());
                    let got = nll_loss(
                        &var(&x, &shape).log_softmax(1),
                        &target,
                        &NllLossOptions { weight: wt.clone(), ignore_index: *ignore, reduction: red },
                    );
                    let want = cross_entropy_ref(&x, (n, c, d), t, weight, *ignore, 0.0, red);
                    close(&format!("nll_loss {shape:?} {weight:?} {ignore:?} {red:?}"), &got, &want);
                    checked += 1;
                }
            }
        }
    }
    assert_eq!(checked, 11 * 2 * 3 * 4);
}

#[test]
fn elementwise_losses_match_pytorch_formulas() {
    let mut g = Generator::new(12);
    let shape = [3, 4];
    let x = randn_vec(12, &mut g);
    let y = randn_vec(12, &mut g);
    let probs: Vec<f64> = x.iter().map(|v| 1.0 / (1.0 + (-v).exp())).collect();
    let soft: Vec<f64> = y.iter().map(|v| 1.0 / (1.0 + (-v).exp())).collect();
    let pos_weight = [0.5, 1.0, 2.0, 3.5];
    for red in REDUCTIONS {
        let pairs = |f: &dyn Fn(f64, f64) -> f64, a: &[f64], b: &[f64]| -> Vec<f64> {
            reduce_ref(&a.iter().zip(b).map(|(a, b)| f(*a, *b)).collect::<Vec<_>>(), red)
        };
        let (xv, yv) = (var(&x, &shape), var(&y, &shape));
        close("mse", &mse_loss(&xv, &yv, red), &pairs(&|a, b| (a - b).powi(2), &x, &y));
        close("l1", &l1_loss(&xv, &yv, red), &pairs(&|a, b| (a - b).abs(), &x, &y));
        for delta in [0.3, 1.0, 2.5] {
            let huber = |a: f64, b: f64| {
                let d = (a - b).abs();
                if d < delta { 0.5 * d * d } else { delta * (d - 0.5 * delta) }
            };
            close("huber", &huber_loss(&xv, &yv, delta, red), &pairs(&huber, &x, &y));
            let smooth = |a: f64, b: f64| {
                let d = (a - b).abs();
                if d < delta { 0.5 * d * d / delta } else { d - 0.5 * delta }
            };
            close("smooth_l1", &smooth_l1_loss(&xv, &yv, delta, red), &pairs(&smooth, &x, &y));
        }
        close("smooth_l1 beta 0", &smooth_l1_loss(&xv, &yv, 0.0, red), &pairs(&|a, b| (a - b).abs(), &x, &y));
        let (pv, sv) = (var(&probs, &shape), var(&soft, &shape));
        let bce = |p: f64, t: f64| -(t * p.ln() + (1.0 - t) * (1.0 - p).ln());
        close("bce", &binary_cross_entropy(&pv, &sv, red), &pairs(&bce, &probs, &soft));
        let logits = |z: f64, t: f64| bce(1.0 / (1.0 + (-z).exp()), t);
        close(
            "bce_with_logits",
            &binary_cross_entropy_with_logits(&xv, &sv, None, red),
            &pairs(&logits, &x, &soft),
        );
        // pos_weight multiplies the positive term, broadcast over the last dimension
        let per: Vec<f64> = (0..12)
            .map(|i| {
                let (z, t, w) = (x[i], soft[i], pos_weight[i % 4]);
                let p = 1.0 / (1.0 + (-z).exp());
                -(w * t * p.ln() + (1.0 - t) * (1.0 - p).ln())
            })
            .collect();
        let pw = Tensor::from_vec(pos_weight.to_vec(), &[4]).unwrap();
        close(
            "bce_with_logits pos_weight",
            &binary_cross_entropy_with_logits(&xv, &sv, Some(&pw), red),
            &reduce_ref(&per, red),
        );
    }
    // KL divergence: input log-probabilities, target probabilities (or their logs)
    let input: Vec<f64> = x.iter().map(|v| v - 2.0).collect();
    let (iv, tv, ltv) = (
        var(&input, &shape),
        var(&soft, &shape),
        var(&soft.iter().map(|p| p.ln()).collect::<Vec<_>>(), &shape),
    );
    let per: Vec<f64> = input.iter().zip(&soft).map(|(x, t)| t * (t.ln() - x)).collect();
    let total: f64 = per.iter().sum();
    for (red, want) in [
        (KlReduction::Mean, vec![total / 12.0]),
        (KlReduction::BatchMean, vec![total / 3.0]),
        (KlReduction::Sum, vec![total]),
        (KlReduction::None, per.clone()),
    ] {
        close(&format!("kl_div {red:?}"), &kl_div(&iv, &tv, red, false), &want);
        close(&format!("kl_div log_target {red:?}"), &kl_div(&iv, &ltv, red, true), &want);
    }
    // a zero target contributes 0 (0·log 0 = 0)
    let zero_t = var(&[0.0, 1.0], &[1, 2]);
    close(
        "kl_div zero target",
        &kl_div(&var(&[-1.0, -0.5], &[1, 2]), &zero_t, KlReduction::Sum, false),
        &[0.5],
    );
}

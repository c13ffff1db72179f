//! Shared by the parity tests: reading the PyTorch fixtures (`optimizers.json`,
//! `lr_schedulers.json`, `optim_extra.json`), building the optimizer or schedule a case's
//! `attrs` describe (PyTorch's names and defaults), and running it.
#![allow(dead_code)]

use serde_json::Value;
use sinew_autograd::{Gradients, Param};
use sinew_optim::{
    Adagrad, AdagradConfig, Adam, AdamConfig, CosineAnnealingLr, ExponentialLr, LinearLr, LrSchedule,
    MultiStepLr, OneCycleLr, Optimizer, ParamGroup, PlateauMode, ReduceLrOnPlateau, RmsProp, RmsPropConfig,
    Scheduler, Sgd, SgdConfig, StepLr, Then,
};
use sinew_tensor::Tensor;

/// Relative tolerance of the float64 comparisons.
pub const RTOL: f64 = 1e-12;

/// The cases of a fixture file.
pub fn cases(json: &str) -> Vec<Value> {
    let v: Value = serde_json::from_str(json).expect("fixture parses");
    v["cases"].as_array().expect("cases").clone()
}

pub fn name(case: &Value) -> &str {
    case["name"].as_str().expect("name")
}

pub fn shape_of(v: &Value) -> Vec<usize> {
    v["shape"].as_array().expect("shape").iter().map(|d| d.as_u64().unwrap() as usize).collect()
}

pub fn data_of(v: &Value) -> Vec<f64> {
    v["data"].as_array().expect("data").iter().map(|d| d.as_f64().unwrap()).collect()
}

pub fn tensor_of(v: &Value) -> Tensor {
    Tensor::from_vec(data_of(v), &shape_of(v)).unwrap()
}

fn f(attrs: &Value, key: &str, default: f64) -> f64 {
    attrs.get(key).map_or(default, |v| v.as_f64().unwrap_or_else(|| panic!("attr {key}: {v}")))
}

fn b(attrs: &Value, key: &str) -> bool {
    attrs.get(key).is_some_and(|v| v.as_bool().unwrap())
}

fn u(attrs: &Value, key: &str) -> usize {
    attrs[key].as_u64().unwrap_or_else(|| panic!("attr {key}")) as usize
}

/// The optimizer `attrs` describe, over one parameter (PyTorch's defaults for missing attrs).
pub fn build_optimizer(attrs: &Value, p: &Param) -> Box<dyn Optimizer> {
    let kind = attrs["kind"].as_str().unwrap();
    let lr = f(attrs, "lr", f64::NAN);
    let wd_default = if kind == "adamw" { 0.01 } else { 0.0 };
    let group = ParamGroup::new(vec![p.clone()], lr).weight_decay(f(attrs, "weight_decay", wd_default));
    match kind {
        "sgd" => Box::new(Sgd::with_groups(
            vec![group],
            SgdConfig {
                momentum: f(attrs, "momentum", 0.0),
                dampening: f(attrs, "dampening", 0.0),
                nesterov: b(attrs, "nesterov"),
            },
        )),
        "adam" | "adamw" => {
            let betas = attrs.get("betas").map_or((0.9, 0.999), |v| {
                let v = v.as_array().unwrap();
                (v[0].as_f64().unwrap(), v[1].as_f64().unwrap())
            });
            let config = AdamConfig { betas, eps: f(attrs, "eps", 1e-8), amsgrad: b(attrs, "amsgrad") };
            Box::new(Adam::with_groups(vec![group], config, kind == "adamw"))
        }
        "rmsprop" => Box::new(RmsProp::with_groups(
            vec![group],
            RmsPropConfig {
                alpha: f(attrs, "alpha", 0.99),
                eps: f(attrs, "eps", 1e-8),
                momentum: f(attrs, "momentum", 0.0),
                centered: b(attrs, "centered"),
            },
        )),
        "adagrad" => Box::new(Adagrad::with_groups(
            vec![group],
            AdagradConfig {
                lr_decay: f(attrs, "lr_decay", 0.0),
                initial_accumulator_value: f(attrs, "initial_accumulator_value", 0.0),
                eps: f(attrs, "eps", 1e-10),
            },
        )),
        other => panic!("unknown optimizer kind {other}"),
    }
}

#[track_caller]
pub fn assert_close_slice(what: &str, got: &[f64], want: &[f64], rtol: f64) {
    assert_eq!(got.len(), want.len(), "{what}: length");
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        let tol = rtol * w.abs().max(1e-300);
        assert!((g - w).abs() <= tol, "{what}: element {i} is {g:e}, PyTorch says {w:e} (rtol {rtol:e})");
    }
}

/// Runs an optimizer case in f64 from `param0` through every gradient (`null`: the
/// parameter gets no gradient that step) and compares the parameter after each step.
pub fn check_optimizer_case(case: &Value) {
    let name = name(case);
    let p = Param::new("p", tensor_of(&case["param0"]));
    let mut opt = build_optimizer(&case["attrs"], &p);
    let grads = case["grads"].as_array().unwrap();
    let after = case["params_after_each_step"].as_array().unwrap();
    assert_eq!(grads.len(), after.len(), "{name}: steps");
    for (step, (g, want)) in grads.iter().zip(after).enumerate() {
        let mut gs = Gradients::new();
        if !g.is_null() {
            gs.insert(p.id(), tensor_of(g));
        }
        opt.step(&gs);
        let got = p.value().clone();
        assert_eq!(got.dims(), &shape_of(want)[..], "{name}: shape");
        assert_close_slice(&format!("{name}, step {}", step + 1), &got.to_vec::<f64>(), &data_of(want), RTOL);
    }
}

/// The rate in force at each of `epochs` epochs (read before the epoch's scheduler step).
pub fn run_schedule<S: LrSchedule>(schedule: S, base_lr: f64, epochs: usize) -> Vec<f64> {
    let mut opt = Sgd::new(vec![Param::new("p", Tensor::zeros(&[1]))], base_lr);
    let mut sched = Scheduler::new(schedule, &mut opt);
    (0..epochs)
        .map(|_| {
            let lr = opt.lr();
            sched.step(&mut opt);
            lr
        })
        .collect()
}

fn metric(v: &Value) -> f64 {
    match v.as_str() {
        Some("inf") => f64::INFINITY,
        Some(other) => panic!("metric {other}"),
        None => v.as_f64().unwrap(),
    }
}

/// The rates a schedule case describes, at each of `epochs` epochs (plateau cases: one
/// per metric).
pub fn schedule_lrs(attrs: &Value, epochs: usize) -> Vec<f64> {
    let base = f(attrs, "base_lr", 0.1);
    let cosine = || CosineAnnealingLr { t_max: u(attrs, "t_max"), eta_min: f(attrs, "eta_min", 0.0) };
    let linear = || LinearLr {
        start_factor: f(attrs, "start_factor", 1.0 / 3.0),
        end_factor: f(attrs, "end_factor", 1.0),
        total_iters: u(attrs, "total_iters"),
    };
    match attrs["kind"].as_str().unwrap() {
        "step" => run_schedule(
            StepLr { step_size: u(attrs, "step_size"), gamma: f(attrs, "gamma", 0.1) },
            base,
            epochs,
        ),
        "cosine" => run_schedule(cosine(), base, epochs),
        "multistep" => {
            let milestones = attrs["milestones"]
                .as_array()
                .unwrap()
                .iter()
                .map(|m| m.as_u64().unwrap() as usize)
                .collect();
            run_schedule(MultiStepLr { milestones, gamma: f(attrs, "gamma", 0.1) }, base, epochs)
        }
        "exponential" => run_schedule(ExponentialLr { gamma: f(attrs, "gamma", f64::NAN) }, base, epochs),
        "linear" => run_schedule(linear(), base, epochs),
        "sequential_linear_cosine" => run_schedule(
            Then { first: linear(), milestone: u(attrs, "milestone"), second: cosine() },
            base,
            epochs,
        ),
        "onecycle" => {
            let mut s = OneCycleLr::new(f(attrs, "max_lr", f64::NAN), u(attrs, "total_steps"));
            s.pct_start = f(attrs, "pct_start", s.pct_start);
            s.div_factor = f(attrs, "div_factor", s.div_factor);
            s.final_div_factor = f(attrs, "final_div_factor", s.final_div_factor);
            run_schedule(s, base, epochs)
        }
        "plateau" => {
            let mode = match attrs["mode"].as_str().unwrap() {
                "min" => PlateauMode::Min,
                "max" => PlateauMode::Max,
                other => panic!("mode {other}"),
            };
            let mut plateau = ReduceLrOnPlateau::new(mode);
            plateau.factor = f(attrs, "factor", 0.1);
            plateau.patience = u(attrs, "patience");
            plateau.threshold = f(attrs, "threshold", 1e-4);
            plateau.cooldown = u(attrs, "cooldown");
            plateau.min_lr = f(attrs, "min_lr", 0.0);
            plateau.eps = f(attrs, "eps", 1e-8);
            let mut opt = Sgd::new(vec![Param::new("p", Tensor::zeros(&[1]))], base);
            attrs["metrics"]
                .as_array()
                .unwrap()
                .iter()
                .map(|m| {
                    let lr = opt.lr();
                    plateau.step(metric(m), &mut opt);
                    lr
                })
                .collect()
        }
        other => panic!("unknown schedule kind {other}"),
    }
}

/// Compares a schedule case's rates with PyTorch's.
pub fn check_schedule_case(case: &Value) {
    let want: Vec<f64> =
        case["lr_per_epoch"].as_array().unwrap().iter().map(|v| v.as_f64().unwrap()).collect();
    let got = schedule_lrs(&case["attrs"], want.len());
    let name = name(case);
    assert_eq!(got.len(), want.len(), "{name}: epochs");
    for (epoch, (g, w)) in got.iter().zip(&want).enumerate() {
        // closed forms against PyTorch's recursive updates: relative, with an absolute
        // floor for the rates that are zero up to rounding
        let tol = RTOL * w.abs() + 1e-17;
        assert!((g - w).abs() <= tol, "{name}: epoch {epoch}: lr {g:e}, PyTorch says {w:e}");
    }
}

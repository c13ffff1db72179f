//! Parity with PyTorch on the shared golden files: every optimizer trajectory of
//! `optimizers.json` (the parameter after each of five steps, float64, 1e-12 relative;
//! again in float32 at 1e-4) and every schedule of `lr_schedulers.json` (the rate in
//! force at each of 12 epochs).

mod common;

use common::{build_optimizer, cases, check_optimizer_case, check_schedule_case, data_of, name, tensor_of};
use sinew_autograd::{Gradients, Param};
use sinew_tensor::DType;

const OPTIMIZERS: &str = include_str!("../../../tests/fixtures/optimizers.json");
const SCHEDULERS: &str = include_str!("../../../tests/fixtures/lr_schedulers.json");

#[test]
fn every_optimizer_trajectory_matches_pytorch_in_f64() {
    let cases = cases(OPTIMIZERS);
    let names: Vec<&str> = cases.iter().map(name).collect();
    assert_eq!(
        names,
        ["sgd_plain", "sgd_momentum_nesterov_wd", "adam_default", "adamw", "rmsprop", "adagrad"],
        "optimizers.json changed: review the cases"
    );
    for case in &cases {
        check_optimizer_case(case);
    }
}

#[test]
fn every_optimizer_trajectory_matches_pytorch_in_f32() {
    for case in &cases(OPTIMIZERS) {
        let name = name(case);
        let p = Param::new("p", tensor_of(&case["param0"]).to_dtype(DType::F32));
        let mut opt = build_optimizer(&case["attrs"], &p);
        let steps =
            case["grads"].as_array().unwrap().iter().zip(case["params_after_each_step"].as_array().unwrap());
        for (step, (g, want)) in steps.enumerate() {
            let mut grads = Gradients::new();
            grads.insert(p.id(), tensor_of(g).to_dtype(DType::F32));
            opt.step(&grads);
            assert_eq!(p.value().dtype(), DType::F32, "{name}: the update keeps the dtype");
            let got = p.value().to_vec::<f64>();
            for (i, (g, w)) in got.iter().zip(data_of(want)).enumerate() {
                assert!(
                    (g - w).abs() <= 1e-4 * w.abs().max(1.0),
                    "{name} f32, step {}: [{i}] {g} vs {w}",
                    step + 1
                );
            }
        }
    }
}

#[test]
fn every_schedule_matches_pytorch() {
    let cases = cases(SCHEDULERS);
    assert_eq!(cases.iter().map(name).collect::<Vec<_>>(), ["step_lr", "cosine"]);
    for case in &cases {
        check_schedule_case(case);
    }
}

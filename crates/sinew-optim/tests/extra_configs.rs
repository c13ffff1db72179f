//! Parity with PyTorch on the configurations the shared golden files do not cover, from
//! `tests/fixtures/optim_extra.json` (written by `tests/fixtures/gen_optim_extra.py`
//! with PyTorch, float64, fixed seeds), at 1e-12 relative:
//!
//! - SGD with dampening, momentum without Nesterov, and weight decay;
//! - Adam with AMSGrad and weight decay, AdamW with AMSGrad;
//! - centered RMSprop with momentum and weight decay (and each feature alone);
//! - Adagrad with `lr_decay`, `initial_accumulator_value` and weight decay;
//! - steps where the parameter has no gradient: it is skipped and its own step count
//!   (Adam's bias correction, Adagrad's decay) does not advance, as in PyTorch;
//! - OneCycleLR (defaults, a custom `pct_start`, custom div factors), ReduceLROnPlateau
//!   (min and max mode, patience, cooldown, `min_lr`, `eps`, relative threshold, an
//!   infinite first metric), MultiStepLR (a repeated milestone), ExponentialLR, LinearLR,
//!   CosineAnnealingLR past `T_max`, and SequentialLR (LinearLR warm-up then cosine:
//!   sinew's `Then`).
//!
//! PyTorch's OneCycleLR also cycles the optimizer's momentum (`cycle_momentum=True` by
//! default); sinew's `OneCycleLr` schedules the learning rate only, so only the rates are
//! compared.

mod common;

use common::{cases, check_optimizer_case, check_schedule_case, name};
use serde_json::Value;
use sinew_autograd::Param;
use sinew_optim::{Optimizer, PlateauMode, ReduceLrOnPlateau, Sgd};
use sinew_tensor::Tensor;

const EXTRA: &str = include_str!("../../../tests/fixtures/optim_extra.json");

fn of_op(op: &str) -> Vec<Value> {
    cases(EXTRA).into_iter().filter(|c| c["op"] == op).collect()
}

fn kinds(cases: &[Value]) -> Vec<String> {
    let mut k: Vec<String> = cases.iter().map(|c| c["attrs"]["kind"].as_str().unwrap().to_string()).collect();
    k.sort();
    k.dedup();
    k
}

#[test]
fn extra_optimizer_configurations_match_pytorch() {
    let cases = of_op("optimizer");
    assert_eq!(kinds(&cases), ["adagrad", "adam", "adamw", "rmsprop", "sgd"]);
    assert!(cases.len() >= 15, "optim_extra.json lost optimizer cases");
    for case in &cases {
        check_optimizer_case(case);
    }
}

#[test]
fn skipped_steps_do_not_advance_a_parameters_step_count() {
    let cases: Vec<Value> =
        of_op("optimizer").into_iter().filter(|c| name(c).ends_with("missing_grad")).collect();
    assert_eq!(cases.len(), 4);
    for case in &cases {
        assert!(case["grads"].as_array().unwrap().iter().any(Value::is_null), "{}", name(case));
        check_optimizer_case(case);
    }
}

#[test]
fn extra_schedules_match_pytorch() {
    let cases = of_op("lr_scheduler");
    assert_eq!(
        kinds(&cases),
        ["cosine", "exponential", "linear", "multistep", "onecycle", "plateau", "sequential_linear_cosine"]
    );
    for case in &cases {
        check_schedule_case(case);
    }
}

#[test]
fn plateau_reports_a_reduction_only_when_one_is_applied() {
    let mut opt = Sgd::new(vec![Param::new("p", Tensor::zeros(&[1]))], 0.1);
    let mut plateau = ReduceLrOnPlateau::new(PlateauMode::Min);
    plateau.patience = 0;
    plateau.factor = 0.5;
    plateau.min_lr = 0.04;
    assert!(!plateau.step(1.0, &mut opt), "first metric is an improvement");
    assert!(plateau.step(1.0, &mut opt));
    assert_eq!(opt.lr(), 0.05);
    assert!(plateau.step(1.0, &mut opt));
    assert_eq!(opt.lr(), 0.04, "clamped at min_lr");
    assert!(!plateau.step(1.0, &mut opt), "at min_lr there is nothing left to reduce");
    assert_eq!(opt.lr(), 0.04);
}

#[test]
fn plateau_state_round_trips_through_serde() {
    let mut opt = Sgd::new(vec![Param::new("p", Tensor::zeros(&[1]))], 0.1);
    let mut plateau = ReduceLrOnPlateau::new(PlateauMode::Max);
    plateau.patience = 2;
    plateau.cooldown = 1;
    for m in [0.1, 0.2, 0.2, 0.2] {
        plateau.step(m, &mut opt);
    }
    let json = serde_json::to_string(&plateau).unwrap();
    let mut resumed: ReduceLrOnPlateau = serde_json::from_str(&json).unwrap();
    assert_eq!(resumed, plateau);
    let mut opt2 = Sgd::new(vec![Param::new("p", Tensor::zeros(&[1]))], opt.lr());
    for m in [0.2, 0.2, 0.2, 0.2, 0.3, 0.3, 0.3, 0.3] {
        assert_eq!(plateau.step(m, &mut opt), resumed.step(m, &mut opt2));
        assert_eq!(opt.lr(), opt2.lr());
    }
}

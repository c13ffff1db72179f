//! Checkpoint and resume.
//!
//! (a) For every optimizer kind and variant (SGD plain / momentum / Nesterov with weight
//! decay / dampening, Adam, Adam with AMSGrad and weight decay, AdamW, AdamW with
//! AMSGrad, RMSprop plain / centered with momentum, Adagrad with decay and an initial
//! accumulator), over two parameter groups holding f32 and f64 parameters, with a
//! schedule stepped after every update and one step where a parameter has no gradient:
//! `N` steps straight equal `k` steps, then `state()` of the optimizer and the
//! scheduler through serde (JSON and bincode 2), restored into a fresh optimizer over
//! fresh parameters holding the saved values, then `N - k` steps, bit for bit.
//!
//! (b) `load_state` refuses, with an error that says why and without touching the
//! optimizer, a state of another kind, of another number of groups or parameters, with a
//! buffer of another shape or dtype, or with another configuration's buffers (AMSGrad
//! on/off, SGD with/without momentum).

use serde::{Serialize, de::DeserializeOwned};
use sinew_autograd::{Gradients, Param};
use sinew_optim::{
    Adagrad, AdagradConfig, Adam, AdamConfig, CosineAnnealingLr, LinearLr, Optimizer, OptimizerState,
    ParamGroup, RmsProp, RmsPropConfig, Scheduler, SchedulerState, Sgd, SgdConfig, StateError, StateTensor,
    Then,
};
use sinew_tensor::{DType, Generator, Tensor};

const STEPS: usize = 8;

/// The parameters' shapes and dtypes: two groups, f32 and f64 mixed.
const SPECS: [(&str, &[usize], DType); 4] = [
    ("a", &[3, 4], DType::F32),
    ("b", &[5], DType::F64),
    ("c", &[2, 3], DType::F64),
    ("d", &[7], DType::F32),
];

fn fresh_params(seed: u64) -> Vec<Param> {
    let mut g = Generator::new(seed);
    SPECS.iter().map(|&(n, s, dt)| Param::new(n, Tensor::randn_with(s, dt, &mut g))).collect()
}

/// Parameters holding copies (own buffers) of `params`' current values.
fn copies(params: &[Param]) -> Vec<Param> {
    params
        .iter()
        .map(|p| {
            let v = p.value();
            let t = match v.dtype() {
                DType::F32 => Tensor::from_vec(v.to_vec::<f32>(), v.dims()).unwrap(),
                _ => Tensor::from_vec(v.to_vec::<f64>(), v.dims()).unwrap(),
            };
            Param::new(p.name(), t)
        })
        .collect()
}

fn groups(params: &[Param]) -> Vec<ParamGroup> {
    vec![
        ParamGroup::new(params[..2].to_vec(), 0.05).weight_decay(0.01),
        ParamGroup::new(params[2..].to_vec(), 0.02),
    ]
}

/// The gradients of step `step` (0-based): fixed per step, so two runs see the same ones.
/// Parameter `b` gets none at step 1, parameter `d` none at step 4.
fn grads_at(params: &[Param], step: usize) -> Gradients {
    let mut g = Generator::new(1000 + step as u64);
    let mut grads = Gradients::new();
    for (i, p) in params.iter().enumerate() {
        let (dims, dtype) = (p.value().dims().to_vec(), p.value().dtype());
        let t = Tensor::randn_with(&dims, dtype, &mut g);
        if (i, step) != (1, 1) && (i, step) != (3, 4) {
            grads.insert(p.id(), t);
        }
    }
    grads
}

type Build = fn(Vec<ParamGroup>) -> Box<dyn Optimizer>;

fn variants() -> Vec<(&'static str, Build)> {
    vec![
        ("sgd", |g| Box::new(Sgd::with_groups(g, SgdConfig::default()))),
        ("sgd_momentum", |g| {
            Box::new(Sgd::with_groups(g, SgdConfig { momentum: 0.9, ..SgdConfig::default() }))
        }),
        ("sgd_momentum_dampening", |g| {
            Box::new(Sgd::with_groups(g, SgdConfig { momentum: 0.8, dampening: 0.3, nesterov: false }))
        }),
        ("sgd_nesterov", |g| {
            Box::new(Sgd::with_groups(g, SgdConfig { momentum: 0.9, dampening: 0.0, nesterov: true }))
        }),
        ("adam", |g| Box::new(Adam::with_groups(g, AdamConfig::default(), false))),
        ("adam_amsgrad", |g| {
            Box::new(Adam::with_groups(g, AdamConfig { amsgrad: true, ..AdamConfig::default() }, false))
        }),
        ("adamw", |g| Box::new(Adam::with_groups(g, AdamConfig::default(), true))),
        ("adamw_amsgrad", |g| {
            Box::new(Adam::with_groups(g, AdamConfig { betas: (0.8, 0.99), eps: 1e-6, amsgrad: true }, true))
        }),
        ("rmsprop", |g| Box::new(RmsProp::with_groups(g, RmsPropConfig::default()))),
        ("rmsprop_centered_momentum", |g| {
            Box::new(RmsProp::with_groups(
                g,
                RmsPropConfig { momentum: 0.5, centered: true, ..RmsPropConfig::default() },
            ))
        }),
        ("adagrad", |g| {
            Box::new(Adagrad::with_groups(
                g,
                AdagradConfig { lr_decay: 0.1, initial_accumulator_value: 0.2, ..AdagradConfig::default() },
            ))
        }),
    ]
}

type Schedule = Then<LinearLr, CosineAnnealingLr>;

fn schedule() -> Schedule {
    Then {
        first: LinearLr { start_factor: 0.2, end_factor: 1.0, total_iters: 3 },
        milestone: 3,
        second: CosineAnnealingLr { t_max: 6, eta_min: 1e-3 },
    }
}

/// Exact values of every parameter, as bits.
fn bits(params: &[Param]) -> Vec<Vec<u64>> {
    params
        .iter()
        .map(|p| {
            let v = p.value();
            match v.dtype() {
                DType::F32 => v.to_vec::<f32>().iter().map(|x| u64::from(x.to_bits())).collect(),
                _ => v.to_vec::<f64>().iter().map(|x| x.to_bits()).collect(),
            }
        })
        .collect()
}

fn train(
    opt: &mut dyn Optimizer,
    sched: &mut Scheduler<Schedule>,
    params: &[Param],
    steps: std::ops::Range<usize>,
) {
    for step in steps {
        opt.step(&grads_at(params, step));
        sched.step(opt);
    }
}

fn via_json<T: Serialize + DeserializeOwned>(t: &T) -> T {
    serde_json::from_str(&serde_json::to_string(t).unwrap()).unwrap()
}

fn via_bincode<T: Serialize + DeserializeOwned>(t: &T) -> T {
    let bytes = bincode::serde::encode_to_vec(t, bincode::config::standard()).unwrap();
    let (back, read) = bincode::serde::decode_from_slice(&bytes, bincode::config::standard()).unwrap();
    assert_eq!(read, bytes.len());
    back
}

#[test]
fn resuming_from_a_serialised_state_continues_bit_for_bit() {
    for (name, build) in variants() {
        // straight through
        let straight = fresh_params(7);
        let mut opt = build(groups(&straight));
        let mut sched = Scheduler::new(schedule(), opt.as_mut());
        train(opt.as_mut(), &mut sched, &straight, 0..STEPS);
        let want = bits(&straight);

        for k in [0, 1, 3, 5] {
            let first = fresh_params(7);
            let mut opt = build(groups(&first));
            let mut sched = Scheduler::new(schedule(), opt.as_mut());
            train(opt.as_mut(), &mut sched, &first, 0..k);
            let (state, sched_state) = (opt.state(), sched.state());
            assert_eq!(state.step, k as u64, "{name}");

            for (codec, roundtrip) in [
                ("json", via_json::<OptimizerState> as fn(&OptimizerState) -> OptimizerState),
                ("bincode", via_bincode::<OptimizerState>),
            ] {
                let saved = roundtrip(&state);
                assert_eq!(saved, state, "{name}, {codec}: the state survives serialisation exactly");
                let saved_sched: SchedulerState =
                    if codec == "json" { via_json(&sched_state) } else { via_bincode(&sched_state) };
                assert_eq!(saved_sched, sched_state, "{name}, {codec}");

                // a fresh optimizer (other rates, to see them restored) over fresh parameters
                let params = copies(&first);
                let mut fresh_groups = groups(&params);
                fresh_groups[0].lr = 9.0;
                fresh_groups[1].weight_decay = 0.5;
                let mut resumed = build(fresh_groups);
                resumed.load_state(&saved).unwrap_or_else(|e| panic!("{name}, {codec}: {e}"));
                let mut resumed_sched = Scheduler::new(schedule(), resumed.as_mut());
                resumed_sched.load_state(saved_sched, resumed.as_mut()).unwrap();
                assert_eq!(resumed.state(), state, "{name}, {codec}: load_state then state is the identity");
                assert_eq!(resumed.lr(), opt.lr(), "{name}, {codec}: the scheduled rate is back");
                train(resumed.as_mut(), &mut resumed_sched, &params, k..STEPS);
                assert!(
                    bits(&params) == want,
                    "{name}, {codec}: resumed after {k} steps differs from straight"
                );
                assert_eq!(resumed_sched.state().step, STEPS, "{name}, {codec}");
            }
        }
    }
}

#[test]
fn state_records_per_parameter_step_counts() {
    let params = fresh_params(3);
    let mut opt = Adam::with_groups(groups(&params), AdamConfig::default(), false);
    for step in 0..6 {
        opt.step(&grads_at(&params, step));
    }
    let state = opt.state();
    assert_eq!(state.step, 6);
    // `b` had no gradient at step 1, `d` none at step 4
    assert_eq!(state.param_steps, [6, 5, 6, 5]);
    assert_eq!(
        state.buffers[0].iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>(),
        ["exp_avg", "exp_avg_sq"]
    );
    assert!(matches!(state.buffers[1][0].1, StateTensor::F64 { .. }));
    assert!(matches!(state.buffers[0][0].1, StateTensor::F32 { .. }));
}

/// An optimizer's state after two steps.
fn trained_state(build: Build, params: &[Param]) -> OptimizerState {
    let mut opt = build(groups(params));
    for step in 0..2 {
        opt.step(&grads_at(params, step));
    }
    opt.state()
}

#[track_caller]
fn refuses(opt: &mut dyn Optimizer, state: &OptimizerState, message: &[&str]) -> StateError {
    let before = opt.state();
    let err = opt.load_state(state).expect_err("load_state should refuse this state");
    let text = err.to_string();
    for m in message {
        assert!(text.contains(m), "error {text:?} should mention {m:?}");
    }
    assert_eq!(opt.state(), before, "a refused state leaves the optimizer as it was");
    err
}

fn build_named(name: &str) -> Build {
    variants().into_iter().find(|(n, _)| *n == name).unwrap().1
}

#[test]
fn load_state_refuses_another_kind() {
    let params = fresh_params(1);
    let adam = trained_state(build_named("adam"), &params);
    let mut sgd = build_named("sgd_momentum")(groups(&params));
    let err = refuses(sgd.as_mut(), &adam, &["adam", "sgd"]);
    assert!(matches!(err, StateError::Kind { .. }));
    let mut adamw = build_named("adamw")(groups(&params));
    refuses(adamw.as_mut(), &adam, &["`adam`", "`adamw`"]);
    let mut rmsprop = build_named("rmsprop")(groups(&params));
    refuses(rmsprop.as_mut(), &trained_state(build_named("adagrad"), &params), &["adagrad", "rmsprop"]);
}

#[test]
fn load_state_refuses_another_parameter_count() {
    let params = fresh_params(1);
    let state = trained_state(build_named("adam"), &params);
    // three parameters instead of four
    let mut fewer = Adam::with_groups(
        vec![ParamGroup::new(params[..2].to_vec(), 0.1), ParamGroup::new(params[2..3].to_vec(), 0.1)],
        AdamConfig::default(),
        false,
    );
    let err = refuses(&mut fewer, &state, &["4 parameters", "has 3"]);
    assert_eq!(err, StateError::Count { what: "parameters", expected: 3, found: 4 });
    // one group instead of two
    let mut one_group = Adam::new(params.clone(), 0.1);
    let err = refuses(&mut one_group, &state, &["2 groups", "has 1"]);
    assert_eq!(err, StateError::Count { what: "groups", expected: 1, found: 2 });
    // a hand-edited state whose step counts do not match the parameters
    let mut edited = state.clone();
    edited.param_steps.pop();
    let mut opt = build_named("adam")(groups(&params));
    refuses(opt.as_mut(), &edited, &["parameter step counts"]);
}

#[test]
fn load_state_refuses_another_shape_or_dtype() {
    let params = fresh_params(1);
    let state = trained_state(build_named("rmsprop_centered_momentum"), &params);
    // parameter `c` is (3, 2) instead of (2, 3)
    let mut other = fresh_params(1);
    other[2] = Param::new("c", Tensor::zeros_dtype(&[3, 2], DType::F64));
    let mut opt = build_named("rmsprop_centered_momentum")(groups(&other));
    let err = refuses(opt.as_mut(), &state, &["parameter 2", "square_avg", "[2, 3]", "[3, 2]"]);
    assert!(matches!(err, StateError::Shape { index: 2, .. }));
    // parameter `a` is f64 instead of f32
    let mut other = fresh_params(1);
    other[0] = Param::new("a", Tensor::zeros_dtype(&[3, 4], DType::F64));
    let mut opt = build_named("rmsprop_centered_momentum")(groups(&other));
    let err =
        refuses(opt.as_mut(), &state, &["parameter 0", "square_avg", "is float32", "the parameter float64"]);
    assert!(matches!(err, StateError::DType { index: 0, .. }));
}

#[test]
fn load_state_refuses_another_configurations_buffers() {
    let params = fresh_params(1);
    // AMSGrad off -> on would otherwise start m and v again from zero
    let plain = trained_state(build_named("adam"), &params);
    let mut ams = build_named("adam_amsgrad")(groups(&params));
    let err = refuses(ams.as_mut(), &plain, &["max_exp_avg_sq"]);
    assert!(matches!(err, StateError::Buffers { index: 0, .. }));
    // and on -> off
    let with_max = trained_state(build_named("adam_amsgrad"), &params);
    refuses(build_named("adam")(groups(&params)).as_mut(), &with_max, &["max_exp_avg_sq"]);
    // SGD with momentum into SGD without
    let momentum = trained_state(build_named("sgd_momentum"), &params);
    refuses(build_named("sgd")(groups(&params)).as_mut(), &momentum, &["momentum_buffer"]);
    // SGD without momentum (no buffers) into SGD with momentum is fine: the buffer starts
    // at the first gradient, as in PyTorch
    let plain_sgd = trained_state(build_named("sgd"), &params);
    build_named("sgd_momentum")(groups(&params)).load_state(&plain_sgd).unwrap();
    // a state saved before any step loads anywhere of the same kind and parameters
    let untouched = build_named("adam")(groups(&params)).state();
    build_named("adam_amsgrad")(groups(&params)).load_state(&untouched).unwrap();
}

#[test]
fn state_tensor_values_survive_json_and_bincode_exactly() {
    // finite values of every magnitude (subnormals included), from random bit patterns
    let mut g = Generator::new(42);
    let mut word = || (g.uniform_f64() * 2f64.powi(32)) as u64;
    let mut f64s = Vec::new();
    let mut f32s = Vec::new();
    while f64s.len() < 20_000 {
        let x = f64::from_bits(word() << 32 | word());
        if x.is_finite() {
            f64s.push(x);
        }
        let y = f32::from_bits(word() as u32);
        if y.is_finite() && f32s.len() < 20_000 {
            f32s.push(y);
        }
    }
    let n = f32s.len();
    for t in [
        StateTensor::F64 { shape: vec![20_000], data: f64s },
        StateTensor::F32 { shape: vec![n], data: f32s },
    ] {
        assert!(via_json(&t) == t, "JSON changes a value");
        assert!(via_bincode(&t) == t, "bincode changes a value");
    }
}

/// A state that would load and then make the next step NaN (Adam's bias correction
/// divides by `1 − β^step`, zero at step 0) or otherwise poison training is refused, and
/// the optimizer is left as it was.
#[test]
fn load_state_refuses_state_that_would_poison_the_next_step() {
    let params = fresh_params(3);
    let good = trained_state(build_named("adam"), &params);
    let mut opt = build_named("adam")(groups(&params));
    opt.step(&grads_at(&params, 0));

    let mut zero_steps = good.clone();
    zero_steps.param_steps[0] = 0; // buffers, but no update counted
    refuses(opt.as_mut(), &zero_steps, &["parameter 0", "0 updates but has buffers"]);

    let mut too_many = good.clone();
    too_many.param_steps[0] = good.step + 1;
    refuses(opt.as_mut(), &too_many, &["more than the optimizer's"]);

    let mut nan_lr = good.clone();
    nan_lr.groups[0].lr = f64::NAN;
    refuses(opt.as_mut(), &nan_lr, &["learning rate NaN"]);

    let mut negative_decay = good.clone();
    negative_decay.groups[0].weight_decay = -1.0;
    refuses(opt.as_mut(), &negative_decay, &["weight decay -1"]);

    for (buffer, value, needle) in [(0, f32::INFINITY, "inf"), (1, -1.0, "-1")] {
        let mut poisoned = good.clone();
        if let StateTensor::F32 { data, .. } = &mut poisoned.buffers[0][buffer].1 {
            data[0] = value;
        }
        refuses(opt.as_mut(), &poisoned, &[needle]);
    }
    // the good state still loads and steps to finite values
    opt.load_state(&good).unwrap();
    opt.step(&grads_at(&params, 2));
    assert!(params.iter().all(|p| p.value().to_vec::<f64>().iter().all(|v| v.is_finite())));
}

#[test]
fn scheduler_load_state_refuses_state_for_other_groups_or_non_finite_rates() {
    use sinew_optim::{Scheduler, SchedulerState, StepLr};
    let params = fresh_params(4);
    let mut opt = build_named("sgd_momentum")(groups(&params));
    let groups_n = opt.param_groups().len();
    let mut sched = Scheduler::new(StepLr { step_size: 1, gamma: 0.5 }, opt.as_mut());
    let lr_before = opt.lr();
    let wrong_count = SchedulerState { step: 1, base_lrs: vec![0.1; groups_n + 1] };
    assert!(sched.load_state(wrong_count, opt.as_mut()).is_err());
    let nan = SchedulerState { step: 1, base_lrs: vec![f64::NAN; groups_n] };
    assert!(sched.load_state(nan, opt.as_mut()).unwrap_err().to_string().contains("NaN"));
    // γ^step underflows to 0 (finite): allowed
    assert!(
        sched.load_state(SchedulerState { step: 5000, base_lrs: vec![0.1; groups_n] }, opt.as_mut()).is_ok()
    );
    assert_eq!(sched.state().step, 5000);
    assert!(lr_before > 0.0);
}

/// Adam's bias correction `1 − β^step` used `powi(step as i32)`: at 2^32 steps the count
/// wrapped to 0, the correction was 0 and the step NaN. A state that far along loads and
/// steps to finite values; one past any real run is refused.
#[test]
fn adam_past_two_to_the_32_steps_stays_finite_and_absurd_counts_are_refused() {
    let params = fresh_params(5);
    let mut state = trained_state(build_named("adam"), &params);
    state.step = 1 << 32;
    state.param_steps.iter_mut().for_each(|s| *s = (1 << 32) - 1);
    let mut opt = build_named("adam")(groups(&params));
    opt.load_state(&state).unwrap();
    opt.step(&grads_at(&params, 3));
    assert!(params.iter().all(|p| p.value().to_vec::<f64>().iter().all(|v| v.is_finite())));
    let mut absurd = state.clone();
    absurd.step = u64::MAX;
    refuses(opt.as_mut(), &absurd, &["not a count a run reaches"]);
}

//! Recurrent layers ([`Rnn`], [`Lstm`], [`Gru`]):
//! - parity with PyTorch (`tests/fixtures/recurrent.json`): the output and the gradient
//!   of every input and weight, in f64 (1e-9 relative) and f32 (1e-4 relative), with the
//!   golden weights loaded by their PyTorch names;
//! - `gradcheck` in f64 over random small shapes, layer counts, layouts, with and without
//!   an initial state, of the output and the final state together;
//! - structure: stacking, layouts, state carrying and unbatched inputs agree with each other;
//! - bad shapes panic with the layer and the shapes;
//! - an LSTM learns to recall the first element of a sequence.

use proptest::prelude::*;
use serde_json::Value;
use sinew_autograd::{GradcheckOptions, Var, gradcheck};
use sinew_nn::{Forward, Gru, Linear, Lstm, Module, RecurrentOptions, Rnn, RnnNonlinearity};
use sinew_tensor::{DType, Generator, Tensor};
use sinew_testing::golden::{shape_of, tensor_of};

fn assert_close(what: &str, got: &Tensor, want: &Value, rtol: f64) {
    assert_eq!(got.dims(), &shape_of(want)[..], "{what}: shape");
    let want: Vec<f64> = want["data"].as_array().unwrap().iter().map(|d| d.as_f64().unwrap()).collect();
    for (i, (g, w)) in got.to_vec::<f64>().iter().zip(&want).enumerate() {
        assert!(
            (g - w).abs() <= rtol * w.abs().max(1.0),
            "{what} ({rtol}): element {i} is {g}, PyTorch says {w}"
        );
    }
}

/// Any of the three layers, seen through one interface for the tests.
enum Layer {
    Rnn(Rnn),
    Lstm(Lstm),
    Gru(Gru),
}

impl Layer {
    fn module(&self) -> &dyn Module {
        match self {
            Layer::Rnn(m) => m,
            Layer::Lstm(m) => m,
            Layer::Gru(m) => m,
        }
    }

    fn is_lstm(&self) -> bool {
        matches!(self, Layer::Lstm(_))
    }

    /// Output and final states (`[h_n]` or `[h_n, c_n]`), with the module's parameters.
    fn run(&self, x: &Var, state: &[Var]) -> (Var, Vec<Var>) {
        match self {
            Layer::Rnn(m) => {
                let (y, h) = m.forward_with_state(x, state.first());
                (y, vec![h])
            }
            Layer::Gru(m) => {
                let (y, h) = m.forward_with_state(x, state.first());
                (y, vec![h])
            }
            Layer::Lstm(m) => {
                let (y, (h, c)) = m.forward_with_state(x, state.first().map(|h| (h, &state[1])));
                (y, vec![h, c])
            }
        }
    }

    /// The same with explicit weights.
    fn run_with(&self, w: &[Var], x: &Var, state: &[Var]) -> (Var, Vec<Var>) {
        match self {
            Layer::Rnn(m) => {
                let (y, h) = m.forward_with_weights(w, x, state.first());
                (y, vec![h])
            }
            Layer::Gru(m) => {
                let (y, h) = m.forward_with_weights(w, x, state.first());
                (y, vec![h])
            }
            Layer::Lstm(m) => {
                let (y, (h, c)) = m.forward_with_weights(w, x, state.first().map(|h| (h, &state[1])));
                (y, vec![h, c])
            }
        }
    }
}

fn build(
    kind: &str,
    input: usize,
    hidden: usize,
    layers: usize,
    batch_first: bool,
    g: &mut Generator,
) -> Layer {
    match kind {
        "rnn_tanh" => Layer::Rnn(Rnn::new(
            input,
            hidden,
            RnnNonlinearity::Tanh,
            RecurrentOptions::default().num_layers(layers).batch_first(batch_first),
            g,
        )),
        "rnn_relu" => Layer::Rnn(Rnn::new(
            input,
            hidden,
            RnnNonlinearity::Relu,
            RecurrentOptions::default().num_layers(layers).batch_first(batch_first),
            g,
        )),
        "lstm" => Layer::Lstm(Lstm::new(
            input,
            hidden,
            RecurrentOptions::default().num_layers(layers).batch_first(batch_first),
            g,
        )),
        "gru" => Layer::Gru(Gru::new(
            input,
            hidden,
            RecurrentOptions::default().num_layers(layers).batch_first(batch_first),
            g,
        )),
        other => panic!("unknown layer {other}"),
    }
}

fn check_golden_case(case: &Value, dtype: DType, rtol: f64) {
    let name = case["name"].as_str().unwrap();
    let input = |n: &str| case["inputs"].as_array().unwrap().iter().find(|i| i["name"] == n).unwrap();
    let x_spec = input("x");
    let (in_size, hidden) = (shape_of(x_spec)[2], shape_of(&case["output"])[2]);
    assert_eq!(case["attrs"]["batch_first"], true, "{name}");
    let layer = build(case["op"].as_str().unwrap(), in_size, hidden, 1, true, &mut Generator::new(0));
    let module = layer.module();
    module.cast(dtype);
    let state: Vec<(String, Tensor)> = ["weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0"]
        .iter()
        .map(|n| (n.to_string(), tensor_of(input(n), dtype)))
        .collect();
    module.load_state_dict(&state, true).unwrap_or_else(|r| panic!("{name}: {r}"));

    let x = Var::leaf(tensor_of(x_spec, dtype));
    let y = Forward::forward(module_forward(&layer), &x);
    assert_eq!(y.dtype(), dtype);
    assert_close(&format!("{name}: output"), y.value(), &case["output"], rtol);
    let grads = y.backward_with(&tensor_of(&case["cotangent"], dtype));
    let want = case["grads"].as_object().unwrap();
    assert_eq!(want.len(), 5, "{name}: x and four weights");
    assert_close(&format!("{name}: grad x"), grads.get(&x).unwrap(), &want["x"], rtol);
    for (pname, p) in module.named_parameters() {
        let g = grads.get_id(p.id()).unwrap_or_else(|| panic!("{name}: no gradient for {pname}"));
        assert_close(&format!("{name}: grad {pname}"), g, &want[&pname], rtol);
    }
}

fn module_forward(layer: &Layer) -> &dyn Forward {
    match layer {
        Layer::Rnn(m) => m,
        Layer::Lstm(m) => m,
        Layer::Gru(m) => m,
    }
}

#[test]
fn parity_with_pytorch() {
    let v: Value = serde_json::from_str(include_str!("../../../tests/fixtures/recurrent.json")).unwrap();
    let cases = v["cases"].as_array().unwrap();
    let ops: Vec<&str> = cases.iter().map(|c| c["op"].as_str().unwrap()).collect();
    assert_eq!(ops, ["rnn_tanh", "lstm", "gru"]);
    for case in cases {
        check_golden_case(case, DType::F64, 1e-9);
        check_golden_case(case, DType::F32, 1e-4);
    }
}

fn randn(shape: &[usize], g: &mut Generator) -> Tensor {
    Tensor::randn_with(shape, DType::F64, g)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(8))]

    /// The gradient of the output and the final state(s) together, with respect to the
    /// input, the initial state(s) and every weight, against finite differences.
    #[test]
    fn gradcheck_recurrent(
        kind in prop::sample::select(vec!["rnn_tanh", "rnn_relu", "lstm", "gru"]),
        n in 1usize..4, t in 1usize..4, input in 1usize..4, hidden in 1usize..4, layers in 1usize..3,
        batch_first: bool, with_state: bool, unbatched: bool, seed in 0u64..1000,
    ) {
        let mut g = Generator::new(seed);
        let layer = build(kind, input, hidden, layers, batch_first, &mut g);
        layer.module().cast(DType::F64);
        let x_shape = match (unbatched, batch_first) {
            (true, _) => vec![t, input],
            (false, true) => vec![n, t, input],
            (false, false) => vec![t, n, input],
        };
        let state_shape = if unbatched { vec![layers, hidden] } else { vec![layers, n, hidden] };
        let mut inputs = vec![randn(&x_shape, &mut g)];
        let n_states = if !with_state { 0 } else if layer.is_lstm() { 2 } else { 1 };
        for _ in 0..n_states {
            inputs.push(randn(&state_shape, &mut g));
        }
        // weights a little larger than the initialisation, to exercise the nonlinearities
        inputs.extend(layer.module().parameters().iter().map(|p| p.value().mul_scalar(2.0)));
        let f = |v: &[Var]| {
            let (y, states) = layer.run_with(&v[1 + n_states..], &v[0], &v[1..1 + n_states]);
            let mut parts = vec![y.reshape(&[y.numel()])];
            parts.extend(states.iter().map(|s| s.reshape(&[s.numel()])));
            let refs: Vec<&Var> = parts.iter().collect();
            Var::cat(&refs, 0)
        };
        let checked = gradcheck(f, &inputs, GradcheckOptions { seed, ..GradcheckOptions::default() });
        prop_assert!(checked.is_ok(), "{kind} n={n} t={t} in={input} h={hidden} layers={layers}: {}", checked.unwrap_err());
    }
}

/// A two-layer LSTM is two one-layer LSTMs chained, with `h_n`/`c_n` stacked by layer.
#[test]
fn stacked_layers_chain() {
    let mut g = Generator::new(1);
    let two = Lstm::new(3, 4, RecurrentOptions::default().num_layers(2), &mut g);
    let (a, b) = (
        Lstm::new(3, 4, RecurrentOptions::default(), &mut g),
        Lstm::new(4, 4, RecurrentOptions::default(), &mut g),
    );
    let sd = two.state_dict();
    let rename = |k: usize| -> Vec<(String, Tensor)> {
        sd.iter()
            .filter(|(n, _)| n.ends_with(&format!("_l{k}")))
            .map(|(n, t)| (n.replace(&format!("_l{k}"), "_l0"), t.clone()))
            .collect()
    };
    a.load_state_dict(&rename(0), true).unwrap();
    b.load_state_dict(&rename(1), true).unwrap();
    let x = Var::constant(Tensor::randn_with(&[5, 2, 3], DType::F32, &mut g));
    let (y, (h, c)) = two.forward_with_state(&x, None);
    let (ya, (ha, ca)) = a.forward_with_state(&x, None);
    let (yb, (hb, cb)) = b.forward_with_state(&ya, None);
    assert!(y.value().allclose(yb.value(), 1e-6, 1e-6));
    let stack = |p: &Var, q: &Var| Tensor::cat(&[p.value(), q.value()], 0);
    assert!(h.value().allclose(&stack(&ha, &hb), 1e-6, 1e-6));
    assert!(c.value().allclose(&stack(&ca, &cb), 1e-6, 1e-6));
}

/// `batch_first`, unbatched input and state carrying all compute the same thing.
#[test]
fn layouts_and_state_carrying_agree() {
    for kind in ["rnn_tanh", "rnn_relu", "lstm", "gru"] {
        let mut g = Generator::new(2);
        let seq_first = build(kind, 3, 4, 2, false, &mut g);
        let batch_first = build(kind, 3, 4, 2, true, &mut g);
        batch_first.module().load_state_dict(&seq_first.module().state_dict(), true).unwrap();
        let x = Var::constant(Tensor::randn_with(&[6, 2, 3], DType::F32, &mut g)); // (T, N, in)
        let (y, s) = seq_first.run(&x, &[]);
        let (yb, sb) = batch_first.run(&x.transpose(0, 1), &[]);
        assert!(yb.value().allclose(&y.value().transpose(0, 1), 1e-6, 1e-6), "{kind}: batch_first output");
        for (p, q) in s.iter().zip(&sb) {
            assert!(p.value().allclose(q.value(), 1e-6, 1e-6), "{kind}: batch_first state");
        }
        // the output's last step is the top layer's final hidden state
        assert!(y.value().select(0, 5).allclose(&s[0].value().select(0, 1), 1e-6, 1e-6), "{kind}");
        // two halves with the state carried over = the whole sequence
        let (_, mid) = seq_first.run(&x.narrow(0, 0, 2), &[]);
        let (y2, s2) = seq_first.run(&x.narrow(0, 2, 4), &mid);
        assert!(y2.value().allclose(&y.value().narrow(0, 2, 4), 1e-6, 1e-6), "{kind}: carried output");
        for (p, q) in s.iter().zip(&s2) {
            assert!(p.value().allclose(q.value(), 1e-6, 1e-6), "{kind}: carried state");
        }
        // unbatched (T, in) = batch of one
        let x1 = x.select(1, 1);
        let (yu, su) = seq_first.run(&x1, &[]);
        assert_eq!(yu.dims(), &[6, 4]);
        assert!(yu.value().allclose(&y.value().select(1, 1), 1e-6, 1e-6), "{kind}: unbatched output");
        for (p, q) in s.iter().zip(&su) {
            assert_eq!(q.dims(), &[2, 4]);
            assert!(q.value().allclose(&p.value().select(1, 1), 1e-6, 1e-6), "{kind}: unbatched state");
        }
        // Forward is the output from a zero state
        let zero = Var::constant(Tensor::zeros(&[2, 2, 4]));
        let zeros = if seq_first.is_lstm() { vec![zero.clone(), zero] } else { vec![zero] };
        let (yz, _) = seq_first.run(&x, &zeros);
        assert!(yz.value().allclose(Forward::forward(module_forward(&seq_first), &x).value(), 1e-7, 1e-7));
    }
}

#[test]
fn parameters_have_pytorch_names_shapes_and_init() {
    let mut g = Generator::new(3);
    let gru = Gru::new(3, 16, RecurrentOptions::default().num_layers(2), &mut g);
    let named: Vec<(String, Vec<usize>)> =
        gru.named_parameters().into_iter().map(|(n, p)| (n, p.value().dims().to_vec())).collect();
    let want = [
        ("weight_ih_l0", vec![48, 3]),
        ("weight_hh_l0", vec![48, 16]),
        ("bias_ih_l0", vec![48]),
        ("bias_hh_l0", vec![48]),
        ("weight_ih_l1", vec![48, 16]),
        ("weight_hh_l1", vec![48, 16]),
        ("bias_ih_l1", vec![48]),
        ("bias_hh_l1", vec![48]),
    ];
    assert_eq!(named.len(), want.len());
    for ((n, s), (wn, ws)) in named.iter().zip(&want) {
        assert_eq!((n.as_str(), s), (*wn, ws));
    }
    // U(-1/√H, 1/√H) for every weight and bias
    for p in gru.parameters() {
        let v = p.value();
        assert!(v.abs().max_all().item() <= 0.25);
        assert!(v.abs().max_all().item() > 0.2, "{p:?} spans the range");
    }
    assert_eq!(
        Lstm::new(3, 16, RecurrentOptions::default(), &mut g).weights()[0].weight_hh.value().dims(),
        &[64, 16]
    );
    assert_eq!(
        Rnn::new(3, 16, RnnNonlinearity::Relu, RecurrentOptions::default(), &mut g).to_string(),
        "Rnn(3, 16, nonlinearity='relu')"
    );
}

#[test]
#[should_panic(
    expected = "Lstm(3, 5, batch_first=True): expected input of shape [N, T, 3] (or unbatched [T, 3]), got [2, 4, 7]"
)]
fn lstm_wrong_input_size_panics() {
    let lstm = Lstm::new(3, 5, RecurrentOptions::default().batch_first(true), &mut Generator::new(0));
    lstm.forward(&Var::constant(Tensor::zeros(&[2, 4, 7])));
}

#[test]
#[should_panic(
    expected = "Gru(3, 5, num_layers=2): expected input of shape [T, N, 3] (or unbatched [T, 3]), got [2, 4, 3, 1]"
)]
fn gru_wrong_rank_panics() {
    let gru = Gru::new(3, 5, RecurrentOptions::default().num_layers(2), &mut Generator::new(0));
    gru.forward(&Var::constant(Tensor::zeros(&[2, 4, 3, 1])));
}

#[test]
#[should_panic(expected = "Rnn(3, 5, num_layers=2): expected h_0 of shape [2, 4, 5], got [1, 4, 5]")]
fn rnn_wrong_state_panics() {
    let rnn = Rnn::new(
        3,
        5,
        RnnNonlinearity::Tanh,
        RecurrentOptions::default().num_layers(2),
        &mut Generator::new(0),
    );
    let h0 = Var::constant(Tensor::zeros(&[1, 4, 5]));
    rnn.forward_with_state(&Var::constant(Tensor::zeros(&[6, 4, 3])), Some(&h0));
}

#[test]
#[should_panic(expected = "Lstm(3, 5): expected c_0 of shape [1, 4, 5], got [1, 4, 6]")]
fn lstm_wrong_cell_state_panics() {
    let lstm = Lstm::new(3, 5, RecurrentOptions::default(), &mut Generator::new(0));
    let (h0, c0) = (Var::constant(Tensor::zeros(&[1, 4, 5])), Var::constant(Tensor::zeros(&[1, 4, 6])));
    lstm.forward_with_state(&Var::constant(Tensor::zeros(&[6, 4, 3])), Some((&h0, &c0)));
}

#[test]
#[should_panic(expected = "Lstm(3, 5): expected weight_hh_l0 of shape [20, 5], got [20, 4]")]
fn wrong_weights_panic() {
    let lstm = Lstm::new(3, 5, RecurrentOptions::default(), &mut Generator::new(0));
    let mut w: Vec<Var> = lstm.parameters().iter().map(|p| p.var()).collect();
    w[1] = Var::constant(Tensor::zeros(&[20, 4]));
    lstm.forward_with_weights(&w, &Var::constant(Tensor::zeros(&[6, 4, 3])), None);
}

/// Memory: the target is the first element of a sequence of 12 random numbers in
/// `U(-1, 1)` (marked by a second input channel), read off the last output through a
/// linear head, trained with Adam written out. Predicting the mean gives a loss of 1/3
/// (the variance); the LSTM must carry `x_0` through 11 distracting steps.
#[test]
fn lstm_learns_to_remember_the_first_element() {
    let (steps, batch, hidden) = (12, 32, 16);
    let mut g = Generator::new(7);
    let lstm = Lstm::new(2, hidden, RecurrentOptions::default().batch_first(true), &mut g);
    let head = Linear::new(hidden, 1, &mut g);
    // the usual forget-gate bias of 1 (rows H..2H: gates i, f, g, o), so that memory is
    // kept by default; without it, training stalls on some seeds
    let w = &lstm.weights()[0];
    let mut b = w.bias_ih.value().to_vec::<f32>();
    b[hidden..2 * hidden].iter_mut().for_each(|v| *v += 1.0);
    w.bias_ih.set_value(Tensor::from_vec(b, &[4 * hidden]).unwrap());
    let params: Vec<_> = lstm.parameters().into_iter().chain(head.parameters()).collect();
    // Adam, written out
    let (lr, b1, b2, eps) = (0.02f32, 0.9f32, 0.999f32, 1e-8f32);
    let mut m: Vec<Vec<f32>> = params.iter().map(|p| vec![0.0; p.numel()]).collect();
    let mut v = m.clone();
    let loss_of = |x: &Tensor| {
        let out = lstm.forward(&Var::constant(x.clone()));
        let last = out.select(1, steps - 1); // (N, H)
        let pred = head.forward(&last).reshape(&[batch]);
        let target = Var::constant(x.select(1, 0).select(1, 0).reshape(&[batch]));
        (&pred - &target).square().mean_all()
    };
    // channel 0: the values; channel 1: a marker, 1 at the first step
    let marker: Vec<f32> = (0..batch * steps).map(|i| if i % steps == 0 { 1.0 } else { 0.0 }).collect();
    let marker = Tensor::from_vec(marker, &[batch, steps, 1]).unwrap();
    let data = |g: &mut Generator| {
        Tensor::cat(&[&Tensor::uniform_with(&[batch, steps, 1], -1.0, 1.0, DType::F32, g), &marker], 2)
    };
    let test = data(&mut g);
    let before = loss_of(&test).item();
    for step in 1..=500 {
        let loss = loss_of(&data(&mut g));
        let grads = loss.backward();
        for (k, p) in params.iter().enumerate() {
            let grad = grads.get_id(p.id()).expect("every parameter gets a gradient").to_vec::<f32>();
            let mut value = p.value_mut();
            let (c1, c2) = (1.0 - b1.powi(step), 1.0 - b2.powi(step));
            for (i, w) in value.as_mut_slice::<f32>().iter_mut().enumerate() {
                m[k][i] = b1 * m[k][i] + (1.0 - b1) * grad[i];
                v[k][i] = b2 * v[k][i] + (1.0 - b2) * grad[i] * grad[i];
                *w -= lr * (m[k][i] / c1) / ((v[k][i] / c2).sqrt() + eps);
            }
        }
    }
    let after = loss_of(&test).item();
    assert!(before > 0.2, "untrained loss {before}");
    eprintln!("first-element memory: held-out loss {before} -> {after}");
    assert!(after < 0.01, "loss on held-out sequences {before} -> {after}");
}

/// A longer sequence (17 steps: several blocks of the blocked slicing), two layers.
#[test]
fn gradcheck_long_sequence() {
    for kind in ["lstm", "gru", "rnn_tanh"] {
        let mut g = Generator::new(11);
        let layer = build(kind, 2, 3, 2, true, &mut g);
        layer.module().cast(DType::F64);
        let mut inputs = vec![randn(&[2, 17, 2], &mut g)];
        inputs.extend(layer.module().parameters().iter().map(|p| p.value().mul_scalar(2.0)));
        let f = |v: &[Var]| layer.run_with(&v[1..], &v[0], &[]).0;
        gradcheck(f, &inputs, GradcheckOptions::default()).unwrap_or_else(|e| panic!("{kind}: {e}"));
    }
}

/// The fused LSTM splits each step's GEMMs in two halves that run on two threads when
/// there are two: the split never depends on the thread count, so neither do results.
#[test]
fn lstm_results_do_not_depend_on_the_thread_count() {
    let mut g = Generator::new(11);
    let lstm = Lstm::new(16, 128, RecurrentOptions::default().num_layers(2).batch_first(true), &mut g);
    let x = Tensor::randn_with(&[32, 12, 16], DType::F32, &mut g);
    let run = |threads: usize| {
        sinew_tensor::set_num_threads(threads);
        let out = lstm.forward(&Var::constant(x.clone()));
        let grads = out.square().sum_all().backward();
        let mut all = vec![out.value().clone()];
        all.extend(lstm.parameters().iter().map(|p| grads.get(&p.var()).unwrap().clone()));
        all
    };
    let (one, two) = (run(1), run(2));
    sinew_tensor::set_num_threads(0);
    for (a, b) in one.iter().zip(&two) {
        assert_eq!(a.to_vec::<f32>(), b.to_vec::<f32>());
    }
}

const BIDIRECTIONAL: &str = include_str!("../../../tests/fixtures/bidirectional_rnn.json");

/// Bidirectional two-layer RNN, LSTM and GRU against PyTorch (`tests/fixtures/
/// gen_bidirectional.py`): parameter names and order, outputs, final states, and the
/// gradients of input, initial states and every parameter, in f64.
#[test]
fn bidirectional_layers_match_pytorch() {
    let doc: Value = serde_json::from_str(BIDIRECTIONAL).unwrap();
    let cases = doc["cases"].as_array().unwrap();
    assert_eq!(cases.len(), 4, "bidirectional_rnn.json lost cases");
    for case in cases {
        let kind = case["kind"].as_str().unwrap();
        let get = |name: &str| -> Tensor {
            let t = &case["tensors"][name];
            assert!(!t.is_null(), "{kind}: no tensor {name}");
            let shape: Vec<usize> =
                t["shape"].as_array().unwrap().iter().map(|v| v.as_u64().unwrap() as usize).collect();
            let data: Vec<f64> = t["data"].as_array().unwrap().iter().map(|v| v.as_f64().unwrap()).collect();
            Tensor::from_vec(data, &shape).unwrap()
        };
        let close = |what: &str, got: &Tensor, want: &Tensor| {
            assert_eq!(got.dims(), want.dims(), "{kind}: {what} shape");
            assert!(got.allclose(want, 1e-9, 1e-9), "{kind}: {what} differs from PyTorch");
        };
        let (inp, hid, layers) = (
            case["input_size"].as_u64().unwrap() as usize,
            case["hidden_size"].as_u64().unwrap() as usize,
            case["num_layers"].as_u64().unwrap() as usize,
        );
        let batch_first = case["batch_first"].as_bool().unwrap();
        let mut g = Generator::new(0);
        let order: Vec<String> =
            case["param_order"].as_array().unwrap().iter().map(|v| v.as_str().unwrap().to_string()).collect();
        let state: Vec<(String, Tensor)> = order.iter().map(|n| (n.clone(), get(n))).collect();
        // builds the layer in f64 with PyTorch's weights, checking names and order first
        let prepare = |m: &dyn Module| {
            let names: Vec<String> = m.named_parameters().into_iter().map(|(n, _)| n).collect();
            assert_eq!(names, order, "{kind}: parameter names and order");
            m.cast(DType::F64);
            m.load_state_dict(&state, true).unwrap();
            m.named_parameters()
        };
        let (x, h0) = (Var::leaf(get("x")), Var::leaf(get("h0")));
        let c0 = (kind == "lstm").then(|| Var::leaf(get("c0")));
        let (out, h_n, c_n, named) = match kind {
            "rnn_tanh" => {
                let rnn = Rnn::new(
                    inp,
                    hid,
                    RnnNonlinearity::Tanh,
                    RecurrentOptions::default()
                        .num_layers(layers)
                        .batch_first(batch_first)
                        .bidirectional(true),
                    &mut g,
                );
                let named = prepare(&rnn);
                let (o, h) = rnn.forward_with_state(&x, Some(&h0));
                (o, h, None, named)
            }
            "lstm" => {
                let lstm = Lstm::new(
                    inp,
                    hid,
                    RecurrentOptions::default()
                        .num_layers(layers)
                        .batch_first(batch_first)
                        .bidirectional(true),
                    &mut g,
                );
                let named = prepare(&lstm);
                let (o, (h, c)) = lstm.forward_with_state(&x, Some((&h0, c0.as_ref().unwrap())));
                (o, h, Some(c), named)
            }
            _ => {
                let gru = Gru::new(
                    inp,
                    hid,
                    RecurrentOptions::default()
                        .num_layers(layers)
                        .batch_first(batch_first)
                        .bidirectional(true),
                    &mut g,
                );
                let named = prepare(&gru);
                let (o, h) = gru.forward_with_state(&x, Some(&h0));
                (o, h, None, named)
            }
        };
        close("out", out.value(), &get("out"));
        close("h_n", h_n.value(), &get("h_n"));
        let mut loss =
            &(&out * &Var::constant(get("wo"))).sum_all() + &(&h_n * &Var::constant(get("wh"))).sum_all();
        if let Some(c_n) = &c_n {
            close("c_n", c_n.value(), &get("c_n"));
            loss = &loss + &(c_n * &Var::constant(get("wc"))).sum_all();
        }
        let grads = loss.backward();
        close("grad.x", grads.get(&x).unwrap(), &get("grad.x"));
        close("grad.h0", grads.get(&h0).unwrap(), &get("grad.h0"));
        if let Some(c0) = &c0 {
            close("grad.c0", grads.get(c0).unwrap(), &get("grad.c0"));
        }
        for (name, p) in &named {
            close(&format!("grad.{name}"), grads.get(&p.var()).unwrap(), &get(&format!("grad.{name}")));
        }
    }
}

//! Misuse is reported clearly and extreme inputs stay finite.
//!
//! - A layer given an input of the wrong shape panics naming the layer, the shape it
//!   expects and the shape it got; an embedding id or a class index out of range panics
//!   saying so.
//! - A strict `load_state_dict` reports every missing, unexpected and mismatched key at
//!   once and changes nothing; a lenient one loads what matches and reports the rest.
//! - Cross entropy and binary cross entropy with logits of ±1e4 give finite losses and
//!   gradients (with the right values), in f64 and f32.

use sinew_autograd::Var;
use sinew_nn::loss::{
    CrossEntropyOptions, NllLossOptions, Reduction, binary_cross_entropy, binary_cross_entropy_with_logits,
    cross_entropy, mse_loss, nll_loss,
};
use sinew_nn::{
    BatchNorm1d, BatchNorm2d, Conv1d, Conv2d, Embedding, Forward, LayerNorm, Linear, LoadReport, Module,
    Sequential,
};
use sinew_tensor::{Conv1dOptions, Conv2dOptions, DType, Generator, Tensor};

fn zeros(shape: &[usize]) -> Var {
    Var::constant(Tensor::zeros(shape))
}

fn ids(data: Vec<i64>, shape: &[usize]) -> Tensor {
    Tensor::from_vec(data, shape).unwrap()
}

// ---- wrong input shapes ----------------------------------------------------------------

#[test]
#[should_panic(expected = "Linear(3, 2): expected input of shape [.., 3], got [5, 4]")]
fn linear_wrong_features() {
    Linear::new(3, 2, &mut Generator::new(0)).forward(&zeros(&[5, 4]));
}

#[test]
#[should_panic(expected = "Linear(3, 2): expected input of shape [.., 3], got []")]
fn linear_scalar_input() {
    Linear::new(3, 2, &mut Generator::new(0)).forward(&Var::constant(Tensor::scalar(1.0f32)));
}

#[test]
#[should_panic(
    expected = "Conv2d(3, 4, kernel [3, 3]): expected input of shape [N, 3, H, W], got [2, 5, 8, 8]"
)]
fn conv2d_wrong_channels() {
    Conv2d::new(3, 4, 3, Conv2dOptions::default(), &mut Generator::new(0)).forward(&zeros(&[2, 5, 8, 8]));
}

#[test]
#[should_panic(expected = "Conv2d(3, 4, kernel [3, 3]): expected input of shape [N, 3, H, W], got [3, 8, 8]")]
fn conv2d_unbatched_input() {
    Conv2d::new(3, 4, 3, Conv2dOptions::default(), &mut Generator::new(0)).forward(&zeros(&[3, 8, 8]));
}

#[test]
#[should_panic(
    expected = "Conv2d(4, 6, kernel [3, 3]): expected input of shape [N, 4, H, W], got [1, 2, 8, 8]"
)]
fn conv2d_grouped_wrong_channels() {
    // the weight holds 2 input channels per group; the layer takes 4
    let conv = Conv2d::new(4, 6, 3, Conv2dOptions::default().groups(2), &mut Generator::new(0));
    conv.forward(&zeros(&[1, 2, 8, 8]));
}

#[test]
#[should_panic(expected = "Conv1d(3, 4, kernel 3): expected input of shape [N, 3, L], got [2, 4, 10]")]
fn conv1d_wrong_channels() {
    Conv1d::new(3, 4, 3, Conv1dOptions::default(), &mut Generator::new(0)).forward(&zeros(&[2, 4, 10]));
}

#[test]
#[should_panic(expected = "Conv1d(3, 4, kernel 3): expected input of shape [N, 3, L], got [2, 3, 5, 5]")]
fn conv1d_image_input() {
    Conv1d::new(3, 4, 3, Conv1dOptions::default(), &mut Generator::new(0)).forward(&zeros(&[2, 3, 5, 5]));
}

#[test]
#[should_panic(expected = "BatchNorm2d(3): expected input of shape [N, 3, H, W], got [2, 4, 5, 5]")]
fn batch_norm2d_wrong_channels() {
    BatchNorm2d::new(3).forward(&zeros(&[2, 4, 5, 5]));
}

#[test]
#[should_panic(expected = "BatchNorm2d(3): expected input of shape [N, 3, H, W], got [2, 3]")]
fn batch_norm2d_flat_input() {
    BatchNorm2d::new(3).forward(&zeros(&[2, 3]));
}

#[test]
#[should_panic(expected = "BatchNorm1d(5): expected input of shape [N, 5] or [N, 5, L], got [8, 4]")]
fn batch_norm1d_wrong_channels() {
    BatchNorm1d::new(5).forward(&zeros(&[8, 4]));
}

#[test]
#[should_panic(expected = "BatchNorm1d(5): expected input of shape [N, 5] or [N, 5, L], got [8, 5, 2, 2]")]
fn batch_norm1d_image_input() {
    let bn = BatchNorm1d::new(5);
    bn.eval();
    bn.forward(&zeros(&[8, 5, 2, 2]));
}

#[test]
#[should_panic(expected = "LayerNorm([6]): expected input ending in [6], got [4, 5]")]
fn layer_norm_wrong_last_dim() {
    LayerNorm::new(&[6]).forward(&zeros(&[4, 5]));
}

#[test]
#[should_panic(expected = "LayerNorm([3, 4]): expected input ending in [3, 4], got [4]")]
fn layer_norm_too_few_dims() {
    LayerNorm::new(&[3, 4]).forward(&zeros(&[4]));
}

#[test]
#[should_panic(expected = "Embedding(10, 4): id 10 is out of range 0..10")]
fn embedding_id_too_large() {
    Embedding::new(10, 4, &mut Generator::new(0)).lookup(&ids(vec![1, 10, 3], &[3]));
}

#[test]
#[should_panic(expected = "Embedding(10, 4): id -1 is out of range 0..10")]
fn embedding_negative_id() {
    Embedding::new(10, 4, &mut Generator::new(0)).lookup(&ids(vec![0, -1], &[1, 2]));
}

#[test]
#[should_panic(expected = "Embedding(10, 4): id 12 is out of range 0..10")]
fn embedding_forward_id_out_of_range() {
    Embedding::new(10, 4, &mut Generator::new(0)).forward(&Var::constant(Tensor::full(&[2], 12.0)));
}

#[test]
#[should_panic(expected = "Embedding(10, 4): ids must be int64, got float32")]
fn embedding_float_ids() {
    Embedding::new(10, 4, &mut Generator::new(0)).lookup(&Tensor::zeros(&[3]));
}

// ---- class indices out of range --------------------------------------------------------

#[test]
#[should_panic(expected = "cross_entropy: target class 4 is out of range for 4 classes")]
fn cross_entropy_class_too_large() {
    cross_entropy(&zeros(&[3, 4]), &ids(vec![0, 4, 1], &[3]), &CrossEntropyOptions::default());
}

#[test]
#[should_panic(expected = "cross_entropy: target class -1 is out of range for 4 classes")]
fn cross_entropy_negative_class() {
    cross_entropy(&zeros(&[2, 4]), &ids(vec![-1, 0], &[2]), &CrossEntropyOptions::default());
}

#[test]
#[should_panic(expected = "cross_entropy: target class 3 is out of range for 3 classes")]
fn cross_entropy_spatial_class_too_large() {
    cross_entropy(&zeros(&[2, 3, 2]), &ids(vec![0, 1, 2, 3], &[2, 2]), &CrossEntropyOptions::default());
}

#[test]
#[should_panic(expected = "cross_entropy: target class -100 is out of range")]
fn cross_entropy_ignore_value_without_ignore_index() {
    // -100 is only ignored when asked for
    let opts = CrossEntropyOptions { ignore_index: Some(2), ..CrossEntropyOptions::default() };
    cross_entropy(&zeros(&[2, 3]), &ids(vec![-100, 0], &[2]), &opts);
}

#[test]
#[should_panic(expected = "nll_loss: target class 5 is out of range for 5 classes")]
fn nll_loss_class_too_large() {
    nll_loss(&zeros(&[2, 5]), &ids(vec![5, 0], &[2]), &NllLossOptions::default());
}

#[test]
#[should_panic(expected = "nll_loss: input [2, 5] needs targets of shape [2], got [3]")]
fn nll_loss_wrong_target_shape() {
    nll_loss(&zeros(&[2, 5]), &ids(vec![1, 0, 2], &[3]), &NllLossOptions::default());
}

#[test]
#[should_panic(expected = "mse_loss: input of shape [2, 3] and target of shape [3, 2] must match")]
fn mse_loss_shape_mismatch() {
    mse_loss(&zeros(&[2, 3]), &zeros(&[3, 2]), Reduction::Mean);
}

#[test]
#[should_panic(expected = "binary_cross_entropy: inputs must be probabilities in [0, 1]")]
fn bce_rejects_logits() {
    let x = Var::constant(Tensor::from_vec(vec![0.5f32, 1.5], &[2]).unwrap());
    binary_cross_entropy(&x, &zeros(&[2]), Reduction::Mean);
}

#[test]
fn ignored_class_index_is_not_range_checked() {
    let opts = CrossEntropyOptions { ignore_index: Some(-100), ..CrossEntropyOptions::default() };
    let loss = cross_entropy(&zeros(&[2, 4]), &ids(vec![-100, 1], &[2]), &opts);
    assert!((loss.item() - 4f64.ln()).abs() < 1e-6, "{}", loss.item());
}

// ---- load_state_dict -------------------------------------------------------------------

fn net() -> Sequential {
    let mut g = Generator::new(0);
    Sequential::new().add(Linear::new(3, 4, &mut g)).add(BatchNorm1d::new(4)).add(Linear::new(4, 2, &mut g))
}

#[test]
fn strict_load_reports_every_problem_at_once_and_changes_nothing() {
    let m = net();
    let before = m.state_dict();
    let mut state: Vec<(String, Tensor)> = before.iter().map(|(n, t)| (n.clone(), t.ones_like())).collect();
    // missing: 0.bias and 2.weight; unexpected: 3.weight and 1.scale; mismatched: 2.bias
    // (shape), 1.running_mean (an integer tensor for a float buffer)
    state.retain(|(n, _)| n != "0.bias" && n != "2.weight");
    state.push(("3.weight".to_string(), Tensor::zeros(&[2, 2])));
    state.push(("1.scale".to_string(), Tensor::zeros(&[4])));
    for (n, t) in state.iter_mut() {
        match n.as_str() {
            "2.bias" => *t = Tensor::zeros(&[3]),
            "1.running_mean" => *t = Tensor::zeros_dtype(&[4], DType::I64),
            _ => {}
        }
    }
    let report: LoadReport = m.load_state_dict(&state, true).expect_err("strict load must fail");
    assert_eq!(report.missing, ["0.bias", "2.weight"]);
    assert_eq!(report.unexpected, ["3.weight", "1.scale"]);
    assert_eq!(report.mismatched.len(), 2, "{:?}", report.mismatched);
    assert!(
        report.mismatched[0].starts_with("1.running_mean: expected float32 [4], found int64 [4]"),
        "{report}"
    );
    assert!(report.mismatched[1].starts_with("2.bias: expected float32 [2], found float32 [3]"), "{report}");
    let shown = report.to_string();
    for key in ["0.bias", "2.weight", "3.weight", "1.scale", "2.bias", "1.running_mean"] {
        assert!(shown.contains(key), "{key} missing from the message: {shown}");
    }
    // nothing changed
    for ((n, a), (_, b)) in before.iter().zip(m.state_dict()) {
        assert_eq!(a.to_vec::<f64>(), b.to_vec::<f64>(), "{n} changed by a failed strict load");
    }
}

#[test]
fn lenient_load_applies_what_matches_and_reports_the_rest() {
    let m = net();
    let mut state: Vec<(String, Tensor)> =
        m.state_dict().iter().map(|(n, t)| (n.clone(), t.ones_like())).collect();
    state.retain(|(n, _)| n != "0.bias");
    state.push(("extra".to_string(), Tensor::zeros(&[1])));
    let old_bias = m.state_dict().into_iter().find(|(n, _)| n == "0.bias").unwrap().1;
    let report = m.load_state_dict(&state, false).expect("lenient load succeeds");
    assert_eq!(report.missing, ["0.bias"]);
    assert_eq!(report.unexpected, ["extra"]);
    assert!(report.mismatched.is_empty());
    assert!(!report.is_clean());
    for (n, t) in m.state_dict() {
        let want = if n == "0.bias" { old_bias.to_vec::<f64>() } else { vec![1.0; t.numel()] };
        assert_eq!(t.to_vec::<f64>(), want, "{n}");
    }
}

#[test]
fn clean_strict_round_trip() {
    let (a, b) = (net(), net());
    for p in a.parameters() {
        let v = p.value().mul_scalar(2.0);
        p.set_value(v);
    }
    let report = b.load_state_dict(&a.state_dict(), true).expect("same architecture loads");
    assert!(report.is_clean());
    for ((n, x), (_, y)) in a.state_dict().iter().zip(b.state_dict()) {
        assert_eq!(x.to_vec::<f64>(), y.to_vec::<f64>(), "{n}");
    }
}

// ---- extreme logits --------------------------------------------------------------------

fn assert_finite(what: &str, t: &Tensor) {
    assert!(t.to_vec::<f64>().iter().all(|v| v.is_finite()), "{what}: {:?}", t.to_vec::<f64>());
}

#[test]
fn cross_entropy_with_huge_logits_is_finite() {
    for dtype in [DType::F64, DType::F32] {
        // rows of logits at ±1e4 (and one row of zeros)
        let data = vec![1e4, -1e4, 0.0, -1e4, 1e4, -1e4, 0.0, 0.0, 0.0, 1e4, 1e4, -1e4];
        let logits = Var::leaf(Tensor::from_vec(data, &[4, 3]).unwrap().to_dtype(dtype));
        let target = ids(vec![0, 0, 2, 2], &[4]);
        let weight = Tensor::from_vec(vec![1.0, 2.0, 0.5], &[3]).unwrap();
        for label_smoothing in [0.0, 0.2] {
            for reduction in [Reduction::Mean, Reduction::Sum, Reduction::None] {
                for weight in [None, Some(weight.clone())] {
                    let opts = CrossEntropyOptions { weight, ignore_index: None, label_smoothing, reduction };
                    let loss = cross_entropy(&logits, &target, &opts);
                    let what = format!("{dtype} {opts:?}");
                    assert_finite(&what, loss.value());
                    let grads = loss.backward_with(&loss.value().ones_like());
                    let g = grads.get(&logits).expect("gradient");
                    assert_finite(&what, g);
                }
            }
        }
        // the values: row 0 is certain and right, row 1 certain and wrong by 2e4,
        // row 2 is log(3) off, row 3 wrong by 2e4 against two tied logits (+ log 2)
        let opts = CrossEntropyOptions { reduction: Reduction::None, ..CrossEntropyOptions::default() };
        let per = cross_entropy(&logits, &target, &opts).value().to_vec::<f64>();
        let want = [0.0, 2e4, 3f64.ln(), 2e4 + 2f64.ln()];
        for (g, w) in per.iter().zip(want) {
            assert!((g - w).abs() <= 1e-4 * w.max(1.0), "{dtype}: {per:?} vs {want:?}");
        }
        // and the gradient of the mean: (softmax - onehot) / N
        let loss = cross_entropy(&logits, &target, &CrossEntropyOptions::default());
        let g = loss.backward().get(&logits).unwrap().to_vec::<f64>();
        let want = [0.0, 0.0, 0.0, -1.0, 1.0, 0.0, 1.0 / 3.0, 1.0 / 3.0, -2.0 / 3.0, 0.5, 0.5, -1.0];
        // log_softmax computes `(x - max) - log Σ`, so even f32 is exact to rounding here
        let tol = if dtype == DType::F64 { 1e-9 } else { 1e-6 };
        for (a, w) in g.iter().zip(want) {
            assert!((a - w / 4.0).abs() < tol, "{dtype}: grad {g:?}");
        }
    }
}

#[test]
fn bce_with_logits_with_huge_logits_is_finite() {
    for dtype in [DType::F64, DType::F32] {
        let x = Var::leaf(
            Tensor::from_vec(vec![1e4, -1e4, 1e4, -1e4, 0.0, 1e4], &[2, 3]).unwrap().to_dtype(dtype),
        );
        let y = Var::leaf(
            Tensor::from_vec(vec![1.0, 0.0, 0.0, 1.0, 0.5, 0.25], &[2, 3]).unwrap().to_dtype(dtype),
        );
        let pos_weight = Tensor::from_vec(vec![2.0, 0.5, 3.0], &[3]).unwrap();
        for pw in [None, Some(&pos_weight)] {
            for reduction in [Reduction::Mean, Reduction::Sum, Reduction::None] {
                let loss = binary_cross_entropy_with_logits(&x, &y, pw, reduction);
                let what = format!("{dtype} {pw:?} {reduction:?}");
                assert_finite(&what, loss.value());
                let grads = loss.backward_with(&loss.value().ones_like());
                assert_finite(&what, grads.get(&x).expect("input gradient"));
                assert_finite(&what, grads.get(&y).expect("target gradient"));
            }
        }
        let per = binary_cross_entropy_with_logits(&x, &y, None, Reduction::None);
        // right and certain: 0; wrong and certain: 1e4; x = 0: log 2; y = 1/4 at 1e4: 0.75e4
        let want = [0.0, 0.0, 1e4, 1e4, 2f64.ln(), 7.5e3];
        let got = per.value().to_vec::<f64>();
        for (g, w) in got.iter().zip(want) {
            assert!((g - w).abs() <= 1e-5 * w.max(1.0), "{dtype}: {got:?} vs {want:?}");
        }
        // d/dx = sigmoid(x) - y
        let g = per.sum_all().backward().get(&x).unwrap().to_vec::<f64>();
        let want = [0.0, 0.0, 1.0, -1.0, 0.0, 0.75];
        for (a, w) in g.iter().zip(want) {
            assert!((a - w).abs() < 1e-6, "{dtype}: grad {g:?}");
        }
    }
}

/// At a logit of exactly 0 the gradient is `sigmoid(0) - y = 1/2 - y` (the stable formula
/// has kinks at 0 in `|x|` and `max(-x, 0)` whose one-sided gradients must agree).
#[test]
fn bce_with_logits_gradient_at_zero_logit() {
    for dtype in [DType::F64, DType::F32] {
        for pw in [None, Some(Tensor::from_vec(vec![3.0], &[1]).unwrap())] {
            let x = Var::leaf(Tensor::zeros_dtype(&[3, 1], dtype));
            let y = Var::leaf(Tensor::from_vec(vec![0.0, 0.5, 1.0], &[3, 1]).unwrap().to_dtype(dtype));
            let loss = binary_cross_entropy_with_logits(&x, &y, pw.as_ref(), Reduction::Sum);
            let grads = loss.backward();
            let gx = grads.get(&x).unwrap().to_vec::<f64>();
            // d/dx [(1 - y)·x + (1 + (w - 1)·y)·softplus(-x)] at 0 = (1 - y) - (1 + (w - 1)·y)/2
            let w = if pw.is_some() { 3.0 } else { 1.0 };
            let want: Vec<f64> =
                [0.0, 0.5, 1.0].iter().map(|y| (1.0 - y) - (1.0 + (w - 1.0) * y) / 2.0).collect();
            for (g, e) in gx.iter().zip(&want) {
                assert!((g - e).abs() < 1e-6, "{dtype} pos_weight {pw:?}: grad {gx:?}, want {want:?}");
            }
            // and the loss: log 2 per element, times the positive weight's coefficient
            let want: f64 = [0.0, 0.5, 1.0].iter().map(|y| (1.0 + (w - 1.0) * y) * 2f64.ln()).sum();
            assert!((loss.item() - want).abs() < 1e-5, "{dtype}: loss {} vs {want}", loss.item());
        }
    }
}

/// Probabilities of exactly 0 and 1 (a saturated sigmoid) give the clamped loss of 100
/// and finite gradients, as in PyTorch.
#[test]
fn bce_at_probabilities_zero_and_one_is_finite() {
    for dtype in [DType::F64, DType::F32] {
        let p = Var::leaf(Tensor::from_vec(vec![0.0, 0.0, 1.0, 1.0, 0.5], &[5]).unwrap().to_dtype(dtype));
        let y = Var::leaf(Tensor::from_vec(vec![0.0, 1.0, 0.0, 1.0, 0.5], &[5]).unwrap().to_dtype(dtype));
        let loss = binary_cross_entropy(&p, &y, Reduction::None);
        let got = loss.value().to_vec::<f64>();
        let want = [0.0, 100.0, 100.0, 0.0, 2f64.ln()];
        for (g, w) in got.iter().zip(want) {
            assert!((g - w).abs() < 1e-5, "{dtype}: loss {got:?}");
        }
        let grads = loss.sum_all().backward();
        assert_finite(&format!("{dtype}: input gradient"), grads.get(&p).unwrap());
        // d/dy = log(1 - p) - log(p), each log clamped at -100
        let gy = grads.get(&y).unwrap().to_vec::<f64>();
        let want = [100.0, 100.0, -100.0, -100.0, 0.0];
        for (g, w) in gy.iter().zip(want) {
            assert!((g - w).abs() < 1e-4, "{dtype}: target gradient {gy:?}");
        }
    }
}

// pooling layers and the spatial size of convolutions are checked by the tensor ops,
// whose messages name the op and the shapes

#[test]
#[should_panic(expected = "max_pool2d: input must be 4-D (N, C, H, W), got shape [3, 8, 8]")]
fn max_pool2d_unbatched_input() {
    sinew_nn::MaxPool2d::new(2).forward(&zeros(&[3, 8, 8]));
}

#[test]
#[should_panic(
    expected = "conv2d: dilated kernel height 3 (kernel 3, dilation 1) is larger than the padded input height 2"
)]
fn conv2d_input_smaller_than_kernel() {
    Conv2d::new(3, 4, 3, Conv2dOptions::default(), &mut Generator::new(0)).forward(&zeros(&[2, 3, 2, 2]));
}

#[test]
fn a_state_dict_naming_a_key_twice_is_refused_and_changes_nothing() {
    use sinew_nn::{Linear, Module};
    let layer = Linear::new(2, 1, &mut sinew_tensor::Generator::new(0));
    let before = layer.weight.value().to_vec::<f32>();
    let mut state = layer.state_dict();
    state.push(("weight".to_string(), sinew_tensor::Tensor::full(&[1, 2], 9.0)));
    for strict in [true, false] {
        let report = layer.load_state_dict(&state, strict).unwrap_err();
        assert_eq!(report.duplicate, ["weight"]);
        assert!(report.to_string().contains("duplicate [\"weight\"]"), "{report}");
        assert_eq!(layer.weight.value().to_vec::<f32>(), before);
    }
}

#[test]
fn float_tensors_of_the_other_type_are_converted_and_reported() {
    let m = net();
    // an f64 checkpoint (every float key) into the f32 model
    let state: Vec<(String, Tensor)> = m
        .state_dict()
        .into_iter()
        .map(|(n, t)| if t.dtype().is_float() { (n, t.ones_like().to_dtype(DType::F64)) } else { (n, t) })
        .collect();
    let report = m.load_state_dict(&state, true).expect("float types convert");
    assert!(report.is_clean(), "{report}");
    assert_eq!(report.converted.len(), 8, "{:?}", report.converted); // all but num_batches_tracked
    assert_eq!(report.converted[0], "0.weight: float64 -> float32");
    for (n, t) in m.state_dict() {
        assert_eq!(
            t.dtype(),
            if n.ends_with("num_batches_tracked") { DType::I64 } else { DType::F32 },
            "{n}"
        );
    }
    assert_eq!(m.state_dict()[0].1.to_vec::<f32>(), vec![1.0; 12]);
    // an integer can not stand in for a float, nor a float for the step count
    let mut bad = m.state_dict();
    let nbt = bad.iter().position(|(n, _)| n == "1.num_batches_tracked").unwrap();
    bad[nbt].1 = Tensor::scalar(3.0f32);
    let report = m.load_state_dict(&bad, true).unwrap_err();
    assert_eq!(report.mismatched, ["1.num_batches_tracked: expected int64 [], found float32 []"]);
}

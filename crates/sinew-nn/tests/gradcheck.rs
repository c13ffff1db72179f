//! Numerical gradient checks of every layer and loss, in f64, over small random shapes.
//!
//! Layers: the gradient of the input is checked with `sinew_autograd::gradcheck` through
//! the module's `forward`; the gradient of every parameter (found by `Param::id`) is
//! checked against central differences taken by perturbing the parameter in place with
//! `Param::set_value`. Losses: `gradcheck` over every float argument (targets included),
//! for every reduction and option. Values are kept away from kinks (ties in max pooling,
//! `|input - target|` near 0 or `delta` for L1/Huber) and from degenerate statistics
//! (evenly spaced values for the normalisations), so a failure means a wrong gradient.

use proptest::prelude::*;
use proptest::test_runner::TestCaseError;
use sinew_autograd::{GradcheckOptions, Var, gradcheck};
use sinew_nn::loss::{
    CrossEntropyOptions, KlReduction, NllLossOptions, Reduction, binary_cross_entropy,
    binary_cross_entropy_with_logits, cross_entropy, huber_loss, kl_div, l1_loss, mse_loss, nll_loss,
    smooth_l1_loss,
};
use sinew_nn::{
    AdaptiveAvgPool2d, AvgPool2d, BatchNorm1d, BatchNorm2d, Conv1d, Conv2d, ConvTranspose2d, Dropout, Elu,
    Embedding, Forward, Gelu, GeluTanh, LayerNorm, LeakyRelu, Linear, LogSoftmax, MaxPool2d, Module, Relu,
    Sigmoid, Silu, Softmax, Softplus, Tanh, gradcheck_params,
};
use sinew_tensor::{Conv1dOptions, Conv2dOptions, DType, Generator, Pool2dOptions, Tensor};

const REDUCTIONS: [Reduction; 3] = [Reduction::Mean, Reduction::Sum, Reduction::None];
const EPS: f64 = 1e-6;
const ATOL: f64 = 1e-5;
const RTOL: f64 = 1e-3;

fn opts(seed: u64) -> GradcheckOptions {
    GradcheckOptions { eps: EPS, atol: ATOL, rtol: RTOL, seed }
}

fn randn(shape: &[usize], g: &mut Generator) -> Tensor {
    Tensor::randn_with(shape, DType::F64, g)
}

fn uniform(shape: &[usize], lo: f64, hi: f64, g: &mut Generator) -> Tensor {
    Tensor::uniform_with(shape, lo, hi, DType::F64, g)
}

/// Distinct values `0.1` apart in a random order, centred on 0: no ties for max pooling,
/// and no vanishing variance for the normalisations.
fn spaced(shape: &[usize], g: &mut Generator) -> Tensor {
    let n: usize = shape.iter().product();
    let keys: Vec<f64> = (0..n).map(|_| g.uniform_f64()).collect();
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by(|&a, &b| keys[a].total_cmp(&keys[b]));
    let mut data = vec![0.0; n];
    for (rank, &i) in order.iter().enumerate() {
        data[i] = (rank as f64 - n as f64 / 2.0) * 0.1;
    }
    Tensor::from_vec(data, shape).unwrap()
}

/// `gradcheck` of a layer with respect to its input.
fn check_input(what: &str, f: impl Fn(&Var) -> Var, x: Tensor, seed: u64) -> Result<(), TestCaseError> {
    gradcheck(|v| f(&v[0]), &[x], opts(seed)).map_err(|e| TestCaseError::fail(format!("{what}: input: {e}")))
}

/// Every parameter's gradient, by the public [`gradcheck_params`].
fn check_params(what: &str, m: &dyn Module, f: impl Fn() -> Var, seed: u64) -> Result<(), TestCaseError> {
    prop_assert!(!m.parameters().is_empty(), "{what}: no parameters");
    gradcheck_params(m, f, opts(seed ^ 0x5eed)).map_err(|e| TestCaseError::fail(format!("{what}: {e}")))
}

/// Input and parameter gradients of a layer at input `x`.
fn check_layer(what: &str, m: &impl Forward, x: Tensor, seed: u64) -> Result<(), TestCaseError> {
    m.cast(DType::F64);
    check_input(what, |v| m.forward(v), x.clone(), seed)?;
    if !m.parameters().is_empty() {
        check_params(what, m, || m.forward(&Var::constant(x.clone())), seed)?;
    }
    Ok(())
}

/// `gradcheck` of a loss over all of its (float) arguments.
fn check_loss(
    what: &str,
    f: impl Fn(&[Var]) -> Var,
    inputs: &[Tensor],
    seed: u64,
) -> Result<(), TestCaseError> {
    gradcheck(f, inputs, opts(seed)).map_err(|e| TestCaseError::fail(format!("{what}: {e}")))
}

fn config() -> ProptestConfig {
    // no regression files: the seeds are in the failure message
    ProptestConfig { failure_persistence: None, ..ProptestConfig::with_cases(8) }
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn linear(batch in 1usize..=4, fin in 1usize..=4, fout in 1usize..=4, bias: bool, seed: u64) {
        let mut g = Generator::new(seed);
        let m = Linear::with_bias(fin, fout, bias, &mut g);
        check_layer("Linear", &m, randn(&[batch, fin], &mut g), seed)?;
        // any number of leading dimensions
        check_layer("Linear 3-D", &m, randn(&[2, batch, fin], &mut g), seed)?;
    }

    #[test]
    fn conv2d(
        n in 1usize..=2, groups in 1usize..=2, cpg in 1usize..=2, opg in 1usize..=2,
        kh in 1usize..=3, kw in 1usize..=3, stride in 1usize..=2, padding in 0usize..=1,
        dilation in 1usize..=2, extra_h in 0usize..=3, extra_w in 0usize..=3, bias: bool, seed: u64,
    ) {
        let mut g = Generator::new(seed);
        let options =
            Conv2dOptions::default().stride(stride).padding(padding).dilation(dilation).groups(groups);
        let m = Conv2d::with_kernel(groups * cpg, groups * opg, [kh, kw], bias, options, &mut g);
        let h = dilation * (kh - 1) + 1 + extra_h;
        let w = dilation * (kw - 1) + 1 + extra_w;
        check_layer("Conv2d", &m, randn(&[n, groups * cpg, h, w], &mut g), seed)?;
    }

    #[test]
    fn conv1d(
        n in 1usize..=3, groups in 1usize..=2, cpg in 1usize..=2, opg in 1usize..=2, k in 1usize..=3,
        stride in 1usize..=2, padding in 0usize..=2, dilation in 1usize..=2, extra in 0usize..=4, seed: u64,
    ) {
        let mut g = Generator::new(seed);
        let options = Conv1dOptions { stride, padding, dilation, groups };
        let m = Conv1d::new(groups * cpg, groups * opg, k, options, &mut g);
        let len = dilation * (k - 1) + 1 + extra;
        check_layer("Conv1d", &m, randn(&[n, groups * cpg, len], &mut g), seed)?;
    }

    #[test]
    fn conv_transpose2d(
        n in 1usize..=2, groups in 1usize..=2, cpg in 1usize..=2, opg in 1usize..=2, k in 1usize..=3,
        stride in 1usize..=2, padding in 0usize..=1, h in 1usize..=3, w in 1usize..=3, seed: u64,
    ) {
        let mut g = Generator::new(seed);
        let options = Conv2dOptions::default()
            .stride(stride)
            .padding(padding.min((k - 1) / 2))
            .output_padding(stride - 1)
            .groups(groups);
        let m = ConvTranspose2d::new(groups * cpg, groups * opg, k, options, &mut g);
        check_layer("ConvTranspose2d", &m, randn(&[n, groups * cpg, h, w], &mut g), seed)?;
    }

    #[test]
    fn max_pool2d(
        n in 1usize..=2, c in 1usize..=3, k in 1usize..=3, stride in 1usize..=3, pad in 0usize..=1,
        dilation in 1usize..=2, ceil_mode: bool, extra_h in 0usize..=3, extra_w in 0usize..=3, seed: u64,
    ) {
        let mut g = Generator::new(seed);
        let options = Pool2dOptions::new(k)
            .stride(stride)
            .padding(pad.min(k / 2))
            .dilation(dilation)
            .ceil_mode(ceil_mode);
        let m = MaxPool2d { options };
        let (h, w) = (dilation * (k - 1) + 1 + extra_h, dilation * (k - 1) + 1 + extra_w);
        check_layer("MaxPool2d", &m, spaced(&[n, c, h, w], &mut g), seed)?;
    }

    #[test]
    fn avg_pool2d(
        n in 1usize..=2, c in 1usize..=3, kh in 1usize..=3, kw in 1usize..=3, stride in 1usize..=3,
        pad in 0usize..=1, count_include_pad: bool, ceil_mode: bool, extra_h in 0usize..=3,
        extra_w in 0usize..=3, seed: u64,
    ) {
        let mut g = Generator::new(seed);
        let options = Pool2dOptions {
            kernel: [kh, kw],
            stride: [stride, stride],
            padding: [pad.min(kh / 2), pad.min(kw / 2)],
            dilation: [1, 1],
            ceil_mode,
        };
        let m = AvgPool2d { options, count_include_pad };
        check_layer("AvgPool2d", &m, randn(&[n, c, kh + extra_h, kw + extra_w], &mut g), seed)?;
    }

    #[test]
    fn adaptive_avg_pool2d(
        n in 1usize..=2, c in 1usize..=3, h in 1usize..=6, w in 1usize..=6, oh in 1usize..=4,
        ow in 1usize..=4, seed: u64,
    ) {
        let mut g = Generator::new(seed);
        let m = AdaptiveAvgPool2d::new([oh, ow]);
        check_layer("AdaptiveAvgPool2d", &m, randn(&[n, c, h, w], &mut g), seed)?;
    }

    #[test]
    fn layer_norm(
        lead in prop::collection::vec(1usize..=4, 0..=2),
        normalized in prop::collection::vec(1usize..=4, 1..=2),
        seed: u64,
    ) {
        let mut g = Generator::new(seed);
        let m = LayerNorm::new(&normalized);
        m.cast(DType::F64);
        m.weight.set_value(randn(&normalized, &mut g));
        m.bias.set_value(randn(&normalized, &mut g));
        let shape: Vec<usize> = lead.iter().chain(&normalized).copied().collect();
        check_layer("LayerNorm", &m, spaced(&shape, &mut g), seed)?;
    }

    #[test]
    fn batch_norm(
        n in 1usize..=4, c in 1usize..=3, rank in 2usize..=4, l in 1usize..=3, w in 1usize..=3,
        training: bool, seed: u64,
    ) {
        let mut g = Generator::new(seed);
        let shape = match rank {
            2 => vec![n, c],
            3 => vec![n, c, l],
            _ => vec![n, c, l, w],
        };
        // a batch of one value per channel has no variance: PyTorch refuses to train on it
        prop_assume!(!training || shape.iter().product::<usize>() / c > 1);
        let what = if training { "BatchNorm (train)" } else { "BatchNorm (eval)" };
        macro_rules! check_batch_norm {
            ($m:expr) => {{
                let m = $m;
                m.cast(DType::F64);
                m.weight.set_value(uniform(&[c], 0.5, 2.0, &mut g));
                m.bias.set_value(randn(&[c], &mut g));
                m.running_mean.set(randn(&[c], &mut g));
                m.running_var.set(uniform(&[c], 0.5, 2.0, &mut g));
                if training { m.train() } else { m.eval() }
                check_layer(what, &m, spaced(&shape, &mut g), seed)?;
            }};
        }
        if rank == 4 { check_batch_norm!(BatchNorm2d::new(c)) } else { check_batch_norm!(BatchNorm1d::new(c)) }
    }

    #[test]
    fn embedding(
        num in 1usize..=6,
        dim in 1usize..=4,
        ids_shape in prop::collection::vec(1usize..=4, 1..=2),
        seed: u64,
    ) {
        let mut g = Generator::new(seed);
        let m = Embedding::new(num, dim, &mut g);
        m.cast(DType::F64);
        let ids = Tensor::rand_int_with(&ids_shape, 0, num as i64, &mut g);
        check_params("Embedding", &m, || m.lookup(&ids), seed)?;
    }

    #[test]
    fn dropout(p in 0.0f64..0.9, shape in prop::collection::vec(1usize..=4, 1..=3), seed: u64) {
        let mut g = Generator::new(seed);
        // a fresh layer per call: the same mask every time
        check_input("Dropout", |x| Dropout::new(p, seed).forward(x), randn(&shape, &mut g), seed)?;
        let eval = Dropout::new(p, seed);
        eval.eval();
        check_input("Dropout (eval)", |x| eval.forward(x), randn(&shape, &mut g), seed)?;
    }

    #[test]
    fn activations(shape in prop::collection::vec(1usize..=4, 1..=3), seed: u64) {
        let mut g = Generator::new(seed);
        // |x| >= 0.05: away from the kinks of ReLU, leaky ReLU and ELU
        let x = randn(&shape, &mut g);
        let x = Tensor::from_vec(
            x.to_vec::<f64>()
                .into_iter()
                .map(|v| if v.abs() < 0.05 { v.signum() * 0.05 + v } else { v })
                .collect(),
            &shape,
        )
        .unwrap();
        let layers: Vec<(&str, Box<dyn Forward>)> = vec![
            ("ReLU", Box::new(Relu)),
            ("Sigmoid", Box::new(Sigmoid)),
            ("Tanh", Box::new(Tanh)),
            ("GELU", Box::new(Gelu)),
            ("GELUTanh", Box::new(GeluTanh)),
            ("SiLU", Box::new(Silu)),
            ("LeakyReLU", Box::new(LeakyRelu::default())),
            ("ELU", Box::new(Elu::default())),
            ("Softplus", Box::new(Softplus::default())),
            ("Softmax", Box::new(Softmax { dim: -1 })),
            ("LogSoftmax", Box::new(LogSoftmax { dim: 0 })),
        ];
        for (name, layer) in &layers {
            check_input(name, |v| layer.forward(v), x.clone(), seed)?;
        }
    }

    #[test]
    fn regression_losses(
        shape in prop::collection::vec(1usize..=4, 0..=3),
        delta in prop::sample::select(vec![0.5f64, 1.0, 1.7]),
        seed: u64,
    ) {
        let mut g = Generator::new(seed);
        let input = randn(&shape, &mut g);
        // |input - target| in [0.1, 2.5], at least 0.1 from delta
        let n: usize = shape.iter().product();
        let diff: Vec<f64> = (0..n)
            .map(|_| {
                let mut m = 0.1 + 2.4 * g.uniform_f64();
                if (m - delta).abs() < 0.1 {
                    m += 0.25;
                }
                if g.uniform_f64() < 0.5 { -m } else { m }
            })
            .collect();
        let target = Tensor::from_vec(
            input.to_vec::<f64>().iter().zip(&diff).map(|(x, d)| x + d).collect::<Vec<f64>>(),
            &shape,
        )
        .unwrap();
        let args = [input, target];
        for red in REDUCTIONS {
            check_loss(&format!("mse_loss {red:?}"), |v| mse_loss(&v[0], &v[1], red), &args, seed)?;
            check_loss(&format!("l1_loss {red:?}"), |v| l1_loss(&v[0], &v[1], red), &args, seed)?;
            check_loss(
                &format!("huber_loss {delta} {red:?}"),
                |v| huber_loss(&v[0], &v[1], delta, red),
                &args,
                seed,
            )?;
            check_loss(
                &format!("smooth_l1_loss {delta} {red:?}"),
                |v| smooth_l1_loss(&v[0], &v[1], delta, red),
                &args,
                seed,
            )?;
            check_loss(
                &format!("smooth_l1_loss 0 {red:?}"),
                |v| smooth_l1_loss(&v[0], &v[1], 0.0, red),
                &args,
                seed,
            )?;
        }
    }

    #[test]
    fn binary_losses(shape in prop::collection::vec(1usize..=4, 1..=3), seed: u64) {
        let mut g = Generator::new(seed);
        let probs = uniform(&shape, 0.05, 0.95, &mut g);
        let logits = randn(&shape, &mut g).mul_scalar(3.0);
        let target = uniform(&shape, 0.0, 1.0, &mut g);
        let pos_weight = uniform(&[shape[shape.len() - 1]], 0.2, 3.0, &mut g);
        for red in REDUCTIONS {
            check_loss(
                &format!("binary_cross_entropy {red:?}"),
                |v| binary_cross_entropy(&v[0], &v[1], red),
                &[probs.clone(), target.clone()],
                seed,
            )?;
            check_loss(
                &format!("binary_cross_entropy_with_logits {red:?}"),
                |v| binary_cross_entropy_with_logits(&v[0], &v[1], None, red),
                &[logits.clone(), target.clone()],
                seed,
            )?;
            check_loss(
                &format!("binary_cross_entropy_with_logits pos_weight {red:?}"),
                |v| binary_cross_entropy_with_logits(&v[0], &v[1], Some(&pos_weight), red),
                &[logits.clone(), target.clone()],
                seed,
            )?;
        }
    }

    #[test]
    fn class_losses(n in 1usize..=4, c in 1usize..=4, spatial in prop::option::of(1usize..=3), seed: u64) {
        let mut g = Generator::new(seed);
        let mut shape = vec![n, c];
        let mut tshape = vec![n];
        if let Some(d) = spatial {
            shape.push(d);
            tshape.push(d);
        }
        let logits = randn(&shape, &mut g).mul_scalar(2.0);
        let classes = Tensor::rand_int_with(&tshape, 0, c as i64, &mut g).to_vec::<i64>();
        let weight = uniform(&[c], 0.2, 2.0, &mut g);
        // ignore_index: none; PyTorch's -100 on some samples; or a real class (never the first sample's)
        let mut ignores: Vec<(Option<i64>, Vec<i64>)> = vec![(None, classes.clone())];
        let masked: Vec<i64> = classes
            .iter()
            .enumerate()
            .map(|(i, &k)| if i > 0 && g.uniform_f64() < 0.4 { -100 } else { k })
            .collect();
        ignores.push((Some(-100), masked));
        if c > 1 {
            ignores.push((Some((classes[0] + 1) % c as i64), classes.clone()));
        }
        for (ignore_index, t) in &ignores {
            let target = Tensor::from_vec(t.clone(), &tshape).unwrap();
            for weight in [None, Some(weight.clone())] {
                for red in REDUCTIONS {
                    for label_smoothing in [0.0, 0.1, 0.35] {
                        let o = CrossEntropyOptions {
                            weight: weight.clone(),
                            ignore_index: *ignore_index,
                            label_smoothing,
                            reduction: red,
                        };
                        check_loss(
                            &format!("cross_entropy {o:?}"),
                            |v| cross_entropy(&v[0], &target, &o),
                            std::slice::from_ref(&logits),
                            seed,
                        )?;
                    }
                    check_loss(
                        &format!("nll_loss {weight:?} {ignore_index:?} {red:?}"),
                        |v| nll_loss(&v[0].log_softmax(1), &target, &NllLossOptions { weight: weight.clone(), ignore_index: *ignore_index, reduction: red }),
                        std::slice::from_ref(&logits),
                        seed,
                    )?;
                }
            }
        }
    }

    #[test]
    fn kl_divergence(shape in prop::collection::vec(1usize..=4, 1..=3), seed: u64) {
        let mut g = Generator::new(seed);
        let input = randn(&shape, &mut g).log_softmax(-1);
        let target = uniform(&shape, 0.05, 1.0, &mut g);
        let log_target = target.log();
        for red in [KlReduction::Mean, KlReduction::BatchMean, KlReduction::Sum, KlReduction::None] {
            check_loss(
                &format!("kl_div {red:?}"),
                |v| kl_div(&v[0], &v[1], red, false),
                &[input.clone(), target.clone()],
                seed,
            )?;
            check_loss(
                &format!("kl_div log_target {red:?}"),
                |v| kl_div(&v[0], &v[1], red, true),
                &[input.clone(), log_target.clone()],
                seed,
            )?;
        }
    }
}

/// The harness is not vacuous: a parameter left out of the graph, a wrong gradient and a
/// wrong parameter gradient are all caught.
#[test]
fn the_checks_catch_wrong_gradients() {
    let m = Linear::new(3, 2, &mut Generator::new(1));
    m.cast(DType::F64);
    let x = randn(&[4, 3], &mut Generator::new(2));
    // the weight read as a constant: no gradient for it
    let detached = || Var::constant(x.clone()).matmul(&Var::constant(m.weight.value().t()));
    assert!(check_params("detached", &m, detached, 0).is_err());
    // a gradient off by a factor 2: d(x²)/dx computed as 4x
    let wrong = |v: &Var| &v.detach().square() + &(&(v * &Var::constant(v.value().clone())) * 2.0);
    assert!(check_input("wrong", wrong, x.clone(), 0).is_err());
    // a parameter whose gradient is scaled: w² read through w·w.detach()·2
    let scaled = || {
        let w = m.weight.var();
        let w2 = &(&w * &w.detach()) * 2.0;
        Var::constant(x.clone()).matmul(&w2.t())
    };
    assert!(check_params("scaled", &m, scaled, 0).is_err());
    // and the right versions pass
    assert!(check_params("Linear", &m, || m.forward(&Var::constant(x.clone())), 0).is_ok());
    assert!(check_input("square", |v| v.square(), x, 0).is_ok());
}

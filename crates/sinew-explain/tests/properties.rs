//! What attributions must satisfy whatever Captum says: integrated gradients' completeness
//! and convergence (MLP and CNN), exactness on a linear model, saliency against central
//! differences, SmoothGrad's definition, and the "sanity check for saliency maps"
//! (Adebayo et al., 2018): a model with randomised weights is explained differently from
//! the trained one.

use sinew_autograd::{Var, no_grad};
use sinew_explain::{
    Attribution, GradCam, InputXGradient, IntegratedGradients, NoiseKind, NoiseTunnel, Occlusion, Rule,
    Saliency, Target,
};
use sinew_nn::loss::{CrossEntropyOptions, cross_entropy};
use sinew_nn::{AvgPool2d, Conv2d, Flatten, Forward, Linear, MaxPool2d, Module, Relu, Sequential, Tanh};
use sinew_optim::{Adam, Optimizer};
use sinew_tensor::{Conv2dOptions, DType, Generator, Tensor};

fn mlp(seed: u64) -> Sequential {
    let mut g = Generator::new(seed);
    let m = Sequential::new().add(Linear::new(6, 10, &mut g)).add(Tanh).add(Linear::new(10, 4, &mut g));
    m.cast(DType::F64);
    m.eval();
    m
}

fn cnn(seed: u64) -> Sequential {
    let mut g = Generator::new(seed);
    let m = Sequential::new()
        .add(Conv2d::new(1, 3, 3, Conv2dOptions::default().padding(1), &mut g))
        .add(Tanh)
        .add(MaxPool2d::new(2))
        .add(Conv2d::new(3, 4, 3, Conv2dOptions::default(), &mut g))
        .add(Relu)
        .add(Flatten::new())
        .add(Linear::new(4 * 2 * 2, 3, &mut g));
    m.cast(DType::F64);
    m.eval();
    m
}

/// The CNN with smooth pieces only (tanh, average pooling), whose path integral the rules
/// approach steadily.
fn smooth_cnn(seed: u64) -> Sequential {
    let mut g = Generator::new(seed);
    let m = Sequential::new()
        .add(Conv2d::new(1, 3, 3, Conv2dOptions::default().padding(1), &mut g))
        .add(Tanh)
        .add(AvgPool2d::new(2))
        .add(Conv2d::new(3, 4, 3, Conv2dOptions::default(), &mut g))
        .add(Tanh)
        .add(Flatten::new())
        .add(Linear::new(4 * 2 * 2, 3, &mut g));
    m.cast(DType::F64);
    m.eval();
    m
}

fn output(model: &dyn Forward, x: &Tensor, class: usize) -> Vec<f64> {
    no_grad(|| model.forward(&Var::constant(x.clone())).value().select(1, class).to_vec::<f64>())
}

fn max_abs(v: &[f64]) -> f64 {
    v.iter().fold(0.0, |m, x| m.max(x.abs()))
}

/// Attributions sum to f(x) − f(baseline) up to the returned delta, and |delta| falls as
/// the steps grow, for every rule: steadily on smooth models (an MLP and a CNN of tanh and
/// average pooling); on a CNN with ReLU and max pooling, whose gradient jumps along the
/// path, overall (by 256 steps far below where 4 steps left it) but not at every step.
#[test]
fn integrated_gradients_is_complete_and_converges() {
    let mut g = Generator::new(5);
    let models = [
        ("mlp", mlp(1), vec![3usize, 6], true),
        ("smooth cnn", smooth_cnn(2), vec![2, 1, 8, 8], true),
        ("relu cnn", cnn(2), vec![2, 1, 8, 8], false),
    ];
    for (name, model, shape, smooth) in models {
        let x = Tensor::randn_with(&shape, DType::F64, &mut g);
        let baseline = Tensor::randn_with(&shape, DType::F64, &mut g).mul_scalar(0.1);
        let (fx, fb) = (output(&model, &x, 1), output(&model, &baseline, 1));
        let dims: Vec<isize> = (1..shape.len() as isize).collect();
        for rule in [Rule::GaussLegendre, Rule::RiemannMiddle, Rule::RiemannTrapezoid, Rule::RiemannLeft] {
            let mut deltas = Vec::new();
            for steps in [4usize, 16, 64, 256] {
                let ig = IntegratedGradients::new(&model).baseline(baseline.clone()).steps(steps).rule(rule);
                let a = ig.attribute_with_delta(&x, &Target::Class(1)).unwrap();
                let sums = a.attributions.sum(&dims, false).to_vec::<f64>();
                let delta = a.delta.to_vec::<f64>();
                for i in 0..shape[0] {
                    let gap = sums[i] - (fx[i] - fb[i]);
                    assert!(
                        (gap - delta[i]).abs() < 1e-12,
                        "{name} {rule:?} {steps}: delta {} vs {gap}",
                        delta[i]
                    );
                }
                deltas.push(max_abs(&delta));
            }
            if smooth {
                assert!(
                    deltas.windows(2).all(|d| d[1] <= d[0] + 1e-13),
                    "{name} {rule:?}: |delta| {deltas:?}"
                );
            } else {
                assert!(deltas[3] < deltas[0] / 10.0, "{name} {rule:?}: |delta| {deltas:?}");
            }
            let scale = max_abs(&fx.iter().zip(&fb).map(|(a, b)| a - b).collect::<Vec<_>>());
            assert!(
                deltas[3] < 1e-2 * scale,
                "{name} {rule:?}: |delta| {deltas:?} for f(x) − f(b) up to {scale}"
            );
        }
    }
}

/// For f(x) = w·x + b, every rule's integrated gradients are (x − baseline)·w: the
/// gradient is w all along the path and every rule's weights sum to one.
#[test]
fn a_linear_models_integrated_gradients_are_x_minus_baseline_times_w() {
    let mut g = Generator::new(6);
    let fc = Linear::new(5, 3, &mut g);
    fc.cast(DType::F64);
    let x = Tensor::randn_with(&[4, 5], DType::F64, &mut g);
    let baseline = Tensor::randn_with(&[1, 5], DType::F64, &mut g);
    let want = (&x - &baseline) * fc.weight.value().select(0, 2).unsqueeze(0);
    for rule in [
        Rule::GaussLegendre,
        Rule::RiemannLeft,
        Rule::RiemannRight,
        Rule::RiemannMiddle,
        Rule::RiemannTrapezoid,
    ] {
        for steps in [2usize, 7, 50] {
            let a = IntegratedGradients::new(&fc)
                .baseline(baseline.clone())
                .steps(steps)
                .rule(rule)
                .attribute_with_delta(&x, &Target::Class(2))
                .unwrap();
            assert!(a.attributions.allclose(&want, 1e-14, 1e-15), "{rule:?} {steps}");
            assert!(max_abs(&a.delta.to_vec::<f64>()) < 1e-14, "{rule:?} {steps}");
        }
    }
}

/// Signed saliency is the gradient: central differences of the target agree.
#[test]
fn saliency_is_the_gradient_by_central_differences() {
    let mut g = Generator::new(7);
    let model = cnn(3);
    let x = Tensor::randn_with(&[2, 1, 8, 8], DType::F64, &mut g);
    let classes = [2usize, 0];
    let s =
        Saliency::new(&model).abs(false).attribute(&x, &Target::Classes(&classes)).unwrap().to_vec::<f64>();
    let base = x.to_vec::<f64>();
    let h = 1e-6;
    for idx in (0..base.len()).step_by(7) {
        let item = idx / 64;
        let bump = |d: f64| {
            let mut v = base.clone();
            v[idx] += d;
            output(&model, &Tensor::from_vec(v, &[2, 1, 8, 8]).unwrap(), classes[item])[item]
        };
        let numeric = (bump(h) - bump(-h)) / (2.0 * h);
        assert!((numeric - s[idx]).abs() < 1e-7, "element {idx}: {numeric} vs {}", s[idx]);
    }
    // input × gradient is the two multiplied, and absolute saliency their size
    let ixg = InputXGradient::new(&model).attribute(&x, &Target::Classes(&classes)).unwrap().to_vec::<f64>();
    for i in 0..base.len() {
        assert!((ixg[i] - base[i] * s[i]).abs() < 1e-15);
    }
}

/// SmoothGrad is the mean of the method over the tunnel's own noisy inputs; no noise
/// gives the method itself; VarGrad is mean of squares minus square of means.
#[test]
fn noise_tunnel_averages_the_method_over_seeded_noise() {
    let mut g = Generator::new(8);
    let model = mlp(4);
    let x = Tensor::randn_with(&[3, 6], DType::F64, &mut g);
    let t = Target::Class(3);
    let tunnel =
        |kind| NoiseTunnel::new(Saliency::new(&model).abs(false)).samples(6).stdev(0.2).seed(9).kind(kind);
    let noisy = tunnel(NoiseKind::SmoothGrad).noisy_inputs(&x);
    assert_eq!(noisy.len(), 6);
    let each: Vec<Tensor> =
        noisy.iter().map(|n| Saliency::new(&model).abs(false).attribute(n, &t).unwrap()).collect();
    let mean = each.iter().skip(1).fold(each[0].clone(), |a, b| a + b).mul_scalar(1.0 / 6.0);
    let mean_sq = each.iter().skip(1).fold(each[0].square(), |a, b| a + b.square()).mul_scalar(1.0 / 6.0);
    assert!(tunnel(NoiseKind::SmoothGrad).attribute(&x, &t).unwrap().allclose(&mean, 1e-13, 1e-15));
    assert!(tunnel(NoiseKind::SmoothGradSq).attribute(&x, &t).unwrap().allclose(&mean_sq, 1e-13, 1e-15));
    let var = &mean_sq - &mean.square();
    assert!(tunnel(NoiseKind::VarGrad).attribute(&x, &t).unwrap().allclose(&var, 1e-12, 1e-15));
    // the noise differs between samples and is seeded
    assert!(!noisy[0].allclose(&noisy[1], 1e-3, 1e-3));
    assert_eq!(noisy[2].to_vec::<f64>(), tunnel(NoiseKind::VarGrad).noisy_inputs(&x)[2].to_vec::<f64>());
    let still = NoiseTunnel::new(IntegratedGradients::new(&model).steps(8)).stdev(0.0).samples(3);
    let plain = IntegratedGradients::new(&model).steps(8).attribute(&x, &t).unwrap();
    assert!(still.attribute(&x, &t).unwrap().allclose(&plain, 1e-13, 1e-15));
    // over Grad-CAM, the tunnel keeps the map's shape
    let net = cnn(5);
    let img = Tensor::randn_with(&[2, 1, 8, 8], DType::F64, &mut g);
    let cams = NoiseTunnel::new(GradCam::new(&net, "3"))
        .samples(2)
        .stdev(0.1)
        .attribute(&img, &Target::Class(0))
        .unwrap();
    assert_eq!(cams.dims(), [2, 1, 2, 2]);
}

/// Occlusion with a window per feature on a linear model is x_j·w_j (baseline 0); a
/// stride past the window leaves uncovered features at 0; a target function works.
#[test]
fn occlusion_on_a_linear_model_and_uncovered_features() {
    let mut g = Generator::new(9);
    let fc = Linear::new(6, 2, &mut g);
    fc.cast(DType::F64);
    let x = Tensor::randn_with(&[3, 6], DType::F64, &mut g);
    let w = fc.weight.value().select(0, 1).unsqueeze(0);
    let a = Occlusion::new(&fc, &[1]).perturbations_per_eval(4).attribute(&x, &Target::Class(1)).unwrap();
    assert!(a.allclose(&(&x * &w), 1e-12, 1e-14));
    let second = |y: &Var| y.select(1, 1);
    let sparse = Occlusion::new(&fc, &[1]).strides(&[2]).attribute(&x, &Target::Output(&second)).unwrap();
    let (got, want) = (sparse.to_vec::<f64>(), (&x * &w).to_vec::<f64>());
    for i in 0..got.len() {
        let expected = if (i % 6) % 2 == 0 { want[i] } else { 0.0 };
        assert!((got[i] - expected).abs() < 1e-12, "{i}: {} vs {expected}", got[i]);
    }
}

/// Spearman's rank correlation of two equally long samples (ties share their mean rank).
fn spearman(a: &[f64], b: &[f64]) -> f64 {
    let ranks = |v: &[f64]| {
        let mut idx: Vec<usize> = (0..v.len()).collect();
        idx.sort_by(|&i, &j| v[i].total_cmp(&v[j]));
        let mut r = vec![0.0; v.len()];
        let mut start = 0;
        while start < idx.len() {
            let mut end = start + 1;
            while end < idx.len() && v[idx[end]] == v[idx[start]] {
                end += 1;
            }
            for &i in &idx[start..end] {
                r[i] = (start + end - 1) as f64 / 2.0;
            }
            start = end;
        }
        r
    };
    let (ra, rb) = (ranks(a), ranks(b));
    let n = a.len() as f64;
    let (ma, mb) = (ra.iter().sum::<f64>() / n, rb.iter().sum::<f64>() / n);
    let cov: f64 = ra.iter().zip(&rb).map(|(x, y)| (x - ma) * (y - mb)).sum();
    let va: f64 = ra.iter().map(|x| (x - ma).powi(2)).sum();
    let vb: f64 = rb.iter().map(|y| (y - mb).powi(2)).sum();
    cov / (va * vb).sqrt()
}

/// Adebayo et al.'s model-randomisation test on the digits: the trained MLP's saliency and
/// integrated-gradients maps are unlike those of the same network with random weights
/// (low rank correlation), while two explanations of the trained model agree with each
/// other more than either does with the random one's.
#[test]
fn randomised_weights_change_the_explanations() {
    let digits = sinew_data::datasets::digits();
    let x = digits.features().div_scalar(16.0).to_dtype(DType::F64);
    let y = digits.targets().clone();
    let mut g = Generator::new(10);
    let trained =
        Sequential::new().add(Linear::new(64, 32, &mut g)).add(Tanh).add(Linear::new(32, 10, &mut g));
    trained.cast(DType::F64);
    let mut opt = Adam::new(trained.parameters(), 1e-2);
    for _ in 0..60 {
        let loss =
            cross_entropy(&trained.forward(&Var::constant(x.clone())), &y, &CrossEntropyOptions::default());
        opt.step(&loss.backward());
    }
    trained.eval();
    let predictions = no_grad(|| trained.forward(&Var::constant(x.clone())).value().argmax(1, false));
    let correct =
        predictions.to_vec::<i64>().iter().zip(y.to_vec::<i64>()).filter(|(p, t)| **p == *t).count();
    assert!(correct as f64 / 1797.0 > 0.9, "the MLP trained to {correct}/1797");

    let random =
        Sequential::new().add(Linear::new(64, 32, &mut g)).add(Tanh).add(Linear::new(32, 10, &mut g));
    random.cast(DType::F64);
    random.eval();
    let items: Vec<usize> = (0..40).map(|i| i * 37).collect();
    let batch = x.index_select(
        0,
        &Tensor::from_vec(items.iter().map(|&i| i as i64).collect::<Vec<_>>(), &[40]).unwrap(),
    );
    let classes: Vec<usize> = items.iter().map(|&i| y.to_vec::<i64>()[i] as usize).collect();
    let t = Target::Classes(&classes);
    let maps = |m: &Sequential| {
        let s = Saliency::new(m).attribute(&batch, &t).unwrap().to_vec::<f64>();
        let ig = IntegratedGradients::new(m).steps(32).attribute(&batch, &t).unwrap().abs().to_vec::<f64>();
        (s, ig)
    };
    let ((s_t, ig_t), (s_r, ig_r)) = (maps(&trained), maps(&random));
    // over each image's inked pixels: with a zero baseline, integrated gradients are 0 on
    // blank ones for any weights (the input's structure, not the model's)
    let pixels = batch.to_vec::<f64>();
    let mean_corr = |a: &[f64], b: &[f64]| {
        (0..40)
            .map(|i| {
                let ink: Vec<usize> = (i * 64..(i + 1) * 64).filter(|&p| pixels[p] != 0.0).collect();
                let pick = |v: &[f64]| ink.iter().map(|&p| v[p]).collect::<Vec<f64>>();
                spearman(&pick(a), &pick(b))
            })
            .sum::<f64>()
            / 40.0
    };
    let saliency_vs_random = mean_corr(&s_t, &s_r);
    let ig_vs_random = mean_corr(&ig_t, &ig_r);
    let x_times_saliency: Vec<f64> = s_t.iter().zip(&pixels).map(|(s, x)| s * x.abs()).collect();
    let trained_methods_agree = mean_corr(&ig_t, &x_times_saliency);
    println!(
        "rank correlation trained vs random: saliency {saliency_vs_random:.3}, IG {ig_vs_random:.3}; trained IG vs |x·grad| {trained_methods_agree:.3}"
    );
    assert!(saliency_vs_random.abs() < 0.5, "saliency survives randomisation: {saliency_vs_random}");
    assert!(ig_vs_random < 0.7, "integrated gradients survive randomisation: {ig_vs_random}");
    assert!(trained_methods_agree > ig_vs_random, "{trained_methods_agree} vs {ig_vs_random}");
}

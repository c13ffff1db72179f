//! Parity with Captum 0.9 (PyTorch 2.15) in f64, on a small CNN and an MLP with the same
//! weights: saliency, input × gradient, integrated gradients (Gauss–Legendre, left, right
//! and middle Riemann; scalar, zero and per-item baselines; chunked batches) with their
//! deltas, occlusion (windows cut at the edge, several perturbations per pass) and
//! Grad-CAM (a convolution, an activation module, with and without ReLU, interpolated).
//! Fixtures: `tests/fixtures/explain/gen_captum.py`.

use sinew_autograd::Var;
use sinew_explain::{
    Attribution, GradCam, InputXGradient, IntegratedGradients, Interpolation, Occlusion, Rule, Saliency,
    Target, interpolate,
};
use sinew_nn::{Conv2d, Forward, Linear, MaxPool2d, Module, Relu, Sequential, Tanh};
use sinew_tensor::{Conv2dOptions, DType, Generator, Tensor};

const TOL: f64 = 1e-9;

fn fixtures() -> Vec<(String, Tensor)> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/fixtures/explain/captum.safetensors");
    sinew_serialize::load_safetensors(path).expect("tests/fixtures/explain/captum.safetensors")
}

fn get(f: &[(String, Tensor)], name: &str) -> Tensor {
    f.iter().find(|(n, _)| n == name).unwrap_or_else(|| panic!("fixture {name}")).1.clone()
}

/// The model's weights: every fixture under `prefix.` that names one of its parameters.
fn load(model: &dyn Module, f: &[(String, Tensor)], prefix: &str) {
    let names: Vec<String> = model.state_dict().into_iter().map(|(n, _)| n).collect();
    let state: Vec<(String, Tensor)> = f
        .iter()
        .filter_map(|(n, t)| {
            n.strip_prefix(prefix)
                .filter(|n| names.iter().any(|m| m == n))
                .map(|n| (n.to_string(), t.clone()))
        })
        .collect();
    model.load_state_dict(&state, true).expect("the fixture's weights fit");
}

fn assert_close(what: &str, got: &Tensor, want: &Tensor) {
    assert_eq!(got.dims(), want.dims(), "{what}: shape");
    let (g, w) = (got.to_vec::<f64>(), want.to_vec::<f64>());
    let worst = g.iter().zip(&w).map(|(a, b)| (a - b).abs()).fold(0.0, f64::max);
    println!("{what}: max |sinew − Captum| = {worst:.1e}");
    assert!(worst <= TOL, "{what}: max |sinew − Captum| = {worst:e}");
}

/// Captum's `Cnn` (see the script), field for field.
#[derive(Module)]
struct Cnn {
    conv1: Conv2d,
    act1: Relu,
    pool: MaxPool2d,
    conv2: Conv2d,
    act2: Tanh,
    fc: Linear,
}

impl Forward for Cnn {
    fn forward(&self, x: &Var) -> Var {
        let h = self.pool.forward(&self.act1.forward(&self.conv1.forward(x)));
        let h = self.act2.forward(&self.conv2.forward(&h));
        self.fc.forward(&h.flatten(1, -1))
    }
}

fn cnn(f: &[(String, Tensor)]) -> Cnn {
    let mut g = Generator::new(0);
    let m = Cnn {
        conv1: Conv2d::new(1, 4, 3, Conv2dOptions::default().padding(1), &mut g),
        act1: Relu,
        pool: MaxPool2d::new(2),
        conv2: Conv2d::new(4, 6, 3, Conv2dOptions::default(), &mut g),
        act2: Tanh,
        fc: Linear::new(6 * 3 * 3, 3, &mut g),
    };
    m.cast(DType::F64);
    load(&m, f, "cnn.");
    m.eval();
    m
}

fn mlp(f: &[(String, Tensor)]) -> Sequential {
    let mut g = Generator::new(0);
    let m = Sequential::new().add(Linear::new(5, 7, &mut g)).add(Tanh).add(Linear::new(7, 3, &mut g));
    m.cast(DType::F64);
    load(&m, f, "mlp.");
    m.eval();
    m
}

const TARGETS: [usize; 3] = [0, 2, 1];

#[test]
fn gradients_match_captum() {
    let f = fixtures();
    let (net, x) = (cnn(&f), get(&f, "cnn.x"));
    let t = Target::Classes(&TARGETS);
    assert_close("saliency", &Saliency::new(&net).attribute(&x, &t).unwrap(), &get(&f, "cnn.saliency_abs"));
    assert_close(
        "signed saliency",
        &Saliency::new(&net).abs(false).attribute(&x, &t).unwrap(),
        &get(&f, "cnn.saliency_signed"),
    );
    assert_close(
        "input × gradient",
        &InputXGradient::new(&net).attribute(&x, &Target::Class(1)).unwrap(),
        &get(&f, "cnn.input_x_gradient"),
    );
    let (m, xm) = (mlp(&f), get(&f, "mlp.x"));
    assert_close(
        "mlp saliency",
        &Saliency::new(&m).attribute(&xm, &Target::Class(2)).unwrap(),
        &get(&f, "mlp.saliency_abs"),
    );
    assert_close(
        "mlp input × gradient",
        &InputXGradient::new(&m).attribute(&xm, &Target::Classes(&[0, 1, 2, 0])).unwrap(),
        &get(&f, "mlp.input_x_gradient"),
    );
}

#[test]
fn integrated_gradients_and_deltas_match_captum() {
    let f = fixtures();
    let (net, x) = (cnn(&f), get(&f, "cnn.x"));
    let t = Target::Classes(&TARGETS);
    let gl = IntegratedGradients::new(&net).steps(20).attribute_with_delta(&x, &t).unwrap();
    assert_close("IG Gauss–Legendre", &gl.attributions, &get(&f, "cnn.ig_gausslegendre"));
    assert_close("IG Gauss–Legendre delta", &gl.delta, &get(&f, "cnn.ig_gausslegendre_delta"));
    for (rule, baseline, key) in [
        (Rule::RiemannLeft, Tensor::scalar(0.25f64), "ig_left"),
        (Rule::RiemannRight, Tensor::scalar(0.25f64), "ig_right"),
        (Rule::RiemannMiddle, get(&f, "cnn.baseline"), "ig_middle"),
    ] {
        // Captum's internal_batch_size=7 with 3 items: 2 steps per pass
        let ig =
            IntegratedGradients::new(&net).steps(16).rule(rule).baseline(baseline).internal_batch_size(7);
        let a = ig.attribute_with_delta(&x, &t).unwrap();
        assert_close(key, &a.attributions, &get(&f, &format!("cnn.{key}")));
        assert_close(&format!("{key} delta"), &a.delta, &get(&f, &format!("cnn.{key}_delta")));
    }
    let (m, xm) = (mlp(&f), get(&f, "mlp.x"));
    let a = IntegratedGradients::new(&m)
        .steps(32)
        .baseline(get(&f, "mlp.baseline"))
        .attribute_with_delta(&xm, &Target::Class(2))
        .unwrap();
    assert_close("mlp IG", &a.attributions, &get(&f, "mlp.ig"));
    assert_close("mlp IG delta", &a.delta, &get(&f, "mlp.ig_delta"));
}

#[test]
fn occlusion_matches_captum() {
    let f = fixtures();
    let (net, x) = (cnn(&f), get(&f, "cnn.x"));
    let a = Occlusion::new(&net, &[1, 3, 3])
        .strides(&[1, 2, 2])
        .attribute(&x, &Target::Classes(&TARGETS))
        .unwrap();
    assert_close("occlusion 3×3 stride 2", &a, &get(&f, "cnn.occlusion_3x3_s2"));
    for per_eval in [1, 4] {
        let a = Occlusion::new(&net, &[1, 4, 4])
            .strides(&[1, 3, 3])
            .baseline(-0.5)
            .perturbations_per_eval(per_eval)
            .attribute(&x, &Target::Class(2))
            .unwrap();
        assert_close("occlusion 4×4 stride 3", &a, &get(&f, "cnn.occlusion_4x4_s3"));
    }
    let (m, xm) = (mlp(&f), get(&f, "mlp.x"));
    let a = Occlusion::new(&m, &[2]).baseline(0.1).attribute(&xm, &Target::Class(2)).unwrap();
    assert_close("mlp occlusion", &a, &get(&f, "mlp.occlusion"));
}

#[test]
fn grad_cam_matches_captum() {
    let f = fixtures();
    let (net, x) = (cnn(&f), get(&f, "cnn.x"));
    let t = Target::Classes(&TARGETS);
    let cam = GradCam::new(&net, "conv2").relu(false).attribute(&x, &t).unwrap();
    assert_close("Grad-CAM conv2", &cam, &get(&f, "cnn.grad_cam_conv2"));
    assert_close(
        "Grad-CAM conv2, ReLU",
        &GradCam::new(&net, "conv2").attribute(&x, &t).unwrap(),
        &get(&f, "cnn.grad_cam_conv2_relu"),
    );
    // a layer without data (the ReLU module): found by its type and place
    assert_close(
        "Grad-CAM act1, ReLU",
        &GradCam::new(&net, "act1").attribute(&x, &Target::Class(1)).unwrap(),
        &get(&f, "cnn.grad_cam_act1_relu"),
    );
    assert_close(
        "nearest",
        &interpolate(&cam, [10, 10], Interpolation::Nearest).unwrap(),
        &get(&f, "cnn.grad_cam_conv2_nearest"),
    );
    assert_close(
        "bilinear",
        &GradCam::new(&net, "conv2")
            .relu(false)
            .attribute_upsampled(&x, &t, Interpolation::Bilinear)
            .unwrap(),
        &get(&f, "cnn.grad_cam_conv2_bilinear"),
    );
}

#[test]
fn bad_requests_are_errors_that_say_what_was_wrong() {
    let f = fixtures();
    let (net, x) = (cnn(&f), get(&f, "cnn.x"));
    let err = |r: Result<Tensor, sinew_explain::ExplainError>| r.unwrap_err().to_string();
    let e = err(GradCam::new(&net, "conv3").attribute(&x, &Target::Class(0)));
    assert!(e.contains("conv3") && e.contains("no such layer") && e.contains("conv2"), "{e}");
    let e = err(Saliency::new(&net).attribute(&x, &Target::Class(3)));
    assert!(e.contains("class 3") && e.contains("3 columns"), "{e}");
    let e = err(Saliency::new(&net).attribute(&x, &Target::Classes(&[0, 1])));
    assert!(e.contains("2 classes") && e.contains("3 items"), "{e}");
    let e = err(Occlusion::new(&net, &[3, 3]).attribute(&x, &Target::Class(0)));
    assert!(e.contains("one size per feature dimension"), "{e}");
    let e = err(Occlusion::new(&net, &[1, 11, 3]).attribute(&x, &Target::Class(0)));
    assert!(e.contains("does not fit"), "{e}");
    let e = err(IntegratedGradients::new(&net)
        .baseline(Tensor::zeros(&[2, 1, 10, 10]))
        .attribute(&x, &Target::Class(0)));
    assert!(e.contains("baseline of shape [2, 1, 10, 10]"), "{e}");
    let e =
        err(IntegratedGradients::new(&net).steps(1).rule(Rule::RiemannLeft).attribute(&x, &Target::Class(0)));
    assert!(e.contains("at least 2 steps"), "{e}");
    let scalar = |y: &Var| y.sum_all();
    let e = err(Saliency::new(&net).attribute(&x, &Target::Output(&scalar)));
    assert!(e.contains("expected [3]"), "{e}");
}

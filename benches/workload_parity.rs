//! Checks that sinew's workload models (benches/anchors.rs) compute what PyTorch's
//! (benches/torch_workloads.py) do: from the weights and batch PyTorch wrote with
//! `torch_workloads.py --dump DIR`, the loss and every parameter's gradient must agree,
//! in f64 to 1e-9 of each tensor's largest value (see the script for why not f32).
//! Run by `benches/check_workloads.sh`, which writes the fixtures first.
//!
//! `cargo run --release -p sinew-benches --bin workload_parity DIR`

use sinew_autograd::Var;
use sinew_nn::Forward;
use sinew_serialize::load_safetensors;
use sinew_tensor::{DType, Generator, Tensor};

#[path = "anchors.rs"]
#[allow(dead_code)] // the runner's workloads are not used here
mod anchors;

/// Loads `DIR/<name>.safetensors` into `model`, runs `loss(model(x), y)` and its backward,
/// and compares with `DIR/<name>.grads.safetensors`. Returns the worst relative error.
fn check(dir: &str, name: &str, model: &dyn Forward, loss: fn(&Var, &Tensor) -> Var) -> f64 {
    check_renamed(dir, name, model, loss, |n, t| (n.to_string(), t))
}

/// [`check`] for a model whose parameters PyTorch's side names and lays out otherwise:
/// `rename` maps each of PyTorch's tensors (weights and gradients) to sinew's.
fn check_renamed(
    dir: &str,
    name: &str,
    model: &dyn Forward,
    loss: fn(&Var, &Tensor) -> Var,
    rename: fn(&str, Tensor) -> (String, Tensor),
) -> f64 {
    let renamed = |tensors: Vec<(String, Tensor)>| -> Vec<(String, Tensor)> {
        tensors
            .into_iter()
            .map(|(n, t)| if ["x", "y", "loss"].contains(&n.as_str()) { (n, t) } else { rename(&n, t) })
            .collect()
    };
    let tensors =
        renamed(load_safetensors(format!("{dir}/{name}.safetensors")).expect("read the weights and batch"));
    let take = |key: &str| tensors.iter().find(|(n, _)| n == key).map(|(_, t)| t.clone()).expect(key);
    let state: Vec<(String, Tensor)> =
        tensors.iter().filter(|(n, _)| n != "x" && n != "y").cloned().collect();
    model.cast(DType::F64);
    let report = model.load_state_dict(&state, true).unwrap_or_else(|e| panic!("{name}: {e}"));
    assert!(report.converted.is_empty(), "{name}: PyTorch's state dict is not f64: {:?}", report.converted);
    let (x, y) = (take("x"), take("y"));
    model.train();
    let l = loss(&model.forward(&Var::constant(x)), &y);
    let grads = l.backward();
    let expected =
        renamed(load_safetensors(format!("{dir}/{name}.grads.safetensors")).expect("read the gradients"));
    let mut worst = 0.0f64;
    let mut compare = |what: &str, ours: &Tensor, theirs: &Tensor| {
        assert_eq!(ours.dims(), theirs.dims(), "{name}: {what} has the wrong shape");
        let (a, b) = (ours.to_dtype(DType::F64).to_vec::<f64>(), theirs.to_vec::<f64>());
        // relative to the tensor's largest value, but at least 0.01: a bias
        // before a batch norm has a gradient that is zero up to rounding on both sides
        let scale = b.iter().fold(1e-2f64, |m, v| m.max(v.abs()));
        let err = a.iter().zip(&b).fold(0.0f64, |m, (p, q)| m.max((p - q).abs())) / scale;
        assert!(err < 1e-9, "{name}: {what} differs from PyTorch's by {err:.2e} of its largest value");
        worst = worst.max(err);
    };
    for (key, theirs) in &expected {
        if key == "loss" {
            compare("loss", l.value(), &theirs.reshape(&[]));
            continue;
        }
        let param = model.named_parameters().into_iter().find(|(n, _)| n == key);
        let (_, param) = param.unwrap_or_else(|| panic!("{name}: sinew's model has no parameter {key}"));
        let ours = grads.get(&param.var()).unwrap_or_else(|| panic!("{name}: no gradient for {key}"));
        compare(key, ours, theirs);
    }
    println!(
        "{name}: loss {:.6} and {} gradients agree (worst {worst:.1e} of the largest value)",
        l.value().item(),
        expected.len() - 1
    );
    worst
}

/// torch_workloads.py's nanoGPT-style names to Hugging Face's GPT-2 names, its `Linear`
/// weights `(out, in)` transposed to `Conv1D`'s `(in, out)`.
fn nanogpt_to_gpt2(name: &str, t: Tensor) -> (String, Tensor) {
    let parts: Vec<&str> = name.split('.').collect();
    match parts.as_slice() {
        ["tok", p] => (format!("transformer.wte.{p}"), t),
        ["pos", p] => (format!("transformer.wpe.{p}"), t),
        ["ln_f", p] => (format!("transformer.ln_f.{p}"), t),
        ["head", p] => (format!("lm_head.{p}"), t),
        ["blocks", i, rest @ ..] => {
            let (module, p) = match rest {
                ["ln1", p] => ("ln_1", *p),
                ["ln2", p] => ("ln_2", *p),
                ["attn", "qkv", p] => ("attn.c_attn", *p),
                ["attn", "proj", p] => ("attn.c_proj", *p),
                ["fc1", p] => ("mlp.c_fc", *p),
                ["fc2", p] => ("mlp.c_proj", *p),
                _ => panic!("gpt: unexpected parameter {name}"),
            };
            let conv1d_weight = p == "weight" && !module.starts_with("ln");
            (format!("transformer.h.{i}.{module}.{p}"), if conv1d_weight { t.t().contiguous() } else { t })
        }
        _ => panic!("gpt: unexpected parameter {name}"),
    }
}

fn main() {
    let dir = std::env::args()
        .nth(1)
        .expect("usage: workload_parity DIR (written by torch_workloads.py --dump DIR)");
    let mut g = Generator::new(0); // initial weights are overwritten by PyTorch's
    check_renamed(&dir, "gpt", &anchors::gpt(&mut g), anchors::gpt_loss, nanogpt_to_gpt2);
    check(&dir, "cifar_cnn", &anchors::cifar_cnn(&mut g), anchors::classify_loss);
    check(&dir, "mlp", &anchors::mlp(&mut g), anchors::classify_loss);
    check(&dir, "lstm", &anchors::lstm_classifier(&mut g), anchors::classify_loss);
}

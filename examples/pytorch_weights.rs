//! Loads a PyTorch model's weights into the same architecture built from sinew layers, and
//! predicts: the output matches PyTorch's. The weights come twice, as PyTorch writes
//! them: a safetensors file (`safetensors.torch.save_file(model.state_dict())`) and a
//! `torch.save(model.state_dict())` file (`.pt`, read without running its pickle). The
//! model is the CNN of `tests/fixtures/interop` (Conv2d, BatchNorm2d, ReLU, MaxPool2d,
//! Flatten, Linear).
//!
//! Run with `cargo run --release --example pytorch_weights`.

use sinew::prelude::*;
use sinew::serialize::{load_module, load_safetensors};

fn cnn(seed: u64) -> Sequential {
    let mut g = Generator::new(seed);
    Sequential::new()
        .add(Conv2d::new(1, 4, 3, Conv2dOptions::default().padding(1), &mut g))
        .add(BatchNorm2d::new(4))
        .add(Relu)
        .add(MaxPool2d::new(2))
        .add(Flatten::new())
        .add(Linear::new(64, 5, &mut g))
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let fixtures = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures");
    let dir = fixtures.join("interop");
    let model = cnn(0);
    let state = load_safetensors(dir.join("cnn.safetensors"))?;
    for (name, t) in &state {
        println!("{name:24} {} {:?}", t.dtype(), t.dims());
    }
    let report = model.load_state_dict(&state, true).map_err(|r| r.to_string())?;
    println!("loaded {} tensors, clean: {}", state.len(), report.is_clean());
    model.eval();
    let io = load_safetensors(dir.join("cnn_io.safetensors"))?;
    let get = |n: &str| io.iter().find(|(k, _)| k == n).map(|(_, t)| t.clone()).expect("tensor");
    let out = no_grad(|| model.forward(&Var::constant(get("input"))));
    let diff = (out.value() - &get("output")).abs().max_all().item();
    println!("sinew output   {:?}", out.value().to_vec::<f32>());
    println!("PyTorch output {:?}", get("output").to_vec::<f32>());
    println!("largest difference {diff:.2e}");

    // the same weights as torch.save wrote them: load_module tells the format by its bytes
    let from_pt = cnn(1);
    let report = load_module(fixtures.join("torch/cnn.pt"), &from_pt, true)?;
    from_pt.eval();
    let out_pt = no_grad(|| from_pt.forward(&Var::constant(get("input"))));
    let diff_pt = (out_pt.value() - &get("output")).abs().max_all().item();
    println!("from cnn.pt (torch.save): clean load {}, largest difference {diff_pt:.2e}", report.is_clean());
    assert_eq!(
        out_pt.value().to_vec::<f32>(),
        out.value().to_vec::<f32>(),
        "both files hold the same weights"
    );
    Ok(())
}

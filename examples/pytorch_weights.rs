//! Loads a PyTorch model's weights from a safetensors file (saved with
//! `safetensors.torch.save_file(model.state_dict())`) into the same architecture built from
//! sinew layers, and predicts: the output matches PyTorch's. The file is the CNN of
//! `tests/fixtures/interop` (Conv2d, BatchNorm2d, ReLU, MaxPool2d, Flatten, Linear).
//!
//! Run with `cargo run --release --example pytorch_weights`.

use sinew::prelude::*;
use sinew::serialize::load_safetensors;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/interop");
    let mut g = Generator::new(0);
    let model = Sequential::new()
        .add(Conv2d::new(1, 4, 3, Conv2dOptions::default().padding(1), &mut g))
        .add(BatchNorm2d::new(4))
        .add(Relu)
        .add(MaxPool2d::new(2))
        .add(Flatten::new())
        .add(Linear::new(64, 5, &mut g));
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
    Ok(())
}

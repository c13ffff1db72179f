//! PyTorch models saved with `safetensors.torch.save_file(model.state_dict())` load into
//! the same architecture built from sinew layers and reproduce PyTorch's outputs
//! (`NAME_io.safetensors` holds an input and PyTorch's eval-mode output); names, dtypes
//! and shapes agree with `models.json`; and a sinew model saved as safetensors comes back
//! with PyTorch's names.

use serde_json::Value;
use sinew_autograd::Var;
use sinew_nn::{BatchNorm2d, Conv2d, Flatten, Forward, Linear, MaxPool2d, Module, Relu, Sequential};
use sinew_serialize::{read_safetensors, write_safetensors};
use sinew_tensor::{Conv2dOptions, DType, Generator, Tensor};

fn fixture(name: &str) -> Vec<(String, Tensor)> {
    let bytes = match name {
        "mlp" => &include_bytes!("../../../tests/fixtures/interop/mlp.safetensors")[..],
        "mlp_io" => &include_bytes!("../../../tests/fixtures/interop/mlp_io.safetensors")[..],
        "cnn" => &include_bytes!("../../../tests/fixtures/interop/cnn.safetensors")[..],
        "cnn_io" => &include_bytes!("../../../tests/fixtures/interop/cnn_io.safetensors")[..],
        other => panic!("no fixture {other}"),
    };
    read_safetensors(bytes).expect("valid fixture")
}

fn get<'a>(tensors: &'a [(String, Tensor)], name: &str) -> &'a Tensor {
    &tensors.iter().find(|(n, _)| n == name).unwrap_or_else(|| panic!("no tensor {name}")).1
}

fn models() -> Value {
    serde_json::from_str(include_str!("../../../tests/fixtures/interop/models.json")).unwrap()
}

/// The state dict's names, dtypes and shapes are exactly those `models.json` lists.
fn assert_names_match(model: &str, state: &[(String, Tensor)]) {
    let spec = &models()[model]["tensors"];
    let spec = spec.as_object().unwrap();
    assert_eq!(state.len(), spec.len(), "{model}: number of tensors");
    for (name, t) in state {
        let entry = &spec[name.as_str()];
        let dtype = match t.dtype() {
            DType::F32 => "torch.float32",
            DType::F64 => "torch.float64",
            DType::I64 => "torch.int64",
        };
        assert_eq!(entry[0], dtype, "{model}: dtype of {name}");
        let shape: Vec<usize> =
            entry[1].as_array().unwrap().iter().map(|d| d.as_u64().unwrap() as usize).collect();
        assert_eq!(t.dims(), &shape[..], "{model}: shape of {name}");
    }
}

fn assert_reproduces(model: &dyn Forward, io: &[(String, Tensor)]) {
    model.eval();
    let y = model.forward(&Var::constant(get(io, "input").clone()));
    let want = get(io, "output");
    assert!(y.value().allclose(want, 1e-4, 1e-5), "sinew {} vs PyTorch {want}", y.value());
}

#[test]
fn mlp_loads_and_reproduces_pytorch() {
    let mut g = Generator::new(0);
    let model = Sequential::new().add(Linear::new(4, 8, &mut g)).add(Relu).add(Linear::new(8, 3, &mut g));
    let state = fixture("mlp");
    assert_names_match("mlp", &state);
    model.load_state_dict(&state, true).expect("strict load");
    assert_reproduces(&model, &fixture("mlp_io"));
    assert_names_match("mlp", &model.state_dict());
}

#[test]
fn cnn_with_batch_norm_loads_and_reproduces_pytorch() {
    let mut g = Generator::new(0);
    let model = Sequential::new()
        .add(Conv2d::new(1, 4, 3, Conv2dOptions::default().padding(1), &mut g))
        .add(BatchNorm2d::new(4))
        .add(Relu)
        .add(MaxPool2d::new(2))
        .add(Flatten::new())
        .add(Linear::new(64, 5, &mut g));
    let state = fixture("cnn");
    assert_names_match("cnn", &state);
    model.load_state_dict(&state, true).expect("strict load");
    assert_reproduces(&model, &fixture("cnn_io"));
    // sinew's own state dict has PyTorch's names, dtypes (int64 num_batches_tracked) and shapes
    let saved = read_safetensors(&write_safetensors(&model.state_dict()).unwrap()).unwrap();
    assert_names_match("cnn", &saved);
}

#[test]
fn strict_load_names_every_problem() {
    let mut g = Generator::new(0);
    let model = Sequential::new().add(Linear::new(4, 8, &mut g)).add(Relu).add(Linear::new(8, 2, &mut g));
    let mut state = fixture("mlp");
    state.retain(|(n, _)| n != "0.bias");
    state.push(("extra.weight".into(), Tensor::zeros(&[1])));
    let report = model.load_state_dict(&state, true).unwrap_err();
    assert_eq!(report.missing, vec!["0.bias"]);
    assert_eq!(report.unexpected, vec!["extra.weight"]);
    assert_eq!(report.mismatched.len(), 2, "{report}"); // 2.weight and 2.bias have 3 outputs in the file
    // nothing was changed by the failed strict load
    let before = model.state_dict();
    assert!(model.load_state_dict(&state, true).is_err());
    assert!(before.iter().zip(model.state_dict()).all(|((_, a), (_, b))| a.allclose(&b, 0.0, 0.0)));
}

/// The `lstm` model of `models.json`: a 2-layer batch-first LSTM, and a linear head on the
/// last time step.
#[derive(sinew_nn::Module)]
struct LstmModel {
    lstm: sinew_nn::Lstm,
    head: Linear,
}

impl Forward for LstmModel {
    fn forward(&self, x: &Var) -> Var {
        let out = self.lstm.forward(x);
        let last = out.select(1, out.dims()[1] - 1);
        self.head.forward(&last)
    }
}

#[test]
fn lstm_from_a_derived_module_loads_and_reproduces_pytorch() {
    let mut g = Generator::new(0);
    let model = LstmModel {
        lstm: sinew_nn::Lstm::new(
            3,
            5,
            sinew_nn::RecurrentOptions::default().num_layers(2).batch_first(true),
            &mut g,
        ),
        head: Linear::new(5, 2, &mut g),
    };
    let bytes = include_bytes!("../../../tests/fixtures/interop/lstm.safetensors");
    let state = read_safetensors(bytes).unwrap();
    assert_names_match("lstm", &state);
    model.load_state_dict(&state, true).expect("strict load");
    let io = read_safetensors(include_bytes!("../../../tests/fixtures/interop/lstm_io.safetensors")).unwrap();
    assert_reproduces(&model, &io);
    assert_names_match("lstm", &model.state_dict());
}

//! The BERT architecture against PyTorch on two randomly initialised configurations that
//! `transformers` saved with `save_pretrained` (tests/fixtures/models/gen_bert.py): other
//! sizes, `gelu_new` and `relu`, one and three token types. Outputs and every parameter's
//! gradient in float64; loading errors for every way a folder can be wrong; gradcheck of an
//! encoder layer.

use std::path::Path;

use sinew_autograd::{GradcheckOptions, Var};
use sinew_models::ModelError;
use sinew_models::bert::{BertConfig, BertInput, BertLayer, BertModel};
use sinew_nn::{Module, gradcheck_params};
use sinew_tensor::{DType, Generator, Tensor};

mod common;
use common::{edit_config, expected, fixtures, get, max_diff};

fn check_against_pytorch(name: &str) {
    let want = expected(&format!("small_{name}"));
    let model = BertModel::from_pretrained(fixtures().join(format!("small_{name}"))).unwrap();
    model.cast(DType::F64);
    let input = BertInput::new(get(&want, "input_ids").clone())
        .with_attention_mask(get(&want, "attention_mask").clone())
        .with_token_type_ids(get(&want, "token_type_ids").clone());
    let out = model.forward(&input).unwrap();
    let pooled = out.pooler_output.clone().unwrap();
    let dh = max_diff(out.last_hidden_state.value(), get(&want, "hidden"));
    let dp = max_diff(pooled.value(), get(&want, "pooled"));
    assert!(dh < 1e-12 && dp < 1e-12, "{name}: hidden differs by {dh:e}, pooled by {dp:e}");

    let r1 = Var::constant(get(&want, "R1").clone());
    let r2 = Var::constant(get(&want, "R2").clone());
    let f = &(&out.last_hidden_state * &r1).sum_all() + &(&pooled * &r2).sum_all();
    let grads = f.backward();
    let params = model.named_parameters();
    let mut checked = 0;
    for (pname, p) in &params {
        let g = grads.get_id(p.id()).unwrap_or_else(|| panic!("{name}: no gradient for {pname}"));
        let d = max_diff(g, get(&want, &format!("grad.{pname}")));
        assert!(d < 1e-10, "{name}: gradient of {pname} differs by {d:e}");
        checked += 1;
    }
    let in_fixture = want.iter().filter(|(n, _)| n.starts_with("grad.")).count();
    assert_eq!(checked, in_fixture, "{name}: every parameter PyTorch has, and no other");
}

#[test]
fn small_gelu_new_one_token_type_matches_pytorch() {
    check_against_pytorch("gelu_new");
}

#[test]
fn small_relu_three_token_types_matches_pytorch() {
    check_against_pytorch("relu");
}

#[test]
fn the_same_model_in_f32_is_close_to_pytorch() {
    let want = expected("small_relu");
    let model = BertModel::from_pretrained(fixtures().join("small_relu")).unwrap();
    assert_eq!(model.embeddings.word_embeddings.weight.value().dtype(), DType::F32);
    let input = BertInput::new(get(&want, "input_ids").clone())
        .with_attention_mask(get(&want, "attention_mask").clone())
        .with_token_type_ids(get(&want, "token_type_ids").clone());
    let out = sinew_autograd::no_grad(|| model.forward(&input)).unwrap();
    let d = max_diff(out.last_hidden_state.value(), get(&want, "hidden"));
    assert!(d < 1e-5, "f32 hidden states differ by {d:e}");
}

#[test]
fn every_broken_folder_is_a_clear_error() {
    let load = |dir: &Path| BertModel::from_pretrained(dir).map(|_| ()).unwrap_err();

    let dir = common::scratch_copy("small_relu", "missing-weights");
    std::fs::remove_file(dir.join("model.safetensors")).unwrap();
    let e = load(&dir);
    assert!(
        matches!(e, ModelError::MissingFile { .. }) && e.to_string().contains("model.safetensors"),
        "{e}"
    );

    let dir = common::scratch_copy("small_relu", "missing-config");
    std::fs::remove_file(dir.join("config.json")).unwrap();
    let e = load(&dir);
    assert!(matches!(e, ModelError::MissingFile { .. }) && e.to_string().contains("config.json"), "{e}");

    let dir = common::scratch_copy("small_relu", "bad-json");
    std::fs::write(dir.join("config.json"), "{\"hidden_size\": 16,").unwrap();
    let e = load(&dir);
    assert!(matches!(e, ModelError::Config { .. }) && e.to_string().contains("config.json"), "{e}");

    // a config that disagrees with the weights: one layer more than the file holds
    let dir = common::scratch_copy("small_relu", "more-layers");
    edit_config(&dir, |v| v["num_hidden_layers"] = 4.into());
    let e = load(&dir).to_string();
    assert!(e.contains("missing") && e.contains("encoder.layer.3.attention.self.query.weight"), "{e}");

    // fewer layers: the file's extra layer is unexpected
    let dir = common::scratch_copy("small_relu", "fewer-layers");
    edit_config(&dir, |v| v["num_hidden_layers"] = 2.into());
    let e = load(&dir).to_string();
    assert!(e.contains("unexpected") && e.contains("encoder.layer.2.output.dense.bias"), "{e}");

    // another width: every shape is wrong, and the report names them
    let dir = common::scratch_copy("small_relu", "wider");
    edit_config(&dir, |v| v["intermediate_size"] = 21.into());
    let e = load(&dir).to_string();
    assert!(e.contains("encoder.layer.0.intermediate.dense.weight") && e.contains("mismatched"), "{e}");

    // a tensor of the wrong shape in the weights file
    let dir = common::scratch_copy("small_relu", "bad-shape");
    let path = dir.join("model.safetensors");
    let mut weights = sinew_serialize::load_safetensors(&path).unwrap();
    let (_, t) = weights.iter_mut().find(|(n, _)| n == "encoder.layer.1.attention.self.key.weight").unwrap();
    *t = Tensor::zeros(&[16, 15]);
    sinew_serialize::save_safetensors(&path, &weights).unwrap();
    let e = load(&dir);
    assert!(matches!(e, ModelError::Mismatch { .. }), "{e}");
    assert!(e.to_string().contains("encoder.layer.1.attention.self.key.weight"), "{e}");

    // a file that is not safetensors at all
    let dir = common::scratch_copy("small_relu", "garbage");
    std::fs::write(dir.join("model.safetensors"), b"\x10\x00\x00\x00\x00\x00\x00\x00{not json at all")
        .unwrap();
    let e = load(&dir);
    assert!(matches!(e, ModelError::Weights { .. }) && e.to_string().contains("model.safetensors"), "{e}");

    // a truncated weights file
    let dir = common::scratch_copy("small_relu", "truncated");
    let bytes = std::fs::read(dir.join("model.safetensors")).unwrap();
    std::fs::write(dir.join("model.safetensors"), &bytes[..bytes.len() / 2]).unwrap();
    assert!(matches!(load(&dir), ModelError::Weights { .. }));
}

#[test]
fn bad_inputs_are_errors_naming_the_problem() {
    let model = BertModel::from_pretrained(fixtures().join("small_relu")).unwrap();
    let ids = |v: Vec<i64>, shape: &[usize]| Tensor::from_vec(v, shape).unwrap();
    let cases = [
        (BertInput::new(ids(vec![1, 2, 45], &[1, 3])), "input_ids holds 45, outside 0..45"),
        (BertInput::new(ids(vec![1, 2, 3], &[3])), "shape [batch, seq]"),
        (BertInput::new(Tensor::ones(&[1, 3])), "input_ids must be i64"),
        (BertInput::new(ids(vec![1; 13], &[1, 13])), "exceeds max_position_embeddings 12"),
        (
            BertInput::new(ids(vec![1, 2], &[1, 2])).with_attention_mask(ids(vec![1, 2], &[1, 2])),
            "attention_mask holds 2",
        ),
        (
            BertInput::new(ids(vec![1, 2], &[1, 2])).with_attention_mask(ids(vec![1], &[1, 1])),
            "attention_mask must be",
        ),
        (
            BertInput::new(ids(vec![1, 2], &[1, 2])).with_token_type_ids(ids(vec![0, 3], &[1, 2])),
            "token_type_ids holds 3",
        ),
    ];
    for (input, want) in cases {
        let e = model.forward(&input).map(|_| ()).unwrap_err().to_string();
        assert!(e.contains(want), "want {want:?}, got {e}");
    }
}

#[test]
fn weights_of_a_model_with_heads_load_into_the_encoder() {
    // BertForSequenceClassification's file: the encoder under `bert.`, a classifier beside it
    let path = fixtures().join("small_relu/model.safetensors");
    let mut weights: Vec<(String, Tensor)> = sinew_serialize::load_safetensors(&path)
        .unwrap()
        .into_iter()
        .map(|(n, t)| (format!("bert.{n}"), t))
        .collect();
    weights.push(("classifier.weight".into(), Tensor::zeros(&[2, 16])));
    let config = BertConfig::from_file(fixtures().join("small_relu/config.json")).unwrap();
    let model = BertModel::from_weights(&config, weights).unwrap();
    let plain = BertModel::from_pretrained(fixtures().join("small_relu")).unwrap();
    for ((n, a), (_, b)) in model.state_dict().iter().zip(plain.state_dict().iter()) {
        assert_eq!(a.to_vec::<f32>(), b.to_vec::<f32>(), "{n}");
    }
}

#[test]
fn an_encoder_layer_passes_gradcheck() {
    for (act, heads) in [("gelu", 2), ("gelu_new", 1), ("relu", 3)] {
        let config = BertConfig::from_json(&format!(
            r#"{{"hidden_size": 6, "num_attention_heads": {heads}, "intermediate_size": 5, "hidden_act": "{act}",
               "hidden_dropout_prob": 0.0, "attention_probs_dropout_prob": 0.0, "initializer_range": 0.5}}"#
        ))
        .unwrap();
        let mut g = Generator::new(7);
        let layer = BertLayer::new(&config, &mut g);
        layer.cast(DType::F64);
        // LayerNorm weights away from 1 and 0, so that their gradients are exercised
        for (name, p) in layer.named_parameters() {
            if name.contains("LayerNorm") {
                p.set_value(Tensor::randn_with(p.value().dims(), DType::F64, &mut g));
            }
        }
        let x = Var::constant(Tensor::randn_with(&[2, 4, 6], DType::F64, &mut g));
        let keep = Tensor::from_vec(vec![1i64, 1, 1, 1, 1, 1, 0, 0], &[2, 1, 1, 4]).unwrap();
        gradcheck_params(&layer, || layer.forward(&x, Some(&keep)), GradcheckOptions::default())
            .unwrap_or_else(|e| panic!("{act}: {e}"));
        gradcheck_params(&layer, || layer.forward(&x, None), GradcheckOptions::default())
            .unwrap_or_else(|e| panic!("{act}, no mask: {e}"));
    }
}

#[test]
fn a_model_is_shared_across_threads() {
    fn assert_sync<T: Sync + Send>() {}
    assert_sync::<BertModel>();
    let want = expected("small_relu");
    let model = BertModel::from_pretrained(fixtures().join("small_relu")).unwrap();
    let input = BertInput::new(get(&want, "input_ids").clone())
        .with_attention_mask(get(&want, "attention_mask").clone());
    let serial =
        sinew_autograd::no_grad(|| model.forward(&input)).unwrap().last_hidden_state.value().to_vec::<f32>();
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..4)
            .map(|_| {
                s.spawn(|| {
                    sinew_autograd::no_grad(|| model.forward(&input))
                        .unwrap()
                        .last_hidden_state
                        .value()
                        .to_vec::<f32>()
                })
            })
            .collect();
        for h in handles {
            assert_eq!(h.join().unwrap(), serial);
        }
    });
}

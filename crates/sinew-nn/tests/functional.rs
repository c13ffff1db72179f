//! The functional forms (`sinew_nn::functional`, PyTorch's `F`) against the layers that
//! call them, their gradients, and the module tree `Display` (PyTorch's `print(model)`).

use sinew_autograd::{GradcheckOptions, Var, gradcheck};
use sinew_nn::functional::{self, BatchNormOptions};
use sinew_nn::{
    BatchNorm1d, BatchNorm2d, Buffer, Conv2d, Dropout, Embedding, Flatten, Forward, LayerNorm, Linear, Lstm,
    MaxPool2d, Module, RecurrentOptions, Relu, Sequential,
};
use sinew_tensor::{Conv2dOptions, DType, Generator, Tensor};

fn randn(shape: &[usize], g: &mut Generator) -> Tensor {
    Tensor::randn_with(shape, DType::F64, g)
}

#[test]
fn linear_layer_norm_and_embedding_equal_their_layers() {
    let mut g = Generator::new(1);
    let lin = Linear::new(3, 4, &mut g);
    let x = Var::constant(Tensor::randn_with(&[5, 3], DType::F32, &mut g));
    let f = functional::linear(&x, &lin.weight.var(), lin.bias.as_ref().map(|b| b.var()).as_ref());
    assert_eq!(f.value().to_vec::<f32>(), lin.forward(&x).value().to_vec::<f32>());

    let ln = LayerNorm::new(&[3]);
    ln.weight.set_value(Tensor::from([1.0f32, 2.0, 3.0]));
    let f = functional::layer_norm(&x, &[3], Some(&ln.weight.var()), Some(&ln.bias.var()), 1e-5);
    assert_eq!(f.value().to_vec::<f32>(), ln.forward(&x).value().to_vec::<f32>());

    let emb = Embedding::new(6, 2, &mut g);
    let ids = Tensor::from([[5i64, 0, 3]]);
    assert_eq!(
        functional::embedding(&ids, &emb.weight.var()).value().to_vec::<f32>(),
        emb.lookup(&ids).value().to_vec::<f32>()
    );
}

#[test]
fn batch_norm_equals_the_layers_in_both_modes() {
    let mut g = Generator::new(2);
    let x = Var::constant(Tensor::randn_with(&[4, 3, 2, 2], DType::F32, &mut g));
    let bn = BatchNorm2d::new(3);
    bn.weight.set_value(Tensor::from([0.5f32, 1.0, 2.0]));
    let (mean, var) = (Buffer::new(Tensor::zeros(&[3])), Buffer::new(Tensor::ones(&[3])));
    let train = BatchNormOptions { training: true, ..BatchNormOptions::default() };
    let (w, b) = (bn.weight.var(), bn.bias.var());
    let f = functional::batch_norm(&x, Some((&mean, &var)), Some(&w), Some(&b), &train);
    assert_eq!(f.value().to_vec::<f32>(), bn.forward(&x).value().to_vec::<f32>());
    assert_eq!(mean.value().to_vec::<f32>(), bn.running_mean.value().to_vec::<f32>());
    assert_eq!(var.value().to_vec::<f32>(), bn.running_var.value().to_vec::<f32>());
    bn.eval();
    let eval = BatchNormOptions::default();
    let f = functional::batch_norm(&x, Some((&mean, &var)), Some(&w), Some(&b), &eval);
    assert_eq!(f.value().to_vec::<f32>(), bn.forward(&x).value().to_vec::<f32>());
    // evaluation leaves the statistics alone
    assert_eq!(mean.value().to_vec::<f32>(), bn.running_mean.value().to_vec::<f32>());
    // without running statistics it always uses the batch's (F.batch_norm(x, None, None, training=True))
    let no_stats = functional::batch_norm(&x, None, None, None, &train);
    assert!(no_stats.value().mean(&[0, 2, 3], false).abs().max_all().item() < 1e-5);
}

#[test]
fn dropout_equals_the_layer_with_the_same_generator() {
    let x = Var::constant(Tensor::ones(&[64]));
    let layer = Dropout::new(0.25, 9);
    let f = functional::dropout(&x, 0.25, &mut Generator::new(9));
    assert_eq!(f.value().to_vec::<f32>(), layer.forward(&x).value().to_vec::<f32>());
    assert_eq!(functional::dropout(&x, 0.0, &mut Generator::new(0)).value().to_vec::<f32>(), vec![1.0; 64]);
}

#[test]
fn functional_gradients_check() {
    let mut g = Generator::new(3);
    let opts = GradcheckOptions::default();
    let inputs = [randn(&[3, 4], &mut g), randn(&[2, 4], &mut g), randn(&[2], &mut g)];
    gradcheck(|v| functional::linear(&v[0], &v[1], Some(&v[2])), &inputs, opts).unwrap();
    let inputs = [randn(&[2, 3, 4], &mut g), randn(&[3, 4], &mut g), randn(&[3, 4], &mut g)];
    gradcheck(|v| functional::layer_norm(&v[0], &[3, 4], Some(&v[1]), Some(&v[2]), 1e-5), &inputs, opts)
        .unwrap();
    let train = BatchNormOptions { training: true, ..BatchNormOptions::default() };
    let inputs = [randn(&[4, 2, 3], &mut g), randn(&[2], &mut g), randn(&[2], &mut g)];
    gradcheck(|v| functional::batch_norm(&v[0], None, Some(&v[1]), Some(&v[2]), &train), &inputs, opts)
        .unwrap();
    let ids = Tensor::from([2i64, 0, 2]);
    gradcheck(|v| functional::embedding(&ids, &v[0]), &[randn(&[3, 2], &mut g)], opts).unwrap();
}

#[test]
#[should_panic(
    expected = "linear: expected input [.., in], weight [out, in] and bias [out], got [2, 3], [4, 2] and None"
)]
fn linear_names_the_shapes() {
    functional::linear(&Var::constant(Tensor::zeros(&[2, 3])), &Var::constant(Tensor::zeros(&[4, 2])), None);
}

#[test]
#[should_panic(expected = "batch_norm: expected weight of shape [3] for input [2, 3], got [2]")]
fn batch_norm_names_the_shapes() {
    let x = Var::constant(Tensor::zeros(&[2, 3]));
    functional::batch_norm(
        &x,
        None,
        Some(&Var::constant(Tensor::zeros(&[2]))),
        None,
        &BatchNormOptions::default(),
    );
}

/// The layers print as PyTorch prints them (its strings, with sinew's type names).
#[test]
fn module_trees_print_like_pytorch() {
    let mut g = Generator::new(0);
    let conv = Conv2d::new(1, 6, 5, Conv2dOptions::default().padding(2), &mut g);
    assert_eq!(conv.to_string(), "Conv2d(1, 6, kernel_size=(5, 5), stride=(1, 1), padding=(2, 2))");
    let lin = Linear::new(4, 2, &mut g);
    assert_eq!(lin.to_string(), "Linear(in_features=4, out_features=2, bias=True)");
    let net = Sequential::new()
        .add(Conv2d::new(1, 6, 5, Conv2dOptions::default(), &mut g))
        .add(Relu)
        .add(MaxPool2d::new(2))
        .add(BatchNorm2d::new(6))
        .add(Flatten::default())
        .add(Sequential::new().add(Linear::new(96, 10, &mut g)).add(Dropout::new(0.5, 0)));
    let want = "\
Sequential(
  (0): Conv2d(1, 6, kernel_size=(5, 5), stride=(1, 1))
  (1): Relu()
  (2): MaxPool2d(kernel_size=2, stride=2, padding=0)
  (3): BatchNorm2d(6, eps=0.00001, momentum=0.1)
  (4): Flatten(start_dim=1, end_dim=-1)
  (5): Sequential(
    (0): Linear(in_features=96, out_features=10, bias=True)
    (1): Dropout(p=0.5)
  )
)";
    assert_eq!(net.to_string(), want);
    assert_eq!(net.tree().to_string(), want);
    // a module with children and its own configuration lists both
    let lstm = Lstm::new(3, 5, RecurrentOptions::default().num_layers(2), &mut g);
    assert_eq!(lstm.tree().to_string(), "Lstm(3, 5, num_layers=2)");
    assert_eq!(BatchNorm1d::new(4).tree().to_string(), "BatchNorm1d(4, eps=0.00001, momentum=0.1)");
}

/// `Sequential::summary` leaves running statistics and dropout generators as they were.
#[test]
fn summary_has_no_side_effects_and_prints_a_table() {
    let mut g = Generator::new(5);
    let net = Sequential::new()
        .add(Linear::new(3, 4, &mut g))
        .add(BatchNorm1d::new(4))
        .add(Dropout::new(0.5, 1))
        .add(Linear::new(4, 1, &mut g));
    let before = net.state_dict();
    let generators = net.generator_states();
    let s = net.summary(&[8, 3]);
    for ((n, a), (_, b)) in before.iter().zip(net.state_dict()) {
        assert_eq!(a.to_vec::<f64>(), b.to_vec::<f64>(), "{n} changed");
    }
    assert_eq!(net.generator_states(), generators);
    assert_eq!(s.output_shape, Some(vec![8, 1]));
    assert_eq!(s.trainable_params, 16 + 8 + 5);
    assert_eq!(s.non_trainable_params, 4 + 4 + 1);
    assert_eq!(s.total_params, 16 + 8 + 5 + 9);
    assert_eq!(s.param_bytes, 29 * 4);
    // input 8×3, then the four layers' outputs 8×4, 8×4, 8×4, 8×1, in f32
    assert_eq!(s.activation_bytes, Some((24 + 32 * 3 + 8) * 4));
    let table = s.to_string();
    assert!(table.starts_with("Model: Sequential, input [8, 3]\n"), "{table}");
    let bn_row = table.lines().find(|l| l.starts_with("1 ")).unwrap();
    let cells: Vec<&str> = bn_row.split("  ").map(str::trim).filter(|c| !c.is_empty()).collect();
    assert_eq!(cells, ["1", "BatchNorm1d(4, eps=0.00001, momentum=0.1)", "[8, 4]", "8"], "{table}");
    assert!(
        table.ends_with(
            "Total params: 38 (156 B)\nTrainable params: 29 (116 B)\nNon-trainable params: 9 (40 B)\n\
             Output: [8, 1]   Activations: 512 B (one forward pass)"
        ),
        "{table}"
    );
}

#[test]
fn inference_on_few_rows_uses_the_cached_transpose_and_follows_updates() {
    use sinew_autograd::no_grad;
    let mut g = sinew_tensor::Generator::new(3);
    let layer = Linear::new(7, 5, &mut g);
    for rows in [1usize, 2, 16, 31, 32, 40] {
        for shape in [vec![rows, 7], vec![1, rows, 7]] {
            let x = Var::constant(Tensor::randn_with(&shape, sinew_tensor::DType::F32, &mut g));
            let graph = layer.forward(&x);
            let inference = no_grad(|| layer.forward(&x));
            assert_eq!(inference.dims(), graph.dims());
            assert!(inference.value().allclose(graph.value(), 1e-6, 1e-6), "{shape:?}");
        }
    }
    // a write to the weight (an optimizer's step, a load) replaces the cached transpose
    let x = Var::constant(Tensor::randn_with(&[4, 7], sinew_tensor::DType::F32, &mut g));
    let before = no_grad(|| layer.forward(&x)).value().clone();
    {
        let mut w = layer.weight.value_mut();
        *w = w.mul_scalar(2.0);
    }
    let after = no_grad(|| layer.forward(&x));
    assert!(after.value().allclose(layer.forward(&x).value(), 1e-6, 1e-6));
    assert!(!after.value().allclose(&before, 1e-3, 1e-3));
}

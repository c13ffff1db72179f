//! `summary_with_input` against the model itself, for every layer type: each row's
//! parameter count is what `parameters()` of that submodule counts, and each row's output
//! shape is what the layer returns in a real forward pass (run here by hand, layer by
//! layer, on random data in training mode).

use sinew_autograd::Var;
use sinew_nn::{
    AdaptiveAvgPool2d, AvgPool2d, BatchNorm1d, BatchNorm2d, Conv1d, Conv2d, ConvTranspose2d, Dropout, Elu,
    Embedding, Flatten, Forward, Gelu, GeluTanh, Gru, Identity, LayerNorm, LeakyRelu, Linear, LogSoftmax,
    Lstm, MaxPool2d, Module, MultiheadAttention, MultiheadAttentionOptions, RecurrentOptions, Relu, Rnn,
    RnnNonlinearity, Sequential, Sigmoid, Silu, Softmax, Softplus, Summary, Tanh, summary_with_input,
};
use sinew_tensor::{Conv1dOptions, Conv2dOptions, DType, Generator, Tensor};

/// Every row's parameter and buffer counts are its submodule's own, found by name.
fn check_counts(model: &dyn Module, s: &Summary) {
    let params = model.named_parameters();
    let buffers = model.named_buffers();
    let under = |name: &str, n: &str| n.strip_prefix(name).is_some_and(|rest| rest.starts_with('.'));
    for row in &s.rows {
        let p: usize = params.iter().filter(|(n, _)| under(&row.name, n)).map(|(_, p)| p.numel()).sum();
        let b: usize =
            buffers.iter().filter(|(n, _)| under(&row.name, n)).map(|(_, b)| b.value().numel()).sum();
        assert_eq!(row.params, p, "{}: params", row.name);
        assert_eq!(row.buffers, b, "{}: buffers", row.name);
    }
    assert_eq!(s.trainable_params, model.num_parameters());
    assert_eq!(s.total_params, s.trainable_params + s.non_trainable_params);
}

/// The chain nested in [`image_model`] as its layer 14.
fn inner_chain(g: &mut Generator) -> Sequential {
    Sequential::new()
        .add(Linear::new(10, 8, g))
        .add(BatchNorm1d::new(8))
        .add(GeluTanh)
        .add(Silu)
        .add(Elu::default())
        .add(LeakyRelu::default())
        .add(Softplus::default())
        .add(Sigmoid)
        .add(Identity)
}

fn image_model(g: &mut Generator) -> Sequential {
    let same = Conv2dOptions::default().padding(1);
    Sequential::new()
        .add(Conv2d::new(1, 4, 3, same, g))
        .add(BatchNorm2d::new(4))
        .add(Relu)
        .add(MaxPool2d::new(2))
        .add(Conv2d::new(4, 6, 3, Conv2dOptions::default(), g))
        .add(Tanh)
        .add(ConvTranspose2d::new(6, 3, 2, Conv2dOptions::default().stride(2), g))
        .add(AvgPool2d::new(2))
        .add(AdaptiveAvgPool2d::new([2, 3]))
        .add(Flatten::new())
        .add(Dropout::new(0.25, 7))
        .add(Linear::new(18, 10, g))
        .add(LayerNorm::new(&[10]))
        .add(Gelu)
        .add(inner_chain(g))
        .add(Linear::new(8, 3, g))
        .add(Softmax { dim: 1 })
        .add(LogSoftmax { dim: 1 })
}

#[test]
fn an_image_model_of_every_feed_forward_layer() {
    let mut g = Generator::new(11);
    let net = image_model(&mut g);
    let shape = [2, 1, 12, 12];
    let s = summary_with_input(&net, &shape);
    check_counts(&net, &s);
    // the real forward, layer by layer, and the nested chain's layers on its input (a copy
    // of it: shapes do not depend on the weights)
    let mut x = Var::constant(Tensor::randn_with(&shape, DType::F32, &mut g));
    let mut want: Vec<(String, Vec<usize>)> = Vec::new();
    for (i, layer) in net.layers().enumerate() {
        let y = layer.forward(&x);
        want.push((i.to_string(), y.dims().to_vec()));
        if i == 14 {
            let mut h = x.clone();
            for (j, l) in inner_chain(&mut Generator::new(0)).layers().enumerate() {
                h = l.forward(&h);
                want.push((format!("14.{j}"), h.dims().to_vec()));
            }
        }
        x = y;
    }
    let got: Vec<(String, Vec<usize>)> = s
        .rows
        .iter()
        .map(|r| (r.name.clone(), r.output_shape.clone().expect("every layer reports")))
        .collect();
    assert_eq!(got, want);
    assert_eq!(s.output_shape, Some(vec![2, 3]));
    println!("{s}");
}

/// A model of the sequence layers, wired by hand (no Sequential).
#[derive(Module)]
struct Sequences {
    embed: Embedding,
    conv: Conv1d,
    bn: BatchNorm1d,
    rnn: Rnn,
    lstm: Lstm,
    gru: Gru,
    attention: MultiheadAttention,
    head: Linear,
}

impl Forward for Sequences {
    fn forward(&self, ids: &Var) -> Var {
        let e = self.embed.forward(ids); // (N, T, 6)
        let c = self.bn.forward(&self.conv.forward(&e.transpose(1, 2))); // (N, 6, T)
        let h = self.rnn.forward(&c.transpose(1, 2)); // batch first: (N, T, 5)
        let h = self.lstm.forward(&h); // (N, T, 2·4)
        let h = self.gru.forward(&h); // (N, T, 8)
        let a = self.attention.forward(&h);
        self.head.forward(&a)
    }
}

#[test]
fn a_sequence_model_wired_by_hand() {
    let mut g = Generator::new(12);
    let bf = RecurrentOptions::default().batch_first(true);
    let net = Sequences {
        embed: Embedding::new(20, 6, &mut g),
        conv: Conv1d::new(6, 6, 3, Conv1dOptions { padding: 1, ..Conv1dOptions::default() }, &mut g),
        bn: BatchNorm1d::new(6),
        rnn: Rnn::new(6, 5, RnnNonlinearity::Tanh, bf, &mut g),
        lstm: Lstm::new(5, 4, bf.num_layers(2).bidirectional(true), &mut g),
        gru: Gru::new(8, 8, bf, &mut g),
        attention: MultiheadAttention::new(
            8,
            2,
            MultiheadAttentionOptions::default().batch_first(true),
            &mut g,
        ),
        head: Linear::new(8, 3, &mut g),
    };
    let s = summary_with_input(&net, &[2, 7]);
    check_counts(&net, &s);
    let ids = Var::constant(Tensor::rand_int_with(&[2, 7], 0, 20, &mut g).to_dtype(DType::F32));
    let e = net.embed.forward(&ids);
    let conv = net.conv.forward(&e.transpose(1, 2));
    let bn = net.bn.forward(&conv);
    let rnn = net.rnn.forward(&bn.transpose(1, 2));
    let lstm = net.lstm.forward(&rnn);
    let gru = net.gru.forward(&lstm);
    let att = net.attention.forward(&gru);
    let head = net.head.forward(&att);
    let real: Vec<(&str, Option<&[usize]>)> = vec![
        ("embed", Some(e.dims())),
        ("conv", Some(conv.dims())),
        ("bn", Some(bn.dims())),
        ("rnn", Some(rnn.dims())),
        ("lstm", Some(lstm.dims())),
        ("gru", Some(gru.dims())),
        ("attention", Some(att.dims())),
        // the attention applies its output projection's weights itself, without calling
        // the Linear (as PyTorch's nn.MultiheadAttention does: a hook there never fires)
        ("attention.out_proj", None),
        ("head", Some(head.dims())),
    ];
    assert_eq!(s.rows.len(), real.len());
    for (row, (name, dims)) in s.rows.iter().zip(&real) {
        assert_eq!(row.name, *name);
        assert_eq!(row.output_shape.as_deref(), *dims, "{name}");
    }
    assert_eq!(s.output_shape, Some(vec![2, 7, 3]));
    println!("{s}");
}

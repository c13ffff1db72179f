//! The workloads of `benches/torch_workloads.py` (the anchors of
//! `shared/anchors/bench_torch.py` and issue 13's modern ones, BERT inference and GPT-2
//! generation), built once for the
//! `workloads` runner, the `training` criterion bench and the `workload_parity` check:
//! the same shapes, data sizes and hyperparameters. A training step is forward, loss,
//! backward and optimizer step, in f32 (gradients are returned, never accumulated, so
//! there is no zero-grad); an inference step is one forward without a graph.

use sinew_autograd::{Var, no_grad};
use sinew_models::bert::{BertConfig, BertInput, BertModel};
use sinew_models::gpt2::{GenerateOptions, Gpt2Config, Gpt2LMHeadModel};
use sinew_nn::loss::{CrossEntropyOptions, Reduction, cross_entropy, mse_loss};
use sinew_nn::{
    BatchNorm2d, Conv2d, Flatten, Forward, Linear, Lstm, MaxPool2d, Module, RecurrentOptions, Relu,
    Sequential,
};
use sinew_optim::{Adam, Optimizer, Sgd};
use sinew_tensor::{Conv2dOptions, DType, Generator, Tensor};

/// One workload: its name in `torch_workloads.py`, the steps per timed repetition there,
/// and a closure that runs one step (owning its model, optimizer and data).
pub struct Workload {
    pub name: &'static str,
    #[allow(dead_code)] // read by the `workloads` runner; criterion picks its own counts
    pub iters: usize,
    pub step: Box<dyn FnMut()>,
}

/// A training step: `loss(model(x), y)`, backward, then the update.
fn train_step<M: Forward + 'static>(
    model: M,
    mut opt: impl Optimizer + 'static,
    x: Tensor,
    y: Tensor,
    loss: fn(&Var, &Tensor) -> Var,
) -> Box<dyn FnMut()> {
    Box::new(move || {
        let loss = loss(&model.forward(&Var::constant(x.clone())), &y);
        let grads = loss.backward();
        drop(loss); // free the graph first, so the step updates parameters in place
        opt.step(&grads);
    })
}

/// An inference step: one forward without a graph.
fn infer_step<M: Forward + 'static>(model: M, x: Tensor) -> Box<dyn FnMut()> {
    model.eval();
    let x = Var::constant(x);
    Box::new(move || {
        std::hint::black_box(no_grad(|| model.forward(&x)));
    })
}

/// Mean cross entropy of `(N, C)` logits against `(N)` class ids.
pub fn classify_loss(logits: &Var, y: &Tensor) -> Var {
    cross_entropy(logits, y, &CrossEntropyOptions::default())
}

/// Mean cross entropy over every position of `(B, T, V)` logits against `(B, T)` ids.
pub fn gpt_loss(logits: &Var, y: &Tensor) -> Var {
    let v = logits.dims()[2];
    classify_loss(&logits.reshape_infer(&[-1, v as isize]), &y.reshape_infer(&[-1]))
}

#[derive(Module)]
pub struct LstmClassifier {
    l: Lstm,
    o: Linear,
}

impl Forward for LstmClassifier {
    fn forward(&self, x: &Var) -> Var {
        let out = self.l.forward(x);
        self.o.forward(&out.select(1, out.dims()[1] - 1))
    }
}

/// LSTM in 32, hidden 128, batch first; the last step's hidden state to 10 classes.
pub fn lstm_classifier(g: &mut Generator) -> LstmClassifier {
    LstmClassifier {
        l: Lstm::new(32, 128, RecurrentOptions::default().batch_first(true), g),
        o: Linear::new(128, 10, g),
    }
}

/// The 784-512-256-10 ReLU MLP.
pub fn mlp(g: &mut Generator) -> Sequential {
    Sequential::new()
        .add(Linear::new(784, 512, g))
        .add(Relu)
        .add(Linear::new(512, 256, g))
        .add(Relu)
        .add(Linear::new(256, 10, g))
}

/// LeNet-5 on 1×28×28.
pub fn lenet(g: &mut Generator) -> Sequential {
    Sequential::new()
        .add(Conv2d::new(1, 6, 5, Conv2dOptions::default().padding(2), g))
        .add(Relu)
        .add(MaxPool2d::new(2))
        .add(Conv2d::new(6, 16, 5, Conv2dOptions::default(), g))
        .add(Relu)
        .add(MaxPool2d::new(2))
        .add(Flatten::new())
        .add(Linear::new(400, 120, g))
        .add(Relu)
        .add(Linear::new(120, 84, g))
        .add(Relu)
        .add(Linear::new(84, 10, g))
}

/// The CIFAR-size CNN: two conv–BN–ReLU pairs at 32 and at 64 channels, each pair
/// followed by a 2×2 max pool, then Linear(4096, 10).
pub fn cifar_cnn(g: &mut Generator) -> Sequential {
    let mut net = Sequential::new();
    for (i, (cin, cout)) in [(3, 32), (32, 32), (32, 64), (64, 64)].into_iter().enumerate() {
        net = net
            .add(Conv2d::new(cin, cout, 3, Conv2dOptions::default().padding(1), g))
            .add(BatchNorm2d::new(cout))
            .add(Relu);
        if i % 2 == 1 {
            net = net.add(MaxPool2d::new(2));
        }
    }
    net.add(Flatten::new()).add(Linear::new(4096, 10, g))
}

/// The character-level GPT, sinew-models' GPT-2 as nanoGPT's model is configured in
/// `torch_workloads.py`: vocabulary 65, context 64, width 128, 4 heads, 2 pre-norm blocks,
/// MLP 512 with exact GELU, an untied head with bias, no dropout. Its input is `(B, T)`
/// token ids (`i64`).
pub struct CharGpt(pub Gpt2LMHeadModel);

/// The character GPT's configuration.
pub fn char_gpt_config() -> Gpt2Config {
    Gpt2Config::from_json(
        r#"{"vocab_size": 65, "n_positions": 64, "n_embd": 128, "n_layer": 2, "n_head": 4,
            "activation_function": "gelu", "tie_word_embeddings": false, "lm_head_bias": true,
            "resid_pdrop": 0.0, "embd_pdrop": 0.0, "attn_pdrop": 0.0}"#,
    )
    .expect("a valid configuration")
}

/// The character GPT, initialised as Hugging Face initialises a GPT-2.
pub fn gpt(g: &mut Generator) -> CharGpt {
    CharGpt(Gpt2LMHeadModel::new(&char_gpt_config(), g))
}

impl Module for CharGpt {
    fn visit(&self, v: &mut dyn sinew_nn::Visitor) {
        self.0.visit(v);
    }
}

impl Forward for CharGpt {
    /// Logits `(B, T, vocabulary)` of `(B, T)` ids.
    fn forward(&self, ids: &Var) -> Var {
        self.0.logits(ids.value()).expect("ids within the vocabulary and context")
    }
}

/// The GPT's batch: 32 random sequences of 64 ids and their random targets.
pub fn gpt_batch(g: &mut Generator) -> (Tensor, Tensor) {
    (Tensor::rand_int_with(&[32, 64], 0, 65, g), Tensor::rand_int_with(&[32, 64], 0, 65, g))
}

/// Every workload, in `torch_workloads.py`'s order.
pub fn training_workloads() -> Vec<Workload> {
    let mut g = Generator::new(0);
    let mut all = Vec::new();

    // 1. the design document's linear regression: one step on 32 rows
    let m = Linear::new(1, 1, &mut g);
    let mut opt = Sgd::new(m.parameters(), 0.01);
    let x = Tensor::rand_with(&[32, 1], DType::F32, &mut g);
    let y = &(&x * 3.0) + &Tensor::rand_with(&[32, 1], DType::F32, &mut g);
    let (xv, yv) = (Var::constant(x), Var::constant(y));
    let step = Box::new(move || {
        let grads = mse_loss(&m.forward(&xv), &yv, Reduction::Mean).backward();
        opt.step(&grads);
    });
    all.push(Workload { name: "linreg_step_b32", iters: 2000, step });

    // 2. MLP 784-512-256-10, batch 128, cross entropy; SGD with momentum, then Adam
    let x = Tensor::randn_with(&[128, 784], DType::F32, &mut g);
    let y = Tensor::rand_int_with(&[128], 0, 10, &mut g);
    let model = mlp(&mut g);
    let sgd = Sgd::momentum(model.parameters(), 0.01, 0.9);
    let step = train_step(model, sgd, x.clone(), y.clone(), classify_loss);
    all.push(Workload { name: "mlp_784_512_256_10_b128_sgd", iters: 30, step });
    let model = mlp(&mut g);
    let adam = Adam::new(model.parameters(), 1e-3);
    let step = train_step(model, adam, x, y, classify_loss);
    all.push(Workload { name: "mlp_784_512_256_10_b128_adam", iters: 30, step });

    // 3. LeNet-5, 1x28x28, batch 64, SGD with momentum
    let model = lenet(&mut g);
    let x = Tensor::randn_with(&[64, 1, 28, 28], DType::F32, &mut g);
    let y = Tensor::rand_int_with(&[64], 0, 10, &mut g);
    let sgd = Sgd::momentum(model.parameters(), 0.01, 0.9);
    all.push(Workload {
        name: "lenet5_b64_sgd",
        iters: 10,
        step: train_step(model, sgd, x, y, classify_loss),
    });

    // 4. LSTM: 32 steps, batch 32, input 32, hidden 128, classify the last step, Adam
    let model = lstm_classifier(&mut g);
    let x = Tensor::randn_with(&[32, 32, 32], DType::F32, &mut g);
    let y = Tensor::rand_int_with(&[32], 0, 10, &mut g);
    let adam = Adam::new(model.parameters(), 1e-3);
    let step = train_step(model, adam, x, y, classify_loss);
    all.push(Workload { name: "lstm_t32_b32_h128_adam", iters: 10, step });

    // 5. the character GPT, Adam lr 3e-4
    let model = gpt(&mut g);
    let (x, y) = gpt_batch(&mut g);
    let adam = Adam::new(model.parameters(), 3e-4);
    let step = train_step(model, adam, x, y, gpt_loss);
    all.push(Workload { name: "gpt_char_l2_d128_h4_t64_b32_adam", iters: 3, step });

    // 6. the CIFAR-size CNN with batch norm, SGD with momentum
    let model = cifar_cnn(&mut g);
    let x = Tensor::randn_with(&[64, 3, 32, 32], DType::F32, &mut g);
    let y = Tensor::rand_int_with(&[64], 0, 10, &mut g);
    let sgd = Sgd::momentum(model.parameters(), 0.01, 0.9);
    all.push(Workload {
        name: "cnn_cifar_bn_b64_sgd",
        iters: 3,
        step: train_step(model, sgd, x, y, classify_loss),
    });

    // 7. the MLP at other batch sizes
    for (name, batch, iters) in
        [("mlp_sgd_b32", 32, 30), ("mlp_sgd_b512", 512, 10), ("mlp_sgd_b1024", 1024, 5)]
    {
        let model = mlp(&mut g);
        let x = Tensor::randn_with(&[batch, 784], DType::F32, &mut g);
        let y = Tensor::rand_int_with(&[batch], 0, 10, &mut g);
        let sgd = Sgd::momentum(model.parameters(), 0.01, 0.9);
        all.push(Workload { name, iters, step: train_step(model, sgd, x, y, classify_loss) });
    }

    // 8. one-row inference: per-call latency
    let x = Tensor::randn_with(&[1, 784], DType::F32, &mut g);
    all.push(Workload { name: "mlp_infer_b1", iters: 2000, step: infer_step(mlp(&mut g), x) });
    let x = Tensor::randn_with(&[1, 32, 32], DType::F32, &mut g);
    all.push(Workload {
        name: "lstm_infer_b1_t32",
        iters: 200,
        step: infer_step(lstm_classifier(&mut g), x),
    });

    // 9. a pretrained encoder's inference: all-MiniLM-L6-v2's architecture (random
    // weights of its config), all tokens attended, tokenization excluded
    // (built on the first step, so that the other workloads' runs and peak memory do
    // not carry a 23M-parameter model)
    for (name, batch, len, iters) in
        [("bert_minilm_infer_b1_t16", 1, 16, 200), ("bert_minilm_infer_b32_t128", 32, 128, 3)]
    {
        let seed = g.int_in(0, i64::MAX) as u64;
        let mut model: Option<(BertModel, BertInput)> = None;
        let step = Box::new(move || {
            let (bert, input) = model.get_or_insert_with(|| {
                let mut g = Generator::new(seed);
                let bert = BertModel::new(&minilm_config(), true, &mut g);
                bert.eval();
                let ids = Tensor::rand_int_with(&[batch, len], 1, 30522, &mut g);
                (bert, BertInput::new(ids).with_attention_mask(Tensor::ones_dtype(&[batch, len], DType::I64)))
            });
            std::hint::black_box(no_grad(|| bert.forward(input)).expect("valid input"));
        });
        all.push(Workload { name, iters, step });
    }

    // 10. a GPT-2 language model's generation: 6 blocks, width 384, 6 heads, GPT-2's
    // vocabulary (tied head), random weights; 200 greedy tokens after an 8-token prompt,
    // with the key/value cache (built on the first step, as the BERT's)
    let seed = g.int_in(0, i64::MAX) as u64;
    let mut model: Option<(Gpt2LMHeadModel, Vec<i64>)> = None;
    let step = Box::new(move || {
        let (gpt, prompt) = model.get_or_insert_with(|| {
            let mut g = Generator::new(seed);
            let gpt = Gpt2LMHeadModel::new(&generation_config(), &mut g);
            gpt.eval();
            (gpt, Tensor::rand_int_with(&[8], 0, 50257, &mut g).to_vec::<i64>())
        });
        let tokens = gpt.generate(&[prompt.as_slice()], &GenerateOptions::new(200)).expect("valid prompt");
        assert_eq!(tokens[0].len(), 200);
    });
    all.push(Workload { name: "gpt2_l6_d384_generate200_b1", iters: 1, step });
    all
}

/// The generation workload's GPT-2: 6 blocks, width 384, 6 heads, vocabulary 50257,
/// 1024 positions, the head tied to the token embedding.
pub fn generation_config() -> Gpt2Config {
    Gpt2Config::from_json(r#"{"n_layer": 6, "n_embd": 384, "n_head": 6}"#).expect("a valid configuration")
}

/// all-MiniLM-L6-v2's `config.json`: 6 layers, width 384, 12 heads, GELU.
pub fn minilm_config() -> BertConfig {
    BertConfig::from_json(
        r#"{"hidden_size": 384, "num_hidden_layers": 6, "num_attention_heads": 12, "intermediate_size": 1536}"#,
    )
    .expect("a valid configuration")
}

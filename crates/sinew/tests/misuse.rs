//! API misuse, as a new user writes it: every case is a panic whose message names the op
//! (and, for shape errors, the shapes), never an abort, a signal, a hang or an anonymous
//! `index out of bounds`. Each case runs under `catch_unwind` on the test's thread.

use std::panic::{AssertUnwindSafe, catch_unwind};

use sinew::autograd::Var;
use sinew::nn::loss::{CrossEntropyOptions, Reduction, cross_entropy, mse_loss};
use sinew::nn::{
    BatchNorm1d, Conv2d, Embedding, Forward, LayerNorm, Linear, Lstm, MultiheadAttention,
    MultiheadAttentionOptions, RecurrentOptions,
};
use sinew::optim::{Optimizer, Sgd};
use sinew::tensor::{Conv2dOptions, DType, Generator, Pool2dOptions, Tensor};

struct Case {
    name: &'static str,
    /// What the message must mention (case-insensitive): the op, and for shape errors a
    /// shape (`[`).
    needles: &'static [&'static str],
    run: Box<dyn FnOnce()>,
}

fn case(name: &'static str, needles: &'static [&'static str], run: impl FnOnce() + 'static) -> Case {
    Case { name, needles, run: Box::new(run) }
}

fn t(shape: &[usize]) -> Tensor {
    Tensor::ones(shape)
}

fn v(shape: &[usize]) -> Var {
    Var::leaf(Tensor::ones(shape))
}

fn ids(values: Vec<i64>) -> Tensor {
    let n = values.len();
    Tensor::from_vec(values, &[n]).unwrap()
}

fn cases() -> Vec<Case> {
    vec![
        case("reshape to another count", &["reshape", "["], || drop(t(&[2, 3]).reshape(&[4]))),
        case("matmul inner mismatch", &["matmul", "[2, 3]", "[4, 5]"], || {
            drop(t(&[2, 3]).matmul(&t(&[4, 5])))
        }),
        case("matmul of i64", &["matmul", "int64"], || {
            drop(Tensor::zeros_dtype(&[2, 2], DType::I64).matmul(&Tensor::zeros_dtype(&[2, 2], DType::I64)))
        }),
        case("add without broadcast", &["add", "[2, 3]", "[4]"], || drop(&t(&[2, 3]) + &t(&[4]))),
        case("where without broadcast", &["where", "["], || drop(t(&[2]).where_(&t(&[3]), &t(&[2])))),
        case("permute not a permutation", &["permute", "["], || drop(t(&[2, 3]).permute(&[0, 0]))),
        case("transpose out of range", &["transpose", "dimension"], || drop(t(&[2, 3]).transpose(0, 5))),
        case("narrow past the end", &["narrow", "["], || drop(t(&[2, 3]).narrow(1, 2, 5))),
        case("narrow overflowing", &["narrow"], || drop(t(&[2, 3]).narrow(1, usize::MAX, 2))),
        case("select out of range", &["select", "["], || drop(t(&[2, 3]).select(0, 9))),
        case("slice with step 0", &["slice", "step"], || drop(t(&[4]).slice(0, 0, 4, 0))),
        case("squeeze_dim out of range", &["squeeze", "dimension"], || drop(t(&[2]).squeeze_dim(3))),
        case("unsqueeze out of range", &["unsqueeze", "dimension"], || drop(t(&[2]).unsqueeze(5))),
        case("flatten start after end", &["flatten"], || drop(t(&[2, 3, 4]).flatten(2, 1))),
        case("split of size 0", &["split"], || drop(t(&[4]).split(0, 0))),
        case("split sizes that overflow", &["split", "["], || drop(t(&[4]).split_sizes(&[usize::MAX, 5], 0))),
        case("chunk into 0", &["chunk"], || drop(t(&[4]).chunk(0, 0))),
        case("cat of different ranks", &["cat", "["], || drop(Tensor::cat(&[&t(&[2, 3]), &t(&[3])], 0))),
        case("cat of nothing", &["cat"], || drop(Tensor::cat(&[], 0))),
        case("stack of different shapes", &["stack", "["], || drop(Tensor::stack(&[&t(&[2]), &t(&[3])], 0))),
        case("sum over a missing dim", &["sum", "dimension"], || drop(t(&[2]).sum(&[3], false))),
        case("softmax over a missing dim", &["softmax", "dimension"], || drop(t(&[2]).softmax(4))),
        case("item of many", &["item", "[2, 2]"], || {
            let _ = t(&[2, 2]).item();
        }),
        case("index_select out of range", &["index_select", "index 7"], || {
            drop(t(&[3, 2]).index_select(0, &ids(vec![7])))
        }),
        case("index_select with float ids", &["index_select", "int64"], || {
            drop(t(&[3, 2]).index_select(0, &t(&[1])))
        }),
        case("gather with a negative index", &["gather", "-1"], || {
            drop(t(&[2, 2]).gather(1, &Tensor::from_vec(vec![-1i64, 0, 0, 0], &[2, 2]).unwrap()))
        }),
        case("one_hot out of range", &["one_hot", "index 5"], || drop(ids(vec![5]).one_hot(3))),
        case("arange with step 0", &["arange", "step"], || drop(Tensor::arange(0.0, 1.0, 0.0))),
        case("arange with NaN bounds", &["arange"], || drop(Tensor::arange(0.0, f64::NAN, 1.0))),
        case("bernoulli p > 1", &["bernoulli", "1.5"], || {
            drop(Tensor::bernoulli_with(&[2], 1.5, DType::F32, &mut Generator::new(0)))
        }),
        case("rand_int empty range", &["rand_int", "range"], || {
            drop(Tensor::rand_int_with(&[2], 3, 3, &mut Generator::new(0)))
        }),
        case("conv2d channel mismatch", &["conv2d", "[1, 3, 8, 8]", "[4, 2, 3, 3]"], || {
            drop(t(&[1, 3, 8, 8]).conv2d(&t(&[4, 2, 3, 3]), None, Conv2dOptions::default()))
        }),
        case("conv2d on a 3-D input", &["conv2d", "4-d"], || {
            drop(t(&[3, 8, 8]).conv2d(&t(&[4, 3, 3, 3]), None, Conv2dOptions::default()))
        }),
        case("conv2d kernel larger than the input", &["conv2d", "kernel"], || {
            drop(t(&[1, 1, 2, 2]).conv2d(&t(&[1, 1, 3, 3]), None, Conv2dOptions::default()))
        }),
        case("conv2d stride 0", &["conv2d", "stride"], || {
            drop(t(&[1, 1, 4, 4]).conv2d(&t(&[1, 1, 3, 3]), None, Conv2dOptions::default().stride(0)))
        }),
        case("max_pool2d on a 2-D input", &["max_pool2d", "["], || {
            drop(t(&[4, 4]).max_pool2d(Pool2dOptions::new(2)))
        }),
        case("max_pool2d window larger than the input", &["max_pool2d", "output size"], || {
            drop(t(&[1, 1, 2, 2]).max_pool2d(Pool2dOptions::new(3)))
        }),
        case("lstm_cell shapes", &["lstm_cell", "["], || {
            drop(Tensor::lstm_cell(&t(&[2, 8]), &t(&[2, 4]), &t(&[2, 2])))
        }),
        case("backward of a non-scalar", &["backward", "[2, 3]"], || {
            drop(v(&[2, 3]).mul_scalar(2.0).backward())
        }),
        case("Var matmul mismatch", &["matmul", "[2, 3]", "[2, 3]"], || drop(v(&[2, 3]).matmul(&v(&[2, 3])))),
        case("Var reshape", &["reshape", "["], || drop(v(&[2, 3]).reshape(&[5]))),
        case("Linear with the wrong features", &["linear", "[4, 3]", "5"], || {
            let l = Linear::new(5, 2, &mut Generator::new(0));
            drop(l.forward(&v(&[4, 3])))
        }),
        case("Conv2d with the wrong channels", &["conv2d", "[1, 2, 8, 8]"], || {
            let c = Conv2d::new(3, 4, 3, Conv2dOptions::default(), &mut Generator::new(0));
            drop(c.forward(&v(&[1, 2, 8, 8])))
        }),
        case("Embedding id out of range", &["embedding", "10"], || {
            let e = Embedding::new(4, 2, &mut Generator::new(0));
            drop(e.forward(&Var::constant(ids(vec![10]))))
        }),
        case("Embedding with fractional float ids", &["embedding", "2.5"], || {
            let e = Embedding::new(4, 2, &mut Generator::new(0));
            drop(e.forward(&Var::constant(Tensor::from_vec(vec![1.0f32, 2.5], &[2]).unwrap())))
        }),
        case("BatchNorm with the wrong channels", &["batchnorm1d", "[2, 3]"], || {
            drop(BatchNorm1d::new(4).forward(&v(&[2, 3])))
        }),
        case("LayerNorm with the wrong trailing shape", &["layernorm", "[2, 3]"], || {
            drop(LayerNorm::new(&[4]).forward(&v(&[2, 3])))
        }),
        case("LSTM with the wrong input size", &["lstm", "[5, 2, 3]"], || {
            let l = Lstm::new(4, 8, RecurrentOptions::default(), &mut Generator::new(0));
            drop(l.forward(&v(&[5, 2, 3])))
        }),
        case("MultiheadAttention with the wrong width", &["attention", "[2, 5, 6]"], || {
            let m = MultiheadAttention::new(
                8,
                2,
                MultiheadAttentionOptions::default().batch_first(true),
                &mut Generator::new(0),
            );
            drop(m.forward(&v(&[2, 5, 6])))
        }),
        case("MultiheadAttention heads not dividing the width", &["multiheadattention", "3"], || {
            drop(MultiheadAttention::new(
                8,
                3,
                MultiheadAttentionOptions::default().batch_first(true),
                &mut Generator::new(0),
            ))
        }),
        case("cross_entropy class out of range", &["cross_entropy", "7"], || {
            drop(cross_entropy(&v(&[2, 3]), &ids(vec![0, 7]), &CrossEntropyOptions::default()))
        }),
        case("cross_entropy with float labels", &["cross_entropy", "int64"], || {
            drop(cross_entropy(&v(&[2, 3]), &t(&[2]), &CrossEntropyOptions::default()))
        }),
        case("cross_entropy batch mismatch", &["cross_entropy", "[2, 3]", "[3]"], || {
            drop(cross_entropy(&v(&[2, 3]), &ids(vec![0, 1, 2]), &CrossEntropyOptions::default()))
        }),
        case("mse_loss shape mismatch", &["mse_loss", "[2, 3]", "[3, 2]"], || {
            drop(mse_loss(&v(&[2, 3]), &v(&[3, 2]), Reduction::Mean))
        }),
        case("optimizer step with a gradient of the wrong shape", &["optimizer", "[3]", "[2]"], || {
            let p = sinew::autograd::Param::new("w", t(&[2]));
            let mut opt = Sgd::new(vec![p.clone()], 0.1);
            let mut g = sinew::autograd::Gradients::new();
            g.insert(p.id(), t(&[3]));
            opt.step(&g);
        }),
    ]
}

#[test]
fn every_misuse_panics_naming_the_op_and_shapes() {
    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {})); // hundreds of expected panics: keep the output readable
    let mut failures = Vec::new();
    let total = cases().len();
    for c in cases() {
        let result = catch_unwind(AssertUnwindSafe(c.run));
        let Err(err) = result else {
            failures.push(format!("{}: did not panic", c.name));
            continue;
        };
        let msg = err
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| err.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_default();
        let lower = msg.to_lowercase();
        let missing: Vec<_> = c.needles.iter().filter(|n| !lower.contains(&n.to_lowercase())).collect();
        if !missing.is_empty() {
            failures.push(format!("{}: message {msg:?} does not mention {missing:?}", c.name));
        }
    }
    std::panic::set_hook(hook);
    assert!(failures.is_empty(), "{} of {total} cases:\n{}", failures.len(), failures.join("\n"));
}

#[test]
fn an_f64_input_to_an_f32_layer_is_an_error_naming_both_dtypes() {
    let layer = Linear::new(2, 1, &mut Generator::new(0));
    let x = Var::constant(Tensor::from_vec(vec![1.0, 2.0], &[1, 2]).unwrap()); // f64: Rust's default
    let err = catch_unwind(AssertUnwindSafe(|| drop(layer.forward(&x)))).unwrap_err();
    let msg = err.downcast_ref::<String>().cloned().unwrap_or_default();
    assert!(msg.contains("matmul") && msg.contains("f32") && msg.contains("f64"), "{msg}");
    // binary ops too, unless one side is a 0-d scalar
    let a = Tensor::ones(&[2]);
    let b = Tensor::ones_dtype(&[2], DType::F64);
    assert!(a.try_add(&b).unwrap_err().to_string().contains("mixed float dtypes"));
    assert_eq!(a.try_add(&Tensor::scalar(1.0f64)).unwrap().dtype(), DType::F64);
    // an integer tensor with a float one still promotes, as in PyTorch
    assert_eq!(a.try_add(&Tensor::ones_dtype(&[2], DType::I64)).unwrap().dtype(), DType::F32);
}

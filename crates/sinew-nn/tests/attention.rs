//! Attention ([`scaled_dot_product_attention`], [`MultiheadAttention`]):
//! - parity with PyTorch (`tests/fixtures/attention.json`, plain and causal): output and
//!   the gradients of q, k, v, in f64 (1e-9 relative) and f32 (1e-4 relative);
//! - `gradcheck` in f64 over random small shapes, with no mask, a causal mask, a keep
//!   mask and an additive mask, for the function and for the layer (inputs and weights);
//! - masks: keep and additive masks agree, blocked keys get no weight, fully blocked
//!   queries give zeros and finite gradients;
//! - the layer against the same computation written out head by head;
//! - bad shapes panic with the layer and the shapes.

use proptest::prelude::*;
use serde_json::Value;
use sinew_autograd::{GradcheckOptions, Var, gradcheck};
use sinew_nn::{
    AttentionMask, Forward, Module, MultiheadAttention, MultiheadAttentionOptions,
    scaled_dot_product_attention,
};
use sinew_tensor::{DType, Generator, Tensor};
use sinew_testing::golden::{shape_of, tensor_of};

fn assert_close(what: &str, got: &Tensor, want: &Value, rtol: f64) {
    assert_eq!(got.dims(), &shape_of(want)[..], "{what}: shape");
    let want: Vec<f64> = want["data"].as_array().unwrap().iter().map(|d| d.as_f64().unwrap()).collect();
    for (i, (g, w)) in got.to_vec::<f64>().iter().zip(&want).enumerate() {
        assert!(
            (g - w).abs() <= rtol * w.abs().max(1.0),
            "{what} ({rtol}): element {i} is {g}, PyTorch says {w}"
        );
    }
}

#[test]
fn parity_with_pytorch() {
    let v: Value = serde_json::from_str(include_str!("../../../tests/fixtures/attention.json")).unwrap();
    let cases = v["cases"].as_array().unwrap();
    assert_eq!(cases.len(), 2);
    for case in cases {
        let name = case["name"].as_str().unwrap();
        assert_eq!(case["op"], "scaled_dot_product_attention");
        let causal = case["attrs"]["causal"].as_bool().unwrap();
        for (dtype, rtol) in [(DType::F64, 1e-9), (DType::F32, 1e-4)] {
            let input = |n: &str| {
                let spec = case["inputs"].as_array().unwrap().iter().find(|i| i["name"] == n).unwrap();
                Var::leaf(tensor_of(spec, dtype))
            };
            let (q, k, v) = (input("q"), input("k"), input("v"));
            let y = scaled_dot_product_attention(
                &q,
                &k,
                &v,
                AttentionMask { attn_mask: None, is_causal: causal },
            );
            assert_eq!(y.dtype(), dtype);
            assert_close(&format!("{name}: output"), y.value(), &case["output"], rtol);
            let grads = y.backward_with(&tensor_of(&case["cotangent"], dtype));
            for (n, x) in [("q", &q), ("k", &k), ("v", &v)] {
                assert_close(&format!("{name}: grad {n}"), grads.get(x).unwrap(), &case["grads"][n], rtol);
            }
        }
    }
}

fn randn(shape: &[usize], g: &mut Generator) -> Tensor {
    Tensor::randn_with(shape, DType::F64, g)
}

/// A random mask of `shape` of the given kind: `keep` (i64 0/1, at least one key kept
/// per query) or `additive` (f64, finite values and `-inf` blocks, same guarantee).
fn random_mask(kind: &str, shape: &[usize], g: &mut Generator) -> Option<Tensor> {
    let s = shape[shape.len() - 1];
    let u = Tensor::rand_with(shape, DType::F64, g).to_vec::<f64>();
    let keep: Vec<bool> = u.iter().enumerate().map(|(i, &x)| i % s == 0 || x < 0.6).collect();
    match kind {
        "keep" => Some(Tensor::from_vec(keep.iter().map(|&k| k as i64).collect(), shape).unwrap()),
        "additive" => {
            let bias = randn(shape, g).to_vec::<f64>();
            let data = keep.iter().zip(bias).map(|(&k, b)| if k { b } else { f64::NEG_INFINITY }).collect();
            Some(Tensor::from_vec(data, shape).unwrap())
        }
        _ => None,
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(8))]

    #[test]
    fn gradcheck_sdpa(
        b in 1usize..3, heads in 1usize..3, l in 1usize..5, s in 1usize..5, e in 1usize..5, ev in 1usize..4,
        mask in prop::sample::select(vec!["none", "causal", "keep", "additive"]), seed in 0u64..1000,
    ) {
        let mut g = Generator::new(seed);
        let inputs = [randn(&[b, heads, l, e], &mut g), randn(&[b, heads, s, e], &mut g), randn(&[b, heads, s, ev], &mut g)];
        let m = random_mask(mask, &[heads, l, s], &mut g);
        let f = |v: &[Var]| scaled_dot_product_attention(&v[0], &v[1], &v[2], AttentionMask { attn_mask: m.as_ref(), is_causal: mask == "causal" });
        let checked = gradcheck(f, &inputs, GradcheckOptions { seed, ..GradcheckOptions::default() });
        prop_assert!(checked.is_ok(), "{mask} {b}x{heads} l={l} s={s} e={e}: {}", checked.unwrap_err());
    }

    /// The layer's output and averaged attention weights, with respect to query, key,
    /// value and all four weights; self-attention (one input for all three) included.
    #[test]
    fn gradcheck_multihead_attention(
        n in 1usize..3, heads in 1usize..3, head_dim in 1usize..3, l in 1usize..4, s in 1usize..4,
        batch_first: bool, self_attention: bool,
        mask in prop::sample::select(vec!["none", "causal", "keep", "additive"]), seed in 0u64..1000,
    ) {
        let mut g = Generator::new(seed);
        let e = heads * head_dim;
        let s = if self_attention { l } else { s };
        let mha = MultiheadAttention::new(e, heads, MultiheadAttentionOptions::default().batch_first(batch_first), &mut g);
        mha.cast(DType::F64);
        let shape = |len: usize| if batch_first { vec![n, len, e] } else { vec![len, n, e] };
        let mut inputs = vec![randn(&shape(l), &mut g), randn(&shape(s), &mut g), randn(&shape(s), &mut g)];
        // non-zero biases, so that their gradients mean something
        inputs.extend(mha.parameters().iter().map(|p| &p.value().clone() + &randn(p.value().dims(), &mut g).mul_scalar(0.3)));
        let m = random_mask(mask, &[n * heads, l, s], &mut g);
        let f = |v: &[Var]| {
            let (q, k, val) = if self_attention { (&v[0], &v[0], &v[0]) } else { (&v[0], &v[1], &v[2]) };
            let (y, w) = mha.forward_qkv_with_weights(&v[3..], q, k, val, AttentionMask { attn_mask: m.as_ref(), is_causal: mask == "causal" });
            Var::cat(&[&y.reshape(&[y.numel()]), &w.reshape(&[w.numel()])], 0)
        };
        let checked = gradcheck(f, &inputs, GradcheckOptions { seed, ..GradcheckOptions::default() });
        prop_assert!(checked.is_ok(), "{mask} n={n} heads={heads} e={e} l={l} s={s}: {}", checked.unwrap_err());
    }
}

#[test]
fn keep_and_additive_masks_agree() {
    let mut g = Generator::new(1);
    let (q, k, v) = (randn(&[2, 3, 4], &mut g), randn(&[2, 5, 4], &mut g), randn(&[2, 5, 2], &mut g));
    let (q, k, v) = (Var::leaf(q), Var::leaf(k), Var::leaf(v));
    let keep = random_mask("keep", &[3, 5], &mut g).unwrap();
    let full = |x: f64| Tensor::full_dtype(&[], x, DType::F64);
    let additive = keep.eq_scalar(0.0).where_(&full(f64::NEG_INFINITY), &full(0.0));
    let a = scaled_dot_product_attention(&q, &k, &v, AttentionMask::from(&keep));
    let b = scaled_dot_product_attention(&q, &k, &v, AttentionMask::from(&additive));
    assert!(a.value().allclose(b.value(), 1e-12, 1e-12));
    // blocked keys have no influence: changing their values changes nothing
    let blocked_cols: Vec<usize> =
        (0..5).filter(|&j| (0..3).all(|i| keep.to_vec::<i64>()[i * 5 + j] == 0)).collect();
    let ga = a.sum_all().backward();
    let gv = ga.get(&v).unwrap();
    for j in blocked_cols {
        assert_eq!(gv.narrow(1, j, 1).abs().sum_all().item(), 0.0);
    }
    // causal and an explicit lower-triangular keep mask agree
    let tril = Tensor::from_vec((0..15).map(|i| (i % 5 <= i / 5) as i64).collect(), &[3, 5]).unwrap();
    let c1 = scaled_dot_product_attention(&q, &k, &v, AttentionMask::causal());
    let c2 = scaled_dot_product_attention(&q, &k, &v, AttentionMask::from(&tril));
    assert!(c1.value().allclose(c2.value(), 1e-12, 1e-12));
}

#[test]
fn fully_blocked_queries_give_zeros() {
    let mut g = Generator::new(2);
    let q = Var::leaf(randn(&[3, 4], &mut g));
    let k = Var::leaf(randn(&[2, 4], &mut g));
    let v = Var::leaf(randn(&[2, 4], &mut g));
    // query 1 may attend to nothing
    let keep = Tensor::from_vec(vec![1i64, 0, 0, 0, 1, 1], &[3, 2]).unwrap();
    let y = scaled_dot_product_attention(&q, &k, &v, AttentionMask::from(&keep));
    assert_eq!(y.value().select(0, 1).to_vec::<f64>(), vec![0.0; 4]);
    assert!(y.value().select(0, 0).allclose(&v.value().select(0, 0), 1e-12, 1e-12));
    let grads = y.square().sum_all().backward();
    for x in [&q, &k, &v] {
        assert!(!grads.get(x).unwrap().has_non_finite());
    }
    assert_eq!(grads.get(&q).unwrap().select(0, 1).to_vec::<f64>(), vec![0.0; 4]);
}

/// The layer equals the computation written out head by head from its parameters.
#[test]
fn multihead_attention_matches_head_by_head() {
    let mut g = Generator::new(3);
    let (e, heads, n, l, s) = (6, 3, 2, 4, 5);
    let mha = MultiheadAttention::new(e, heads, MultiheadAttentionOptions::default(), &mut g);
    mha.cast(DType::F64);
    // non-zero biases
    mha.in_proj_bias.set_value(randn(&[3 * e], &mut g));
    mha.out_proj.bias.as_ref().unwrap().set_value(randn(&[e], &mut g));
    let q = Var::constant(randn(&[l, n, e], &mut g));
    let kv = Var::constant(randn(&[s, n, e], &mut g));
    let keep = random_mask("keep", &[l, s], &mut g).unwrap();
    let (y, w) = mha.forward_qkv_with_attention(&q, &kv, &kv, AttentionMask::from(&keep));

    let wi = mha.in_proj_weight.value().to_dtype(DType::F64);
    let bi = mha.in_proj_bias.value().clone();
    let d = e / heads;
    let mut outs = Vec::new();
    let mut avgs = Vec::new();
    for b in 0..n {
        let (qb, kb) = (q.value().select(1, b), kv.value().select(1, b)); // (L, E), (S, E)
        let proj =
            |x: &Tensor, part: usize| &x.matmul(&wi.narrow(0, part * e, e).t()) + &bi.narrow(0, part * e, e);
        let (pq, pk, pv) = (proj(&qb, 0), proj(&kb, 1), proj(&kb, 2));
        let mut head_outs = Vec::new();
        let mut avg = Tensor::zeros_dtype(&[l, s], DType::F64);
        for h in 0..heads {
            let (qh, kh, vh) = (pq.narrow(1, h * d, d), pk.narrow(1, h * d, d), pv.narrow(1, h * d, d));
            let scores = qh.matmul(&kh.t()).mul_scalar(1.0 / (d as f64).sqrt());
            let blocked = Tensor::full_dtype(&[], f64::NEG_INFINITY, DType::F64);
            let p = keep.eq_scalar(0.0).where_(&blocked, &scores).softmax(-1);
            head_outs.push(p.matmul(&vh));
            avg = &avg + &p.mul_scalar(1.0 / heads as f64);
        }
        let cat = Tensor::cat(&head_outs.iter().collect::<Vec<_>>(), 1); // (L, E)
        let wo = mha.out_proj.weight.value().clone();
        outs.push(&cat.matmul(&wo.t()) + &mha.out_proj.bias.as_ref().unwrap().value());
        avgs.push(avg);
    }
    let avg = Tensor::stack(&avgs.iter().collect::<Vec<_>>(), 0); // (N, L, S)
    let want = Tensor::stack(&outs.iter().collect::<Vec<_>>(), 1); // (L, N, E)
    assert!(y.value().allclose(&want, 1e-12, 1e-12));
    assert!(w.value().allclose(&avg, 1e-12, 1e-12));

    // batch_first, the separate-projection path and self-attention agree with it
    let bf =
        MultiheadAttention::new(e, heads, MultiheadAttentionOptions::default().batch_first(true), &mut g);
    bf.cast(DType::F64);
    bf.load_state_dict(&mha.state_dict(), true).unwrap();
    let yb = bf.forward_qkv(
        &q.transpose(0, 1),
        &kv.transpose(0, 1),
        &kv.transpose(0, 1),
        AttentionMask::from(&keep),
    );
    assert!(yb.value().allclose(&y.value().transpose(0, 1), 1e-12, 1e-12));
    let x = Var::constant(randn(&[l, n, e], &mut g));
    let x2 = Var::constant(x.value().clone()); // same values, another variable
    let ys = mha.forward_qkv(&x, &x2, &x2, AttentionMask::none());
    assert!(mha.forward(&x).value().allclose(ys.value(), 1e-12, 1e-12));
    // unbatched (L, E) is a batch of one
    let (yu, wu) = mha.forward_qkv_with_attention(
        &q.select(1, 0),
        &kv.select(1, 0),
        &kv.select(1, 0),
        AttentionMask::from(&keep),
    );
    assert!(yu.value().allclose(&y.value().select(1, 0), 1e-12, 1e-12));
    assert_eq!(wu.dims(), &[l, s]);
}

#[test]
fn multihead_attention_parameters_follow_pytorch() {
    let mut g = Generator::new(4);
    let mha = MultiheadAttention::new(16, 4, MultiheadAttentionOptions::default(), &mut g);
    let named: Vec<(String, Vec<usize>)> =
        mha.named_parameters().into_iter().map(|(n, p)| (n, p.value().dims().to_vec())).collect();
    assert_eq!(
        named,
        [
            ("in_proj_weight".to_string(), vec![48, 16]),
            ("in_proj_bias".to_string(), vec![48]),
            ("out_proj.weight".to_string(), vec![16, 16]),
            ("out_proj.bias".to_string(), vec![16]),
        ]
    );
    // xavier_uniform on (3E, E): bound √(6 / (E + 3E))
    let bound = (6.0f64 / 64.0).sqrt();
    let w = mha.in_proj_weight.value().abs().max_all().item();
    assert!(w <= bound && w > 0.9 * bound);
    assert_eq!(mha.in_proj_bias.value().abs().sum_all().item(), 0.0);
    assert_eq!(mha.out_proj.bias.as_ref().unwrap().value().abs().sum_all().item(), 0.0);
    assert_eq!((mha.embed_dim(), mha.num_heads(), mha.head_dim()), (16, 4, 4));
    // need_weights=False: the same output, no weights
    let x = Var::constant(Tensor::ones(&[3, 2, 16]));
    let (with, weights) = mha.forward_qkv_with_attention(&x, &x, &x, AttentionMask::none());
    assert!(mha.forward_qkv(&x, &x, &x, AttentionMask::none()).value().allclose(with.value(), 0.0, 0.0));
    assert_eq!(weights.dims(), &[2, 3, 3]);
}

#[test]
#[should_panic(
    expected = "MultiheadAttention(embed_dim=8, num_heads=2): expected query of shape [L, N, 8] (or unbatched [L, 8]), got [5, 2, 6]"
)]
fn wrong_query_shape_panics() {
    let mha = MultiheadAttention::new(8, 2, MultiheadAttentionOptions::default(), &mut Generator::new(0));
    mha.forward(&Var::constant(Tensor::zeros(&[5, 2, 6])));
}

#[test]
#[should_panic(
    expected = "MultiheadAttention(embed_dim=8, num_heads=2, batch_first=True): expected key and value of shape [N, S, 8] for query of shape [2, 5, 8], got [3, 4, 8] and [3, 4, 8]"
)]
fn wrong_key_batch_panics() {
    let mha = MultiheadAttention::new(
        8,
        2,
        MultiheadAttentionOptions::default().batch_first(true),
        &mut Generator::new(0),
    );
    let (q, kv) = (Var::constant(Tensor::zeros(&[2, 5, 8])), Var::constant(Tensor::zeros(&[3, 4, 8])));
    mha.forward_qkv(&q, &kv, &kv, AttentionMask::none());
}

#[test]
#[should_panic(
    expected = "expected attn_mask of shape [5, 4], [4, 5, 4] or broadcastable to [2, 2, 5, 4], got [5, 5]"
)]
fn wrong_mask_shape_panics() {
    let mha = MultiheadAttention::new(
        8,
        2,
        MultiheadAttentionOptions::default().batch_first(true),
        &mut Generator::new(0),
    );
    let (q, kv) = (Var::constant(Tensor::zeros(&[2, 5, 8])), Var::constant(Tensor::zeros(&[2, 4, 8])));
    mha.forward_qkv(&q, &kv, &kv, AttentionMask::from(&Tensor::ones(&[5, 5])));
}

#[test]
#[should_panic(
    expected = "scaled_dot_product_attention: expected k of shape [.., S, 4] and v of shape [.., S, Ev] for q of shape [2, 3, 4], got [2, 5, 3] and [2, 5, 4]"
)]
fn sdpa_wrong_shapes_panic() {
    let z = |s: &[usize]| Var::constant(Tensor::zeros(s));
    scaled_dot_product_attention(&z(&[2, 3, 4]), &z(&[2, 5, 3]), &z(&[2, 5, 4]), AttentionMask::none());
}

#[test]
#[should_panic(
    expected = "scaled_dot_product_attention: attn_mask of shape [4, 4] does not broadcast to the scores [2, 3, 5]"
)]
fn sdpa_wrong_mask_panics() {
    let z = |s: &[usize]| Var::constant(Tensor::zeros(s));
    scaled_dot_product_attention(
        &z(&[2, 3, 4]),
        &z(&[2, 5, 4]),
        &z(&[2, 5, 4]),
        AttentionMask::from(&Tensor::ones(&[4, 4])),
    );
}

#[test]
#[should_panic(expected = "MultiheadAttention: embed_dim 10 must be divisible by num_heads 3")]
fn indivisible_heads_panic() {
    MultiheadAttention::new(10, 3, MultiheadAttentionOptions::default(), &mut Generator::new(0));
}

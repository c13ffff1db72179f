//! Every differentiable op passes `gradcheck` (and, where it has second derivatives,
//! `gradgradcheck`) in f64, under proptest over random shapes (size-1 and broadcast
//! dimensions included) and values kept away from kinks.

use proptest::prelude::*;
use sinew_autograd::{GradcheckOptions, Var, gradcheck, gradgradcheck};
use sinew_tensor::{Conv1dOptions, Conv2dOptions, DType, Generator, Pool2dOptions, Tensor};

const CASES: u32 = 12;

fn opts() -> GradcheckOptions {
    GradcheckOptions::default()
}

/// Standard normal values.
fn normal(shape: &[usize], seed: u64) -> Tensor {
    Tensor::randn_with(shape, DType::F64, &mut Generator::new(seed))
}

/// Values in `[0.5, 2)`: safe for log, sqrt, recip, pow bases.
fn positive(shape: &[usize], seed: u64) -> Tensor {
    Tensor::uniform_with(shape, 0.5, 2.0, DType::F64, &mut Generator::new(seed))
}

/// Values at least 0.2 away from 0 (relu, abs, leaky_relu, elu kinks).
fn away_from_zero(shape: &[usize], seed: u64) -> Tensor {
    let x = normal(shape, seed);
    &x + &(&x.sign() * 0.2)
}

/// Distinct values (a shuffled ramp), so max/min/maxpool have no ties.
fn distinct(shape: &[usize], seed: u64) -> Tensor {
    let n: usize = shape.iter().product();
    let mut v: Vec<f64> = (0..n).map(|i| i as f64 * 0.37 - n as f64 * 0.15).collect();
    Generator::new(seed).shuffle(&mut v);
    Tensor::from_vec(v, shape).unwrap()
}

fn shape(max_rank: usize) -> impl Strategy<Value = Vec<usize>> {
    proptest::collection::vec(1usize..4, 0..=max_rank)
}

fn nonscalar_shape(max_rank: usize) -> impl Strategy<Value = Vec<usize>> {
    proptest::collection::vec(1usize..4, 1..=max_rank)
}

/// Two shapes that broadcast together: each dimension is shared, or 1 on one side, and
/// either side may have fewer leading dimensions.
fn broadcast_pair() -> impl Strategy<Value = (Vec<usize>, Vec<usize>)> {
    proptest::collection::vec((1usize..4, 0u8..3), 0..4).prop_flat_map(|dims| {
        let a: Vec<usize> = dims.iter().map(|&(s, m)| if m == 1 { 1 } else { s }).collect();
        let b: Vec<usize> = dims.iter().map(|&(s, m)| if m == 2 { 1 } else { s }).collect();
        (0..=a.len(), 0..=b.len()).prop_map(move |(ca, cb)| (a[ca..].to_vec(), b[cb..].to_vec()))
    })
}

fn check1(f: impl Fn(&Var) -> Var, x: Tensor, second: bool) -> Result<(), TestCaseError> {
    gradcheck(|v| f(&v[0]), std::slice::from_ref(&x), opts())
        .map_err(|e| TestCaseError::fail(e.to_string()))?;
    if second {
        gradgradcheck(|v| f(&v[0]), &[x], opts()).map_err(|e| TestCaseError::fail(e.to_string()))?;
    }
    Ok(())
}

fn check2(f: impl Fn(&Var, &Var) -> Var, a: Tensor, b: Tensor, second: bool) -> Result<(), TestCaseError> {
    let inputs = [a, b];
    gradcheck(|v| f(&v[0], &v[1]), &inputs, opts()).map_err(|e| TestCaseError::fail(e.to_string()))?;
    if second {
        gradgradcheck(|v| f(&v[0], &v[1]), &inputs, opts())
            .map_err(|e| TestCaseError::fail(e.to_string()))?;
    }
    Ok(())
}

/// One proptest per group of unary ops over a shape and a seed.
macro_rules! unary_cases {
    ($($name:ident: $gen:ident, $second:expr, |$x:ident| $body:expr;)*) => {
        proptest! {
            #![proptest_config(ProptestConfig::with_cases(CASES))]
            $(
                #[test]
                fn $name(s in shape(3), seed in any::<u64>()) {
                    check1(|$x: &Var| $body, $gen(&s, seed), $second)?;
                }
            )*
        }
    };
}

unary_cases! {
    neg: normal, true, |x| x.neg();
    exp: normal, true, |x| x.exp();
    log: positive, true, |x| x.log();
    log1p: positive, true, |x| x.log1p();
    expm1: normal, true, |x| x.expm1();
    sqrt: positive, true, |x| x.sqrt();
    rsqrt: positive, true, |x| x.rsqrt();
    recip: positive, true, |x| x.recip();
    square: normal, true, |x| x.square();
    sin: normal, true, |x| x.sin();
    cos: normal, true, |x| x.cos();
    tanh: normal, true, |x| x.tanh();
    sigmoid: normal, true, |x| x.sigmoid();
    erf: normal, true, |x| x.erf();
    gelu: normal, true, |x| x.gelu();
    gelu_tanh: normal, true, |x| x.gelu_tanh();
    silu: normal, true, |x| x.silu();
    softplus: normal, true, |x| x.softplus(1.5, 20.0);
    softplus_linear_region: normal, true, |x| (x * 30.0).softplus(1.0, 20.0);
    relu: away_from_zero, true, |x| x.relu();
    abs: away_from_zero, true, |x| x.abs();
    leaky_relu: away_from_zero, true, |x| x.leaky_relu(0.1);
    elu: away_from_zero, true, |x| x.elu(0.7);
    clamp: away_from_zero, true, |x| x.clamp(Some(-0.5), Some(0.6));
    powf: positive, true, |x| x.powf(-1.7);
    powf_integer: normal, true, |x| x.powf(3.0);
    scalar_ops: normal, true, |x| (&(&(x * 3.0) + 1.5) - 0.25).div_scalar(2.0).rsub_scalar(1.0);
    sum_all: normal, true, |x| x.sum_all();
    mean_all: normal, true, |x| x.mean_all();
    max_all: distinct, true, |x| x.max_all();
    logsumexp_all: normal, true, |x| x.logsumexp(&[], false);
    norm2: away_from_zero, true, |x| x.norm(2.0, &[], false);
    norm3: away_from_zero, true, |x| x.norm(3.0, &[], false);
    contiguous_of_transpose: normal, true, |x| x.t().contiguous().square();
    flatten_squeeze_unsqueeze: normal, true, |x| x.unsqueeze(0).flatten(0, -1).squeeze().exp();
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(CASES))]

    #[test]
    fn binary_broadcast((sa, sb) in broadcast_pair(), seed in any::<u64>(), op in 0usize..7) {
        let (a, b) = match op {
            4 => (positive(&sa, seed), normal(&sb, seed + 1)),              // pow: positive base
            3 => (normal(&sa, seed), positive(&sb, seed + 1)),              // div: safe divisor
            5 | 6 => (distinct(&sa, seed), &distinct(&sb, seed + 1) + 0.11), // no ties
            _ => (normal(&sa, seed), normal(&sb, seed + 1)),
        };
        let f = move |x: &Var, y: &Var| match op {
            0 => x + y,
            1 => x - y,
            2 => x * y,
            3 => x / y,
            4 => x.pow(y),
            5 => x.maximum(y),
            _ => x.minimum(y),
        };
        check2(f, a, b, true)?;
    }

    #[test]
    fn where_and_masked_fill((sa, sb) in broadcast_pair(), seed in any::<u64>()) {
        let (a, b) = (normal(&sa, seed), normal(&sb, seed + 1));
        let out_shape = a.add(&b).dims().to_vec();
        let cond = normal(&out_shape, seed + 2).gt_scalar(0.0);
        let c2 = cond.clone();
        check2(move |x, y| Var::where_(&c2, x, y).square(), a.clone(), b, true)?;
        let mask = normal(&sa, seed + 3).gt_scalar(0.0);
        check1(move |x| x.masked_fill(&mask, 2.0).exp(), a, true)?;
    }

    #[test]
    fn reductions_over_dims(s in nonscalar_shape(4), seed in any::<u64>(), keep in any::<bool>(), pick in any::<u64>()) {
        let nd = s.len();
        let d0 = (pick % nd as u64) as isize;
        let d1 = ((pick / 7) % nd as u64) as isize;
        let dims: Vec<isize> = if d0 == d1 { vec![d0] } else { vec![d0, d1 - nd as isize] };
        let x = normal(&s, seed);
        let dd = dims.clone();
        check1(move |v| v.sum(&dd, keep).square(), x.clone(), true)?;
        let dd = dims.clone();
        check1(move |v| v.mean(&dd, keep).exp(), x.clone(), true)?;
        let dd = dims.clone();
        check1(move |v| v.var(&dd, false, keep), x.clone(), true)?;
        let n: usize = dims.iter().map(|&d| s[d.rem_euclid(nd as isize) as usize]).product();
        if n > 1 {
            let dd = dims.clone();
            check1(move |v| v.std(&dd, true, keep), x.clone(), true)?;
        }
        let dd = dims.clone();
        check1(move |v| v.logsumexp(&dd, keep), x.clone(), true)?;
        let dd = dims.clone();
        check1(move |v| v.max(&dd, keep), distinct(&s, seed), true)?;
        let dd = dims;
        check1(move |v| v.min(&dd, keep), distinct(&s, seed + 1), true)?;
    }

    #[test]
    fn softmax_family(s in nonscalar_shape(3), seed in any::<u64>(), pick in any::<u64>()) {
        let d = (pick % s.len() as u64) as isize;
        let x = normal(&s, seed);
        check1(move |v| v.softmax(d), x.clone(), true)?;
        check1(move |v| v.log_softmax(d), x, true)?;
    }

    #[test]
    fn views(s in proptest::collection::vec(1usize..4, 2..=4), seed in any::<u64>(), pick in any::<u64>()) {
        let nd = s.len();
        let x = normal(&s, seed);
        let mut perm: Vec<usize> = (0..nd).collect();
        Generator::new(pick).shuffle(&mut perm);
        let p = perm.clone();
        check1(move |v| v.permute(&p).exp(), x.clone(), true)?;
        check1(|v| v.transpose(0, -1).square(), x.clone(), true)?;
        let d = (pick % nd as u64) as usize;
        let len = s[d];
        let start = (pick as usize / 3) % len;
        check1(move |v| v.narrow(d as isize, start, len - start).sin(), x.clone(), true)?;
        check1(move |v| v.slice(d as isize, start, len, 2).sin(), x.clone(), true)?;
        check1(move |v| v.select(d as isize, start).cos(), x.clone(), true)?;
        let n: usize = s.iter().product();
        check1(move |v| v.reshape(&[n]).tanh(), x.clone(), true)?;
        let mut big = s.clone();
        big.insert(0, 2);
        check1(move |v| v.broadcast_to(&big).sin(), x.clone(), true)?;
        let parts = 2.min(len);
        check1(move |v| {
            let pieces = v.chunk(parts, d as isize);
            let refs: Vec<Var> = pieces.iter().enumerate().map(|(i, p)| p * (i as f64 + 1.0)).collect();
            let refs: Vec<&Var> = refs.iter().collect();
            Var::cat(&refs, d as isize).square()
        }, x.clone(), true)?;
        let y = normal(&s, seed + 1);
        check2(move |a, b| Var::stack(&[a, b], d as isize).exp(), x.clone(), y.clone(), true)?;
        check2(move |a, b| Var::cat(&[a, b], -1).sin(), x, y, true)?;
    }

    #[test]
    fn size_one_expand(seed in any::<u64>(), rows in 1usize..4) {
        check1(move |v| v.expand(&[rows as isize, -1, 3]).square(), normal(&[1, 1, 3], seed), true)?;
    }

    #[test]
    fn indexing(rows in 1usize..5, cols in 1usize..4, picks in proptest::collection::vec(any::<u64>(), 1..6), seed in any::<u64>()) {
        let x = normal(&[rows, cols], seed);
        let idx: Vec<i64> = picks.iter().map(|p| (p % rows as u64) as i64).collect();
        let k = idx.len();
        let idx_t = Tensor::from_vec(idx, &[k]).unwrap();
        let i1 = idx_t.clone();
        check1(move |v| v.index_select(0, &i1).square(), x.clone(), true)?;
        let src = normal(&[k, cols], seed + 1);
        let i2 = idx_t.clone();
        check2(move |a, b| a.index_add(0, &i2, b).square(), x.clone(), src, true)?;
        // gather / scatter_add along dim 1 with a (rows, m) index
        let m = picks.len().min(3);
        let gidx: Vec<i64> = (0..rows * m).map(|i| (picks[i % picks.len()].wrapping_add(i as u64) % cols as u64) as i64).collect();
        let gidx = Tensor::from_vec(gidx, &[rows, m]).unwrap();
        let g1 = gidx.clone();
        check1(move |v| v.gather(1, &g1).exp(), x.clone(), true)?;
        let src = normal(&[rows, m], seed + 2);
        check2(move |a, b| a.scatter_add(1, &gidx, b).square(), x, src, true)?;
    }

    #[test]
    fn matmul_forms(b1 in 1usize..3, m in 1usize..4, k in 1usize..4, n in 1usize..4, form in 0usize..6, seed in any::<u64>()) {
        let (sa, sb): (Vec<usize>, Vec<usize>) = match form {
            0 => (vec![k], vec![k]),
            1 => (vec![k], vec![k, n]),
            2 => (vec![m, k], vec![k]),
            3 => (vec![m, k], vec![k, n]),
            4 => (vec![b1, 1, m, k], vec![2, k, n]),
            _ => (vec![k], vec![b1, k, n]),
        };
        check2(|a, b| a.matmul(b), normal(&sa, seed), normal(&sb, seed + 1), true)?;
        // transposed operand: a strided view inside the graph
        check2(|a, b| a.matmul(&b.t()), normal(&[m, k], seed), normal(&[n, k], seed + 1), true)?;
    }

    #[test]
    fn convolutions(
        n in 1usize..3, cg in 1usize..3, og in 1usize..3, groups in 1usize..3,
        h in 3usize..7, w in 3usize..7, k in 1usize..4, stride in 1usize..3, pad in 0usize..2, dil in 1usize..3,
        seed in any::<u64>(),
    ) {
        let (c, o) = (cg * groups, og * groups);
        prop_assume!(h + 2 * pad > dil * (k - 1) && w + 2 * pad > dil * (k - 1));
        let opts = Conv2dOptions { stride: [stride, stride], padding: [pad, pad], dilation: [dil, dil], groups, output_padding: [0, 0] };
        let x = normal(&[n, c, h, w], seed);
        let wt = normal(&[o, cg, k, k], seed + 1);
        let b = normal(&[o], seed + 2);
        let inputs = [x.clone(), wt.clone(), b];
        let f = move |v: &[Var]| v[0].conv2d(&v[1], Some(&v[2]), opts);
        gradcheck(f, &inputs, opts_gc()).map_err(|e| TestCaseError::fail(e.to_string()))?;
        gradgradcheck(f, &inputs, opts_gc()).map_err(|e| TestCaseError::fail(e.to_string()))?;
        // transposed convolution with the same geometry, weight (C_in, C_out/g, k, k)
        let mut topts = opts;
        topts.output_padding = [if stride > 1 { 1 } else { 0 }; 2];
        let xt = normal(&[n, o, h, w], seed + 3);
        let wt2 = normal(&[o, cg, k, k], seed + 4);
        check2(move |a, b| a.conv_transpose2d(b, None, topts), xt.clone(), wt2.clone(), true)?;
        // and with a bias, which the kernel adds (its gradient a sum over batch and space)
        let ft = move |v: &[Var]| v[0].conv_transpose2d(&v[1], Some(&v[2]), topts);
        let inputs_t = [xt, wt2, normal(&[c], seed + 7)];
        gradcheck(ft, &inputs_t, opts_gc()).map_err(|e| TestCaseError::fail(e.to_string()))?;
        gradgradcheck(ft, &inputs_t, opts_gc()).map_err(|e| TestCaseError::fail(e.to_string()))?;
        // conv1d over the width
        let o1 = Conv1dOptions { stride, padding: pad, dilation: dil, groups };
        let x1 = normal(&[n, c, w], seed + 5);
        let w1 = normal(&[o, cg, k], seed + 6);
        check2(move |a, b| a.conv1d(b, None, o1), x1, w1, true)?;
    }

    #[test]
    fn pooling(n in 1usize..3, c in 1usize..3, h in 2usize..7, w in 2usize..7, k in 1usize..4, stride in 1usize..3, pad in 0usize..2, seed in any::<u64>()) {
        prop_assume!(pad * 2 <= k && h + 2 * pad >= k && w + 2 * pad >= k);
        let o = Pool2dOptions::new(k).stride(stride).padding(pad);
        check1(move |v| v.max_pool2d(o).0.square(), distinct(&[n, c, h, w], seed), true)?;
        check1(move |v| v.avg_pool2d(o, true).square(), normal(&[n, c, h, w], seed), true)?;
        check1(move |v| v.avg_pool2d(o, false).exp(), normal(&[n, c, h, w], seed), true)?;
        let out = [1 + (seed % 3) as usize, 1 + (seed / 3 % 2) as usize];
        check1(move |v| v.adaptive_avg_pool2d(out).square(), normal(&[n, c, h, w], seed), true)?;
    }
}

fn opts_gc() -> GradcheckOptions {
    GradcheckOptions::default()
}

#[test]
fn failure_report_names_input_index_and_values() {
    // a deliberately wrong backward rule: d/dx x² claimed to be 3x
    let wrong = |x: &Var| {
        Var::from_op("bad_square", x.value().square(), &[x], |ctx| {
            vec![Some(&(&ctx.inputs[0] * 3.0) * ctx.grad)]
        })
    };
    let x = Tensor::from_vec(vec![1.0f64, 2.0], &[2]).unwrap();
    let e = gradcheck(|v| wrong(&v[0]), &[x], GradcheckOptions::default()).unwrap_err();
    assert_eq!(e.input, 0);
    assert!((e.analytic / e.numeric - 1.5).abs() < 1e-6, "{e}");
    assert!(e.to_string().starts_with("gradcheck failed: input 0 at index ["), "{e}");
}

#[test]
fn gradgradcheck_catches_a_wrong_second_derivative() {
    // first derivative right (cos x), but written with a constant, so no second derivative
    let flat = |x: &Var| {
        Var::from_op("sin_no_hessian", x.value().sin(), &[x], |ctx| {
            vec![Some(ctx.grad * &Var::constant(ctx.inputs[0].value().cos()))]
        })
    };
    let x = normal(&[3], 7);
    assert!(gradcheck(|v| flat(&v[0]), std::slice::from_ref(&x), GradcheckOptions::default()).is_ok());
    let e = gradgradcheck(|v| flat(&v[0]), &[x], GradcheckOptions::default()).unwrap_err();
    assert_eq!(e.check, "gradgradcheck");
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(CASES))]

    #[test]
    fn selections_and_casts(rows in 1usize..4, cols in 1usize..5, seed in any::<u64>(), keep in any::<bool>()) {
        let x = distinct(&[rows, cols], seed);
        check1(move |v| v.max_dim(1, keep).0.square(), x.clone(), true)?;
        check1(move |v| v.min_dim(0, keep).0.exp(), x.clone(), true)?;
        let mask = normal(&[rows, cols], seed + 1).gt_scalar(0.0);
        check1(move |v| v.masked_select(&mask).square(), x.clone(), true)?;
        let sizes = vec![1, cols - 1];
        check1(move |v| {
            let parts = v.split_sizes(&sizes, 1);
            &parts[0].sum_all() * &parts[1].sin().sum_all()
        }, x.clone(), true)?;
        // a cast's gradient is the upstream gradient cast back (finite differences through
        // f32 rounding would be meaningless, so check it directly)
        let leaf = Var::leaf(x.clone());
        let g = leaf.to_dtype(DType::F32).mul_scalar(3.0).sum_all().backward();
        let g = g.get(&leaf).unwrap();
        prop_assert_eq!(g.dtype(), DType::F64);
        prop_assert!(g.allclose(&x.full_like(3.0), 0.0, 0.0));
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(CASES))]

    /// The fused LSTM step: first derivatives from its kernel, second derivatives through
    /// the composed rule, for every input (including a broadcast-free shared gradient of
    /// the two projections).
    #[test]
    fn lstm_cell(n in 1usize..4, h in 1usize..4, seed in any::<u64>()) {
        let xg = normal(&[n, 4 * h], seed);
        let hg = normal(&[n, 4 * h], seed + 1);
        let c = normal(&[n, h], seed + 2);
        let weights = normal(&[n, 2 * h], seed + 3);
        let f = move |v: &[Var]| {
            let (h_new, c_new) = Var::lstm_cell(&v[0], &v[1], &v[2]);
            let both = Var::cat(&[&h_new, &c_new], 1);
            (&both * &Var::constant(weights.clone())).sum_all()
        };
        let inputs = [xg, hg, c];
        gradcheck(f.clone(), &inputs, opts()).map_err(|e| TestCaseError::fail(e.to_string()))?;
        gradgradcheck(f, &inputs, opts()).map_err(|e| TestCaseError::fail(e.to_string()))?;
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(CASES))]

    /// The fused LSTM layer: backpropagation through time from its kernel, and through
    /// the composed recursion for second derivatives; every output (all hidden states,
    /// last hidden and cell state) feeds the loss.
    #[test]
    fn lstm_sequence(steps in 1usize..4, n in 1usize..3, h in 1usize..3, seed in any::<u64>()) {
        let p = normal(&[steps, n, 4 * h], seed);
        let w = &normal(&[4 * h, h], seed + 1) * 0.5;
        let (h0, c0) = (normal(&[n, h], seed + 2), normal(&[n, h], seed + 3));
        let (wo, wh, wc) = (normal(&[steps, n, h], seed + 4), normal(&[n, h], seed + 5), normal(&[n, h], seed + 6));
        let f = move |v: &[Var]| {
            let (out, h_n, c_n) = Var::lstm_sequence(&v[0], &v[1], &v[2], &v[3]);
            let a = (&out * &Var::constant(wo.clone())).sum_all();
            let b = (&h_n * &Var::constant(wh.clone())).sum_all();
            &(&a + &b) + &(&c_n * &Var::constant(wc.clone())).sum_all()
        };
        let inputs = [p, w, h0, c0];
        gradcheck(f.clone(), &inputs, opts()).map_err(|e| TestCaseError::fail(e.to_string()))?;
        gradgradcheck(f, &inputs, opts()).map_err(|e| TestCaseError::fail(e.to_string()))?;
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(CASES))]

    /// The fused GRU layer: backpropagation through time from its kernel, and through the
    /// unfused recurrence for second derivatives; every output and the last state feed
    /// the loss.
    #[test]
    fn gru_sequence(steps in 1usize..4, n in 1usize..3, h in 1usize..3, seed in any::<u64>()) {
        let p = normal(&[steps, n, 3 * h], seed);
        let w = &normal(&[3 * h, h], seed + 1) * 0.5;
        let (b, h0) = (normal(&[h], seed + 2), normal(&[n, h], seed + 3));
        let (wo, wh) = (normal(&[steps, n, h], seed + 4), normal(&[n, h], seed + 5));
        let f = move |v: &[Var]| {
            let (out, h_n) = Var::gru_sequence(&v[0], &v[1], &v[2], &v[3]);
            &(&out * &Var::constant(wo.clone())).sum_all() + &(&h_n * &Var::constant(wh.clone())).sum_all()
        };
        let inputs = [p, w, b, h0];
        gradcheck(f.clone(), &inputs, opts()).map_err(|e| TestCaseError::fail(e.to_string()))?;
        gradgradcheck(f, &inputs, opts()).map_err(|e| TestCaseError::fail(e.to_string()))?;
    }
}

/// Values of standard deviation 3: both tails of the GELUs, where `Φ` and `φ` in their
/// fused gradient kernels are far from their values near 0.
fn wide(shape: &[usize], seed: u64) -> Tensor {
    &normal(shape, seed) * 3.0
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    /// The GELUs: first derivatives through their fused gradient kernels (gradcheck),
    /// second derivatives through the `Var` rule that `create_graph` selects
    /// (gradgradcheck); also on transposed views, under a non-constant upstream gradient.
    #[test]
    fn gelu_fused_backward(s in shape(3), seed in any::<u64>()) {
        let x = wide(&s, seed);
        check1(|v| v.gelu(), x.clone(), true)?;
        check1(|v| v.gelu_tanh(), x.clone(), true)?;
        check1(|v| v.t().gelu().sin(), x.clone(), true)?;
        check1(|v| v.t().gelu_tanh().sin(), x, true)?;
    }
}

#[test]
fn fused_gelu_gradients_equal_the_composed_ones() {
    for (i, f) in [Var::gelu as fn(&Var) -> Var, Var::gelu_tanh].into_iter().enumerate() {
        let x = Var::leaf(wide(&[4, 7], 10 + i as u64).t());
        let w = Var::constant(normal(&[7, 4], 20));
        let loss = || (&f(&x) * &w).sum_all();
        let fused = loss().backward();
        let composed = loss().backward_pass().create_graph(true).run();
        let (fused, composed) = (fused.get(&x).unwrap(), composed.get(&x).unwrap());
        assert!(fused.allclose(composed, 1e-15, 1e-15), "{fused} against {composed}");
    }
}

#[test]
fn fused_gru_sequence_equals_pytorch_equations() {
    let (steps, n, h) = (4, 3, 5);
    let p = normal(&[steps, n, 3 * h], 1);
    let w = &normal(&[3 * h, h], 2) * 0.3;
    let (b, h0) = (normal(&[h], 3), normal(&[n, h], 4));
    let (out, h_n) = Var::gru_sequence(
        &Var::constant(p.clone()),
        &Var::constant(w.clone()),
        &Var::constant(b.clone()),
        &Var::constant(h0.clone()),
    );
    let mut hs = h0;
    for t in 0..steps {
        let (xg, hg) = (p.select(0, t).chunk(3, 1), hs.matmul(&w.t()).chunk(3, 1));
        let r = (&xg[0] + &hg[0]).sigmoid();
        let z = (&xg[1] + &hg[1]).sigmoid();
        let nn = (&xg[2] + &(&r * &(&hg[2] + &b))).tanh();
        hs = &(&z.rsub_scalar(1.0) * &nn) + &(&z * &hs);
        assert!(out.value().select(0, t).allclose(&hs, 1e-13, 1e-13), "step {t}");
    }
    assert!(h_n.value().allclose(&hs, 1e-13, 1e-13));
}

#[test]
fn fused_lstm_sequence_equals_the_step_by_step_cell() {
    let (steps, n, h) = (4, 3, 5);
    let p = normal(&[steps, n, 4 * h], 1);
    let w = &normal(&[4 * h, h], 2) * 0.3;
    let (h0, c0) = (normal(&[n, h], 3), normal(&[n, h], 4));
    let (out, h_n, c_n) = Var::lstm_sequence(
        &Var::constant(p.clone()),
        &Var::constant(w.clone()),
        &Var::constant(h0.clone()),
        &Var::constant(c0.clone()),
    );
    let (mut hs, mut c) = (Var::constant(h0), Var::constant(c0));
    for t in 0..steps {
        let hg = hs.matmul(&Var::constant(w.t()));
        let (hn, cn) = Var::lstm_cell(&Var::constant(p.select(0, t)), &hg, &c);
        assert!(out.value().select(0, t).allclose(hn.value(), 1e-13, 1e-13), "step {t}");
        (hs, c) = (hn, cn);
    }
    assert!(h_n.value().allclose(hs.value(), 1e-13, 1e-13));
    assert!(c_n.value().allclose(c.value(), 1e-13, 1e-13));
}

#[test]
fn fused_lstm_cell_equals_the_unfused_formula() {
    let (n, h) = (3, 5);
    let (xg, hg, c) = (normal(&[n, 4 * h], 1), normal(&[n, 4 * h], 2), normal(&[n, h], 3));
    let (h_fused, c_fused) =
        Var::lstm_cell(&Var::constant(xg.clone()), &Var::constant(hg.clone()), &Var::constant(c.clone()));
    let z = &xg + &hg;
    let g = z.chunk(4, 1);
    let c_ref = &(&g[1].sigmoid() * &c) + &(&g[0].sigmoid() * &g[2].tanh());
    let h_ref = &g[3].sigmoid() * &c_ref.tanh();
    assert!(c_fused.value().allclose(&c_ref, 1e-14, 1e-14));
    assert!(h_fused.value().allclose(&h_ref, 1e-14, 1e-14));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(16))]

    /// The fused LayerNorm: first derivatives from its kernel, second derivatives through
    /// the composed rule, with and without weight and bias, over one or two normalised
    /// dims. Inputs are spaced values (a shuffled ramp), so no row has a tiny variance.
    #[test]
    fn layer_norm(
        lead in proptest::collection::vec(1usize..4, 0..=2),
        normalized in proptest::collection::vec(1usize..4, 1..=2),
        affine in 0u8..4,
        seed in any::<u64>(),
    ) {
        let shape: Vec<usize> = lead.iter().chain(&normalized).copied().collect();
        let (has_w, has_b) = (affine & 1 == 1, affine & 2 == 2);
        let mut inputs = vec![distinct(&shape, seed)];
        if has_w {
            inputs.push(normal(&normalized, seed + 1));
        }
        if has_b {
            inputs.push(normal(&normalized, seed + 2));
        }
        let f = move |v: &[Var]| {
            let w = has_w.then(|| &v[1]);
            let b = has_b.then(|| &v[1 + usize::from(has_w)]);
            v[0].layer_norm(&normalized, w, b, 1e-5)
        };
        gradcheck(f.clone(), &inputs, opts()).map_err(|e| TestCaseError::fail(e.to_string()))?;
        gradgradcheck(f, &inputs, opts()).map_err(|e| TestCaseError::fail(e.to_string()))?;
    }

    /// Softmax and log-softmax along a dim of at most rank 4 (contiguous last dim and
    /// strided lanes): kernel gradients, and second derivatives through the composed rule.
    #[test]
    fn softmax_family_fused(s in nonscalar_shape(4), seed in any::<u64>(), pick in any::<u64>()) {
        let d = (pick % s.len() as u64) as isize - s.len() as isize;
        let x = &normal(&s, seed) * 2.0;
        check1(move |v| v.softmax(d), x.clone(), true)?;
        check1(move |v| v.log_softmax(d), x, true)?;
    }
}

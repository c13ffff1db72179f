//! The golden op table: every op of the golden files that sinew-tensor and
//! sinew-autograd implement, once, as `name → closure over the case's inputs and
//! attributes`, generic over [`GoldenValue`] (implemented for `Tensor` and, with the
//! `autograd` feature, for `Var`), so the tensor crate's forward tests and the autograd
//! crate's forward-and-backward tests run the same table. Adding an op to both is one
//! line of [`table`].
//!
//! [`check_file`] runs every case of a golden file through the table in f64 (1e-9
//! relative) and f32 (1e-4 relative) and compares the output with PyTorch's. A case whose
//! op has no table entry fails the test; ops a crate does not have are listed by name in
//! the caller's `skip` (each must occur in the file), and counted.
//!
//! ```
//! use sinew_tensor::Tensor;
//! use sinew_testing::ops::check_file;
//! let json = r#"{"cases": [{"name": "neg", "op": "neg", "attrs": {},
//!     "inputs": [{"name": "x", "shape": [2], "data": [1.0, -2.0]}],
//!     "output": {"shape": [2], "data": [-1.0, 2.0]}}]}"#;
//! assert_eq!(check_file::<Tensor>(json, &[], |_, _, _| ()), (1, 0));
//! ```

use serde_json::Value;
use sinew_tensor::{Conv1dOptions, Conv2dOptions, DType, Pool2dOptions, Tensor};

use crate::golden::{assert_close, cases, name_of, tensor_of};

/// What the op table needs of a value: the ops of the golden files, with the signatures
/// `Tensor` and `Var` share, and how an input becomes a value.
pub trait GoldenValue: Clone + Sized {
    /// An input of a case: a leaf that records its gradient when `requires_grad`, else a
    /// constant (a tensor is both).
    fn input(t: Tensor, requires_grad: bool) -> Self;
    /// The value as a tensor.
    fn tensor(&self) -> &Tensor;

    #[allow(missing_docs)]
    fn neg(&self) -> Self;
    #[allow(missing_docs)]
    fn exp(&self) -> Self;
    #[allow(missing_docs)]
    fn abs(&self) -> Self;
    #[allow(missing_docs)]
    fn relu(&self) -> Self;
    #[allow(missing_docs)]
    fn sigmoid(&self) -> Self;
    #[allow(missing_docs)]
    fn tanh(&self) -> Self;
    #[allow(missing_docs)]
    fn sin(&self) -> Self;
    #[allow(missing_docs)]
    fn cos(&self) -> Self;
    #[allow(missing_docs)]
    fn silu(&self) -> Self;
    #[allow(missing_docs)]
    fn gelu(&self) -> Self;
    #[allow(missing_docs)]
    fn gelu_tanh(&self) -> Self;
    #[allow(missing_docs)]
    fn softplus(&self, beta: f64, threshold: f64) -> Self;
    #[allow(missing_docs)]
    fn elu(&self, alpha: f64) -> Self;
    #[allow(missing_docs)]
    fn square(&self) -> Self;
    #[allow(missing_docs)]
    fn leaky_relu(&self, slope: f64) -> Self;
    #[allow(missing_docs)]
    fn log(&self) -> Self;
    #[allow(missing_docs)]
    fn sqrt(&self) -> Self;
    #[allow(missing_docs)]
    fn rsqrt(&self) -> Self;
    #[allow(missing_docs)]
    fn recip(&self) -> Self;
    #[allow(missing_docs)]
    fn powf(&self, p: f64) -> Self;

    /// `self + other` (the operator).
    fn add(&self, other: &Self) -> Self;
    /// `self - other` (the operator).
    fn sub(&self, other: &Self) -> Self;
    /// `self * other` (the operator).
    fn mul(&self, other: &Self) -> Self;
    /// `self / other` (the operator).
    fn div(&self, other: &Self) -> Self;
    #[allow(missing_docs)]
    fn maximum(&self, other: &Self) -> Self;
    #[allow(missing_docs)]
    fn minimum(&self, other: &Self) -> Self;
    #[allow(missing_docs)]
    fn pow(&self, other: &Self) -> Self;
    #[allow(missing_docs)]
    fn matmul(&self, other: &Self) -> Self;

    #[allow(missing_docs)]
    fn sum(&self, dims: &[isize], keepdim: bool) -> Self;
    #[allow(missing_docs)]
    fn mean(&self, dims: &[isize], keepdim: bool) -> Self;
    #[allow(missing_docs)]
    fn max(&self, dims: &[isize], keepdim: bool) -> Self;
    #[allow(missing_docs)]
    fn var(&self, dims: &[isize], unbiased: bool, keepdim: bool) -> Self;
    #[allow(missing_docs)]
    fn logsumexp(&self, dims: &[isize], keepdim: bool) -> Self;
    #[allow(missing_docs)]
    fn softmax(&self, dim: isize) -> Self;
    #[allow(missing_docs)]
    fn log_softmax(&self, dim: isize) -> Self;

    #[allow(missing_docs)]
    fn t(&self) -> Self;
    #[allow(missing_docs)]
    fn permute(&self, perm: &[usize]) -> Self;
    #[allow(missing_docs)]
    fn reshape(&self, shape: &[usize]) -> Self;
    #[allow(missing_docs)]
    fn narrow(&self, dim: isize, start: usize, len: usize) -> Self;
    #[allow(missing_docs)]
    fn broadcast_to(&self, shape: &[usize]) -> Self;
    #[allow(missing_docs)]
    fn cat(values: &[&Self], dim: isize) -> Self;
    #[allow(missing_docs)]
    fn stack(values: &[&Self], dim: isize) -> Self;
    #[allow(missing_docs)]
    fn index_select(&self, dim: isize, index: &Tensor) -> Self;

    #[allow(missing_docs)]
    fn conv2d(&self, weight: &Self, bias: Option<&Self>, opts: Conv2dOptions) -> Self;
    #[allow(missing_docs)]
    fn conv1d(&self, weight: &Self, bias: Option<&Self>, opts: Conv1dOptions) -> Self;
    /// The pooled values (not the argmax indices).
    fn max_pool2d(&self, opts: Pool2dOptions) -> Self;
    #[allow(missing_docs)]
    fn avg_pool2d(&self, opts: Pool2dOptions, count_include_pad: bool) -> Self;
    #[allow(missing_docs)]
    fn adaptive_avg_pool2d(&self, out: [usize; 2]) -> Self;
}

/// Implements [`GoldenValue`] for a type whose inherent ops have the shared signatures.
macro_rules! impl_golden_value {
    ($ty:ty, input = |$t:ident, $rg:ident| $input:expr, tensor = |$s:ident| $tensor:expr) => {
        impl GoldenValue for $ty {
            fn input($t: Tensor, $rg: bool) -> Self {
                $input
            }
            fn tensor(&self) -> &Tensor {
                let $s = self;
                $tensor
            }
            impl_golden_value!(@unary $ty: neg exp abs relu sigmoid tanh sin cos silu gelu gelu_tanh square
                log sqrt rsqrt recip t);
            impl_golden_value!(@binary $ty: maximum minimum pow matmul);
            impl_golden_value!(@reduce $ty: sum mean max logsumexp);
            fn softplus(&self, beta: f64, threshold: f64) -> Self {
                <$ty>::softplus(self, beta, threshold)
            }
            fn elu(&self, alpha: f64) -> Self {
                <$ty>::elu(self, alpha)
            }
            fn leaky_relu(&self, slope: f64) -> Self {
                <$ty>::leaky_relu(self, slope)
            }
            fn powf(&self, p: f64) -> Self {
                <$ty>::powf(self, p)
            }
            fn add(&self, other: &Self) -> Self {
                self + other
            }
            fn sub(&self, other: &Self) -> Self {
                self - other
            }
            fn mul(&self, other: &Self) -> Self {
                self * other
            }
            fn div(&self, other: &Self) -> Self {
                self / other
            }
            fn var(&self, dims: &[isize], unbiased: bool, keepdim: bool) -> Self {
                <$ty>::var(self, dims, unbiased, keepdim)
            }
            fn softmax(&self, dim: isize) -> Self {
                <$ty>::softmax(self, dim)
            }
            fn log_softmax(&self, dim: isize) -> Self {
                <$ty>::log_softmax(self, dim)
            }
            fn permute(&self, perm: &[usize]) -> Self {
                <$ty>::permute(self, perm)
            }
            fn reshape(&self, shape: &[usize]) -> Self {
                <$ty>::reshape(self, shape)
            }
            fn narrow(&self, dim: isize, start: usize, len: usize) -> Self {
                <$ty>::narrow(self, dim, start, len)
            }
            fn broadcast_to(&self, shape: &[usize]) -> Self {
                <$ty>::broadcast_to(self, shape)
            }
            fn cat(values: &[&Self], dim: isize) -> Self {
                <$ty>::cat(values, dim)
            }
            fn stack(values: &[&Self], dim: isize) -> Self {
                <$ty>::stack(values, dim)
            }
            fn index_select(&self, dim: isize, index: &Tensor) -> Self {
                <$ty>::index_select(self, dim, index)
            }
            fn conv2d(&self, weight: &Self, bias: Option<&Self>, opts: Conv2dOptions) -> Self {
                <$ty>::conv2d(self, weight, bias, opts)
            }
            fn conv1d(&self, weight: &Self, bias: Option<&Self>, opts: Conv1dOptions) -> Self {
                <$ty>::conv1d(self, weight, bias, opts)
            }
            fn max_pool2d(&self, opts: Pool2dOptions) -> Self {
                <$ty>::max_pool2d(self, opts).0
            }
            fn avg_pool2d(&self, opts: Pool2dOptions, count_include_pad: bool) -> Self {
                <$ty>::avg_pool2d(self, opts, count_include_pad)
            }
            fn adaptive_avg_pool2d(&self, out: [usize; 2]) -> Self {
                <$ty>::adaptive_avg_pool2d(self, out)
            }
        }
    };
    (@unary $ty:ty: $($f:ident)*) => {
        $(fn $f(&self) -> Self {
            <$ty>::$f(self)
        })*
    };
    (@binary $ty:ty: $($f:ident)*) => {
        $(fn $f(&self, other: &Self) -> Self {
            <$ty>::$f(self, other)
        })*
    };
    (@reduce $ty:ty: $($f:ident)*) => {
        $(fn $f(&self, dims: &[isize], keepdim: bool) -> Self {
            <$ty>::$f(self, dims, keepdim)
        })*
    };
}

impl_golden_value!(Tensor, input = |t, _requires_grad| t, tensor = |s| s);

#[cfg(feature = "autograd")]
impl_golden_value!(
    sinew_autograd::Var,
    input = |t, requires_grad| if requires_grad {
        sinew_autograd::Var::leaf(t)
    } else {
        sinew_autograd::Var::constant(t)
    },
    tensor = |s| s.value()
);

/// One golden case in one precision, as the table's closures see it: its inputs (made on
/// first use, remembered by name with their `requires_grad`) and its attributes.
pub struct Case<'a, T> {
    /// The case's JSON.
    pub case: &'a Value,
    /// The precision float inputs are cast to.
    pub dtype: DType,
    /// The inputs used so far that require a gradient, by name.
    pub leaves: Vec<(String, T)>,
}

impl<'a, T: GoldenValue> Case<'a, T> {
    /// A case in `dtype`, no input made yet.
    pub fn new(case: &'a Value, dtype: DType) -> Self {
        Case { case, dtype, leaves: Vec::new() }
    }

    /// The case's name.
    pub fn name(&self) -> &'a str {
        name_of(self.case)
    }

    /// The case's op.
    #[track_caller]
    pub fn op(&self) -> &'a str {
        self.case["op"].as_str().unwrap_or_else(|| panic!("{}: no op", self.name()))
    }

    fn spec(&self, name: &str) -> &'a Value {
        crate::golden::input_spec(self.case, name)
    }

    /// A float input as a value (a leaf when it requires a gradient).
    #[track_caller]
    pub fn input(&mut self, name: &str) -> T {
        let spec = self.spec(name);
        assert_ne!(spec["dtype"], "i64", "{}: input {name} is an index tensor", self.name());
        let requires_grad = spec["requires_grad"].as_bool().unwrap_or(false);
        let v = T::input(tensor_of(spec, self.dtype), requires_grad);
        if requires_grad {
            self.leaves.push((name.to_string(), v.clone()));
        }
        v
    }

    /// The first input as a value.
    #[track_caller]
    pub fn x(&mut self) -> T {
        let name = self.case["inputs"][0]["name"].as_str().expect("input name").to_string();
        self.input(&name)
    }

    /// An input as a plain tensor (index tensors).
    #[track_caller]
    pub fn index(&self, name: &str) -> Tensor {
        tensor_of(self.spec(name), self.dtype)
    }

    /// An attribute, which must be present.
    #[track_caller]
    pub fn attr(&self, key: &str) -> &'a Value {
        let a = &self.case["attrs"][key];
        assert!(!a.is_null(), "{}: no attr {key}", self.name());
        a
    }

    /// An attribute that may be absent (`null`).
    pub fn attr_opt(&self, key: &str) -> Option<&'a Value> {
        let a = &self.case["attrs"][key];
        (!a.is_null()).then_some(a)
    }

    /// An integer attribute.
    #[track_caller]
    pub fn attr_isize(&self, key: &str) -> isize {
        self.attr(key).as_i64().unwrap_or_else(|| panic!("{}: attr {key}", self.name())) as isize
    }

    /// A non-negative integer attribute.
    #[track_caller]
    pub fn attr_usize(&self, key: &str) -> usize {
        self.attr(key).as_u64().unwrap_or_else(|| panic!("{}: attr {key}", self.name())) as usize
    }

    /// A float attribute.
    #[track_caller]
    pub fn attr_f64(&self, key: &str) -> f64 {
        self.attr(key).as_f64().unwrap_or_else(|| panic!("{}: attr {key}", self.name()))
    }

    /// A boolean attribute.
    #[track_caller]
    pub fn attr_bool(&self, key: &str) -> bool {
        self.attr(key).as_bool().unwrap_or_else(|| panic!("{}: attr {key}", self.name()))
    }

    /// A list of sizes.
    #[track_caller]
    pub fn attr_usizes(&self, key: &str) -> Vec<usize> {
        let a = self.attr(key).as_array().unwrap_or_else(|| panic!("{}: attr {key}", self.name()));
        a.iter().map(|d| d.as_u64().expect("size") as usize).collect()
    }

    /// A per-axis pair given either as one number or as `[h, w]`.
    #[track_caller]
    pub fn attr_pair(&self, key: &str) -> [usize; 2] {
        match self.attr(key).as_u64() {
            Some(k) => [k as usize; 2],
            None => {
                let v = self.attr_usizes(key);
                [v[0], v[1]]
            }
        }
    }

    /// Like [`Case::attr_pair`], with a default when the attr is absent.
    #[track_caller]
    pub fn attr_pair_or(&self, key: &str, default: [usize; 2]) -> [usize; 2] {
        if self.attr_opt(key).is_some() { self.attr_pair(key) } else { default }
    }

    /// The reduction dimensions: `dim` as a one-element list, `null` (or absent) for
    /// every dimension (an empty list).
    pub fn dims(&self) -> Vec<isize> {
        self.case["attrs"]["dim"].as_i64().map(|d| vec![d as isize]).unwrap_or_default()
    }

    /// `keepdim`, false when absent.
    pub fn keepdim(&self) -> bool {
        self.case["attrs"]["keepdim"].as_bool().unwrap_or(false)
    }

    /// Pooling options from `kernel_size`, `stride` (PyTorch: the kernel when absent),
    /// `padding`, `dilation` and `ceil_mode`.
    #[track_caller]
    pub fn pool_options(&self) -> Pool2dOptions {
        let kernel = self.attr_pair("kernel_size");
        Pool2dOptions {
            kernel,
            stride: self.attr_pair_or("stride", kernel),
            padding: self.attr_pair_or("padding", [0, 0]),
            dilation: self.attr_pair_or("dilation", [1, 1]),
            ceil_mode: self.attr_opt("ceil_mode").and_then(Value::as_bool).unwrap_or(false),
        }
    }
}

/// A table entry: what an op computes from its case.
pub type OpFn<T> = fn(&mut Case<'_, T>) -> T;

/// The golden files' ops, by the name in their `op` field. One line per op.
pub fn table<T: GoldenValue>() -> Vec<(&'static str, OpFn<T>)> {
    vec![
        // elementwise.json
        ("neg", |c| c.x().neg()),
        ("exp", |c| c.x().exp()),
        ("abs", |c| c.x().abs()),
        ("relu", |c| c.x().relu()),
        ("sigmoid", |c| c.x().sigmoid()),
        ("tanh", |c| c.x().tanh()),
        ("sin", |c| c.x().sin()),
        ("cos", |c| c.x().cos()),
        ("silu", |c| c.x().silu()),
        ("gelu", |c| c.x().gelu()),
        ("gelu_tanh", |c| c.x().gelu_tanh()),
        ("softplus", |c| c.x().softplus(1.0, 20.0)),
        ("elu", |c| c.x().elu(1.0)),
        ("square", |c| c.x().square()),
        ("leaky_relu_0.01", |c| c.x().leaky_relu(0.01)),
        ("log", |c| c.x().log()),
        ("sqrt", |c| c.x().sqrt()),
        ("rsqrt", |c| c.x().rsqrt()),
        ("recip", |c| c.x().recip()),
        ("powf", |c| c.x().powf(c.attr_f64("p"))),
        // binary_broadcast.json
        ("add", |c| c.input("a").add(&c.input("b"))),
        ("sub", |c| c.input("a").sub(&c.input("b"))),
        ("mul", |c| c.input("a").mul(&c.input("b"))),
        ("div", |c| c.input("a").div(&c.input("b"))),
        ("maximum", |c| c.input("a").maximum(&c.input("b"))),
        ("minimum", |c| c.input("a").minimum(&c.input("b"))),
        ("pow", |c| c.input("a").pow(&c.input("b"))),
        // reductions.json
        ("sum", |c| c.x().sum(&c.dims(), c.keepdim())),
        ("mean", |c| c.x().mean(&c.dims(), c.keepdim())),
        ("max", |c| c.x().max(&c.dims(), c.keepdim())),
        ("var", |c| c.x().var(&c.dims(), c.attr_bool("unbiased"), c.keepdim())),
        ("logsumexp", |c| c.x().logsumexp(&c.dims(), c.keepdim())),
        ("softmax", |c| c.x().softmax(c.attr_isize("dim"))),
        ("log_softmax", |c| c.x().log_softmax(c.attr_isize("dim"))),
        // shape.json
        ("permute", |c| c.x().permute(&c.attr_usizes("perm"))),
        ("reshape", |c| c.x().reshape(&c.attr_usizes("shape"))),
        ("narrow", |c| c.x().narrow(c.attr_isize("dim"), c.attr_usize("start"), c.attr_usize("len"))),
        ("cat", |c| T::cat(&[&c.input("a"), &c.input("b")], c.attr_isize("dim"))),
        ("stack", |c| T::stack(&[&c.input("a"), &c.input("b")], c.attr_isize("dim"))),
        ("broadcast_to", |c| c.x().broadcast_to(&c.attr_usizes("shape"))),
        ("index_select", |c| c.input("x").index_select(c.attr_isize("dim"), &c.index("idx"))),
        // matmul.json
        ("matmul", |c| c.input("a").matmul(&c.input("b"))),
        // layers.json (layer_norm and batch_norm are sinew-nn's, tested there)
        ("linear", |c| c.input("input").matmul(&c.input("weight").t()).add(&c.input("bias"))),
        ("conv2d", |c| {
            let (x, w, b) = (c.input("input"), c.input("weight"), c.input("bias"));
            let opts = Conv2dOptions {
                stride: c.attr_pair("stride"),
                padding: c.attr_pair("padding"),
                dilation: c.attr_pair("dilation"),
                groups: c.attr_usize("groups"),
                ..Conv2dOptions::default()
            };
            x.conv2d(&w, Some(&b), opts)
        }),
        ("conv1d", |c| {
            let (x, w, b) = (c.input("input"), c.input("weight"), c.input("bias"));
            let opts = Conv1dOptions {
                stride: c.attr_usize("stride"),
                padding: c.attr_usize("padding"),
                dilation: c.attr_usize("dilation"),
                groups: c.attr_usize("groups"),
            };
            x.conv1d(&w, Some(&b), opts)
        }),
        ("max_pool2d", |c| c.input("x").max_pool2d(c.pool_options())),
        ("avg_pool2d", |c| c.input("x").avg_pool2d(c.pool_options(), c.attr_bool("count_include_pad"))),
        ("adaptive_avg_pool2d", |c| c.input("x").adaptive_avg_pool2d(c.attr_pair("output_size"))),
        ("embedding", |c| {
            // index_select takes 1-D indices (as torch.index_select): look the flattened ids
            // up, then restore the ids' shape, as F.embedding does
            let (w, idx) = (c.input("weight"), c.index("idx"));
            let mut shape = idx.dims().to_vec();
            shape.push(w.tensor().dims()[1]);
            w.index_select(0, &idx.reshape(&[idx.numel()])).reshape(&shape)
        }),
    ]
}

/// Runs the case's op from the [`table`].
///
/// # Panics
/// If the op has no table entry (a new op in the fixtures fails the tests until it has
/// one), or the op itself panics.
#[track_caller]
pub fn eval<T: GoldenValue>(case: &mut Case<'_, T>) -> T {
    let op = case.op();
    let table = table::<T>();
    let Some((_, f)) = table.iter().find(|(name, _)| *name == op) else {
        panic!("{}: op `{op}` has no entry in sinew_testing::ops::table", case.name())
    };
    f(case)
}

/// The precisions every case runs in, with their relative tolerances.
pub const PRECISIONS: [(DType, f64); 2] = [(DType::F64, 1e-9), (DType::F32, 1e-4)];

/// Runs every case of the golden file `json` through the [`table`] in each of
/// [`PRECISIONS`], checks the output's dtype, shape and values against PyTorch's, and
/// hands the evaluated case, its output and the tolerance to `then` (for more checks:
/// the gradients). Cases whose op is in `skip` are not run. Returns (cases checked,
/// cases skipped); each checked case ran once per precision.
///
/// # Panics
/// On a mismatch, on an op without a table entry that `skip` does not name, and on an op
/// in `skip` that no case of the file has (a stale list).
#[track_caller]
pub fn check_file<T: GoldenValue>(
    json: &str,
    skip: &[&str],
    mut then: impl FnMut(&Case<'_, T>, &T, f64),
) -> (usize, usize) {
    let (mut checked, mut skipped) = (0, 0);
    let all = cases(json);
    for op in skip {
        assert!(all.iter().any(|c| c["op"] == *op), "skipped op `{op}` is in no case of the file");
    }
    for case in &all {
        if skip.iter().any(|op| case["op"] == *op) {
            skipped += 1;
            continue;
        }
        for (dtype, rtol) in PRECISIONS {
            let mut c = Case::<T>::new(case, dtype);
            let y = eval(&mut c);
            let name = c.name();
            assert_eq!(y.tensor().dtype(), dtype, "{name}: output dtype");
            assert_close(&format!("{name}: output"), y.tensor(), &case["output"], rtol);
            then(&c, &y, rtol);
        }
        checked += 1;
    }
    (checked, skipped)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every op of the golden files this table covers has an entry, and every entry is an
    /// op of some file (no dead lines).
    #[test]
    fn the_table_and_the_fixtures_agree() {
        let files = [
            include_str!("../../../tests/fixtures/elementwise.json"),
            include_str!("../../../tests/fixtures/binary_broadcast.json"),
            include_str!("../../../tests/fixtures/reductions.json"),
            include_str!("../../../tests/fixtures/shape.json"),
            include_str!("../../../tests/fixtures/matmul.json"),
            include_str!("../../../tests/fixtures/layers.json"),
        ];
        let not_here = ["layer_norm", "batch_norm"];
        let mut ops: Vec<String> = files
            .iter()
            .flat_map(|f| cases(f))
            .map(|c: Value| c["op"].as_str().unwrap().to_string())
            .collect();
        ops.sort();
        ops.dedup();
        let names: Vec<&str> = table::<Tensor>().iter().map(|(n, _)| *n).collect();
        for op in &ops {
            assert!(names.contains(&op.as_str()) || not_here.contains(&op.as_str()), "{op}: no entry");
        }
        for n in &names {
            assert!(ops.iter().any(|o| o == n), "{n}: in no fixture");
        }
        let mut unique = names.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), names.len(), "an op with two entries");
    }

    #[test]
    #[should_panic(expected = "op `nope` has no entry")]
    fn an_op_without_an_entry_fails() {
        let json = r#"{"cases": [{"name": "c", "op": "nope", "attrs": {}, "inputs": [],
            "output": {"shape": [], "data": [0.0]}}]}"#;
        check_file::<Tensor>(json, &[], |_, _, _| ());
    }

    #[test]
    #[should_panic(expected = "skipped op `nope` is in no case")]
    fn a_stale_skip_fails() {
        let json = r#"{"cases": []}"#;
        check_file::<Tensor>(json, &["nope"], |_, _, _| ());
    }
}

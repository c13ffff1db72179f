//! Dense layers: [`Linear`], [`Flatten`], [`Embedding`], and [`Sequential`] to chain modules.

use sinew_autograd::{Param, Var};
use sinew_tensor::{DType, Generator, Tensor};

use crate::init;
use crate::module::{Forward, Module, Visitor};

/// `y = x·Wᵀ + b` (`nn.Linear`). Weight `(out_features, in_features)`, bias
/// `(out_features)`, both initialised as PyTorch does: `U(-1/√in, 1/√in)`.
///
/// # Panics
/// `forward` panics with the layer's name and both shapes if the input's last dimension
/// is not `in_features`.
///
/// ```
/// use sinew_nn::{Forward, Linear};
/// use sinew_autograd::Var;
/// use sinew_tensor::{Generator, Tensor};
/// let fc = Linear::new(3, 2, &mut Generator::new(0));
/// let y = fc.forward(&Var::constant(Tensor::ones(&[5, 3])));
/// assert_eq!(y.dims(), &[5, 2]);
/// ```
#[derive(Clone, Debug)]
pub struct Linear {
    /// `(out_features, in_features)`.
    pub weight: Param,
    /// `(out_features)`, if the layer has a bias.
    pub bias: Option<Param>,
}

impl Linear {
    /// A layer with bias, PyTorch's default initialisation.
    ///
    /// ```
    /// use sinew_nn::{Forward, Linear};
    /// use sinew_autograd::Var;
    /// use sinew_tensor::{Generator, Tensor};
    /// // nn.Linear(4, 2): weight and bias U(-1/√4, 1/√4)
    /// let fc = Linear::new(4, 2, &mut Generator::new(0));
    /// assert_eq!(fc.weight.value().dims(), &[2, 4]);
    /// assert!(fc.weight.value().abs().max_all().item() <= 0.5);
    /// // a zero input gives the bias
    /// let bias = fc.bias.as_ref().unwrap().value();
    /// assert_eq!(fc.forward(&Var::constant(Tensor::zeros(&[1, 4]))).value().to_vec::<f32>(), bias.to_vec::<f32>());
    /// ```
    pub fn new(in_features: usize, out_features: usize, g: &mut Generator) -> Self {
        Linear::with_bias(in_features, out_features, true, g)
    }

    /// A layer with or without bias.
    ///
    /// ```
    /// use sinew_nn::{Forward, Linear};
    /// use sinew_autograd::Var;
    /// use sinew_tensor::Tensor;
    /// // nn.Linear(2, 1, bias=False): y = x Wᵀ
    /// let fc = Linear::with_bias(2, 1, false, &mut sinew_tensor::Generator::new(0));
    /// assert!(fc.bias.is_none());
    /// fc.weight.set_value(Tensor::from_vec(vec![2.0f32, -1.0], &[1, 2])?);
    /// let x = Var::constant(Tensor::from_vec(vec![3.0f32, 4.0, 1.0, 1.0], &[2, 2])?);
    /// assert_eq!(fc.forward(&x).value().to_vec::<f32>(), vec![2.0, 1.0]);
    /// # Ok::<(), sinew_tensor::TensorError>(())
    /// ```
    pub fn with_bias(in_features: usize, out_features: usize, bias: bool, g: &mut Generator) -> Self {
        let bound = 1.0 / (in_features.max(1) as f64).sqrt();
        // kaiming_uniform(a = √5) on (out, in) is exactly U(-1/√in, 1/√in)
        let weight = Param::new("weight", init::uniform(&[out_features, in_features], -bound, bound, g));
        let bias = bias.then(|| Param::new("bias", init::uniform(&[out_features], -bound, bound, g)));
        Linear { weight, bias }
    }

    /// `(in_features, out_features)`.
    ///
    /// ```
    /// use sinew_nn::Linear;
    /// use sinew_tensor::Generator;
    /// assert_eq!(Linear::new(3, 7, &mut Generator::new(0)).features(), (3, 7));
    /// ```
    pub fn features(&self) -> (usize, usize) {
        let w = self.weight.value();
        (w.dims()[1], w.dims()[0])
    }
}

impl Module for Linear {
    fn visit(&self, v: &mut dyn Visitor) {
        v.param("weight", &self.weight);
        if let Some(b) = &self.bias {
            v.param("bias", b);
        }
    }
    fn extra_repr(&self) -> String {
        let (fin, fout) = self.features();
        format!("in_features={fin}, out_features={fout}, bias={}", py_bool(self.bias.is_some()))
    }
}

impl std::fmt::Display for Linear {
    /// PyTorch's `print(module)`: see [`Module::tree`].
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        crate::module::ModuleTree(self).fmt(f)
    }
}

impl Forward for Linear {
    #[track_caller]
    fn forward(&self, x: &Var) -> Var {
        let (fin, fout) = self.features();
        assert!(
            x.ndim() >= 1 && x.dims()[x.ndim() - 1] == fin,
            "Linear({fin}, {fout}): expected input of shape [.., {fin}], got {:?}",
            x.dims()
        );
        let rows = x.dims()[..x.ndim() - 1].iter().product::<usize>();
        if !sinew_autograd::is_grad_enabled() && (2..THIN_ROWS).contains(&rows) {
            // inference on a few rows: x·Wᵀ on the cached row-major Wᵀ, which faer
            // multiplies without repacking the weight (a MiniLM forward on 16 tokens: 36%
            // faster); one row stays on W (a matrix-vector product gains nothing); from 32
            // rows the product is no longer thin and W is packed anyway
            let y = x.matmul(&Var::constant(self.weight.transposed()));
            let y = match &self.bias {
                Some(b) => &y + &b.var(),
                None => y,
            };
            return crate::hooks::observed(self, y);
        }
        let y = crate::functional::linear(x, &self.weight.var(), self.bias.as_ref().map(Param::var).as_ref());
        crate::hooks::observed(self, y)
    }
}

/// Below this many rows (a thin product, which faer runs without packing the weight), an
/// inference-mode [`Linear`] multiplies by its weight's cached transpose
/// ([`Param::transposed`]).
const THIN_ROWS: usize = 32;

/// Flattens dimensions `start..=end` (`nn.Flatten`, default `1..=-1`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Flatten {
    /// First dimension flattened.
    pub start: isize,
    /// Last dimension flattened.
    pub end: isize,
}

impl Default for Flatten {
    fn default() -> Self {
        Flatten { start: 1, end: -1 }
    }
}

impl Flatten {
    /// PyTorch's default: keep the batch dimension, flatten the rest.
    ///
    /// ```
    /// use sinew_nn::{Flatten, Forward};
    /// use sinew_autograd::Var;
    /// use sinew_tensor::Tensor;
    /// let x = Var::constant(Tensor::from_vec((0..24).map(|i| i as f32).collect(), &[2, 3, 4])?);
    /// let y = Flatten::new().forward(&x);
    /// assert_eq!(y.dims(), &[2, 12]);
    /// assert_eq!(y.value().to_vec::<f32>(), x.value().to_vec::<f32>()); // same order
    /// # Ok::<(), sinew_tensor::TensorError>(())
    /// ```
    pub fn new() -> Self {
        Flatten::default()
    }
}

impl Module for Flatten {
    fn visit(&self, _: &mut dyn Visitor) {}
    fn extra_repr(&self) -> String {
        format!("start_dim={}, end_dim={}", self.start, self.end)
    }
}

impl Forward for Flatten {
    fn forward(&self, x: &Var) -> Var {
        crate::hooks::observed(self, x.flatten(self.start, self.end))
    }
}

/// A lookup table of `num_embeddings` vectors of `embedding_dim` (`nn.Embedding`),
/// initialised `N(0, 1)`; [`Embedding::lookup`] takes `i64` ids of any shape.
#[derive(Clone, Debug)]
pub struct Embedding {
    /// `(num_embeddings, embedding_dim)`.
    pub weight: Param,
    /// A row that gets no gradient (PyTorch's `padding_idx`); see
    /// [`Embedding::with_padding_idx`].
    pub padding_idx: Option<usize>,
}

impl Embedding {
    /// A table of `num` vectors of size `dim`.
    ///
    /// ```
    /// use sinew_nn::Embedding;
    /// use sinew_tensor::Generator;
    /// // nn.Embedding(10, 3): N(0, 1) vectors
    /// let emb = Embedding::new(10, 3, &mut Generator::new(0));
    /// assert_eq!(emb.weight.value().dims(), &[10, 3]);
    /// ```
    pub fn new(num: usize, dim: usize, g: &mut Generator) -> Self {
        Embedding { weight: Param::new("weight", init::normal(&[num, dim], 0.0, 1.0, g)), padding_idx: None }
    }

    /// The same table with row `padding_idx` zeroed and excluded from gradients
    /// (`nn.Embedding(num, dim, padding_idx=p)`).
    ///
    /// # Panics
    /// If `padding_idx` is out of range.
    ///
    /// ```
    /// use sinew_nn::Embedding;
    /// use sinew_tensor::Generator;
    /// let emb = Embedding::new(10, 3, &mut Generator::new(0)).with_padding_idx(0);
    /// assert_eq!(emb.weight.value().to_vec::<f32>()[..3], [0.0, 0.0, 0.0]);
    /// assert_eq!(emb.to_string(), "Embedding(10, 3, padding_idx=0)");
    /// ```
    #[track_caller]
    pub fn with_padding_idx(mut self, padding_idx: usize) -> Self {
        let mut w = self.weight.value();
        let (num, dim) = (w.dims()[0], w.dims()[1]);
        assert!(
            padding_idx < num,
            "Embedding({num}, {dim}): padding_idx {padding_idx} is out of range 0..{num}"
        );
        let zero_row = Tensor::zeros_dtype(&[1, dim], w.dtype());
        w = Tensor::cat(
            &[&w.narrow(0, 0, padding_idx), &zero_row, &w.narrow(0, padding_idx + 1, num - padding_idx - 1)],
            0,
        );
        self.weight.set_value(w);
        self.padding_idx = Some(padding_idx);
        self
    }

    /// The vectors of `ids` (`i64`, any shape): output shape `ids.shape + [dim]`.
    ///
    /// # Panics
    /// If `ids` is not `i64` or an id is out of range (the message names it).
    ///
    /// ```
    /// use sinew_nn::Embedding;
    /// use sinew_tensor::{Generator, Tensor};
    /// let emb = Embedding::new(10, 3, &mut Generator::new(0));
    /// let ids = Tensor::from_vec(vec![1i64, 4, 4, 0], &[2, 2])?;
    /// let out = emb.lookup(&ids);
    /// assert_eq!(out.dims(), &[2, 2, 3]);
    /// let (w, v) = (emb.weight.value().to_vec::<f32>(), out.value().to_vec::<f32>());
    /// assert_eq!(v[3..6], w[12..15]); // ids[0][1] = 4 is row 4 of the table
    /// assert_eq!(v[9..12], w[0..3]);
    /// # Ok::<(), sinew_tensor::TensorError>(())
    /// ```
    #[track_caller]
    pub fn lookup(&self, ids: &Tensor) -> Var {
        crate::functional::embedding_with_padding(ids, &self.weight.var(), self.padding_idx)
    }
}

impl Module for Embedding {
    fn visit(&self, v: &mut dyn Visitor) {
        v.param("weight", &self.weight);
    }
    fn extra_repr(&self) -> String {
        let w = self.weight.value();
        match self.padding_idx {
            Some(p) => format!("{}, {}, padding_idx={p}", w.dims()[0], w.dims()[1]),
            None => format!("{}, {}", w.dims()[0], w.dims()[1]),
        }
    }
}
impl std::fmt::Display for Embedding {
    /// PyTorch's `print(module)`: see [`Module::tree`].
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        crate::module::ModuleTree(self).fmt(f)
    }
}

impl Forward for Embedding {
    /// Looks up the ids held (as numbers) in `x`'s value, so that an embedding can sit in
    /// a [`Sequential`] fed float tensors; a float id must be a whole number (`2.0`, not
    /// `2.5`, which would be truncated silently).
    ///
    /// # Panics
    /// As [`Embedding::lookup`], and for a float id that is not a whole number.
    #[track_caller]
    fn forward(&self, x: &Var) -> Var {
        let ids = x.value();
        if ids.dtype().is_float()
            && let Some(bad) = ids.to_vec::<f64>().into_iter().find(|v| v.fract() != 0.0 || !v.is_finite())
        {
            let w = self.weight.value();
            panic!(
                "Embedding({}, {}): ids must be int64 or whole numbers, got {bad}",
                w.dims()[0],
                w.dims()[1]
            );
        }
        crate::hooks::observed(self, self.lookup(&ids.to_dtype(DType::I64)))
    }
}

/// Modules applied in order, named `0`, `1`, ... (`nn.Sequential`).
///
/// ```
/// use sinew_nn::{Linear, Module, Relu, Sequential};
/// use sinew_tensor::Generator;
/// let mut g = Generator::new(0);
/// let net = Sequential::new().add(Linear::new(4, 8, &mut g)).add(Relu).add(Linear::new(8, 3, &mut g));
/// let names: Vec<String> = net.named_parameters().into_iter().map(|(n, _)| n).collect();
/// assert_eq!(names, ["0.weight", "0.bias", "2.weight", "2.bias"]);
/// ```
#[derive(Default)]
pub struct Sequential {
    layers: Vec<Box<dyn Forward>>,
}

impl Sequential {
    /// An empty chain.
    ///
    /// ```
    /// use sinew_nn::{Forward, Sequential};
    /// use sinew_autograd::Var;
    /// use sinew_tensor::Tensor;
    /// let net = Sequential::new();
    /// assert!(net.is_empty());
    /// // an empty chain is the identity
    /// let x = Var::constant(Tensor::from_vec(vec![1.0f32, -2.0], &[2])?);
    /// assert_eq!(net.forward(&x).value().to_vec::<f32>(), vec![1.0, -2.0]);
    /// # Ok::<(), sinew_tensor::TensorError>(())
    /// ```
    pub fn new() -> Self {
        Sequential::default()
    }

    /// Appends a module (Keras' `model.add`).
    ///
    /// ```
    /// use sinew_nn::{Forward, Linear, Relu, Sequential};
    /// use sinew_autograd::Var;
    /// use sinew_tensor::{Generator, Tensor};
    /// let fc = Linear::new(2, 1, &mut Generator::new(0));
    /// fc.weight.set_value(Tensor::from_vec(vec![1.0f32, -1.0], &[1, 2])?);
    /// fc.bias.as_ref().unwrap().set_value(Tensor::zeros(&[1]));
    /// let net = Sequential::new().add(fc).add(Relu); // relu(x₀ - x₁)
    /// assert_eq!(net.len(), 2);
    /// let x = Var::constant(Tensor::from_vec(vec![1.0f32, 3.0, 3.0, 1.0], &[2, 2])?);
    /// assert_eq!(net.forward(&x).value().to_vec::<f32>(), vec![0.0, 2.0]);
    /// # Ok::<(), sinew_tensor::TensorError>(())
    /// ```
    #[allow(clippy::should_implement_trait)]
    pub fn add(mut self, layer: impl Forward + 'static) -> Self {
        self.layers.push(Box::new(layer));
        self
    }

    /// Appends a boxed module.
    ///
    /// ```
    /// use sinew_nn::{Forward, Relu, Sequential};
    /// use sinew_autograd::Var;
    /// use sinew_tensor::Tensor;
    /// let mut net = Sequential::new();
    /// for _ in 0..2 {
    ///     net.push(Box::new(Relu)); // modules chosen at run time
    /// }
    /// assert_eq!(net.len(), 2);
    /// let x = Var::constant(Tensor::from_vec(vec![-1.0f32, 2.0], &[2])?);
    /// assert_eq!(net.forward(&x).value().to_vec::<f32>(), vec![0.0, 2.0]);
    /// # Ok::<(), sinew_tensor::TensorError>(())
    /// ```
    pub fn push(&mut self, layer: Box<dyn Forward>) {
        self.layers.push(layer);
    }

    /// Number of modules.
    pub fn len(&self) -> usize {
        self.layers.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.layers.is_empty()
    }

    /// The modules, in order.
    ///
    /// ```
    /// use sinew_nn::{Linear, Module, Relu, Sequential};
    /// use sinew_tensor::Generator;
    /// let net = Sequential::new().add(Linear::new(2, 3, &mut Generator::new(0))).add(Relu);
    /// let kinds: Vec<&str> = net.layers().map(|l| l.type_name()).collect();
    /// assert_eq!(kinds, ["Linear", "Relu"]);
    /// ```
    pub fn layers(&self) -> impl Iterator<Item = &dyn Forward> {
        self.layers.iter().map(|l| l.as_ref())
    }
}

impl Module for Sequential {
    fn visit(&self, v: &mut dyn Visitor) {
        for (i, l) in self.layers.iter().enumerate() {
            v.module(&i.to_string(), l.as_ref());
        }
    }
}

impl std::fmt::Display for Sequential {
    /// PyTorch's `print(module)`: see [`Module::tree`].
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        crate::module::ModuleTree(self).fmt(f)
    }
}

/// PyTorch's spelling of a flag in a module's `repr`.
pub(crate) fn py_bool(b: bool) -> &'static str {
    if b { "True" } else { "False" }
}

impl Forward for Sequential {
    fn forward(&self, x: &Var) -> Var {
        let y = self.layers.iter().fold(x.clone(), |h, l| {
            // reports each layer's output, so that layers which do not report themselves
            // (written outside this crate) are seen too
            crate::hooks::observed(&**l, l.forward(&h))
        });
        crate::hooks::observed(self, y)
    }
}

impl std::fmt::Debug for Sequential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Sequential({} modules)", self.layers.len())
    }
}

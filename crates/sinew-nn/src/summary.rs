//! A model summary like Keras' `model.summary()`: one row per layer with its output shape
//! and parameter count, then the totals.

use std::fmt;

use sinew_autograd::{Var, no_grad};
use sinew_tensor::{DType, Tensor};

use crate::linear::Sequential;
use crate::module::{Buffer, Module, Visitor};

/// One row of a [`Summary`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SummaryRow {
    /// The layer's name in the state dict (`0`, `encoder`).
    pub name: String,
    /// Its type and configuration as [`Module::tree`] shows it on one line
    /// (`Linear(in_features=4, out_features=8, bias=True)`; children are not listed).
    pub layer: String,
    /// Its output shape for the summarised input, where the summary could run the layer
    /// on its own ([`Sequential::summary`]); `None` otherwise.
    pub output_shape: Option<Vec<usize>>,
    /// Parameters of the layer and its children.
    pub params: usize,
}

/// A model's layers, output shapes and parameter counts (Keras' `model.summary()`); its
/// `Display` is the table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Summary {
    /// The model's type (`Sequential`).
    pub model: String,
    /// One row per direct child of the model, in visit order.
    pub rows: Vec<SummaryRow>,
    /// The input shape summarised, if one was given.
    pub input_shape: Option<Vec<usize>>,
    /// The model's output shape for that input.
    pub output_shape: Option<Vec<usize>>,
    /// All parameters.
    pub total_params: usize,
    /// Elements of all buffers (running statistics): state that is not trained.
    pub buffer_elements: usize,
}

/// The parameter table of any module, one row per direct child (output shapes need
/// [`Sequential::summary`], which can run its layers one at a time).
///
/// ```
/// use sinew_nn::{Linear, Lstm, Module, RecurrentOptions, summary};
/// use sinew_tensor::Generator;
///
/// #[derive(Module)]
/// struct Tagger {
///     lstm: Lstm,
///     head: Linear,
/// }
///
/// let mut g = Generator::new(0);
/// let model = Tagger { lstm: Lstm::new(8, 16, RecurrentOptions::default(), &mut g), head: Linear::new(16, 5, &mut g) };
/// let s = summary(&model);
/// assert_eq!(s.rows.len(), 2);
/// assert_eq!(s.rows[0].params, 4 * 16 * (8 + 16) + 2 * 4 * 16);
/// assert_eq!(s.total_params, model.num_parameters());
/// assert!(s.to_string().contains("head"));
/// ```
pub fn summary(module: &dyn Module) -> Summary {
    let rows = child_rows(module).into_iter().map(|(name, layer, params)| SummaryRow {
        name,
        layer,
        output_shape: None,
        params,
    });
    Summary {
        model: module.type_name().to_string(),
        rows: rows.collect(),
        input_shape: None,
        output_shape: None,
        total_params: module.num_parameters(),
        buffer_elements: module.named_buffers().iter().map(|(_, b)| b.value().numel()).sum(),
    }
}

impl Sequential {
    /// Runs a zero input of `input_shape` through the layers one at a time (without
    /// gradients, and restoring every buffer and random generator afterwards, so running
    /// statistics and dropout masks are as they were) and tabulates each layer's output
    /// shape and parameters, as Keras' `model.summary()`. The input is in the dtype of the
    /// model's first parameter (f32 without parameters).
    ///
    /// # Panics
    /// As the layers do for an input they cannot take (the message names the layer).
    ///
    /// ```
    /// use sinew_nn::{Conv2d, Flatten, Linear, MaxPool2d, Relu, Sequential};
    /// use sinew_tensor::{Conv2dOptions, Generator};
    /// let mut g = Generator::new(0);
    /// let net = Sequential::new()
    ///     .add(Conv2d::new(1, 6, 5, Conv2dOptions::default(), &mut g))
    ///     .add(Relu)
    ///     .add(MaxPool2d::new(2))
    ///     .add(Flatten::default())
    ///     .add(Linear::new(6 * 12 * 12, 10, &mut g));
    /// let s = net.summary(&[1, 1, 28, 28]);
    /// let shapes: Vec<Vec<usize>> = s.rows.iter().map(|r| r.output_shape.clone().unwrap()).collect();
    /// assert_eq!(shapes, [vec![1, 6, 24, 24], vec![1, 6, 24, 24], vec![1, 6, 12, 12], vec![1, 864], vec![1, 10]]);
    /// assert_eq!(s.rows[0].params, 6 * 25 + 6);
    /// assert_eq!(s.total_params, 156 + 8650);
    /// println!("{s}");
    /// ```
    #[track_caller]
    pub fn summary(&self, input_shape: &[usize]) -> Summary {
        let mut s = summary(self);
        let dtype = self.parameters().first().map_or(DType::F32, |p| p.value().dtype());
        let buffers = self.named_buffers();
        let saved: Vec<Tensor> = buffers.iter().map(|(_, b)| b.value()).collect();
        let generators = self.generator_states();
        let mut x = Var::constant(Tensor::zeros_dtype(input_shape, dtype));
        no_grad(|| {
            for (row, layer) in s.rows.iter_mut().zip(self.layers()) {
                x = layer.forward(&x);
                row.output_shape = Some(x.dims().to_vec());
            }
        });
        for ((_, b), t) in buffers.iter().zip(saved) {
            b.set(t);
        }
        self.load_generator_states(&generators).expect("the model's own generator states");
        s.input_shape = Some(input_shape.to_vec());
        s.output_shape = Some(x.dims().to_vec());
        s
    }
}

/// `(name, one-line description, parameter count)` of each direct child.
fn child_rows(m: &dyn Module) -> Vec<(String, String, usize)> {
    struct Rows(Vec<(String, String, usize)>);
    impl Visitor for Rows {
        fn param(&mut self, _: &str, _: &sinew_autograd::Param) {}
        fn buffer(&mut self, _: &str, _: &Buffer) {}
        fn module(&mut self, name: &str, m: &dyn Module) {
            let line = format!("{}({})", m.type_name(), m.extra_repr());
            self.0.push((name.to_string(), line, m.num_parameters()));
        }
    }
    let mut rows = Rows(Vec::new());
    m.visit(&mut rows);
    rows.0
}

impl fmt::Display for Summary {
    /// The Keras-style table:
    ///
    /// ```text
    /// Model: Sequential, input [1, 1, 28, 28]
    /// name  layer                                  output shape     params
    /// 0     Conv2d(1, 6, kernel_size=(5, 5), ...)  [1, 6, 24, 24]      156
    /// ...
    /// Total params: 8,806   Buffers: 0 elements
    /// ```
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let shape = |s: &Option<Vec<usize>>| s.as_ref().map_or("-".to_string(), |s| format!("{s:?}"));
        write!(f, "Model: {}", self.model)?;
        if let Some(i) = &self.input_shape {
            write!(f, ", input {i:?}")?;
        }
        writeln!(f)?;
        let header = ["name", "layer", "output shape", "params"];
        let cells: Vec<[String; 4]> = self
            .rows
            .iter()
            .map(|r| [r.name.clone(), r.layer.clone(), shape(&r.output_shape), thousands(r.params)])
            .collect();
        let width =
            |k: usize| cells.iter().map(|c| c[k].chars().count()).chain([header[k].len()]).max().unwrap_or(0);
        let w = [width(0), width(1), width(2), width(3)];
        let rule = "-".repeat(w.iter().sum::<usize>() + 6);
        writeln!(f, "{rule}")?;
        let row = |f: &mut fmt::Formatter<'_>, c: [&str; 4]| {
            writeln!(
                f,
                "{:<w0$}  {:<w1$}  {:<w2$}  {:>w3$}",
                c[0],
                c[1],
                c[2],
                c[3],
                w0 = w[0],
                w1 = w[1],
                w2 = w[2],
                w3 = w[3]
            )
        };
        row(f, header)?;
        writeln!(f, "{rule}")?;
        for c in &cells {
            row(f, [&c[0], &c[1], &c[2], &c[3]])?;
        }
        writeln!(f, "{rule}")?;
        write!(f, "Total params: {}", thousands(self.total_params))?;
        if self.buffer_elements > 0 {
            write!(f, "   Buffers: {} elements", thousands(self.buffer_elements))?;
        }
        if let Some(o) = &self.output_shape {
            write!(f, "   Output: {o:?}")?;
        }
        Ok(())
    }
}

/// `8806` as `8,806`.
fn thousands(n: usize) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, ch) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(ch);
    }
    out
}

//! A model summary like Keras' `model.summary()`: one row per layer with its output shape
//! and parameter count, then the totals.

use std::fmt;

use sinew_autograd::{Var, no_grad};
use sinew_tensor::{DType, Tensor};

use crate::linear::Sequential;
use crate::module::{Forward, Module, for_each_submodule};

/// One row of a [`Summary`]: one named submodule.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SummaryRow {
    /// The module's name in the state dict (`0`, `encoder.layer.1`).
    pub name: String,
    /// How deep it sits: 1 for the model's direct children, 2 for theirs, ...
    pub depth: usize,
    /// Its type and configuration as [`Module::tree`] shows it on one line
    /// (`Linear(in_features=4, out_features=8, bias=True)`; children are not listed).
    pub layer: String,
    /// Its output shape for the summarised input ([`summary_with_input`]), when it reported
    /// its output (every layer of sinew does; see [`hooks`](crate::hooks)); `None`
    /// otherwise.
    pub output_shape: Option<Vec<usize>>,
    /// Parameters (trainable scalars) of the module and its children.
    pub params: usize,
    /// Elements of the buffers (running statistics) of the module and its children.
    pub buffers: usize,
}

/// A model's submodules, output shapes and parameter counts (Keras' `model.summary()`,
/// with torchinfo's memory estimate); its `Display` is the table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Summary {
    /// The model's type (`Sequential`).
    pub model: String,
    /// One row per submodule at every depth, each before its children, in visit order.
    pub rows: Vec<SummaryRow>,
    /// The input shape summarised, if one was given.
    pub input_shape: Option<Vec<usize>>,
    /// The model's output shape for that input.
    pub output_shape: Option<Vec<usize>>,
    /// Trainable scalars: every parameter ([`Module::num_parameters`]).
    pub trainable_params: usize,
    /// Scalars that are state but not trained: the buffers' elements (batch norm's running
    /// statistics and counter), which Keras counts as non-trainable parameters.
    pub non_trainable_params: usize,
    /// `trainable_params + non_trainable_params`.
    pub total_params: usize,
    /// Bytes of the parameters.
    pub param_bytes: usize,
    /// Bytes of the buffers.
    pub buffer_bytes: usize,
    /// Bytes of the input and of the output of every module without children for the
    /// summarised input, a view of an earlier tensor counted once: what one forward pass
    /// materialises, and about what a training step keeps for its backward pass
    /// (torchinfo's "forward pass size"). `None` without input.
    pub activation_bytes: Option<usize>,
}

/// The parameter table of any module: one row per submodule at every depth (output shapes
/// need an input: [`summary_with_input`]).
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
    let buffers = module.named_buffers();
    let params = module.parameters();
    let trainable_params = module.num_parameters();
    let non_trainable_params = buffers.iter().map(|(_, b)| b.value().numel()).sum();
    Summary {
        model: module.type_name().to_string(),
        rows: submodule_rows(module),
        input_shape: None,
        output_shape: None,
        trainable_params,
        non_trainable_params,
        total_params: trainable_params + non_trainable_params,
        param_bytes: params.iter().map(|p| bytes(&p.value())).sum(),
        buffer_bytes: buffers.iter().map(|(_, b)| bytes(&b.value())).sum(),
        activation_bytes: None,
    }
}

/// Runs a zero input of `input_shape` through `model` once (without gradients, restoring
/// every buffer and random generator afterwards, so running statistics and dropout masks
/// are as they were) and tabulates each submodule's output shape and parameters, as
/// Keras' `model.summary()`. The input is in the dtype of the model's first parameter
/// (f32 without parameters). The output shapes are those of the forward pass itself,
/// recorded by [`hooks::record_outputs`](crate::hooks::record_outputs); a module called
/// twice shows its first output.
///
/// # Panics
/// As the model does for an input it cannot take (the message names the layer).
///
/// ```
/// use sinew_autograd::Var;
/// use sinew_nn::{Conv2d, Forward, Linear, MaxPool2d, Module, Relu, summary_with_input};
/// use sinew_tensor::{Conv2dOptions, Generator};
///
/// #[derive(Module)]
/// struct Net {
///     conv: Conv2d,
///     act: Relu,
///     pool: MaxPool2d,
///     fc: Linear,
/// }
/// impl Forward for Net {
///     fn forward(&self, x: &Var) -> Var {
///         let h = self.pool.forward(&self.act.forward(&self.conv.forward(x)));
///         self.fc.forward(&h.flatten(1, -1))
///     }
/// }
///
/// let mut g = Generator::new(0);
/// let net = Net {
///     conv: Conv2d::new(1, 6, 5, Conv2dOptions::default(), &mut g),
///     act: Relu,
///     pool: MaxPool2d::new(2),
///     fc: Linear::new(6 * 12 * 12, 10, &mut g),
/// };
/// let s = summary_with_input(&net, &[1, 1, 28, 28]);
/// let shapes: Vec<Vec<usize>> = s.rows.iter().map(|r| r.output_shape.clone().unwrap()).collect();
/// assert_eq!(shapes, [vec![1, 6, 24, 24], vec![1, 6, 24, 24], vec![1, 6, 12, 12], vec![1, 10]]);
/// assert_eq!(s.rows[0].params, 6 * 25 + 6);
/// assert_eq!(s.trainable_params, 156 + 8650);
/// assert_eq!(s.output_shape, Some(vec![1, 10]));
/// println!("{s}");
/// ```
#[track_caller]
pub fn summary_with_input(model: &dyn Forward, input_shape: &[usize]) -> Summary {
    let mut s = summary(model);
    let dtype = model.parameters().first().map_or(DType::F32, |p| p.value().dtype());
    let buffers = model.named_buffers();
    let saved: Vec<Tensor> = buffers.iter().map(|(_, b)| b.value()).collect();
    let generators = model.generator_states();
    let x = Var::constant(Tensor::zeros_dtype(input_shape, dtype));
    let (y, outputs) = no_grad(|| crate::hooks::record_outputs(model, || model.forward(&x)));
    for ((_, b), t) in buffers.iter().zip(saved) {
        b.set(t);
    }
    model.load_generator_states(&generators).expect("the model's own generator states");
    for row in &mut s.rows {
        if let Some(o) = outputs.iter().find(|o| o.name == row.name) {
            row.output_shape = Some(o.output.dims().to_vec());
        }
    }
    // the outputs of modules without children, each storage once (a flatten or an
    // evaluation-mode dropout returns a view of its input, which costs nothing)
    let is_leaf = |i: usize| s.rows.get(i + 1).is_none_or(|next| next.depth <= s.rows[i].depth);
    let leaves: Vec<&str> =
        (0..s.rows.len()).filter(|&i| is_leaf(i)).map(|i| s.rows[i].name.as_str()).collect();
    let mut counted: Vec<&Tensor> = vec![x.value()];
    for o in outputs.iter().filter(|o| leaves.contains(&o.name.as_str())) {
        if !counted.iter().any(|t| t.shares_storage(o.output.value())) {
            counted.push(o.output.value());
        }
    }
    let activation_bytes = counted.iter().map(|t| bytes(t)).sum();
    s.input_shape = Some(input_shape.to_vec());
    s.output_shape = Some(y.dims().to_vec());
    s.activation_bytes = Some(activation_bytes);
    s
}

impl Sequential {
    /// [`summary_with_input`] of this chain (Keras' `model.summary()` after `build`).
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
    /// ```
    #[track_caller]
    pub fn summary(&self, input_shape: &[usize]) -> Summary {
        summary_with_input(self, input_shape)
    }
}

fn bytes(t: &Tensor) -> usize {
    t.numel() * t.dtype().size_in_bytes()
}

/// A row for each submodule at every depth, parents before their children.
fn submodule_rows(m: &dyn Module) -> Vec<SummaryRow> {
    let mut rows = Vec::new();
    for_each_submodule(m, &mut |name, depth, m| {
        rows.push(SummaryRow {
            name: name.to_string(),
            depth,
            layer: format!("{}({})", m.type_name(), m.extra_repr()),
            output_shape: None,
            params: m.num_parameters(),
            buffers: m.named_buffers().iter().map(|(_, b)| b.value().numel()).sum(),
        })
    });
    rows
}

impl fmt::Display for Summary {
    /// The Keras-style table (children's names indented under their parents'):
    ///
    /// ```text
    /// Model: Sequential, input [1, 1, 28, 28]
    /// ----------------------------------------------------------------------
    /// name  layer                                  output shape      params
    /// ----------------------------------------------------------------------
    /// 0     Conv2d(1, 6, kernel_size=(5, 5), ...)  [1, 6, 24, 24]       156
    /// ...
    /// ----------------------------------------------------------------------
    /// Total params: 8,806 (34.40 KB)
    /// Trainable params: 8,806 (34.40 KB)
    /// Non-trainable params: 0 (0 B)
    /// Output: [1, 10]   Activations: 21.32 KB (one forward pass)
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
            .map(|r| {
                let name = format!("{}{}", "  ".repeat(r.depth.saturating_sub(1)), r.name);
                [name, r.layer.clone(), shape(&r.output_shape), thousands(r.params)]
            })
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
        let (p, b) = (self.param_bytes, self.buffer_bytes);
        writeln!(f, "Total params: {} ({})", thousands(self.total_params), human_bytes(p + b))?;
        writeln!(f, "Trainable params: {} ({})", thousands(self.trainable_params), human_bytes(p))?;
        write!(f, "Non-trainable params: {} ({})", thousands(self.non_trainable_params), human_bytes(b))?;
        if let Some(o) = &self.output_shape {
            write!(f, "\nOutput: {o:?}")?;
        }
        if let Some(a) = self.activation_bytes {
            write!(f, "   Activations: {} (one forward pass)", human_bytes(a))?;
        }
        Ok(())
    }
}

/// `1536` as `1.50 KB` (powers of 1024, as Keras).
fn human_bytes(n: usize) -> String {
    let mut v = n as f64;
    for unit in ["B", "KB", "MB", "GB"] {
        if v < 1024.0 || unit == "GB" {
            return if unit == "B" { format!("{n} B") } else { format!("{v:.2} {unit}") };
        }
        v /= 1024.0;
    }
    unreachable!()
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

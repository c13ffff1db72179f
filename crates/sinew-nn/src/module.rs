//! The [`Module`] trait (parameters, buffers, children, train/eval), [`Forward`]
//! (`forward(&Var) -> Var`), [`Buffer`], and the name-collecting visitors behind
//! `named_parameters`, `named_buffers` and `state_dict`.

use std::sync::{Arc, Mutex, RwLock, RwLockWriteGuard};

use sinew_autograd::{Param, Var};
use sinew_tensor::{Generator, GeneratorState, Tensor};

/// A non-trainable tensor a module keeps as state (batch norm's running statistics),
/// shared by clones and saved in the state dict.
#[derive(Clone)]
pub struct Buffer {
    value: Arc<RwLock<Tensor>>,
}

impl Buffer {
    /// A buffer holding `value`.
    ///
    /// ```
    /// use sinew_nn::Buffer;
    /// use sinew_tensor::Tensor;
    /// let b = Buffer::new(Tensor::zeros(&[3]));
    /// assert_eq!(b.value().to_vec::<f32>(), vec![0.0; 3]);
    /// // clones share the value, as a module's clones share their running statistics
    /// let c = b.clone();
    /// c.set(Tensor::ones(&[3]));
    /// assert_eq!(b.value().to_vec::<f32>(), vec![1.0; 3]);
    /// ```
    pub fn new(value: Tensor) -> Buffer {
        Buffer { value: Arc::new(RwLock::new(value)) }
    }

    /// The current value: a tensor sharing the buffer's storage (cheap), holding no lock,
    /// so `b.set(b.value() * 0.9)` works.
    ///
    /// ```
    /// use sinew_nn::Buffer;
    /// use sinew_tensor::Tensor;
    /// let b = Buffer::new(Tensor::ones(&[2]));
    /// b.set(b.value().mul_scalar(0.5));
    /// assert_eq!(b.value().to_vec::<f32>(), vec![0.5, 0.5]);
    /// ```
    pub fn value(&self) -> Tensor {
        self.value.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Write access.
    ///
    /// ```
    /// use sinew_nn::Buffer;
    /// use sinew_tensor::Tensor;
    /// let b = Buffer::new(Tensor::ones(&[2]));
    /// {
    ///     let mut v = b.value_mut();
    ///     *v = v.mul_scalar(3.0);
    /// } // the write lock is released here
    /// assert_eq!(b.value().to_vec::<f32>(), vec![3.0, 3.0]);
    /// ```
    pub fn value_mut(&self) -> RwLockWriteGuard<'_, Tensor> {
        self.value.write().unwrap_or_else(|e| e.into_inner())
    }

    /// Replaces the value.
    ///
    /// ```
    /// use sinew_nn::Buffer;
    /// use sinew_tensor::Tensor;
    /// let running_mean = Buffer::new(Tensor::zeros(&[2]));
    /// // an exponential moving average step, as batch norm's (momentum 0.1)
    /// let batch_mean = Tensor::from_vec(vec![1.0f32, 2.0], &[2])?;
    /// running_mean.set(running_mean.value().mul_scalar(0.9).add(&batch_mean.mul_scalar(0.1)));
    /// assert!(running_mean.value().allclose(&Tensor::from_vec(vec![0.1f32, 0.2], &[2])?, 1e-6, 1e-7));
    /// # Ok::<(), sinew_tensor::TensorError>(())
    /// ```
    pub fn set(&self, value: Tensor) {
        *self.value_mut() = value;
    }
}

impl std::fmt::Debug for Buffer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let v = self.value();
        write!(f, "Buffer({} {:?})", v.dtype(), v.dims())
    }
}

/// What a module shows of itself: its own parameters and buffers, and its children.
/// Implemented by [`Module::visit`] and consumed by the collectors below.
pub trait Visitor {
    /// A parameter of the visited module, under its local name (`weight`).
    fn param(&mut self, name: &str, p: &Param);
    /// A buffer of the visited module (`running_mean`).
    fn buffer(&mut self, name: &str, b: &Buffer);
    /// A child module (`0`, `features`, `lstm`).
    fn module(&mut self, name: &str, m: &dyn Module);
    /// A random generator the visited module draws from while training (`Dropout`'s
    /// masks), so that a checkpoint can save its state. Ignored unless a visitor asks.
    fn generator(&mut self, name: &str, g: &Mutex<Generator>) {
        let _ = (name, g);
    }
}

/// A neural-network building block: it owns parameters, buffers and child modules, and
/// can switch between training and evaluation behaviour. `#[derive(Module)]` writes
/// [`Module::visit`] for a struct of layers; everything else is provided.
///
/// Names follow PyTorch (`0.weight`, `features.3.bias`, `bn.running_mean`), so state
/// dicts move between the two unchanged.
///
/// ```
/// use sinew_nn::{Forward, Linear, Module, Relu};
/// use sinew_autograd::Var;
/// use sinew_tensor::Generator;
///
/// #[derive(Module)]
/// struct Mlp {
///     hidden: Linear,
///     out: Linear,
///     #[module(skip)]
///     act: Relu,
/// }
///
/// impl Forward for Mlp {
///     fn forward(&self, x: &Var) -> Var {
///         self.out.forward(&self.act.forward(&self.hidden.forward(x)))
///     }
/// }
///
/// let mut g = Generator::new(0);
/// let net = Mlp { hidden: Linear::new(4, 8, &mut g), out: Linear::new(8, 2, &mut g), act: Relu };
/// let names: Vec<String> = net.named_parameters().into_iter().map(|(n, _)| n).collect();
/// assert_eq!(names, ["hidden.weight", "hidden.bias", "out.weight", "out.bias"]);
/// assert_eq!(net.num_parameters(), 4 * 8 + 8 + 8 * 2 + 2);
/// ```
pub trait Module: Send + Sync {
    /// Shows the module's own parameters and buffers, then its children, to `v`.
    fn visit(&self, v: &mut dyn Visitor);

    /// Sets this module's own training flag (layers that behave differently in training,
    /// such as dropout and batch norm, override it). [`Module::train`] and
    /// [`Module::eval`] call it on every module of the tree.
    fn set_own_training(&self, training: bool) {
        let _ = training;
    }

    /// The module's own configuration, shown in its line of [`Module::tree`] (PyTorch's
    /// `extra_repr`: `in_features=4, out_features=8, bias=True`). Empty by default.
    fn extra_repr(&self) -> String {
        String::new()
    }

    /// The module's type name without its path (`Linear`), for [`Module::tree`].
    fn type_name(&self) -> &'static str {
        let full = std::any::type_name::<Self>();
        let base = full.split('<').next().unwrap_or(full);
        base.rsplit("::").next().unwrap_or(base)
    }

    /// The module tree as PyTorch's `print(model)` shows it: each module's type and
    /// [`extra_repr`](Module::extra_repr), its children indented under `(name):`.
    ///
    /// ```
    /// use sinew_nn::{Linear, Module, Relu, Sequential};
    /// use sinew_tensor::Generator;
    /// let mut g = Generator::new(0);
    /// let net = Sequential::new().add(Linear::new(4, 8, &mut g)).add(Relu).add(Linear::new(8, 3, &mut g));
    /// assert_eq!(
    ///     net.tree().to_string(),
    ///     "Sequential(\n  \
    ///        (0): Linear(in_features=4, out_features=8, bias=True)\n  \
    ///        (1): Relu()\n  \
    ///        (2): Linear(in_features=8, out_features=3, bias=True)\n\
    ///      )"
    /// );
    /// ```
    fn tree(&self) -> ModuleTree<'_>
    where
        Self: Sized,
    {
        ModuleTree(self)
    }

    /// Every parameter with its qualified name, in PyTorch's `named_parameters` order.
    fn named_parameters(&self) -> Vec<(String, Param)> {
        let mut c = Collector::default();
        self.visit(&mut c);
        c.params
    }

    /// Every parameter, in order.
    fn parameters(&self) -> Vec<Param> {
        self.named_parameters().into_iter().map(|(_, p)| p).collect()
    }

    /// Every buffer with its qualified name.
    fn named_buffers(&self) -> Vec<(String, Buffer)> {
        let mut c = Collector::default();
        self.visit(&mut c);
        c.buffers
    }

    /// Total number of trainable scalars.
    fn num_parameters(&self) -> usize {
        self.parameters().iter().map(Param::numel).sum()
    }

    /// Switches the whole tree to training (`true`) or evaluation (`false`) behaviour.
    fn set_training(&self, training: bool) {
        struct Mode(bool);
        impl Visitor for Mode {
            fn param(&mut self, _: &str, _: &Param) {}
            fn buffer(&mut self, _: &str, _: &Buffer) {}
            fn module(&mut self, _: &str, m: &dyn Module) {
                m.set_training(self.0);
            }
        }
        self.set_own_training(training);
        self.visit(&mut Mode(training));
    }

    /// Training mode (dropout active, batch norm uses and updates batch statistics).
    fn train(&self) {
        self.set_training(true);
    }

    /// Evaluation mode (dropout off, batch norm uses its running statistics).
    fn eval(&self) {
        self.set_training(false);
    }

    /// Converts every parameter and floating-point buffer to `dtype` (PyTorch's
    /// `model.double()` / `model.float()`); integer buffers keep their type.
    fn cast(&self, dtype: sinew_tensor::DType) {
        for p in self.parameters() {
            p.cast(dtype);
        }
        for (_, b) in self.named_buffers() {
            let v = b.value();
            if v.dtype().is_float() {
                b.set(v.to_dtype(dtype));
            }
        }
    }

    /// The states of the random generators the module draws from in training mode
    /// (`Dropout`'s), by qualified name (`2.generator`), in visit order. They are not part
    /// of the state dict (PyTorch's has no such entries); a checkpoint that must resume a
    /// run exactly saves them too (`sinew_train`'s checkpoints do).
    ///
    /// ```
    /// use sinew_nn::{Dropout, Linear, Module, Sequential};
    /// use sinew_tensor::Generator;
    /// let mut g = Generator::new(0);
    /// let m = Sequential::new().add(Linear::new(2, 2, &mut g)).add(Dropout::new(0.5, 7));
    /// let saved = m.generator_states();
    /// assert_eq!(saved[0].0, "1.generator");
    /// m.load_generator_states(&saved).unwrap();
    /// ```
    fn generator_states(&self) -> Vec<(String, GeneratorState)> {
        let mut c = Collector::default();
        self.visit(&mut c);
        c.generators
    }

    /// Restores generator states saved by [`generator_states`](Module::generator_states).
    ///
    /// # Errors
    /// A [`LoadReport`] naming the generators without a saved state and the saved states
    /// without a generator; nothing is changed then.
    fn load_generator_states(&self, states: &[(String, GeneratorState)]) -> Result<(), LoadReport> {
        let current = self.generator_states();
        let mut report = LoadReport::default();
        for (name, _) in &current {
            if !states.iter().any(|(n, _)| n == name) {
                report.missing.push(name.clone());
            }
        }
        for (name, _) in states {
            if !current.iter().any(|(n, _)| n == name) {
                report.unexpected.push(name.clone());
            }
        }
        if !report.is_clean() {
            return Err(report);
        }
        struct Restore<'s> {
            prefix: String,
            states: &'s [(String, GeneratorState)],
        }
        impl Visitor for Restore<'_> {
            fn param(&mut self, _: &str, _: &Param) {}
            fn buffer(&mut self, _: &str, _: &Buffer) {}
            fn module(&mut self, name: &str, m: &dyn Module) {
                visit_child(self, |v| &mut v.prefix, name, m);
            }
            fn generator(&mut self, name: &str, g: &Mutex<Generator>) {
                let q = format!("{}{}", self.prefix, name);
                if let Some((_, state)) = self.states.iter().find(|(n, _)| *n == q) {
                    *g.lock().unwrap_or_else(|e| e.into_inner()) = Generator::from_state(*state);
                }
            }
        }
        self.visit(&mut Restore { prefix: String::new(), states });
        Ok(())
    }

    /// Parameters and buffers by qualified name, in PyTorch's `state_dict` order (each
    /// module's parameters, then its buffers, then its children).
    fn state_dict(&self) -> Vec<(String, Tensor)> {
        let mut c = Collector::default();
        self.visit(&mut c);
        c.state
    }

    /// Loads tensors by qualified name. Every missing key, unexpected key, duplicate key
    /// and shape or dtype mismatch is collected into the report; with `strict`, a
    /// non-empty report is an `Err` and nothing is changed (a duplicate key is an `Err`
    /// either way). A float tensor of the other float type is converted, as PyTorch's
    /// `load_state_dict` does, and listed in [`LoadReport::converted`].
    ///
    /// ```
    /// use sinew_nn::{Linear, Module};
    /// use sinew_tensor::{DType, Generator};
    /// let f32_model = Linear::new(2, 1, &mut Generator::new(0));
    /// let f64_model = Linear::new(2, 1, &mut Generator::new(1));
    /// f64_model.cast(DType::F64);
    /// let report = f64_model.load_state_dict(&f32_model.state_dict(), true).unwrap();
    /// assert_eq!(report.converted, ["weight: float32 -> float64", "bias: float32 -> float64"]);
    /// assert_eq!(f64_model.weight.value().dtype(), DType::F64);
    /// assert_eq!(f64_model.weight.value().to_vec::<f64>(), f32_model.weight.value().to_vec::<f64>());
    /// ```
    ///
    /// # Errors
    /// With `strict`, the report of every problem found; always, for a duplicate key.
    fn load_state_dict(&self, state: &[(String, Tensor)], strict: bool) -> Result<LoadReport, LoadReport> {
        let (report, updates) = plan_load(self, state, strict)?;
        for (target, t) in updates {
            match target {
                Target::Param(p) => p.set_value(t),
                Target::Buffer(b) => b.set(t),
            }
        }
        Ok(report)
    }

    /// What [`load_state_dict`](Module::load_state_dict) would report, without changing
    /// anything: for code that must validate several things before touching any of them
    /// (resuming a training run).
    ///
    /// ```
    /// use sinew_nn::{Linear, Module};
    /// use sinew_tensor::{Generator, Tensor};
    /// let layer = Linear::new(2, 1, &mut Generator::new(0));
    /// let mut state = layer.state_dict();
    /// assert!(layer.check_state_dict(&state, true).is_ok());
    /// state[0].1 = Tensor::zeros(&[3, 3]);
    /// assert_eq!(layer.check_state_dict(&state, true).unwrap_err().mismatched.len(), 1);
    /// ```
    ///
    /// # Errors
    /// As [`load_state_dict`](Module::load_state_dict).
    fn check_state_dict(&self, state: &[(String, Tensor)], strict: bool) -> Result<LoadReport, LoadReport> {
        plan_load(self, state, strict).map(|(report, _)| report)
    }
}

/// The checks of a state-dict load, and the updates it would make.
fn plan_load<M: Module + ?Sized>(
    module: &M,
    state: &[(String, Tensor)],
    strict: bool,
) -> Result<(LoadReport, Vec<(Target, Tensor)>), LoadReport> {
    let mut c = Collector::default();
    module.visit(&mut c);
    let mut report = LoadReport::default();
    for (i, (name, _)) in state.iter().enumerate() {
        if state[..i].iter().any(|(n, _)| n == name) && !report.duplicate.contains(name) {
            report.duplicate.push(name.clone());
        }
    }
    let mut updates: Vec<(Target, Tensor)> = Vec::new();
    for (name, target) in &c.targets {
        match state.iter().find(|(n, _)| n == name) {
            None => report.missing.push(name.clone()),
            Some((_, t)) => {
                let current = target.current();
                // floats convert, as PyTorch's `copy_` does (an f32 checkpoint into an f64
                // model); integers and floats do not mix (a step count is not a weight)
                let convertible = current.dtype().is_float() && t.dtype().is_float();
                if current.dims() == t.dims() && current.dtype() != t.dtype() && convertible {
                    report.converted.push(format!("{name}: {} -> {}", t.dtype(), current.dtype()));
                    updates.push((target.clone(), t.to_dtype(current.dtype())));
                } else if current.dims() != t.dims() || current.dtype() != t.dtype() {
                    report.mismatched.push(format!(
                        "{name}: expected {} {:?}, found {} {:?}",
                        current.dtype(),
                        current.dims(),
                        t.dtype(),
                        t.dims()
                    ));
                } else {
                    updates.push((target.clone(), t.clone()));
                }
            }
        }
    }
    for (name, _) in state {
        if !c.targets.iter().any(|(n, _)| n == name) {
            report.unexpected.push(name.clone());
        }
    }
    // a name given twice is ambiguous: which tensor was meant is not ours to guess
    if !report.duplicate.is_empty() || strict && !report.is_clean() {
        return Err(report);
    }
    Ok((report, updates))
}

/// What a state-dict load found: keys the module has but the dict lacks, keys the dict
/// has but the module lacks, and entries whose shape or dtype differ.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LoadReport {
    /// Keys of the module absent from the state dict.
    pub missing: Vec<String>,
    /// Keys of the state dict the module does not have.
    pub unexpected: Vec<String>,
    /// `name: expected ..., found ...` for shape or dtype mismatches.
    pub mismatched: Vec<String>,
    /// Keys the state dict holds more than once: always an error (strict or not), since
    /// which of the tensors was meant is ambiguous.
    pub duplicate: Vec<String>,
    /// `name: float32 -> float64` for floating-point tensors loaded into a parameter or
    /// buffer of the other float type and converted to it (as PyTorch's `copy_`). Not a
    /// problem: a converted key still counts as matched.
    pub converted: Vec<String>,
}

impl LoadReport {
    /// Whether every key matched.
    ///
    /// ```
    /// use sinew_nn::{Linear, Module};
    /// use sinew_tensor::Generator;
    /// let a = Linear::new(3, 2, &mut Generator::new(0));
    /// let b = Linear::new(3, 2, &mut Generator::new(1));
    /// assert!(b.load_state_dict(&a.state_dict(), true)?.is_clean());
    /// // without its bias the dict no longer matches: a strict load refuses it, a lenient one reports it
    /// let weight_only = vec![a.state_dict()[0].clone()];
    /// assert!(b.load_state_dict(&weight_only, true).is_err());
    /// let report = b.load_state_dict(&weight_only, false)?;
    /// assert!(!report.is_clean());
    /// assert_eq!(report.missing, ["bias"]);
    /// # Ok::<(), sinew_nn::LoadReport>(())
    /// ```
    pub fn is_clean(&self) -> bool {
        self.missing.is_empty()
            && self.unexpected.is_empty()
            && self.mismatched.is_empty()
            && self.duplicate.is_empty()
    }
}

impl std::fmt::Display for LoadReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "state dict mismatch: missing {:?}, unexpected {:?}, mismatched {:?}",
            self.missing, self.unexpected, self.mismatched
        )?;
        if !self.duplicate.is_empty() {
            write!(f, ", duplicate {:?}", self.duplicate)?;
        }
        if !self.converted.is_empty() {
            write!(f, " (converted {:?})", self.converted)?;
        }
        Ok(())
    }
}

impl std::error::Error for LoadReport {}

#[derive(Clone)]
enum Target {
    Param(Param),
    Buffer(Buffer),
}

impl Target {
    fn current(&self) -> Tensor {
        match self {
            Target::Param(p) => p.value(),
            Target::Buffer(b) => b.value(),
        }
    }
}

/// Collects qualified names of parameters, buffers and state, walking children with a
/// dotted prefix.
#[derive(Default)]
struct Collector {
    prefix: String,
    params: Vec<(String, Param)>,
    buffers: Vec<(String, Buffer)>,
    state: Vec<(String, Tensor)>,
    targets: Vec<(String, Target)>,
    generators: Vec<(String, GeneratorState)>,
}

impl Collector {
    fn qualified(&self, name: &str) -> String {
        format!("{}{}", self.prefix, name)
    }
}

impl Visitor for Collector {
    fn param(&mut self, name: &str, p: &Param) {
        let q = self.qualified(name);
        if self.params.iter().any(|(_, seen)| seen.same(p)) {
            return; // a shared parameter is listed once, as in PyTorch
        }
        self.params.push((q.clone(), p.clone()));
        self.state.push((q.clone(), p.value()));
        self.targets.push((q, Target::Param(p.clone())));
    }

    fn buffer(&mut self, name: &str, b: &Buffer) {
        let q = self.qualified(name);
        self.buffers.push((q.clone(), b.clone()));
        self.state.push((q.clone(), b.value()));
        self.targets.push((q, Target::Buffer(b.clone())));
    }

    fn module(&mut self, name: &str, m: &dyn Module) {
        visit_child(self, |c| &mut c.prefix, name, m);
    }

    fn generator(&mut self, name: &str, g: &Mutex<Generator>) {
        let state = g.lock().unwrap_or_else(|e| e.into_inner()).state();
        self.generators.push((self.qualified(name), state));
    }
}

/// Visits child module `m` with `name.` appended to the visitor's name prefix (reached
/// through `prefix`) for the duration: how qualified names (`features.3.weight`) are built.
fn visit_child<V: Visitor>(v: &mut V, prefix: fn(&mut V) -> &mut String, name: &str, m: &dyn Module) {
    let saved = prefix(v).len();
    prefix(v).push_str(name);
    prefix(v).push('.');
    m.visit(v);
    prefix(v).truncate(saved);
}

/// Calls `f(name, depth, module)` for every submodule of `m` at every depth, each before
/// its children, in visit order: `name` is its state-dict name (`features.3`), `depth` 1 for
/// `m`'s own children. What the summary's rows and the hooks' names are built from.
pub(crate) fn for_each_submodule(m: &dyn Module, f: &mut dyn FnMut(&str, usize, &dyn Module)) {
    struct Walk<'f> {
        prefix: String,
        depth: usize,
        f: &'f mut dyn FnMut(&str, usize, &dyn Module),
    }
    impl Visitor for Walk<'_> {
        fn param(&mut self, _: &str, _: &Param) {}
        fn buffer(&mut self, _: &str, _: &Buffer) {}
        fn module(&mut self, name: &str, m: &dyn Module) {
            let saved = self.prefix.len();
            if saved > 0 {
                self.prefix.push('.');
            }
            self.prefix.push_str(name);
            self.depth += 1;
            (self.f)(&self.prefix, self.depth, m);
            m.visit(self);
            self.depth -= 1;
            self.prefix.truncate(saved);
        }
    }
    m.visit(&mut Walk { prefix: String::new(), depth: 0, f });
}

/// A module with one input and one output: what [`Sequential`](crate::Sequential), the
/// training loop and most layers speak.
pub trait Forward: Module {
    /// Computes the output for input `x`.
    fn forward(&self, x: &Var) -> Var;
}

/// A module shown as PyTorch's `print(model)` shows it; made by [`Module::tree`] (and
/// used by the layers' `Display`).
pub struct ModuleTree<'a>(pub &'a dyn Module);

impl std::fmt::Display for ModuleTree<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut out = String::new();
        write_tree(self.0, &mut out, 0);
        f.write_str(&out)
    }
}

impl std::fmt::Debug for ModuleTree<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Display::fmt(self, f)
    }
}

/// Writes `m`'s line and, indented below it, its children's, as they are visited (a
/// visitor cannot keep the children it is shown, so the tree is written as it is walked).
fn write_tree(m: &dyn Module, out: &mut String, depth: usize) {
    struct Children<'o> {
        out: &'o mut String,
        depth: usize,
        any: bool,
    }
    impl Visitor for Children<'_> {
        fn param(&mut self, _: &str, _: &Param) {}
        fn buffer(&mut self, _: &str, _: &Buffer) {}
        fn module(&mut self, name: &str, m: &dyn Module) {
            self.any = true;
            let pad = "  ".repeat(self.depth + 1);
            self.out.push_str(&format!("\n{pad}({name}): "));
            write_tree(m, self.out, self.depth + 1);
        }
    }
    out.push_str(m.type_name());
    out.push('(');
    let extra = m.extra_repr();
    let mark = out.len();
    let mut kids = Children { out, depth, any: false };
    m.visit(&mut kids);
    if !kids.any {
        out.push_str(&extra);
    } else {
        if !extra.is_empty() {
            out.insert_str(mark, &format!("\n{}{extra}", "  ".repeat(depth + 1)));
        }
        out.push('\n');
        out.push_str(&"  ".repeat(depth));
    }
    out.push(')');
}

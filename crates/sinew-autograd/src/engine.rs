//! The backward pass: topological order over the graph behind a result, backward rules
//! applied in reverse, gradients accumulated per variable into [`Gradients`].

use std::collections::{HashMap, HashSet};

use sinew_tensor::Tensor;

use crate::anomaly;
use crate::mode::set_grad_enabled;
use crate::var::{BackwardCtx, SliceInfo, Var, VarId};

/// Gradients from a backward pass, keyed by variable (or parameter) id.
///
/// Nothing is accumulated inside parameters: a new backward pass returns new gradients,
/// and accumulation over micro-batches is explicit with [`Gradients::accumulate`].
#[derive(Clone, Default)]
pub struct Gradients {
    grads: HashMap<VarId, Var>,
}

impl Gradients {
    /// No gradients.
    ///
    /// ```
    /// use sinew_autograd::Gradients;
    /// let g = Gradients::new();
    /// assert!(g.is_empty());
    /// ```
    pub fn new() -> Self {
        Gradients::default()
    }

    /// The gradient for `v`, if it received one.
    ///
    /// ```
    /// use sinew_autograd::Var;
    /// use sinew_tensor::Tensor;
    /// let x = Var::leaf(Tensor::full(&[2], 3.0));
    /// let c = Var::constant(Tensor::ones(&[2]));
    /// let g = x.mul(&c).square().sum_all().backward();   // x.grad after backward()
    /// assert_eq!(g.get(&x).unwrap().to_vec::<f32>(), vec![6.0, 6.0]);
    /// assert!(g.get(&c).is_none());   // constants get none
    /// ```
    pub fn get(&self, v: &Var) -> Option<&Tensor> {
        self.grads.get(&v.id()).map(Var::value)
    }

    /// The gradient for an id (a parameter's, say).
    ///
    /// ```
    /// use sinew_autograd::{Param, Var};
    /// use sinew_tensor::Tensor;
    /// let w = Param::new("w", Tensor::ones(&[2]));
    /// let g = w.var().mul_scalar(2.0).sum_all().backward();
    /// assert_eq!(g.get_id(w.id()).unwrap().to_vec::<f32>(), vec![2.0, 2.0]);   // by the parameter's id
    /// ```
    pub fn get_id(&self, id: VarId) -> Option<&Tensor> {
        self.grads.get(&id).map(Var::value)
    }

    /// The gradient as a `Var`: with `create_graph` it is part of a graph and can be
    /// differentiated again.
    ///
    /// ```
    /// use sinew_autograd::Var;
    /// use sinew_tensor::Tensor;
    /// let x = Var::leaf(Tensor::scalar(3.0f64));
    /// let g = x.powf(2.0).backward_pass().create_graph(true).run();
    /// let dx = g.get_var(&x).unwrap();   // 2x, itself differentiable
    /// assert_eq!(dx.item(), 6.0);
    /// assert_eq!(dx.backward().get(&x).unwrap().item(), 2.0);   // d²/dx² x² = 2
    /// ```
    pub fn get_var(&self, v: &Var) -> Option<&Var> {
        self.grads.get(&v.id())
    }

    /// The gradient `Var` for an id.
    ///
    /// ```
    /// use sinew_autograd::Param;
    /// use sinew_tensor::Tensor;
    /// let w = Param::new("w", Tensor::scalar(2.0f64));
    /// let g = w.var().powf(3.0).backward_pass().create_graph(true).run();
    /// let dw = g.get_var_id(w.id()).unwrap();   // 3w² = 12
    /// assert_eq!(dw.item(), 12.0);
    /// assert!(dw.requires_grad());
    /// ```
    pub fn get_var_id(&self, id: VarId) -> Option<&Var> {
        self.grads.get(&id)
    }

    /// Sets the gradient for an id (replacing any).
    ///
    /// ```
    /// use sinew_autograd::{Gradients, Var};
    /// use sinew_tensor::Tensor;
    /// let x = Var::leaf(Tensor::zeros(&[2]));
    /// let mut g = Gradients::new();
    /// g.insert(x.id(), Tensor::ones(&[2]));   // a hand-made gradient (a test, a custom update)
    /// assert_eq!(g.get(&x).unwrap().to_vec::<f32>(), vec![1.0, 1.0]);
    /// ```
    pub fn insert(&mut self, id: VarId, grad: Tensor) {
        self.grads.insert(id, Var::constant(grad));
    }

    /// Removes and returns the gradient for an id.
    ///
    /// ```
    /// use sinew_autograd::Var;
    /// use sinew_tensor::Tensor;
    /// let (a, b) = (Var::leaf(Tensor::ones(&[1])), Var::leaf(Tensor::ones(&[1])));
    /// let mut g = a.add(&b).sum_all().backward();
    /// assert_eq!(g.remove(b.id()).unwrap().to_vec::<f32>(), vec![1.0]);   // freeze b for this step
    /// assert_eq!((g.len(), g.get(&b).is_none()), (1, true));
    /// ```
    pub fn remove(&mut self, id: VarId) -> Option<Tensor> {
        self.grads.remove(&id).map(|v| v.value().clone())
    }

    /// Adds `other`'s gradients into these (gradient accumulation over micro-batches).
    ///
    /// ```
    /// use sinew_autograd::{Gradients, Var};
    /// use sinew_tensor::Tensor;
    /// let w = Var::leaf(Tensor::ones(&[2]));
    /// let mut total = Gradients::new();
    /// for _ in 0..3 {
    ///     total.accumulate(&w.sum_all().backward());
    /// }
    /// assert_eq!(total.get(&w).unwrap().to_vec::<f32>(), vec![3.0, 3.0]);
    /// ```
    pub fn accumulate(&mut self, other: &Gradients) {
        for (id, g) in &other.grads {
            match self.grads.get_mut(id) {
                Some(acc) => {
                    // in place when nothing else holds the accumulated buffer
                    let mut sum = std::mem::replace(acc, Var::constant(Tensor::scalar(0f32))).into_value();
                    sum.add_assign(g.value());
                    *acc = Var::constant(sum);
                }
                None => {
                    self.grads.insert(*id, Var::constant(g.value().clone()));
                }
            }
        }
    }

    /// Multiplies every gradient by `factor` (averaging accumulated micro-batches).
    ///
    /// ```
    /// use sinew_autograd::{Gradients, Var};
    /// use sinew_tensor::Tensor;
    /// let w = Var::leaf(Tensor::ones(&[2]));
    /// let mut total = Gradients::new();
    /// for k in 1..=4 {
    ///     total.accumulate(&w.mul_scalar(k as f64).sum_all().backward());   // 4 micro-batches
    /// }
    /// total.scale(0.25);   // their mean
    /// assert_eq!(total.get(&w).unwrap().to_vec::<f32>(), vec![2.5, 2.5]);
    /// ```
    pub fn scale(&mut self, factor: f64) {
        for g in self.grads.values_mut() {
            *g = Var::constant(g.value() * factor);
        }
    }

    /// Number of variables with a gradient.
    ///
    /// ```
    /// use sinew_autograd::Var;
    /// use sinew_tensor::Tensor;
    /// let (a, b) = (Var::leaf(Tensor::ones(&[1])), Var::leaf(Tensor::ones(&[1])));
    /// let c = Var::constant(Tensor::ones(&[1]));
    /// assert_eq!(a.mul(&b).add(&c).sum_all().backward().len(), 2);   // a and b, not c
    /// ```
    pub fn len(&self) -> usize {
        self.grads.len()
    }

    /// Whether there are none.
    ///
    /// ```
    /// use sinew_autograd::Var;
    /// use sinew_tensor::Tensor;
    /// let c = Var::constant(Tensor::ones(&[1]));
    /// assert!(c.exp().sum_all().backward().is_empty());   // nothing requires a gradient
    /// ```
    pub fn is_empty(&self) -> bool {
        self.grads.is_empty()
    }

    /// The ids and gradients, in no particular order.
    ///
    /// ```
    /// use sinew_autograd::Var;
    /// use sinew_tensor::Tensor;
    /// let (a, b) = (Var::leaf(Tensor::ones(&[2])), Var::leaf(Tensor::ones(&[3])));
    /// let g = a.sum_all().add(&b.sum_all()).backward();
    /// let mut sizes: Vec<usize> = g.iter().map(|(_, t)| t.numel()).collect();
    /// sizes.sort();
    /// assert_eq!(sizes, vec![2, 3]);
    /// assert!(g.iter().any(|(id, _)| id == a.id()));
    /// ```
    pub fn iter(&self) -> impl Iterator<Item = (VarId, &Tensor)> {
        self.grads.iter().map(|(id, v)| (*id, v.value()))
    }

    /// Replaces every gradient through `f` (gradient clipping and the like).
    ///
    /// ```
    /// use sinew_autograd::Var;
    /// use sinew_tensor::Tensor;
    /// let x = Var::leaf(Tensor::from_vec(vec![-3.0f32, 0.5], &[2])?);
    /// let mut g = x.mul_scalar(4.0).sum_all().backward();
    /// g.map_in_place(|_, t| t.clamp(Some(-1.0), Some(1.0)));   // clip_grad_value_(…, 1.0)
    /// assert_eq!(g.get(&x).unwrap().to_vec::<f32>(), vec![1.0, 1.0]);
    /// # Ok::<(), sinew_tensor::TensorError>(())
    /// ```
    pub fn map_in_place(&mut self, mut f: impl FnMut(VarId, &Tensor) -> Tensor) {
        for (id, g) in self.grads.iter_mut() {
            *g = Var::constant(f(*id, g.value()));
        }
    }
}

impl std::fmt::Debug for Gradients {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut m = f.debug_map();
        for (id, g) in &self.grads {
            m.entry(&id.as_u64(), &g.dims());
        }
        m.finish()
    }
}

/// Called with a leaf's id and its final gradient during a backward pass.
type LeafHookFn<'a> = dyn FnMut(VarId, &Tensor) + 'a;
type LeafHook<'a> = Box<LeafHookFn<'a>>;

/// A configurable backward pass; see [`Var::backward_pass`].
pub struct BackwardPass<'a> {
    root: &'a Var,
    grad_output: Option<Var>,
    create_graph: bool,
    retain: Vec<VarId>,
    leaf_hook: Option<LeafHook<'a>>,
}

impl<'a> BackwardPass<'a> {
    /// The upstream gradient of the root (required when the root is not a scalar).
    ///
    /// ```
    /// use sinew_autograd::Var;
    /// use sinew_tensor::Tensor;
    /// let x = Var::leaf(Tensor::from_vec(vec![1.0f32, 2.0], &[2])?);
    /// let y = x.square();   // not a scalar: y.backward(gradient=v)
    /// let v = Tensor::from_vec(vec![1.0f32, 10.0], &[2])?;
    /// let g = y.backward_pass().grad_output(v).run();
    /// assert_eq!(g.get(&x).unwrap().to_vec::<f32>(), vec![2.0, 40.0]);   // v · 2x
    /// # Ok::<(), sinew_tensor::TensorError>(())
    /// ```
    pub fn grad_output(mut self, g: impl Into<Var>) -> Self {
        self.grad_output = Some(g.into());
        self
    }

    /// Build a graph while computing gradients, so they can be differentiated again
    /// (Hessian-vector products, gradient penalties).
    ///
    /// ```
    /// use sinew_autograd::Var;
    /// use sinew_tensor::Tensor;
    /// // a gradient penalty: differentiate ‖∂y/∂x‖² with respect to x
    /// let x = Var::leaf(Tensor::from_vec(vec![1.0f64, 2.0], &[2])?);
    /// let y = x.powf(3.0).sum_all();
    /// let g = y.backward_pass().create_graph(true).run();
    /// let penalty = g.get_var(&x).unwrap().square().sum_all();   // Σ (3x²)² = 9 + 144
    /// assert_eq!(penalty.item(), 153.0);
    /// // d/dx (9x⁴) = 36x³
    /// assert_eq!(penalty.backward().get(&x).unwrap().to_vec::<f64>(), vec![36.0, 288.0]);
    /// # Ok::<(), sinew_tensor::TensorError>(())
    /// ```
    pub fn create_graph(mut self, on: bool) -> Self {
        self.create_graph = on;
        self
    }

    /// Also keep the gradients of these intermediate (non-leaf) variables.
    ///
    /// ```
    /// use sinew_autograd::Var;
    /// use sinew_tensor::Tensor;
    /// let x = Var::leaf(Tensor::full(&[2], 3.0));
    /// let h = x.mul_scalar(2.0);   // an intermediate: h.retain_grad()
    /// let y = h.square().sum_all();
    /// let g = y.backward_pass().retain(&[&h]).run();
    /// assert_eq!(g.get(&h).unwrap().to_vec::<f32>(), vec![12.0, 12.0]);   // 2h
    /// assert_eq!(g.get(&x).unwrap().to_vec::<f32>(), vec![24.0, 24.0]);
    /// assert!(y.backward().get(&h).is_none());   // not kept by default
    /// ```
    pub fn retain(mut self, vars: &[&Var]) -> Self {
        self.retain.extend(vars.iter().map(|v| v.id()));
        self
    }

    /// Calls `hook` with each leaf's id and gradient as soon as that gradient is final,
    /// while the pass goes on (PyTorch's `register_post_accumulate_grad_hook`): the leaves
    /// come in the order the pass finishes them, roughly the reverse of the forward. This
    /// is how data-parallel training starts reducing the gradients of the last layers while
    /// the first layers' are still being computed. The returned [`Gradients`] hold the same
    /// tensors.
    ///
    /// ```
    /// use sinew_autograd::{Var, VarId};
    /// use sinew_tensor::Tensor;
    /// let w1 = Var::leaf(Tensor::full(&[2], 1.0));
    /// let w2 = Var::leaf(Tensor::full(&[2], 2.0));
    /// let y = w1.mul(&w2).square().sum_all().mul(&w2.sum_all());
    /// let mut finished: Vec<VarId> = Vec::new();
    /// let g = y.backward_pass().on_leaf_gradient(|id, _grad| finished.push(id)).run();
    /// assert_eq!(finished.len(), 2);
    /// assert!(finished.contains(&w1.id()) && finished.contains(&w2.id()));
    /// assert_eq!(g.len(), 2);
    /// ```
    pub fn on_leaf_gradient(mut self, hook: impl FnMut(VarId, &Tensor) + 'a) -> Self {
        self.leaf_hook = Some(Box::new(hook));
        self
    }

    /// Runs the pass.
    ///
    /// # Panics
    /// If the root is not a scalar and no `grad_output` was given, or its shape differs
    /// from the root's.
    ///
    /// ```
    /// use sinew_autograd::Var;
    /// use sinew_tensor::Tensor;
    /// let x = Var::leaf(Tensor::full(&[2], 2.0));
    /// let g = x.square().sum_all().backward_pass().run();   // the same as .backward()
    /// assert_eq!(g.get(&x).unwrap().to_vec::<f32>(), vec![4.0, 4.0]);
    /// ```
    #[track_caller]
    pub fn run(mut self) -> Gradients {
        let root = self.root;
        let seed = match self.grad_output {
            Some(g) => {
                assert_eq!(
                    g.dims(),
                    root.dims(),
                    "backward: the upstream gradient has shape {:?}, the output {:?}",
                    g.dims(),
                    root.dims()
                );
                g
            }
            None => {
                assert_eq!(
                    root.numel(),
                    1,
                    "backward: output of shape {:?} is not a scalar; pass its upstream gradient with grad_output",
                    root.dims()
                );
                Var::constant(root.value().ones_like())
            }
        };
        run_backward(root, seed, self.create_graph, &self.retain, self.leaf_hook.as_deref_mut())
    }
}

impl Var {
    /// Gradients of this scalar with respect to every leaf that requires one.
    ///
    /// # Panics
    /// If the variable is not a scalar (use [`Var::backward_with`]).
    ///
    /// ```
    /// use sinew_autograd::Var;
    /// use sinew_tensor::Tensor;
    /// let w = Var::leaf(Tensor::from_vec(vec![1.0f64, -1.0], &[2])?);
    /// let x = Var::constant(Tensor::from_vec(vec![2.0f64, 3.0], &[2])?);
    /// let loss = w.mul(&x).sum_all().square();   // (w·x)² = 1
    /// let grads = loss.backward();   // loss.backward()
    /// assert_eq!(grads.get(&w).unwrap().to_vec::<f64>(), vec![-4.0, -6.0]);   // 2(w·x)·x
    /// # Ok::<(), sinew_tensor::TensorError>(())
    /// ```
    #[track_caller]
    pub fn backward(&self) -> Gradients {
        self.backward_pass().run()
    }

    /// Gradients given the upstream gradient `grad` of this (non-scalar) variable.
    ///
    /// ```
    /// use sinew_autograd::Var;
    /// use sinew_tensor::Tensor;
    /// let x = Var::leaf(Tensor::from_vec(vec![1.0f32, 2.0, 3.0], &[3])?);
    /// let y = x.mul_scalar(2.0);
    /// let g = y.backward_with(&Tensor::from_vec(vec![1.0f32, 0.0, -1.0], &[3])?);   // y.backward(v)
    /// assert_eq!(g.get(&x).unwrap().to_vec::<f32>(), vec![2.0, 0.0, -2.0]);
    /// # Ok::<(), sinew_tensor::TensorError>(())
    /// ```
    #[track_caller]
    pub fn backward_with(&self, grad: &Tensor) -> Gradients {
        self.backward_pass().grad_output(grad.clone()).run()
    }

    /// A backward pass with options: upstream gradient, `create_graph`, retained
    /// intermediates.
    ///
    /// ```
    /// use sinew_autograd::Var;
    /// use sinew_tensor::Tensor;
    /// // d²/dx² x³ = 6x, through a gradient that is itself differentiable
    /// let x = Var::leaf(Tensor::scalar(2.0f64));
    /// let y = x.powf(3.0);
    /// let g = y.backward_pass().create_graph(true).run();
    /// let dydx = g.get_var(&x).unwrap().clone();       // 3x² = 12, with a graph
    /// assert_eq!(dydx.item(), 12.0);
    /// assert_eq!(dydx.backward().get(&x).unwrap().item(), 12.0);
    /// ```
    pub fn backward_pass(&self) -> BackwardPass<'_> {
        BackwardPass {
            root: self,
            grad_output: None,
            create_graph: false,
            retain: Vec::new(),
            leaf_hook: None,
        }
    }
}

/// `torch.autograd.grad`: the gradients of `output` (a scalar, or with `grad_output`)
/// with respect to `inputs`, leaves or not; `None` where an input does not influence the
/// output.
///
/// ```
/// use sinew_autograd::{Var, grad};
/// use sinew_tensor::Tensor;
/// let x = Var::leaf(Tensor::scalar(3.0f64));
/// let h = x.square();              // an intermediate
/// let y = h.sin();
/// let g = grad(&y, &[&h], None, false);
/// assert!((g[0].as_ref().unwrap().item() - 9f64.cos()).abs() < 1e-12);
/// ```
#[track_caller]
pub fn grad(
    output: &Var,
    inputs: &[&Var],
    grad_output: Option<&Tensor>,
    create_graph: bool,
) -> Vec<Option<Var>> {
    let mut pass = output.backward_pass().create_graph(create_graph).retain(inputs);
    if let Some(g) = grad_output {
        pass = pass.grad_output(g.clone());
    }
    let grads = pass.run();
    inputs.iter().map(|v| grads.get_var(v).cloned()).collect()
}

/// Nodes reachable from `root` through recorded ops, in topological order (inputs first).
fn topo_order(root: &Var) -> Vec<Var> {
    let mut order = Vec::new();
    let mut seen: HashSet<VarId> = HashSet::new();
    // iterative post-order DFS: (node, children pushed?)
    let mut stack: Vec<(Var, bool)> = vec![(root.clone(), false)];
    while let Some((v, expanded)) = stack.pop() {
        if expanded {
            order.push(v);
            continue;
        }
        if !v.requires_grad() || !seen.insert(v.id()) {
            continue;
        }
        stack.push((v.clone(), true));
        if let Some(op) = &v.node.op {
            for inp in op.inputs.iter().rev() {
                if inp.requires_grad() && !seen.contains(&inp.id()) {
                    stack.push((inp.clone(), false));
                }
            }
        }
    }
    order
}

/// A gradient being accumulated: a `Var` when the pass builds a graph, a plain tensor
/// added to in place otherwise.
enum Pending {
    Graph(Var),
    Dense(Tensor),
}

impl Pending {
    fn into_var(self) -> Var {
        match self {
            Pending::Graph(v) => v,
            Pending::Dense(t) => Var::constant(t),
        }
    }

    fn into_tensor(self) -> Tensor {
        match self {
            Pending::Graph(v) => v.into_value(),
            Pending::Dense(t) => t,
        }
    }
}

fn accumulate(pending: &mut HashMap<VarId, Pending>, id: VarId, g: Var, create_graph: bool) {
    let next = match (pending.remove(&id), create_graph) {
        (None, true) => Pending::Graph(g),
        (None, false) => Pending::Dense(g.value().clone()),
        (Some(prev), true) => Pending::Graph(&prev.into_var() + &g),
        (Some(prev), false) => {
            let mut t = prev.into_tensor();
            t.add_assign(g.value()); // in place (copy-on-write if the buffer is shared)
            Pending::Dense(t)
        }
    };
    pending.insert(id, next);
}

/// First-order backward of a slice: add the gradient into the input's accumulator at the
/// slice's place.
fn accumulate_slice(pending: &mut HashMap<VarId, Pending>, input: &Var, info: SliceInfo, g: &Tensor) {
    let mut t = match pending.remove(&input.id()) {
        Some(prev) => prev.into_tensor(),
        None => Tensor::zeros_dtype(input.dims(), g.dtype()),
    };
    t.slice_add_assign(info.dim as isize, info.start, info.step, g);
    pending.insert(input.id(), Pending::Dense(t));
}

fn run_backward(
    root: &Var,
    seed: Var,
    create_graph: bool,
    retain: &[VarId],
    mut leaf_hook: Option<&mut LeafHookFn<'_>>,
) -> Gradients {
    let _mode = set_grad_enabled(create_graph);
    let mut result = Gradients::new();
    if !root.requires_grad() {
        return result;
    }
    let order = topo_order(root);
    let mut pending: HashMap<VarId, Pending> = HashMap::new();
    let seed = if create_graph { Pending::Graph(seed) } else { Pending::Dense(seed.value().clone()) };
    pending.insert(root.id(), seed);
    let check = anomaly::is_enabled();
    let _scope = check.then(anomaly::BackwardScope::enter);
    for v in order.iter().rev() {
        let Some(g) = pending.remove(&v.id()) else { continue };
        let g = g.into_var();
        let Some(op) = &v.node.op else {
            // every consumer of a leaf comes before it in this order: its gradient is final
            if let Some(hook) = leaf_hook.as_mut() {
                hook(v.id(), g.value());
            }
            result.grads.insert(v.id(), g);
            continue;
        };
        if retain.contains(&v.id()) {
            result.grads.insert(v.id(), g.clone());
        }
        if let (Some(info), false) = (op.slice, create_graph) {
            let input = &op.inputs[0];
            if input.requires_grad() {
                if check {
                    anomaly::check_backward(op.name, 0, g.value(), &op.inputs);
                }
                accumulate_slice(&mut pending, input, info, g.value());
            }
            continue;
        }
        let input_grads = (op.backward)(&BackwardCtx { inputs: &op.inputs, output: v, grad: &g });
        debug_assert_eq!(
            input_grads.len(),
            op.inputs.len(),
            "backward of {} returned the wrong count",
            op.name
        );
        for (i, (inp, ig)) in op.inputs.iter().zip(input_grads).enumerate() {
            let Some(ig) = ig else { continue };
            if !inp.requires_grad() {
                continue;
            }
            debug_assert_eq!(
                ig.dims(),
                inp.dims(),
                "backward of {}: gradient {i} has the wrong shape",
                op.name
            );
            if check {
                anomaly::check_backward(op.name, i, ig.value(), &op.inputs);
            }
            accumulate(&mut pending, inp.id(), ig, create_graph);
        }
    }
    result
}

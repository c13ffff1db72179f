//! [`Var`]: a tensor plus its place in the graph; leaves, constants, grad mode and the
//! recording of ops.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use sinew_tensor::Tensor;

use crate::anomaly;
use crate::mode::is_grad_enabled;

/// A unique identity for a variable or parameter: the key of [`Gradients`](crate::Gradients).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct VarId(u64);

impl VarId {
    /// A fresh id, never handed out before in this process.
    ///
    /// ```
    /// use sinew_autograd::VarId;
    /// let (a, b) = (VarId::fresh(), VarId::fresh());
    /// assert_ne!(a, b);
    /// ```
    pub fn fresh() -> VarId {
        static NEXT: AtomicU64 = AtomicU64::new(1);
        VarId(NEXT.fetch_add(1, Ordering::Relaxed))
    }

    /// The raw number (stable for the life of the process).
    ///
    /// ```
    /// use sinew_autograd::VarId;
    /// let id = VarId::fresh();
    /// assert!(id.as_u64() > 0);
    /// assert_eq!(id.as_u64(), id.as_u64());
    /// ```
    pub fn as_u64(self) -> u64 {
        self.0
    }
}

/// What a backward rule sees: the op's inputs, its output and the gradient flowing into
/// that output. Rules compute input gradients with `Var` ops, so that a backward pass that
/// builds a graph (`create_graph`) can be differentiated again.
pub struct BackwardCtx<'a> {
    /// The op's inputs, in the order they were recorded.
    pub inputs: &'a [Var],
    /// The op's output.
    pub output: &'a Var,
    /// The gradient of the final result with respect to `output`.
    pub grad: &'a Var,
}

/// A backward rule: one gradient per input (`None` where the input gets none).
pub type BackwardFn = dyn Fn(&BackwardCtx<'_>) -> Vec<Option<Var>> + Send + Sync;

pub(crate) struct OpRecord {
    pub(crate) name: &'static str,
    pub(crate) inputs: Vec<Var>,
    pub(crate) backward: Box<BackwardFn>,
    /// For `slice` ops: where the output sits in the input, so that a first-order backward
    /// can add the gradient into the input's accumulator in place instead of building a
    /// zero-padded copy per slice (which makes per-time-step slicing quadratic).
    pub(crate) slice: Option<SliceInfo>,
}

/// The region a `slice` op reads: entries `start, start + step, ...` of `dim`.
#[derive(Clone, Copy, Debug)]
pub(crate) struct SliceInfo {
    pub(crate) dim: usize,
    pub(crate) start: usize,
    pub(crate) step: usize,
}

pub(crate) struct Node {
    pub(crate) id: VarId,
    pub(crate) value: Tensor,
    pub(crate) requires_grad: bool,
    pub(crate) op: Option<OpRecord>,
}

impl Drop for Node {
    /// Frees the graph behind this node without recursion, so that dropping the result of
    /// a chain of a million ops cannot overflow the stack.
    fn drop(&mut self) {
        let Some(op) = self.op.take() else { return };
        let mut stack = op.inputs;
        drop(op.backward);
        while let Some(v) = stack.pop() {
            if let Ok(mut node) = Arc::try_unwrap(v.node)
                && let Some(op) = node.op.take()
            {
                stack.extend(op.inputs);
            }
        }
    }
}

/// A tensor with its place in a dynamic autograd graph. Cheap to clone (an `Arc`),
/// `Send + Sync`. The graph lives in the `Var`s themselves: an op's output holds its
/// inputs, so dropping the last `Var` of a result frees the graph behind it.
///
/// ```
/// use sinew_autograd::Var;
/// use sinew_tensor::Tensor;
///
/// let x = Var::leaf(Tensor::from_vec(vec![1.0f64, 2.0, 3.0], &[3])?);
/// let y = (&x * &x).sum_all();        // y = Σ x²
/// let grads = y.backward();
/// assert_eq!(grads.get(&x).unwrap().to_vec::<f64>(), vec![2.0, 4.0, 6.0]);
/// # Ok::<(), sinew_tensor::TensorError>(())
/// ```
#[derive(Clone)]
pub struct Var {
    pub(crate) node: Arc<Node>,
}

impl Var {
    /// A leaf that requires a gradient (an input to differentiate with respect to).
    ///
    /// ```
    /// use sinew_autograd::Var;
    /// use sinew_tensor::Tensor;
    /// let x = Var::leaf(Tensor::ones(&[2]));   // torch.ones(2, requires_grad=True)
    /// assert!(x.requires_grad() && x.is_leaf());
    /// assert_eq!(x.exp().sum_all().backward().get(&x).unwrap().dims(), &[2]);
    /// ```
    pub fn leaf(value: Tensor) -> Var {
        Var::leaf_with_id(value, VarId::fresh())
    }

    /// A leaf with a given id: how a [`Param`](crate::Param) enters a graph under its own,
    /// stable id.
    ///
    /// ```
    /// use sinew_autograd::{Var, VarId};
    /// use sinew_tensor::Tensor;
    /// let id = VarId::fresh();
    /// let x = Var::leaf_with_id(Tensor::ones(&[2]), id);
    /// assert_eq!(x.id(), id);
    /// assert_eq!(x.sum_all().backward().get_id(id).unwrap().to_vec::<f32>(), vec![1.0, 1.0]);
    /// ```
    pub fn leaf_with_id(value: Tensor, id: VarId) -> Var {
        Var { node: Arc::new(Node { id, value, requires_grad: true, op: None }) }
    }

    /// A value that takes no gradient.
    ///
    /// ```
    /// use sinew_autograd::Var;
    /// use sinew_tensor::Tensor;
    /// let x = Var::constant(Tensor::ones(&[2]));   // torch.ones(2): no gradient
    /// assert!(!x.requires_grad());
    /// assert!(!x.exp().requires_grad());   // nothing is recorded
    /// ```
    pub fn constant(value: Tensor) -> Var {
        Var { node: Arc::new(Node { id: VarId::fresh(), value, requires_grad: false, op: None }) }
    }

    /// Records an op: `value` was computed from `inputs`, and `backward` maps the output
    /// gradient to input gradients. If gradients are disabled ([`no_grad`](crate::no_grad))
    /// or no input requires one, the result is a constant and nothing is recorded.
    ///
    /// This is how every op of this crate is built, and how users add their own:
    ///
    /// ```
    /// use sinew_autograd::Var;
    /// use sinew_tensor::Tensor;
    ///
    /// /// y = x³, with dy/dx = 3x² written with Var ops (so it is twice differentiable).
    /// fn cube(x: &Var) -> Var {
    ///     Var::from_op("cube", x.value().powf(3.0), &[x], |ctx| {
    ///         let x = &ctx.inputs[0];
    ///         vec![Some(&(&x.square() * 3.0) * ctx.grad)]
    ///     })
    /// }
    /// let x = Var::leaf(Tensor::scalar(2.0f64));
    /// assert_eq!(cube(&x).backward().get(&x).unwrap().item(), 12.0);
    /// ```
    pub fn from_op(
        name: &'static str,
        value: Tensor,
        inputs: &[&Var],
        backward: impl Fn(&BackwardCtx<'_>) -> Vec<Option<Var>> + Send + Sync + 'static,
    ) -> Var {
        if anomaly::is_enabled() {
            anomaly::check_forward(name, &value, inputs);
        }
        if !is_grad_enabled() || !inputs.iter().any(|v| v.requires_grad()) {
            return Var::constant(value);
        }
        Var {
            node: Arc::new(Node {
                id: VarId::fresh(),
                value,
                requires_grad: true,
                op: Some(OpRecord {
                    name,
                    inputs: inputs.iter().map(|v| (*v).clone()).collect(),
                    backward: Box::new(backward),
                    slice: None,
                }),
            }),
        }
    }

    /// [`Var::from_op`] for a slice of `input`, recording where the slice sits (see
    /// `OpRecord::slice`).
    pub(crate) fn from_slice_op(
        value: Tensor,
        input: &Var,
        info: SliceInfo,
        backward: impl Fn(&BackwardCtx<'_>) -> Vec<Option<Var>> + Send + Sync + 'static,
    ) -> Var {
        let v = Var::from_op("slice", value, &[input], backward);
        match Arc::try_unwrap(v.node) {
            Ok(mut node) => {
                if let Some(op) = node.op.as_mut() {
                    op.slice = Some(info);
                }
                Var { node: Arc::new(node) }
            }
            Err(node) => Var { node },
        }
    }

    /// The value, moved out when this is the last handle to the node (so that an
    /// accumulator can be added to in place), cloned (an `Arc` share) otherwise.
    pub(crate) fn into_value(self) -> Tensor {
        match Arc::try_unwrap(self.node) {
            Ok(mut node) => std::mem::replace(&mut node.value, Tensor::scalar(0f32)),
            Err(node) => node.value.clone(),
        }
    }

    /// The value.
    ///
    /// ```
    /// use sinew_autograd::Var;
    /// use sinew_tensor::Tensor;
    /// let y = Var::leaf(Tensor::full(&[2], 2.0)).square();
    /// assert_eq!(y.value().to_vec::<f32>(), vec![4.0, 4.0]);   // y.detach() as a tensor
    /// ```
    #[inline]
    pub fn value(&self) -> &Tensor {
        &self.node.value
    }

    /// This variable's id (the key of its gradient).
    ///
    /// ```
    /// use sinew_autograd::Var;
    /// use sinew_tensor::Tensor;
    /// let x = Var::leaf(Tensor::ones(&[1]));
    /// assert_eq!(x.id(), x.clone().id());   // clones are the same variable
    /// assert_ne!(x.id(), x.exp().id());
    /// ```
    #[inline]
    pub fn id(&self) -> VarId {
        self.node.id
    }

    /// Whether gradients flow to or through this variable.
    ///
    /// ```
    /// use sinew_autograd::Var;
    /// use sinew_tensor::Tensor;
    /// let x = Var::leaf(Tensor::ones(&[1]));
    /// let c = Var::constant(Tensor::ones(&[1]));
    /// assert!(x.requires_grad() && x.add(&c).requires_grad());
    /// assert!(!c.requires_grad() && !c.exp().requires_grad());
    /// ```
    #[inline]
    pub fn requires_grad(&self) -> bool {
        self.node.requires_grad
    }

    /// Whether this is a leaf (not the result of a recorded op).
    ///
    /// ```
    /// use sinew_autograd::Var;
    /// use sinew_tensor::Tensor;
    /// let x = Var::leaf(Tensor::ones(&[1]));
    /// assert!(x.is_leaf());
    /// assert!(!x.exp().is_leaf());   // x.exp().is_leaf is False in PyTorch too
    /// ```
    pub fn is_leaf(&self) -> bool {
        self.node.op.is_none()
    }

    /// The name of the op that produced this variable (`None` for leaves and constants).
    ///
    /// ```
    /// use sinew_autograd::Var;
    /// use sinew_tensor::Tensor;
    /// let x = Var::leaf(Tensor::ones(&[2]));
    /// assert_eq!(x.op_name(), None);
    /// assert_eq!(x.exp().op_name(), Some("exp"));   // y.grad_fn
    /// ```
    pub fn op_name(&self) -> Option<&'static str> {
        self.node.op.as_ref().map(|o| o.name)
    }

    /// The same value cut from the graph: a constant.
    ///
    /// ```
    /// use sinew_autograd::Var;
    /// use sinew_tensor::Tensor;
    /// let x = Var::leaf(Tensor::full(&[1], 3.0));
    /// let y = x.square().add(&x.square().detach());   // the detached term is a constant
    /// assert_eq!(y.item(), 18.0);
    /// assert_eq!(y.sum_all().backward().get(&x).unwrap().item(), 6.0);   // only the first 2x
    /// ```
    pub fn detach(&self) -> Var {
        Var::constant(self.value().clone())
    }

    /// The shape.
    ///
    /// ```
    /// use sinew_autograd::Var;
    /// use sinew_tensor::Tensor;
    /// assert_eq!(Var::leaf(Tensor::zeros(&[2, 3])).dims(), &[2, 3]);
    /// ```
    #[inline]
    pub fn dims(&self) -> &[usize] {
        self.value().dims()
    }

    /// The element type.
    ///
    /// ```
    /// use sinew_autograd::Var;
    /// use sinew_tensor::{DType, Tensor};
    /// assert_eq!(Var::leaf(Tensor::zeros_dtype(&[2], DType::F64)).dtype(), DType::F64);
    /// ```
    #[inline]
    pub fn dtype(&self) -> sinew_tensor::DType {
        self.value().dtype()
    }

    /// Number of elements.
    ///
    /// ```
    /// use sinew_autograd::Var;
    /// use sinew_tensor::Tensor;
    /// assert_eq!(Var::leaf(Tensor::zeros(&[2, 3])).numel(), 6);
    /// ```
    #[inline]
    pub fn numel(&self) -> usize {
        self.value().numel()
    }

    /// Number of dimensions.
    ///
    /// ```
    /// use sinew_autograd::Var;
    /// use sinew_tensor::Tensor;
    /// assert_eq!(Var::leaf(Tensor::zeros(&[2, 3])).ndim(), 2);
    /// ```
    #[inline]
    pub fn ndim(&self) -> usize {
        self.value().ndim()
    }

    /// The single value of a one-element variable.
    ///
    /// ```
    /// use sinew_autograd::Var;
    /// use sinew_tensor::Tensor;
    /// let loss = Var::leaf(Tensor::arange(1.0, 4.0, 1.0)).mean_all();
    /// assert_eq!(loss.item(), 2.0);   // loss.item()
    /// ```
    #[track_caller]
    pub fn item(&self) -> f64 {
        self.value().item()
    }

    /// A weak handle that does not keep the node alive (for tests of graph freeing).
    ///
    /// ```
    /// use sinew_autograd::Var;
    /// use sinew_tensor::Tensor;
    /// let x = Var::leaf(Tensor::ones(&[2]));
    /// let y = x.exp();
    /// let weak = y.downgrade();
    /// assert!(weak.is_alive());
    /// drop(y);   // the graph is owned by its results: gone with the last one
    /// assert!(!weak.is_alive());
    /// ```
    pub fn downgrade(&self) -> WeakVar {
        WeakVar(Arc::downgrade(&self.node))
    }
}

/// A non-owning handle to a [`Var`]'s node; see [`Var::downgrade`].
pub struct WeakVar(std::sync::Weak<Node>);

impl WeakVar {
    /// Whether the node is still alive.
    ///
    /// ```
    /// use sinew_autograd::Var;
    /// use sinew_tensor::Tensor;
    /// let x = Var::leaf(Tensor::ones(&[2]));
    /// let h = x.exp();
    /// let weak = h.downgrade();
    /// let y = h.sum_all();
    /// drop(h);
    /// assert!(weak.is_alive());   // y's graph still holds h
    /// drop(y);
    /// assert!(!weak.is_alive());
    /// ```
    pub fn is_alive(&self) -> bool {
        self.0.strong_count() > 0
    }
}

impl From<Tensor> for Var {
    /// A constant.
    fn from(t: Tensor) -> Var {
        Var::constant(t)
    }
}

impl fmt::Debug for Var {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Var(id={}, ", self.id().0)?;
        match self.op_name() {
            Some(op) => write!(f, "op={op}, ")?,
            None if self.requires_grad() => write!(f, "leaf, ")?,
            None => write!(f, "constant, ")?,
        }
        write!(f, "{:?})", self.value())
    }
}

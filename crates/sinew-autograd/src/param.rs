//! [`Param`]: a named, trainable leaf whose value an optimizer replaces in place.

use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};

use sinew_tensor::Tensor;

use crate::var::{Var, VarId};

struct ParamInner {
    id: VarId,
    name: RwLock<String>,
    value: RwLock<Tensor>,
}

/// A trainable parameter: a tensor with a stable [`VarId`], shared by clones.
///
/// Each forward pass takes [`Param::var`], a leaf carrying the parameter's id, so the
/// gradients of a backward pass are found under [`Param::id`]. An optimizer updates the
/// value in place through [`Param::value_mut`]; once the graph of the last step has been
/// dropped, that update touches the parameter's own buffer with no copy.
///
/// ```
/// use sinew_autograd::Param;
/// use sinew_tensor::Tensor;
///
/// let w = Param::new("weight", Tensor::ones(&[2]));
/// let loss = w.var().square().sum_all();
/// let grads = loss.backward();
/// let g = grads.get_id(w.id()).unwrap().clone();
/// drop(grads); drop(loss);
/// // plain SGD, in place
/// let mut value = w.value_mut();
/// let data = value.as_mut_slice::<f32>();
/// for (p, g) in data.iter_mut().zip(g.to_vec::<f32>()) { *p -= 0.1 * g; }
/// drop(value);
/// assert_eq!(w.value().to_vec::<f32>(), vec![0.8, 0.8]);
/// ```
#[derive(Clone)]
pub struct Param {
    inner: Arc<ParamInner>,
}

impl Param {
    /// A parameter with a name (PyTorch-style, e.g. `weight`; modules prefix it) and value.
    pub fn new(name: impl Into<String>, value: Tensor) -> Param {
        Param {
            inner: Arc::new(ParamInner {
                id: VarId::fresh(),
                name: RwLock::new(name.into()),
                value: RwLock::new(value),
            }),
        }
    }

    /// The stable id its gradients are keyed by.
    pub fn id(&self) -> VarId {
        self.inner.id
    }

    /// The name.
    pub fn name(&self) -> String {
        self.inner.name.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Renames (modules set qualified names such as `0.weight`).
    pub fn set_name(&self, name: impl Into<String>) {
        *self.inner.name.write().unwrap_or_else(|e| e.into_inner()) = name.into();
    }

    /// The current value, as a leaf of a new graph with this parameter's id.
    pub fn var(&self) -> Var {
        Var::leaf_with_id(self.value().clone(), self.inner.id)
    }

    /// Read access to the value.
    pub fn value(&self) -> RwLockReadGuard<'_, Tensor> {
        self.inner.value.read().unwrap_or_else(|e| e.into_inner())
    }

    /// Write access to the value, for in-place updates.
    pub fn value_mut(&self) -> RwLockWriteGuard<'_, Tensor> {
        self.inner.value.write().unwrap_or_else(|e| e.into_inner())
    }

    /// Replaces the value (loading weights).
    ///
    /// # Panics
    /// If the shape or dtype changes.
    #[track_caller]
    pub fn set_value(&self, value: Tensor) {
        let mut v = self.value_mut();
        assert!(
            v.dims() == value.dims() && v.dtype() == value.dtype(),
            "Param::set_value: {} is {} {:?}, got {} {:?}",
            self.name(),
            v.dtype(),
            v.dims(),
            value.dtype(),
            value.dims()
        );
        *v = value;
    }

    /// Converts the value to another element type (`model.double()` in PyTorch).
    pub fn cast(&self, dtype: sinew_tensor::DType) {
        let mut v = self.value_mut();
        *v = v.to_dtype(dtype);
    }

    /// Number of elements.
    pub fn numel(&self) -> usize {
        self.value().numel()
    }

    /// Whether two handles are the same parameter.
    pub fn same(&self, other: &Param) -> bool {
        Arc::ptr_eq(&self.inner, &other.inner)
    }
}

impl std::fmt::Debug for Param {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let v = self.value();
        write!(f, "Param({}, {} {:?})", self.name(), v.dtype(), v.dims())
    }
}

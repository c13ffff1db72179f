//! [`Param`]: a named, trainable leaf whose value an optimizer replaces in place.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock, RwLockWriteGuard};

use sinew_tensor::Tensor;

use crate::var::{Var, VarId};

struct ParamInner {
    id: VarId,
    name: RwLock<String>,
    value: RwLock<Tensor>,
    /// The thread holding a [`ParamValueMut`] of this parameter (0 when none): asking for
    /// the value again on that thread would wait on itself forever, so it panics instead.
    writer: AtomicU64,
    /// Bumped by every write to `value` (each `value_mut` guard's drop).
    version: AtomicU64,
    /// `(version, value transposed and contiguous)`: see [`Param::transposed`].
    transposed: Mutex<Option<(u64, Tensor)>>,
}

/// A small number unique to the calling thread (never 0).
fn thread_token() -> u64 {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    thread_local!(static TOKEN: u64 = NEXT.fetch_add(1, Ordering::Relaxed));
    TOKEN.with(|t| *t)
}

/// Write access to a [`Param`]'s value, from [`Param::value_mut`]; dereferences to the
/// [`Tensor`]. While it lives, other threads wait to read the parameter and this thread
/// may not (it would wait on itself): reading it here panics with the parameter's name.
pub struct ParamValueMut<'a> {
    guard: RwLockWriteGuard<'a, Tensor>,
    writer: &'a AtomicU64,
    version: &'a AtomicU64,
}

impl std::ops::Deref for ParamValueMut<'_> {
    type Target = Tensor;
    fn deref(&self) -> &Tensor {
        &self.guard
    }
}

impl std::ops::DerefMut for ParamValueMut<'_> {
    fn deref_mut(&mut self) -> &mut Tensor {
        &mut self.guard
    }
}

impl Drop for ParamValueMut<'_> {
    fn drop(&mut self) {
        // before the write lock is released: a reader that sees the new value also sees
        // the new version
        self.version.fetch_add(1, Ordering::AcqRel);
        self.writer.store(0, Ordering::Release);
    }
}

impl std::fmt::Debug for ParamValueMut<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("ParamValueMut").field(&*self.guard).finish()
    }
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
    ///
    /// ```
    /// use sinew_autograd::Param;
    /// use sinew_tensor::Tensor;
    /// let w = Param::new("weight", Tensor::zeros(&[3, 2]));   // nn.Parameter(torch.zeros(3, 2))
    /// assert_eq!((w.name(), w.numel()), ("weight".to_string(), 6));
    /// ```
    pub fn new(name: impl Into<String>, value: Tensor) -> Param {
        Param {
            inner: Arc::new(ParamInner {
                id: VarId::fresh(),
                name: RwLock::new(name.into()),
                value: RwLock::new(value),
                writer: AtomicU64::new(0),
                version: AtomicU64::new(0),
                transposed: Mutex::new(None),
            }),
        }
    }

    /// The stable id its gradients are keyed by.
    ///
    /// ```
    /// use sinew_autograd::Param;
    /// use sinew_tensor::Tensor;
    /// let w = Param::new("w", Tensor::ones(&[2]));
    /// assert_eq!(w.id(), w.clone().id());   // stable: the key of w's gradient in every step
    /// assert_ne!(w.id(), Param::new("w", Tensor::ones(&[2])).id());
    /// ```
    pub fn id(&self) -> VarId {
        self.inner.id
    }

    /// The name.
    ///
    /// ```
    /// use sinew_autograd::Param;
    /// use sinew_tensor::Tensor;
    /// assert_eq!(Param::new("bias", Tensor::zeros(&[2])).name(), "bias");
    /// ```
    pub fn name(&self) -> String {
        self.inner.name.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Renames (modules set qualified names such as `0.weight`).
    ///
    /// ```
    /// use sinew_autograd::Param;
    /// use sinew_tensor::Tensor;
    /// let p = Param::new("weight", Tensor::zeros(&[2]));
    /// let alias = p.clone();   // the same parameter
    /// p.set_name("0.weight");
    /// assert_eq!(alias.name(), "0.weight");
    /// ```
    pub fn set_name(&self, name: impl Into<String>) {
        *self.inner.name.write().unwrap_or_else(|e| e.into_inner()) = name.into();
    }

    /// The current value, as a leaf of a new graph with this parameter's id.
    ///
    /// ```
    /// use sinew_autograd::Param;
    /// use sinew_tensor::Tensor;
    /// let w = Param::new("w", Tensor::full(&[2], 3.0));
    /// let (v1, v2) = (w.var(), w.var());   // each forward takes a fresh leaf, with the same id
    /// assert_eq!((v1.id(), v2.id()), (w.id(), w.id()));
    /// let g = v1.square().sum_all().backward();
    /// assert_eq!(g.get_id(w.id()).unwrap().to_vec::<f32>(), vec![6.0, 6.0]);
    /// ```
    pub fn var(&self) -> Var {
        Var::leaf_with_id(self.value(), self.inner.id)
    }

    /// Panics, naming the parameter, if this thread holds its [`ParamValueMut`].
    #[track_caller]
    fn not_held_here(&self, what: &str) {
        if self.inner.writer.load(Ordering::Acquire) == thread_token() {
            panic!(
                "Param::{what}: `{}` is borrowed by a `value_mut()` guard on this thread; drop the guard first",
                self.name()
            );
        }
    }

    /// The current value (PyTorch's `p.data`): a tensor sharing the parameter's storage,
    /// as cheap as cloning a handle. It holds no lock, so `p.set_value(p.value() * 0.5)`
    /// works; an in-place update made while this tensor is alive copies first
    /// (copy-on-write), so the tensor keeps the value it had.
    ///
    /// # Panics
    /// If this thread holds the parameter's [`Param::value_mut`] guard.
    ///
    /// ```
    /// use sinew_autograd::Param;
    /// use sinew_tensor::Tensor;
    /// let p = Param::new("w", Tensor::ones(&[2]));
    /// p.set_value(p.value().mul_scalar(0.5));
    /// assert_eq!(p.value().to_vec::<f32>(), vec![0.5, 0.5]);
    /// ```
    #[track_caller]
    pub fn value(&self) -> Tensor {
        self.read("value").clone()
    }

    /// The read guard, after [`Param::not_held_here`].
    #[track_caller]
    fn read(&self, what: &str) -> std::sync::RwLockReadGuard<'_, Tensor> {
        self.not_held_here(what);
        self.inner.value.read().unwrap_or_else(|e| e.into_inner())
    }

    /// Write access to the value, for in-place updates (an optimizer's step). Other
    /// threads wait for the guard to drop; on this thread, reading the parameter while it
    /// lives panics rather than waiting forever.
    ///
    /// # Panics
    /// If this thread already holds the guard.
    ///
    /// ```
    /// use sinew_autograd::Param;
    /// use sinew_tensor::Tensor;
    /// let w = Param::new("w", Tensor::ones(&[2]));
    /// {
    ///     let mut v = w.value_mut();   // with torch.no_grad(): w.sub_(0.5)
    ///     *v = v.sub_scalar(0.5);
    /// }
    /// assert_eq!(w.value().to_vec::<f32>(), vec![0.5, 0.5]);
    /// ```
    #[track_caller]
    pub fn value_mut(&self) -> ParamValueMut<'_> {
        self.not_held_here("value_mut");
        let guard = self.inner.value.write().unwrap_or_else(|e| e.into_inner());
        self.inner.writer.store(thread_token(), Ordering::Release);
        ParamValueMut { guard, writer: &self.inner.writer, version: &self.inner.version }
    }

    /// Replaces the value (loading weights; `p.data = ...` in PyTorch).
    ///
    /// # Panics
    /// If the shape or dtype changes, or this thread holds the [`Param::value_mut`] guard.
    ///
    /// ```
    /// use sinew_autograd::Param;
    /// use sinew_tensor::Tensor;
    /// let p = Param::new("w", Tensor::ones(&[2]));
    /// p.set_value(Tensor::full(&[2], 3.0));
    /// assert_eq!(p.value().to_vec::<f32>(), vec![3.0, 3.0]);
    /// ```
    #[track_caller]
    pub fn set_value(&self, value: Tensor) {
        let mut v = self.value_mut();
        assert!(
            v.dims() == value.dims() && v.dtype() == value.dtype(),
            "Param::set_value: {} is {} {:?}, got {} {:?}",
            self.inner.name.read().unwrap_or_else(|e| e.into_inner()),
            v.dtype(),
            v.dims(),
            value.dtype(),
            value.dims()
        );
        *v = value;
    }

    /// Converts the value to another element type (`model.double()` in PyTorch).
    ///
    /// ```
    /// use sinew_autograd::Param;
    /// use sinew_tensor::{DType, Tensor};
    /// let w = Param::new("w", Tensor::full(&[2], 0.5));
    /// w.cast(DType::F64);   // model.double()
    /// assert_eq!(w.value().dtype(), DType::F64);
    /// assert_eq!(w.value().to_vec::<f64>(), vec![0.5, 0.5]);
    /// ```
    pub fn cast(&self, dtype: sinew_tensor::DType) {
        let mut v = self.value_mut();
        *v = v.to_dtype(dtype);
    }

    /// The value of a matrix parameter transposed and contiguous (`w.t().contiguous()`),
    /// computed once and kept until the value next changes, so repeated calls cost a
    /// handle clone. Inference layers use it: faer multiplies a few rows by a row-major
    /// `Wᵀ` without repacking the whole weight each call (see `Linear`'s forward under
    /// `no_grad`). The copy lives as long as the parameter, doubling its memory once used.
    ///
    /// # Panics
    /// If the value is not 2-D, or this thread holds the [`Param::value_mut`] guard.
    ///
    /// ```
    /// use sinew_autograd::Param;
    /// use sinew_tensor::Tensor;
    /// let w = Param::new("w", Tensor::from([[1.0f32, 2.0, 3.0], [4.0, 5.0, 6.0]]));
    /// assert_eq!(w.transposed().to_vec::<f32>(), vec![1.0, 4.0, 2.0, 5.0, 3.0, 6.0]);
    /// w.set_value(w.value().mul_scalar(2.0));   // a write: the next call transposes again
    /// assert_eq!(w.transposed().to_vec::<f32>(), vec![2.0, 8.0, 4.0, 10.0, 6.0, 12.0]);
    /// ```
    #[track_caller]
    pub fn transposed(&self) -> Tensor {
        // the version first: a write racing with this call leaves an older version beside
        // the newer value, which only costs the next call a fresh transpose
        let version = self.inner.version.load(Ordering::Acquire);
        let mut cache = self.inner.transposed.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((v, t)) = cache.as_ref()
            && *v == version
        {
            return t.clone();
        }
        let value = self.value();
        assert!(
            value.ndim() == 2,
            "Param::transposed: {} is not a matrix, its shape is {:?}",
            self.name(),
            value.dims()
        );
        let t = value.t().contiguous();
        *cache = Some((version, t.clone()));
        t
    }

    /// Number of elements.
    ///
    /// ```
    /// use sinew_autograd::Param;
    /// use sinew_tensor::Tensor;
    /// let w = Param::new("w", Tensor::zeros(&[128, 784]));
    /// assert_eq!(w.numel(), 100_352);   // w.numel()
    /// ```
    #[track_caller]
    pub fn numel(&self) -> usize {
        self.read("numel").numel()
    }

    /// Whether two handles are the same parameter.
    ///
    /// ```
    /// use sinew_autograd::Param;
    /// use sinew_tensor::Tensor;
    /// let a = Param::new("w", Tensor::zeros(&[2]));
    /// let b = Param::new("w", Tensor::zeros(&[2]));
    /// assert!(a.same(&a.clone()));
    /// assert!(!a.same(&b));   // same name and value, another parameter
    /// ```
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

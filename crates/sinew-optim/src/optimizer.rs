//! The [`Optimizer`] trait, parameter groups, and the machinery the optimizers share:
//! per-parameter state buffers, typed in-place access, and chunked parallel updates.

use std::ops::DerefMut;

use sinew_autograd::{Gradients, Param};
use sinew_tensor::{DType, StorageElement, Tensor};

use crate::state::{GroupState, OptimizerState, StateError, StateTensor};

/// Parameters that share a learning rate and weight decay (PyTorch's param groups).
///
/// ```
/// use sinew_autograd::Param;
/// use sinew_optim::ParamGroup;
/// use sinew_tensor::Tensor;
/// let backbone = vec![Param::new("w", Tensor::zeros(&[3]))];
/// let g = ParamGroup::new(backbone, 1e-4).weight_decay(0.01);
/// assert_eq!((g.lr, g.weight_decay), (1e-4, 0.01));
/// ```
#[derive(Clone, Debug)]
pub struct ParamGroup {
    /// The parameters.
    pub params: Vec<Param>,
    /// Learning rate.
    pub lr: f64,
    /// Weight decay (L2 for SGD/Adam/RMSprop/Adagrad, decoupled for AdamW).
    pub weight_decay: f64,
}

impl ParamGroup {
    /// A group with learning rate `lr` and no weight decay.
    ///
    /// ```
    /// use sinew_autograd::Param;
    /// use sinew_optim::{Optimizer, ParamGroup, Sgd, SgdConfig};
    /// use sinew_tensor::Tensor;
    /// let (a, b) = (Param::new("a", Tensor::ones(&[1])), Param::new("b", Tensor::ones(&[1])));
    /// let groups = vec![ParamGroup::new(vec![a.clone()], 0.1), ParamGroup::new(vec![b.clone()], 0.01)];
    /// let mut opt = Sgd::with_groups(groups, SgdConfig::default());
    /// opt.step(&a.var().add(&b.var()).sum_all().backward());
    /// assert_eq!((a.value().item(), b.value().item()), (0.9f32 as f64, 0.99f32 as f64));
    /// ```
    pub fn new(params: Vec<Param>, lr: f64) -> Self {
        ParamGroup { params, lr, weight_decay: 0.0 }
    }

    /// Sets the weight decay.
    ///
    /// ```
    /// use sinew_autograd::Param;
    /// use sinew_optim::{Optimizer, ParamGroup, Sgd, SgdConfig};
    /// use sinew_tensor::Tensor;
    /// let w = Param::new("w", Tensor::scalar(1.0f64));
    /// let group = ParamGroup::new(vec![w.clone()], 0.1).weight_decay(0.1);   // weight_decay=0.1
    /// let mut opt = Sgd::with_groups(vec![group], SgdConfig::default());
    /// opt.step(&w.var().sum_all().backward());
    /// assert!((w.value().item() - (1.0 - 0.1 * (1.0 + 0.1))).abs() < 1e-12);   // g + wd·w
    /// ```
    pub fn weight_decay(mut self, wd: f64) -> Self {
        self.weight_decay = wd;
        self
    }
}

/// An optimizer: updates its parameters in place from a backward pass's [`Gradients`].
///
/// Parameters without a gradient in `grads` are left alone (and their state is not
/// advanced), as in PyTorch.
pub trait Optimizer: Send {
    /// One update of every parameter that has a gradient.
    ///
    /// ```
    /// use sinew_autograd::Param;
    /// use sinew_optim::{Optimizer, Sgd};
    /// use sinew_tensor::Tensor;
    /// let (a, b) = (Param::new("a", Tensor::ones(&[1])), Param::new("b", Tensor::ones(&[1])));
    /// let mut opt = Sgd::new(vec![a.clone(), b.clone()], 0.5);
    /// opt.step(&a.var().sum_all().backward());   // optimizer.step(): b has no gradient
    /// assert_eq!((a.value().item(), b.value().item()), (0.5, 1.0));
    /// ```
    fn step(&mut self, grads: &Gradients);
    /// The parameter groups.
    ///
    /// ```
    /// use sinew_autograd::Param;
    /// use sinew_optim::{Adam, Optimizer};
    /// use sinew_tensor::Tensor;
    /// let opt = Adam::new(vec![Param::new("w", Tensor::zeros(&[2]))], 1e-3);
    /// let g = &opt.param_groups()[0];   // optimizer.param_groups[0]
    /// assert_eq!((g.params.len(), g.lr, g.weight_decay), (1, 1e-3, 0.0));
    /// ```
    fn param_groups(&self) -> &[ParamGroup];
    /// The parameter groups, mutable (to change a group's learning rate or decay).
    ///
    /// ```
    /// use sinew_autograd::Param;
    /// use sinew_optim::{Optimizer, Sgd};
    /// use sinew_tensor::Tensor;
    /// let w = Param::new("w", Tensor::ones(&[1]));
    /// let mut opt = Sgd::new(vec![w.clone()], 0.1);
    /// opt.param_groups_mut()[0].lr = 1.0;   // for g in optimizer.param_groups: g["lr"] = 1.0
    /// opt.step(&w.var().sum_all().backward());
    /// assert_eq!(w.value().item(), 0.0);
    /// ```
    fn param_groups_mut(&mut self) -> &mut [ParamGroup];
    /// The state to save: steps, group settings and per-parameter buffers.
    ///
    /// ```
    /// use sinew_autograd::Param;
    /// use sinew_optim::{Optimizer, Sgd};
    /// use sinew_tensor::Tensor;
    /// let w = Param::new("w", Tensor::ones(&[2]));
    /// let mut opt = Sgd::momentum(vec![w.clone()], 0.1, 0.9);
    /// opt.step(&w.var().sum_all().backward());
    /// let s = opt.state();   // optimizer.state_dict()
    /// assert_eq!((s.kind.as_str(), s.step, s.param_steps.clone()), ("sgd", 1, vec![1]));
    /// assert_eq!(s.buffers[0][0].0, "momentum_buffer");
    /// assert_eq!(s.buffers[0][0].1.to_tensor()?.to_vec::<f32>(), vec![1.0, 1.0]);
    /// # Ok::<(), sinew_tensor::TensorError>(())
    /// ```
    fn state(&self) -> OptimizerState;
    /// Restores a saved state (from an optimizer of the same kind over the same parameters).
    ///
    /// # Errors
    /// If the state is for another kind of optimizer or other parameters.
    ///
    /// ```
    /// use sinew_autograd::Param;
    /// use sinew_optim::{Adam, Optimizer, Sgd};
    /// use sinew_tensor::Tensor;
    /// let w = Param::new("w", Tensor::ones(&[1]));
    /// let mut opt = Adam::new(vec![w.clone()], 0.1);
    /// opt.step(&w.var().sum_all().backward());
    /// let saved = opt.state();
    /// let mut resumed = Adam::new(vec![w.clone()], 0.1);   // optimizer.load_state_dict(saved)
    /// resumed.load_state(&saved).unwrap();
    /// assert_eq!(resumed.state(), saved);
    /// assert!(Sgd::new(vec![w.clone()], 0.1).load_state(&saved).is_err());   // another kind
    /// ```
    fn load_state(&mut self, state: &OptimizerState) -> Result<(), StateError>;

    /// The learning rate of the first group.
    ///
    /// ```
    /// use sinew_autograd::Param;
    /// use sinew_optim::{Optimizer, Sgd};
    /// use sinew_tensor::Tensor;
    /// let opt = Sgd::new(vec![Param::new("w", Tensor::zeros(&[1]))], 0.05);
    /// assert_eq!(opt.lr(), 0.05);   // optimizer.param_groups[0]["lr"]
    /// ```
    fn lr(&self) -> f64 {
        self.param_groups().first().map_or(0.0, |g| g.lr)
    }

    /// Sets the learning rate of every group.
    ///
    /// ```
    /// use sinew_autograd::Param;
    /// use sinew_optim::{Optimizer, ParamGroup, Sgd, SgdConfig};
    /// use sinew_tensor::Tensor;
    /// let p = || Param::new("w", Tensor::zeros(&[1]));
    /// let groups = vec![ParamGroup::new(vec![p()], 0.1), ParamGroup::new(vec![p()], 0.01)];
    /// let mut opt = Sgd::with_groups(groups, SgdConfig::default());
    /// opt.set_lr(0.5);
    /// assert!(opt.param_groups().iter().all(|g| g.lr == 0.5));
    /// ```
    fn set_lr(&mut self, lr: f64) {
        for g in self.param_groups_mut() {
            g.lr = lr;
        }
    }
}

/// Step counts past this (2^53, where `f64` stops counting exactly) are not from a real run.
const MAX_PLAUSIBLE_STEPS: u64 = 1 << 53;

/// Per-parameter buffers, created on a parameter's first update, and the step counts.
#[derive(Clone, Debug, Default)]
pub(crate) struct Slots {
    /// Per parameter (groups flattened), its named buffers (empty until first updated).
    pub(crate) buffers: Vec<Vec<Tensor>>,
    /// Per parameter, the updates it has received (PyTorch's per-parameter `step`: a
    /// parameter without a gradient in a step does not advance it).
    pub(crate) steps: Vec<u64>,
    /// Calls to `step`.
    pub(crate) step: u64,
}

impl Slots {
    pub(crate) fn new(groups: &[ParamGroup]) -> Self {
        let n = groups.iter().map(|g| g.params.len()).sum();
        Slots { buffers: vec![Vec::new(); n], steps: vec![0; n], step: 0 }
    }

    /// Counts one more update of parameter `i` and returns its step number (1 for the first).
    pub(crate) fn advance(&mut self, i: usize) -> u64 {
        self.steps[i] += 1;
        self.steps[i]
    }

    pub(crate) fn state(&self, kind: &str, names: &[&str], groups: &[ParamGroup]) -> OptimizerState {
        OptimizerState {
            kind: kind.to_string(),
            step: self.step,
            param_steps: self.steps.clone(),
            groups: groups.iter().map(|g| GroupState { lr: g.lr, weight_decay: g.weight_decay }).collect(),
            buffers: self
                .buffers
                .iter()
                .map(|bufs| {
                    bufs.iter()
                        .zip(names)
                        .map(|(t, n)| (n.to_string(), StateTensor::from_tensor(t)))
                        .collect()
                })
                .collect(),
        }
    }

    /// Restores `state`, checking that it is of this `kind`, over as many groups and
    /// parameters of the same shapes and dtypes, and that each parameter's saved buffers
    /// are either none (not updated yet) or exactly `names` (this configuration's).
    pub(crate) fn load(
        &mut self,
        kind: &str,
        names: &[&str],
        groups: &mut [ParamGroup],
        state: &OptimizerState,
    ) -> Result<(), StateError> {
        if state.kind != kind {
            return Err(StateError::Kind { expected: kind.into(), found: state.kind.clone() });
        }
        if state.groups.len() != groups.len() {
            return Err(StateError::Count {
                what: "groups",
                expected: groups.len(),
                found: state.groups.len(),
            });
        }
        let params: Vec<&Param> = groups.iter().flat_map(|g| g.params.iter()).collect();
        if state.buffers.len() != params.len() {
            return Err(StateError::Count {
                what: "parameters",
                expected: params.len(),
                found: state.buffers.len(),
            });
        }
        if state.param_steps.len() != params.len() {
            return Err(StateError::Count {
                what: "parameter step counts",
                expected: params.len(),
                found: state.param_steps.len(),
            });
        }
        if state.step > MAX_PLAUSIBLE_STEPS {
            return Err(StateError::Invalid(format!("{} steps is not a count a run reaches", state.step)));
        }
        for (i, g) in state.groups.iter().enumerate() {
            if !(g.lr.is_finite() && g.lr >= 0.0 && g.weight_decay.is_finite() && g.weight_decay >= 0.0) {
                return Err(StateError::Invalid(format!(
                    "group {i} has learning rate {} and weight decay {}: both must be finite and non-negative",
                    g.lr, g.weight_decay
                )));
            }
        }
        let mut buffers = Vec::with_capacity(params.len());
        for (index, (p, saved)) in params.iter().zip(&state.buffers).enumerate() {
            let param_step = state.param_steps[index];
            if param_step > state.step {
                return Err(StateError::Invalid(format!(
                    "parameter {index} has {param_step} updates, more than the optimizer's {} steps",
                    state.step
                )));
            }
            // buffers are created by a parameter's first update, so a parameter with
            // buffers has been updated (Adam's bias correction divides by 1 − β^step,
            // which is 0 at step 0). The converse need not hold: plain SGD's state loads
            // into SGD with momentum, whose buffer then starts at the next gradient.
            if !saved.is_empty() && param_step == 0 {
                return Err(StateError::Invalid(format!(
                    "parameter {index} has 0 updates but has buffers, which only an update creates"
                )));
            }
            let (shape, dtype) = {
                let v = p.value();
                (v.dims().to_vec(), v.dtype())
            };
            let saved_names: Vec<&str> = saved.iter().map(|(n, _)| n.as_str()).collect();
            if !saved_names.is_empty() && saved_names != names {
                return Err(StateError::Buffers {
                    index,
                    expected: names.iter().map(|n| n.to_string()).collect(),
                    found: saved_names.iter().map(|n| n.to_string()).collect(),
                });
            }
            let mut bufs = Vec::with_capacity(saved.len());
            for (name, t) in saved {
                let t = t.to_tensor().map_err(|_| StateError::Shape {
                    index,
                    name: name.clone(),
                    expected: shape.clone(),
                    found: vec![],
                })?;
                if t.dims() != shape {
                    return Err(StateError::Shape {
                        index,
                        name: name.clone(),
                        expected: shape,
                        found: t.dims().to_vec(),
                    });
                }
                if t.dtype() != dtype {
                    return Err(StateError::DType {
                        index,
                        name: name.clone(),
                        expected: dtype.to_string(),
                        found: t.dtype().to_string(),
                    });
                }
                let values = t.to_vec::<f64>();
                let squares = matches!(name.as_str(), "exp_avg_sq" | "max_exp_avg_sq" | "square_avg" | "sum");
                if let Some(bad) = values.iter().find(|v| !v.is_finite() || squares && **v < 0.0) {
                    return Err(StateError::Invalid(format!(
                        "parameter {index}: buffer {name:?} holds {bad}, which the next step cannot use"
                    )));
                }
                bufs.push(t);
            }
            buffers.push(bufs);
        }
        for (g, s) in groups.iter_mut().zip(&state.groups) {
            g.lr = s.lr;
            g.weight_decay = s.weight_decay;
        }
        self.buffers = buffers;
        self.steps = state.param_steps.clone();
        self.step = state.step;
        Ok(())
    }
}

/// Visits every parameter that has a gradient: `(group, flat index, param, grad)`.
pub(crate) fn with_grads<'a>(
    groups: &'a [ParamGroup],
    grads: &'a Gradients,
) -> impl Iterator<Item = (&'a ParamGroup, usize, &'a Param, &'a Tensor)> + 'a {
    groups
        .iter()
        .flat_map(|g| g.params.iter().map(move |p| (g, p)))
        .enumerate()
        .filter_map(move |(i, (g, p))| grads.get_id(p.id()).map(|gr| (g, i, p, gr)))
}

/// Creates a parameter's `count` zero buffers on its first update; returns whether they
/// were just created.
pub(crate) fn ensure_buffers(bufs: &mut Vec<Tensor>, p: &Param, count: usize) -> bool {
    if bufs.len() == count {
        return false;
    }
    let value = p.value();
    *bufs = (0..count).map(|_| value.zeros_like()).collect();
    true
}

/// Typed in-place access for one parameter update: runs `f::<T>` with the parameter's
/// data, its gradient and its buffers as slices of the parameter's float type.
pub(crate) fn update_typed(
    param: &Param,
    grad: &Tensor,
    bufs: &mut [Tensor],
    f32_fn: impl FnOnce(&mut [f32], &[f32], &mut [Tensor]),
    f64_fn: impl FnOnce(&mut [f64], &[f64], &mut [Tensor]),
) {
    let mut value = param.value_mut();
    let value: &mut Tensor = value.deref_mut();
    assert_eq!(
        grad.dims(),
        value.dims(),
        "optimizer: gradient of {} has shape {:?}, the parameter {:?}",
        param.name(),
        grad.dims(),
        value.dims()
    );
    // A gradient of the parameter's dtype is used as it is (borrowed when contiguous):
    // `to_dtype` would clone the tensor, and a clone allocates its shape and strides.
    let dtype = value.dtype();
    let converted;
    let grad = if grad.dtype() == dtype {
        grad
    } else {
        converted = grad.to_dtype(dtype);
        &converted
    };
    match dtype {
        DType::F32 => f32_fn(value.as_mut_slice::<f32>(), &grad.contiguous_slice::<f32>(), bufs),
        DType::F64 => f64_fn(value.as_mut_slice::<f64>(), &grad.contiguous_slice::<f64>(), bufs),
        DType::I64 => panic!("optimizer: parameter {} is int64", param.name()),
    }
}

/// Mutable slices of two distinct buffers.
pub(crate) fn two_mut<T: StorageElement>(bufs: &mut [Tensor]) -> (&mut [T], &mut [T]) {
    let (a, b) = bufs.split_at_mut(1);
    (a[0].as_mut_slice::<T>(), b[0].as_mut_slice::<T>())
}

/// Mutable slices of three distinct buffers.
pub(crate) fn three_mut<T: StorageElement>(bufs: &mut [Tensor]) -> (&mut [T], &mut [T], &mut [T]) {
    let (a, rest) = bufs.split_at_mut(1);
    let (b, c) = rest.split_at_mut(1);
    (a[0].as_mut_slice::<T>(), b[0].as_mut_slice::<T>(), c[0].as_mut_slice::<T>())
}

/// Runs an elementwise update over aligned chunks of a parameter, its gradient and its
/// buffers, in parallel for large parameters (rayon's multi-zip, no allocation). Chunk
/// boundaries depend only on the size, so results do not depend on the thread count.
///
/// `chunked!(T; p = p_slice, g = g_slice, m = m_slice; { ... })` (the caller imports
/// `rayon::prelude::*`)
macro_rules! chunked {
    ($t:ty; $p:ident = $pe:expr, $g:ident = $ge:expr $(, $b:ident = $be:expr)*; $body:block) => {{
        const CHUNK: usize = sinew_tensor::parallel::CHUNK;
        // `move`: the kernel owns copies of its scalars, so LLVM knows the stores into the
        // slices cannot change them, keeps them in registers and vectorises the loop
        // (and `vectorized`: compiled again for AVX-512 / AVX2 when the CPU has them)
        let kernel = move |$p: &mut [$t], $g: &[$t] $(, $b: &mut [$t])*| sinew_tensor::simd::vectorized(|| $body);
        if !sinew_tensor::parallel::worth_parallel($pe.len()) {
            kernel($pe, $ge $(, $be)*)
        } else {
            sinew_tensor::parallel::install(|| {
                ($pe.par_chunks_mut(CHUNK), $ge.par_chunks(CHUNK) $(, $be.par_chunks_mut(CHUNK))*)
                    .into_par_iter()
                    .for_each(|($p, $g $(, $b)*)| kernel($p, $g $(, $b)*))
            })
        }
    }};
}
pub(crate) use chunked;

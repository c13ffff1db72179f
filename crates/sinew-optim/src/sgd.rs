//! Stochastic gradient descent with momentum, dampening, Nesterov and weight decay
//! (`torch.optim.SGD`).

use rayon::prelude::*;
use sinew_autograd::{Gradients, Param};
use sinew_tensor::Float;

use crate::optimizer::{Optimizer, ParamGroup, Slots, chunked, ensure_buffers, update_typed, with_grads};
use crate::state::{OptimizerState, StateError};

/// SGD's settings beyond the learning rate (PyTorch's defaults: all zero / off).
#[derive(Clone, Copy, Debug, PartialEq, Default)]
pub struct SgdConfig {
    /// Momentum factor.
    pub momentum: f64,
    /// Dampening for momentum.
    pub dampening: f64,
    /// Nesterov momentum (needs momentum > 0 and no dampening).
    pub nesterov: bool,
}

/// SGD: `d = g + wd·p`; with momentum `b = μ·b + (1 - τ)·d` (the first `b` is `d`),
/// `d = b` or, with Nesterov, `d + μ·b`; then `p -= lr·d`.
///
/// ```
/// use sinew_autograd::Param;
/// use sinew_optim::{Optimizer, Sgd};
/// use sinew_tensor::Tensor;
/// let w = Param::new("w", Tensor::ones(&[2]));
/// let mut opt = Sgd::new(vec![w.clone()], 0.1);
/// let grads = w.var().square().sum_all().backward();   // d/dw = 2w = 2
/// opt.step(&grads);
/// assert_eq!(w.value().to_vec::<f32>(), vec![0.8, 0.8]);
/// ```
#[derive(Debug)]
pub struct Sgd {
    groups: Vec<ParamGroup>,
    config: SgdConfig,
    slots: Slots,
}

impl Sgd {
    /// Plain SGD over `params` with learning rate `lr`.
    ///
    /// ```
    /// use sinew_autograd::Param;
    /// use sinew_optim::{Optimizer, Sgd};
    /// use sinew_tensor::Tensor;
    /// let w = Param::new("w", Tensor::full(&[2], 3.0));
    /// let mut opt = Sgd::new(vec![w.clone()], 0.5);   // torch.optim.SGD([w], lr=0.5)
    /// opt.step(&w.var().sum_all().backward());   // gradient 1
    /// assert_eq!(w.value().to_vec::<f32>(), vec![2.5, 2.5]);
    /// ```
    pub fn new(params: Vec<Param>, lr: f64) -> Self {
        Sgd::with_groups(vec![ParamGroup::new(params, lr)], SgdConfig::default())
    }

    /// SGD with momentum `μ` (dampening 0, not Nesterov).
    ///
    /// ```
    /// use sinew_autograd::Param;
    /// use sinew_optim::{Optimizer, Sgd};
    /// use sinew_tensor::Tensor;
    /// let w = Param::new("w", Tensor::scalar(1.0f64));
    /// let mut opt = Sgd::momentum(vec![w.clone()], 0.1, 0.9);   // SGD([w], lr=0.1, momentum=0.9)
    /// for _ in 0..2 {
    ///     opt.step(&w.var().sum_all().backward());   // gradient 1 each time
    /// }
    /// // the buffer is 1, then 0.9·1 + 1 = 1.9: w = 1 - 0.1 - 0.19
    /// assert!((w.value().item() - 0.71).abs() < 1e-12);
    /// ```
    pub fn momentum(params: Vec<Param>, lr: f64, momentum: f64) -> Self {
        Sgd::with_groups(vec![ParamGroup::new(params, lr)], SgdConfig { momentum, ..SgdConfig::default() })
    }

    /// SGD over parameter groups with the given settings.
    ///
    /// # Panics
    /// If Nesterov is asked for without momentum or with dampening (as PyTorch refuses).
    ///
    /// ```
    /// use sinew_autograd::Param;
    /// use sinew_optim::{Optimizer, ParamGroup, Sgd, SgdConfig};
    /// use sinew_tensor::Tensor;
    /// let w = Param::new("w", Tensor::scalar(1.0f64));
    /// let config = SgdConfig { momentum: 0.9, nesterov: true, ..SgdConfig::default() };
    /// let mut opt = Sgd::with_groups(vec![ParamGroup::new(vec![w.clone()], 0.1)], config);
    /// opt.step(&w.var().sum_all().backward());
    /// assert!((w.value().item() - (1.0 - 0.1 * 1.9)).abs() < 1e-12);   // Nesterov: g + μ·b
    /// ```
    #[track_caller]
    pub fn with_groups(groups: Vec<ParamGroup>, config: SgdConfig) -> Self {
        assert!(
            !config.nesterov || (config.momentum > 0.0 && config.dampening == 0.0),
            "Sgd: Nesterov momentum requires a momentum and zero dampening"
        );
        let slots = Slots::new(&groups);
        Sgd { groups, config, slots }
    }
}

fn sgd_update<T: Float>(
    p: &mut [T],
    g: &[T],
    buf: Option<&mut [T]>,
    first: bool,
    lr: f64,
    wd: f64,
    c: &SgdConfig,
) {
    let (lr, wd) = (T::from_f64(lr), T::from_f64(wd));
    let (mu, damp) = (T::from_f64(c.momentum), T::from_f64(1.0 - c.dampening));
    let nesterov = c.nesterov;
    match buf {
        None => chunked!(T; p = p, g = g; {
            for (p, &g) in p.iter_mut().zip(g) {
                *p -= lr * (g + wd * *p);
            }
        }),
        Some(buf) => chunked!(T; p = p, g = g, b = buf; {
            for ((p, &g), b) in p.iter_mut().zip(g).zip(b.iter_mut()) {
                let d = g + wd * *p;
                *b = if first { d } else { mu * *b + damp * d };
                *p -= lr * if nesterov { d + mu * *b } else { *b };
            }
        }),
    }
}

impl Optimizer for Sgd {
    fn step(&mut self, grads: &Gradients) {
        self.slots.step += 1;
        let with_momentum = self.config.momentum != 0.0;
        let c = self.config;
        for (group, i, p, g) in with_grads(&self.groups, grads) {
            self.slots.advance(i);
            let bufs = &mut self.slots.buffers[i];
            let first = with_momentum && ensure_buffers(bufs, p, 1);
            let (lr, wd) = (group.lr, group.weight_decay);
            update_typed(
                p,
                g,
                bufs,
                |p, g, b| sgd_update(p, g, b.first_mut().map(|t| t.as_mut_slice::<f32>()), first, lr, wd, &c),
                |p, g, b| sgd_update(p, g, b.first_mut().map(|t| t.as_mut_slice::<f64>()), first, lr, wd, &c),
            );
        }
    }

    fn param_groups(&self) -> &[ParamGroup] {
        &self.groups
    }

    fn param_groups_mut(&mut self) -> &mut [ParamGroup] {
        &mut self.groups
    }

    fn state(&self) -> OptimizerState {
        self.slots.state("sgd", &["momentum_buffer"], &self.groups)
    }

    fn load_state(&mut self, state: &OptimizerState) -> Result<(), StateError> {
        let names: &[&str] = if self.config.momentum != 0.0 { &["momentum_buffer"] } else { &[] };
        self.slots.load("sgd", names, &mut self.groups, state)
    }
}

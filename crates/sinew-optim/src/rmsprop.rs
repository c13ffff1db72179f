//! RMSprop (`torch.optim.RMSprop`) and Adagrad (`torch.optim.Adagrad`).

use rayon::prelude::*;
use sinew_autograd::{Gradients, Param};
use sinew_tensor::Float;

use crate::optimizer::{
    Optimizer, ParamGroup, Slots, chunked, ensure_buffers, three_mut, update_typed, with_grads,
};
use crate::state::{OptimizerState, StateError};

/// RMSprop's settings beyond the learning rate (PyTorch: alpha 0.99, eps 1e-8, no
/// momentum, not centered).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RmsPropConfig {
    /// Smoothing constant of the squared-gradient average.
    pub alpha: f64,
    /// Added to the denominator.
    pub eps: f64,
    /// Momentum factor.
    pub momentum: f64,
    /// Normalise by the variance (subtracting the squared mean gradient).
    pub centered: bool,
}

impl Default for RmsPropConfig {
    fn default() -> Self {
        RmsPropConfig { alpha: 0.99, eps: 1e-8, momentum: 0.0, centered: false }
    }
}

/// RMSprop: `s = α·s + (1 - α)·g²`, `p -= lr·g / (√s + eps)` (centered: `√(s - ḡ²)`;
/// with momentum the step goes through a buffer).
#[derive(Debug)]
pub struct RmsProp {
    groups: Vec<ParamGroup>,
    config: RmsPropConfig,
    slots: Slots,
}

impl RmsProp {
    /// RMSprop with learning rate `lr` (PyTorch's default is 0.01) and defaults.
    ///
    /// ```
    /// use sinew_autograd::Param;
    /// use sinew_optim::{Optimizer, RmsProp};
    /// use sinew_tensor::Tensor;
    /// let w = Param::new("w", Tensor::scalar(1.0f64));
    /// let mut opt = RmsProp::new(vec![w.clone()], 0.01);   // torch.optim.RMSprop([w], lr=0.01)
    /// opt.step(&w.var().square().backward());   // g = 2, s = 0.01·g²: the step is lr·g/(0.1·g)
    /// assert!((w.value().item() - (1.0 - 0.01 * 2.0 / (0.2 + 1e-8))).abs() < 1e-12);   // eps = 1e-8
    /// ```
    pub fn new(params: Vec<Param>, lr: f64) -> Self {
        RmsProp::with_groups(vec![ParamGroup::new(params, lr)], RmsPropConfig::default())
    }

    /// RMSprop over parameter groups.
    ///
    /// ```
    /// use sinew_autograd::Param;
    /// use sinew_optim::{Optimizer, ParamGroup, RmsProp, RmsPropConfig};
    /// use sinew_tensor::Tensor;
    /// let w = Param::new("w", Tensor::scalar(1.0f64));
    /// let config = RmsPropConfig { centered: true, ..RmsPropConfig::default() };   // centered=True
    /// let mut opt = RmsProp::with_groups(vec![ParamGroup::new(vec![w.clone()], 0.001)], config);
    /// opt.step(&w.var().backward());   // g = 1: s = 0.01, ḡ = 0.01, step = lr / √(s - ḡ²)
    /// assert!((w.value().item() - (1.0 - 0.001 / (0.0099f64.sqrt() + 1e-8))).abs() < 1e-12);
    /// ```
    pub fn with_groups(groups: Vec<ParamGroup>, config: RmsPropConfig) -> Self {
        let slots = Slots::new(&groups);
        RmsProp { groups, config, slots }
    }
}

const RMSPROP_BUFFERS: &[&str] = &["square_avg", "grad_avg", "momentum_buffer"];

fn rmsprop_update<T: Float>(
    p: &mut [T],
    g: &[T],
    sq: &mut [T],
    avg: &mut [T],
    buf: &mut [T],
    lr: f64,
    wd: f64,
    c: &RmsPropConfig,
) {
    let (lr, wd) = (T::from_f64(lr), T::from_f64(wd));
    let (alpha, eps, mu) = (T::from_f64(c.alpha), T::from_f64(c.eps), T::from_f64(c.momentum));
    let one_a = T::ONE - alpha;
    let (centered, momentum) = (c.centered, c.momentum > 0.0);
    chunked!(T; p = p, g = g, s = sq, a = avg, b = buf; {
        for i in 0..p.len() {
            let gi = g[i] + wd * p[i];
            s[i] = alpha * s[i] + one_a * gi * gi;
            let denom = if centered {
                a[i] = alpha * a[i] + one_a * gi;
                (s[i] - a[i] * a[i]).sqrt() + eps
            } else {
                s[i].sqrt() + eps
            };
            if momentum {
                b[i] = mu * b[i] + gi / denom;
                p[i] -= lr * b[i];
            } else {
                p[i] -= lr * gi / denom;
            }
        }
    })
}

impl Optimizer for RmsProp {
    fn step(&mut self, grads: &Gradients) {
        self.slots.step += 1;
        let c = self.config;
        for (group, i, p, g) in with_grads(&self.groups, grads) {
            self.slots.advance(i);
            let bufs = &mut self.slots.buffers[i];
            ensure_buffers(bufs, p, 3);
            let (lr, wd) = (group.lr, group.weight_decay);
            update_typed(
                p,
                g,
                bufs,
                |p, g, b| {
                    let (s, a, m) = three_mut::<f32>(b);
                    rmsprop_update(p, g, s, a, m, lr, wd, &c)
                },
                |p, g, b| {
                    let (s, a, m) = three_mut::<f64>(b);
                    rmsprop_update(p, g, s, a, m, lr, wd, &c)
                },
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
        self.slots.state("rmsprop", RMSPROP_BUFFERS, &self.groups)
    }

    fn load_state(&mut self, state: &OptimizerState) -> Result<(), StateError> {
        self.slots.load("rmsprop", RMSPROP_BUFFERS, &mut self.groups, state)
    }
}

/// Adagrad's settings beyond the learning rate (PyTorch: no decay, accumulator 0,
/// eps 1e-10).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AdagradConfig {
    /// The learning rate decays as `lr / (1 + (step - 1)·lr_decay)`.
    pub lr_decay: f64,
    /// Starting value of the squared-gradient sum.
    pub initial_accumulator_value: f64,
    /// Added to the denominator.
    pub eps: f64,
}

impl Default for AdagradConfig {
    fn default() -> Self {
        AdagradConfig { lr_decay: 0.0, initial_accumulator_value: 0.0, eps: 1e-10 }
    }
}

/// Adagrad: `s += g²`, `p -= lr·g / (√s + eps)`.
#[derive(Debug)]
pub struct Adagrad {
    groups: Vec<ParamGroup>,
    config: AdagradConfig,
    slots: Slots,
}

impl Adagrad {
    /// Adagrad with learning rate `lr` (PyTorch's default is 0.01) and defaults.
    ///
    /// ```
    /// use sinew_autograd::Param;
    /// use sinew_optim::{Adagrad, Optimizer};
    /// use sinew_tensor::Tensor;
    /// let w = Param::new("w", Tensor::scalar(1.0f64));
    /// let mut opt = Adagrad::new(vec![w.clone()], 0.1);   // torch.optim.Adagrad([w], lr=0.1)
    /// opt.step(&w.var().mul_scalar(3.0).backward());   // s = g²: the first step is lr
    /// assert!((w.value().item() - (1.0 - 0.1 * 3.0 / (3.0 + 1e-10))).abs() < 1e-12);   // eps = 1e-10
    /// ```
    pub fn new(params: Vec<Param>, lr: f64) -> Self {
        Adagrad::with_groups(vec![ParamGroup::new(params, lr)], AdagradConfig::default())
    }

    /// Adagrad over parameter groups.
    ///
    /// ```
    /// use sinew_autograd::Param;
    /// use sinew_optim::{Adagrad, AdagradConfig, Optimizer, ParamGroup};
    /// use sinew_tensor::Tensor;
    /// let w = Param::new("w", Tensor::scalar(1.0f64));
    /// let config = AdagradConfig { initial_accumulator_value: 3.0, ..AdagradConfig::default() };
    /// let mut opt = Adagrad::with_groups(vec![ParamGroup::new(vec![w.clone()], 0.1)], config);
    /// opt.step(&w.var().backward());   // g = 1, s = 3 + 1: the step is 0.1 / 2
    /// assert!((w.value().item() - 0.95).abs() < 1e-9);
    /// ```
    pub fn with_groups(groups: Vec<ParamGroup>, config: AdagradConfig) -> Self {
        let slots = Slots::new(&groups);
        Adagrad { groups, config, slots }
    }
}

impl Optimizer for Adagrad {
    fn step(&mut self, grads: &Gradients) {
        self.slots.step += 1;
        let c = self.config;
        for (group, i, p, g) in with_grads(&self.groups, grads) {
            let step = self.slots.advance(i);
            let bufs = &mut self.slots.buffers[i];
            if ensure_buffers(bufs, p, 1) && c.initial_accumulator_value != 0.0 {
                bufs[0] = bufs[0].full_like(c.initial_accumulator_value);
            }
            let clr = group.lr / (1.0 + (step - 1) as f64 * c.lr_decay);
            let wd = group.weight_decay;
            fn update<T: Float + sinew_tensor::StorageElement>(
                p: &mut [T],
                g: &[T],
                b: &mut [sinew_tensor::Tensor],
                clr: f64,
                wd: f64,
                eps: f64,
            ) {
                let s = b[0].as_mut_slice::<T>();
                let (clr, wd, eps) = (T::from_f64(clr), T::from_f64(wd), T::from_f64(eps));
                chunked!(T; p = p, g = g, s = s; {
                    for ((p, &g), s) in p.iter_mut().zip(g).zip(s.iter_mut()) {
                        let g = g + wd * *p;
                        *s += g * g;
                        *p -= clr * g / ((*s).sqrt() + eps);
                    }
                })
            }
            update_typed(
                p,
                g,
                bufs,
                |p, g, b| update(p, g, b, clr, wd, c.eps),
                |p, g, b| update(p, g, b, clr, wd, c.eps),
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
        self.slots.state("adagrad", &["sum"], &self.groups)
    }

    fn load_state(&mut self, state: &OptimizerState) -> Result<(), StateError> {
        self.slots.load("adagrad", &["sum"], &mut self.groups, state)
    }
}

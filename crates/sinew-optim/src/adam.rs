//! Adam and AdamW (`torch.optim.Adam`, `torch.optim.AdamW`), with AMSGrad.

use rayon::prelude::*;
use sinew_autograd::{Gradients, Param};
use sinew_tensor::Float;

use crate::optimizer::{
    Optimizer, ParamGroup, Slots, chunked, ensure_buffers, three_mut, two_mut, update_typed, with_grads,
};
use crate::state::{OptimizerState, StateError};

/// Adam's settings beyond the learning rate (PyTorch's defaults: betas 0.9/0.999,
/// eps 1e-8, no AMSGrad).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AdamConfig {
    /// Decay rates of the first and second moment estimates.
    pub betas: (f64, f64),
    /// Added to the denominator.
    pub eps: f64,
    /// Keep the maximum of past second moments (AMSGrad).
    pub amsgrad: bool,
}

impl Default for AdamConfig {
    fn default() -> Self {
        AdamConfig { betas: (0.9, 0.999), eps: 1e-8, amsgrad: false }
    }
}

/// Adam (`decoupled = false`: weight decay is L2, added to the gradient) or AdamW
/// (`decoupled = true`: `p *= 1 - lr·wd` before the step). Built by [`Adam::new`] and
/// [`Adam::adamw`].
///
/// ```
/// use sinew_autograd::Param;
/// use sinew_optim::{Adam, Optimizer};
/// use sinew_tensor::Tensor;
/// let w = Param::new("w", Tensor::full(&[1], 3.0));
/// let mut opt = Adam::new(vec![w.clone()], 0.1);
/// for _ in 0..200 {
///     let grads = w.var().square().sum_all().backward();
///     opt.step(&grads);
/// }
/// assert!(w.value().item().abs() < 0.05);
/// ```
#[derive(Debug)]
pub struct Adam {
    groups: Vec<ParamGroup>,
    config: AdamConfig,
    decoupled: bool,
    slots: Slots,
}

/// AdamW: [`Adam`] with decoupled weight decay. `AdamW::new(params, lr)` uses PyTorch's
/// default decay of 0.01; [`Adam::adamw`] takes any decay.
///
/// ```
/// use sinew_autograd::Param;
/// use sinew_optim::{AdamW, Optimizer};
/// use sinew_tensor::Tensor;
/// let opt = AdamW::new(vec![Param::new("w", Tensor::zeros(&[2]))], 1e-3);
/// assert_eq!(opt.param_groups()[0].weight_decay, 0.01);
/// ```
#[derive(Debug)]
pub struct AdamW;

impl AdamW {
    /// AdamW with learning rate `lr` and weight decay 0.01 (PyTorch's defaults).
    ///
    /// ```
    /// use sinew_autograd::Param;
    /// use sinew_optim::{AdamW, Optimizer};
    /// use sinew_tensor::Tensor;
    /// let w = Param::new("w", Tensor::ones(&[2]));
    /// let mut opt = AdamW::new(vec![w.clone()], 0.1);   // torch.optim.AdamW([w], lr=0.1)
    /// opt.step(&w.var().square().sum_all().backward());
    /// // decay first, w·(1 - 0.1·0.01), then Adam's first step of about lr
    /// assert!(w.value().allclose(&Tensor::full(&[2], 0.999 - 0.1), 1e-6, 1e-6));
    /// ```
    #[allow(clippy::new_ret_no_self)]
    pub fn new(params: Vec<Param>, lr: f64) -> Adam {
        Adam::adamw(params, lr, 0.01)
    }
}

impl Adam {
    /// Adam with learning rate `lr` and PyTorch's defaults.
    ///
    /// ```
    /// use sinew_autograd::Param;
    /// use sinew_optim::{Adam, Optimizer};
    /// use sinew_tensor::Tensor;
    /// let w = Param::new("w", Tensor::from_vec(vec![1.0f32, -2.0], &[2])?);
    /// let mut opt = Adam::new(vec![w.clone()], 0.1);   // torch.optim.Adam([w], lr=0.1)
    /// opt.step(&w.var().square().sum_all().backward());
    /// // the first step moves each entry by about lr against its gradient's sign
    /// assert!(w.value().allclose(&Tensor::from_vec(vec![0.9f32, -1.9], &[2])?, 1e-6, 1e-6));
    /// # Ok::<(), sinew_tensor::TensorError>(())
    /// ```
    pub fn new(params: Vec<Param>, lr: f64) -> Self {
        Adam::with_groups(vec![ParamGroup::new(params, lr)], AdamConfig::default(), false)
    }

    /// AdamW with learning rate `lr` and weight decay `wd` (PyTorch's default is 0.01).
    ///
    /// ```
    /// use sinew_autograd::Param;
    /// use sinew_optim::{Adam, Optimizer};
    /// use sinew_tensor::Tensor;
    /// let w = Param::new("w", Tensor::ones(&[1]));
    /// let mut opt = Adam::adamw(vec![w.clone()], 0.1, 0.1);   // AdamW([w], lr=0.1, weight_decay=0.1)
    /// opt.step(&w.var().sum_all().backward());
    /// assert!((w.value().item() - (0.99 - 0.1)).abs() < 1e-6);   // w·(1 - lr·wd) - lr
    /// assert_eq!(opt.param_groups()[0].weight_decay, 0.1);
    /// ```
    pub fn adamw(params: Vec<Param>, lr: f64, wd: f64) -> Self {
        Adam::with_groups(vec![ParamGroup::new(params, lr).weight_decay(wd)], AdamConfig::default(), true)
    }

    /// Adam (or AdamW when `decoupled`) over parameter groups.
    ///
    /// ```
    /// use sinew_autograd::Param;
    /// use sinew_optim::{Adam, AdamConfig, Optimizer, ParamGroup};
    /// use sinew_tensor::Tensor;
    /// let (body, head) = (Param::new("body", Tensor::ones(&[1])), Param::new("head", Tensor::ones(&[1])));
    /// // Adam([{"params": [body], "lr": 0.01}, {"params": [head]}], lr=0.1, amsgrad=True)
    /// let groups = vec![ParamGroup::new(vec![body.clone()], 0.01), ParamGroup::new(vec![head.clone()], 0.1)];
    /// let mut opt = Adam::with_groups(groups, AdamConfig { amsgrad: true, ..AdamConfig::default() }, false);
    /// opt.step(&body.var().add(&head.var()).sum_all().backward());
    /// assert!((body.value().item() - 0.99).abs() < 1e-6);
    /// assert!((head.value().item() - 0.9).abs() < 1e-6);
    /// assert_eq!(opt.state().buffers[0].len(), 3);   // exp_avg, exp_avg_sq, max_exp_avg_sq
    /// ```
    pub fn with_groups(groups: Vec<ParamGroup>, config: AdamConfig, decoupled: bool) -> Self {
        let slots = Slots::new(&groups);
        Adam { groups, config, decoupled, slots }
    }

    fn kind(&self) -> &'static str {
        if self.decoupled { "adamw" } else { "adam" }
    }

    fn buffer_names(&self) -> &'static [&'static str] {
        if self.config.amsgrad {
            &["exp_avg", "exp_avg_sq", "max_exp_avg_sq"]
        } else {
            &["exp_avg", "exp_avg_sq"]
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn adam_update<T: Float>(
    p: &mut [T],
    g: &[T],
    m: &mut [T],
    v: &mut [T],
    vmax: Option<&mut [T]>,
    step: u64,
    lr: f64,
    wd: f64,
    decoupled: bool,
    c: &AdamConfig,
) {
    let (b1, b2) = c.betas;
    // `powi` as PyTorch's `beta ** step` for every count an i32 holds; past that (a count
    // `as i32` would wrap, to 0 at 2^32, and make the correction 0 and the step NaN)
    // `powf`, whose result there is 0 for every β < 1 anyway
    let pow = |b: f64| i32::try_from(step).map_or_else(|_| b.powf(step as f64), |s| b.powi(s));
    let bc1 = 1.0 - pow(b1);
    let bc2 = 1.0 - pow(b2);
    let step_size = T::from_f64(lr / bc1);
    let bc2_sqrt = T::from_f64(bc2.sqrt());
    let (b1, b2, eps) = (T::from_f64(b1), T::from_f64(b2), T::from_f64(c.eps));
    let (one_b1, one_b2) = (T::ONE - b1, T::ONE - b2);
    let (l2, decay) =
        if decoupled { (T::ZERO, T::from_f64(1.0 - lr * wd)) } else { (T::from_f64(wd), T::ONE) };
    match vmax {
        None => chunked!(T; p = p, g = g, m = m, v = v; {
            for (((p, &g), m), v) in p.iter_mut().zip(g).zip(m.iter_mut()).zip(v.iter_mut()) {
                *p *= decay;
                let g = g + l2 * *p;
                *m = b1 * *m + one_b1 * g;
                *v = b2 * *v + one_b2 * g * g;
                *p -= step_size * *m / ((*v).sqrt() / bc2_sqrt + eps);
            }
        }),
        Some(vmax) => chunked!(T; p = p, g = g, m = m, v = v, w = vmax; {
            for ((((p, &g), m), v), w) in p.iter_mut().zip(g).zip(m.iter_mut()).zip(v.iter_mut()).zip(w.iter_mut()) {
                *p *= decay;
                let g = g + l2 * *p;
                *m = b1 * *m + one_b1 * g;
                *v = b2 * *v + one_b2 * g * g;
                if *v > *w {
                    *w = *v;
                }
                *p -= step_size * *m / ((*w).sqrt() / bc2_sqrt + eps);
            }
        }),
    }
}

impl Optimizer for Adam {
    fn step(&mut self, grads: &Gradients) {
        self.slots.step += 1;
        let (c, decoupled) = (self.config, self.decoupled);
        let count = if c.amsgrad { 3 } else { 2 };
        for (group, i, p, g) in with_grads(&self.groups, grads) {
            let step = self.slots.advance(i);
            let bufs = &mut self.slots.buffers[i];
            ensure_buffers(bufs, p, count);
            let (lr, wd) = (group.lr, group.weight_decay);
            update_typed(
                p,
                g,
                bufs,
                |p, g, b| {
                    if c.amsgrad {
                        let (m, v, w) = three_mut::<f32>(b);
                        adam_update(p, g, m, v, Some(w), step, lr, wd, decoupled, &c)
                    } else {
                        let (m, v) = two_mut::<f32>(b);
                        adam_update(p, g, m, v, None, step, lr, wd, decoupled, &c)
                    }
                },
                |p, g, b| {
                    if c.amsgrad {
                        let (m, v, w) = three_mut::<f64>(b);
                        adam_update(p, g, m, v, Some(w), step, lr, wd, decoupled, &c)
                    } else {
                        let (m, v) = two_mut::<f64>(b);
                        adam_update(p, g, m, v, None, step, lr, wd, decoupled, &c)
                    }
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
        self.slots.state(self.kind(), self.buffer_names(), &self.groups)
    }

    fn load_state(&mut self, state: &OptimizerState) -> Result<(), StateError> {
        let (kind, names) = (self.kind(), self.buffer_names());
        self.slots.load(kind, names, &mut self.groups, state)
    }
}

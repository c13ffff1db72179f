//! Learning-rate schedules (`torch.optim.lr_scheduler`): closed-form schedules as
//! functions of the step count, a [`Scheduler`] that applies one to an optimizer, and the
//! stateful [`ReduceLrOnPlateau`].
//!
//! A "step" is whatever unit you call [`Scheduler::step`] at: once per epoch as in
//! PyTorch's examples, or once per batch for warm-up and one-cycle schedules.

use std::f64::consts::PI;

use serde::{Deserialize, Serialize};

use crate::optimizer::Optimizer;
use crate::state::StateError;

/// A learning rate as a function of the step count and the group's initial rate.
pub trait LrSchedule: Send + Sync {
    /// The rate in force after `step` scheduler steps, for a group that started at `base_lr`.
    ///
    /// ```
    /// use sinew_optim::{LrSchedule, MultiStepLr};
    /// // a custom schedule: inverse square root decay after 4 warm-up steps
    /// struct InvSqrt;
    /// impl LrSchedule for InvSqrt {
    ///     fn lr(&self, step: usize, base: f64) -> f64 {
    ///         base * (4.0 / (step.max(4) as f64)).sqrt()
    ///     }
    /// }
    /// assert_eq!((InvSqrt.lr(0, 0.1), InvSqrt.lr(16, 0.1)), (0.1, 0.05));
    /// let m = MultiStepLr { milestones: vec![2, 4], gamma: 0.1 };
    /// assert_eq!((m.lr(1, 1.0), m.lr(2, 1.0)), (1.0, 0.1));
    /// assert!((m.lr(4, 1.0) - 0.01).abs() < 1e-15);
    /// ```
    fn lr(&self, step: usize, base_lr: f64) -> f64;
}

/// Multiplies the rate by `gamma` every `step_size` steps (`StepLR`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct StepLr {
    /// Steps between decays.
    pub step_size: usize,
    /// Decay factor.
    pub gamma: f64,
}

impl LrSchedule for StepLr {
    fn lr(&self, step: usize, base: f64) -> f64 {
        base * self.gamma.powi((step / self.step_size.max(1)) as i32)
    }
}

/// Multiplies the rate by `gamma` at each milestone (`MultiStepLR`).
#[derive(Clone, Debug, PartialEq)]
pub struct MultiStepLr {
    /// Steps at which to decay.
    pub milestones: Vec<usize>,
    /// Decay factor.
    pub gamma: f64,
}

impl LrSchedule for MultiStepLr {
    fn lr(&self, step: usize, base: f64) -> f64 {
        base * self.gamma.powi(self.milestones.iter().filter(|&&m| m <= step).count() as i32)
    }
}

/// Multiplies the rate by `gamma` every step (`ExponentialLR`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ExponentialLr {
    /// Decay factor.
    pub gamma: f64,
}

impl LrSchedule for ExponentialLr {
    fn lr(&self, step: usize, base: f64) -> f64 {
        base * self.gamma.powi(step as i32)
    }
}

/// Cosine annealing from the base rate to `eta_min` over `t_max` steps
/// (`CosineAnnealingLR`; beyond `t_max` the cosine continues, as PyTorch's does).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct CosineAnnealingLr {
    /// Half-period, in steps.
    pub t_max: usize,
    /// Lowest rate.
    pub eta_min: f64,
}

impl LrSchedule for CosineAnnealingLr {
    fn lr(&self, step: usize, base: f64) -> f64 {
        let t = step as f64 / self.t_max.max(1) as f64;
        self.eta_min + (base - self.eta_min) * (1.0 + (PI * t).cos()) / 2.0
    }
}

/// Scales the rate linearly from `start_factor` to `end_factor` over `total_iters` steps,
/// then holds it (`LinearLR`, the usual warm-up; PyTorch: 1/3 → 1 over 5).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LinearLr {
    /// Factor at step 0.
    pub start_factor: f64,
    /// Factor from `total_iters` on.
    pub end_factor: f64,
    /// Length of the ramp.
    pub total_iters: usize,
}

impl LrSchedule for LinearLr {
    fn lr(&self, step: usize, base: f64) -> f64 {
        let t = step.min(self.total_iters) as f64 / self.total_iters.max(1) as f64;
        base * (self.start_factor + (self.end_factor - self.start_factor) * t)
    }
}

/// The one-cycle policy (`OneCycleLR`, cosine annealing, two phases): from
/// `max_lr / div_factor` up to `max_lr` over the first `pct_start` of `total_steps`, then
/// down to `max_lr / (div_factor · final_div_factor)`. It ignores the group's base rate.
/// (Momentum cycling is not applied.)
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct OneCycleLr {
    /// Peak rate.
    pub max_lr: f64,
    /// Length of the cycle.
    pub total_steps: usize,
    /// Fraction of the cycle spent increasing (PyTorch: 0.3).
    pub pct_start: f64,
    /// `initial = max_lr / div_factor` (PyTorch: 25).
    pub div_factor: f64,
    /// `min = initial / final_div_factor` (PyTorch: 1e4).
    pub final_div_factor: f64,
}

impl OneCycleLr {
    /// PyTorch's defaults for a peak rate and a cycle length.
    ///
    /// ```
    /// use sinew_optim::{LrSchedule, OneCycleLr};
    /// let s = OneCycleLr::new(1.0, 100);   // OneCycleLR(opt, max_lr=1.0, total_steps=100)
    /// assert!((s.lr(0, 0.0) - 1.0 / 25.0).abs() < 1e-12);   // max_lr / div_factor
    /// assert!((s.lr(29, 0.0) - 1.0).abs() < 1e-12);         // the peak, after 30%
    /// assert!((s.lr(99, 0.0) - 0.04 / 1e4).abs() < 1e-12);  // / final_div_factor
    /// ```
    pub fn new(max_lr: f64, total_steps: usize) -> Self {
        OneCycleLr { max_lr, total_steps, pct_start: 0.3, div_factor: 25.0, final_div_factor: 1e4 }
    }
}

impl LrSchedule for OneCycleLr {
    fn lr(&self, step: usize, _base: f64) -> f64 {
        let initial = self.max_lr / self.div_factor;
        let min = initial / self.final_div_factor;
        let anneal = |start: f64, end: f64, pct: f64| end + (start - end) / 2.0 * ((PI * pct).cos() + 1.0);
        let up_end = self.pct_start * self.total_steps as f64 - 1.0;
        let down_end = self.total_steps as f64 - 1.0;
        let s = step as f64;
        if s <= up_end {
            anneal(initial, self.max_lr, if up_end > 0.0 { s / up_end } else { 1.0 })
        } else {
            anneal(self.max_lr, min, ((s - up_end) / (down_end - up_end)).min(1.0))
        }
    }
}

/// Runs `first` for `milestone` steps, then `second` from its own step 0
/// (`SequentialLR`): warm-up then cosine, for example.
///
/// ```
/// use sinew_optim::{CosineAnnealingLr, LinearLr, LrSchedule, Then};
/// let s = Then { first: LinearLr { start_factor: 0.1, end_factor: 1.0, total_iters: 5 }, milestone: 5,
///                second: CosineAnnealingLr { t_max: 10, eta_min: 0.0 } };
/// assert!((s.lr(0, 1.0) - 0.1).abs() < 1e-12);
/// assert_eq!(s.lr(5, 1.0), 1.0);
/// assert!(s.lr(15, 1.0) < 1e-12);
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct Then<A, B> {
    /// The schedule before the milestone.
    pub first: A,
    /// The step at which `second` takes over.
    pub milestone: usize,
    /// The schedule after it.
    pub second: B,
}

impl<A: LrSchedule, B: LrSchedule> LrSchedule for Then<A, B> {
    fn lr(&self, step: usize, base: f64) -> f64 {
        if step < self.milestone {
            self.first.lr(step, base)
        } else {
            self.second.lr(step - self.milestone, base)
        }
    }
}

/// The state of a [`Scheduler`], for checkpoints.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SchedulerState {
    /// Steps taken.
    pub step: usize,
    /// Each group's initial learning rate.
    pub base_lrs: Vec<f64>,
}

/// Applies a schedule to an optimizer's groups: built at step 0 (setting the step-0
/// rate), advanced with [`Scheduler::step`].
///
/// ```
/// use sinew_autograd::Param;
/// use sinew_optim::{Optimizer, Scheduler, Sgd, StepLr};
/// use sinew_tensor::Tensor;
/// let mut opt = Sgd::new(vec![Param::new("w", Tensor::zeros(&[1]))], 0.1);
/// let mut sched = Scheduler::new(StepLr { step_size: 2, gamma: 0.5 }, &mut opt);
/// let mut seen = vec![];
/// for _epoch in 0..5 {
///     seen.push(opt.lr());
///     sched.step(&mut opt);
/// }
/// assert_eq!(seen, vec![0.1, 0.1, 0.05, 0.05, 0.025]);
/// ```
#[derive(Debug)]
pub struct Scheduler<S> {
    schedule: S,
    state: SchedulerState,
}

impl<S: LrSchedule> Scheduler<S> {
    /// Records the groups' current rates as base rates and applies step 0.
    ///
    /// ```
    /// use sinew_autograd::Param;
    /// use sinew_optim::{LinearLr, Optimizer, Scheduler, Sgd};
    /// use sinew_tensor::Tensor;
    /// let mut opt = Sgd::new(vec![Param::new("w", Tensor::zeros(&[1]))], 0.1);
    /// // LinearLR(opt, start_factor=0.1, total_iters=4): the warm-up rate applies at once
    /// let _sched = Scheduler::new(LinearLr { start_factor: 0.1, end_factor: 1.0, total_iters: 4 }, &mut opt);
    /// assert!((opt.lr() - 0.01).abs() < 1e-15);
    /// ```
    pub fn new(schedule: S, opt: &mut dyn Optimizer) -> Self {
        let base_lrs = opt.param_groups().iter().map(|g| g.lr).collect();
        let s = Scheduler { schedule, state: SchedulerState { step: 0, base_lrs } };
        s.apply(opt);
        s
    }

    fn apply(&self, opt: &mut dyn Optimizer) {
        for (g, &base) in opt.param_groups_mut().iter_mut().zip(&self.state.base_lrs) {
            g.lr = self.schedule.lr(self.state.step, base);
        }
    }

    /// Advances one step and sets the new rates.
    ///
    /// ```
    /// use sinew_autograd::Param;
    /// use sinew_optim::{ExponentialLr, Optimizer, Scheduler, Sgd};
    /// use sinew_tensor::Tensor;
    /// let mut opt = Sgd::new(vec![Param::new("w", Tensor::zeros(&[1]))], 0.1);
    /// let mut sched = Scheduler::new(ExponentialLr { gamma: 0.5 }, &mut opt);
    /// sched.step(&mut opt);   // scheduler.step()
    /// sched.step(&mut opt);
    /// assert!((opt.lr() - 0.025).abs() < 1e-15);
    /// ```
    pub fn step(&mut self, opt: &mut dyn Optimizer) {
        self.state.step += 1;
        self.apply(opt);
    }

    /// The rate of the first group at the current step.
    ///
    /// ```
    /// use sinew_autograd::Param;
    /// use sinew_optim::{Optimizer, Scheduler, Sgd, StepLr};
    /// use sinew_tensor::Tensor;
    /// let mut opt = Sgd::new(vec![Param::new("w", Tensor::zeros(&[1]))], 1.0);
    /// let mut sched = Scheduler::new(StepLr { step_size: 1, gamma: 0.5 }, &mut opt);
    /// sched.step(&mut opt);
    /// assert_eq!(sched.last_lr(), 0.5);   // scheduler.get_last_lr()[0]
    /// assert_eq!(sched.last_lr(), opt.lr());
    /// ```
    pub fn last_lr(&self) -> f64 {
        self.state.base_lrs.first().map_or(0.0, |&b| self.schedule.lr(self.state.step, b))
    }

    /// The state to save.
    ///
    /// ```
    /// use sinew_autograd::Param;
    /// use sinew_optim::{Scheduler, SchedulerState, Sgd, StepLr};
    /// use sinew_tensor::Tensor;
    /// let mut opt = Sgd::new(vec![Param::new("w", Tensor::zeros(&[1]))], 0.1);
    /// let mut sched = Scheduler::new(StepLr { step_size: 2, gamma: 0.5 }, &mut opt);
    /// sched.step(&mut opt);
    /// assert_eq!(sched.state(), SchedulerState { step: 1, base_lrs: vec![0.1] });   // scheduler.state_dict()
    /// ```
    pub fn state(&self) -> SchedulerState {
        self.state.clone()
    }

    /// Restores a saved state and applies it to `opt`; on error neither changes.
    ///
    /// # Errors
    /// [`StateError::Count`] if the state has base rates for another number of groups
    /// than `opt` has; [`StateError::Invalid`] for a base rate that is negative or not
    /// finite, or a step at which the schedule's rate is not finite.
    ///
    /// ```
    /// use sinew_autograd::Param;
    /// use sinew_optim::{Optimizer, Scheduler, SchedulerState, Sgd, StepLr};
    /// use sinew_tensor::Tensor;
    /// let mut opt = Sgd::new(vec![Param::new("w", Tensor::zeros(&[1]))], 0.1);
    /// let mut sched = Scheduler::new(StepLr { step_size: 2, gamma: 0.5 }, &mut opt);
    /// sched.load_state(SchedulerState { step: 4, base_lrs: vec![0.1] }, &mut opt)?;
    /// assert!((opt.lr() - 0.025).abs() < 1e-12);
    /// let bad = SchedulerState { step: 0, base_lrs: vec![f64::NAN] };
    /// assert!(sched.load_state(bad, &mut opt).is_err());
    /// # Ok::<(), sinew_optim::StateError>(())
    /// ```
    pub fn load_state(&mut self, state: SchedulerState, opt: &mut dyn Optimizer) -> Result<(), StateError> {
        let groups = opt.param_groups().len();
        if state.base_lrs.len() != groups {
            return Err(StateError::Count {
                what: "scheduler base rates",
                expected: groups,
                found: state.base_lrs.len(),
            });
        }
        for (i, &base) in state.base_lrs.iter().enumerate() {
            let lr = self.schedule.lr(state.step, base);
            if !(base.is_finite() && base >= 0.0 && lr.is_finite()) {
                return Err(StateError::Invalid(format!(
                    "scheduler: group {i} has base rate {base}, giving rate {lr} at step {}",
                    state.step
                )));
            }
        }
        self.state = state;
        self.apply(opt);
        Ok(())
    }
}

/// Whether a smaller or larger metric is better.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum PlateauMode {
    /// Lower is better (a loss).
    Min,
    /// Higher is better (an accuracy).
    Max,
}

/// Multiplies the rate by `factor` when a metric has not improved for `patience` steps
/// (`ReduceLROnPlateau`, relative threshold mode): a metric improves on the best so far
/// when it is below `best·(1 - threshold)` (min) or above `best·(1 + threshold)` (max);
/// the best starts at +∞ (min) or -∞ (max). Bad steps during a cooldown are not
/// counted, and a group's rate changes only when the reduction exceeds `eps`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ReduceLrOnPlateau {
    /// Min or max.
    pub mode: PlateauMode,
    /// Decay factor (PyTorch: 0.1).
    pub factor: f64,
    /// Steps without improvement tolerated (PyTorch: 10).
    pub patience: usize,
    /// Relative improvement that counts (PyTorch: 1e-4).
    pub threshold: f64,
    /// Steps to wait after a reduction (PyTorch: 0).
    pub cooldown: usize,
    /// Lowest rate (PyTorch: 0).
    pub min_lr: f64,
    /// A reduction smaller than this is not applied (PyTorch: 1e-8).
    pub eps: f64,
    best: Option<f64>,
    bad_steps: usize,
    cooldown_left: usize,
}

impl ReduceLrOnPlateau {
    /// PyTorch's defaults in the given mode.
    ///
    /// ```
    /// use sinew_optim::{PlateauMode, ReduceLrOnPlateau};
    /// let p = ReduceLrOnPlateau::new(PlateauMode::Max);   // ReduceLROnPlateau(opt, mode="max")
    /// assert_eq!((p.factor, p.patience, p.threshold, p.cooldown), (0.1, 10, 1e-4, 0));
    /// ```
    pub fn new(mode: PlateauMode) -> Self {
        ReduceLrOnPlateau {
            mode,
            factor: 0.1,
            patience: 10,
            threshold: 1e-4,
            cooldown: 0,
            min_lr: 0.0,
            eps: 1e-8,
            best: None,
            bad_steps: 0,
            cooldown_left: 0,
        }
    }

    /// Checks that the settings and counters could have come from a run (for state read
    /// back from a checkpoint): `factor` in `[0, 1)`, `threshold`, `min_lr` and `eps`
    /// finite and non-negative, a best value that is not NaN.
    ///
    /// ```
    /// use sinew_optim::{PlateauMode, ReduceLrOnPlateau};
    /// let mut p = ReduceLrOnPlateau::new(PlateauMode::Min);
    /// assert!(p.validate().is_ok());
    /// p.factor = f64::NAN;
    /// assert!(p.validate().is_err());
    /// ```
    ///
    /// # Errors
    /// [`StateError::Invalid`] naming the field.
    pub fn validate(&self) -> Result<(), StateError> {
        let non_negative = |name: &str, v: f64| {
            if v.is_finite() && v >= 0.0 {
                Ok(())
            } else {
                Err(StateError::Invalid(format!("ReduceLrOnPlateau: {name} is {v}, not a finite value ≥ 0")))
            }
        };
        if !(0.0..1.0).contains(&self.factor) {
            return Err(StateError::Invalid(format!(
                "ReduceLrOnPlateau: factor is {}, not in [0, 1)",
                self.factor
            )));
        }
        non_negative("threshold", self.threshold)?;
        non_negative("min_lr", self.min_lr)?;
        non_negative("eps", self.eps)?;
        if self.best.is_some_and(f64::is_nan) {
            return Err(StateError::Invalid("ReduceLrOnPlateau: the best value is NaN".into()));
        }
        Ok(())
    }

    fn improves(&self, metric: f64) -> bool {
        // Before the first improvement the best is the worst value, as in PyTorch (so an
        // infinite or NaN first metric does not count as an improvement).
        match (self.mode, self.best) {
            (PlateauMode::Min, b) => metric < b.unwrap_or(f64::INFINITY) * (1.0 - self.threshold),
            (PlateauMode::Max, b) => metric > b.unwrap_or(f64::NEG_INFINITY) * (1.0 + self.threshold),
        }
    }

    /// Records this step's metric, reducing the rates of `opt` if it has plateaued.
    /// Returns whether it reduced any (a reduction of at most `eps` is not applied).
    ///
    /// ```
    /// use sinew_autograd::Param;
    /// use sinew_optim::{Optimizer, PlateauMode, ReduceLrOnPlateau, Sgd};
    /// use sinew_tensor::Tensor;
    /// let mut opt = Sgd::new(vec![Param::new("w", Tensor::zeros(&[1]))], 0.1);
    /// let mut plateau = ReduceLrOnPlateau::new(PlateauMode::Min);
    /// plateau.patience = 1;
    /// let reduced: Vec<bool> = [1.0, 0.5, 0.5, 0.5].iter().map(|&loss| plateau.step(loss, &mut opt)).collect();
    /// // two steps without improvement exceed a patience of 1
    /// assert_eq!(reduced, vec![false, false, false, true]);
    /// assert!((opt.lr() - 0.01).abs() < 1e-15);
    /// ```
    pub fn step(&mut self, metric: f64, opt: &mut dyn Optimizer) -> bool {
        if self.improves(metric) {
            self.best = Some(metric);
            self.bad_steps = 0;
        } else {
            self.bad_steps += 1;
        }
        if self.cooldown_left > 0 {
            self.cooldown_left -= 1;
            self.bad_steps = 0;
        }
        if self.bad_steps > self.patience {
            let mut reduced = false;
            for g in opt.param_groups_mut() {
                let new_lr = (g.lr * self.factor).max(self.min_lr);
                if g.lr - new_lr > self.eps {
                    g.lr = new_lr;
                    reduced = true;
                }
            }
            self.cooldown_left = self.cooldown;
            self.bad_steps = 0;
            return reduced;
        }
        false
    }
}

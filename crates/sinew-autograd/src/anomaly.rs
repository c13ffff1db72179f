//! Anomaly mode (opt-in, `torch.autograd.detect_anomaly`): the first op whose forward or
//! backward produces NaN or infinity panics with the op's name and the shapes involved.

use std::cell::Cell;

use sinew_tensor::Tensor;

use crate::Var;

thread_local! {
    static ENABLED: Cell<bool> = const { Cell::new(false) };
    /// Set while backward rules run: their own ops are checked as the rule's result.
    static IN_BACKWARD: Cell<bool> = const { Cell::new(false) };
}

/// Marks this thread as running backward rules until dropped.
pub(crate) struct BackwardScope(bool);

impl BackwardScope {
    pub(crate) fn enter() -> Self {
        BackwardScope(IN_BACKWARD.with(|b| b.replace(true)))
    }
}

impl Drop for BackwardScope {
    fn drop(&mut self) {
        IN_BACKWARD.with(|b| b.set(self.0));
    }
}

/// Turns anomaly detection on or off for this thread (where forward and backward run).
/// It costs one pass over every op's output, so leave it off outside debugging.
///
/// ```
/// use std::panic::{AssertUnwindSafe, catch_unwind};
/// use sinew_autograd::{Var, set_anomaly_detection};
/// use sinew_tensor::Tensor;
/// let x = Var::leaf(Tensor::from_vec(vec![-1.0f64], &[1])?);
/// set_anomaly_detection(true);   // torch.autograd.set_detect_anomaly(True)
/// let err = catch_unwind(AssertUnwindSafe(|| x.log())).unwrap_err();
/// assert!(err.downcast_ref::<String>().unwrap().contains("`log`"));   // names the op
/// set_anomaly_detection(false);
/// assert!(x.log().item().is_nan());   // off: the NaN passes silently
/// # Ok::<(), sinew_tensor::TensorError>(())
/// ```
pub fn set_anomaly_detection(on: bool) {
    ENABLED.with(|e| e.set(on));
}

/// Whether anomaly detection is on for this thread.
pub fn is_enabled() -> bool {
    ENABLED.with(|e| e.get())
}

/// Runs `f` with anomaly detection on, restoring the previous setting afterwards.
///
/// ```should_panic
/// use sinew_autograd::{Var, detect_anomaly};
/// use sinew_tensor::Tensor;
/// let x = Var::leaf(Tensor::from_vec(vec![-1.0f64], &[1]).unwrap());
/// detect_anomaly(|| x.log()); // panics: "anomaly: forward of `log` produced NaN or infinity ..."
/// ```
pub fn detect_anomaly<R>(f: impl FnOnce() -> R) -> R {
    struct Restore(bool);
    impl Drop for Restore {
        fn drop(&mut self) {
            set_anomaly_detection(self.0);
        }
    }
    let _restore = Restore(is_enabled());
    set_anomaly_detection(true);
    f()
}

fn shapes(inputs: &[&Var]) -> String {
    inputs.iter().map(|v| format!("{:?}", v.dims())).collect::<Vec<_>>().join(", ")
}

pub(crate) fn check_forward(op: &str, value: &Tensor, inputs: &[&Var]) {
    if !IN_BACKWARD.with(|b| b.get()) && value.has_non_finite() {
        panic!(
            "anomaly: forward of `{op}` produced NaN or infinity (inputs of shape {}, output of shape {:?})",
            shapes(inputs),
            value.dims()
        );
    }
}

pub(crate) fn check_backward(op: &str, input_index: usize, grad: &Tensor, inputs: &[Var]) {
    if grad.has_non_finite() {
        let refs: Vec<&Var> = inputs.iter().collect();
        panic!(
            "anomaly: backward of `{op}` produced NaN or infinity in the gradient of input {input_index} \
             (inputs of shape {}, gradient of shape {:?})",
            shapes(&refs),
            grad.dims()
        );
    }
}

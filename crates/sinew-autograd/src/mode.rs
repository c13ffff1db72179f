//! Grad mode: whether ops record the graph on this thread (`torch.no_grad`).

use std::cell::Cell;

thread_local! {
    static GRAD_ENABLED: Cell<bool> = const { Cell::new(true) };
}

/// Whether ops on this thread record a graph.
///
/// ```
/// use sinew_autograd::{is_grad_enabled, no_grad};
/// assert!(is_grad_enabled());   // torch.is_grad_enabled()
/// assert!(!no_grad(is_grad_enabled));
/// ```
pub fn is_grad_enabled() -> bool {
    GRAD_ENABLED.with(|g| g.get())
}

/// Restores the previous grad mode when dropped (also on panic).
pub struct GradModeGuard {
    previous: bool,
}

impl Drop for GradModeGuard {
    fn drop(&mut self) {
        GRAD_ENABLED.with(|g| g.set(self.previous));
    }
}

/// Sets grad mode until the returned guard is dropped.
///
/// ```
/// use sinew_autograd::{Var, is_grad_enabled, set_grad_enabled};
/// use sinew_tensor::Tensor;
/// let x = Var::leaf(Tensor::ones(&[2]));
/// {
///     let _guard = set_grad_enabled(false);   // with torch.set_grad_enabled(False):
///     assert!(!x.exp().requires_grad());
/// }
/// assert!(is_grad_enabled());   // restored when the guard dropped
/// assert!(x.exp().requires_grad());
/// ```
pub fn set_grad_enabled(enabled: bool) -> GradModeGuard {
    let previous = GRAD_ENABLED.with(|g| g.replace(enabled));
    GradModeGuard { previous }
}

/// Runs `f` without recording any graph (inference, optimizer updates, metrics).
///
/// ```
/// use sinew_autograd::{Var, no_grad};
/// use sinew_tensor::Tensor;
/// let x = Var::leaf(Tensor::ones(&[2]));
/// let y = no_grad(|| x.exp());
/// assert!(!y.requires_grad());
/// ```
pub fn no_grad<R>(f: impl FnOnce() -> R) -> R {
    let _guard = set_grad_enabled(false);
    f()
}

/// Runs `f` with recording on, even inside [`no_grad`].
///
/// ```
/// use sinew_autograd::{Var, enable_grad, no_grad};
/// use sinew_tensor::Tensor;
/// let x = Var::leaf(Tensor::ones(&[2]));
/// let y = no_grad(|| enable_grad(|| x.exp()));   // torch.enable_grad() inside no_grad
/// assert!(y.requires_grad());
/// assert_eq!(y.sum_all().backward().get(&x).unwrap().to_vec::<f32>(), vec![std::f32::consts::E; 2]);
/// ```
pub fn enable_grad<R>(f: impl FnOnce() -> R) -> R {
    let _guard = set_grad_enabled(true);
    f()
}

//! Forward hooks: what each named submodule of a model output during one forward pass.
//!
//! PyTorch calls a module's forward hooks from `Module.__call__`. sinew's layers are called
//! directly (`self.conv1.forward(&x)`), so every layer of this crate reports its output
//! itself, through [`observed`], and so does [`Sequential`](crate::Sequential) for each of
//! its layers (so a layer written elsewhere shows up too when it sits in one). Reporting
//! costs one thread-local flag test while nothing records.
//!
//! [`record_outputs`] runs a closure (usually the model's forward) and returns the output of
//! every submodule of the model that reported, by its name in the state dict. A layer is
//! recognised by its address and type (the model must not move while the closure runs,
//! which its borrow guarantees). Layers without data (`Relu`) have no address of their
//! own: several of one type are told apart by the order of their calls, matched to the
//! order the model lists them.
//!
//! A module written outside this crate shows its output by ending its forward with
//! `sinew_nn::hooks::observed(self, y)`; without that its row in a summary has no output
//! shape, unless it sits in a `Sequential`.
//!
//! ```
//! use sinew_autograd::Var;
//! use sinew_nn::{Forward, Linear, Relu, Sequential, hooks};
//! use sinew_tensor::{Generator, Tensor};
//!
//! let mut g = Generator::new(0);
//! let net = Sequential::new().add(Linear::new(4, 8, &mut g)).add(Relu).add(Linear::new(8, 3, &mut g));
//! let x = Var::constant(Tensor::ones(&[2, 4]));
//! let (y, outputs) = hooks::record_outputs(&net, || net.forward(&x));
//! let names: Vec<&str> = outputs.iter().map(|o| o.name.as_str()).collect();
//! assert_eq!(names, ["0", "1", "2", ""]); // "" is the model itself
//! assert_eq!(outputs[1].output.dims(), [2, 8]);
//! assert_eq!(outputs[3].output.value().to_vec::<f32>(), y.value().to_vec::<f32>());
//! ```

use std::cell::{Cell, RefCell};
use std::collections::HashMap;

use sinew_autograd::Var;

use crate::module::{Module, for_each_submodule};

thread_local! {
    /// Whether any recording is active on this thread (the fast path's one test).
    static ACTIVE: Cell<bool> = const { Cell::new(false) };
    /// One list of calls per active [`record_outputs`], innermost last.
    static RECORDINGS: RefCell<Vec<Vec<Call>>> = const { RefCell::new(Vec::new()) };
}

/// One reported forward call: which module (address and type) and what it returned.
struct Call {
    key: ModuleKey,
    output: Var,
}

/// How a module is recognised: the address of its data and its type name.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
struct ModuleKey {
    addr: usize,
    type_name: &'static str,
}

impl ModuleKey {
    fn of(m: &dyn Module) -> ModuleKey {
        ModuleKey { addr: m as *const dyn Module as *const () as usize, type_name: m.type_name() }
    }
}

/// Reports that `module` returned `output`, to every recording active on this thread,
/// and returns `output`: a layer's forward ends with `hooks::observed(self, y)`.
#[inline]
pub fn observed(module: &dyn Module, output: Var) -> Var {
    if ACTIVE.with(Cell::get) {
        report(module, &output);
    }
    output
}

#[cold]
fn report(module: &dyn Module, output: &Var) {
    let key = ModuleKey::of(module);
    RECORDINGS.with(|r| {
        for calls in r.borrow_mut().iter_mut() {
            // a layer inside a Sequential reports itself, then the Sequential reports it
            if calls.last().is_some_and(|c| c.key == key && c.output.id() == output.id()) {
                continue;
            }
            calls.push(Call { key, output: output.clone() });
        }
    });
}

/// What one named submodule returned, as [`record_outputs`] found it.
#[derive(Clone, Debug)]
pub struct LayerOutput {
    /// The module's name in the state dict (`features.3`; `""` for the model itself).
    pub name: String,
    /// Its output: a node of the graph when the forward recorded one, so gradients can be
    /// taken with respect to it (Grad-CAM).
    pub output: Var,
}

/// Runs `f` (typically `model.forward(&x)`) and returns its result with the output of each
/// submodule of `model` (at any depth, and `model` itself under `""`) that reported during
/// the call, in call order. A module called twice appears twice.
///
/// Recordings nest: an inner one sees the calls made while it runs, so does the outer.
pub fn record_outputs<R>(model: &dyn Module, f: impl FnOnce() -> R) -> (R, Vec<LayerOutput>) {
    /// Ends the recording however `f` ends (a panic included).
    struct Guard;
    impl Drop for Guard {
        fn drop(&mut self) {
            RECORDINGS.with(|r| {
                let mut r = r.borrow_mut();
                r.pop();
                ACTIVE.with(|a| a.set(!r.is_empty()));
            });
        }
    }
    let names = module_names(model);
    RECORDINGS.with(|r| r.borrow_mut().push(Vec::new()));
    ACTIVE.with(|a| a.set(true));
    let guard = Guard;
    let result = f();
    let calls = RECORDINGS.with(|r| std::mem::take(r.borrow_mut().last_mut().expect("this recording")));
    drop(guard);
    (result, name_calls(&names, calls))
}

/// Every module of the tree by key: its names in visit order (several for modules of one
/// data-less type that share an address).
fn module_names(model: &dyn Module) -> HashMap<ModuleKey, Vec<String>> {
    let mut out: HashMap<ModuleKey, Vec<String>> = HashMap::new();
    out.entry(ModuleKey::of(model)).or_default().push(String::new());
    for_each_submodule(model, &mut |name, _, m| {
        out.entry(ModuleKey::of(m)).or_default().push(name.to_string())
    });
    out
}

/// Names each call: the next unused name of its key (so that data-less layers sharing an
/// address take their names in order), or, once all are used, its first name again (a
/// module called twice). Calls of modules outside the tree are dropped.
fn name_calls(names: &HashMap<ModuleKey, Vec<String>>, calls: Vec<Call>) -> Vec<LayerOutput> {
    let mut used: HashMap<ModuleKey, usize> = HashMap::new();
    let mut out = Vec::with_capacity(calls.len());
    for call in calls {
        let Some(candidates) = names.get(&call.key) else { continue };
        let n = used.entry(call.key).or_insert(0);
        let name = candidates.get(*n).unwrap_or(&candidates[0]).clone();
        *n += 1;
        out.push(LayerOutput { name, output: call.output });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Conv2d, Flatten, Forward, Linear, MaxPool2d, Relu, Sequential};
    use sinew_tensor::{Conv2dOptions, Generator, Tensor};

    #[derive(crate::Module)]
    struct Net {
        conv: Conv2d,
        act1: Relu,
        pool: MaxPool2d,
        head: Sequential,
        act2: Relu,
    }

    impl Forward for Net {
        fn forward(&self, x: &Var) -> Var {
            let h = self.pool.forward(&self.act1.forward(&self.conv.forward(x)));
            self.act2.forward(&self.head.forward(&h))
        }
    }

    fn net() -> Net {
        let mut g = Generator::new(1);
        Net {
            conv: Conv2d::new(1, 2, 3, Conv2dOptions::default(), &mut g),
            act1: Relu,
            pool: MaxPool2d::new(2),
            head: Sequential::new().add(Flatten::new()).add(Relu).add(Linear::new(2 * 3 * 3, 4, &mut g)),
            act2: Relu,
        }
    }

    #[test]
    fn every_submodule_is_named_in_call_order_and_nothing_is_recorded_outside() {
        let net = net();
        let x = Var::constant(Tensor::ones(&[1, 1, 8, 8]));
        let (_, outs) = record_outputs(&net, || net.forward(&x));
        let got: Vec<(&str, Vec<usize>)> =
            outs.iter().map(|o| (o.name.as_str(), o.output.dims().to_vec())).collect();
        assert_eq!(
            got,
            [
                ("conv", vec![1, 2, 6, 6]),
                ("act1", vec![1, 2, 6, 6]),
                ("pool", vec![1, 2, 3, 3]),
                ("head.0", vec![1, 18]),
                ("head.1", vec![1, 18]),
                ("head.2", vec![1, 4]),
                ("head", vec![1, 4]),
                ("act2", vec![1, 4]),
            ]
        );
        // no recording: nothing kept
        net.forward(&x);
        assert!(!ACTIVE.with(Cell::get));
        RECORDINGS.with(|r| assert!(r.borrow().is_empty()));
    }

    #[test]
    fn recordings_nest_and_a_panic_inside_leaves_none_active() {
        let net = net();
        let x = Var::constant(Tensor::ones(&[1, 1, 8, 8]));
        let ((_, inner), outer) = record_outputs(&net, || record_outputs(&net.head, || net.forward(&x)));
        assert_eq!(inner.iter().map(|o| o.name.as_str()).collect::<Vec<_>>(), ["0", "1", "2", ""]);
        assert_eq!(outer.len(), 8);
        let bad = Var::constant(Tensor::ones(&[1, 3, 8, 8]));
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            record_outputs(&net, || net.forward(&bad))
        }));
        assert!(r.is_err());
        assert!(!ACTIVE.with(Cell::get));
        RECORDINGS.with(|r| assert!(r.borrow().is_empty()));
    }
}

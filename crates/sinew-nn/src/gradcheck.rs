//! Gradient checks of a module's parameters: [`gradcheck_params`] perturbs each parameter
//! in place and compares central differences with one backward pass;
//! [`gradcheck_module`] also checks the input gradient (through
//! [`sinew_autograd::gradcheck`]).

use std::fmt;

use sinew_autograd::{GradcheckOptions, Var, gradcheck, no_grad};
use sinew_tensor::{DType, Generator, Tensor};

use crate::module::{Forward, Module};

/// A parameter (or input) gradient that disagrees with its finite-difference estimate.
#[derive(Clone, Debug, PartialEq)]
pub struct ParamGradcheckError {
    /// The parameter's qualified name (`0.weight`), or `input`.
    pub name: String,
    /// The element, as a flat index into that tensor.
    pub index: usize,
    /// The gradient from the backward pass (`NaN` if the parameter got none).
    pub analytic: f64,
    /// The central-difference estimate.
    pub numeric: f64,
}

impl fmt::Display for ParamGradcheckError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "gradcheck failed: {} element {}: analytic {} vs numeric {} (difference {:e})",
            self.name,
            self.index,
            self.analytic,
            self.numeric,
            (self.analytic - self.numeric).abs()
        )
    }
}

impl std::error::Error for ParamGradcheckError {}

/// Checks the gradient of every parameter of `module` (all `f64`: `module.cast(DType::F64)`
/// first) of the output of `f` (any shape, projected onto a seeded random direction `v`):
/// one backward pass of `⟨f(), v⟩` against central differences taken by perturbing each
/// parameter element in place (and restoring it). `f` runs the module, e.g.
/// `|| model.forward(&x)`. Parameters `f` does not use must get no gradient (zero
/// numerically).
///
/// # Errors
/// The worst disagreement, naming the parameter, the element and both values.
///
/// # Panics
/// If a parameter is not `f64`.
///
/// ```
/// use sinew_nn::{Forward, Linear, Module, Tanh, Sequential, gradcheck_params};
/// use sinew_autograd::{GradcheckOptions, Var};
/// use sinew_tensor::{DType, Generator, Tensor};
/// let mut g = Generator::new(0);
/// let net = Sequential::new().add(Linear::new(3, 4, &mut g)).add(Tanh).add(Linear::new(4, 2, &mut g));
/// net.cast(DType::F64);
/// let x = Var::constant(Tensor::randn_with(&[5, 3], DType::F64, &mut g));
/// gradcheck_params(&net, || net.forward(&x), GradcheckOptions::default()).unwrap();
/// ```
#[track_caller]
pub fn gradcheck_params(
    module: &dyn Module,
    f: impl Fn() -> Var,
    opts: GradcheckOptions,
) -> Result<(), ParamGradcheckError> {
    let params = module.named_parameters();
    for (name, p) in &params {
        let dtype = p.value().dtype();
        assert_eq!(dtype, DType::F64, "gradcheck_params: {name} is {dtype}; finite differences need float64");
    }
    let y = f();
    let v = Tensor::randn_with(y.dims(), DType::F64, &mut Generator::new(opts.seed));
    let grads = (&y * &Var::constant(v.clone())).sum_all().backward();
    drop(y);
    let project = || no_grad(|| f().value().mul(&v).sum_all().item());
    let mut worst: Option<(f64, ParamGradcheckError)> = None;
    for (name, p) in params {
        let base = p.value();
        let data = base.to_vec::<f64>();
        let analytic = grads.get_id(p.id()).map(|g| g.to_vec::<f64>());
        for (k, &value) in data.iter().enumerate() {
            let probe = |delta: f64| {
                let mut d = data.clone();
                d[k] = value + delta;
                p.set_value(Tensor::from_vec(d, base.dims()).expect("same shape"));
                project()
            };
            let numeric = (probe(opts.eps) - probe(-opts.eps)) / (2.0 * opts.eps);
            p.set_value(base.clone());
            // no gradient at all is right only where the output does not depend on it
            let a = analytic.as_ref().map_or(if numeric == 0.0 { 0.0 } else { f64::NAN }, |g| g[k]);
            let excess = (a - numeric).abs() - (opts.atol + opts.rtol * numeric.abs());
            if (excess > 0.0 || excess.is_nan())
                && worst.as_ref().is_none_or(|(w, _)| excess > *w || excess.is_nan())
            {
                let err = ParamGradcheckError { name: name.clone(), index: k, analytic: a, numeric };
                worst = Some((if excess.is_nan() { f64::INFINITY } else { excess }, err));
            }
        }
    }
    match worst {
        Some((_, e)) => Err(e),
        None => Ok(()),
    }
}

/// Checks a layer's gradients at input `x` (`f64`): with respect to the input
/// ([`sinew_autograd::gradcheck`]) and every parameter ([`gradcheck_params`]). Cast the
/// module to `f64` first.
///
/// # Errors
/// The worst disagreement; an input error is named `input`.
///
/// # Panics
/// If `x` or a parameter is not `f64`.
///
/// ```
/// use sinew_nn::{Conv2d, Module, gradcheck_module};
/// use sinew_autograd::GradcheckOptions;
/// use sinew_tensor::{Conv2dOptions, DType, Generator, Tensor};
/// let mut g = Generator::new(0);
/// let conv = Conv2d::new(2, 3, 3, Conv2dOptions::default().padding(1), &mut g);
/// conv.cast(DType::F64);
/// let x = Tensor::randn_with(&[1, 2, 4, 4], DType::F64, &mut g);
/// gradcheck_module(&conv, &x, GradcheckOptions::default()).unwrap();
/// ```
#[track_caller]
pub fn gradcheck_module(
    module: &dyn Forward,
    x: &Tensor,
    opts: GradcheckOptions,
) -> Result<(), ParamGradcheckError> {
    gradcheck(|v| module.forward(&v[0]), std::slice::from_ref(x), opts).map_err(|e| {
        let flat = e.index.iter().zip(x.dims()).fold(0, |acc, (&i, &d)| acc * d + i);
        ParamGradcheckError {
            name: "input".to_string(),
            index: flat,
            analytic: e.analytic,
            numeric: e.numeric,
        }
    })?;
    let x = Var::constant(x.clone());
    gradcheck_params(module, || module.forward(&x), opts)
}

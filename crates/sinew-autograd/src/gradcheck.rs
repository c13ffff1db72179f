//! Numerical gradient checking (`torch.autograd.gradcheck` / `gradgradcheck`): analytic
//! gradients from a backward pass against central finite differences, in `f64`.

use std::fmt;

use sinew_tensor::{DType, Generator, Tensor};

use crate::engine::grad;
use crate::mode::{enable_grad, no_grad};
use crate::var::Var;

/// Step and tolerances. The defaults are PyTorch's: `eps = 1e-6`, `atol = 1e-5`,
/// `rtol = 1e-3`; an entry passes when `|analytic - numeric| <= atol + rtol·|numeric|`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct GradcheckOptions {
    /// Finite-difference step.
    pub eps: f64,
    /// Absolute tolerance.
    pub atol: f64,
    /// Relative tolerance.
    pub rtol: f64,
    /// Seed of the random projection of the output.
    pub seed: u64,
}

impl Default for GradcheckOptions {
    fn default() -> Self {
        GradcheckOptions { eps: 1e-6, atol: 1e-5, rtol: 1e-3, seed: 0 }
    }
}

/// A gradient that disagrees with its finite-difference estimate.
#[derive(Clone, Debug, PartialEq)]
pub struct GradcheckError {
    /// Which input (position in the slice given).
    pub input: usize,
    /// The element, as a multi-index into that input.
    pub index: Vec<usize>,
    /// The gradient from the backward pass.
    pub analytic: f64,
    /// The central-difference estimate.
    pub numeric: f64,
    /// `gradcheck` or `gradgradcheck`.
    pub check: &'static str,
}

impl fmt::Display for GradcheckError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} failed: input {} at index {:?}: analytic {} vs numeric {} (difference {:e})",
            self.check,
            self.input,
            self.index,
            self.analytic,
            self.numeric,
            (self.analytic - self.numeric).abs()
        )
    }
}

impl std::error::Error for GradcheckError {}

fn unravel(mut flat: usize, shape: &[usize]) -> Vec<usize> {
    let mut idx = vec![0; shape.len()];
    for d in (0..shape.len()).rev() {
        idx[d] = flat % shape[d];
        flat /= shape[d];
    }
    idx
}

/// Checks the gradients of `f` at `inputs` (all `f64`) against central differences.
///
/// The output of `f` may have any shape: it is projected onto a fixed random direction
/// `v` (seeded), and the gradient of `⟨f(x), v⟩` is checked for every element of every
/// input. Inputs are passed to `f` as leaves, in order.
///
/// # Errors
/// The worst disagreement, naming the input, the index, and both values.
///
/// # Panics
/// If an input is not `f64`.
///
/// ```
/// use sinew_autograd::{GradcheckOptions, gradcheck};
/// use sinew_tensor::{DType, Generator, Tensor};
/// let x = Tensor::randn_with(&[3, 4], DType::F64, &mut Generator::new(0));
/// gradcheck(|v| v[0].tanh().softmax(-1), &[x], GradcheckOptions::default()).unwrap();
/// ```
#[track_caller]
pub fn gradcheck(
    f: impl Fn(&[Var]) -> Var,
    inputs: &[Tensor],
    opts: GradcheckOptions,
) -> Result<(), GradcheckError> {
    check_impl("gradcheck", &f, inputs, opts)
}

/// Checks second derivatives: the gradient of `⟨f(x), v⟩`, computed with
/// `create_graph`, is itself checked with [`gradcheck`] (as `torch.autograd.gradgradcheck`).
///
/// # Errors
/// The worst disagreement of a second derivative.
///
/// ```
/// use sinew_autograd::{GradcheckOptions, gradgradcheck};
/// use sinew_tensor::{DType, Generator, Tensor};
/// let x = Tensor::randn_with(&[5], DType::F64, &mut Generator::new(1));
/// gradgradcheck(|v| v[0].sin().square(), &[x], GradcheckOptions::default()).unwrap();
/// ```
#[track_caller]
pub fn gradgradcheck(
    f: impl Fn(&[Var]) -> Var,
    inputs: &[Tensor],
    opts: GradcheckOptions,
) -> Result<(), GradcheckError> {
    let out_shape = no_grad(|| {
        let vars: Vec<Var> = inputs.iter().map(|t| Var::constant(t.clone())).collect();
        f(&vars).dims().to_vec()
    });
    let v =
        Var::constant(Tensor::randn_with(&out_shape, DType::F64, &mut Generator::new(opts.seed ^ 0x9e37)));
    let grad_fn = |xs: &[Var]| -> Var {
        let s = (&f(xs) * &v).sum_all();
        let refs: Vec<&Var> = xs.iter().collect();
        let gs = grad(&s, &refs, None, true);
        let flat: Vec<Var> = gs
            .into_iter()
            .zip(xs)
            .map(|(g, x)| g.unwrap_or_else(|| Var::constant(x.value().zeros_like())).reshape(&[x.numel()]))
            .collect();
        let refs: Vec<&Var> = flat.iter().collect();
        Var::cat(&refs, 0)
    };
    check_impl("gradgradcheck", &grad_fn, inputs, opts)
}

fn check_impl(
    check: &'static str,
    f: &dyn Fn(&[Var]) -> Var,
    inputs: &[Tensor],
    opts: GradcheckOptions,
) -> Result<(), GradcheckError> {
    for (i, t) in inputs.iter().enumerate() {
        assert_eq!(
            t.dtype(),
            DType::F64,
            "{check}: input {i} is {}; finite differences need float64",
            t.dtype()
        );
    }
    // analytic: one backward pass of <f(x), v>
    let leaves: Vec<Var> = inputs.iter().map(|t| Var::leaf(t.clone())).collect();
    let out = f(&leaves);
    let v = Tensor::randn_with(out.dims(), DType::F64, &mut Generator::new(opts.seed));
    let s = (&out * &Var::constant(v.clone())).sum_all();
    let grads = s.backward();
    // A second-order check differentiates inside `f`, so its inputs must stay leaves.
    let second_order = check == "gradgradcheck";
    let project = |xs: &[Tensor]| -> f64 {
        let run = || {
            let vars: Vec<Var> = xs
                .iter()
                .map(|t| if second_order { Var::leaf(t.clone()) } else { Var::constant(t.clone()) })
                .collect();
            f(&vars).value().mul(&v).sum_all().item()
        };
        if second_order { enable_grad(run) } else { no_grad(run) }
    };
    let mut worst: Option<(f64, GradcheckError)> = None;
    for (i, t) in inputs.iter().enumerate() {
        let analytic =
            grads.get(&leaves[i]).map(|g| g.to_vec::<f64>()).unwrap_or_else(|| vec![0.0; t.numel()]);
        let base = t.to_vec::<f64>();
        for k in 0..t.numel() {
            let probe = |delta: f64| {
                let mut data = base.clone();
                data[k] += delta;
                let mut xs = inputs.to_vec();
                xs[i] = Tensor::from_vec(data, t.dims()).expect("same shape");
                project(&xs)
            };
            let numeric = (probe(opts.eps) - probe(-opts.eps)) / (2.0 * opts.eps);
            let a = analytic[k];
            let excess = (a - numeric).abs() - (opts.atol + opts.rtol * numeric.abs());
            if (excess > 0.0 || excess.is_nan())
                && worst.as_ref().is_none_or(|(w, _)| excess > *w || excess.is_nan())
            {
                let err =
                    GradcheckError { input: i, index: unravel(k, t.dims()), analytic: a, numeric, check };
                worst = Some((if excess.is_nan() { f64::INFINITY } else { excess }, err));
            }
        }
    }
    match worst {
        Some((_, e)) => Err(e),
        None => Ok(()),
    }
}

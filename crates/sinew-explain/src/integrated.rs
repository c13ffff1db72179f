//! [`IntegratedGradients`] (Sundararajan et al., 2017) with the quadrature rules Captum
//! offers, batched over the steps.

use sinew_nn::Forward;
use sinew_tensor::Tensor;

use crate::gradients::{batch, input_gradients, scores};
use crate::{Attribution, ExplainError, Target};

/// How the path integral from the baseline to the input is approximated: where along the
/// path (`alpha` in `[0, 1]`) the gradient is taken and with what weight.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Rule {
    /// Gauss–Legendre nodes and weights (Captum's default `"gausslegendre"`): exact for
    /// polynomials of degree `2·steps − 1` along the path.
    #[default]
    GaussLegendre,
    /// Left Riemann sum: `alpha = 0, 1/n, ..., 1 − 1/n`, weights `1/n`.
    RiemannLeft,
    /// Right Riemann sum: `alpha = 1/n, ..., 1`, weights `1/n`.
    RiemannRight,
    /// Midpoint rule: `alpha = 1/2n, 3/2n, ...`, weights `1/n`.
    RiemannMiddle,
    /// Trapezoid rule: `alpha = 0, 1/(n−1), ..., 1`, weights `1/(n−1)` but half at both
    /// ends, so they sum to 1. (Captum's `"riemann_trapezoid"` keeps weights `1/n`, halved
    /// at the ends, which sum to `(n−1)/n`; sinew's rule is the textbook one.)
    RiemannTrapezoid,
}

impl Rule {
    /// `(alphas, weights)` for `n` steps.
    ///
    /// ```
    /// use sinew_explain::Rule;
    /// let (alphas, weights) = Rule::RiemannTrapezoid.nodes(5);
    /// assert_eq!(alphas, [0.0, 0.25, 0.5, 0.75, 1.0]);
    /// assert_eq!(weights, [0.125, 0.25, 0.25, 0.25, 0.125]);
    /// ```
    pub fn nodes(self, n: usize) -> (Vec<f64>, Vec<f64>) {
        let nf = n as f64;
        match self {
            Rule::GaussLegendre => {
                let (x, w) = gauss_legendre(n);
                (x.iter().map(|x| 0.5 * (1.0 + x)).collect(), w.iter().map(|w| 0.5 * w).collect())
            }
            Rule::RiemannLeft => (linspace(0.0, 1.0 - 1.0 / nf, n), vec![1.0 / nf; n]),
            Rule::RiemannRight => (linspace(1.0 / nf, 1.0, n), vec![1.0 / nf; n]),
            Rule::RiemannMiddle => (linspace(1.0 / (2.0 * nf), 1.0 - 1.0 / (2.0 * nf), n), vec![1.0 / nf; n]),
            Rule::RiemannTrapezoid => {
                let h = 1.0 / (nf - 1.0);
                let mut w = vec![h; n];
                w[0] = h / 2.0;
                w[n - 1] = h / 2.0;
                (linspace(0.0, 1.0, n), w)
            }
        }
    }

    fn min_steps(self) -> usize {
        if self == Rule::GaussLegendre { 1 } else { 2 }
    }
}

/// `n` points from `start` to `end` as `torch.linspace` computes them (the first half from
/// `start`, the second from `end`, so both ends are exact).
fn linspace(start: f64, end: f64, n: usize) -> Vec<f64> {
    if n == 1 {
        return vec![start];
    }
    let step = (end - start) / (n - 1) as f64;
    let half = n / 2;
    (0..n).map(|i| if i < half { start + step * i as f64 } else { end - step * (n - 1 - i) as f64 }).collect()
}

/// Gauss–Legendre nodes (ascending, in `[-1, 1]`) and weights (summing to 2) for `n`
/// points, as `numpy.polynomial.legendre.leggauss(n)`: Newton's method on the Legendre
/// polynomial from Chebyshev-like starting points, then symmetrised.
///
/// ```
/// let (x, w) = sinew_explain::gauss_legendre(2);
/// let r = 1.0 / 3f64.sqrt();
/// assert!((x[0] + r).abs() < 1e-15 && (x[1] - r).abs() < 1e-15);
/// assert!((w[0] - 1.0).abs() < 1e-15 && (w[1] - 1.0).abs() < 1e-15);
/// ```
pub fn gauss_legendre(n: usize) -> (Vec<f64>, Vec<f64>) {
    // P_n(x) and P_n'(x) by the three-term recurrence
    let legendre = |x: f64| {
        let (mut p0, mut p1) = (1.0f64, x);
        for k in 2..=n {
            let k = k as f64;
            let p2 = ((2.0 * k - 1.0) * x * p1 - (k - 1.0) * p0) / k;
            p0 = p1;
            p1 = p2;
        }
        let p = if n == 0 { 1.0 } else { p1 };
        let dp = n as f64 * (x * p - p0) / (x * x - 1.0);
        (p, dp)
    };
    let mut x = vec![0.0; n];
    let mut w = vec![0.0; n];
    for i in 0..n {
        // the i-th root from the top, refined until it stops moving
        let mut r = (std::f64::consts::PI * (i as f64 + 0.75) / (n as f64 + 0.5)).cos();
        for _ in 0..100 {
            let (p, dp) = legendre(r);
            let step = p / dp;
            r -= step;
            if step.abs() <= 1e-17 {
                break;
            }
        }
        let (_, dp) = legendre(r);
        x[n - 1 - i] = r;
        w[n - 1 - i] = 2.0 / ((1.0 - r * r) * dp * dp);
    }
    // exact symmetry, weights summing to 2 (as numpy)
    let (xs, ws) = (x.clone(), w.clone());
    for i in 0..n {
        x[i] = (xs[i] - xs[n - 1 - i]) / 2.0;
        w[i] = (ws[i] + ws[n - 1 - i]) / 2.0;
    }
    let total: f64 = w.iter().sum();
    w.iter_mut().for_each(|w| *w *= 2.0 / total);
    (x, w)
}

/// Integrated gradients' result: the attributions and, per item, how far their sum is
/// from `f(input) − f(baseline)` (Captum's convergence delta, signed: attribution sum
/// minus the output difference). It shrinks as the steps grow.
#[derive(Clone, Debug)]
pub struct IgAttribution {
    /// Shape of the input.
    pub attributions: Tensor,
    /// Shape `(N)`.
    pub delta: Tensor,
}

/// Integrated gradients (Captum's `IntegratedGradients`): `(x − baseline) · ∫₀¹ ∂f/∂x at
/// baseline + α(x − baseline) dα`, the integral by a [`Rule`] over `steps` points. All
/// steps of all items go through the model as one batch of `steps · N` rows (or chunks of
/// whole steps with [`internal_batch_size`](IntegratedGradients::internal_batch_size)),
/// step-major as Captum orders them.
pub struct IntegratedGradients<'m> {
    model: &'m dyn Forward,
    baseline: Option<Tensor>,
    steps: usize,
    rule: Rule,
    internal_batch_size: Option<usize>,
}

impl<'m> IntegratedGradients<'m> {
    /// Baseline zeros, 50 Gauss–Legendre steps (Captum's defaults), one batch.
    pub fn new(model: &'m dyn Forward) -> Self {
        IntegratedGradients {
            model,
            baseline: None,
            steps: 50,
            rule: Rule::GaussLegendre,
            internal_batch_size: None,
        }
    }

    /// The reference input: any shape that broadcasts to the input's (a scalar, one item
    /// `(1, ...)`, or one per item).
    pub fn baseline(mut self, baseline: Tensor) -> Self {
        self.baseline = Some(baseline);
        self
    }

    /// The number of points on the path (Captum's `n_steps`).
    pub fn steps(mut self, steps: usize) -> Self {
        self.steps = steps;
        self
    }

    /// The quadrature rule (Captum's `method`).
    pub fn rule(mut self, rule: Rule) -> Self {
        self.rule = rule;
        self
    }

    /// At most this many rows per forward pass (whole steps of the batch, at least one);
    /// the sums are the same up to rounding.
    pub fn internal_batch_size(mut self, rows: usize) -> Self {
        self.internal_batch_size = Some(rows);
        self
    }

    /// The attributions and the convergence delta.
    ///
    /// # Errors
    /// A baseline that does not broadcast to the input, fewer steps than the rule needs,
    /// or a target that does not fit the output.
    pub fn attribute_with_delta(
        &self,
        input: &Tensor,
        target: &Target<'_>,
    ) -> Result<IgAttribution, ExplainError> {
        let n = batch(input);
        let options = |msg: String| ExplainError::Options { method: "IntegratedGradients", msg };
        if self.steps < self.rule.min_steps() {
            return Err(options(format!(
                "{:?} needs at least {} steps, got {}",
                self.rule,
                self.rule.min_steps(),
                self.steps
            )));
        }
        let baseline = match &self.baseline {
            None => input.zeros_like(),
            Some(b) => b
                .try_broadcast_to(input.dims())
                .map_err(|_| {
                    options(format!(
                        "baseline of shape {:?} does not broadcast to the input's {:?}",
                        b.dims(),
                        input.dims()
                    ))
                })?
                .to_dtype(input.dtype())
                .contiguous(),
        };
        let (alphas, weights) = self.rule.nodes(self.steps);
        let path = input - &baseline;
        let per_chunk = self.internal_batch_size.map_or(self.steps, |rows| (rows / n.max(1)).max(1));
        // the steps as a leading dimension: (steps, N, ...) against (1, N, ...)
        let along = |values: &[f64]| {
            let mut dims = vec![values.len()];
            dims.resize(input.ndim() + 1, 1);
            Tensor::from_vec(values.to_vec(), &dims).expect("one value per step").to_dtype(input.dtype())
        };
        let (baseline_1, path_1) = (baseline.unsqueeze(0), path.unsqueeze(0));
        let mut total = input.zeros_like();
        for start in (0..self.steps).step_by(per_chunk) {
            let end = (start + per_chunk).min(self.steps);
            let mut rows = input.dims().to_vec();
            rows[0] = (end - start) * n;
            let points = (&baseline_1 + &(along(&alphas[start..end]) * &path_1)).reshape(&rows);
            let grads = input_gradients(self.model, &points, target, n)?;
            let mut steps_first = input.dims().to_vec();
            steps_first.insert(0, end - start);
            total = total + (grads.reshape(&steps_first) * along(&weights[start..end])).sum(&[0], false);
        }
        let attributions = total * &path;
        let fx = scores(self.model, input, target, n)?;
        let fb = scores(self.model, &baseline, target, n)?;
        let rows: Vec<isize> = (1..input.ndim() as isize).collect();
        let sums = if rows.is_empty() { attributions.clone() } else { attributions.sum(&rows, false) };
        let delta = sums - (fx - fb);
        Ok(IgAttribution { attributions, delta })
    }
}

impl Attribution for IntegratedGradients<'_> {
    fn attribute(&self, input: &Tensor, target: &Target<'_>) -> Result<Tensor, ExplainError> {
        Ok(self.attribute_with_delta(input, target)?.attributions)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gauss_legendre_integrates_polynomials_to_degree_2n_minus_1() {
        for n in 1..=40 {
            let (x, w) = gauss_legendre(n);
            assert!(x.windows(2).all(|p| p[0] < p[1]), "n={n}: ascending");
            for degree in 0..2 * n {
                let got: f64 = x.iter().zip(&w).map(|(x, w)| w * x.powi(degree as i32)).sum();
                let exact = if degree % 2 == 1 { 0.0 } else { 2.0 / (degree as f64 + 1.0) };
                assert!((got - exact).abs() < 1e-13, "n={n} degree {degree}: {got} vs {exact}");
            }
        }
    }

    #[test]
    fn every_rule_weighs_to_one_inside_the_unit_interval() {
        for rule in [
            Rule::GaussLegendre,
            Rule::RiemannLeft,
            Rule::RiemannRight,
            Rule::RiemannMiddle,
            Rule::RiemannTrapezoid,
        ] {
            for n in [2usize, 3, 7, 50] {
                let (a, w) = rule.nodes(n);
                assert_eq!((a.len(), w.len()), (n, n));
                assert!((w.iter().sum::<f64>() - 1.0).abs() < 1e-14, "{rule:?} {n}");
                assert!(a.iter().all(|a| (0.0..=1.0).contains(a)), "{rule:?} {n}");
            }
        }
        assert_eq!(linspace(0.0, 1.0, 3), [0.0, 0.5, 1.0]);
    }
}

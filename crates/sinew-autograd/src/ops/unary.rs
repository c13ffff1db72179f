//! Elementwise functions of one variable. Each backward rule is written with `Var` ops,
//! so it can be differentiated again; masks (`x > 0`) are constants.

use std::f64::consts::{FRAC_1_SQRT_2, PI};

use crate::Var;

/// Defines `name(&self) -> Var` as the tensor op of the same name, with backward
/// `|x, y, g| expr` (input, output, upstream gradient).
macro_rules! unary_ops {
    ($($(#[$m:meta])* $name:ident => |$x:ident, $y:ident, $g:ident| $grad:expr;)*) => {
        impl Var {
            $(
                $(#[$m])*
                pub fn $name(&self) -> Var {
                    Var::from_op(stringify!($name), self.value().$name(), &[self], |ctx| {
                        let ($x, $y, $g) = (&ctx.inputs[0], ctx.output, ctx.grad);
                        let _ = ($x, $y);
                        vec![Some($grad)]
                    })
                }
            )*
        }
    };
}

unary_ops! {
    /// `-x`.
    neg => |x, y, g| g.neg();
    /// `e^x`.
    exp => |x, y, g| g * y;
    /// Natural logarithm.
    log => |x, y, g| g / x;
    /// `ln(1 + x)`.
    log1p => |x, y, g| g / &x.add_scalar(1.0);
    /// `e^x - 1`.
    expm1 => |x, y, g| g * &y.add_scalar(1.0);
    /// Square root.
    sqrt => |x, y, g| &(g * 0.5) / y;
    /// `1/sqrt(x)`; derivative `-0.5 x^-1.5`.
    rsqrt => |x, y, g| &(g * -0.5) * &(&y.square() * y);
    /// `1/x`.
    recip => |x, y, g| &(g * -1.0) * &y.square();
    /// `x²`.
    square => |x, y, g| &(g * 2.0) * x;
    /// Sine.
    sin => |x, y, g| g * &x.cos();
    /// Cosine.
    cos => |x, y, g| &(g * -1.0) * &x.sin();
    /// Hyperbolic tangent.
    tanh => |x, y, g| g * &y.square().rsub_scalar(1.0);
    /// Logistic sigmoid.
    sigmoid => |x, y, g| g * &(y * &y.rsub_scalar(1.0));
    /// Error function; derivative `2/√π e^(-x²)`.
    erf => |x, y, g| g * &(&x.square().neg().exp() * (2.0 / PI.sqrt()));
    /// `max(x, 0)`; the gradient is 0 at 0, as in PyTorch.
    relu => |x, y, g| g * &Var::constant(x.value().gt_scalar(0.0));
    /// `|x|`; the gradient at 0 is 0.
    abs => |x, y, g| g * &Var::constant(x.value().sign());
    /// GELU (erf form): derivative `Φ(x) + x·φ(x)`.
    gelu => |x, y, g| {
        let cdf = (x * FRAC_1_SQRT_2).erf().mul_scalar(0.5).add_scalar(0.5);
        let pdf = (&x.square() * -0.5).exp().mul_scalar(1.0 / (2.0 * PI).sqrt());
        g * &(&cdf + &(x * &pdf))
    };
    /// GELU (tanh approximation).
    gelu_tanh => |x, y, g| {
        let k = (2.0 / PI).sqrt();
        let x2 = x.square();
        let t = (&(x + &(&(&x2 * x) * 0.044715)) * k).tanh();
        let dt = &t.square().rsub_scalar(1.0) * &(&x2 * (3.0 * 0.044715 * k)).add_scalar(k);
        g * &(&(&t.add_scalar(1.0) * 0.5) + &(&(x * 0.5) * &dt))
    };
    /// SiLU `x·sigmoid(x)`: derivative `s·(1 + x·(1 - s))`.
    silu => |x, y, g| {
        let s = x.sigmoid();
        g * &(&s * &(x * &s.rsub_scalar(1.0)).add_scalar(1.0))
    };
}

impl Var {
    /// Round down; piecewise constant, so it takes no gradient (a constant).
    pub fn floor(&self) -> Var {
        Var::constant(self.value().floor())
    }

    /// Round up; a constant.
    pub fn ceil(&self) -> Var {
        Var::constant(self.value().ceil())
    }

    /// Round to nearest, ties to even; a constant.
    pub fn round(&self) -> Var {
        Var::constant(self.value().round())
    }

    /// Sign (-1, 0, 1); its gradient is zero.
    pub fn sign(&self) -> Var {
        Var::constant(self.value().sign())
    }

    /// Leaky ReLU with the given negative slope (PyTorch's default is 0.01).
    pub fn leaky_relu(&self, negative_slope: f64) -> Var {
        Var::from_op("leaky_relu", self.value().leaky_relu(negative_slope), &[self], move |ctx| {
            let pos = ctx.inputs[0].value().gt_scalar(0.0);
            let slope = &(&pos * (1.0 - negative_slope)) + negative_slope;
            vec![Some(ctx.grad * &Var::constant(slope))]
        })
    }

    /// ELU: `x` for `x > 0`, else `alpha·(e^x - 1)`.
    pub fn elu(&self, alpha: f64) -> Var {
        Var::from_op("elu", self.value().elu(alpha), &[self], move |ctx| {
            let pos = Var::constant(ctx.inputs[0].value().gt_scalar(0.0));
            // derivative: 1 where x > 0, else alpha·e^x = y + alpha
            let neg_part = &ctx.output.add_scalar(alpha) * &pos.rsub_scalar(1.0);
            vec![Some(ctx.grad * &(&pos + &neg_part))]
        })
    }

    /// Softplus `ln(1 + e^(beta·x))/beta`, linear above `threshold` (PyTorch: 1, 20).
    pub fn softplus(&self, beta: f64, threshold: f64) -> Var {
        Var::from_op("softplus", self.value().softplus(beta, threshold), &[self], move |ctx| {
            let x = &ctx.inputs[0];
            let linear = Var::constant((x.value() * beta).gt_scalar(threshold));
            let s = (x * beta).sigmoid();
            let d = &(&s * &linear.rsub_scalar(1.0)) + &linear;
            vec![Some(ctx.grad * &d)]
        })
    }

    /// Clamps into `[min, max]`; the gradient passes where the input is inside (bounds
    /// included), as in PyTorch.
    pub fn clamp(&self, min: Option<f64>, max: Option<f64>) -> Var {
        Var::from_op("clamp", self.value().clamp(min, max), &[self], move |ctx| {
            let x = ctx.inputs[0].value();
            let mut mask = x.ones_like();
            if let Some(lo) = min {
                mask = mask.mul(&x.ge_scalar(lo));
            }
            if let Some(hi) = max {
                mask = mask.mul(&x.le_scalar(hi));
            }
            vec![Some(ctx.grad * &Var::constant(mask))]
        })
    }

    /// `x^p` for a scalar exponent.
    pub fn powf(&self, p: f64) -> Var {
        Var::from_op("powf", self.value().powf(p), &[self], move |ctx| {
            let x = &ctx.inputs[0];
            let d = if p == 2.0 {
                x * 2.0
            } else if p == 1.0 {
                x.ones_like()
            } else {
                &x.powf(p - 1.0) * p
            };
            vec![Some(ctx.grad * &d)]
        })
    }

    /// A constant of ones with this variable's shape and dtype.
    pub fn ones_like(&self) -> Var {
        Var::constant(self.value().ones_like())
    }

    /// A constant of zeros with this variable's shape and dtype.
    pub fn zeros_like(&self) -> Var {
        Var::constant(self.value().zeros_like())
    }
}

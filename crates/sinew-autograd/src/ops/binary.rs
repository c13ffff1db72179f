//! Elementwise functions of two variables with broadcasting (gradients are summed back
//! to each input's shape), their scalar forms, `where_`, and the operators on `Var`.

use std::ops::{Add, Div, Mul, Neg, Sub};

use sinew_tensor::Tensor;

use super::sum_to;
use crate::Var;

impl Var {
    /// Elementwise sum with broadcasting (also `&a + &b`).
    #[track_caller]
    pub fn add(&self, other: &Var) -> Var {
        Var::from_op("add", self.value().add(other.value()), &[self, other], |ctx| {
            let (a, b) = (&ctx.inputs[0], &ctx.inputs[1]);
            vec![Some(sum_to(ctx.grad, a.dims())), Some(sum_to(ctx.grad, b.dims()))]
        })
    }

    /// Elementwise difference with broadcasting (also `&a - &b`).
    #[track_caller]
    pub fn sub(&self, other: &Var) -> Var {
        Var::from_op("sub", self.value().sub(other.value()), &[self, other], |ctx| {
            let (a, b) = (&ctx.inputs[0], &ctx.inputs[1]);
            vec![Some(sum_to(ctx.grad, a.dims())), Some(sum_to(&ctx.grad.neg(), b.dims()))]
        })
    }

    /// Elementwise product with broadcasting (also `&a * &b`).
    #[track_caller]
    pub fn mul(&self, other: &Var) -> Var {
        Var::from_op("mul", self.value().mul(other.value()), &[self, other], |ctx| {
            let (a, b, g) = (&ctx.inputs[0], &ctx.inputs[1], ctx.grad);
            let ga = a.requires_grad().then(|| sum_to(&g.mul(b), a.dims()));
            let gb = b.requires_grad().then(|| sum_to(&g.mul(a), b.dims()));
            vec![ga, gb]
        })
    }

    /// Elementwise quotient with broadcasting (also `&a / &b`).
    #[track_caller]
    pub fn div(&self, other: &Var) -> Var {
        Var::from_op("div", self.value().div(other.value()), &[self, other], |ctx| {
            let (a, b, g) = (&ctx.inputs[0], &ctx.inputs[1], ctx.grad);
            let ga = a.requires_grad().then(|| sum_to(&g.div(b), a.dims()));
            // d(a/b)/db = -a/b²
            let gb = b.requires_grad().then(|| sum_to(&g.mul(&a.div(&b.square())).neg(), b.dims()));
            vec![ga, gb]
        })
    }

    /// Elementwise power `a^b` with broadcasting. The gradient with respect to `b` is
    /// taken as 0 where `a == 0` and `b >= 0` (PyTorch's convention).
    #[track_caller]
    pub fn pow(&self, other: &Var) -> Var {
        Var::from_op("pow", self.value().pow(other.value()), &[self, other], |ctx| {
            let (a, b, g, y) = (&ctx.inputs[0], &ctx.inputs[1], ctx.grad, ctx.output);
            let ga = a.requires_grad().then(|| sum_to(&g.mul(&b.mul(&a.pow(&b.add_scalar(-1.0)))), a.dims()));
            let gb = b.requires_grad().then(|| {
                // d(a^b)/db = a^b·ln(a); taken as 0 where a == 0 and b >= 0 (PyTorch). Negative
                // bases give NaN, as in PyTorch.
                let zeroed = Var::constant(a.value().eq_scalar(0.0).mul(&b.value().ge_scalar(0.0)));
                let a_safe = &a.mul(&zeroed.rsub_scalar(1.0)) + &zeroed;
                sum_to(&g.mul(&y.mul(&a_safe.log())), b.dims())
            });
            vec![ga, gb]
        })
    }

    /// Elementwise maximum; ties send half the gradient to each input (PyTorch).
    #[track_caller]
    pub fn maximum(&self, other: &Var) -> Var {
        self.extremum(other, true)
    }

    /// Elementwise minimum; ties send half the gradient to each input (PyTorch).
    #[track_caller]
    pub fn minimum(&self, other: &Var) -> Var {
        self.extremum(other, false)
    }

    #[track_caller]
    fn extremum(&self, other: &Var, max: bool) -> Var {
        let (name, value) = if max {
            ("maximum", self.value().maximum(other.value()))
        } else {
            ("minimum", self.value().minimum(other.value()))
        };
        Var::from_op(name, value, &[self, other], move |ctx| {
            let (a, b, g) = (&ctx.inputs[0], &ctx.inputs[1], ctx.grad);
            let wins = if max { a.value().gt(b.value()) } else { a.value().lt(b.value()) };
            let share_a = &wins + &(&a.value().eq(b.value()) * 0.5);
            let share_b = share_a.rsub_scalar(1.0);
            vec![
                Some(sum_to(&g.mul(&Var::constant(share_a)), a.dims())),
                Some(sum_to(&g.mul(&Var::constant(share_b)), b.dims())),
            ]
        })
    }

    /// `x + s`.
    pub fn add_scalar(&self, s: f64) -> Var {
        Var::from_op("add_scalar", self.value().add_scalar(s), &[self], |ctx| vec![Some(ctx.grad.clone())])
    }

    /// `x · s`.
    pub fn mul_scalar(&self, s: f64) -> Var {
        Var::from_op("mul_scalar", self.value().mul_scalar(s), &[self], move |ctx| {
            vec![Some(ctx.grad.mul_scalar(s))]
        })
    }

    /// `x / s`.
    pub fn div_scalar(&self, s: f64) -> Var {
        self.mul_scalar(1.0 / s)
    }

    /// `x - s`.
    pub fn sub_scalar(&self, s: f64) -> Var {
        self.add_scalar(-s)
    }

    /// `s - x`.
    pub fn rsub_scalar(&self, s: f64) -> Var {
        self.neg().add_scalar(s)
    }

    /// Picks `a` where `cond` (a constant mask) is non-zero, `b` elsewhere, broadcasting all three.
    #[track_caller]
    pub fn where_(cond: &Tensor, a: &Var, b: &Var) -> Var {
        let cond = cond.clone();
        let value = cond.where_(a.value(), b.value());
        Var::from_op("where", value, &[a, b], move |ctx| {
            let (a, b, g) = (&ctx.inputs[0], &ctx.inputs[1], ctx.grad);
            let m = cond.ne_scalar(0.0).to_dtype(g.dtype());
            let ga = sum_to(&g.mul(&Var::constant(m.clone())), a.dims());
            let gb = sum_to(&g.mul(&Var::constant(m.rsub_scalar(1.0))), b.dims());
            vec![Some(ga), Some(gb)]
        })
    }

    /// Sets entries to `value` where `mask` is non-zero; they get no gradient.
    #[track_caller]
    pub fn masked_fill(&self, mask: &Tensor, value: f64) -> Var {
        let fill = Var::constant(Tensor::full_dtype(&[], value, self.dtype()));
        Var::where_(mask, &fill, self).broadcast_to(self.dims())
    }
}

macro_rules! impl_var_operator {
    ($trait:ident, $method:ident, $var_fn:ident, $scalar:expr) => {
        impl $trait<&Var> for &Var {
            type Output = Var;
            #[track_caller]
            fn $method(self, rhs: &Var) -> Var {
                Var::$var_fn(self, rhs)
            }
        }
        impl $trait<Var> for Var {
            type Output = Var;
            #[track_caller]
            fn $method(self, rhs: Var) -> Var {
                Var::$var_fn(&self, &rhs)
            }
        }
        impl $trait<&Var> for Var {
            type Output = Var;
            #[track_caller]
            fn $method(self, rhs: &Var) -> Var {
                Var::$var_fn(&self, rhs)
            }
        }
        impl $trait<Var> for &Var {
            type Output = Var;
            #[track_caller]
            fn $method(self, rhs: Var) -> Var {
                Var::$var_fn(self, &rhs)
            }
        }
        impl $trait<f64> for &Var {
            type Output = Var;
            fn $method(self, rhs: f64) -> Var {
                let f: fn(&Var, f64) -> Var = $scalar;
                f(self, rhs)
            }
        }
        impl $trait<f64> for Var {
            type Output = Var;
            fn $method(self, rhs: f64) -> Var {
                let f: fn(&Var, f64) -> Var = $scalar;
                f(&self, rhs)
            }
        }
    };
}
impl_var_operator!(Add, add, add, |v, s| v.add_scalar(s));
impl_var_operator!(Sub, sub, sub, |v, s| v.sub_scalar(s));
impl_var_operator!(Mul, mul, mul, |v, s| v.mul_scalar(s));
impl_var_operator!(Div, div, div, |v, s| v.div_scalar(s));

/// `scalar ∘ var` for the commutative operators and `scalar - var`, `scalar / var`, as on tensors.
macro_rules! impl_scalar_lhs {
    ($trait:ident, $method:ident, |$s:ident, $v:ident| $body:expr) => {
        impl $trait<&Var> for f64 {
            type Output = Var;
            fn $method(self, rhs: &Var) -> Var {
                let ($s, $v) = (self, rhs);
                $body
            }
        }
        impl $trait<Var> for f64 {
            type Output = Var;
            fn $method(self, rhs: Var) -> Var {
                let ($s, $v) = (self, &rhs);
                $body
            }
        }
    };
}
impl_scalar_lhs!(Add, add, |s, v| v.add_scalar(s));
impl_scalar_lhs!(Sub, sub, |s, v| v.rsub_scalar(s));
impl_scalar_lhs!(Mul, mul, |s, v| v.mul_scalar(s));
impl_scalar_lhs!(Div, div, |s, v| v.recip().mul_scalar(s));

impl Neg for &Var {
    type Output = Var;
    fn neg(self) -> Var {
        Var::neg(self)
    }
}
impl Neg for Var {
    type Output = Var;
    fn neg(self) -> Var {
        Var::neg(&self)
    }
}

//! Elementwise functions of two variables with broadcasting (gradients are summed back
//! to each input's shape), their scalar forms, `where_`, and the operators on `Var`.

use std::ops::{Add, Div, Mul, Neg, Sub};

use sinew_tensor::Tensor;

use super::sum_to;
use crate::Var;

impl Var {
    /// Elementwise sum with broadcasting (also `&a + &b`).
    ///
    /// ```
    /// use sinew_autograd::Var;
    /// use sinew_tensor::Tensor;
    /// let a = Var::leaf(Tensor::ones(&[2, 3]));
    /// let b = Var::leaf(Tensor::arange(0.0, 3.0, 1.0));   // broadcast over the rows
    /// let g = a.add(&b).sum_all().backward();
    /// assert_eq!(g.get(&a).unwrap().to_vec::<f32>(), vec![1.0; 6]);
    /// assert_eq!(g.get(&b).unwrap().to_vec::<f32>(), vec![2.0; 3]);   // summed back to [3]
    /// ```
    #[track_caller]
    pub fn add(&self, other: &Var) -> Var {
        Var::from_op("add", self.value().add(other.value()), &[self, other], |ctx| {
            let (a, b) = (&ctx.inputs[0], &ctx.inputs[1]);
            vec![Some(sum_to(ctx.grad, a.dims())), Some(sum_to(ctx.grad, b.dims()))]
        })
    }

    /// Elementwise difference with broadcasting (also `&a - &b`).
    ///
    /// ```
    /// use sinew_autograd::Var;
    /// use sinew_tensor::Tensor;
    /// let a = Var::leaf(Tensor::full(&[2], 5.0));
    /// let b = Var::leaf(Tensor::full(&[2], 3.0));
    /// let y = a.sub(&b);   // also &a - &b
    /// assert_eq!(y.value().to_vec::<f32>(), vec![2.0, 2.0]);
    /// let g = y.sum_all().backward();
    /// assert_eq!(g.get(&b).unwrap().to_vec::<f32>(), vec![-1.0, -1.0]);
    /// ```
    #[track_caller]
    pub fn sub(&self, other: &Var) -> Var {
        Var::from_op("sub", self.value().sub(other.value()), &[self, other], |ctx| {
            let (a, b) = (&ctx.inputs[0], &ctx.inputs[1]);
            vec![Some(sum_to(ctx.grad, a.dims())), Some(sum_to(&ctx.grad.neg(), b.dims()))]
        })
    }

    /// Elementwise product with broadcasting (also `&a * &b`).
    ///
    /// ```
    /// use sinew_autograd::Var;
    /// use sinew_tensor::Tensor;
    /// let a = Var::leaf(Tensor::from_vec(vec![2.0f64, 3.0], &[2])?);
    /// let b = Var::leaf(Tensor::from_vec(vec![5.0f64, 7.0], &[2])?);
    /// let g = a.mul(&b).sum_all().backward();   // d(ab)/da = b, d(ab)/db = a
    /// assert_eq!(g.get(&a).unwrap().to_vec::<f64>(), vec![5.0, 7.0]);
    /// assert_eq!(g.get(&b).unwrap().to_vec::<f64>(), vec![2.0, 3.0]);
    /// # Ok::<(), sinew_tensor::TensorError>(())
    /// ```
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
    ///
    /// ```
    /// use sinew_autograd::Var;
    /// use sinew_tensor::Tensor;
    /// let a = Var::leaf(Tensor::from_vec(vec![6.0f64], &[1])?);
    /// let b = Var::leaf(Tensor::from_vec(vec![2.0f64], &[1])?);
    /// let y = a.div(&b);
    /// let g = y.sum_all().backward();   // 1/b and -a/b²
    /// assert_eq!(y.item(), 3.0);
    /// assert_eq!((g.get(&a).unwrap().item(), g.get(&b).unwrap().item()), (0.5, -1.5));
    /// # Ok::<(), sinew_tensor::TensorError>(())
    /// ```
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
    ///
    /// ```
    /// use sinew_autograd::Var;
    /// use sinew_tensor::Tensor;
    /// let a = Var::leaf(Tensor::from_vec(vec![2.0f64, 0.0], &[2])?);
    /// let b = Var::leaf(Tensor::from_vec(vec![3.0f64, 2.0], &[2])?);
    /// let g = a.pow(&b).sum_all().backward();   // torch.pow(a, b)
    /// assert_eq!(g.get(&a).unwrap().to_vec::<f64>(), vec![12.0, 0.0]);   // b·a^(b-1)
    /// let gb = g.get(&b).unwrap().to_vec::<f64>();   // a^b·ln a, and 0 where a = 0
    /// assert!((gb[0] - 8.0 * 2f64.ln()).abs() < 1e-12);
    /// assert_eq!(gb[1], 0.0);
    /// # Ok::<(), sinew_tensor::TensorError>(())
    /// ```
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
    ///
    /// ```
    /// use sinew_autograd::Var;
    /// use sinew_tensor::Tensor;
    /// let a = Var::leaf(Tensor::from_vec(vec![1.0f64, 5.0, 2.0], &[3])?);
    /// let b = Var::leaf(Tensor::from_vec(vec![3.0f64, 2.0, 2.0], &[3])?);
    /// let g = a.maximum(&b).sum_all().backward();
    /// assert_eq!(g.get(&a).unwrap().to_vec::<f64>(), vec![0.0, 1.0, 0.5]);   // a tie splits it
    /// assert_eq!(g.get(&b).unwrap().to_vec::<f64>(), vec![1.0, 0.0, 0.5]);
    /// # Ok::<(), sinew_tensor::TensorError>(())
    /// ```
    #[track_caller]
    pub fn maximum(&self, other: &Var) -> Var {
        self.extremum(other, true)
    }

    /// Elementwise minimum; ties send half the gradient to each input (PyTorch).
    ///
    /// ```
    /// use sinew_autograd::Var;
    /// use sinew_tensor::Tensor;
    /// let a = Var::leaf(Tensor::from_vec(vec![1.0f64, 5.0], &[2])?);
    /// let b = Var::constant(Tensor::from_vec(vec![3.0f64, 2.0], &[2])?);
    /// let y = a.minimum(&b);
    /// assert_eq!(y.value().to_vec::<f64>(), vec![1.0, 2.0]);
    /// assert_eq!(y.sum_all().backward().get(&a).unwrap().to_vec::<f64>(), vec![1.0, 0.0]);
    /// # Ok::<(), sinew_tensor::TensorError>(())
    /// ```
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
    ///
    /// ```
    /// use sinew_autograd::Var;
    /// use sinew_tensor::Tensor;
    /// let x = Var::leaf(Tensor::zeros(&[2]));
    /// let y = x.add_scalar(1.5);   // also &x + 1.5
    /// assert_eq!(y.value().to_vec::<f32>(), vec![1.5, 1.5]);
    /// assert_eq!(y.sum_all().backward().get(&x).unwrap().to_vec::<f32>(), vec![1.0, 1.0]);
    /// ```
    pub fn add_scalar(&self, s: f64) -> Var {
        Var::from_op("add_scalar", self.value().add_scalar(s), &[self], |ctx| vec![Some(ctx.grad.clone())])
    }

    /// `x · s`.
    ///
    /// ```
    /// use sinew_autograd::Var;
    /// use sinew_tensor::Tensor;
    /// let x = Var::leaf(Tensor::ones(&[2]));
    /// let y = x.mul_scalar(3.0);   // also &x * 3.0
    /// assert_eq!(y.value().to_vec::<f32>(), vec![3.0, 3.0]);
    /// assert_eq!(y.sum_all().backward().get(&x).unwrap().to_vec::<f32>(), vec![3.0, 3.0]);
    /// ```
    pub fn mul_scalar(&self, s: f64) -> Var {
        Var::from_op("mul_scalar", self.value().mul_scalar(s), &[self], move |ctx| {
            vec![Some(ctx.grad.mul_scalar(s))]
        })
    }

    /// `x / s`.
    ///
    /// ```
    /// use sinew_autograd::Var;
    /// use sinew_tensor::Tensor;
    /// let x = Var::leaf(Tensor::full(&[2], 3.0));
    /// let y = x.div_scalar(2.0);   // also &x / 2.0
    /// assert_eq!(y.value().to_vec::<f32>(), vec![1.5, 1.5]);
    /// assert_eq!(y.sum_all().backward().get(&x).unwrap().to_vec::<f32>(), vec![0.5, 0.5]);
    /// ```
    pub fn div_scalar(&self, s: f64) -> Var {
        self.mul_scalar(1.0 / s)
    }

    /// `x - s`.
    ///
    /// ```
    /// use sinew_autograd::Var;
    /// use sinew_tensor::Tensor;
    /// let x = Var::leaf(Tensor::ones(&[2]));
    /// let y = x.sub_scalar(0.25);
    /// assert_eq!(y.value().to_vec::<f32>(), vec![0.75, 0.75]);
    /// assert_eq!(y.sum_all().backward().get(&x).unwrap().to_vec::<f32>(), vec![1.0, 1.0]);
    /// ```
    pub fn sub_scalar(&self, s: f64) -> Var {
        self.add_scalar(-s)
    }

    /// `s - x`.
    ///
    /// ```
    /// use sinew_autograd::Var;
    /// use sinew_tensor::Tensor;
    /// let p = Var::leaf(Tensor::full(&[2], 0.25));
    /// let q = p.rsub_scalar(1.0);   // 1 - p, also 1.0 - &p
    /// assert_eq!(q.value().to_vec::<f32>(), vec![0.75, 0.75]);
    /// assert_eq!(q.sum_all().backward().get(&p).unwrap().to_vec::<f32>(), vec![-1.0, -1.0]);
    /// ```
    pub fn rsub_scalar(&self, s: f64) -> Var {
        self.neg().add_scalar(s)
    }

    /// Picks `a` where `cond` (a constant mask) is non-zero, `b` elsewhere, broadcasting all three.
    ///
    /// ```
    /// use sinew_autograd::Var;
    /// use sinew_tensor::Tensor;
    /// let cond = Tensor::from_vec(vec![1.0f32, 0.0, 1.0], &[3])?;
    /// let a = Var::leaf(Tensor::full(&[3], 10.0));
    /// let b = Var::leaf(Tensor::full(&[3], -10.0));
    /// let y = Var::where_(&cond, &a, &b);   // torch.where(cond, a, b)
    /// assert_eq!(y.value().to_vec::<f32>(), vec![10.0, -10.0, 10.0]);
    /// let g = y.sum_all().backward();
    /// assert_eq!(g.get(&a).unwrap().to_vec::<f32>(), vec![1.0, 0.0, 1.0]);
    /// assert_eq!(g.get(&b).unwrap().to_vec::<f32>(), vec![0.0, 1.0, 0.0]);
    /// # Ok::<(), sinew_tensor::TensorError>(())
    /// ```
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
    ///
    /// ```
    /// use sinew_autograd::Var;
    /// use sinew_tensor::Tensor;
    /// let scores = Var::leaf(Tensor::zeros(&[2]));
    /// let mask = Tensor::from_vec(vec![0.0f32, 1.0], &[2])?;
    /// let y = scores.masked_fill(&mask, -1e9);   // scores.masked_fill(mask, -1e9)
    /// assert_eq!(y.value().to_vec::<f32>(), vec![0.0, -1e9]);
    /// assert_eq!(y.sum_all().backward().get(&scores).unwrap().to_vec::<f32>(), vec![1.0, 0.0]);
    /// # Ok::<(), sinew_tensor::TensorError>(())
    /// ```
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

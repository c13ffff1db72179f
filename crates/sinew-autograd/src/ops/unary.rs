//! Elementwise functions of one variable. Each backward rule is written with `Var` ops,
//! so it can be differentiated again; masks (`x > 0`) are constants. The GELUs' rules are
//! the exception of `ops/recurrent.rs`: a fused tensor kernel in first-order backward
//! passes, the same gradient in `Var` ops when `is_grad_enabled()` (under `create_graph`).

use std::f64::consts::{FRAC_1_SQRT_2, PI};

use crate::Var;
use crate::mode::is_grad_enabled;

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
    ///
    /// ```
    /// use sinew_autograd::Var;
    /// use sinew_tensor::Tensor;
    /// let x = Var::leaf(Tensor::from_vec(vec![1.0f64, -2.0], &[2])?);
    /// let y = x.neg();   // -x
    /// let g = y.sum_all().backward();   // y.sum().backward()
    /// assert!(y.value().allclose(&Tensor::from_vec(vec![-1.0, 2.0], &[2])?, 1e-12, 1e-12));
    /// assert!(g.get(&x).unwrap().allclose(&Tensor::from_vec(vec![-1.0, -1.0], &[2])?, 1e-12, 1e-12));
    /// # Ok::<(), sinew_tensor::TensorError>(())
    /// ```
    neg => |x, y, g| g.neg();
    /// `e^x`.
    ///
    /// ```
    /// use sinew_autograd::Var;
    /// use sinew_tensor::Tensor;
    /// let x = Var::leaf(Tensor::from_vec(vec![0.0f64, 1.0], &[2])?);
    /// let y = x.exp();
    /// let g = y.sum_all().backward();   // y.sum().backward()
    /// assert!(y.value().allclose(&Tensor::from_vec(vec![1.0, 2.718281828459045], &[2])?, 1e-12, 1e-12));
    /// assert!(g.get(&x).unwrap().allclose(&Tensor::from_vec(vec![1.0, 2.718281828459045], &[2])?, 1e-12, 1e-12));
    /// # Ok::<(), sinew_tensor::TensorError>(())
    /// ```
    exp => |x, y, g| g * y;
    /// Natural logarithm.
    ///
    /// ```
    /// use sinew_autograd::Var;
    /// use sinew_tensor::Tensor;
    /// let x = Var::leaf(Tensor::from_vec(vec![1.0f64, 4.0], &[2])?);
    /// let y = x.log();
    /// let g = y.sum_all().backward();   // y.sum().backward()
    /// assert!(y.value().allclose(&Tensor::from_vec(vec![0.0, 1.3862943611198906], &[2])?, 1e-12, 1e-12));
    /// assert!(g.get(&x).unwrap().allclose(&Tensor::from_vec(vec![1.0, 0.25], &[2])?, 1e-12, 1e-12));
    /// # Ok::<(), sinew_tensor::TensorError>(())
    /// ```
    log => |x, y, g| g / x;
    /// `ln(1 + x)`.
    ///
    /// ```
    /// use sinew_autograd::Var;
    /// use sinew_tensor::Tensor;
    /// let x = Var::leaf(Tensor::from_vec(vec![0.0f64, 3.0], &[2])?);
    /// let y = x.log1p();
    /// let g = y.sum_all().backward();   // y.sum().backward()
    /// assert!(y.value().allclose(&Tensor::from_vec(vec![0.0, 1.3862943611198906], &[2])?, 1e-12, 1e-12));
    /// assert!(g.get(&x).unwrap().allclose(&Tensor::from_vec(vec![1.0, 0.25], &[2])?, 1e-12, 1e-12));
    /// # Ok::<(), sinew_tensor::TensorError>(())
    /// ```
    log1p => |x, y, g| g / &x.add_scalar(1.0);
    /// `e^x - 1`.
    ///
    /// ```
    /// use sinew_autograd::Var;
    /// use sinew_tensor::Tensor;
    /// let x = Var::leaf(Tensor::from_vec(vec![0.0f64, 1.0], &[2])?);
    /// let y = x.expm1();
    /// let g = y.sum_all().backward();   // y.sum().backward()
    /// assert!(y.value().allclose(&Tensor::from_vec(vec![0.0, 1.718281828459045], &[2])?, 1e-12, 1e-12));
    /// assert!(g.get(&x).unwrap().allclose(&Tensor::from_vec(vec![1.0, 2.718281828459045], &[2])?, 1e-12, 1e-12));
    /// # Ok::<(), sinew_tensor::TensorError>(())
    /// ```
    expm1 => |x, y, g| g * &y.add_scalar(1.0);
    /// Square root.
    ///
    /// ```
    /// use sinew_autograd::Var;
    /// use sinew_tensor::Tensor;
    /// let x = Var::leaf(Tensor::from_vec(vec![4.0f64, 9.0], &[2])?);
    /// let y = x.sqrt();
    /// let g = y.sum_all().backward();   // y.sum().backward()
    /// assert!(y.value().allclose(&Tensor::from_vec(vec![2.0, 3.0], &[2])?, 1e-12, 1e-12));
    /// assert!(g.get(&x).unwrap().allclose(&Tensor::from_vec(vec![0.25, 0.16666666666666666], &[2])?, 1e-12, 1e-12));
    /// # Ok::<(), sinew_tensor::TensorError>(())
    /// ```
    sqrt => |x, y, g| &(g * 0.5) / y;
    /// `1/sqrt(x)`; derivative `-0.5 x^-1.5`.
    ///
    /// ```
    /// use sinew_autograd::Var;
    /// use sinew_tensor::Tensor;
    /// let x = Var::leaf(Tensor::from_vec(vec![4.0f64, 0.25], &[2])?);
    /// let y = x.rsqrt();
    /// let g = y.sum_all().backward();   // y.sum().backward()
    /// assert!(y.value().allclose(&Tensor::from_vec(vec![0.5, 2.0], &[2])?, 1e-12, 1e-12));
    /// assert!(g.get(&x).unwrap().allclose(&Tensor::from_vec(vec![-0.0625, -4.0], &[2])?, 1e-12, 1e-12));
    /// # Ok::<(), sinew_tensor::TensorError>(())
    /// ```
    rsqrt => |x, y, g| &(g * -0.5) * &(&y.square() * y);
    /// `1/x`.
    ///
    /// ```
    /// use sinew_autograd::Var;
    /// use sinew_tensor::Tensor;
    /// let x = Var::leaf(Tensor::from_vec(vec![2.0f64, -0.5], &[2])?);
    /// let y = x.recip();   // x.reciprocal()
    /// let g = y.sum_all().backward();   // y.sum().backward()
    /// assert!(y.value().allclose(&Tensor::from_vec(vec![0.5, -2.0], &[2])?, 1e-12, 1e-12));
    /// assert!(g.get(&x).unwrap().allclose(&Tensor::from_vec(vec![-0.25, -4.0], &[2])?, 1e-12, 1e-12));
    /// # Ok::<(), sinew_tensor::TensorError>(())
    /// ```
    recip => |x, y, g| &(g * -1.0) * &y.square();
    /// `x²`.
    ///
    /// ```
    /// use sinew_autograd::Var;
    /// use sinew_tensor::Tensor;
    /// let x = Var::leaf(Tensor::from_vec(vec![3.0f64, -1.5], &[2])?);
    /// let y = x.square();
    /// let g = y.sum_all().backward();   // y.sum().backward()
    /// assert!(y.value().allclose(&Tensor::from_vec(vec![9.0, 2.25], &[2])?, 1e-12, 1e-12));
    /// assert!(g.get(&x).unwrap().allclose(&Tensor::from_vec(vec![6.0, -3.0], &[2])?, 1e-12, 1e-12));
    /// # Ok::<(), sinew_tensor::TensorError>(())
    /// ```
    square => |x, y, g| &(g * 2.0) * x;
    /// Sine.
    ///
    /// ```
    /// use sinew_autograd::Var;
    /// use sinew_tensor::Tensor;
    /// let x = Var::leaf(Tensor::from_vec(vec![0.0f64, 1.0], &[2])?);
    /// let y = x.sin();
    /// let g = y.sum_all().backward();   // y.sum().backward()
    /// assert!(y.value().allclose(&Tensor::from_vec(vec![0.0, 0.8414709848078965], &[2])?, 1e-12, 1e-12));
    /// assert!(g.get(&x).unwrap().allclose(&Tensor::from_vec(vec![1.0, 0.5403023058681398], &[2])?, 1e-12, 1e-12));
    /// # Ok::<(), sinew_tensor::TensorError>(())
    /// ```
    sin => |x, y, g| g * &x.cos();
    /// Cosine.
    ///
    /// ```
    /// use sinew_autograd::Var;
    /// use sinew_tensor::Tensor;
    /// let x = Var::leaf(Tensor::from_vec(vec![0.0f64, 1.0], &[2])?);
    /// let y = x.cos();
    /// let g = y.sum_all().backward();   // y.sum().backward()
    /// assert!(y.value().allclose(&Tensor::from_vec(vec![1.0, 0.5403023058681398], &[2])?, 1e-12, 1e-12));
    /// assert!(g.get(&x).unwrap().allclose(&Tensor::from_vec(vec![-0.0, -0.8414709848078965], &[2])?, 1e-12, 1e-12));
    /// # Ok::<(), sinew_tensor::TensorError>(())
    /// ```
    cos => |x, y, g| &(g * -1.0) * &x.sin();
    /// Hyperbolic tangent.
    ///
    /// ```
    /// use sinew_autograd::Var;
    /// use sinew_tensor::Tensor;
    /// let x = Var::leaf(Tensor::from_vec(vec![0.0f64, 0.5], &[2])?);
    /// let y = x.tanh();
    /// let g = y.sum_all().backward();   // y.sum().backward()
    /// assert!(y.value().allclose(&Tensor::from_vec(vec![0.0, 0.46211715726000974], &[2])?, 1e-12, 1e-12));
    /// assert!(g.get(&x).unwrap().allclose(&Tensor::from_vec(vec![1.0, 0.7864477329659274], &[2])?, 1e-12, 1e-12));
    /// # Ok::<(), sinew_tensor::TensorError>(())
    /// ```
    tanh => |x, y, g| g * &y.square().rsub_scalar(1.0);
    /// Logistic sigmoid.
    ///
    /// ```
    /// use sinew_autograd::Var;
    /// use sinew_tensor::Tensor;
    /// let x = Var::leaf(Tensor::from_vec(vec![0.0f64, 2.0], &[2])?);
    /// let y = x.sigmoid();
    /// let g = y.sum_all().backward();   // y.sum().backward()
    /// assert!(y.value().allclose(&Tensor::from_vec(vec![0.5, 0.8807970779778823], &[2])?, 1e-12, 1e-12));
    /// assert!(g.get(&x).unwrap().allclose(&Tensor::from_vec(vec![0.25, 0.10499358540350662], &[2])?, 1e-12, 1e-12));
    /// # Ok::<(), sinew_tensor::TensorError>(())
    /// ```
    sigmoid => |x, y, g| g * &(y * &y.rsub_scalar(1.0));
    /// Error function; derivative `2/√π e^(-x²)`.
    ///
    /// ```
    /// use sinew_autograd::Var;
    /// use sinew_tensor::Tensor;
    /// let x = Var::leaf(Tensor::from_vec(vec![0.0f64, 1.0], &[2])?);
    /// let y = x.erf();   // torch.erf(x)
    /// let g = y.sum_all().backward();   // y.sum().backward()
    /// assert!(y.value().allclose(&Tensor::from_vec(vec![0.0, 0.8427007929497149], &[2])?, 1e-12, 1e-12));
    /// assert!(g.get(&x).unwrap().allclose(&Tensor::from_vec(vec![1.1283791670955126, 0.4151074974205947], &[2])?, 1e-12, 1e-12));
    /// # Ok::<(), sinew_tensor::TensorError>(())
    /// ```
    erf => |x, y, g| g * &(&x.square().neg().exp() * (2.0 / PI.sqrt()));
    /// `max(x, 0)`; the gradient is 0 at 0, as in PyTorch.
    ///
    /// ```
    /// use sinew_autograd::Var;
    /// use sinew_tensor::Tensor;
    /// let x = Var::leaf(Tensor::from_vec(vec![-1.0f64, 0.0, 2.0], &[3])?);
    /// let y = x.relu();   // x.relu(): gradient 0 at 0
    /// let g = y.sum_all().backward();   // y.sum().backward()
    /// assert!(y.value().allclose(&Tensor::from_vec(vec![0.0, 0.0, 2.0], &[3])?, 1e-12, 1e-12));
    /// assert!(g.get(&x).unwrap().allclose(&Tensor::from_vec(vec![0.0, 0.0, 1.0], &[3])?, 1e-12, 1e-12));
    /// # Ok::<(), sinew_tensor::TensorError>(())
    /// ```
    relu => |x, y, g| g * &Var::constant(x.value().gt_scalar(0.0));
    /// `|x|`; the gradient at 0 is 0.
    ///
    /// ```
    /// use sinew_autograd::Var;
    /// use sinew_tensor::Tensor;
    /// let x = Var::leaf(Tensor::from_vec(vec![-2.0f64, 0.0, 3.0], &[3])?);
    /// let y = x.abs();   // x.abs(): gradient 0 at 0
    /// let g = y.sum_all().backward();   // y.sum().backward()
    /// assert!(y.value().allclose(&Tensor::from_vec(vec![2.0, 0.0, 3.0], &[3])?, 1e-12, 1e-12));
    /// assert!(g.get(&x).unwrap().allclose(&Tensor::from_vec(vec![-1.0, 0.0, 1.0], &[3])?, 1e-12, 1e-12));
    /// # Ok::<(), sinew_tensor::TensorError>(())
    /// ```
    abs => |x, y, g| g * &Var::constant(x.value().sign());
    /// SiLU `x·sigmoid(x)`: derivative `s·(1 + x·(1 - s))`.
    ///
    /// ```
    /// use sinew_autograd::Var;
    /// use sinew_tensor::Tensor;
    /// let x = Var::leaf(Tensor::from_vec(vec![-1.0f64, 0.0, 2.0], &[3])?);
    /// let y = x.silu();   // F.silu(x)
    /// let g = y.sum_all().backward();   // y.sum().backward()
    /// assert!(y.value().allclose(&Tensor::from_vec(vec![-0.2689414213699951, 0.0, 1.7615941559557646], &[3])?, 1e-12, 1e-12));
    /// assert!(g.get(&x).unwrap().allclose(&Tensor::from_vec(vec![0.07232948812851325, 0.5, 1.0907842487848955], &[3])?, 1e-12, 1e-12));
    /// # Ok::<(), sinew_tensor::TensorError>(())
    /// ```
    silu => |x, y, g| {
        let s = x.sigmoid();
        g * &(&s * &(x * &s.rsub_scalar(1.0)).add_scalar(1.0))
    };
}

impl Var {
    /// GELU (erf form): derivative `Φ(x) + x·φ(x)`.
    ///
    /// The first-order backward pass is one fused kernel ([`Tensor::gelu_backward`](sinew_tensor::Tensor::gelu_backward)); with
    /// `create_graph` the same gradient is composed from `Var` ops, so it can be
    /// differentiated again.
    ///
    /// ```
    /// use sinew_autograd::Var;
    /// use sinew_tensor::Tensor;
    /// let x = Var::leaf(Tensor::from_vec(vec![-1.0f64, 0.0, 1.5], &[3])?);
    /// let y = x.gelu();   // F.gelu(x)
    /// let g = y.sum_all().backward();   // y.sum().backward()
    /// assert!(y.value().allclose(&Tensor::from_vec(vec![-0.15865525393145707, 0.0, 1.399789198096713], &[3])?, 1e-12, 1e-12));
    /// assert!(g.get(&x).unwrap().allclose(&Tensor::from_vec(vec![-0.08331547058768629, 0.5, 1.1274691922299795], &[3])?, 1e-12, 1e-12));
    /// # Ok::<(), sinew_tensor::TensorError>(())
    /// ```
    pub fn gelu(&self) -> Var {
        Var::from_op("gelu", self.value().gelu(), &[self], |ctx| {
            let (x, g) = (&ctx.inputs[0], ctx.grad);
            if is_grad_enabled() {
                // building a graph of the gradient (`create_graph`): differentiable ops
                let cdf = (x * FRAC_1_SQRT_2).erf().mul_scalar(0.5).add_scalar(0.5);
                let pdf = (&x.square() * -0.5).exp().mul_scalar(1.0 / (2.0 * PI).sqrt());
                return vec![Some(g * &(&cdf + &(x * &pdf)))];
            }
            vec![Some(Var::constant(x.value().gelu_backward(g.value())))]
        })
    }

    /// GELU (tanh approximation).
    ///
    /// Backward as for [`Var::gelu`]: one fused kernel ([`Tensor::gelu_tanh_backward`](sinew_tensor::Tensor::gelu_tanh_backward)),
    /// or `Var` ops under `create_graph`.
    ///
    /// ```
    /// use sinew_autograd::Var;
    /// use sinew_tensor::Tensor;
    /// let x = Var::leaf(Tensor::from_vec(vec![-1.0f64, 0.0, 1.5], &[3])?);
    /// let y = x.gelu_tanh();   // F.gelu(x, approximate='tanh')
    /// let g = y.sum_all().backward();   // y.sum().backward()
    /// assert!(y.value().allclose(&Tensor::from_vec(vec![-0.15880800939172324, 0.0, 1.3995715769802328], &[3])?, 1e-12, 1e-12));
    /// assert!(g.get(&x).unwrap().allclose(&Tensor::from_vec(vec![-0.08296408384578255, 0.5, 1.1277107931514332], &[3])?, 1e-12, 1e-12));
    /// # Ok::<(), sinew_tensor::TensorError>(())
    /// ```
    pub fn gelu_tanh(&self) -> Var {
        Var::from_op("gelu_tanh", self.value().gelu_tanh(), &[self], |ctx| {
            let (x, g) = (&ctx.inputs[0], ctx.grad);
            if is_grad_enabled() {
                let k = (2.0 / PI).sqrt();
                let x2 = x.square();
                let t = (&(x + &(&(&x2 * x) * 0.044715)) * k).tanh();
                let dt = &t.square().rsub_scalar(1.0) * &(&x2 * (3.0 * 0.044715 * k)).add_scalar(k);
                return vec![Some(g * &(&(&t.add_scalar(1.0) * 0.5) + &(&(x * 0.5) * &dt)))];
            }
            vec![Some(Var::constant(x.value().gelu_tanh_backward(g.value())))]
        })
    }
}

impl Var {
    /// Round down; piecewise constant, so it takes no gradient (a constant).
    ///
    /// ```
    /// use sinew_autograd::Var;
    /// use sinew_tensor::Tensor;
    /// let x = Var::leaf(Tensor::from_vec(vec![-1.5f64, 0.5, 2.5], &[3])?);
    /// let y = x.floor();
    /// assert_eq!(y.value().to_vec::<f64>(), vec![-2.0, 0.0, 2.0]);
    /// // piecewise constant: nothing flows back to x
    /// assert!(!y.requires_grad());
    /// # Ok::<(), sinew_tensor::TensorError>(())
    /// ```
    pub fn floor(&self) -> Var {
        Var::constant(self.value().floor())
    }

    /// Round up; a constant.
    ///
    /// ```
    /// use sinew_autograd::Var;
    /// use sinew_tensor::Tensor;
    /// let x = Var::leaf(Tensor::from_vec(vec![-1.5f64, 0.5, 2.5], &[3])?);
    /// let y = x.ceil();
    /// assert_eq!(y.value().to_vec::<f64>(), vec![-1.0, 1.0, 3.0]);
    /// // piecewise constant: nothing flows back to x
    /// assert!(!y.requires_grad());
    /// # Ok::<(), sinew_tensor::TensorError>(())
    /// ```
    pub fn ceil(&self) -> Var {
        Var::constant(self.value().ceil())
    }

    /// Round to nearest, ties to even; a constant.
    ///
    /// ```
    /// use sinew_autograd::Var;
    /// use sinew_tensor::Tensor;
    /// let x = Var::leaf(Tensor::from_vec(vec![-1.5f64, 0.5, 2.5], &[3])?);
    /// let y = x.round();
    /// assert_eq!(y.value().to_vec::<f64>(), vec![-2.0, 0.0, 2.0]);
    /// // piecewise constant: nothing flows back to x
    /// assert!(!y.requires_grad());
    /// # Ok::<(), sinew_tensor::TensorError>(())
    /// ```
    pub fn round(&self) -> Var {
        Var::constant(self.value().round())
    }

    /// Sign (-1, 0, 1); its gradient is zero.
    ///
    /// ```
    /// use sinew_autograd::Var;
    /// use sinew_tensor::Tensor;
    /// let x = Var::leaf(Tensor::from_vec(vec![-2.0f64, 0.0, 3.0], &[3])?);
    /// let y = x.sign();
    /// assert_eq!(y.value().to_vec::<f64>(), vec![-1.0, 0.0, 1.0]);
    /// // piecewise constant: nothing flows back to x
    /// assert!(!y.requires_grad());
    /// # Ok::<(), sinew_tensor::TensorError>(())
    /// ```
    pub fn sign(&self) -> Var {
        Var::constant(self.value().sign())
    }

    /// Leaky ReLU with the given negative slope (PyTorch's default is 0.01).
    ///
    /// ```
    /// use sinew_autograd::Var;
    /// use sinew_tensor::Tensor;
    /// let x = Var::leaf(Tensor::from_vec(vec![-2.0f64, 3.0], &[2])?);
    /// let y = x.leaky_relu(0.1);   // F.leaky_relu(x, 0.1)
    /// let g = y.sum_all().backward();   // y.sum().backward()
    /// assert!(y.value().allclose(&Tensor::from_vec(vec![-0.2, 3.0], &[2])?, 1e-12, 1e-12));
    /// assert!(g.get(&x).unwrap().allclose(&Tensor::from_vec(vec![0.1, 1.0], &[2])?, 1e-12, 1e-12));
    /// # Ok::<(), sinew_tensor::TensorError>(())
    /// ```
    pub fn leaky_relu(&self, negative_slope: f64) -> Var {
        Var::from_op("leaky_relu", self.value().leaky_relu(negative_slope), &[self], move |ctx| {
            let pos = ctx.inputs[0].value().gt_scalar(0.0);
            let slope = &(&pos * (1.0 - negative_slope)) + negative_slope;
            vec![Some(ctx.grad * &Var::constant(slope))]
        })
    }

    /// ELU: `x` for `x > 0`, else `alpha·(e^x - 1)`.
    ///
    /// ```
    /// use sinew_autograd::Var;
    /// use sinew_tensor::Tensor;
    /// let x = Var::leaf(Tensor::from_vec(vec![-1.0f64, 2.0], &[2])?);
    /// let y = x.elu(1.0);   // F.elu(x)
    /// let g = y.sum_all().backward();   // y.sum().backward()
    /// assert!(y.value().allclose(&Tensor::from_vec(vec![-0.6321205588285577, 2.0], &[2])?, 1e-12, 1e-12));
    /// assert!(g.get(&x).unwrap().allclose(&Tensor::from_vec(vec![0.36787944117144233, 1.0], &[2])?, 1e-12, 1e-12));
    /// # Ok::<(), sinew_tensor::TensorError>(())
    /// ```
    pub fn elu(&self, alpha: f64) -> Var {
        Var::from_op("elu", self.value().elu(alpha), &[self], move |ctx| {
            let pos = Var::constant(ctx.inputs[0].value().gt_scalar(0.0));
            // derivative: 1 where x > 0, else alpha·e^x = y + alpha
            let neg_part = &ctx.output.add_scalar(alpha) * &pos.rsub_scalar(1.0);
            vec![Some(ctx.grad * &(&pos + &neg_part))]
        })
    }

    /// Softplus `ln(1 + e^(beta·x))/beta`, linear above `threshold` (PyTorch: 1, 20).
    ///
    /// ```
    /// use sinew_autograd::Var;
    /// use sinew_tensor::Tensor;
    /// let x = Var::leaf(Tensor::from_vec(vec![0.0f64, 1.0, 30.0], &[3])?);
    /// let y = x.softplus(1.0, 20.0);   // F.softplus(x): linear above 20
    /// let g = y.sum_all().backward();   // y.sum().backward()
    /// assert!(y.value().allclose(&Tensor::from_vec(vec![0.6931471805599453, 1.3132616875182228, 30.0], &[3])?, 1e-12, 1e-12));
    /// assert!(g.get(&x).unwrap().allclose(&Tensor::from_vec(vec![0.5, 0.7310585786300049, 1.0], &[3])?, 1e-12, 1e-12));
    /// # Ok::<(), sinew_tensor::TensorError>(())
    /// ```
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
    ///
    /// ```
    /// use sinew_autograd::Var;
    /// use sinew_tensor::Tensor;
    /// let x = Var::leaf(Tensor::from_vec(vec![-1.0f64, 0.0, 0.5, 2.0], &[4])?);
    /// let y = x.clamp(Some(0.0), Some(1.0));   // bounds included
    /// let g = y.sum_all().backward();   // y.sum().backward()
    /// assert!(y.value().allclose(&Tensor::from_vec(vec![0.0, 0.0, 0.5, 1.0], &[4])?, 1e-12, 1e-12));
    /// assert!(g.get(&x).unwrap().allclose(&Tensor::from_vec(vec![0.0, 1.0, 1.0, 0.0], &[4])?, 1e-12, 1e-12));
    /// # Ok::<(), sinew_tensor::TensorError>(())
    /// ```
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
    ///
    /// ```
    /// use sinew_autograd::Var;
    /// use sinew_tensor::Tensor;
    /// let x = Var::leaf(Tensor::from_vec(vec![2.0f64, 3.0], &[2])?);
    /// let y = x.powf(3.0);   // x ** 3
    /// let g = y.sum_all().backward();   // y.sum().backward()
    /// assert!(y.value().allclose(&Tensor::from_vec(vec![8.0, 27.0], &[2])?, 1e-12, 1e-12));
    /// assert!(g.get(&x).unwrap().allclose(&Tensor::from_vec(vec![12.0, 27.0], &[2])?, 1e-12, 1e-12));
    /// # Ok::<(), sinew_tensor::TensorError>(())
    /// ```
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
    ///
    /// ```
    /// use sinew_autograd::Var;
    /// use sinew_tensor::{DType, Tensor};
    /// let x = Var::leaf(Tensor::zeros_dtype(&[2, 3], DType::F64));
    /// let o = x.ones_like();
    /// assert_eq!((o.dims(), o.dtype()), (&[2, 3][..], DType::F64));
    /// assert_eq!(o.value().sum_all().item(), 6.0);
    /// assert!(!o.requires_grad());   // a constant
    /// ```
    pub fn ones_like(&self) -> Var {
        Var::constant(self.value().ones_like())
    }

    /// A constant of zeros with this variable's shape and dtype.
    ///
    /// ```
    /// use sinew_autograd::Var;
    /// use sinew_tensor::Tensor;
    /// let x = Var::leaf(Tensor::ones(&[3]));
    /// let z = x.zeros_like();
    /// assert_eq!(z.value().to_vec::<f32>(), vec![0.0; 3]);
    /// assert!(!z.requires_grad());
    /// ```
    pub fn zeros_like(&self) -> Var {
        Var::constant(self.value().zeros_like())
    }
}

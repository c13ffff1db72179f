//! Elementwise functions of one tensor: arithmetic, transcendental functions and the
//! activations (`relu`, `gelu`, `silu`, ...). Float-only functions applied to an `i64`
//! tensor compute in `f32`, as PyTorch promotes integers.

use std::f64::consts::{FRAC_1_SQRT_2, PI};

use crate::dtype::{DType, Element, Float};
use crate::error::{Result, TensorError, or_panic};
use crate::parallel;
use crate::shape;
use crate::simd::{BinaryFn, Closure, MapKernel, UnaryFn};
use crate::tensor::{StorageElement, Tensor, with_elem, with_float};

impl Tensor {
    /// Applies `f` to every element, producing a new contiguous tensor (in parallel
    /// chunks above [`parallel::PARALLEL_ELEMENT_THRESHOLD`]). The building block of every
    /// unary op; available to other crates for custom kernels.
    ///
    /// # Panics
    /// If the tensor's dtype is not `T`.
    ///
    /// ```
    /// use sinew_tensor::Tensor;
    /// let t = Tensor::arange(0.0, 3.0, 1.0).map::<f32, f32>(|x| 2.0 * x + 1.0);
    /// assert_eq!(t.to_vec::<f32>(), vec![1.0, 3.0, 5.0]);
    /// ```
    #[track_caller]
    pub fn map<T: StorageElement, U: StorageElement>(&self, f: impl Fn(T) -> U + Sync + Send) -> Tensor {
        self.map_with(&Closure(f))
    }

    /// [`Tensor::map`] over a [`UnaryFn`], whose body the vector copies of the loop always
    /// inline (the float functions and activations).
    #[track_caller]
    pub(crate) fn map_with<T: StorageElement, U: StorageElement>(&self, f: &impl UnaryFn<T, U>) -> Tensor {
        assert_eq!(self.dtype(), T::DTYPE, "map: tensor is {}, closure takes {}", self.dtype(), T::DTYPE);
        let n = self.numel();
        if let Some(src) = self.as_slice::<T>() {
            assert_eq!(src.len(), n, "map: contiguous slice of the wrong length");
            // SAFETY: `src` has `n` elements (asserted), so for a chunk of `start..start +
            // chunk.len()` within `0..n` the kernel's zip runs over the whole chunk and
            // writes each element once.
            let out = unsafe {
                parallel::build_vec(n, |start, chunk| {
                    crate::simd::vectorized(MapKernel { src: &src[start..], out: chunk, f })
                })
            };
            return Tensor::from_parts(out, self.dims());
        }
        let src = self.storage_slice::<T>();
        let mut out = crate::buffer::take(n);
        shape::walk(self.dims(), [self.strides()], [self.layout().offset], |[o], len, [s]| {
            match s {
                1 => out.extend(src[o..o + len].iter().map(|&x| f.apply(x))),
                0 => out.extend(std::iter::repeat_n(f.apply(src[o]), len)), // a broadcast dimension
                _ => out.extend(src[o..].iter().step_by(s).take(len).map(|&x| f.apply(x))),
            }
        });
        Tensor::from_parts(out, self.dims())
    }

    /// The tensor as a float tensor (`i64` becomes `f32`), for float-only functions.
    fn as_float(&self) -> Tensor {
        if self.dtype() == DType::I64 { self.to_dtype(DType::F32) } else { self.clone() }
    }
}

/// Defines float-only unary methods: `name(doc, |x| body)`, where the body sees `x: T`
/// with `T: Float` bound to `f32` or `f64`. The body becomes a [`UnaryFn`], which the
/// vector copies of `map`'s loop inline however large it is.
macro_rules! float_unary {
    ($($(#[$m:meta])* $name:ident => |$x:ident| $body:expr;)*) => {
        impl Tensor {
            $(
                $(#[$m])*
                pub fn $name(&self) -> Tensor {
                    struct Op;
                    impl<T: Float> UnaryFn<T, T> for Op {
                        #[inline(always)]
                        fn apply(&self, $x: T) -> T {
                            $body
                        }
                    }
                    let t = self.as_float();
                    with_float!(t.dtype(), stringify!($name), |T| t.map_with::<T, T>(&Op))
                }
            )*
        }
    };
}

/// `1 / (1 + e^-x)`: accurate in relative terms for every `x` (no cancellation: for
/// very negative `x` the denominator is large, for very positive `x` it is 1), and
/// branch-free, so it vectorises.
#[inline(always)]
fn sigmoid<T: Float>(x: T) -> T {
    T::ONE / (T::ONE + (-x).exp())
}

#[inline(always)]
fn cast<T: Element>(v: f64) -> T {
    T::from_f64(v)
}

float_unary! {
    /// `e^x`.
    ///
    /// ```
    /// use sinew_tensor::Tensor;
    /// assert_eq!(Tensor::zeros(&[2]).exp().to_vec::<f32>(), vec![1.0, 1.0]);
    /// ```
    exp => |x| Float::exp(x);
    /// Natural logarithm (`-inf` at 0, NaN below).
    ///
    /// ```
    /// use sinew_tensor::Tensor;
    /// let t = Tensor::from_vec(vec![1.0f64, std::f64::consts::E, 0.0], &[3])?.log();
    /// assert_eq!(t.to_vec::<f64>(), vec![0.0, 1.0, f64::NEG_INFINITY]);
    /// # Ok::<(), sinew_tensor::TensorError>(())
    /// ```
    log => |x| x.ln();
    /// `ln(1 + x)`, accurate for small `x`.
    ///
    /// ```
    /// use sinew_tensor::Tensor;
    /// let x = 1e-10f64;
    /// let y = Tensor::from_vec(vec![x], &[1])?.log1p().item();
    /// assert!((y / (x - x * x / 2.0) - 1.0).abs() < 1e-15);
    /// assert!(((1.0 + x).ln() / x - 1.0).abs() > 1e-8); // the naive form loses digits
    /// # Ok::<(), sinew_tensor::TensorError>(())
    /// ```
    log1p => |x| x.ln_1p();
    /// `e^x - 1`, accurate for small `x`.
    ///
    /// ```
    /// use sinew_tensor::Tensor;
    /// let x = 1e-10f64;
    /// let y = Tensor::from_vec(vec![0.0, x], &[2])?.expm1().to_vec::<f64>();
    /// assert_eq!(y[0], 0.0);
    /// assert!((y[1] / (x + x * x / 2.0) - 1.0).abs() < 1e-15);
    /// assert!(((x.exp() - 1.0) / x - 1.0).abs() > 1e-8); // the naive form loses digits
    /// # Ok::<(), sinew_tensor::TensorError>(())
    /// ```
    expm1 => |x| x.exp_m1();
    /// Square root.
    ///
    /// ```
    /// use sinew_tensor::Tensor;
    /// let t = Tensor::from_vec(vec![4.0f32, 9.0], &[2])?;
    /// assert_eq!(t.sqrt().to_vec::<f32>(), vec![2.0, 3.0]);
    /// assert!(Tensor::full(&[1], -1.0).sqrt().item().is_nan());
    /// # Ok::<(), sinew_tensor::TensorError>(())
    /// ```
    sqrt => |x| x.sqrt();
    /// `1 / sqrt(x)`.
    ///
    /// ```
    /// use sinew_tensor::Tensor;
    /// let t = Tensor::from_vec(vec![4.0f32, 0.25], &[2])?;
    /// assert_eq!(t.rsqrt().to_vec::<f32>(), vec![0.5, 2.0]);
    /// # Ok::<(), sinew_tensor::TensorError>(())
    /// ```
    rsqrt => |x| T::ONE / x.sqrt();
    /// `1 / x`.
    ///
    /// ```
    /// use sinew_tensor::Tensor;
    /// let t = Tensor::from_vec(vec![2.0f32, -0.5, 0.0], &[3])?;
    /// assert_eq!(t.recip().to_vec::<f32>(), vec![0.5, -2.0, f32::INFINITY]);
    /// # Ok::<(), sinew_tensor::TensorError>(())
    /// ```
    recip => |x| T::ONE / x;
    /// Sine.
    ///
    /// ```
    /// use sinew_tensor::Tensor;
    /// let t = Tensor::from_vec(vec![0.0f64, std::f64::consts::FRAC_PI_2], &[2])?;
    /// assert_eq!(t.sin().to_vec::<f64>(), vec![0.0, 1.0]);
    /// # Ok::<(), sinew_tensor::TensorError>(())
    /// ```
    sin => |x| x.sin();
    /// Cosine.
    ///
    /// ```
    /// use sinew_tensor::Tensor;
    /// let t = Tensor::from_vec(vec![0.0f64, std::f64::consts::PI], &[2])?;
    /// assert_eq!(t.cos().to_vec::<f64>(), vec![1.0, -1.0]);
    /// # Ok::<(), sinew_tensor::TensorError>(())
    /// ```
    cos => |x| x.cos();
    /// Hyperbolic tangent.
    ///
    /// ```
    /// use sinew_tensor::Tensor;
    /// let t = Tensor::from_vec(vec![0.0f32, 20.0, -20.0], &[3])?;
    /// assert_eq!(t.tanh().to_vec::<f32>(), vec![0.0, 1.0, -1.0]);
    /// # Ok::<(), sinew_tensor::TensorError>(())
    /// ```
    tanh => |x| Float::tanh(x);
    /// Error function.
    ///
    /// ```
    /// use sinew_tensor::Tensor;
    /// let t = Tensor::from_vec(vec![0.0f64, 1.0, -10.0], &[3])?.erf();
    /// assert!(t.allclose(&Tensor::from_vec(vec![0.0f64, 0.8427007929497149, -1.0], &[3])?, 1e-12, 0.0));
    /// # Ok::<(), sinew_tensor::TensorError>(())
    /// ```
    erf => |x| Float::erf(x);
    /// Logistic sigmoid `1 / (1 + e^-x)`, computed without overflow for any `x`.
    ///
    /// ```
    /// use sinew_tensor::Tensor;
    /// let s = Tensor::from_vec(vec![-1000.0f32, 0.0, 1000.0], &[3])?.sigmoid();
    /// assert_eq!(s.to_vec::<f32>(), vec![0.0, 0.5, 1.0]);
    /// # Ok::<(), sinew_tensor::TensorError>(())
    /// ```
    sigmoid => |x| sigmoid(x);
    /// GELU, exact form `x·Φ(x) = 0.5·x·(1 + erf(x/√2))` (PyTorch's default).
    ///
    /// ```
    /// use sinew_tensor::Tensor;
    /// // torch.nn.functional.gelu(torch.tensor([-1., 0., 1.], dtype=torch.float64))
    /// let y = Tensor::from_vec(vec![-1.0f64, 0.0, 1.0], &[3])?.gelu();
    /// let torch = Tensor::from_vec(vec![-0.15865525393145707f64, 0.0, 0.8413447460685429], &[3])?;
    /// assert!(y.allclose(&torch, 1e-12, 1e-15));
    /// # Ok::<(), sinew_tensor::TensorError>(())
    /// ```
    gelu => |x| cast::<T>(0.5) * x * (T::ONE + Float::erf(x * cast::<T>(FRAC_1_SQRT_2)));
    /// GELU, tanh approximation (`approximate='tanh'`).
    ///
    /// ```
    /// use sinew_tensor::Tensor;
    /// // torch.nn.functional.gelu(x, approximate='tanh')
    /// let y = Tensor::from_vec(vec![-1.0f64, 0.0, 1.0], &[3])?.gelu_tanh();
    /// let torch = Tensor::from_vec(vec![-0.15880800939172324f64, 0.0, 0.8411919906082768], &[3])?;
    /// assert!(y.allclose(&torch, 1e-12, 1e-15));
    /// # Ok::<(), sinew_tensor::TensorError>(())
    /// ```
    gelu_tanh => |x| {
        let k = cast::<T>((2.0 / PI).sqrt());
        cast::<T>(0.5) * x * (T::ONE + Float::tanh(k * (x + cast::<T>(0.044715) * x * x * x)))
    };
    /// SiLU (swish): `x·sigmoid(x)`.
    ///
    /// ```
    /// use sinew_tensor::Tensor;
    /// let y = Tensor::from_vec(vec![0.0f64, 1.0], &[2])?.silu();
    /// assert_eq!(y.to_vec::<f64>(), vec![0.0, 1.0 / (1.0 + (-1f64).exp())]);
    /// # Ok::<(), sinew_tensor::TensorError>(())
    /// ```
    silu => |x| x * sigmoid(x);
    /// Floor.
    ///
    /// ```
    /// use sinew_tensor::Tensor;
    /// let t = Tensor::from_vec(vec![1.5f32, -1.5], &[2])?;
    /// assert_eq!(t.floor().to_vec::<f32>(), vec![1.0, -2.0]);
    /// # Ok::<(), sinew_tensor::TensorError>(())
    /// ```
    floor => |x| x.floor();
    /// Ceiling.
    ///
    /// ```
    /// use sinew_tensor::Tensor;
    /// let t = Tensor::from_vec(vec![1.5f32, -1.5], &[2])?;
    /// assert_eq!(t.ceil().to_vec::<f32>(), vec![2.0, -1.0]);
    /// # Ok::<(), sinew_tensor::TensorError>(())
    /// ```
    ceil => |x| x.ceil();
    /// Round to nearest, ties to even (PyTorch's `round`).
    ///
    /// ```
    /// use sinew_tensor::Tensor;
    /// let t = Tensor::from_vec(vec![0.5f32, 1.5, 2.5, -0.5, 2.6], &[5])?;
    /// assert_eq!(t.round().to_vec::<f32>(), vec![0.0, 2.0, 2.0, -0.0, 3.0]);  // torch.round
    /// # Ok::<(), sinew_tensor::TensorError>(())
    /// ```
    round => |x| x.round_even();
}

/// The derivative of exact GELU, `Φ(x) + x·φ(x)`, in the operation order of
/// `Var::gelu`'s composed rule (so the two agree to the last bit in `f64`).
#[inline(always)]
fn gelu_grad<T: Float>(x: T) -> T {
    let cdf = Float::erf(x * cast::<T>(FRAC_1_SQRT_2)) * cast::<T>(0.5) + cast::<T>(0.5);
    let pdf = Float::exp(x * x * cast::<T>(-0.5)) * cast::<T>(1.0 / (2.0 * PI).sqrt());
    cdf + x * pdf
}

/// The derivative of tanh-approximated GELU: with `u = k·(x + 0.044715·x³)`, `k = √(2/π)`,
/// `(1 + tanh u)/2 + x/2·(1 - tanh² u)·k·(1 + 3·0.044715·x²)`, in the operation order of
/// `Var::gelu_tanh`'s composed rule.
#[inline(always)]
fn gelu_tanh_grad<T: Float>(x: T) -> T {
    let k = (2.0 / PI).sqrt();
    let x2 = x * x;
    let t = Float::tanh((x + x2 * x * cast::<T>(0.044715)) * cast::<T>(k));
    let dt = (T::ONE - t * t) * (x2 * cast::<T>(3.0 * 0.044715 * k) + cast::<T>(k));
    (t + T::ONE) * cast::<T>(0.5) + x * cast::<T>(0.5) * dt
}

/// `grad·gelu'(x)` as a [`BinaryFn`] of `(x, grad)`.
struct GeluBackward;

impl<T: Float> BinaryFn<T, T> for GeluBackward {
    #[inline(always)]
    fn apply(&self, x: T, grad: T) -> T {
        grad * gelu_grad(x)
    }
}

/// `grad·gelu_tanh'(x)` as a [`BinaryFn`] of `(x, grad)`.
struct GeluTanhBackward;

impl<T: Float> BinaryFn<T, T> for GeluTanhBackward {
    #[inline(always)]
    fn apply(&self, x: T, grad: T) -> T {
        grad * gelu_tanh_grad(x)
    }
}

/// The input of a fused activation gradient as a float tensor, after checking that the
/// upstream gradient has its shape and dtype.
fn backward_operands(op: &'static str, x: &Tensor, grad: &Tensor) -> Result<Tensor> {
    if x.dims() != grad.dims() {
        return Err(TensorError::ShapeMismatch {
            op,
            lhs: x.dims().to_vec(),
            rhs: grad.dims().to_vec(),
            detail: ": the gradient must have the input's shape".into(),
        });
    }
    let x = x.as_float();
    if !grad.dtype().is_float() {
        return Err(TensorError::UnsupportedDType {
            op,
            dtype: grad.dtype(),
            detail: ": the gradient must be a float tensor".into(),
        });
    }
    if grad.dtype() != x.dtype() {
        return Err(TensorError::InvalidArgument {
            op,
            msg: format!("the input is {} but the gradient is {}", x.dtype(), grad.dtype()),
        });
    }
    Ok(x)
}

/// Fused gradients of the activations: one pass over the input and the upstream gradient
/// (vectorised, parallel above [`parallel::PARALLEL_ELEMENT_THRESHOLD`]) instead of a
/// chain of tensor ops. `Var::gelu` and `Var::gelu_tanh` use them for first-order
/// backward passes.
impl Tensor {
    /// [`Tensor::gelu_backward`] that returns an error instead of panicking.
    ///
    /// # Errors
    /// If `grad`'s shape differs from the input's, or its dtype from the input's (an
    /// `i64` input counts as `f32`, as in [`Tensor::gelu`]).
    ///
    /// ```
    /// use sinew_tensor::Tensor;
    /// let x = Tensor::from_vec(vec![-1.0f64, 0.0, 1.5], &[3])?;
    /// assert!(x.try_gelu_backward(&x.ones_like())?.allclose(
    ///     &Tensor::from_vec(vec![-0.08331547058768629, 0.5, 1.1274691922299795], &[3])?, 1e-12, 1e-12));
    /// assert!(x.try_gelu_backward(&Tensor::ones(&[2])).is_err()); // not the input's shape
    /// assert!(x.try_gelu_backward(&Tensor::ones(&[3])).is_err()); // f32 gradient, f64 input
    /// # Ok::<(), sinew_tensor::TensorError>(())
    /// ```
    pub fn try_gelu_backward(&self, grad: &Tensor) -> Result<Tensor> {
        const OP: &str = "gelu_backward";
        let x = backward_operands(OP, self, grad)?;
        with_float!(x.dtype(), OP, |T| x.try_zip_with::<T, T>(grad, OP, &GeluBackward))
    }

    /// Gradient of exact [`Tensor::gelu`] at this input: `grad·(Φ(x) + x·φ(x))`, with `Φ`
    /// and `φ` the standard normal distribution and density (PyTorch's
    /// `aten::gelu_backward(grad, x)`). One pass; the result is contiguous, of the
    /// input's shape.
    ///
    /// # Panics
    /// As [`Tensor::try_gelu_backward`] errs; the message names the op and both shapes.
    ///
    /// ```
    /// use sinew_tensor::Tensor;
    /// // torch.ops.aten.gelu_backward(torch.ones(3), x)
    /// let x = Tensor::from_vec(vec![-1.0f64, 0.0, 1.5], &[3])?;
    /// let dx = x.gelu_backward(&x.full_like(2.0));
    /// let torch = Tensor::from_vec(vec![-0.08331547058768629, 0.5, 1.1274691922299795], &[3])?;
    /// assert!(dx.allclose(&torch.mul_scalar(2.0), 1e-12, 1e-12));
    /// # Ok::<(), sinew_tensor::TensorError>(())
    /// ```
    #[track_caller]
    pub fn gelu_backward(&self, grad: &Tensor) -> Tensor {
        or_panic(self.try_gelu_backward(grad))
    }

    /// [`Tensor::gelu_tanh_backward`] that returns an error instead of panicking.
    ///
    /// # Errors
    /// As [`Tensor::try_gelu_backward`].
    ///
    /// ```
    /// use sinew_tensor::Tensor;
    /// let x = Tensor::from_vec(vec![-1.0f64, 0.0, 1.5], &[3])?;
    /// assert!(x.try_gelu_tanh_backward(&x.ones_like())?.allclose(
    ///     &Tensor::from_vec(vec![-0.08296408384578255, 0.5, 1.1277107931514332], &[3])?, 1e-12, 1e-12));
    /// assert!(x.try_gelu_tanh_backward(&Tensor::ones(&[3, 1])).is_err());
    /// # Ok::<(), sinew_tensor::TensorError>(())
    /// ```
    pub fn try_gelu_tanh_backward(&self, grad: &Tensor) -> Result<Tensor> {
        const OP: &str = "gelu_tanh_backward";
        let x = backward_operands(OP, self, grad)?;
        with_float!(x.dtype(), OP, |T| x.try_zip_with::<T, T>(grad, OP, &GeluTanhBackward))
    }

    /// Gradient of [`Tensor::gelu_tanh`] at this input (PyTorch's
    /// `aten::gelu_backward(grad, x, approximate='tanh')`). One pass; the result is
    /// contiguous, of the input's shape.
    ///
    /// # Panics
    /// As [`Tensor::try_gelu_tanh_backward`] errs; the message names the op and both shapes.
    ///
    /// ```
    /// use sinew_tensor::Tensor;
    /// let x = Tensor::from_vec(vec![-1.0f64, 0.0, 1.5], &[3])?;
    /// let dx = x.gelu_tanh_backward(&x.ones_like());
    /// let torch = Tensor::from_vec(vec![-0.08296408384578255, 0.5, 1.1277107931514332], &[3])?;
    /// assert!(dx.allclose(&torch, 1e-12, 1e-12));
    /// # Ok::<(), sinew_tensor::TensorError>(())
    /// ```
    #[track_caller]
    pub fn gelu_tanh_backward(&self, grad: &Tensor) -> Tensor {
        or_panic(self.try_gelu_tanh_backward(grad))
    }
}

impl Tensor {
    /// `-x`.
    ///
    /// ```
    /// use sinew_tensor::Tensor;
    /// let t = Tensor::from_vec(vec![1i64, -2], &[2])?;
    /// assert_eq!(t.neg().to_vec::<i64>(), vec![-1, 2]);  // also -&t
    /// # Ok::<(), sinew_tensor::TensorError>(())
    /// ```
    pub fn neg(&self) -> Tensor {
        with_elem!(self.dtype(), |T| self.map::<T, T>(|x| T::ZERO - x))
    }

    /// `|x|`.
    ///
    /// ```
    /// use sinew_tensor::Tensor;
    /// let t = Tensor::from_vec(vec![-3.0f32, 0.0, 2.0], &[3])?;
    /// assert_eq!(t.abs().to_vec::<f32>(), vec![3.0, 0.0, 2.0]);
    /// # Ok::<(), sinew_tensor::TensorError>(())
    /// ```
    pub fn abs(&self) -> Tensor {
        with_elem!(self.dtype(), |T| self.map::<T, T>(|x| if x < T::ZERO { T::ZERO - x } else { x }))
    }

    /// `x²`.
    ///
    /// ```
    /// use sinew_tensor::Tensor;
    /// let t = Tensor::from_vec(vec![-3i64, 4], &[2])?;
    /// assert_eq!(t.square().to_vec::<i64>(), vec![9, 16]);
    /// # Ok::<(), sinew_tensor::TensorError>(())
    /// ```
    pub fn square(&self) -> Tensor {
        with_elem!(self.dtype(), |T| self.map::<T, T>(|x| x * x))
    }

    /// Sign: -1, 0 or 1 (NaN stays NaN).
    ///
    /// ```
    /// use sinew_tensor::Tensor;
    /// let t = Tensor::from_vec(vec![-2.5f32, 0.0, 7.0], &[3])?;
    /// assert_eq!(t.sign().to_vec::<f32>(), vec![-1.0, 0.0, 1.0]);
    /// # Ok::<(), sinew_tensor::TensorError>(())
    /// ```
    pub fn sign(&self) -> Tensor {
        with_elem!(self.dtype(), |T| self.map::<T, T>(|x| {
            if x > T::ZERO {
                T::ONE
            } else if x < T::ZERO {
                T::ZERO - T::ONE
            } else {
                x
            }
        }))
    }

    /// `max(x, 0)`.
    ///
    /// ```
    /// use sinew_tensor::Tensor;
    /// let t = Tensor::from_vec(vec![-1.0f32, 2.0], &[2])?;
    /// assert_eq!(t.relu().to_vec::<f32>(), vec![0.0, 2.0]);
    /// # Ok::<(), sinew_tensor::TensorError>(())
    /// ```
    pub fn relu(&self) -> Tensor {
        // `x > 0 ? x : 0` keeps NaN as NaN like PyTorch (NaN > 0 is false, but we test `<=`).
        with_elem!(self.dtype(), |T| self.map::<T, T>(|x| if x <= T::ZERO { T::ZERO } else { x }))
    }

    /// Clamps into `[min, max]`; either bound may be absent (`torch.clamp`).
    ///
    /// ```
    /// use sinew_tensor::Tensor;
    /// let t = Tensor::arange(0.0, 5.0, 1.0).clamp(Some(1.0), Some(3.0));
    /// assert_eq!(t.to_vec::<f32>(), vec![1.0, 1.0, 2.0, 3.0, 3.0]);
    /// ```
    pub fn clamp(&self, min: Option<f64>, max: Option<f64>) -> Tensor {
        with_elem!(self.dtype(), |T| {
            let lo = min.map(T::from_f64);
            let hi = max.map(T::from_f64);
            self.map::<T, T>(move |x| {
                let mut y = x;
                if let Some(lo) = lo
                    && y < lo
                {
                    y = lo;
                }
                if let Some(hi) = hi
                    && y > hi
                {
                    y = hi;
                }
                y
            })
        })
    }

    /// Leaky ReLU: `x` for `x > 0`, else `negative_slope·x` (PyTorch's default slope is 0.01).
    ///
    /// ```
    /// use sinew_tensor::Tensor;
    /// let t = Tensor::from_vec(vec![-2.0f32, 3.0], &[2])?;
    /// assert_eq!(t.leaky_relu(0.01).to_vec::<f32>(), vec![-0.02, 3.0]);  // F.leaky_relu(t)
    /// # Ok::<(), sinew_tensor::TensorError>(())
    /// ```
    pub fn leaky_relu(&self, negative_slope: f64) -> Tensor {
        let t = self.as_float();
        with_float!(t.dtype(), "leaky_relu", |T| {
            let s = T::from_f64(negative_slope);
            t.map::<T, T>(move |x| if x > T::ZERO { x } else { x * s })
        })
    }

    /// ELU: `x` for `x > 0`, else `alpha·(e^x - 1)` (default alpha 1).
    ///
    /// ```
    /// use sinew_tensor::Tensor;
    /// let t = Tensor::from_vec(vec![-1.0f64, 2.0], &[2])?;
    /// assert_eq!(t.elu(1.0).to_vec::<f64>(), vec![(-1f64).exp_m1(), 2.0]);  // F.elu(t)
    /// # Ok::<(), sinew_tensor::TensorError>(())
    /// ```
    pub fn elu(&self, alpha: f64) -> Tensor {
        let t = self.as_float();
        with_float!(t.dtype(), "elu", |T| {
            let a = T::from_f64(alpha);
            t.map::<T, T>(move |x| if x > T::ZERO { x } else { a * x.exp_m1() })
        })
    }

    /// Softplus `ln(1 + e^(beta·x)) / beta`, linear above `threshold` (PyTorch: beta 1,
    /// threshold 20).
    ///
    /// ```
    /// use sinew_tensor::Tensor;
    /// let t = Tensor::from_vec(vec![0.0f64, 30.0], &[2])?;
    /// let y = t.softplus(1.0, 20.0);  // F.softplus(t): linear above the threshold
    /// assert_eq!(y.to_vec::<f64>(), vec![2f64.ln(), 30.0]);
    /// # Ok::<(), sinew_tensor::TensorError>(())
    /// ```
    pub fn softplus(&self, beta: f64, threshold: f64) -> Tensor {
        let t = self.as_float();
        with_float!(t.dtype(), "softplus", |T| {
            let (b, th) = (T::from_f64(beta), T::from_f64(threshold));
            t.map::<T, T>(move |x| if x * b > th { x } else { Float::exp(x * b).ln_1p() / b })
        })
    }

    /// `x^exponent` for a scalar exponent (`torch.pow(x, float)`).
    ///
    /// ```
    /// use sinew_tensor::Tensor;
    /// let t = Tensor::arange(1.0, 4.0, 1.0).powf(2.0);
    /// assert_eq!(t.to_vec::<f32>(), vec![1.0, 4.0, 9.0]);
    /// ```
    pub fn powf(&self, exponent: f64) -> Tensor {
        let t = self.as_float();
        with_float!(t.dtype(), "powf", |T| {
            let e = T::from_f64(exponent);
            if exponent == 2.0 {
                t.map::<T, T>(|x| x * x)
            } else if exponent == 1.0 {
                t.contiguous()
            } else if exponent == 0.5 {
                t.map::<T, T>(|x| x.sqrt())
            } else if exponent.fract() == 0.0 && exponent.abs() <= 64.0 {
                let n = exponent as i32;
                t.map::<T, T>(move |x| x.powi(n))
            } else {
                t.map::<T, T>(move |x| x.powf(e))
            }
        })
    }

    /// Whether each element is NaN, as a 0/1 mask of the same dtype.
    ///
    /// ```
    /// use sinew_tensor::Tensor;
    /// let t = Tensor::from_vec(vec![1.0f32, f32::NAN, f32::INFINITY], &[3])?;
    /// assert_eq!(t.isnan().to_vec::<f32>(), vec![0.0, 1.0, 0.0]);
    /// # Ok::<(), sinew_tensor::TensorError>(())
    /// ```
    pub fn isnan(&self) -> Tensor {
        match self.dtype() {
            DType::I64 => self.zeros_like(),
            dt => {
                with_float!(dt, "isnan", |T| self.map::<T, T>(|x| if x.is_nan() { T::ONE } else { T::ZERO }))
            }
        }
    }

    /// Whether any element is NaN or infinite.
    ///
    /// ```
    /// use sinew_tensor::Tensor;
    /// assert!(!Tensor::ones(&[3]).has_non_finite());
    /// assert!(Tensor::from_vec(vec![1.0f32, f32::INFINITY], &[2])?.has_non_finite());
    /// assert!(Tensor::ones(&[1]).div_scalar(0.0).has_non_finite());
    /// # Ok::<(), sinew_tensor::TensorError>(())
    /// ```
    pub fn has_non_finite(&self) -> bool {
        match self.dtype() {
            DType::I64 => false,
            dt => with_float!(dt, "has_non_finite", |T| self
                .contiguous_slice::<T>()
                .iter()
                .any(|x| !x.is_finite())),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::f64::consts::{FRAC_1_SQRT_2, PI};

    use proptest::prelude::*;

    use crate::{DType, Generator, Tensor};

    fn t64(v: &[f64]) -> Tensor {
        Tensor::from_vec(v.to_vec(), &[v.len()]).unwrap()
    }

    #[test]
    fn activations_match_definitions() {
        let x = t64(&[-2.0, -0.5, 0.0, 0.5, 2.0]);
        let v = x.to_vec::<f64>();
        let close = |a: Vec<f64>, b: Vec<f64>| a.iter().zip(&b).all(|(a, b)| (a - b).abs() < 1e-12);
        assert!(close(x.silu().to_vec(), v.iter().map(|x| x / (1.0 + (-x).exp())).collect()));
        assert!(close(
            x.elu(1.0).to_vec(),
            v.iter().map(|&x| if x > 0.0 { x } else { x.exp() - 1.0 }).collect()
        ));
        assert!(close(x.softplus(1.0, 20.0).to_vec(), v.iter().map(|x| (1.0 + x.exp()).ln()).collect()));
        assert!(close(
            x.leaky_relu(0.1).to_vec(),
            v.iter().map(|&x| if x > 0.0 { x } else { 0.1 * x }).collect()
        ));
    }

    #[test]
    fn extreme_inputs_stay_finite() {
        let x = t64(&[-800.0, 800.0]);
        assert_eq!(x.sigmoid().to_vec::<f64>(), vec![0.0, 1.0]);
        assert_eq!(x.softplus(1.0, 20.0).to_vec::<f64>(), vec![0.0, 800.0]);
        assert_eq!(x.silu().to_vec::<f64>(), vec![-0.0, 800.0]);
    }

    #[test]
    fn integer_tensors_promote_for_float_functions() {
        let x = Tensor::from_vec(vec![0i64, 1], &[2]).unwrap();
        assert_eq!(x.exp().dtype(), DType::F32);
        assert_eq!(x.neg().to_vec::<i64>(), vec![0, -1]);
    }

    #[test]
    fn map_handles_strided_views() {
        let t = Tensor::arange(0.0, 6.0, 1.0).reshape(&[2, 3]).t();
        assert_eq!(t.square().to_vec::<f32>(), vec![0.0, 9.0, 1.0, 16.0, 4.0, 25.0]);
    }

    #[test]
    fn large_maps_are_parallel_and_exact() {
        let n = 1 << 18;
        let t = Tensor::arange(0.0, n as f64, 1.0);
        let y = t.neg().to_vec::<f32>();
        assert!(y.iter().enumerate().all(|(i, &v)| v == -(i as f32)));
    }

    /// `Var::gelu`'s composed gradient, in tensor ops.
    fn gelu_backward_composed(x: &Tensor, g: &Tensor) -> Tensor {
        let cdf = x.mul_scalar(FRAC_1_SQRT_2).erf().mul_scalar(0.5).add_scalar(0.5);
        let pdf = x.square().mul_scalar(-0.5).exp().mul_scalar(1.0 / (2.0 * PI).sqrt());
        g.mul(&cdf.add(&x.mul(&pdf)))
    }

    /// `Var::gelu_tanh`'s composed gradient, in tensor ops.
    fn gelu_tanh_backward_composed(x: &Tensor, g: &Tensor) -> Tensor {
        let k = (2.0 / PI).sqrt();
        let x2 = x.square();
        let t = x.add(&x2.mul(x).mul_scalar(0.044715)).mul_scalar(k).tanh();
        let dt = t.square().rsub_scalar(1.0).mul(&x2.mul_scalar(3.0 * 0.044715 * k).add_scalar(k));
        g.mul(&t.add_scalar(1.0).mul_scalar(0.5).add(&x.mul_scalar(0.5).mul(&dt)))
    }

    /// Largest `|a - b| / max(|b|, 1)`.
    fn max_rel_diff(a: &Tensor, b: &Tensor) -> f64 {
        assert_eq!(a.dims(), b.dims());
        let (a, b) = (a.to_vec::<f64>(), b.to_vec::<f64>());
        a.iter().zip(&b).map(|(x, y)| (x - y).abs() / y.abs().max(1.0)).fold(0.0, f64::max)
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(24))]

        /// The fused kernels equal the composed formulas of their `Var` rules, over shapes,
        /// values as wide as ±12 (both tails) and transposed or broadcast operands.
        #[test]
        fn gelu_backward_is_the_composed_formula(
            shape in proptest::collection::vec(1usize..6, 0..4),
            scale in 0.5f64..4.0,
            seed in any::<u64>(),
        ) {
            let mut rng = Generator::new(seed);
            let x = Tensor::randn_with(&shape, DType::F64, &mut rng).mul_scalar(scale);
            let g = Tensor::randn_with(&shape, DType::F64, &mut rng);
            let cases = [
                (x.clone(), g.clone()),
                (x.t().contiguous().t(), g.t().contiguous().t()), // strided operands
                (x.clone(), Tensor::scalar(1.5f64).broadcast_to(&shape)), // a broadcast gradient
            ];
            for (x, g) in cases {
                let fused = x.gelu_backward(&g);
                prop_assert!(fused.is_contiguous() && fused.dims() == x.dims());
                prop_assert!(max_rel_diff(&fused, &gelu_backward_composed(&x, &g)) <= 1e-15);
                let fused = x.gelu_tanh_backward(&g);
                prop_assert!(max_rel_diff(&fused, &gelu_tanh_backward_composed(&x, &g)) <= 1e-15);
                // f32 follows f64 to f32 accuracy (worst seen over 2·10⁵ values of spread 4:
                // 1.5e-7 exact; 1.4e-6 tanh, whose derivative multiplies tanh_f32's few-ulp
                // error by up to |x|·k·(1 + 0.134·x²)/2)
                let (x32, g32) = (x.to_dtype(DType::F32), g.to_dtype(DType::F32));
                let want = gelu_backward_composed(&x32.to_dtype(DType::F64), &g32.to_dtype(DType::F64));
                prop_assert!(max_rel_diff(&x32.gelu_backward(&g32), &want) <= 1e-6);
                let want = gelu_tanh_backward_composed(&x32.to_dtype(DType::F64), &g32.to_dtype(DType::F64));
                prop_assert!(max_rel_diff(&x32.gelu_tanh_backward(&g32), &want) <= 1e-5);
            }
        }
    }

    #[test]
    fn gelu_backward_in_parallel_chunks_and_at_the_extremes() {
        let n = 3 << 16; // above the parallel threshold, not a multiple of the chunk
        let mut rng = Generator::new(7);
        let x = Tensor::randn_with(&[n], DType::F32, &mut rng).mul_scalar(3.0);
        let g = Tensor::randn_with(&[n], DType::F32, &mut rng);
        let want = gelu_backward_composed(&x.to_dtype(DType::F64), &g.to_dtype(DType::F64));
        assert!(max_rel_diff(&x.gelu_backward(&g), &want) <= 1e-6);
        let x = Tensor::from_vec(vec![f32::NEG_INFINITY, -40.0, -0.0, 40.0, f32::INFINITY, f32::NAN], &[6])
            .unwrap();
        let d = x.gelu_backward(&x.ones_like()).to_vec::<f32>();
        // torch.ops.aten.gelu_backward(torch.ones(6), x): ±∞·φ(±∞) = ±∞·0 is NaN there too
        assert_eq!(&d[1..4], &[0.0, 0.5, 1.0]);
        assert!(d[0].is_nan() && d[4].is_nan() && d[5].is_nan());
        // integer inputs count as f32
        let xi = Tensor::from_vec(vec![0i64, 1], &[2]).unwrap();
        assert_eq!(xi.gelu_backward(&Tensor::ones(&[2])).dtype(), DType::F32);
    }

    #[test]
    fn gelu_backward_checks_its_operands() {
        let x = Tensor::zeros(&[2, 3]);
        let err = x.try_gelu_backward(&Tensor::zeros(&[3, 2])).unwrap_err().to_string();
        assert!(err.contains("gelu_backward") && err.contains("[2, 3]") && err.contains("[3, 2]"), "{err}");
        let err =
            x.try_gelu_tanh_backward(&Tensor::zeros_dtype(&[2, 3], DType::F64)).unwrap_err().to_string();
        assert!(err.contains("gelu_tanh_backward") && err.contains("float64"), "{err}");
        assert!(x.try_gelu_backward(&Tensor::zeros_dtype(&[2, 3], DType::I64)).is_err());
        let panic = std::panic::catch_unwind(|| x.gelu_backward(&Tensor::zeros(&[6]))).unwrap_err();
        let msg = panic.downcast_ref::<String>().unwrap();
        assert!(msg.contains("gelu_backward") && msg.contains("[2, 3]") && msg.contains("[6]"), "{msg}");
    }
}

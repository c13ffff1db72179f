//! Elementwise functions of one tensor: arithmetic, transcendental functions and the
//! activations (`relu`, `gelu`, `silu`, ...). Float-only functions applied to an `i64`
//! tensor compute in `f32`, as PyTorch promotes integers.

use crate::dtype::{DType, Element, Float};
use crate::parallel;
use crate::shape;
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
        assert_eq!(self.dtype(), T::DTYPE, "map: tensor is {}, closure takes {}", self.dtype(), T::DTYPE);
        let n = self.numel();
        if let Some(src) = self.as_slice::<T>() {
            assert_eq!(src.len(), n, "map: contiguous slice of the wrong length");
            // SAFETY: `src` has `n` elements (asserted), so for a chunk of `start..start +
            // chunk.len()` within `0..n` the zip runs over the whole chunk and writes each
            // element once.
            let out = unsafe {
                parallel::build_vec(n, |start, chunk| {
                    crate::simd::vectorized(|| {
                        for (o, &x) in chunk.iter_mut().zip(&src[start..]) {
                            o.write(f(x));
                        }
                    })
                })
            };
            return Tensor::from_parts(out, self.dims());
        }
        let src = self.storage_slice::<T>();
        let mut out = crate::buffer::take(n);
        shape::walk(self.dims(), [self.strides()], [self.layout().offset], |[o], len, [s]| {
            match s {
                1 => out.extend(src[o..o + len].iter().map(|&x| f(x))),
                0 => out.extend(std::iter::repeat_n(f(src[o]), len)), // a broadcast dimension
                _ => out.extend(src[o..].iter().step_by(s).take(len).map(|&x| f(x))),
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
/// with `T: Float` bound to `f32` or `f64`.
macro_rules! float_unary {
    ($($(#[$m:meta])* $name:ident => |$x:ident| $body:expr;)*) => {
        impl Tensor {
            $(
                $(#[$m])*
                pub fn $name(&self) -> Tensor {
                    let t = self.as_float();
                    with_float!(t.dtype(), stringify!($name), |T| t.map::<T, T>(|$x: T| $body))
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
    gelu => |x| cast::<T>(0.5) * x * (T::ONE + Float::erf(x * cast::<T>(std::f64::consts::FRAC_1_SQRT_2)));
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
        let k = cast::<T>((2.0 / std::f64::consts::PI).sqrt());
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
    use crate::{DType, Tensor};

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
}

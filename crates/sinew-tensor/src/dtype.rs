//! Element types: the runtime [`DType`] tag and the [`Element`] / [`Float`] traits that
//! generic kernels are written against.

use std::fmt;

/// The element type of a [`Tensor`](crate::Tensor), chosen at run time.
///
/// `F32` is the default for parameters and activations, `F64` serves gradient checks and
/// precision-sensitive work, `I64` holds indices (class targets, embedding ids).
///
/// ```
/// use sinew_tensor::{DType, Tensor};
/// let t = Tensor::zeros(&[2, 3]);
/// assert_eq!(t.dtype(), DType::F32);
/// assert_eq!(t.to_dtype(DType::F64).dtype(), DType::F64);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub enum DType {
    /// 32-bit IEEE float (the default).
    #[default]
    F32,
    /// 64-bit IEEE float.
    F64,
    /// 64-bit signed integer, for indices.
    I64,
}

impl DType {
    /// Size of one element in bytes.
    ///
    /// ```
    /// use sinew_tensor::DType;
    /// assert_eq!(DType::F32.size_in_bytes(), 4);   // torch.float32.itemsize
    /// assert_eq!(DType::I64.size_in_bytes(), 8);
    /// ```
    pub const fn size_in_bytes(self) -> usize {
        match self {
            DType::F32 => 4,
            DType::F64 | DType::I64 => 8,
        }
    }

    /// Whether this is a floating-point type.
    ///
    /// ```
    /// use sinew_tensor::DType;
    /// assert!(DType::F64.is_float());
    /// assert!(!DType::I64.is_float());
    /// ```
    pub const fn is_float(self) -> bool {
        matches!(self, DType::F32 | DType::F64)
    }

    /// The type both operands of a binary op are converted to, as in PyTorch:
    /// `F64` beats `F32` beats `I64`.
    ///
    /// ```
    /// use sinew_tensor::DType;
    /// assert_eq!(DType::I64.promote(DType::F32), DType::F32);
    /// assert_eq!(DType::F32.promote(DType::F64), DType::F64);
    /// assert_eq!(DType::I64.promote(DType::I64), DType::I64);
    /// ```
    pub fn promote(self, other: DType) -> DType {
        use DType::*;
        match (self, other) {
            (F64, _) | (_, F64) => F64,
            (F32, _) | (_, F32) => F32,
            (I64, I64) => I64,
        }
    }

    /// PyTorch's spelling (`float32`, `float64`, `int64`).
    ///
    /// ```
    /// use sinew_tensor::DType;
    /// assert_eq!(DType::F32.name(), "float32");
    /// assert_eq!(DType::I64.to_string(), "int64");
    /// ```
    pub const fn name(self) -> &'static str {
        match self {
            DType::F32 => "float32",
            DType::F64 => "float64",
            DType::I64 => "int64",
        }
    }
}

impl fmt::Display for DType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

mod sealed {
    pub trait Sealed {}
    impl Sealed for f32 {}
    impl Sealed for f64 {}
    impl Sealed for i64 {}
}

/// A Rust type that a tensor can hold: `f32`, `f64` or `i64`. Sealed.
pub trait Element:
    sealed::Sealed
    + Copy
    + Send
    + Sync
    + PartialOrd
    + PartialEq
    + fmt::Debug
    + fmt::Display
    + Default
    + std::ops::Add<Output = Self>
    + std::ops::Sub<Output = Self>
    + std::ops::Mul<Output = Self>
    + std::ops::AddAssign
    + 'static
{
    /// The matching runtime tag.
    const DTYPE: DType;
    /// Additive identity.
    const ZERO: Self;
    /// Multiplicative identity.
    const ONE: Self;
    /// Conversion from `f64` (rounding or truncating toward zero for `i64`).
    fn from_f64(v: f64) -> Self;
    /// Conversion to `f64`.
    fn to_f64(self) -> f64;
    /// Conversion from `i64`.
    fn from_i64(v: i64) -> Self;
    /// Conversion to `i64` (truncating toward zero for floats).
    fn to_i64(self) -> i64;
    /// Whether the value is NaN (never, for integers).
    fn is_nan(self) -> bool;
}

macro_rules! impl_element {
    ($t:ty, $dt:ident, $zero:expr, $one:expr) => {
        impl_element!($t, $dt, $zero, $one, |v| v != v);
    };
    ($t:ty, $dt:ident, $zero:expr, $one:expr, |$v:ident| $nan:expr) => {
        impl Element for $t {
            const DTYPE: DType = DType::$dt;
            const ZERO: Self = $zero;
            const ONE: Self = $one;
            #[inline(always)]
            fn from_f64(v: f64) -> Self {
                v as $t
            }
            #[inline(always)]
            fn to_f64(self) -> f64 {
                self as f64
            }
            #[inline(always)]
            fn from_i64(v: i64) -> Self {
                v as $t
            }
            #[inline(always)]
            fn to_i64(self) -> i64 {
                self as i64
            }
            #[inline(always)]
            #[allow(clippy::eq_op)]
            fn is_nan(self) -> bool {
                let $v = self;
                $nan
            }
        }
    };
}
impl_element!(f32, F32, 0.0, 1.0);
impl_element!(f64, F64, 0.0, 1.0);
impl_element!(i64, I64, 0, 1, |_v| false);

/// A floating-point element (`f32` or `f64`): the math every float kernel needs.
pub trait Float:
    Element
    + faer::traits::RealField
    + std::ops::Neg<Output = Self>
    + std::ops::Div<Output = Self>
    + std::ops::SubAssign
    + std::ops::MulAssign
    + std::ops::DivAssign
    + std::iter::Sum
{
    /// Positive infinity.
    const INFINITY: Self;
    /// Negative infinity.
    const NEG_INFINITY: Self;
    /// Not a number.
    const NAN: Self;
    /// Machine epsilon.
    const EPSILON: Self;
    /// `e^x`.
    fn exp(self) -> Self;
    /// Natural logarithm.
    fn ln(self) -> Self;
    /// `ln(1 + x)`, accurate near 0.
    fn ln_1p(self) -> Self;
    /// `e^x - 1`, accurate near 0.
    fn exp_m1(self) -> Self;
    /// Square root.
    fn sqrt(self) -> Self;
    /// Absolute value.
    fn abs(self) -> Self;
    /// Sine.
    fn sin(self) -> Self;
    /// Cosine.
    fn cos(self) -> Self;
    /// Hyperbolic tangent.
    fn tanh(self) -> Self;
    /// Error function.
    fn erf(self) -> Self;
    /// `self^e` for a float exponent.
    fn powf(self, e: Self) -> Self;
    /// `self^n` for an integer exponent.
    fn powi(self, n: i32) -> Self;
    /// Larger of two values; NaN if either is NaN (PyTorch's `maximum`).
    fn max_nan(self, other: Self) -> Self;
    /// Smaller of two values; NaN if either is NaN (PyTorch's `minimum`).
    fn min_nan(self, other: Self) -> Self;
    /// Whether the value is finite.
    fn is_finite(self) -> bool;
    /// Sign: -1, 0 or 1 (NaN stays NaN).
    fn signum0(self) -> Self;
    /// Round to the nearest integer, ties to even (PyTorch's `round`).
    fn round_even(self) -> Self;
    /// Largest integer not above.
    fn floor(self) -> Self;
    /// Smallest integer not below.
    fn ceil(self) -> Self;
}

/// `e^x` for `f32` without a libm call: Cody–Waite range reduction, a degree-6
/// polynomial, and a two-step power-of-two scale; branch-free, so LLVM vectorises loops
/// over it. Within 2 ulp of the correctly rounded result; NaN, ±∞, overflow and
/// underflow behave as `f32::exp`.
#[inline(always)]
pub fn exp_f32(x: f32) -> f32 {
    const LOG2E: f32 = std::f32::consts::LOG2_E;
    const LN2_HI: f32 = 0.693_145_75;
    const LN2_LO: f32 = 1.428_606_8e-6;
    const ROUND: f32 = 12_582_912.0; // 1.5·2^23: adding and subtracting rounds to an integer
    let x = x.clamp(-104.0, 89.0); // NaN passes through
    let shifted = x * LOG2E + ROUND;
    let n = shifted - ROUND;
    let r = (x - n * LN2_HI) - n * LN2_LO;
    let p = 1.0
        + r * (1.0
            + r * (0.5
                + r * (1.0 / 6.0
                    + r * (1.0 / 24.0 + r * (1.0 / 120.0 + r * (1.0 / 720.0 + r * (1.0 / 5040.0)))))));
    // The integer n sits in the low mantissa bits of `shifted` (|n| < 2^22): read it from
    // the bits, which vectorises, where the saturating `n as i32` compiles to scalar code.
    let n = (shifted.to_bits() as i32).wrapping_sub(ROUND.to_bits() as i32);
    let (n1, n2) = (n >> 1, n - (n >> 1));
    let s1 = f32::from_bits(((n1 + 127) as u32) << 23);
    let s2 = f32::from_bits(((n2 + 127) as u32) << 23);
    p * s1 * s2
}

/// `tanh(x)` for `f32` without a libm call: an odd Taylor polynomial near 0 and
/// `1 - 2/(e^{2|x|} + 1)` elsewhere, blended without branches (vectorisable). Within a few
/// ulp.
#[inline(always)]
pub fn tanh_f32(x: f32) -> f32 {
    let a = x.abs();
    let x2 = x * x;
    // tanh x = x·(1 - x²/3 + 2x⁴/15 - ...), accurate to ~1e-9 relative for |x| < 0.55
    let small = x
        * (1.0
            + x2 * (-1.0 / 3.0
                + x2 * (2.0 / 15.0
                    + x2 * (-17.0 / 315.0
                        + x2 * (62.0 / 2835.0
                            + x2 * (-1382.0 / 155_925.0
                                + x2 * (21_844.0 / 6_081_075.0
                                    + x2 * (-929_569.0 / 638_512_875.0
                                        + x2 * (6_404_582.0 / 10_854_718_875.0)))))))));
    let large = (1.0 - 2.0 / (exp_f32(2.0 * a) + 1.0)).copysign(x);
    if a < 0.55 { small } else { large }
}

/// `erf(x)` for `f32` without a libm call, branch-free (vectorisable): `x + x·P(x²)` for
/// `|x| < 1` and `1 - R(|x| - 2.46)` (sign restored) above, with `|x|` clamped at 3.92,
/// where `erf` rounds to ±1. `P` (degree 6) and `R` (degree 15) are minimax fits to
/// `erf(x)/x - 1` on `[0, 1]` (relative error 1.2e-9) and to `erfc` on `[1, 3.92]`
/// (absolute error 5e-10), each evaluated as independent even and odd (for `R`: four)
/// parts, which halves the dependency chains of plain Horner. Checked against `f64` erf
/// at every `f32` in `[0, 4.5]`: within 1 ulp of the correctly rounded result (absolute
/// error below 9e-8); odd, and ±0, ±∞ and NaN behave as libm's `erff`.
#[inline(always)]
pub fn erf_f32(x: f32) -> f32 {
    let a = x.abs();
    let s = x * x;
    let s2 = s * s;
    let even = 0.128_379_17 + s2 * (0.112_835_854 + s2 * (0.005_188_334_3 + s2 * 7.854_044e-5));
    let odd = -0.376_126_26 + s2 * (-0.026_853_815 + s2 * -0.000_801_025_1);
    let small = x + x * (even + s * odd);
    let t = a.clamp(1.0, 3.92) - 2.46; // NaN passes through
    let t2 = t * t;
    let t4 = t2 * t2;
    let r0 = 0.000_503_353_7 + t4 * (0.009_914_221 + t4 * (-0.000_355_739_18 + t4 * 1.737_298_8e-5));
    let r1 = -0.002_656_303_3 + t4 * (-0.006_805_404_6 + t4 * (0.000_284_649_64 + t4 * -2.962_647_4e-6));
    let r2 = 0.006_534_516 + t4 * (0.002_937_059_6 + t4 * (-7.594_265_5e-5 + t4 * -1.100_145_3e-6));
    let r3 = -0.009_831_299 + t4 * (-0.000_446_261_98 + t4 * (-1.552_596_4e-5 + t4 * 3.583_804_5e-7));
    let erfc = (r0 + t * r1) + t2 * (r2 + t * r3);
    let large = (1.0 - erfc).copysign(x);
    if a < 1.0 { small } else { large }
}

macro_rules! impl_float {
    ($t:ty, $erf:path) => {
        impl_float!($t, $erf, <$t>::exp, <$t>::tanh);
    };
    ($t:ty, $erf:path, $exp:expr, $tanh:expr) => {
        impl Float for $t {
            const INFINITY: Self = <$t>::INFINITY;
            const NEG_INFINITY: Self = <$t>::NEG_INFINITY;
            const NAN: Self = <$t>::NAN;
            const EPSILON: Self = <$t>::EPSILON;
            #[inline(always)]
            fn exp(self) -> Self {
                $exp(self)
            }
            #[inline(always)]
            fn ln(self) -> Self {
                <$t>::ln(self)
            }
            #[inline(always)]
            fn ln_1p(self) -> Self {
                <$t>::ln_1p(self)
            }
            #[inline(always)]
            fn exp_m1(self) -> Self {
                <$t>::exp_m1(self)
            }
            #[inline(always)]
            fn sqrt(self) -> Self {
                <$t>::sqrt(self)
            }
            #[inline(always)]
            fn abs(self) -> Self {
                <$t>::abs(self)
            }
            #[inline(always)]
            fn sin(self) -> Self {
                <$t>::sin(self)
            }
            #[inline(always)]
            fn cos(self) -> Self {
                <$t>::cos(self)
            }
            #[inline(always)]
            fn tanh(self) -> Self {
                $tanh(self)
            }
            #[inline(always)]
            fn erf(self) -> Self {
                $erf(self)
            }
            #[inline(always)]
            fn powf(self, e: Self) -> Self {
                <$t>::powf(self, e)
            }
            #[inline(always)]
            fn powi(self, n: i32) -> Self {
                <$t>::powi(self, n)
            }
            #[inline(always)]
            fn max_nan(self, other: Self) -> Self {
                if self.is_nan() || other.is_nan() {
                    <$t>::NAN
                } else if self >= other {
                    self
                } else {
                    other
                }
            }
            #[inline(always)]
            fn min_nan(self, other: Self) -> Self {
                if self.is_nan() || other.is_nan() {
                    <$t>::NAN
                } else if self <= other {
                    self
                } else {
                    other
                }
            }
            #[inline(always)]
            fn is_finite(self) -> bool {
                <$t>::is_finite(self)
            }
            #[inline(always)]
            fn signum0(self) -> Self {
                if self > 0.0 {
                    1.0
                } else if self < 0.0 {
                    -1.0
                } else {
                    self
                }
            }
            #[inline(always)]
            fn round_even(self) -> Self {
                <$t>::round_ties_even(self)
            }
            #[inline(always)]
            fn floor(self) -> Self {
                <$t>::floor(self)
            }
            #[inline(always)]
            fn ceil(self) -> Self {
                <$t>::ceil(self)
            }
        }
    };
}
impl_float!(f32, erf_f32, exp_f32, tanh_f32);
impl_float!(f64, libm::erf);

#[cfg(test)]
mod tests {
    use super::{erf_f32, exp_f32, tanh_f32};

    fn ulps(a: f32, b: f32) -> u32 {
        if a == b {
            return 0;
        }
        (a.to_bits() as i64 - b.to_bits() as i64).unsigned_abs() as u32
    }

    #[test]
    fn fast_exp_is_within_two_ulp() {
        let mut worst = 0;
        let mut x = -103.0f32;
        while x < 88.7 {
            let want = (x as f64).exp() as f32;
            worst = worst.max(ulps(exp_f32(x), want));
            x += 0.0137;
        }
        assert!(worst <= 2, "worst {worst} ulp");
        assert_eq!(exp_f32(0.0), 1.0);
        assert_eq!(exp_f32(f32::INFINITY), f32::INFINITY);
        assert_eq!(exp_f32(f32::NEG_INFINITY), 0.0);
        assert_eq!(exp_f32(100.0), f32::INFINITY);
        assert!(exp_f32(f32::NAN).is_nan());
    }

    #[test]
    fn fast_tanh_is_within_a_few_ulp() {
        let mut worst = 0;
        let mut x = -12.0f32;
        while x < 12.0 {
            let want = (x as f64).tanh() as f32;
            worst = worst.max(ulps(tanh_f32(x), want));
            x += 0.000_731;
        }
        assert!(worst <= 4, "worst {worst} ulp");
        assert_eq!(tanh_f32(0.0), 0.0);
        assert_eq!(tanh_f32(1e-30), 1e-30);
        assert_eq!(tanh_f32(f32::INFINITY), 1.0);
        assert_eq!(tanh_f32(f32::NEG_INFINITY), -1.0);
        assert!(tanh_f32(f32::NAN).is_nan());
    }

    #[test]
    fn fast_erf_is_within_one_ulp() {
        // Every 61st f32 in [0, 4.5] (where the exhaustive check found at most 1 ulp), both
        // signs, against f64 erf rounded once.
        let (mut worst, mut worst_abs) = (0, 0.0f64);
        let end = 4.5f32.to_bits();
        for bits in (0..=end).step_by(61).chain([1.0f32.to_bits() - 1, 1.0f32.to_bits()]) {
            for x in [f32::from_bits(bits), -f32::from_bits(bits)] {
                let want = libm::erf(x as f64);
                let got = erf_f32(x);
                worst = worst.max(ulps(got, want as f32));
                worst_abs = worst_abs.max((got as f64 - want).abs());
            }
        }
        assert!(worst <= 1, "worst {worst} ulp");
        assert!(worst_abs < 1e-7, "worst absolute error {worst_abs:e}");
        // ±0 keep their sign, subnormals scale by 2/√π, the tails are exactly ±1
        assert_eq!(erf_f32(0.0).to_bits(), 0.0f32.to_bits());
        assert_eq!(erf_f32(-0.0).to_bits(), (-0.0f32).to_bits());
        assert_eq!(erf_f32(1e-40), libm::erff(1e-40));
        assert_eq!(erf_f32(-f32::MIN_POSITIVE), libm::erff(-f32::MIN_POSITIVE));
        for x in [3.92f32, 4.0, 4.5, 10.0, 1e30, f32::MAX, f32::INFINITY] {
            assert_eq!(erf_f32(x), 1.0, "erf({x})");
            assert_eq!(erf_f32(-x), -1.0, "erf(-{x})");
        }
        assert_eq!(erf_f32(3.9), libm::erff(3.9));
        assert!(erf_f32(f32::NAN).is_nan());
        assert!(erf_f32(-f32::NAN).is_nan());
    }
}

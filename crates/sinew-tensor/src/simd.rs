//! Runtime choice of vector instructions. sinew is compiled for the baseline of its
//! target (SSE2 on x86-64), so loops LLVM vectorises get 4 `f32` lanes; [`vectorized`]
//! runs a loop compiled again for AVX-512 or AVX2 + FMA when the CPU has them (16 or 8
//! lanes), chosen once per process. Transcendental kernels (`exp`, `tanh`, `sigmoid`,
//! the LSTM cell) are compute-bound and gain the most.
//!
//! Results do not depend on the choice: Rust never contracts `a·b + c` into a fused
//! multiply-add unless asked (`mul_add`), and vector add, multiply, divide and square
//! root round exactly as their scalar forms do.

/// A loop to compile for several instruction sets. Closures qualify (`|| loop`), but LLVM
/// inlines a closure into the feature-specific copy only when it is small; a kernel with a
/// large body implements this trait with `#[inline(always)]` on `run`, which forces it.
pub trait Kernel {
    /// What the kernel returns.
    type Output;
    /// Runs the kernel.
    fn run(self) -> Self::Output;
}

impl<R, F: FnOnce() -> R> Kernel for F {
    type Output = R;
    #[inline(always)]
    fn run(self) -> R {
        self()
    }
}

/// An elementwise function of one value whose body `apply` is always inlined
/// (`#[inline(always)]` in the impl), so a [`MapKernel`] over it is one loop in each
/// vector copy however large the function is. A closure is only inlined below LLVM's size
/// threshold: a larger one (erf, exp and a polynomial: GELU) stays a scalar call per
/// element, and so does any function reached through a closure or a fn pointer.
pub(crate) trait UnaryFn<T, U>: Sync {
    fn apply(&self, x: T) -> U;
}

/// [`UnaryFn`] of two values.
pub(crate) trait BinaryFn<T, U>: Sync {
    fn apply(&self, x: T, y: T) -> U;
}

/// A closure as a [`UnaryFn`] or [`BinaryFn`] (inlined by LLVM's judgement, as before).
pub(crate) struct Closure<F>(pub(crate) F);

impl<T, U, F: Fn(T) -> U + Sync> UnaryFn<T, U> for Closure<F> {
    #[inline(always)]
    fn apply(&self, x: T) -> U {
        (self.0)(x)
    }
}

impl<T, U, F: Fn(T, T) -> U + Sync> BinaryFn<T, U> for Closure<F> {
    #[inline(always)]
    fn apply(&self, x: T, y: T) -> U {
        (self.0)(x, y)
    }
}

/// The loop of a unary elementwise kernel, `out[i] = f(src[i])`, as a [`Kernel`].
pub(crate) struct MapKernel<'a, T, U, F> {
    pub(crate) src: &'a [T],
    pub(crate) out: &'a mut [std::mem::MaybeUninit<U>],
    pub(crate) f: &'a F,
}

impl<T: Copy, U, F: UnaryFn<T, U>> Kernel for MapKernel<'_, T, U, F> {
    type Output = ();
    #[inline(always)]
    fn run(self) {
        for (o, &x) in self.out.iter_mut().zip(self.src) {
            o.write(self.f.apply(x));
        }
    }
}

/// [`MapKernel`] for two inputs: `out[i] = f(a[i], b[i])`.
pub(crate) struct ZipKernel<'a, T, U, F> {
    pub(crate) a: &'a [T],
    pub(crate) b: &'a [T],
    pub(crate) out: &'a mut [std::mem::MaybeUninit<U>],
    pub(crate) f: &'a F,
}

impl<T: Copy, U, F: BinaryFn<T, U>> Kernel for ZipKernel<'_, T, U, F> {
    type Output = ();
    #[inline(always)]
    fn run(self) {
        for ((o, &x), &y) in self.out.iter_mut().zip(self.a).zip(self.b) {
            o.write(self.f.apply(x, y));
        }
    }
}

/// Runs `kernel`, compiled for the widest vector instructions this CPU supports.
///
/// ```
/// let xs = vec![1.0f32; 1000];
/// let total = sinew_tensor::simd::vectorized(|| xs.iter().map(|x| x * 2.0).sum::<f32>());
/// assert_eq!(total, 2000.0);
/// ```
#[inline(always)]
pub fn vectorized<K: Kernel>(kernel: K) -> K::Output {
    #[cfg(target_arch = "x86_64")]
    {
        use std::sync::OnceLock;
        static LEVEL: OnceLock<u8> = OnceLock::new();
        let level = *LEVEL.get_or_init(|| {
            if std::is_x86_feature_detected!("avx512f") && std::is_x86_feature_detected!("fma") {
                2
            } else if std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma") {
                1
            } else {
                0
            }
        });
        match level {
            // SAFETY: the CPU has the features these functions are compiled for.
            2 => return unsafe { x86::avx512(kernel) },
            1 => return unsafe { x86::avx2(kernel) },
            _ => {}
        }
    }
    kernel.run()
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use super::Kernel;

    #[target_feature(enable = "avx512f,avx2,fma")]
    pub(super) unsafe fn avx512<K: Kernel>(kernel: K) -> K::Output {
        kernel.run()
    }

    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn avx2<K: Kernel>(kernel: K) -> K::Output {
        kernel.run()
    }
}

//! Seeded random numbers: a [`Generator`] (ChaCha12, whose whole state can be saved and
//! restored) and the random constructors `rand`, `randn`, `rand_int`, `uniform`,
//! `normal`, `bernoulli`.
//!
//! Every constructor has a form that takes a `&mut Generator` and a short form that draws
//! from a process-wide generator, seeded with 0 until [`manual_seed`] says otherwise. The
//! same seed always gives the same numbers.

use std::sync::Mutex;

use chacha20::ChaCha12Rng;
use rand::{RngExt, SeedableRng};

use crate::dtype::DType;
use crate::tensor::{Tensor, with_elem};

/// A seeded random-number generator (ChaCha12).
///
/// ```
/// use sinew_tensor::{DType, Generator, Tensor};
/// let mut g = Generator::new(42);
/// let a = Tensor::randn_with(&[3], DType::F64, &mut g);
/// let b = Tensor::randn_with(&[3], DType::F64, &mut Generator::new(42));
/// assert_eq!(a.to_vec::<f64>(), b.to_vec::<f64>());
/// ```
#[derive(Debug)]
pub struct Generator {
    rng: ChaCha12Rng,
}

impl Clone for Generator {
    fn clone(&self) -> Self {
        Generator::from_state(self.state())
    }
}

/// The complete state of a [`Generator`]: restoring it continues the exact same stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GeneratorState {
    /// The 256-bit key.
    pub seed: [u8; 32],
    /// The stream id.
    pub stream: u64,
    /// Position in the stream, in 32-bit words.
    pub word_pos: u128,
}

impl Generator {
    /// A generator seeded from a `u64`.
    pub fn new(seed: u64) -> Self {
        Generator { rng: ChaCha12Rng::seed_from_u64(seed) }
    }

    /// The state, for checkpoints.
    pub fn state(&self) -> GeneratorState {
        GeneratorState {
            seed: self.rng.get_seed(),
            stream: self.rng.get_stream(),
            word_pos: self.rng.get_word_pos(),
        }
    }

    /// A generator that continues exactly where the one that produced `state` was.
    ///
    /// ```
    /// use sinew_tensor::Generator;
    /// let mut g = Generator::new(1);
    /// g.uniform_f64();
    /// let saved = g.state();
    /// let x = g.uniform_f64();
    /// assert_eq!(Generator::from_state(saved).uniform_f64(), x);
    /// ```
    pub fn from_state(state: GeneratorState) -> Self {
        let mut rng = ChaCha12Rng::from_seed(state.seed);
        rng.set_stream(state.stream);
        rng.set_word_pos(state.word_pos);
        Generator { rng }
    }

    /// A uniform `f64` in `[0, 1)`.
    pub fn uniform_f64(&mut self) -> f64 {
        self.rng.random::<f64>()
    }

    /// A uniform `f32` in `[0, 1)`.
    pub fn uniform_f32(&mut self) -> f32 {
        self.rng.random::<f32>()
    }

    /// A standard normal sample (Box–Muller).
    pub fn normal_f64(&mut self) -> f64 {
        let u1 = 1.0 - self.uniform_f64(); // (0, 1]: ln is finite
        let u2 = self.uniform_f64();
        (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
    }

    /// A uniform integer in `low..high`.
    ///
    /// # Panics
    /// If the range is empty.
    #[track_caller]
    pub fn int_in(&mut self, low: i64, high: i64) -> i64 {
        assert!(low < high, "rand_int: empty range {low}..{high}");
        self.rng.random_range(low..high)
    }

    /// A uniform index in `0..n` (for shuffling).
    pub fn index(&mut self, n: usize) -> usize {
        self.rng.random_range(0..n)
    }

    /// Shuffles a slice in place (Fisher–Yates).
    pub fn shuffle<T>(&mut self, v: &mut [T]) {
        for i in (1..v.len()).rev() {
            let j = self.index(i + 1);
            v.swap(i, j);
        }
    }
}

static GLOBAL: Mutex<Option<Generator>> = Mutex::new(None);

/// Seeds the process-wide generator used by [`Tensor::rand`], [`Tensor::randn`] and the
/// other short forms (`torch.manual_seed`).
pub fn manual_seed(seed: u64) {
    *GLOBAL.lock().unwrap_or_else(|e| e.into_inner()) = Some(Generator::new(seed));
}

/// Runs `f` with the process-wide generator (seed 0 unless [`manual_seed`] was called).
pub fn with_global_generator<R>(f: impl FnOnce(&mut Generator) -> R) -> R {
    let mut g = GLOBAL.lock().unwrap_or_else(|e| e.into_inner());
    f(g.get_or_insert_with(|| Generator::new(0)))
}

/// A tensor of `shape` whose elements, in row-major order, are `sample()`'s successive
/// values; the shape is checked (naming `op`) before anything is drawn or allocated.
#[track_caller]
fn sampled<T: crate::tensor::StorageElement>(
    op: &'static str,
    shape: &[usize],
    mut sample: impl FnMut() -> T,
) -> Tensor {
    let n = crate::tensor::checked_numel_or_panic(op, shape);
    let mut data: Vec<T> = crate::buffer::take(n);
    data.extend((0..n).map(|_| sample()));
    Tensor::from_parts(data, shape)
}

impl Tensor {
    /// Uniform samples in `[low, high)` of type `dtype`, from `gen`.
    ///
    /// # Panics
    /// For `I64` (use [`Tensor::rand_int_with`]).
    #[track_caller]
    pub fn uniform_with(shape: &[usize], low: f64, high: f64, dtype: DType, gen_: &mut Generator) -> Tensor {
        match dtype {
            DType::F32 => {
                let (lo, w) = (low as f32, (high - low) as f32);
                sampled("uniform", shape, || lo + w * gen_.uniform_f32())
            }
            DType::F64 => sampled("uniform", shape, || low + (high - low) * gen_.uniform_f64()),
            DType::I64 => panic!("uniform: int64 is not a float type (use rand_int)"),
        }
    }

    /// Uniform samples in `[0, 1)` from `gen` (`torch.rand`).
    #[track_caller]
    pub fn rand_with(shape: &[usize], dtype: DType, gen_: &mut Generator) -> Tensor {
        Tensor::uniform_with(shape, 0.0, 1.0, dtype, gen_)
    }

    /// `f32` uniform samples in `[0, 1)` from the process-wide generator.
    ///
    /// ```
    /// use sinew_tensor::Tensor;
    /// sinew_tensor::manual_seed(7);
    /// let a = Tensor::rand(&[4]);
    /// sinew_tensor::manual_seed(7);
    /// assert_eq!(a.to_vec::<f32>(), Tensor::rand(&[4]).to_vec::<f32>());
    /// ```
    pub fn rand(shape: &[usize]) -> Tensor {
        with_global_generator(|g| Tensor::rand_with(shape, DType::F32, g))
    }

    /// Normal samples with the given mean and standard deviation, from `gen`.
    #[track_caller]
    pub fn normal_with(shape: &[usize], mean: f64, std: f64, dtype: DType, gen_: &mut Generator) -> Tensor {
        assert!(dtype.is_float(), "normal: {dtype} is not a float type");
        with_elem!(dtype, |T| sampled("normal", shape, || <T as crate::Element>::from_f64(
            mean + std * gen_.normal_f64()
        )))
    }

    /// Standard normal samples from `gen` (`torch.randn`).
    #[track_caller]
    pub fn randn_with(shape: &[usize], dtype: DType, gen_: &mut Generator) -> Tensor {
        Tensor::normal_with(shape, 0.0, 1.0, dtype, gen_)
    }

    /// `f32` standard normal samples from the process-wide generator.
    pub fn randn(shape: &[usize]) -> Tensor {
        with_global_generator(|g| Tensor::randn_with(shape, DType::F32, g))
    }

    /// Uniform `i64` samples in `low..high` from `gen` (`torch.randint`).
    #[track_caller]
    pub fn rand_int_with(shape: &[usize], low: i64, high: i64, gen_: &mut Generator) -> Tensor {
        sampled("rand_int", shape, || gen_.int_in(low, high))
    }

    /// Uniform `i64` samples in `low..high` from the process-wide generator.
    #[track_caller]
    pub fn rand_int(shape: &[usize], low: i64, high: i64) -> Tensor {
        with_global_generator(|g| Tensor::rand_int_with(shape, low, high, g))
    }

    /// A 0/1 mask of type `dtype` where each entry is 1 with probability `p` (dropout masks).
    #[track_caller]
    pub fn bernoulli_with(shape: &[usize], p: f64, dtype: DType, gen_: &mut Generator) -> Tensor {
        assert!((0.0..=1.0).contains(&p), "bernoulli: probability {p} is outside [0, 1]");
        with_elem!(dtype, |T| sampled("bernoulli", shape, || {
            if gen_.uniform_f64() < p { <T as crate::Element>::ONE } else { <T as crate::Element>::ZERO }
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normal_moments_are_right() {
        let t = Tensor::randn_with(&[20_000], DType::F64, &mut Generator::new(3));
        let mean = t.mean_all().item();
        let var = t.var(&[], true, false).item();
        assert!(mean.abs() < 0.03, "mean {mean}");
        assert!((var - 1.0).abs() < 0.05, "var {var}");
    }

    #[test]
    fn rand_int_stays_in_range_and_hits_ends() {
        let t = Tensor::rand_int_with(&[1000], -2, 3, &mut Generator::new(5)).to_vec::<i64>();
        assert!(t.iter().all(|v| (-2..3).contains(v)));
        assert!(t.contains(&-2) && t.contains(&2));
    }

    #[test]
    fn state_round_trip_continues_stream() {
        let mut g = Generator::new(9);
        let _ = Tensor::rand_with(&[13], DType::F32, &mut g);
        let mut h = Generator::from_state(g.state());
        assert_eq!(
            Tensor::rand_with(&[5], DType::F64, &mut g).to_vec::<f64>(),
            Tensor::rand_with(&[5], DType::F64, &mut h).to_vec::<f64>()
        );
    }
}

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
    ///
    /// ```
    /// use sinew_tensor::Generator;
    /// let (mut a, mut b) = (Generator::new(3), Generator::new(3));   // torch.Generator().manual_seed(3)
    /// assert_eq!(a.uniform_f64(), b.uniform_f64());
    /// assert_ne!(Generator::new(4).uniform_f64(), Generator::new(3).uniform_f64());
    /// ```
    pub fn new(seed: u64) -> Self {
        Generator { rng: ChaCha12Rng::seed_from_u64(seed) }
    }

    /// The state, for checkpoints.
    ///
    /// ```
    /// use sinew_tensor::{DType, Generator, Tensor};
    /// let mut g = Generator::new(0);
    /// let before = g.state();
    /// let _ = Tensor::rand_with(&[3], DType::F64, &mut g);   // draws 3 × 64 bits
    /// assert_eq!(g.state().seed, before.seed);
    /// assert_eq!(g.state().word_pos, before.word_pos + 6);   // counted in 32-bit words
    /// ```
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
    ///
    /// ```
    /// use sinew_tensor::Generator;
    /// let mut g = Generator::new(0);
    /// let xs: Vec<f64> = (0..100).map(|_| g.uniform_f64()).collect();
    /// assert!(xs.iter().all(|x| (0.0..1.0).contains(x)));
    /// ```
    pub fn uniform_f64(&mut self) -> f64 {
        self.rng.random::<f64>()
    }

    /// A uniform `f32` in `[0, 1)`.
    ///
    /// ```
    /// use sinew_tensor::Generator;
    /// let mut g = Generator::new(0);
    /// let xs: Vec<f32> = (0..100).map(|_| g.uniform_f32()).collect();
    /// assert!(xs.iter().all(|x| (0.0..1.0).contains(x)));
    /// ```
    pub fn uniform_f32(&mut self) -> f32 {
        self.rng.random::<f32>()
    }

    /// A standard normal sample (Box–Muller).
    ///
    /// ```
    /// use sinew_tensor::Generator;
    /// let mut g = Generator::new(0);
    /// let xs: Vec<f64> = (0..10_000).map(|_| g.normal_f64()).collect();
    /// let mean = xs.iter().sum::<f64>() / xs.len() as f64;
    /// assert!(mean.abs() < 0.05);
    /// assert!(xs.iter().all(|x| x.is_finite()));
    /// ```
    pub fn normal_f64(&mut self) -> f64 {
        let u1 = 1.0 - self.uniform_f64(); // (0, 1]: ln is finite
        let u2 = self.uniform_f64();
        (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
    }

    /// A uniform integer in `low..high`.
    ///
    /// # Panics
    /// If the range is empty.
    ///
    /// ```
    /// use sinew_tensor::Generator;
    /// let mut g = Generator::new(0);
    /// let rolls: Vec<i64> = (0..600).map(|_| g.int_in(1, 7)).collect();   // a die
    /// assert!(rolls.iter().all(|r| (1..7).contains(r)));
    /// assert!(rolls.contains(&1) && rolls.contains(&6));
    /// ```
    #[track_caller]
    pub fn int_in(&mut self, low: i64, high: i64) -> i64 {
        assert!(low < high, "rand_int: empty range {low}..{high}");
        self.rng.random_range(low..high)
    }

    /// A uniform index in `0..n` (for shuffling).
    ///
    /// ```
    /// use sinew_tensor::Generator;
    /// let mut g = Generator::new(0);
    /// assert!((0..100).all(|_| g.index(3) < 3));
    /// ```
    pub fn index(&mut self, n: usize) -> usize {
        self.rng.random_range(0..n)
    }

    /// Shuffles a slice in place (Fisher–Yates).
    ///
    /// ```
    /// use sinew_tensor::Generator;
    /// let mut v: Vec<usize> = (0..10).collect();
    /// Generator::new(0).shuffle(&mut v);
    /// let mut sorted = v.clone();
    /// sorted.sort();
    /// assert_eq!(sorted, (0..10).collect::<Vec<_>>());   // a permutation
    /// let mut w: Vec<usize> = (0..10).collect();
    /// Generator::new(0).shuffle(&mut w);
    /// assert_eq!(v, w);   // the same seed, the same order
    /// ```
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
///
/// ```
/// use sinew_tensor::{DType, Generator, Tensor, manual_seed};
/// manual_seed(42);   // torch.manual_seed(42)
/// let a = Tensor::randn(&[3]);
/// assert_eq!(a.to_vec::<f32>(), Tensor::randn_with(&[3], DType::F32, &mut Generator::new(42)).to_vec::<f32>());
/// ```
pub fn manual_seed(seed: u64) {
    *GLOBAL.lock().unwrap_or_else(|e| e.into_inner()) = Some(Generator::new(seed));
}

/// Runs `f` with the process-wide generator (seed 0 unless [`manual_seed`] was called).
///
/// ```
/// use sinew_tensor::{Generator, manual_seed, with_global_generator};
/// manual_seed(5);
/// let x = with_global_generator(|g| g.uniform_f64());
/// assert_eq!(x, Generator::new(5).uniform_f64());
/// ```
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
    ///
    /// ```
    /// use sinew_tensor::{DType, Generator, Tensor};
    /// let t = Tensor::uniform_with(&[1000], -2.0, 2.0, DType::F64, &mut Generator::new(0));   // torch.empty(1000).uniform_(-2, 2)
    /// let v = t.to_vec::<f64>();
    /// assert!(v.iter().all(|x| (-2.0..2.0).contains(x)));
    /// assert!(t.mean_all().item().abs() < 0.2);
    /// ```
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
    ///
    /// ```
    /// use sinew_tensor::{DType, Generator, Tensor};
    /// let t = Tensor::rand_with(&[2, 3], DType::F32, &mut Generator::new(0));
    /// assert_eq!((t.dims(), t.dtype()), (&[2, 3][..], DType::F32));
    /// assert!(t.to_vec::<f32>().iter().all(|x| (0.0..1.0).contains(x)));
    /// ```
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
    ///
    /// ```
    /// use sinew_tensor::{DType, Generator, Tensor};
    /// let t = Tensor::normal_with(&[10_000], 3.0, 0.5, DType::F64, &mut Generator::new(0));
    /// assert!((t.mean_all().item() - 3.0).abs() < 0.02);
    /// assert!((t.std(&[], true, false).item() - 0.5).abs() < 0.02);
    /// ```
    #[track_caller]
    pub fn normal_with(shape: &[usize], mean: f64, std: f64, dtype: DType, gen_: &mut Generator) -> Tensor {
        assert!(dtype.is_float(), "normal: {dtype} is not a float type");
        with_elem!(dtype, |T| sampled("normal", shape, || <T as crate::Element>::from_f64(
            mean + std * gen_.normal_f64()
        )))
    }

    /// Standard normal samples from `gen` (`torch.randn`).
    ///
    /// ```
    /// use sinew_tensor::{DType, Generator, Tensor};
    /// let mut g = Generator::new(0);
    /// let a = Tensor::randn_with(&[4], DType::F64, &mut g);
    /// let b = Tensor::randn_with(&[4], DType::F64, &mut g);   // the stream goes on
    /// assert_ne!(a.to_vec::<f64>(), b.to_vec::<f64>());
    /// assert_eq!(a.to_vec::<f64>(), Tensor::randn_with(&[4], DType::F64, &mut Generator::new(0)).to_vec::<f64>());
    /// ```
    #[track_caller]
    pub fn randn_with(shape: &[usize], dtype: DType, gen_: &mut Generator) -> Tensor {
        Tensor::normal_with(shape, 0.0, 1.0, dtype, gen_)
    }

    /// `f32` standard normal samples from the process-wide generator.
    ///
    /// ```
    /// use sinew_tensor::{DType, Tensor};
    /// let t = Tensor::randn(&[2, 3]);   // torch.randn(2, 3)
    /// assert_eq!((t.dims(), t.dtype()), (&[2, 3][..], DType::F32));
    /// assert!(!t.has_non_finite());
    /// ```
    pub fn randn(shape: &[usize]) -> Tensor {
        with_global_generator(|g| Tensor::randn_with(shape, DType::F32, g))
    }

    /// Uniform `i64` samples in `low..high` from `gen` (`torch.randint`).
    ///
    /// ```
    /// use sinew_tensor::{DType, Generator, Tensor};
    /// let t = Tensor::rand_int_with(&[100], 0, 10, &mut Generator::new(0));   // torch.randint(0, 10, (100,))
    /// assert_eq!(t.dtype(), DType::I64);
    /// assert!(t.to_vec::<i64>().iter().all(|v| (0..10).contains(v)));
    /// ```
    #[track_caller]
    pub fn rand_int_with(shape: &[usize], low: i64, high: i64, gen_: &mut Generator) -> Tensor {
        sampled("rand_int", shape, || gen_.int_in(low, high))
    }

    /// Uniform `i64` samples in `low..high` from the process-wide generator.
    ///
    /// ```
    /// use sinew_tensor::Tensor;
    /// let labels = Tensor::rand_int(&[8], 0, 3);
    /// assert!(labels.to_vec::<i64>().iter().all(|v| (0..3).contains(v)));
    /// ```
    #[track_caller]
    pub fn rand_int(shape: &[usize], low: i64, high: i64) -> Tensor {
        with_global_generator(|g| Tensor::rand_int_with(shape, low, high, g))
    }

    /// A 0/1 mask of type `dtype` where each entry is 1 with probability `p` (dropout masks).
    ///
    /// ```
    /// use sinew_tensor::{DType, Generator, Tensor};
    /// let mut g = Generator::new(0);
    /// let keep = Tensor::bernoulli_with(&[10_000], 0.8, DType::F32, &mut g);   // a dropout mask, p = 0.2
    /// assert!(keep.to_vec::<f32>().iter().all(|&m| m == 0.0 || m == 1.0));
    /// assert!((keep.mean_all().item() - 0.8).abs() < 0.02);
    /// assert_eq!(Tensor::bernoulli_with(&[5], 1.0, DType::I64, &mut g).to_vec::<i64>(), vec![1; 5]);
    /// ```
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

//! [`NoiseTunnel`]: SmoothGrad (Smilkov et al., 2017), SmoothGrad² and VarGrad over any
//! attribution method.

use sinew_tensor::{Generator, Tensor};

use crate::{Attribution, ExplainError, Target};

/// How the attributions of the noisy copies are combined (Captum's `nt_type`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum NoiseKind {
    /// Their mean (`"smoothgrad"`).
    #[default]
    SmoothGrad,
    /// The mean of their squares (`"smoothgrad_sq"`).
    SmoothGradSq,
    /// Their variance, `mean(a²) − mean(a)²` (`"vargrad"`).
    VarGrad,
}

/// Runs an attribution method on `samples` copies of the input, each plus Gaussian noise
/// of standard deviation `stdev` drawn from a generator seeded with `seed` (so the result
/// is reproducible), and combines them by [`NoiseKind`] (Captum's `NoiseTunnel`; its
/// noise comes from PyTorch's generator, so the two agree in distribution, not in bits).
///
/// ```
/// use sinew_explain::{Attribution, NoiseTunnel, Saliency, Target};
/// use sinew_nn::{Linear, Sequential, Tanh};
/// use sinew_tensor::{Generator, Tensor};
/// let mut g = Generator::new(0);
/// let model = Sequential::new().add(Linear::new(3, 4, &mut g)).add(Tanh).add(Linear::new(4, 2, &mut g));
/// let x = Tensor::randn_with(&[2, 3], sinew_tensor::DType::F32, &mut g);
/// let smooth = NoiseTunnel::new(Saliency::new(&model)).samples(8).stdev(0.1).seed(1);
/// let a = smooth.attribute(&x, &Target::Class(0))?;
/// assert_eq!(a.dims(), [2, 3]);
/// assert_eq!(a.to_vec::<f32>(), smooth.attribute(&x, &Target::Class(0))?.to_vec::<f32>()); // seeded
/// # Ok::<(), sinew_explain::ExplainError>(())
/// ```
pub struct NoiseTunnel<A> {
    inner: A,
    kind: NoiseKind,
    samples: usize,
    stdev: f64,
    seed: u64,
}

impl<A: Attribution> NoiseTunnel<A> {
    /// SmoothGrad of `inner` with 5 samples of standard deviation 1 and seed 0 (Captum's
    /// defaults but the seed).
    pub fn new(inner: A) -> Self {
        NoiseTunnel { inner, kind: NoiseKind::SmoothGrad, samples: 5, stdev: 1.0, seed: 0 }
    }

    /// How the samples are combined.
    pub fn kind(mut self, kind: NoiseKind) -> Self {
        self.kind = kind;
        self
    }

    /// The number of noisy copies (Captum's `nt_samples`).
    pub fn samples(mut self, samples: usize) -> Self {
        self.samples = samples;
        self
    }

    /// The noise's standard deviation, in input units (Captum's `stdevs`).
    pub fn stdev(mut self, stdev: f64) -> Self {
        self.stdev = stdev;
        self
    }

    /// The noise generator's seed.
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// The noisy inputs this tunnel attributes, in order (for inspection and tests).
    pub fn noisy_inputs(&self, input: &Tensor) -> Vec<Tensor> {
        let mut g = Generator::new(self.seed);
        (0..self.samples)
            .map(|_| input + &Tensor::randn_with(input.dims(), input.dtype(), &mut g).mul_scalar(self.stdev))
            .collect()
    }
}

impl<A: Attribution> Attribution for NoiseTunnel<A> {
    fn attribute(&self, input: &Tensor, target: &Target<'_>) -> Result<Tensor, ExplainError> {
        if self.samples == 0 || !(self.stdev >= 0.0 && self.stdev.is_finite()) {
            return Err(ExplainError::Options {
                method: "NoiseTunnel",
                msg: format!(
                    "needs at least one sample and a finite stdev ≥ 0, got {} and {}",
                    self.samples, self.stdev
                ),
            });
        }
        // sums of the attributions and of their squares, in the inner method's shape
        // (Grad-CAM's is not the input's)
        let mut sums: Option<(Tensor, Tensor)> = None;
        for noisy in self.noisy_inputs(input) {
            let a = self.inner.attribute(&noisy, target)?;
            sums = Some(match sums {
                None => (a.square(), a),
                Some((sq, sum)) => (sq + a.square(), sum + a),
            });
        }
        let (sum_sq, sum) = sums.expect("at least one sample");
        let k = 1.0 / self.samples as f64;
        Ok(match self.kind {
            NoiseKind::SmoothGrad => sum.mul_scalar(k),
            NoiseKind::SmoothGradSq => sum_sq.mul_scalar(k),
            NoiseKind::VarGrad => sum_sq.mul_scalar(k) - sum.mul_scalar(k).square(),
        })
    }
}

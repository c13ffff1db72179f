//! Attributions: which parts of an input a model's output depends on, computed as
//! [Captum](https://captum.ai) computes them for PyTorch (and checked against it).
//!
//! Every method takes a model (any [`Forward`](sinew_nn::Forward)), an input batch and a
//! [`Target`] (a class per item, or any per-item scalar of the output) and returns a
//! tensor of the input's shape (Grad-CAM: of the layer's spatial shape):
//!
//! | method | Captum | what it is |
//! | --- | --- | --- |
//! | [`Saliency`] | `Saliency` | the gradient of the target with respect to the input (absolute by default) |
//! | [`InputXGradient`] | `InputXGradient` | input × that gradient |
//! | [`IntegratedGradients`] | `IntegratedGradients` | (x − baseline) × the gradient averaged along the straight path from the baseline; its attributions sum to f(x) − f(baseline) up to the returned delta |
//! | [`NoiseTunnel`] | `NoiseTunnel` | SmoothGrad, SmoothGrad² or VarGrad over any of the above, seeded |
//! | [`Occlusion`] | `Occlusion` | the drop in the target when a sliding window of the input is replaced by a baseline value |
//! | [`GradCam`] | `LayerGradCam` | a convolutional layer's activations weighted by their spatially averaged gradients, summed over channels |
//!
//! Put the model in evaluation mode first (`model.eval()`): dropout and batch statistics
//! would otherwise change the function being explained (and integrated gradients runs the
//! model on a batch of all its steps at once).
//!
//! ```
//! use sinew_autograd::Var;
//! use sinew_explain::{Attribution, IntegratedGradients, Saliency, Target};
//! use sinew_nn::{Linear, Module, Relu, Sequential};
//! use sinew_tensor::{DType, Generator, Tensor};
//!
//! let mut g = Generator::new(0);
//! let model = Sequential::new().add(Linear::new(4, 8, &mut g)).add(Relu).add(Linear::new(8, 3, &mut g));
//! model.cast(DType::F64);
//! model.eval();
//! let x = Tensor::randn_with(&[2, 4], DType::F64, &mut g);
//! let target = Target::Class(1);
//!
//! let saliency = Saliency::new(&model).attribute(&x, &target)?;
//! assert_eq!(saliency.dims(), [2, 4]);
//!
//! let ig = IntegratedGradients::new(&model).steps(64).attribute_with_delta(&x, &target)?;
//! // completeness: the attributions of each item add up to f(x) − f(0), up to `delta`
//! let sums = ig.attributions.sum(&[1], false).to_vec::<f64>();
//! let fx = model.forward(&Var::constant(x.clone())).value().select(1, 1).to_vec::<f64>();
//! let f0 = model.forward(&Var::constant(x.zeros_like())).value().select(1, 1).to_vec::<f64>();
//! for i in 0..2 {
//!     assert!((sums[i] - (fx[i] - f0[i]) - ig.delta.to_vec::<f64>()[i]).abs() < 1e-12);
//! }
//! # use sinew_nn::Forward;
//! # Ok::<(), sinew_explain::ExplainError>(())
//! ```
//!
//! Model summaries (Keras' `model.summary()`) live in sinew-nn beside the layers:
//! [`sinew_nn::summary_with_input`]; the forward hooks Grad-CAM uses to reach a layer's
//! output are [`sinew_nn::hooks`].

mod error;
mod grad_cam;
mod gradients;
mod integrated;
mod noise;
mod occlusion;
mod target;

pub use error::ExplainError;
pub use grad_cam::{GradCam, Interpolation, interpolate};
pub use gradients::{InputXGradient, Saliency, input_gradients};
pub use integrated::{IgAttribution, IntegratedGradients, Rule, gauss_legendre};
pub use noise::{NoiseKind, NoiseTunnel};
pub use occlusion::Occlusion;
pub use target::Target;

use sinew_tensor::Tensor;

/// An attribution method: for an input batch and a target, one score per input element
/// (Grad-CAM: per element of the layer's map).
pub trait Attribution {
    /// The attributions of `input` (shape `(N, ...)`) for `target`.
    ///
    /// # Errors
    /// A target that does not fit the model's output, a baseline or window that does not
    /// fit the input, a layer that is not in the model.
    fn attribute(&self, input: &Tensor, target: &Target<'_>) -> Result<Tensor, ExplainError>;
}

//! Gradient attributions: [`Saliency`] and [`InputXGradient`], and the one input-gradient
//! computation every gradient method shares.

use sinew_autograd::{Var, enable_grad, grad};
use sinew_nn::Forward;
use sinew_tensor::Tensor;

use crate::{Attribution, ExplainError, Target};

/// The gradient of the target's scores with respect to `input`, shape of `input`: one
/// forward and one backward pass (with gradients on even inside `no_grad`). `input` holds
/// `k` copies of a batch of `n` items (see [`Target`]); `n` is its first dimension when
/// it is a plain batch.
///
/// ```
/// use sinew_explain::{Target, input_gradients};
/// use sinew_nn::Linear;
/// use sinew_tensor::{DType, Generator, Tensor};
/// let fc = Linear::new(3, 2, &mut Generator::new(0));
/// let x = Tensor::ones(&[4, 3]);
/// // the gradient of output[:, 1] of a linear layer is row 1 of its weight
/// let g = input_gradients(&fc, &x, &Target::Class(1), 4)?;
/// assert_eq!(g.select(0, 2).to_vec::<f32>(), fc.weight.value().select(0, 1).to_vec::<f32>());
/// # Ok::<(), sinew_explain::ExplainError>(())
/// ```
pub fn input_gradients(
    model: &dyn Forward,
    input: &Tensor,
    target: &Target<'_>,
    n: usize,
) -> Result<Tensor, ExplainError> {
    enable_grad(|| {
        let x = Var::leaf(input.clone());
        let scores = target.scores(&model.forward(&x), n)?;
        let total = scores.sum_all();
        let g = grad(&total, &[&x], None, false).pop().flatten();
        // an output that does not depend on the input has a zero gradient
        Ok(g.map_or_else(|| input.zeros_like(), |g| g.value().clone()))
    })
}

/// The target's scores for each row of `input`, without a graph.
pub(crate) fn scores(
    model: &dyn Forward,
    input: &Tensor,
    target: &Target<'_>,
    n: usize,
) -> Result<Tensor, ExplainError> {
    sinew_autograd::no_grad(|| {
        Ok(target.scores(&model.forward(&Var::constant(input.clone())), n)?.value().clone())
    })
}

/// Saliency (Simonyan et al., 2014; Captum's `Saliency`): the gradient of the target with
/// respect to the input, absolute by default.
pub struct Saliency<'m> {
    model: &'m dyn Forward,
    abs: bool,
}

impl<'m> Saliency<'m> {
    /// Absolute gradients (Captum's default `abs=True`).
    pub fn new(model: &'m dyn Forward) -> Self {
        Saliency { model, abs: true }
    }

    /// Signed gradients when `false`.
    pub fn abs(mut self, abs: bool) -> Self {
        self.abs = abs;
        self
    }
}

impl Attribution for Saliency<'_> {
    fn attribute(&self, input: &Tensor, target: &Target<'_>) -> Result<Tensor, ExplainError> {
        let g = input_gradients(self.model, input, target, batch(input))?;
        Ok(if self.abs { g.abs() } else { g })
    }
}

/// Gradient × input (Shrikumar et al., 2016; Captum's `InputXGradient`).
pub struct InputXGradient<'m> {
    model: &'m dyn Forward,
}

impl<'m> InputXGradient<'m> {
    /// Over `model`.
    pub fn new(model: &'m dyn Forward) -> Self {
        InputXGradient { model }
    }
}

impl Attribution for InputXGradient<'_> {
    fn attribute(&self, input: &Tensor, target: &Target<'_>) -> Result<Tensor, ExplainError> {
        Ok(input_gradients(self.model, input, target, batch(input))? * input)
    }
}

/// The batch size of an input `(N, ...)`.
pub(crate) fn batch(input: &Tensor) -> usize {
    input.dims().first().copied().unwrap_or(1)
}

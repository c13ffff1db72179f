//! [`GradCam`] (Selvaraju et al., 2017) for a named layer, and [`interpolate`] to bring
//! its map to the input's size.

use sinew_autograd::{Var, enable_grad, grad};
use sinew_nn::{Forward, hooks};
use sinew_tensor::{DType, Tensor};

use crate::gradients::batch;
use crate::{Attribution, ExplainError, Target};

/// Grad-CAM of the layer named `layer` (its name in the state dict, `features.3`):
/// the layer's output `A` of shape `(N, C, ...)` and the gradient `G` of the target with
/// respect to it; each channel is weighted by `G`'s mean over the spatial dimensions, the
/// weighted channels summed, giving `(N, 1, ...)` (Captum's `LayerGradCam`). A ReLU
/// keeps only what speaks for the target, as in the paper; Captum's default leaves it
/// off (`relu_attributions=False`): [`relu`](GradCam::relu)`(false)`.
///
/// The layer's output is found by [`sinew_nn::hooks`]: every layer of sinew reports it. If
/// the layer runs more than once in a forward pass, its first output is used.
///
/// ```
/// use sinew_explain::{Attribution, GradCam, Target};
/// use sinew_nn::{Conv2d, Flatten, Linear, Relu, Sequential};
/// use sinew_tensor::{Conv2dOptions, Generator, Tensor};
/// let mut g = Generator::new(0);
/// let model = Sequential::new()
///     .add(Conv2d::new(1, 4, 3, Conv2dOptions::default(), &mut g))
///     .add(Relu)
///     .add(Flatten::new())
///     .add(Linear::new(4 * 6 * 6, 3, &mut g));
/// let x = Tensor::randn_with(&[2, 1, 8, 8], sinew_tensor::DType::F32, &mut g);
/// let cam = GradCam::new(&model, "1").attribute(&x, &Target::Class(2))?;
/// assert_eq!(cam.dims(), [2, 1, 6, 6]);
/// assert!(cam.to_vec::<f32>().iter().all(|v| *v >= 0.0));
/// # Ok::<(), sinew_explain::ExplainError>(())
/// ```
pub struct GradCam<'m> {
    model: &'m dyn Forward,
    layer: String,
    relu: bool,
}

impl<'m> GradCam<'m> {
    /// Grad-CAM of `layer` in `model`, with the paper's ReLU.
    pub fn new(model: &'m dyn Forward, layer: &str) -> Self {
        GradCam { model, layer: layer.to_string(), relu: true }
    }

    /// Whether negative evidence is cut (`true`, the paper) or kept (`false`, Captum's
    /// default).
    pub fn relu(mut self, relu: bool) -> Self {
        self.relu = relu;
        self
    }

    /// The map brought to the input's spatial size (an `(N, C, H, W)` input), as Captum's
    /// `LayerAttribution.interpolate`.
    ///
    /// # Errors
    /// As [`Attribution::attribute`], and for an input that is not `(N, C, H, W)`.
    pub fn attribute_upsampled(
        &self,
        input: &Tensor,
        target: &Target<'_>,
        mode: Interpolation,
    ) -> Result<Tensor, ExplainError> {
        if input.ndim() != 4 {
            return Err(ExplainError::Options {
                method: "GradCam",
                msg: format!("upsampling needs an (N, C, H, W) input, got {:?}", input.dims()),
            });
        }
        let cam = self.attribute(input, target)?;
        interpolate(&cam, [input.dims()[2], input.dims()[3]], mode)
    }

    /// The layer's output and the target's gradient with respect to it.
    fn activations_and_gradients(
        &self,
        input: &Tensor,
        target: &Target<'_>,
    ) -> Result<(Tensor, Tensor), ExplainError> {
        enable_grad(|| {
            let x = Var::constant(input.clone());
            let (out, layers) = hooks::record_outputs(self.model, || self.model.forward(&x));
            let Some(layer) = layers.iter().find(|o| o.name == self.layer) else {
                let mut known: Vec<&str> =
                    layers.iter().map(|o| o.name.as_str()).filter(|n| !n.is_empty()).collect();
                known.dedup();
                // a submodule by that name, with or without parameters
                let in_model = sinew_nn::summary(self.model).rows.iter().any(|r| r.name == self.layer);
                return Err(ExplainError::Layer {
                    name: self.layer.clone(),
                    msg: format!(
                        "{}; the layers that reported an output are: {}",
                        if in_model {
                            "it produced no output in the forward pass"
                        } else {
                            "no such layer in the model"
                        },
                        known.join(", ")
                    ),
                });
            };
            let act = layer.output.clone();
            if act.ndim() < 2 || act.dims()[0] != batch(input) {
                return Err(ExplainError::Layer {
                    name: self.layer.clone(),
                    msg: format!(
                        "its output {:?} is not (N, C, ...) for a batch of {}",
                        act.dims(),
                        batch(input)
                    ),
                });
            }
            let total = target.scores(&out, batch(input))?.sum_all();
            let g = grad(&total, &[&act], None, false).pop().flatten();
            let g = g.map_or_else(|| act.value().zeros_like(), |g| g.value().clone());
            Ok((act.value().clone(), g))
        })
    }
}

impl Attribution for GradCam<'_> {
    /// The map, `(N, 1, ...)` at the layer's resolution.
    fn attribute(&self, input: &Tensor, target: &Target<'_>) -> Result<Tensor, ExplainError> {
        let (act, g) = self.activations_and_gradients(input, target)?;
        let spatial: Vec<isize> = (2..act.ndim() as isize).collect();
        let weights = if spatial.is_empty() { g } else { g.mean(&spatial, true) };
        let cam = (weights * act).sum(&[1], true);
        Ok(if self.relu { cam.relu() } else { cam })
    }
}

/// How [`interpolate`] resamples.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Interpolation {
    /// Each output pixel takes the input pixel it falls in (`mode="nearest"`).
    Nearest,
    /// Linear in both directions between the four nearest pixel centres
    /// (`mode="bilinear", align_corners=False`), the smooth choice for heat maps.
    #[default]
    Bilinear,
}

/// Resizes `(N, C, H, W)` maps to `size = [H', W']` as `torch.nn.functional.interpolate`
/// does (`nearest`, or `bilinear` with `align_corners=False`).
///
/// ```
/// use sinew_explain::{Interpolation, interpolate};
/// use sinew_tensor::Tensor;
/// let t = Tensor::from_vec(vec![0.0f64, 1.0, 2.0, 3.0], &[1, 1, 2, 2])?;
/// let near = interpolate(&t, [4, 4], Interpolation::Nearest)?;
/// assert_eq!(near.to_vec::<f64>()[..4], [0.0, 0.0, 1.0, 1.0]);
/// let smooth = interpolate(&t, [4, 4], Interpolation::Bilinear)?;
/// assert_eq!(smooth.to_vec::<f64>()[..4], [0.0, 0.25, 0.75, 1.0]);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// # Errors
/// A tensor that is not 4-D, or an empty size.
pub fn interpolate(t: &Tensor, size: [usize; 2], mode: Interpolation) -> Result<Tensor, ExplainError> {
    if t.ndim() != 4 || size.contains(&0) {
        return Err(ExplainError::Options {
            method: "interpolate",
            msg: format!(
                "needs an (N, C, H, W) tensor and a non-empty size, got {:?} and {size:?}",
                t.dims()
            ),
        });
    }
    let (planes, h, w) = (t.dims()[0] * t.dims()[1], t.dims()[2], t.dims()[3]);
    let [oh, ow] = size;
    let src = t.to_dtype(DType::F64).contiguous().to_vec::<f64>();
    let mut out = vec![0.0f64; planes * oh * ow];
    match mode {
        Interpolation::Nearest => {
            // PyTorch computes the scale and index in f32
            let index = |o: usize, input: usize, output: usize| -> usize {
                if input == output {
                    o
                } else if output == 2 * input {
                    o >> 1
                } else {
                    let scale = input as f32 / output as f32;
                    ((o as f32 * scale).floor() as usize).min(input - 1)
                }
            };
            for p in 0..planes {
                for y in 0..oh {
                    let sy = index(y, h, oh);
                    for x in 0..ow {
                        out[(p * oh + y) * ow + x] = src[(p * h + sy) * w + index(x, w, ow)];
                    }
                }
            }
        }
        Interpolation::Bilinear => {
            // (source index, step to the next pixel, weight of the next pixel)
            let taps = |o: usize, input: usize, output: usize| -> (usize, usize, f64) {
                let scale = input as f64 / output as f64;
                let s = (scale * (o as f64 + 0.5) - 0.5).max(0.0);
                let i = s as usize;
                (i, usize::from(i < input - 1), s - i as f64)
            };
            for p in 0..planes {
                let plane = &src[p * h * w..(p + 1) * h * w];
                for y in 0..oh {
                    let (y0, dy, ly) = taps(y, h, oh);
                    for x in 0..ow {
                        let (x0, dx, lx) = taps(x, w, ow);
                        let at = |yy: usize, xx: usize| plane[yy * w + xx];
                        out[(p * oh + y) * ow + x] = (1.0 - ly)
                            * ((1.0 - lx) * at(y0, x0) + lx * at(y0, x0 + dx))
                            + ly * ((1.0 - lx) * at(y0 + dy, x0) + lx * at(y0 + dy, x0 + dx));
                    }
                }
            }
        }
    }
    let dims = [t.dims()[0], t.dims()[1], oh, ow];
    Ok(Tensor::from_vec(out, &dims).expect("the output's shape").to_dtype(t.dtype()))
}

//! [`Occlusion`] (Zeiler & Fergus, 2014): how much the target drops when a window of the
//! input is hidden.

use sinew_nn::Forward;
use sinew_tensor::Tensor;

use crate::gradients::{batch, scores};
use crate::{Attribution, ExplainError, Target};

/// Slides a window over each item's features (every dimension after the batch's), replaces
/// what it covers by a baseline value, and adds the drop in the target, `f(x) −
/// f(x occluded)`, to every element under the window; each element's total is divided by
/// the number of windows that covered it (Captum's `Occlusion`). A dimension of size `d`
/// with window `w` and stride `s` has `⌈(d − w)/s⌉ + 1` positions; the last may hang over
/// the edge and is cut there, as Captum's. With a stride larger than the window, elements
/// no window covers get 0 (Captum: NaN).
///
/// ```
/// use sinew_explain::{Attribution, Occlusion, Target};
/// use sinew_nn::Linear;
/// use sinew_tensor::{Generator, Tensor};
/// // a linear model: hiding feature j (baseline 0) drops the output by x_j·w_j
/// let fc = Linear::new(4, 1, &mut Generator::new(0));
/// let x = Tensor::ones(&[1, 4]);
/// let a = Occlusion::new(&fc, &[1]).attribute(&x, &Target::Class(0))?;
/// assert!(a.allclose(&fc.weight.value(), 1e-6, 1e-6));
/// # Ok::<(), sinew_explain::ExplainError>(())
/// ```
pub struct Occlusion<'m> {
    model: &'m dyn Forward,
    window: Vec<usize>,
    strides: Option<Vec<usize>>,
    baseline: f64,
    per_eval: usize,
}

impl<'m> Occlusion<'m> {
    /// A window of shape `window` (one size per feature dimension, e.g. `[1, 3, 3]` for
    /// `(N, C, H, W)` images), stride 1, baseline 0, one occluded copy per forward pass.
    pub fn new(model: &'m dyn Forward, window: &[usize]) -> Self {
        Occlusion { model, window: window.to_vec(), strides: None, baseline: 0.0, per_eval: 1 }
    }

    /// The step of the window along each feature dimension (Captum's `strides`).
    pub fn strides(mut self, strides: &[usize]) -> Self {
        self.strides = Some(strides.to_vec());
        self
    }

    /// The value that replaces the occluded elements (Captum's `baselines`, a scalar).
    pub fn baseline(mut self, value: f64) -> Self {
        self.baseline = value;
        self
    }

    /// How many occluded copies of the batch go through the model per forward pass
    /// (Captum's `perturbations_per_eval`): faster, the same result up to rounding.
    pub fn perturbations_per_eval(mut self, k: usize) -> Self {
        self.per_eval = k.max(1);
        self
    }
}

impl Attribution for Occlusion<'_> {
    fn attribute(&self, input: &Tensor, target: &Target<'_>) -> Result<Tensor, ExplainError> {
        let options = |msg: String| ExplainError::Options { method: "Occlusion", msg };
        let features = &input.dims()[1.min(input.ndim())..];
        let k = features.len();
        let strides = self.strides.clone().unwrap_or_else(|| vec![1; k]);
        if self.window.len() != k || strides.len() != k {
            return Err(options(format!(
                "window {:?} and strides {:?} need one size per feature dimension of the input {:?}",
                self.window,
                strides,
                input.dims()
            )));
        }
        if let Some(d) =
            (0..k).find(|&d| self.window[d] == 0 || self.window[d] > features[d] || strides[d] == 0)
        {
            return Err(options(format!(
                "window {:?} with strides {:?} does not fit the features {features:?} (dimension {d})",
                self.window, strides
            )));
        }
        let n = batch(input);
        let shifts: Vec<usize> =
            (0..k).map(|d| (features[d] - self.window[d]).div_ceil(strides[d]) + 1).collect();
        let positions: usize = shifts.iter().product();
        let size: usize = features.iter().product();
        // row-major strides of the feature block
        let mut pitch = vec![1usize; k];
        for d in (0..k.saturating_sub(1)).rev() {
            pitch[d] = pitch[d + 1] * features[d + 1];
        }
        // the elements window number `p` covers (first dimension varying fastest, as Captum)
        let covered = |p: usize| -> Vec<usize> {
            let mut start = vec![0usize; k];
            let mut rest = p;
            for d in 0..k {
                start[d] = (rest % shifts[d]) * strides[d];
                rest /= shifts[d];
            }
            let mut out = vec![0usize];
            for d in 0..k {
                let end = (start[d] + self.window[d]).min(features[d]);
                let step = pitch[d];
                out = out.iter().flat_map(|&o| (start[d]..end).map(move |i| o + i * step)).collect();
            }
            out
        };
        let f0 = scores(self.model, input, target, n)?.to_dtype(sinew_tensor::DType::F64).to_vec::<f64>();
        let x = input.to_dtype(sinew_tensor::DType::F64).contiguous().to_vec::<f64>();
        let mut total = vec![0.0f64; n * size];
        let mut counts = vec![0usize; size];
        for first in (0..positions).step_by(self.per_eval) {
            let group: Vec<Vec<usize>> =
                (first..(first + self.per_eval).min(positions)).map(covered).collect();
            let mut occluded = Vec::with_capacity(group.len() * x.len());
            for cells in &group {
                let mut copy = x.clone();
                for item in 0..n {
                    for &c in cells {
                        copy[item * size + c] = self.baseline;
                    }
                }
                occluded.extend(copy);
            }
            let mut dims = input.dims().to_vec();
            dims[0] = n * group.len();
            let batch =
                Tensor::from_vec(occluded, &dims).expect("copies of the input").to_dtype(input.dtype());
            let f = scores(self.model, &batch, target, n)?.to_dtype(sinew_tensor::DType::F64).to_vec::<f64>();
            for (g, cells) in group.iter().enumerate() {
                for item in 0..n {
                    let drop = f0[item] - f[g * n + item];
                    for &c in cells {
                        total[item * size + c] += drop;
                    }
                }
                for &c in cells {
                    counts[c] += 1;
                }
            }
        }
        for item in 0..n {
            for c in 0..size {
                total[item * size + c] =
                    if counts[c] == 0 { 0.0 } else { total[item * size + c] / counts[c] as f64 };
            }
        }
        Ok(Tensor::from_vec(total, input.dims()).expect("the input's shape").to_dtype(input.dtype()))
    }
}

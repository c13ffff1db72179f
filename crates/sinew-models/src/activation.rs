//! The feed-forward activations Hugging Face configurations name.

use serde::{Deserialize, Serialize};
use sinew_autograd::Var;

/// The activation of a transformer's feed-forward block: BERT's `hidden_act`, GPT-2's
/// `activation_function`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum Activation {
    /// `"gelu"`: the exact GELU, `x·Φ(x)` (PyTorch's `F.gelu`).
    #[serde(rename = "gelu")]
    Gelu,
    /// `"gelu_new"`, `"gelu_pytorch_tanh"`, `"gelu_fast"`: the tanh approximation of GELU
    /// (`F.gelu(approximate="tanh")`).
    #[serde(rename = "gelu_new", alias = "gelu_pytorch_tanh", alias = "gelu_fast")]
    GeluTanh,
    /// `"relu"`.
    #[serde(rename = "relu")]
    Relu,
    /// `"silu"` / `"swish"`: `x·σ(x)`.
    #[serde(rename = "silu", alias = "swish")]
    Silu,
}

impl Activation {
    /// The activation of `x`.
    pub fn apply(self, x: &Var) -> Var {
        match self {
            Activation::Gelu => x.gelu(),
            Activation::GeluTanh => x.gelu_tanh(),
            Activation::Relu => x.relu(),
            Activation::Silu => x * &x.sigmoid(),
        }
    }
}

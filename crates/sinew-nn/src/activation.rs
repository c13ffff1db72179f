//! Activations as modules (`nn.ReLU()` and friends); the functions themselves are methods
//! on [`Var`] (`x.relu()`, `x.gelu()`, ...).

use sinew_autograd::Var;

use crate::module::{Forward, Module, Visitor};

macro_rules! activation {
    ($($(#[$m:meta])* $name:ident => |$s:ident, $x:ident| $body:expr $(, repr = $repr:expr)?;)*) => {
        $(
            impl Module for $name {
                fn visit(&self, _: &mut dyn Visitor) {}
                $(
                    fn extra_repr(&self) -> String {
                        let $s = self;
                        $repr
                    }
                )?
            }

            impl Forward for $name {
                fn forward(&self, $x: &Var) -> Var {
                    let $s = self;
                    let _ = $s;
                    let y = $body;
                    crate::hooks::observed(self, y)
                }
            }
        )*
    };
}

macro_rules! unit_structs {
    ($($(#[$m:meta])* $name:ident;)*) => {
        $(
            $(#[$m])*
            #[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
            pub struct $name;
        )*
    };
}

unit_structs! {
    /// `max(x, 0)`.
    Relu;
    /// Logistic sigmoid.
    Sigmoid;
    /// Hyperbolic tangent.
    Tanh;
    /// GELU, exact (erf) form.
    Gelu;
    /// GELU, tanh approximation (`nn.GELU(approximate='tanh')`).
    GeluTanh;
    /// SiLU / swish.
    Silu;
    /// Passes its input through.
    Identity;
}

/// Leaky ReLU; the default slope is PyTorch's 0.01.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LeakyRelu {
    /// Slope for negative inputs.
    pub negative_slope: f64,
}

impl Default for LeakyRelu {
    fn default() -> Self {
        LeakyRelu { negative_slope: 0.01 }
    }
}

/// ELU; the default `alpha` is PyTorch's 1.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Elu {
    /// Scale of the negative part.
    pub alpha: f64,
}

impl Default for Elu {
    fn default() -> Self {
        Elu { alpha: 1.0 }
    }
}

/// Softplus; the defaults are PyTorch's `beta` 1 and `threshold` 20.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Softplus {
    /// Sharpness.
    pub beta: f64,
    /// Above `beta·x > threshold` the function is linear.
    pub threshold: f64,
}

impl Default for Softplus {
    fn default() -> Self {
        Softplus { beta: 1.0, threshold: 20.0 }
    }
}

/// Softmax along `dim`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Softmax {
    /// The normalised dimension.
    pub dim: isize,
}

/// Log-softmax along `dim`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LogSoftmax {
    /// The normalised dimension.
    pub dim: isize,
}

activation! {
    Relu => |s, x| x.relu();
    Sigmoid => |s, x| x.sigmoid();
    Tanh => |s, x| x.tanh();
    Gelu => |s, x| x.gelu();
    GeluTanh => |s, x| x.gelu_tanh();
    Silu => |s, x| x.silu();
    Identity => |s, x| x.clone();
    LeakyRelu => |s, x| x.leaky_relu(s.negative_slope), repr = format!("negative_slope={}", s.negative_slope);
    Elu => |s, x| x.elu(s.alpha), repr = format!("alpha={}", s.alpha);
    Softplus => |s, x| x.softplus(s.beta, s.threshold), repr = format!("beta={}, threshold={}", s.beta, s.threshold);
    Softmax => |s, x| x.softmax(s.dim), repr = format!("dim={}", s.dim);
    LogSoftmax => |s, x| x.log_softmax(s.dim), repr = format!("dim={}", s.dim);
}

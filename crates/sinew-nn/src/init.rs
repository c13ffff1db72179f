//! Weight initialisation, seeded, with PyTorch's formulas (`torch.nn.init`). Each
//! function returns a new tensor of the given shape; layers call them in their
//! constructors, users call them to re-initialise (`param.set_value(init::...)`).

use sinew_tensor::{DType, Generator, Tensor};

/// `(fan_in, fan_out)` of a weight shape, as PyTorch computes them: for a matrix
/// `(out, in)`, and for a convolution `(out, in, k...)` times the receptive field.
///
/// # Panics
/// For shapes of fewer than two dimensions.
///
/// ```
/// use sinew_nn::init::fans;
/// assert_eq!(fans(&[8, 4]), (4, 8)); // nn.Linear(4, 8).weight: (out, in)
/// assert_eq!(fans(&[16, 3, 5, 5]), (75, 400)); // nn.Conv2d(3, 16, 5).weight
/// ```
#[track_caller]
pub fn fans(shape: &[usize]) -> (usize, usize) {
    assert!(shape.len() >= 2, "init: fan in and fan out need at least 2 dimensions, got shape {shape:?}");
    let receptive: usize = shape[2..].iter().product();
    (shape[1] * receptive, shape[0] * receptive)
}

/// The recommended gain for a nonlinearity (`torch.nn.init.calculate_gain`):
/// `linear`/`sigmoid`/`conv*` 1, `tanh` 5/3, `relu` √2, `leaky_relu` √(2/(1+a²)), `selu` 3/4.
///
/// # Panics
/// For an unknown name.
///
/// ```
/// use sinew_nn::init::calculate_gain;
/// assert_eq!(calculate_gain("relu", None), 2f64.sqrt());
/// assert_eq!(calculate_gain("tanh", None), 5.0 / 3.0);
/// // PyTorch's default for Linear and Conv weights: leaky_relu with a = √5, gain √(1/3)
/// assert!((calculate_gain("leaky_relu", Some(5f64.sqrt())) - (1.0f64 / 3.0).sqrt()).abs() < 1e-12);
/// ```
#[track_caller]
pub fn calculate_gain(nonlinearity: &str, param: Option<f64>) -> f64 {
    match nonlinearity {
        "linear" | "conv1d" | "conv2d" | "conv3d" | "conv_transpose1d" | "conv_transpose2d" | "sigmoid" => {
            1.0
        }
        "tanh" => 5.0 / 3.0,
        "relu" => 2f64.sqrt(),
        "leaky_relu" => {
            let a = param.unwrap_or(0.01);
            (2.0 / (1.0 + a * a)).sqrt()
        }
        "selu" => 0.75,
        other => panic!("calculate_gain: unknown nonlinearity {other:?}"),
    }
}

/// Uniform in `[low, high)`.
///
/// ```
/// use sinew_nn::init;
/// use sinew_tensor::Generator;
/// let w = init::uniform(&[1000], -0.5, 0.5, &mut Generator::new(0));
/// assert!(w.min_all().item() >= -0.5 && w.max_all().item() < 0.5);
/// assert!(w.mean_all().item().abs() < 0.05);
/// // seeded: the same generator state gives the same tensor
/// assert_eq!(w.to_vec::<f32>(), init::uniform(&[1000], -0.5, 0.5, &mut Generator::new(0)).to_vec::<f32>());
/// ```
pub fn uniform(shape: &[usize], low: f64, high: f64, g: &mut Generator) -> Tensor {
    Tensor::uniform_with(shape, low, high, DType::F32, g)
}

/// Normal with the given mean and standard deviation.
///
/// ```
/// use sinew_nn::init;
/// use sinew_tensor::Generator;
/// let w = init::normal(&[10_000], 1.0, 0.1, &mut Generator::new(0)).to_vec::<f32>();
/// let mean = w.iter().map(|&x| x as f64).sum::<f64>() / w.len() as f64;
/// let std = (w.iter().map(|&x| (x as f64 - mean).powi(2)).sum::<f64>() / w.len() as f64).sqrt();
/// assert!((mean - 1.0).abs() < 0.01 && (std - 0.1).abs() < 0.005);
/// ```
pub fn normal(shape: &[usize], mean: f64, std: f64, g: &mut Generator) -> Tensor {
    Tensor::normal_with(shape, mean, std, DType::F32, g)
}

/// Zeros.
///
/// ```
/// use sinew_nn::init;
/// let b = init::zeros(&[2, 3]);
/// assert_eq!(b.dims(), &[2, 3]);
/// assert_eq!(b.to_vec::<f32>(), vec![0.0; 6]);
/// ```
pub fn zeros(shape: &[usize]) -> Tensor {
    Tensor::zeros(shape)
}

/// Ones.
///
/// ```
/// use sinew_nn::init;
/// let w = init::ones(&[4]);
/// assert_eq!(w.to_vec::<f32>(), vec![1.0; 4]);
/// ```
pub fn ones(shape: &[usize]) -> Tensor {
    Tensor::ones(shape)
}

/// Glorot/Xavier uniform: `U(-a, a)` with `a = gain·√(6/(fan_in + fan_out))`.
///
/// ```
/// use sinew_nn::init;
/// use sinew_tensor::Generator;
/// let w = init::xavier_uniform(&[64, 32], 1.0, &mut Generator::new(0));
/// let bound = (6.0f64 / 96.0).sqrt();
/// assert!(w.abs().max_all().item() <= bound);
/// ```
pub fn xavier_uniform(shape: &[usize], gain: f64, g: &mut Generator) -> Tensor {
    let (fi, fo) = fans(shape);
    let a = gain * (6.0 / (fi + fo) as f64).sqrt();
    uniform(shape, -a, a, g)
}

/// Glorot/Xavier normal: `N(0, gain²·2/(fan_in + fan_out))`.
///
/// ```
/// use sinew_nn::init;
/// use sinew_tensor::Generator;
/// // std = √(2 / (200 + 300)) = 0.0632...
/// let w = init::xavier_normal(&[200, 300], 1.0, &mut Generator::new(0)).to_vec::<f32>();
/// let rms = (w.iter().map(|&x| (x as f64).powi(2)).sum::<f64>() / w.len() as f64).sqrt();
/// assert!((rms - (2.0f64 / 500.0).sqrt()).abs() < 0.002);
/// ```
pub fn xavier_normal(shape: &[usize], gain: f64, g: &mut Generator) -> Tensor {
    let (fi, fo) = fans(shape);
    normal(shape, 0.0, gain * (2.0 / (fi + fo) as f64).sqrt(), g)
}

/// Whether Kaiming initialisation preserves the variance of activations (`FanIn`, the
/// default) or of gradients (`FanOut`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum FanMode {
    /// Scale by the number of inputs.
    #[default]
    FanIn,
    /// Scale by the number of outputs.
    FanOut,
}

fn kaiming_std(shape: &[usize], a: f64, mode: FanMode, nonlinearity: &str) -> f64 {
    let (fi, fo) = fans(shape);
    let fan = match mode {
        FanMode::FanIn => fi,
        FanMode::FanOut => fo,
    };
    calculate_gain(nonlinearity, Some(a)) / (fan as f64).sqrt()
}

/// He/Kaiming uniform: `U(-b, b)` with `b = gain·√(3/fan)`. PyTorch's default for
/// `Linear` and `Conv` weights is `a = √5`, `leaky_relu`, fan in.
///
/// ```
/// use sinew_nn::Linear;
/// use sinew_nn::init::{self, FanMode};
/// use sinew_tensor::Generator;
/// // torch.nn.init.kaiming_uniform_(w, a=math.sqrt(5)): bound = √3·√(2/(1+5))/√16 = 1/4
/// let w = init::kaiming_uniform(&[8, 16], 5f64.sqrt(), FanMode::FanIn, "leaky_relu", &mut Generator::new(0));
/// assert!(w.abs().max_all().item() <= 0.25 + 1e-7);
/// assert!(w.abs().max_all().item() > 0.2);
/// // which is how nn.Linear(16, 8) initialises its weight
/// let fc = Linear::new(16, 8, &mut Generator::new(0));
/// assert!(fc.weight.value().allclose(&w, 1e-6, 1e-6));
/// ```
pub fn kaiming_uniform(
    shape: &[usize],
    a: f64,
    mode: FanMode,
    nonlinearity: &str,
    g: &mut Generator,
) -> Tensor {
    let b = 3f64.sqrt() * kaiming_std(shape, a, mode, nonlinearity);
    uniform(shape, -b, b, g)
}

/// He/Kaiming normal: `N(0, (gain/√fan)²)`.
///
/// ```
/// use sinew_nn::init::{self, FanMode};
/// use sinew_tensor::Generator;
/// // He init for relu: std = √(2 / fan_in) = √(2 / 128) = 0.125
/// let w = init::kaiming_normal(&[256, 128], 0.0, FanMode::FanIn, "relu", &mut Generator::new(0)).to_vec::<f32>();
/// let rms = (w.iter().map(|&x| (x as f64).powi(2)).sum::<f64>() / w.len() as f64).sqrt();
/// assert!((rms - 0.125).abs() < 0.002);
/// ```
pub fn kaiming_normal(
    shape: &[usize],
    a: f64,
    mode: FanMode,
    nonlinearity: &str,
    g: &mut Generator,
) -> Tensor {
    normal(shape, 0.0, kaiming_std(shape, a, mode, nonlinearity), g)
}

/// A (semi-)orthogonal matrix, flattened to `shape` (`torch.nn.init.orthogonal_`): the
/// Q factor of a Gaussian matrix with signs fixed by R's diagonal, times `gain`.
///
/// ```
/// use sinew_nn::init;
/// use sinew_tensor::Generator;
/// let q = init::orthogonal(&[4, 4], 1.0, &mut Generator::new(0)).to_dtype(sinew_tensor::DType::F64);
/// let qtq = q.t().matmul(&q);
/// assert!(qtq.allclose(&sinew_tensor::Tensor::eye_dtype(4, sinew_tensor::DType::F64), 1e-5, 1e-5));
/// ```
#[track_caller]
pub fn orthogonal(shape: &[usize], gain: f64, g: &mut Generator) -> Tensor {
    assert!(shape.len() >= 2, "orthogonal: needs at least 2 dimensions, got shape {shape:?}");
    let rows = shape[0];
    let cols: usize = shape[1..].iter().product();
    // Gram-Schmidt (twice, for stability) on the columns of a tall Gaussian matrix.
    let (m, n) = (rows.max(cols), rows.min(cols));
    let a = Tensor::randn_with(&[m, n], DType::F64, g).to_vec::<f64>();
    let mut q = vec![0.0f64; m * n];
    for j in 0..n {
        let mut v: Vec<f64> = (0..m).map(|i| a[i * n + j]).collect();
        for _ in 0..2 {
            for k in 0..j {
                let dot: f64 = (0..m).map(|i| q[i * n + k] * v[i]).sum();
                for i in 0..m {
                    v[i] -= dot * q[i * n + k];
                }
            }
        }
        let norm = v.iter().map(|x| x * x).sum::<f64>().sqrt().max(f64::MIN_POSITIVE);
        for i in 0..m {
            q[i * n + j] = v[i] / norm;
        }
    }
    let q = Tensor::from_vec(q, &[m, n]).expect("shape");
    let q = if rows < cols { q.t() } else { q };
    q.mul_scalar(gain).to_dtype(DType::F32).reshape(shape)
}

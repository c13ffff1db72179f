//! Serialisable optimizer and schedule state: plain data with serde derives, so a resumed
//! run continues bit for bit.

use serde::{Deserialize, Serialize};
use sinew_tensor::{DType, Tensor};

/// A tensor as plain serde data (dtype, shape, row-major values): optimizer buffers, and
/// the tensors callbacks save (sinew-train's `EarlyStopping` best weights). Values stay
/// typed, so a JSON state holds numbers and bincode writes each element exactly; the
/// checked constructor behind [`to_tensor`](StateTensor::to_tensor) is
/// `Tensor::from_vec` (shape against the data and the 2^60 limit).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum StateTensor {
    /// `f32` values.
    F32 {
        /// Shape.
        shape: Vec<usize>,
        /// Row-major values.
        data: Vec<f32>,
    },
    /// `f64` values.
    F64 {
        /// Shape.
        shape: Vec<usize>,
        /// Row-major values.
        data: Vec<f64>,
    },
    /// `i64` values (never an optimizer buffer, which is float: loading one into an
    /// optimizer is a [`StateError::DType`]).
    I64 {
        /// Shape.
        shape: Vec<usize>,
        /// Row-major values.
        data: Vec<i64>,
    },
}

impl StateTensor {
    /// Captures a tensor (views are read in their logical order).
    ///
    /// ```
    /// use sinew_optim::StateTensor;
    /// use sinew_tensor::Tensor;
    /// let s = StateTensor::from_tensor(&Tensor::arange(0.0, 4.0, 1.0).reshape(&[2, 2]));
    /// assert_eq!(s, StateTensor::F32 { shape: vec![2, 2], data: vec![0.0, 1.0, 2.0, 3.0] });
    /// ```
    pub fn from_tensor(t: &Tensor) -> Self {
        match t.dtype() {
            DType::F32 => StateTensor::F32 { shape: t.dims().to_vec(), data: t.to_vec() },
            DType::F64 => StateTensor::F64 { shape: t.dims().to_vec(), data: t.to_vec() },
            DType::I64 => StateTensor::I64 { shape: t.dims().to_vec(), data: t.to_vec() },
        }
    }

    /// Rebuilds the tensor.
    ///
    /// # Errors
    /// If the shape does not match the data.
    ///
    /// ```
    /// use sinew_optim::StateTensor;
    /// let s = StateTensor::F64 { shape: vec![2], data: vec![0.5, 1.5] };
    /// assert_eq!(s.to_tensor()?.to_vec::<f64>(), vec![0.5, 1.5]);
    /// let bad = StateTensor::F64 { shape: vec![3], data: vec![0.5, 1.5] };   // read from a corrupt file
    /// assert!(bad.to_tensor().is_err());
    /// # Ok::<(), sinew_tensor::TensorError>(())
    /// ```
    pub fn to_tensor(&self) -> Result<Tensor, sinew_tensor::TensorError> {
        match self {
            StateTensor::F32 { shape, data } => Tensor::from_vec(data.clone(), shape),
            StateTensor::F64 { shape, data } => Tensor::from_vec(data.clone(), shape),
            StateTensor::I64 { shape, data } => Tensor::from_vec(data.clone(), shape),
        }
    }

    /// [`to_tensor`](StateTensor::to_tensor) without copying the values.
    ///
    /// # Errors
    /// If the shape does not match the data.
    ///
    /// ```
    /// use sinew_optim::StateTensor;
    /// let s = StateTensor::I64 { shape: vec![1, 2], data: vec![3, 4] };
    /// assert_eq!(s.into_tensor()?.to_vec::<i64>(), vec![3, 4]);
    /// # Ok::<(), sinew_tensor::TensorError>(())
    /// ```
    pub fn into_tensor(self) -> Result<Tensor, sinew_tensor::TensorError> {
        match self {
            StateTensor::F32 { shape, data } => Tensor::from_vec(data, &shape),
            StateTensor::F64 { shape, data } => Tensor::from_vec(data, &shape),
            StateTensor::I64 { shape, data } => Tensor::from_vec(data, &shape),
        }
    }
}

/// The hyper-parameters of one parameter group that schedules and users change.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct GroupState {
    /// Learning rate.
    pub lr: f64,
    /// Weight decay.
    pub weight_decay: f64,
}

/// Everything an optimizer needs to resume: its kind, step count, group settings and
/// per-parameter buffers (in parameter order, each a list of named buffers).
///
/// Binary formats (bincode) keep every value exactly. With JSON, enable `serde_json`'s
/// `float_roundtrip` feature: its default float parser may be one ulp off, and a resumed
/// run then drifts from the uninterrupted one.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct OptimizerState {
    /// `sgd`, `adam`, `adamw`, `rmsprop` or `adagrad`.
    pub kind: String,
    /// Calls to `step` so far.
    pub step: u64,
    /// Per parameter (groups flattened in order), the updates it has received: PyTorch's
    /// per-parameter `step`, which Adam's bias correction and Adagrad's decay use. A
    /// parameter without a gradient in some step does not advance it.
    pub param_steps: Vec<u64>,
    /// Per group.
    pub groups: Vec<GroupState>,
    /// Per parameter (groups flattened in order): named buffers, empty before the first step.
    pub buffers: Vec<Vec<(String, StateTensor)>>,
}

/// Why a state could not be loaded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StateError {
    /// The state belongs to another optimizer.
    #[error("optimizer state is for `{found}`, not `{expected}`")]
    Kind {
        /// This optimizer.
        expected: String,
        /// The state's.
        found: String,
    },
    /// The number of groups or parameters differs.
    #[error("optimizer state has {found} {what}, this optimizer has {expected}")]
    Count {
        /// `groups` or `parameters`.
        what: &'static str,
        /// This optimizer's count.
        expected: usize,
        /// The state's count.
        found: usize,
    },
    /// A parameter's saved buffers are not the ones this optimizer keeps (another
    /// configuration: AMSGrad on or off, SGD with or without momentum).
    #[error("optimizer state for parameter {index} has buffers {found:?}, this optimizer keeps {expected:?}")]
    Buffers {
        /// Parameter position.
        index: usize,
        /// This optimizer's buffer names.
        expected: Vec<String>,
        /// The state's.
        found: Vec<String>,
    },
    /// A buffer's element type is not its parameter's.
    #[error("optimizer state for parameter {index}: buffer {name:?} is {found}, the parameter {expected}")]
    DType {
        /// Parameter position.
        index: usize,
        /// Buffer name.
        name: String,
        /// Parameter dtype.
        expected: String,
        /// Buffer dtype.
        found: String,
    },
    /// A buffer does not fit its parameter.
    #[error(
        "optimizer state for parameter {index}: buffer {name:?} has shape {found:?}, the parameter {expected:?}"
    )]
    Shape {
        /// Parameter position.
        index: usize,
        /// Buffer name.
        name: String,
        /// Parameter shape.
        expected: Vec<usize>,
        /// Buffer shape.
        found: Vec<usize>,
    },
    /// A value the optimizer could not continue from: a parameter's step count that
    /// disagrees with its buffers or with the optimizer's own count, a learning rate or
    /// weight decay that is negative or not finite, a buffer holding NaN or infinity, or a
    /// negative running average of squares (its square root would be NaN).
    #[error("optimizer state: {0}")]
    Invalid(String),
}

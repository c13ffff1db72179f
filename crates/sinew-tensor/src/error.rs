//! The error type for recoverable failures: user-supplied data and shapes.

use crate::DType;

/// What went wrong in a fallible tensor operation (`from_vec`, `try_reshape`, `try_matmul`, ...).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TensorError {
    /// The data length does not match the number of elements the shape needs.
    #[error("{op}: {len} values cannot fill shape {shape:?} ({numel} elements)")]
    DataLength {
        /// The operation.
        op: &'static str,
        /// Length of the data given.
        len: usize,
        /// The shape asked for.
        shape: Vec<usize>,
        /// Elements that shape holds.
        numel: usize,
    },
    /// Two or more shapes that the operation needs to agree do not.
    #[error("{op}: incompatible shapes {lhs:?} and {rhs:?}{detail}")]
    ShapeMismatch {
        /// The operation.
        op: &'static str,
        /// The first shape.
        lhs: Vec<usize>,
        /// The second shape.
        rhs: Vec<usize>,
        /// Extra explanation (may be empty, else starts with ": ").
        detail: String,
    },
    /// A dimension index outside `-ndim..ndim`.
    #[error("{op}: dimension {dim} is out of range for a tensor of {ndim} dimensions")]
    DimOutOfRange {
        /// The operation.
        op: &'static str,
        /// The dimension given.
        dim: isize,
        /// The tensor's number of dimensions.
        ndim: usize,
    },
    /// An argument that is invalid whatever the shapes (a zero stride, a negative size, ...).
    #[error("{op}: {msg}")]
    InvalidArgument {
        /// The operation.
        op: &'static str,
        /// What is wrong.
        msg: String,
    },
    /// The operation does not support this element type.
    #[error("{op}: not supported for {dtype} tensors{detail}")]
    UnsupportedDType {
        /// The operation.
        op: &'static str,
        /// The element type given.
        dtype: DType,
        /// Extra explanation (may be empty, else starts with ": ").
        detail: String,
    },
    /// The shape describes more elements than any tensor may hold (its extent, the
    /// product of its dimensions each counted as at least 1, exceeds
    /// [`MAX_EXTENT`](crate::shape::MAX_EXTENT) = 2^60), or a size computed from the
    /// arguments overflows.
    #[error("{op}: shape {shape:?} is too large (more than 2^60 elements)")]
    TooLarge {
        /// The operation.
        op: &'static str,
        /// The shape asked for (or the output shape the arguments imply).
        shape: Vec<usize>,
    },
    /// A linear-algebra op failed on the values, not the shapes (PyTorch's
    /// `torch.linalg.LinAlgError`): a singular matrix for `solve` / `inv`, a matrix that is
    /// not positive-definite for `cholesky`, a decomposition that did not converge.
    #[error("{op}: {msg} (input of shape {shape:?})")]
    LinAlg {
        /// The operation.
        op: &'static str,
        /// The shape of the input matrix (or batch of matrices).
        shape: Vec<usize>,
        /// What went wrong, naming the batch element when there is a batch.
        msg: String,
    },
    /// The tensor's memory is not laid out as the operation needs (e.g. `view` of a
    /// non-contiguous tensor).
    #[error("{op}: {msg}")]
    Layout {
        /// The operation.
        op: &'static str,
        /// What is wrong.
        msg: String,
    },
}

/// `Result` with [`TensorError`].
pub type Result<T, E = TensorError> = std::result::Result<T, E>;

/// Unwraps a `try_` result for the panicking twin, so the panic names the caller's line.
#[track_caller]
#[inline]
pub(crate) fn or_panic<T>(r: Result<T>) -> T {
    match r {
        Ok(v) => v,
        Err(e) => panic!("{e}"),
    }
}

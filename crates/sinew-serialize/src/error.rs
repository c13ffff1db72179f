//! The error type of everything that reads or writes files.

use std::path::PathBuf;

/// What went wrong while saving or loading.
#[derive(Debug, thiserror::Error)]
pub enum SerializeError {
    /// The file system refused (open, read, write, sync, rename).
    #[error("{action} {path}: {source}")]
    Io {
        /// What was being done.
        action: &'static str,
        /// The file.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The bytes are not a valid safetensors file.
    #[error("invalid safetensors data: {0}")]
    SafeTensors(String),
    /// A tensor's element type has no sinew equivalent.
    #[error(
        "tensor {name:?}: element type {dtype} is not supported (sinew reads f32, f64, f16, bf16, i64, i32)"
    )]
    UnsupportedDType {
        /// The tensor's name.
        name: String,
        /// The element type found.
        dtype: String,
    },
    /// A tensor's declared shape does not match its data.
    #[error("tensor {name:?}: shape {shape:?} does not match {bytes} bytes of data")]
    ShapeMismatch {
        /// The tensor's name.
        name: String,
        /// Declared shape.
        shape: Vec<usize>,
        /// Bytes of data.
        bytes: usize,
    },
}

/// `Result` with [`SerializeError`].
pub type Result<T, E = SerializeError> = std::result::Result<T, E>;

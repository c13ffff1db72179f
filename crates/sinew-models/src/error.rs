//! `ModelError`: every way a model folder, its files or a model's input can be wrong.

use std::path::{Path, PathBuf};

use sinew_nn::LoadReport;
use sinew_serialize::SerializeError;

/// What went wrong loading or running a pretrained model. Each variant names the file,
/// field or tensor at fault.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ModelError {
    /// A file the model needs is not in its folder.
    #[error("{}: not found (a Hugging Face model folder holds config.json, model.safetensors and tokenizer.json)", path.display())]
    MissingFile {
        /// The file looked for.
        path: PathBuf,
    },
    /// The file system refused.
    #[error("reading {}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// A configuration file (`config.json`, `1_Pooling/config.json`, ...) is malformed or
    /// describes something sinew cannot build.
    #[error("{}{msg}", path.as_ref().map(|p| format!("{}: ", p.display())).unwrap_or_default())]
    Config {
        /// The file, when the text came from one.
        path: Option<PathBuf>,
        /// What is wrong.
        msg: String,
    },
    /// The weights file could not be read.
    #[error("{}: {source}", path.display())]
    Weights {
        /// The weights file.
        path: PathBuf,
        /// Why.
        source: Box<SerializeError>,
    },
    /// The weights do not fit the architecture the configuration describes: the report
    /// names the missing, unexpected and mis-shaped tensors.
    #[error("{}the weights do not match config.json: {report}", path.as_ref().map(|p| format!("{}: ", p.display())).unwrap_or_default())]
    Mismatch {
        /// The weights file, when they came from one.
        path: Option<PathBuf>,
        /// Which tensors are wrong.
        report: Box<LoadReport>,
    },
    /// The tokenizer could not be loaded or failed on an input.
    #[error("tokenizer: {0}")]
    Tokenizer(String),
    /// A model's input is wrong (shapes, ids out of range, dtypes).
    #[error("{0}")]
    Input(String),
    /// A tensor could not be built (building inputs by hand).
    #[error(transparent)]
    Tensor(#[from] sinew_tensor::TensorError),
}

/// `Result` with [`ModelError`].
pub type Result<T, E = ModelError> = std::result::Result<T, E>;

impl ModelError {
    /// The same configuration error, naming the file it came from.
    pub(crate) fn in_file(self, file: &Path) -> Self {
        match self {
            ModelError::Config { path: None, msg } => {
                ModelError::Config { path: Some(file.to_path_buf()), msg }
            }
            other => other,
        }
    }
}

/// A file's text, with a missing file reported as [`ModelError::MissingFile`].
pub(crate) fn read_text(path: &Path) -> Result<String> {
    std::fs::read_to_string(path).map_err(|source| {
        if source.kind() == std::io::ErrorKind::NotFound {
            ModelError::MissingFile { path: path.to_path_buf() }
        } else {
            ModelError::Io { path: path.to_path_buf(), source }
        }
    })
}

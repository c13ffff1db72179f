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

/// Parses a configuration's JSON text and validates it: the one path of
/// `BertConfig::from_json` and `Gpt2Config::from_json`.
pub(crate) fn parse_config<T: serde::de::DeserializeOwned>(
    text: &str,
    validate: impl FnOnce(&T) -> Result<()>,
) -> Result<T> {
    let config: T =
        serde_json::from_str(text).map_err(|e| ModelError::Config { path: None, msg: e.to_string() })?;
    validate(&config)?;
    Ok(config)
}

/// A configuration file through [`parse_config`], errors naming the file.
pub(crate) fn read_config<T: serde::de::DeserializeOwned>(
    path: &Path,
    validate: impl FnOnce(&T) -> Result<()>,
) -> Result<T> {
    parse_config(&read_text(path)?, validate).map_err(|e| e.in_file(path))
}

/// The weights of a Hugging Face model folder (`dir/model.safetensors`, or the
/// `torch.save` file `dir/pytorch_model.bin` of older models when there is no
/// safetensors file), handed to `build`; a [`ModelError::Mismatch`] from it is given the
/// file's path.
pub(crate) fn load_folder_weights<M>(
    dir: &Path,
    build: impl FnOnce(Vec<(String, sinew_tensor::Tensor)>) -> Result<M>,
) -> Result<M> {
    let safetensors = dir.join("model.safetensors");
    let bin = dir.join("pytorch_model.bin");
    let (path, weights) = if safetensors.is_file() {
        (safetensors.clone(), sinew_serialize::load_safetensors(&safetensors))
    } else if bin.is_file() {
        (bin.clone(), sinew_serialize::load_torch(&bin).map(sinew_serialize::StateDict::into_vec))
    } else {
        return Err(ModelError::MissingFile { path: safetensors });
    };
    let weights =
        weights.map_err(|source| ModelError::Weights { path: path.clone(), source: Box::new(source) })?;
    build(weights).map_err(|e| match e {
        ModelError::Mismatch { report, .. } => ModelError::Mismatch { path: Some(path), report },
        other => other,
    })
}

/// Casts `model` to the float type of its weight `dtype_of` (when the file has it), loads
/// `weights` strictly and switches to evaluation mode: the end of every `from_weights`.
pub(crate) fn load_strict(
    model: &dyn sinew_nn::Module,
    weights: &[(String, sinew_tensor::Tensor)],
    dtype_of: &str,
) -> Result<()> {
    let dtype = weights.iter().find(|(n, _)| n == dtype_of).map(|(_, t)| t.dtype());
    if let Some(dtype) = dtype.filter(|d| d.is_float()) {
        model.cast(dtype);
    }
    model
        .load_state_dict(weights, true)
        .map_err(|report| ModelError::Mismatch { path: None, report: Box::new(report) })?;
    model.eval();
    Ok(())
}

/// Checks that `x` is an `i64` tensor of shape `dims` whose values lie in `0..n`; the
/// error (an [`ModelError::Input`]) starts with `who` and names the input.
pub(crate) fn check_ids(
    who: &str,
    name: &str,
    x: &sinew_tensor::Tensor,
    dims: &[usize],
    n: usize,
) -> Result<()> {
    if x.dtype() != sinew_tensor::DType::I64 || x.dims() != dims {
        return Err(ModelError::Input(format!(
            "{who}: {name} must be i64 of shape {dims:?}, got {:?} {:?}",
            x.dtype(),
            x.dims()
        )));
    }
    if let Some(v) = x.to_vec::<i64>().into_iter().find(|&v| v < 0 || v as u64 >= n as u64) {
        return Err(ModelError::Input(format!("{who}: {name} holds {v}, outside 0..{n}")));
    }
    Ok(())
}

//! The error type of everything that reads or writes files.

use std::path::PathBuf;

use sinew_nn::LoadReport;

/// What went wrong while saving or loading. Every way a file can be wrong (truncated,
/// corrupt, of another kind, from a newer sinew) is one of these, never a panic.
///
/// ```
/// use sinew_serialize::{Checkpoint, SerializeError};
/// let err = Checkpoint::from_bytes(b"hello").unwrap_err();
/// assert!(matches!(err, SerializeError::WrongFormat { .. }));
/// assert!(err.to_string().contains("not a sinew checkpoint"));
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
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
        "tensor {name:?}: element type {dtype} is not supported (sinew reads f32, f64, f16, bf16, i64, i32, i16, i8, u8, bool)"
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
    /// Two tensors with the same name (a state dict's names are keys).
    #[error("duplicate tensor name {0:?}")]
    DuplicateName(String),
    /// The bytes are some other kind of file (wrong magic bytes).
    #[error("not a sinew checkpoint: {found}")]
    WrongFormat {
        /// What the file looks like instead.
        found: String,
    },
    /// The checkpoint was written in a format version this build does not read.
    #[error(
        "checkpoint format version {found} is not supported: this build of sinew reads version {supported}{}",
        if *found > *supported { " (the file is from a newer sinew; upgrade to load it)" } else { "" }
    )]
    UnsupportedVersion {
        /// The file's version.
        found: u32,
        /// The version this build reads and writes.
        supported: u32,
    },
    /// The file ends before the length its header declares (an interrupted copy).
    #[error("truncated {what}: {expected} bytes expected, {found} present")]
    Truncated {
        /// Which part is cut short.
        what: &'static str,
        /// Bytes the format or the header requires.
        expected: u64,
        /// Bytes present.
        found: u64,
    },
    /// A stored checksum does not match the bytes it covers.
    #[error(
        "checkpoint {what} checksum mismatch: stored {stored:#010x}, computed {computed:#010x} (the file is corrupt)"
    )]
    Checksum {
        /// `header` or `payload`.
        what: &'static str,
        /// The checksum in the file.
        stored: u32,
        /// The checksum of the bytes read.
        computed: u32,
    },
    /// The checkpoint's structure is invalid in a way the checksums do not explain.
    #[error("corrupt checkpoint: {0}")]
    Corrupt(String),
    /// Something could not be encoded.
    #[error("cannot encode checkpoint: {0}")]
    Encode(String),
    /// A `torch.save` file's pickle names a global that a weights-only load does not
    /// allow (`os.system`, `builtins.eval`, a user's class): the load stops there, and
    /// nothing in the file is ever run.
    #[error(
        "the file's pickle calls {name}, which a weights-only load does not allow (nothing was run): \
         only tensors, containers and numbers are read from torch.save files"
    )]
    ForbiddenGlobal {
        /// The global, as `module.name`.
        name: String,
    },
    /// A `torch.save` file's pickle is malformed.
    #[error("invalid pickle at byte {offset}: {msg}")]
    Pickle {
        /// Where in the pickle.
        offset: usize,
        /// What is wrong.
        msg: String,
    },
    /// A `torch.save` file is malformed, or holds what sinew does not read.
    #[error("invalid PyTorch file: {0}")]
    Torch(String),
    /// A strict load found names, shapes or dtypes that differ from the module's.
    #[error("{0}")]
    StateDict(LoadReport),
}

/// `Result` with [`SerializeError`].
///
/// ```
/// fn load() -> sinew_serialize::Result<sinew_serialize::Checkpoint> {
///     sinew_serialize::Checkpoint::load("/no/such/file")
/// }
/// assert!(load().is_err());
/// ```
pub type Result<T, E = SerializeError> = std::result::Result<T, E>;

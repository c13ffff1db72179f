//! [`DataError`]: what can go wrong reading data from the outside world.

use std::path::PathBuf;

/// What went wrong reading a data file. Readers return it instead of panicking, whatever
/// the input.
///
/// ```
/// use sinew_data::{CsvOptions, DataError, read_csv_str};
/// let err = read_csv_str("1,2,0\n3,x,1\n", &CsvOptions::default()).unwrap_err();
/// assert!(matches!(err, DataError::Csv { line: 2, column: 2, .. }));
/// assert_eq!(err.to_string(), "CSV line 2, column 2: `x` is not a number");
/// ```
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    /// A CSV row or cell that cannot be read. `line` and `column` count from 1; `line`
    /// counts physical lines including the header and blank lines, `column` counts fields.
    #[error("CSV line {line}, column {column}: {msg}")]
    Csv {
        /// The line (1-based).
        line: usize,
        /// The field (1-based).
        column: usize,
        /// What is wrong.
        msg: String,
    },
    /// A malformed IDX file (the MNIST format): wrong magic, a bad dimension count,
    /// declared sizes that disagree with the data, a corrupt gzip stream.
    #[error("IDX: {0}")]
    Idx(String),
    /// The file could not be read.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
}

impl DataError {
    pub(crate) fn csv(line: usize, column: usize, msg: impl Into<String>) -> DataError {
        DataError::Csv { line, column, msg: msg.into() }
    }

    pub(crate) fn idx(msg: impl Into<String>) -> DataError {
        DataError::Idx(msg.into())
    }
}

/// `Result` with [`DataError`].
pub type Result<T, E = DataError> = std::result::Result<T, E>;

//! The one error type of the reconciliation engine; bad input rows are not errors (they are counted and reported).

use std::path::PathBuf;

/// Everything that stops a reconciliation run. A bad row in an input file is not an error:
/// it is counted, reported with its file, line and reason, and the run goes on.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReconError {
    /// A file could not be read or written.
    #[error("cannot access {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A layout file is not valid TOML or does not describe a usable layout.
    #[error("invalid layout {origin}: {reason}")]
    Layout { origin: String, reason: String },
    /// An input file cannot be read as its layout says, as a whole (not one bad row: for
    /// example a header line that is not valid in the file's encoding).
    #[error("{path}, line {line}: {reason}")]
    Input {
        path: PathBuf,
        line: u64,
        reason: String,
    },
    /// The rules file is not valid TOML or its values are out of range.
    #[error("invalid rules {origin}: {reason}")]
    Rules { origin: String, reason: String },
    /// A Parquet file could not be read or written.
    #[error("parquet {path}: {reason}")]
    Parquet { path: PathBuf, reason: String },
    /// A command-line value is out of range.
    #[error("invalid argument: {0}")]
    Argument(String),
    /// A broken invariant: a bug in the engine.
    #[error("internal error: {0}")]
    Internal(String),
}

impl ReconError {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        ReconError::Io {
            path: path.into(),
            source,
        }
    }
}

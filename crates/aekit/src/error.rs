//! One error type for the library. Every variant names what was being read or
//! checked, so a message reaching the user says which file and what is wrong.

use std::path::{Path, PathBuf};

/// Errors returned at the library's boundaries.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An operating-system I/O failure on a named file.
    #[error("{op} {}", path.display())]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A file whose contents are not what its format requires.
    #[error("{}: {detail}", path.display())]
    Format { path: PathBuf, detail: String },
    /// Arrays whose sizes disagree.
    #[error("shape mismatch in {what}: expected {expected}, got {got}")]
    Shape {
        what: String,
        expected: String,
        got: String,
    },
    /// A configuration value outside its allowed range.
    #[error("invalid setting `{field}`: {reason}")]
    Config { field: String, reason: String },
    /// Training stopped on request (Ctrl-C, SIGTERM); the last complete
    /// checkpoint is kept.
    #[error("interrupted: {0}")]
    Interrupted(String),
    /// A dataset that could not be fetched or failed its checksum.
    #[error("{0}")]
    Download(String),
    /// A GPU that cannot be used (no driver, no such device) or a failure
    /// on it.
    #[error("GPU: {0}")]
    Device(String),
}

/// The library's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub fn io(op: &'static str, path: &Path, source: std::io::Error) -> Self {
        Error::Io {
            op,
            path: path.to_path_buf(),
            source,
        }
    }

    pub fn format(path: &Path, detail: impl Into<String>) -> Self {
        Error::Format {
            path: path.to_path_buf(),
            detail: detail.into(),
        }
    }

    pub fn config(field: &str, reason: impl Into<String>) -> Self {
        Error::Config {
            field: field.to_string(),
            reason: reason.into(),
        }
    }

    pub fn shape(what: &str, expected: impl ToString, got: impl ToString) -> Self {
        Error::Shape {
            what: what.to_string(),
            expected: expected.to_string(),
            got: got.to_string(),
        }
    }
}

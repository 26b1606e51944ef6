use std::path::PathBuf;
use thiserror::Error;

/// A failure reading or writing a study file; always names the file.
#[derive(Debug, Error)]
pub enum StoreError {
    /// The file system refused (missing file, permissions, disk full, ...).
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The file exists but its content is wrong (malformed JSON, wrong schema, bad field).
    #[error("{}: {source}", path.display())]
    Invalid {
        path: PathBuf,
        #[source]
        source: nago_space::SpaceError,
    },
    /// Another process holds the study lock.
    #[error("{}: another nago-propose or nago-update is running on this study (it holds this lock{holder}); wait for it to finish", path.display())]
    Locked { path: PathBuf, holder: String },
    /// Anything else, with the file it concerns.
    #[error("{}: {message}", path.display())]
    Other { path: PathBuf, message: String },
}

impl StoreError {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        StoreError::Io {
            path: path.into(),
            source,
        }
    }
}

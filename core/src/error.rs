//! The typed errors of the engine.

use thiserror::Error;

use crate::ids::DocKind;

/// Everything that can go wrong in `concord-core`.
#[derive(Debug, Error)]
pub enum Error {
    /// SQLite's message is part of this error's text, so the `rusqlite::Error` is not also
    /// reported as its `source()`: printing the chain (`{:#}` in anyhow) would repeat it
    /// ("storage error: database is locked: database is locked: ...").
    #[error("storage error: {0}")]
    Sqlite(rusqlite::Error),
    #[error(
        "the store's schema version {found} is newer than this build understands ({supported})"
    )]
    SchemaTooNew { found: i64, supported: i64 },
    #[error("invalid document id {0:?}: use 1-256 printable ASCII characters without spaces")]
    InvalidDocId(String),
    #[error("unknown document kind {0:?}: use \"automerge\" or \"yrs\"")]
    UnknownDocKind(String),
    #[error("no document {0:?} in this store")]
    NoSuchDoc(String),
    #[error("document {0:?} already exists")]
    DocExists(String),
    #[error("document {id:?} is a {actual} document, not {expected}")]
    KindMismatch {
        id: String,
        expected: DocKind,
        actual: DocKind,
    },
    #[error("invalid path {path:?}: {reason}")]
    InvalidPath { path: String, reason: String },
    #[error("cannot apply this edit: {0}")]
    InvalidEdit(String),
    #[error("update does not decode as {kind}: {reason}")]
    InvalidUpdate { kind: DocKind, reason: String },
    #[error("update refused ({kind}): {detail}")]
    MissingDependencies { kind: DocKind, detail: String },
    #[error("update refused ({kind}): {detail}")]
    TypeConflict { kind: DocKind, detail: String },
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
}

impl From<rusqlite::Error> for Error {
    fn from(e: rusqlite::Error) -> Error {
        Error::Sqlite(e)
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::Error;

    /// The error's text and every source's, the way `anyhow`'s `{:#}` prints them.
    fn chain(e: &dyn std::error::Error) -> String {
        let mut text = e.to_string();
        let mut source = e.source();
        while let Some(cause) = source {
            text = format!("{text}: {cause}");
            source = cause.source();
        }
        text
    }

    #[test]
    fn a_sqlite_error_is_reported_once() {
        let locked = |message: Option<&str>| {
            Error::from(rusqlite::Error::SqliteFailure(
                rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_BUSY),
                message.map(str::to_string),
            ))
        };
        assert_eq!(
            chain(&locked(Some("database is locked"))),
            "storage error: database is locked"
        );
        let text = chain(&locked(None));
        assert_eq!(text.matches("database is locked").count(), 1, "{text}");
    }
}

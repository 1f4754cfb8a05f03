//! The typed errors of the engine.
//!
//! SQLite's errors are wrapped in the opaque [`StorageError`], so core's public API does
//! not expose `rusqlite` (the conversion from `rusqlite::Error` exists for `?`).

use std::fmt;

use thiserror::Error;

use crate::kind::DocKind;

/// Everything that can go wrong in `concord-core`.
#[derive(Debug, Error)]
pub enum Error {
    /// SQLite's message is part of this error's text, so the [`StorageError`] is not also
    /// reported as its `source()`: printing the chain (`{:#}` in anyhow) would repeat it
    /// ("storage error: database is locked: database is locked: ...").
    #[error("storage error: {0}")]
    Storage(StorageError),
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
    #[error(
        "the value at {path:?} nests maps and lists deeper than {limit} levels: read a path \
         inside it"
    )]
    TooDeep { path: String, limit: usize },
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
}

impl From<rusqlite::Error> for Error {
    fn from(e: rusqlite::Error) -> Error {
        Error::Storage(StorageError(e))
    }
}

/// A failure of the SQLite database underneath a store: its text is SQLite's message.
/// Opaque: ask it what it means ([`StorageError::is_corruption`], [`StorageError::is_busy`],
/// [`StorageError::code`]) rather than matching on the database library's error.
pub struct StorageError(rusqlite::Error);

impl StorageError {
    /// SQLite's extended result code, when SQLite itself reported the failure.
    pub fn code(&self) -> Option<i32> {
        match &self.0 {
            rusqlite::Error::SqliteFailure(e, _) => Some(e.extended_code),
            _ => None,
        }
    }

    /// True when SQLite found the file damaged (`SQLITE_CORRUPT`) or not a database at
    /// all (`SQLITE_NOTADB`).
    pub fn is_corruption(&self) -> bool {
        matches!(
            self.0.sqlite_error_code(),
            Some(rusqlite::ErrorCode::DatabaseCorrupt | rusqlite::ErrorCode::NotADatabase)
        )
    }

    /// True when another connection held the lock for longer than the busy timeout.
    pub fn is_busy(&self) -> bool {
        matches!(
            self.0.sqlite_error_code(),
            Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked)
        )
    }
}

impl fmt::Display for StorageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

impl fmt::Debug for StorageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

/// No `source()`: the SQLite error's text is already this error's text.
impl std::error::Error for StorageError {}

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

    #[test]
    fn a_storage_error_says_what_it_means_without_naming_rusqlite() {
        let failure = |code| {
            Error::from(rusqlite::Error::SqliteFailure(
                rusqlite::ffi::Error::new(code),
                None,
            ))
        };
        let Error::Storage(busy) = failure(rusqlite::ffi::SQLITE_BUSY) else {
            panic!("a SQLite failure is a storage error");
        };
        assert!(busy.is_busy() && !busy.is_corruption());
        assert_eq!(busy.code(), Some(rusqlite::ffi::SQLITE_BUSY));
        let Error::Storage(corrupt) = failure(rusqlite::ffi::SQLITE_CORRUPT) else {
            panic!("a SQLite failure is a storage error");
        };
        assert!(corrupt.is_corruption() && !corrupt.is_busy());
    }
}

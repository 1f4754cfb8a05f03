//! The typed errors of the engine.

use thiserror::Error;

use crate::ids::DocKind;

/// Everything that can go wrong in `concord-core`.
#[derive(Debug, Error)]
pub enum Error {
    #[error("storage error: {0}")]
    Sqlite(#[from] rusqlite::Error),
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

pub type Result<T, E = Error> = std::result::Result<T, E>;

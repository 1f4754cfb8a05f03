//! The relay storage's error type.

use thiserror::Error;

/// Why a storage operation failed. The wrapped errors are shown through `source()` only,
/// so an error chain prints each message once.
#[derive(Debug, Error)]
pub enum StorageError {
    #[error("SQLite failed")]
    Sqlite(#[from] rusqlite::Error),
    #[error("corrupt stored data: {0}")]
    Corrupt(String),
    /// The file was written by a newer relay: this build does not know its layout, so it
    /// opens nothing rather than write to it.
    #[error(
        "the database is schema version {found}, newer than this relay understands ({supported}): run a newer relay"
    )]
    SchemaTooNew { found: i64, supported: i64 },
    /// SQLite failed under the shared update log ([`concord_core::log`]).
    #[error("SQLite failed")]
    Log(#[source] concord_core::StorageError),
    /// An update was refused by its document (does not decode or integrate): the only
    /// variant that is the client's fault.
    #[error("document error")]
    Doc(#[source] concord_core::Error),
}

/// Core's errors by meaning: its SQLite failures and corrupt stored data (a version vector
/// that does not decode) are the relay's own failures, never a refused update.
impl From<concord_core::Error> for StorageError {
    fn from(e: concord_core::Error) -> StorageError {
        match e {
            concord_core::Error::Storage(e) => StorageError::Log(e),
            concord_core::Error::Corrupt(detail) => StorageError::Corrupt(detail),
            e => StorageError::Doc(e),
        }
    }
}

impl StorageError {
    /// For data read back from the file: whatever it fails with (a checkpoint or logged
    /// update that no longer loads included) is the relay's failure, not the client's.
    pub fn stored(e: concord_core::Error) -> StorageError {
        match StorageError::from(e) {
            StorageError::Doc(e) => StorageError::Corrupt(e.to_string()),
            e => e,
        }
    }

    /// The message with its causes, `": "`-separated (for refusals and logs).
    pub fn chain(&self) -> String {
        let mut text = self.to_string();
        let mut source = std::error::Error::source(self);
        while let Some(e) = source {
            text.push_str(": ");
            text.push_str(&e.to_string());
            source = e.source();
        }
        text
    }
}

pub type Result<T> = std::result::Result<T, StorageError>;

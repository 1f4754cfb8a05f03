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
    #[error("document error")]
    Doc(#[from] concord_core::Error),
}

impl StorageError {
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

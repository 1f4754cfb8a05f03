//! The cluster stores' error type, and its conversion to openraft's storage error at the
//! trait boundary.

use openraft::{AnyError, StorageIOError};
use thiserror::Error;

use super::type_config::{NodeId, RaftStorageError};
use crate::storage::StorageError;

/// Why opening or using a cluster store (consensus log, state machine, snapshot) failed.
#[derive(Debug, Error)]
pub enum ClusterStoreError {
    #[error("SQLite failed")]
    Sqlite(#[from] rusqlite::Error),
    #[error("relay storage failed")]
    Storage(#[from] StorageError),
    #[error("file I/O failed")]
    Io(#[from] std::io::Error),
    #[error("stored value does not decode")]
    Json(#[from] serde_json::Error),
    #[error("stored value does not encode or decode")]
    Encoding(#[from] postcard::Error),
    #[error("corrupt stored data: {0}")]
    Corrupt(String),
    #[error("storage task failed")]
    Task(#[from] tokio::task::JoinError),
}

impl ClusterStoreError {
    /// As openraft's error, with the subject and verb `kind` names (e.g.
    /// [`StorageIOError::write_logs`]).
    pub fn into_raft(
        self,
        kind: impl FnOnce(AnyError) -> StorageIOError<NodeId>,
    ) -> RaftStorageError {
        kind(AnyError::new(&self)).into()
    }
}

/// Runs `work` (SQLite or file I/O) on tokio's blocking pool, so no async task blocks;
/// a failure becomes openraft's error named by `kind`.
pub async fn blocking<T, F>(
    kind: impl FnOnce(AnyError) -> StorageIOError<NodeId>,
    work: F,
) -> Result<T, RaftStorageError>
where
    T: Send + 'static,
    F: FnOnce() -> Result<T, ClusterStoreError> + Send + 'static,
{
    match tokio::task::spawn_blocking(work).await {
        Ok(result) => result.map_err(|e| e.into_raft(kind)),
        Err(e) => Err(ClusterStoreError::from(e).into_raft(kind)),
    }
}

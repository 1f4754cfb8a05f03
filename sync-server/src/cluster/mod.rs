//! The relay cluster's consensus storage on openraft (0.9, storage v2): each node keeps
//! its consensus log in its own SQLite file and applies the committed log to the relay's
//! own [`Storage`](crate::storage::Storage) state machine.
//!
//! Files: `type_config` (openraft types: nodes, batches in, outcomes and LSN out),
//! `log_store` (the consensus log, vote and committed id in `raft.db`), `state_machine`
//! (the relay storage driven by the log; snapshots are copies of its database),
//! `snapshot_file` (the current snapshot on disk), `error` (errors and the blocking pool).
//!
//! Not wired into the request path yet: a single relay applies through `Storage` directly.

mod error;
pub mod log_store;
mod snapshot_file;
pub mod state_machine;
pub mod type_config;

pub use error::ClusterStoreError;
pub use log_store::LogStore;
pub use state_machine::StateMachine;
pub use type_config::{Applied, Batch, ClusterNode, NodeId, TypeConfig};

#[cfg(test)]
mod tests;

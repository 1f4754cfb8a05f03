//! The relay cluster on openraft (0.9, storage v2): each node keeps its consensus log in
//! its own SQLite file and applies the committed log to the relay's own
//! [`Storage`](crate::storage::Storage) state machine, which fans out to the node's
//! subscribers.
//!
//! Storage (off the serving path): `type_config` (openraft types: nodes, batches in,
//! outcomes and LSN out), `log_store` (the consensus log, vote and committed id in
//! `raft.db`), `state_machine` (the relay storage driven by the log; snapshots are copies
//! of its database), `snapshot_file` (the current snapshot on disk), `error` (errors and
//! the blocking pool).
//!
//! Running a node: `settings` (the `[cluster]` config), `node` (the openraft instance and
//! what the relay needs from it), `proposer` (group commit), `writes` (leader validation, proposal, write concern,
//! forwarding), `reads` (subscriptions with `min_lsn`, read index, lag bound), `network` and
//! `rpc` (node-to-node HTTP, client and server; `codec` their binary encoding), `admin` (operator endpoints), `status`
//! (`/cluster`), `background` (metrics and leader probes).

mod admin;
mod background;
pub mod codec;
mod error;
mod in_flight;
pub mod install_gate;
pub mod log_store;
pub mod network;
pub mod node;
mod proposer;
pub mod reads;
pub mod rpc;
pub mod settings;
mod snapshot_file;
pub mod state_machine;
pub mod status;
pub mod type_config;
pub mod writes;

/// The server's default log filter: the consensus library's own info lines are noise.
pub const DEFAULT_LOG_FILTER: &str = "info,openraft=warn";

pub use admin::{AddNode, NodeRef};
pub use error::ClusterStoreError;
pub use log_store::LogStore;
pub use node::Cluster;
pub use settings::{ClusterSettings, PeerSettings, WriteConcern};
pub use state_machine::StateMachine;
pub use status::ClusterStatus;
pub use type_config::{Applied, Batch, ClusterNode, NodeId, TypeConfig};

#[cfg(test)]
mod tests;

//! The cluster's openraft type configuration: who the nodes are, what one entry of the
//! consensus log carries (a batch of the relay's validated log entries) and what applying
//! it answers (each entry's outcome, and the log index that is the batch's LSN).

use std::fmt;
// `declare_raft_types!` names the default snapshot data `Cursor<Vec<u8>>` unqualified.
#[allow(unused_imports)]
use std::io::Cursor;

use serde::{Deserialize, Serialize};

use crate::storage::{ApplyOutcome, LogEntry};

/// A node's id in the cluster.
pub type NodeId = u64;

/// Where a node listens: devices connect to `client_addr`, other nodes to `cluster_addr`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClusterNode {
    pub client_addr: String,
    pub cluster_addr: String,
}

impl fmt::Display for ClusterNode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "client {} cluster {}",
            self.client_addr, self.cluster_addr
        )
    }
}

/// What a leader proposes: relay log entries validated by it (append rules, then
/// integration), applied in order and in one transaction by every node. An empty batch
/// changes nothing. Concurrent writes share one batch (group commit): `writers` says, in
/// order, how many of the entries each write contributed.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Batch {
    pub entries: Vec<LogEntry>,
    #[serde(default)]
    pub writers: Vec<WriterSpan>,
}

/// One write's share of a batch: the next `entries` entries came from `writer`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct WriterSpan {
    pub writer: Writer,
    pub entries: u32,
}

impl Batch {
    /// The batch's entries, each with the write it came from (if it is known).
    pub fn writer_of_each(&self) -> Vec<Option<Writer>> {
        let mut each = Vec::with_capacity(self.entries.len());
        for span in &self.writers {
            each.extend(std::iter::repeat_n(
                Some(span.writer),
                span.entries as usize,
            ));
        }
        each.resize(self.entries.len(), None);
        each
    }
}

/// The connection and request a write came from: the writing connection is not sent its
/// own updates back, and the proposing leader learns when its own log holds the write
/// (write concern `leader`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Writer {
    /// The node the device is connected to.
    pub node: NodeId,
    /// The connection on that node (0: none, e.g. an operator's write).
    pub conn: u64,
    /// Unique per proposing leader process: names the proposal in flush notices.
    pub request: u64,
    /// The leader that proposed it.
    pub leader: NodeId,
}

/// What applying one consensus entry did: the entry's log index (the LSN a device is
/// acknowledged with) and one outcome per relay entry of its batch (none for the consensus
/// layer's own entries: blank and membership).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Applied {
    pub lsn: u64,
    pub outcomes: Vec<ApplyOutcome>,
}

openraft::declare_raft_types!(
    /// The relay cluster's types: node ids and addresses, batches in, outcomes out; log
    /// entries, snapshots (a copy of the relay database, in memory) and the tokio runtime
    /// are openraft's defaults.
    pub TypeConfig:
        D = Batch,
        R = Applied,
        NodeId = NodeId,
        Node = ClusterNode,
);

/// One entry of the consensus log.
pub type RaftEntry = openraft::Entry<TypeConfig>;
/// A log id (leader term and node, index).
pub type LogId = openraft::LogId<NodeId>;
/// The membership last applied, with the id of the entry that set it.
pub type StoredMembership = openraft::StoredMembership<NodeId, ClusterNode>;
/// What openraft's storage traits fail with.
pub type RaftStorageError = openraft::StorageError<NodeId>;
/// A snapshot's metadata.
pub type SnapshotMeta = openraft::SnapshotMeta<NodeId, ClusterNode>;

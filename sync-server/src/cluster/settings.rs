//! A node's cluster settings: the `[cluster]` section of the server's TOML config (who this
//! node is, where it and its peers listen, the shared secret, timeouts, the write concern).

use std::collections::BTreeMap;
use std::net::SocketAddr;

use serde::{Deserialize, Serialize};

use super::type_config::NodeId;

/// When a write is acknowledged (see REPLICATION.md's table).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum WriteConcern {
    /// A majority of voters has the entry durably (the default).
    #[default]
    Majority,
    /// Every voter has the entry durably (stalls while one is down).
    All,
    /// The leader has the entry durably (asynchronous replication: may lose acked writes
    /// when the leader dies before a follower has them).
    Leader,
}

impl std::str::FromStr for WriteConcern {
    type Err = String;

    fn from_str(s: &str) -> Result<WriteConcern, String> {
        [
            WriteConcern::Majority,
            WriteConcern::All,
            WriteConcern::Leader,
        ]
        .into_iter()
        .find(|c| c.name() == s)
        .ok_or_else(|| format!("unknown write concern {s:?} (majority, all or leader)"))
    }
}

impl std::fmt::Display for WriteConcern {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl WriteConcern {
    pub fn name(self) -> &'static str {
        match self {
            WriteConcern::Majority => "majority",
            WriteConcern::All => "all",
            WriteConcern::Leader => "leader",
        }
    }
}

/// One node of the initial membership.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PeerSettings {
    pub id: NodeId,
    /// Where devices connect (`/sync`).
    pub client: String,
    /// Where other nodes connect (consensus RPC, forwarded writes, operator endpoints).
    pub cluster: String,
}

/// The `[cluster]` section.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ClusterSettings {
    pub node_id: NodeId,
    /// The node-to-node listener.
    pub listen: SocketAddr,
    /// Shared by every node; sent as `Authorization: Bearer <secret>`.
    pub secret: String,
    /// Initialise the cluster with `peers` when this node starts pristine (one node only).
    pub bootstrap: bool,
    pub write_concern: WriteConcern,
    /// Leader heartbeats; openraft 0.9 also bounds each AppendEntries call by it.
    pub heartbeat_ms: u64,
    pub election_timeout_min_ms: u64,
    pub election_timeout_max_ms: u64,
    /// Timeout of one node-to-node request.
    pub rpc_timeout_ms: u64,
    /// How long a write waits for a leader and its write concern before `unavailable`.
    pub write_timeout_ms: u64,
    /// How long a subscribe behind its `min_lsn` waits before `replica_behind`.
    pub min_lsn_wait_ms: u64,
    /// A node whose applied position is further than this behind the leader's log stops
    /// serving subscriptions until it has caught up.
    pub max_lag_entries: u64,
    /// Build a snapshot (and purge the log before it) every this many entries.
    pub snapshot_logs: u64,
    /// Entries kept in the log behind the last snapshot (so a briefly lagging follower
    /// catches up from the log, not a snapshot).
    pub keep_logs: u64,
    /// The initial voters (used by `bootstrap` and `concord-server cluster init`).
    pub peers: Vec<PeerSettings>,
    /// Node id → the address this node dials for that node's cluster port, instead of the
    /// one in the membership (e.g. a fault-injecting proxy per link).
    pub dial: BTreeMap<String, String>,
}

impl Default for ClusterSettings {
    fn default() -> Self {
        ClusterSettings {
            node_id: 0,
            listen: "127.0.0.1:9787".parse().expect("valid address"),
            secret: String::new(),
            bootstrap: false,
            write_concern: WriteConcern::Majority,
            heartbeat_ms: 200,
            election_timeout_min_ms: 800,
            election_timeout_max_ms: 1600,
            rpc_timeout_ms: 1000,
            write_timeout_ms: 5000,
            min_lsn_wait_ms: 2000,
            max_lag_entries: 100_000,
            snapshot_logs: 5000,
            keep_logs: 1000,
            peers: Vec::new(),
            dial: BTreeMap::new(),
        }
    }
}

/// Why cluster settings cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    #[error("cluster.node_id must be set (a positive integer)")]
    NoNodeId,
    #[error("cluster.secret must be set (the same on every node)")]
    NoSecret,
    #[error("cluster.peers must list node {0} itself when bootstrap is set")]
    SelfNotInPeers(NodeId),
    #[error("cluster.dial key {0:?} is not a node id")]
    BadDialKey(String),
    #[error("cluster timeouts: {0}")]
    Timeouts(String),
}

impl ClusterSettings {
    /// Checks what the config file cannot express by types.
    pub fn validate(&self) -> Result<(), SettingsError> {
        if self.node_id == 0 {
            return Err(SettingsError::NoNodeId);
        }
        if self.secret.is_empty() {
            return Err(SettingsError::NoSecret);
        }
        if self.bootstrap && !self.peers.iter().any(|p| p.id == self.node_id) {
            return Err(SettingsError::SelfNotInPeers(self.node_id));
        }
        for key in self.dial.keys() {
            key.parse::<NodeId>()
                .map_err(|_| SettingsError::BadDialKey(key.clone()))?;
        }
        if self.heartbeat_ms == 0 || self.election_timeout_min_ms <= self.heartbeat_ms {
            return Err(SettingsError::Timeouts(
                "election_timeout_min_ms must be above heartbeat_ms > 0".into(),
            ));
        }
        if self.election_timeout_max_ms <= self.election_timeout_min_ms {
            return Err(SettingsError::Timeouts(
                "election_timeout_max_ms must be above election_timeout_min_ms".into(),
            ));
        }
        Ok(())
    }

    /// The address this node dials to reach `id` whose membership address is `addr`.
    pub fn dial_addr<'a>(&'a self, id: NodeId, addr: &'a str) -> &'a str {
        self.dial
            .get(&id.to_string())
            .map(String::as_str)
            .unwrap_or(addr)
    }
}

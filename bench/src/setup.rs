//! The relay setups the cluster benchmarks compare, started on testkit's real processes:
//! a standalone relay (no `[cluster]` section) or an N-node cluster under one write
//! concern. For measuring, nodes dial each other directly (no fault proxy), clients use the
//! nodes' own client ports, snapshots follow the server's defaults, and `/cluster` is
//! polled rarely.

use std::fmt;
use std::time::Duration;

use anyhow::{anyhow, Result};
use concord_testkit::cluster::{ClusterSettings, WriteConcern};
use concord_testkit::{Cluster, ClusterSpec};

/// One relay setup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Setup {
    Standalone,
    Cluster { nodes: u64, concern: WriteConcern },
}

impl fmt::Display for Setup {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Setup::Standalone => write!(f, "standalone relay"),
            Setup::Cluster { nodes: 1, .. } => write!(f, "1 node"),
            Setup::Cluster { nodes, .. } => write!(f, "{nodes} nodes"),
        }
    }
}

impl Setup {
    pub fn concern(&self) -> &str {
        match self {
            Setup::Standalone => "-",
            Setup::Cluster { concern, .. } => concern.name(),
        }
    }

    fn spec(&self) -> ClusterSpec {
        let spec = match self {
            Setup::Standalone => ClusterSpec::standalone(),
            Setup::Cluster { nodes, concern } => ClusterSpec::new(*nodes).write_concern(*concern),
        };
        let mut spec = ClusterSpec {
            sample_every: Duration::from_secs(2),
            ..spec.direct_node_links()
        };
        // The server's defaults (testkit's are small, to force snapshot installs).
        let defaults = ClusterSettings::default();
        spec.settings.snapshot_logs = defaults.snapshot_logs;
        spec.settings.keep_logs = defaults.keep_logs;
        spec
    }
}

/// A started setup: which node leads and which follow.
pub struct Running {
    pub cluster: Cluster,
    /// The node a write lands on first: the leader (the only node when standalone).
    pub leader: u64,
    pub followers: Vec<u64>,
}

impl Running {
    pub async fn start(setup: &Setup) -> Result<Running> {
        let cluster = Cluster::start(setup.spec()).await?;
        let (leader, followers) = match setup {
            Setup::Standalone => (cluster.ids()[0], Vec::new()),
            Setup::Cluster { .. } => {
                let leader = cluster.wait_for_leader().await?;
                cluster.wait_caught_up().await?;
                let followers = cluster.ids().into_iter().filter(|&i| i != leader).collect();
                (leader, followers)
            }
        };
        Ok(Running {
            cluster,
            leader,
            followers,
        })
    }

    /// Node `id`'s own client port (no proxy).
    pub fn url(&self, id: u64) -> Result<String> {
        self.cluster
            .direct_client_url(id)
            .ok_or_else(|| anyhow!("no node {id}"))
    }

    /// Node ids with their process ids.
    pub fn pids(&self) -> Vec<(u64, u32)> {
        self.cluster
            .ids()
            .into_iter()
            .filter_map(|id| Some((id, self.cluster.node(id)?.process.pid()?)))
            .collect()
    }

    /// Whether `leader` still leads (standalone: always).
    pub async fn same_leader(&self) -> bool {
        if self.cluster.spec.standalone {
            return true;
        }
        self.cluster.leader().await == Some(self.leader)
    }
}

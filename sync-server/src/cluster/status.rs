//! What `GET /cluster` answers: this node's role, term, leader, log positions and
//! membership, and on the leader each follower's matched index and lag (entries and ms).
//! A single relay answers with role `standalone`.

use std::sync::atomic::Ordering;

use openraft::ServerState;
use serde::{Deserialize, Serialize};

use super::node::Cluster;
use super::type_config::NodeId;

/// One follower as the leader sees it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FollowerStatus {
    pub id: NodeId,
    pub matched_index: Option<u64>,
    pub lag_entries: u64,
    pub lag_ms: u64,
}

/// A node's view of the cluster.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClusterStatus {
    pub node_id: NodeId,
    pub role: String,
    pub term: u64,
    pub leader: Option<NodeId>,
    pub commit_index: u64,
    pub applied_index: u64,
    pub last_log_index: u64,
    pub snapshot_index: Option<u64>,
    pub purged_index: Option<u64>,
    pub voters: Vec<NodeId>,
    pub learners: Vec<NodeId>,
    pub write_concern: String,
    pub serving: bool,
    /// On a follower: the leader's last log index as last probed.
    pub leader_last_log_index: Option<u64>,
    pub followers: Vec<FollowerStatus>,
}

fn role(state: ServerState) -> &'static str {
    match state {
        ServerState::Leader => "leader",
        ServerState::Follower => "follower",
        ServerState::Candidate => "candidate",
        ServerState::Learner => "learner",
        ServerState::Shutdown => "shutdown",
    }
}

impl ClusterStatus {
    /// A single relay's answer.
    pub fn standalone(applied: u64) -> ClusterStatus {
        ClusterStatus {
            node_id: 0,
            role: "standalone".into(),
            term: 0,
            leader: None,
            commit_index: applied,
            applied_index: applied,
            last_log_index: applied,
            snapshot_index: None,
            purged_index: None,
            voters: vec![],
            learners: vec![],
            write_concern: "local".into(),
            serving: true,
            leader_last_log_index: None,
            followers: vec![],
        }
    }
}

impl Cluster {
    /// This node's status.
    pub async fn status(&self) -> ClusterStatus {
        let committed = self
            .raft
            .with_raft_state(|st| st.committed.map(|l| l.index))
            .await
            .ok()
            .flatten();
        let m = self.metrics();
        let last = m.last_log_index.unwrap_or(0);
        let membership = m.membership_config.membership();
        let voters: Vec<NodeId> = membership.voter_ids().collect();
        let learners: Vec<NodeId> = membership.learner_ids().collect();
        let followers = m
            .replication
            .as_ref()
            .map(|r| {
                r.iter()
                    .filter(|(id, _)| **id != self.id)
                    .map(|(id, matched)| {
                        let matched = matched.map(|l| l.index);
                        let at = matched.unwrap_or(0);
                        FollowerStatus {
                            id: *id,
                            matched_index: matched,
                            lag_entries: last.saturating_sub(at),
                            lag_ms: self.lag_ms(at, last),
                        }
                    })
                    .collect()
            })
            .unwrap_or_default();
        let leader_index = self.leader_index.load(Ordering::Relaxed);
        ClusterStatus {
            node_id: self.id,
            role: role(m.state).into(),
            term: m.current_term,
            leader: m.current_leader,
            commit_index: committed.unwrap_or(0),
            applied_index: m.last_applied.map(|l| l.index).unwrap_or(0),
            last_log_index: last,
            snapshot_index: m.snapshot.map(|l| l.index),
            purged_index: m.purged.map(|l| l.index),
            voters,
            learners,
            write_concern: self.settings.write_concern.name().into(),
            serving: self.serving(),
            leader_last_log_index: (m.state != ServerState::Leader && leader_index > 0)
                .then_some(leader_index),
            followers,
        }
    }
}

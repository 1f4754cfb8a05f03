//! The cluster's read path: any node answers a subscription from its applied state, with
//! the session guarantees — a subscribe carrying `min_lsn` is served only once this node
//! has applied that position (it waits `min_lsn_wait_ms`, then answers the retryable
//! `replica_behind`, never older state); a linearizable one first learns the leader's read
//! index (leadership confirmed by a quorum) and waits for it; a node lagging past
//! `max_lag_entries` or without a leader serves no subscription. Creating an absent
//! document is a write (it goes to the leader).

use std::sync::Arc;
use std::time::Duration;

use concord_core::protocol::ErrorCode;
use concord_core::sync::{CatchupData, RelayRefusal};
use concord_core::{DocKind, VersionVector};

use super::node::Cluster;
use super::writes::Write;
use crate::hub::ConnId;

fn behind(message: impl Into<String>) -> RelayRefusal {
    RelayRefusal::new(ErrorCode::ReplicaBehind, message)
}

/// A subscription request as the relay session hands it over.
pub struct SubscribeRequest {
    pub doc_id: String,
    pub kind: DocKind,
    pub client_version: VersionVector,
    pub may_create: bool,
    pub min_lsn: u64,
    pub linearizable: bool,
}

impl Cluster {
    /// Answers a subscription of connection `conn` from this node's applied state.
    pub async fn subscribe(
        self: &Arc<Self>,
        conn: ConnId,
        req: SubscribeRequest,
    ) -> Result<CatchupData, RelayRefusal> {
        if !self.serving() {
            return Err(behind(format!(
                "node {} is not serving subscriptions (no leader, or more than {} entries \
                 behind); try another node",
                self.id, self.settings.max_lag_entries
            )));
        }
        let mut need = req.min_lsn;
        if req.linearizable {
            let wait = Duration::from_millis(self.settings.min_lsn_wait_ms);
            let index = match tokio::time::timeout(wait, self.read_index()).await {
                Ok(index) => index,
                Err(_) => Err("no answer in time".to_string()),
            };
            need = need.max(index.map_err(|why| {
                RelayRefusal::new(
                    ErrorCode::Unavailable,
                    format!("cannot confirm the leader for a linearizable read: {why}"),
                )
            })?);
        }
        let relay = self.relay.clone();
        let doc_id = req.doc_id.clone();
        // Off the async workers: the storage lock may be held by a long apply.
        let absent = tokio::task::spawn_blocking(move || relay.doc_kind(&doc_id).is_none())
            .await
            .unwrap_or(true);
        if req.may_create && absent {
            let reply = self
                .write(
                    Write::Create {
                        doc_id: req.doc_id.clone(),
                        kind: req.kind,
                    },
                    conn,
                )
                .await;
            if let Some(refusal) = reply.refusal() {
                return Err(refusal);
            }
            need = need.max(reply.lsn);
        }
        let wait = Duration::from_millis(self.settings.min_lsn_wait_ms);
        if !self.wait_applied(need, wait).await {
            return Err(behind(format!(
                "node {} has applied {} of the {need} asked for; try another node",
                self.id,
                self.applied()
            )));
        }
        let relay = self.relay.clone();
        let answer = tokio::task::spawn_blocking(move || {
            relay.subscribe_local(conn, &req.doc_id, req.kind, &req.client_version)
        })
        .await
        .map_err(|e| RelayRefusal::new(ErrorCode::Internal, format!("subscribe failed: {e}")))?;
        answer.map(|mut data| {
            data.lsn = data.lsn.max(need);
            data
        })
    }

    /// The leader's read index: a log position every linearizable read must see, with
    /// leadership confirmed by a quorum (asked of the leader when this node follows).
    pub async fn read_index(&self) -> Result<u64, String> {
        if self.is_leader() {
            let read = self
                .raft
                .ensure_linearizable()
                .await
                .map_err(|e| e.to_string())?;
            return Ok(read.map(|l| l.index).unwrap_or(0));
        }
        let leader = self.leader().ok_or("no leader")?;
        let addr = self.cluster_addr(leader).ok_or("leader has no address")?;
        self.peers
            .call::<_, Result<u64, String>>(&addr, "/cluster/read-index", &(), None)
            .await
            .map_err(|e| e.to_string())?
    }
}

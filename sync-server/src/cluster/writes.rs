//! The cluster's write path. A write (append updates, create a document) from a device on
//! any node goes to the leader — forwarded over the cluster port when this node follows —
//! which validates it against its applied state (the relay's append rules and
//! integration), proposes the accepted entries as one consensus entry, and answers once
//! the write concern holds, with the entry's log index (the LSN). During an election a
//! write waits (bounded by `write_timeout_ms`) and then gets the retryable `unavailable`.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use concord_core::protocol::ErrorCode;
use concord_core::sync::RelayRefusal;
use concord_core::{DocKind, Origin, UpdateRecord};
use serde::{Deserialize, Serialize};
use tokio::time::timeout_at;

use super::node::Cluster;
use super::settings::WriteConcern;
use super::type_config::{NodeId, Writer};
use crate::state::Validated;

/// A write as it travels to the leader.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Write {
    Append {
        doc_id: String,
        updates: Vec<UpdateRecord>,
    },
    Create {
        doc_id: String,
        kind: DocKind,
    },
}

/// A write forwarded by a follower to the leader.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Forwarded {
    pub write: Write,
    /// The node the device is connected to, and its connection there.
    pub node: NodeId,
    pub conn: u64,
    /// The follower's applied position: the device may have seen everything up to it, so
    /// the leader validates against at least that state.
    pub min_lsn: u64,
    /// How long the follower waits, in ms.
    pub budget_ms: u64,
}

/// The answer to a write.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WriteReply {
    /// Per origin, the highest sequence number durably held (as the write concern says).
    pub acked: Vec<(Origin, u64)>,
    /// Why the batch stopped early: (error code number, message).
    pub refusal: Option<(u16, String)>,
    /// The log position that holds the acknowledged updates.
    pub lsn: u64,
}

impl WriteReply {
    pub fn refusal(&self) -> Option<RelayRefusal> {
        self.refusal
            .as_ref()
            .map(|(code, message)| RelayRefusal::new(ErrorCode::from_number(*code), message))
    }

    fn refused(refusal: RelayRefusal, lsn: u64) -> WriteReply {
        WriteReply {
            acked: Vec::new(),
            refusal: Some((refusal.code.number(), refusal.message)),
            lsn,
        }
    }

    fn unavailable(why: &str, lsn: u64) -> WriteReply {
        WriteReply::refused(
            RelayRefusal::new(
                ErrorCode::Unavailable,
                format!("the cluster cannot take writes now ({why}); resend later"),
            ),
            lsn,
        )
    }
}

/// How one attempt at a write ended.
pub enum Attempt {
    /// Answered (accepted, refused, or given up on: do not propose again).
    Done(WriteReply),
    /// Nothing was proposed or it was lost with a leadership change: try again (elsewhere).
    Retry(String),
}

impl Cluster {
    /// Carries out `write` for connection `conn` of this node, wherever the leader is.
    pub async fn write(self: &Arc<Self>, write: Write, conn: u64) -> WriteReply {
        let deadline = Instant::now() + Duration::from_millis(self.settings.write_timeout_ms);
        loop {
            let attempt = match self.leader() {
                Some(leader) if leader == self.id => {
                    self.lead(write.clone(), self.id, conn, 0, deadline).await
                }
                Some(leader) => self.forward(leader, &write, conn, deadline).await,
                None => Attempt::Retry("no leader".into()),
            };
            match attempt {
                Attempt::Done(reply) => return reply,
                Attempt::Retry(why) => {
                    let now = Instant::now();
                    if now >= deadline {
                        return WriteReply::unavailable(&why, self.applied());
                    }
                    tracing::debug!(why, "write waits for a leader");
                    tokio::time::sleep((deadline - now).min(Duration::from_millis(50))).await;
                }
            }
        }
    }

    async fn forward(
        &self,
        leader: NodeId,
        write: &Write,
        conn: u64,
        deadline: Instant,
    ) -> Attempt {
        let Some(addr) = self.cluster_addr(leader) else {
            return Attempt::Retry(format!("leader {leader} has no address"));
        };
        let budget = deadline.saturating_duration_since(Instant::now());
        let forwarded = Forwarded {
            write: write.clone(),
            node: self.id,
            conn,
            min_lsn: self.applied(),
            budget_ms: budget.as_millis() as u64,
        };
        let call = self
            .peers
            .call::<_, Result<WriteReply, String>>(
                &addr,
                "/cluster/write",
                &forwarded,
                Some(budget),
            )
            .await;
        match call {
            Ok(Ok(reply)) => Attempt::Done(reply),
            Ok(Err(why)) => Attempt::Retry(why),
            Err(e) => Attempt::Retry(e.to_string()),
        }
    }

    /// Makes sure everything committed before this leader's term is applied here (once
    /// per term), so validation sees every update any device may depend on.
    async fn barrier(&self) -> Result<(), String> {
        let term = self.metrics().current_term;
        if self.barrier_term.load(std::sync::atomic::Ordering::Relaxed) == term {
            return Ok(());
        }
        self.raft
            .ensure_linearizable()
            .await
            .map_err(|e| e.to_string())?;
        self.barrier_term
            .store(term, std::sync::atomic::Ordering::Relaxed);
        Ok(())
    }

    /// The leader's part: validate, propose, wait for the write concern.
    pub async fn lead(
        self: &Arc<Self>,
        write: Write,
        node: NodeId,
        conn: u64,
        min_lsn: u64,
        deadline: Instant,
    ) -> Attempt {
        if !self.is_leader() {
            return Attempt::Retry("not the leader".into());
        }
        match timeout_at(deadline.into(), self.barrier()).await {
            Ok(Ok(())) => {}
            Ok(Err(why)) => return Attempt::Retry(why),
            Err(_) => return Attempt::Retry("leadership not confirmed in time".into()),
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if !self.wait_applied(min_lsn, left).await {
            return Attempt::Retry(format!("leader has not applied {min_lsn} yet"));
        }
        if let Write::Append { doc_id, updates } = &write {
            if !self.earlier_writes_settled(doc_id, updates, deadline).await {
                return Attempt::Retry(
                    "earlier writes of the document are still being committed".into(),
                );
            }
            // Those writes may have ended with this node's leadership: the next leader
            // holds them (or the device resends them), not this node.
            if !self.is_leader() {
                return Attempt::Retry("not the leader".into());
            }
        }
        // The (document, origin) pairs this write writes: validated only while none has
        // a write in flight, and marked in flight with the validation (`in_flight.rs`).
        let writers: BTreeSet<(String, Origin)> = match &write {
            Write::Append { doc_id, updates } => updates
                .iter()
                .map(|u| (doc_id.clone(), u.origin.clone()))
                .collect(),
            Write::Create { .. } => BTreeSet::new(),
        };
        let relay = self.relay.clone();
        let in_flight = self.in_flight.clone();
        let marks = writers.clone();
        let validated = tokio::task::spawn_blocking(move || {
            let mark = |v: &Validated| {
                let docs: BTreeSet<String> =
                    v.entries.iter().map(|e| e.doc_id().to_string()).collect();
                (!docs.is_empty()).then(|| in_flight.begin(docs, marks.clone()))
            };
            match write {
                Write::Append { doc_id, updates } => relay.validate_append_unless(
                    &doc_id,
                    updates,
                    || in_flight.any_writer_busy(&marks),
                    mark,
                ),
                Write::Create { doc_id, kind } => {
                    let validated = relay.validate_create(&doc_id, kind);
                    let guard = mark(&validated);
                    Some((validated, guard))
                }
            }
        })
        .await;
        let (
            Validated {
                entries,
                acked,
                refusal,
            },
            in_flight,
        ) = match validated {
            Ok(Some(v)) => v,
            Ok(None) => {
                // Compared with the applied state once that write is done: held (same
                // bytes), or `seq_conflict`.
                self.in_flight.writers_settled(&writers, deadline).await;
                return Attempt::Retry(
                    "a write of the same origin on the document is still being committed".into(),
                );
            }
            Err(e) => {
                return Attempt::Done(WriteReply::refused(
                    RelayRefusal::new(ErrorCode::Internal, format!("validation failed: {e}")),
                    self.applied(),
                ))
            }
        };
        let reply = |lsn| WriteReply {
            acked: acked.clone(),
            refusal: refusal
                .as_ref()
                .map(|r| (r.code.number(), r.message.clone())),
            lsn,
        };
        if entries.is_empty() {
            // Everything was held already: committed and applied here. Under `all` it is
            // acknowledged only once every voter holds it too (a resend after `unavailable`
            // must not turn into an ack while a voter is still down).
            let lsn = self.applied();
            if self.settings.write_concern == WriteConcern::All
                && !self.wait_all_voters(lsn, deadline).await
            {
                return Attempt::Done(WriteReply::unavailable(
                    "not every voter holds the write yet",
                    lsn,
                ));
            }
            return Attempt::Done(reply(lsn));
        }
        let docs: BTreeSet<String> = entries.iter().map(|e| e.doc_id().to_string()).collect();
        let request = self.next_request();
        let writer = Writer {
            node,
            conn,
            request,
            leader: self.id,
        };
        let concern = self.settings.write_concern;
        let flushed = (concern == WriteConcern::Leader).then(|| self.flushes.register(request));
        let started = Instant::now();
        let count = entries.len();
        let in_flight = in_flight.expect("marked: entries to propose");
        let committed = self.proposer.propose(entries, writer);
        // Settled by a task of its own, whatever becomes of this future (a forwarding
        // follower that gives up drops it mid-wait): a proposal that does not commit
        // leaves no validated, uncommitted state in the leader's documents, and no flush
        // waiter, behind.
        let (settled_tx, settled) = tokio::sync::oneshot::channel();
        {
            let me = self.clone();
            let docs = docs.clone();
            tokio::spawn(async move {
                let result = committed.await;
                if !matches!(result, Ok(Ok(_))) {
                    me.forget_docs(docs).await;
                }
                me.flushes.forget(request);
                drop(in_flight);
                let _ = settled_tx.send(result);
            });
        }
        let outcome = match flushed {
            // Acknowledged once this node's log holds it durably; the commit goes on.
            Some(flushed) => match timeout_at(deadline.into(), flushed).await {
                Ok(Ok(index)) => Ok(index),
                _ => {
                    self.flushes.forget(request);
                    Err(Attempt::Done(WriteReply::unavailable(
                        "the leader's log did not take the write in time",
                        self.applied(),
                    )))
                }
            },
            None => match timeout_at(deadline.into(), settled).await {
                Ok(Ok(Ok(Ok(index)))) => Ok(index),
                Ok(Ok(Ok(Err(e)))) => Err(Attempt::Retry(e)),
                Ok(Ok(Err(_)) | Err(_)) => Err(Attempt::Retry("the proposal was dropped".into())),
                Err(_) => Err(Attempt::Done(WriteReply::unavailable(
                    "no majority took the write in time",
                    self.applied(),
                ))),
            },
        };
        let lsn = match outcome {
            Ok(lsn) => lsn,
            Err(attempt) => {
                // The in-memory documents may hold what was validated but not committed.
                self.forget_docs(docs).await;
                return attempt;
            }
        };
        if concern == WriteConcern::All && !self.wait_all_voters(lsn, deadline).await {
            return Attempt::Done(WriteReply::unavailable(
                "not every voter took the write in time",
                self.applied(),
            ));
        }
        crate::metrics::committed(count, started.elapsed());
        Attempt::Done(reply(lsn))
    }

    /// Whether a write of `updates` may be validated now: unless they would leave a gap
    /// while earlier writes of the document are still in flight, which may fill it (under
    /// the `leader` concern a device sends its next update once the previous one is in the
    /// leader's log, before it is applied); then waits for those, until `deadline`.
    async fn earlier_writes_settled(
        &self,
        doc_id: &str,
        updates: &[UpdateRecord],
        deadline: Instant,
    ) -> bool {
        if !self.in_flight.busy(doc_id) {
            return true;
        }
        let relay = self.relay.clone();
        let (doc, batch) = (doc_id.to_string(), updates.to_vec());
        let gap = tokio::task::spawn_blocking(move || relay.starts_past_head(&doc, &batch))
            .await
            .unwrap_or(false);
        !gap || self.in_flight.settled(doc_id, deadline).await
    }

    /// Drops the in-memory copies of `docs` (off the async workers: it takes the storage
    /// lock, which a long validation or apply may hold).
    async fn forget_docs(&self, docs: BTreeSet<String>) {
        let relay = self.relay.clone();
        let _ = tokio::task::spawn_blocking(move || relay.forget_docs(docs.iter())).await;
    }

    /// Waits until every voter's log holds `lsn` (write concern `all`).
    async fn wait_all_voters(&self, lsn: u64, deadline: Instant) -> bool {
        let mut watch = self.raft.metrics();
        loop {
            {
                let m = watch.borrow_and_update();
                let voters: Vec<NodeId> = m.membership_config.membership().voter_ids().collect();
                let held = |id: &NodeId| {
                    if *id == self.id {
                        return m.last_log_index.unwrap_or(0) >= lsn;
                    }
                    m.replication
                        .as_ref()
                        .and_then(|r| r.get(id).cloned().flatten())
                        .is_some_and(|l| l.index >= lsn)
                };
                if voters.iter().all(held) {
                    return true;
                }
            }
            if timeout_at(deadline.into(), watch.changed()).await.is_err() {
                return false;
            }
        }
    }
}

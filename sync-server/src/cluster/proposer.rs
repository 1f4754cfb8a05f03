//! Group commit on the leader: concurrent writes are queued and proposed together, as one
//! consensus entry (one log append and one fsync per node, one state-machine transaction),
//! with a bounded number of entries in flight; while those commit, the next writes gather.
//! Each write learns its own result (the entry's log index, or why it was not committed).
//! At most [`MAX_QUEUED`] writes wait to be proposed; more are refused at once.

use std::sync::Arc;

use openraft::Raft;
use tokio::sync::{mpsc, oneshot, Semaphore};

use super::type_config::{Batch, TypeConfig, Writer, WriterSpan};
use crate::storage::LogEntry;

/// Consensus entries proposed and not yet committed, at most.
const IN_FLIGHT: usize = 2;
/// Relay entries in one consensus entry, at most (more wait for the next).
const MAX_ENTRIES: usize = 1024;
/// Writes waiting to be proposed, at most: while no majority commits (the leader cut off
/// from its followers), writes that keep coming are refused at once instead of piling up.
pub const MAX_QUEUED: usize = 8192;

/// What became of a proposed write: its log index once committed (and applied on this
/// node), or why not (e.g. leadership was lost; the write may be retried).
pub type Committed = Result<u64, String>;

struct Proposal {
    entries: Vec<LogEntry>,
    writer: Writer,
    done: oneshot::Sender<Committed>,
}

/// The queue of writes to propose (bounded: [`MAX_QUEUED`]).
pub struct Proposer {
    tx: mpsc::Sender<Proposal>,
}

impl Proposer {
    /// Starts proposing through `raft`.
    pub fn start(raft: Raft<TypeConfig>) -> Proposer {
        let (tx, rx) = mpsc::channel(MAX_QUEUED);
        tokio::spawn(run(raft, rx));
        Proposer { tx }
    }

    /// Queues a write; the receiver resolves once it is committed (or not).
    pub fn propose(&self, entries: Vec<LogEntry>, writer: Writer) -> oneshot::Receiver<Committed> {
        let (done, rx) = oneshot::channel();
        let proposal = Proposal {
            entries,
            writer,
            done,
        };
        match self.tx.try_send(proposal) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(p)) => {
                let _ = p.done.send(Err(format!(
                    "{MAX_QUEUED} writes already wait for the consensus"
                )));
            }
            Err(mpsc::error::TrySendError::Closed(p)) => {
                let _ = p.done.send(Err("the node is shutting down".into()));
            }
        }
        rx
    }
}

async fn run(raft: Raft<TypeConfig>, mut rx: mpsc::Receiver<Proposal>) {
    let in_flight = Arc::new(Semaphore::new(IN_FLIGHT));
    loop {
        let Ok(permit) = in_flight.clone().acquire_owned().await else {
            return;
        };
        let Some(first) = rx.recv().await else {
            return;
        };
        let mut group = vec![first];
        let mut count = group[0].entries.len();
        while count < MAX_ENTRIES {
            match rx.try_recv() {
                Ok(p) => {
                    count += p.entries.len();
                    group.push(p);
                }
                Err(_) => break,
            }
        }
        let mut batch = Batch {
            entries: Vec::with_capacity(count),
            writers: Vec::with_capacity(group.len()),
        };
        let mut waiting = Vec::with_capacity(group.len());
        for p in group {
            batch.writers.push(WriterSpan {
                writer: p.writer,
                entries: p.entries.len() as u32,
            });
            batch.entries.extend(p.entries);
            waiting.push(p.done);
        }
        match raft.client_write_ff(batch).await {
            Err(e) => {
                for done in waiting {
                    let _ = done.send(Err(e.to_string()));
                }
            }
            Ok(response) => {
                tokio::spawn(async move {
                    let result: Committed = match response.await {
                        Ok(Ok(r)) => Ok(r.log_id.index),
                        Ok(Err(e)) => Err(e.to_string()),
                        Err(_) => Err("the proposal was dropped".into()),
                    };
                    drop(permit);
                    for done in waiting {
                        let _ = done.send(result.clone());
                    }
                });
            }
        }
    }
}

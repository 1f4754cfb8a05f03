//! Group commit for the single relay: appends validated on several connections at the same
//! time are applied together, in one storage transaction (one fsync), in the order they
//! were validated. Each connection acknowledges its own updates only once the transaction
//! holding them is durable.
//!
//! The protocol: a writer validates and queues its entries while holding the storage lock
//! (so queue order is validation order), releases it, then takes its turn. The first writer
//! to get the turn commits everything queued so far; a writer whose entries an earlier turn
//! already committed just reads its result. While one transaction is being written, the
//! next writers validate and queue, and commit together on the following turn.

use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::sync::{Mutex, MutexGuard};

use crate::hub::ConnId;
use crate::storage::LogEntry;

/// What became of queued entries: the log position of the state that holds them, or why
/// they were not stored.
pub type Committed = Result<u64, String>;

/// Entries of one writer waiting to be committed.
pub struct Queued {
    pub entries: Vec<LogEntry>,
    pub writer: ConnId,
    done: SyncSender<Committed>,
}

impl Queued {
    /// Reports the outcome to the writer.
    pub fn finish(self, result: Committed) {
        let _ = self.done.send(result);
    }
}

/// A writer's claim on the outcome of its queued entries.
pub struct Ticket(Receiver<Committed>);

impl Ticket {
    /// The outcome, when a turn has committed (or failed) the entries.
    pub fn ready(&self) -> Option<Committed> {
        self.0.try_recv().ok()
    }
}

/// The queue of validated entries and the turn to commit them.
#[derive(Default)]
pub struct GroupCommit {
    queue: Mutex<Vec<Queued>>,
    turn: Mutex<()>,
}

impl GroupCommit {
    /// Queues `entries` of `writer`. Call with the storage lock held, right after
    /// validating them.
    pub fn enqueue(&self, entries: Vec<LogEntry>, writer: ConnId) -> Ticket {
        let (done, rx) = sync_channel(1);
        lock(&self.queue).push(Queued {
            entries,
            writer,
            done,
        });
        Ticket(rx)
    }

    /// Waits for the turn to commit. Holding it, check [`Ticket::ready`]: an earlier turn
    /// may have committed the entries already; otherwise take the storage lock, then
    /// [`GroupCommit::take`] and commit what it returns.
    pub fn turn(&self) -> MutexGuard<'_, ()> {
        lock(&self.turn)
    }

    /// Everything queued, oldest first. Call holding the turn and the storage lock.
    pub fn take(&self) -> Vec<Queued> {
        std::mem::take(&mut *lock(&self.queue))
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

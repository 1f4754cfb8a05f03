//! Updates the single relay validated and queued for its next group commit, not yet
//! applied (`group_commit.rs`). Validation checks a batch against the committed head plus
//! these, so two connections racing with the same (origin, seq) cannot both be accepted:
//! the second sees the first as held, and gets an ack when the bytes are the same and
//! `seq_conflict` when they differ. The validating copy of a document (`docs.rs`) is
//! rebuilt from the committed state plus these. A cluster's leader queues nothing here: it
//! lets a document's earlier writes settle before validating a batch that would leave a gap,
//! and an origin's write in flight settle before validating its next (`cluster/in_flight.rs`).

use std::collections::HashMap;

use concord_core::sync::DocHead;
use concord_core::{Origin, UpdateRecord};

use super::{Result, Storage};

/// One document's queued updates, oldest first, and where each (origin, seq) sits.
#[derive(Default)]
pub(super) struct Queued {
    updates: Vec<UpdateRecord>,
    at: HashMap<(Origin, u64), usize>,
}

impl Queued {
    fn push(&mut self, update: UpdateRecord) {
        self.at
            .insert((update.origin.clone(), update.seq), self.updates.len());
        self.updates.push(update);
    }
}

impl Storage {
    /// The head the append rules check a batch of `doc_id` against: the committed one with
    /// the queued updates counted.
    pub fn rules_head(&self, doc_id: &str) -> Option<DocHead> {
        let mut head = self.heads.get(doc_id)?.rules_head();
        for update in self.queued_updates(doc_id) {
            head.version.advance(&update.origin, update.seq);
        }
        Some(head)
    }

    /// The bytes of one update, stored or queued.
    pub fn held_update(&self, doc_id: &str, origin: &Origin, seq: u64) -> Result<Option<Vec<u8>>> {
        let queued = self.queued.get(doc_id).and_then(|q| {
            let i = q.at.get(&(origin.clone(), seq))?;
            Some(q.updates[*i].data.clone())
        });
        match queued {
            Some(data) => Ok(Some(data)),
            None => self.stored_update(doc_id, origin, seq),
        }
    }

    /// Records `updates` of `doc_id`, just validated, as queued for the next commit.
    pub fn note_queued(&mut self, doc_id: &str, updates: impl IntoIterator<Item = UpdateRecord>) {
        let mut updates = updates.into_iter().peekable();
        if updates.peek().is_some() {
            let queued = self.queued.entry(doc_id.to_string()).or_default();
            for update in updates {
                queued.push(update);
            }
        }
    }

    /// Whether updates of `doc_id` are queued (validated, not yet committed).
    pub fn has_queued(&self, doc_id: &str) -> bool {
        !self.queued_updates(doc_id).is_empty()
    }

    /// The queued updates of `doc_id`, oldest first.
    pub(super) fn queued_updates(&self, doc_id: &str) -> &[UpdateRecord] {
        self.queued
            .get(doc_id)
            .map_or(&[], |q| q.updates.as_slice())
    }

    /// Drops the queued updates of `doc_id` that its committed head now holds.
    pub(super) fn settle_queued(&mut self, doc_id: &str) {
        let (Some(queued), Some(head)) = (self.queued.get_mut(doc_id), self.heads.get(doc_id))
        else {
            return;
        };
        let left: Vec<UpdateRecord> = std::mem::take(&mut queued.updates)
            .into_iter()
            .filter(|u| u.seq > head.version.get(&u.origin))
            .collect();
        if left.is_empty() {
            self.queued.remove(doc_id);
        } else {
            *queued = Queued::default();
            for update in left {
                queued.push(update);
            }
        }
    }
}

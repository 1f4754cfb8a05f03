//! Live intake of other devices' updates: what arrives while the device is still paying
//! for its last apply is held and applied together, one store transaction and one CRDT
//! apply per document.
//!
//! Applying costs a CRDT something per call that grows with the document (Automerge walks
//! the touched object's operations on every `apply_changes`), so a device that applies each
//! frame as it comes spends ever more of its time re-walking a growing document, and falls
//! behind a busy one. The hold is the last apply's wall time (measured by the device log,
//! [`DeviceLog::last_apply_time`](crate::sync::DeviceLog::last_apply_time)) times
//! [`INTAKE_HOLD_FACTOR`], capped at [`MAX_INTAKE_HOLD`]: intake takes at most about a fifth
//! of the device's time, a cheap document (an apply of well under a millisecond) is held
//! for well under a few milliseconds, and a device starved of CPU (where every apply takes
//! long in wall time) holds longer and applies bigger batches, which is what lets it catch
//! up. A one-shot sync never holds.

use std::time::Duration;

use crate::protocol::Updates;

/// The hold after an apply is this many times its wall time.
pub const INTAKE_HOLD_FACTOR: u32 = 4;
/// The longest an update waits on the device before it is applied.
pub const MAX_INTAKE_HOLD: Duration = Duration::from_millis(250);

/// Updates received and not yet applied, merged per document in arrival order, and the
/// cost of the last apply.
#[derive(Debug, Default)]
pub(crate) struct Intake {
    held: Vec<Updates>,
    last_cost: Duration,
}

impl Intake {
    /// Adds a received `Updates` message (appended to the document's held batch).
    pub fn push(&mut self, updates: Updates) {
        match self.held.iter_mut().find(|b| b.doc_id == updates.doc_id) {
            Some(batch) => {
                batch.updates.extend(updates.updates);
                batch.lsn = batch.lsn.max(updates.lsn);
            }
            None => self.held.push(updates),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.held.is_empty()
    }

    /// Everything held, per document, to be applied now.
    pub fn take(&mut self) -> Vec<Updates> {
        std::mem::take(&mut self.held)
    }

    /// Records how long the last apply took (wall time).
    pub fn applied(&mut self, took: Duration) {
        self.last_cost = took;
    }

    /// How long to hold updates that arrive now before applying them.
    pub fn hold(&self) -> Duration {
        self.last_cost
            .saturating_mul(INTAKE_HOLD_FACTOR)
            .min(MAX_INTAKE_HOLD)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::update::UpdateRecord;

    fn updates(doc: &str, seqs: &[u64], lsn: u64) -> Updates {
        Updates {
            doc_id: doc.into(),
            updates: seqs
                .iter()
                .map(|&seq| UpdateRecord {
                    origin: "a".into(),
                    seq,
                    data: vec![seq as u8],
                })
                .collect(),
            lsn,
        }
    }

    #[test]
    fn held_updates_merge_per_document_in_arrival_order() {
        let mut intake = Intake::default();
        intake.push(updates("x", &[1, 2], 5));
        intake.push(updates("y", &[1], 6));
        intake.push(updates("x", &[3], 7));
        assert!(!intake.is_empty());
        let held = intake.take();
        assert_eq!(held.len(), 2);
        assert_eq!(held[0].doc_id, "x");
        let seqs: Vec<u64> = held[0].updates.iter().map(|u| u.seq).collect();
        assert_eq!(seqs, [1, 2, 3]);
        assert_eq!(held[0].lsn, 7);
        assert!(intake.is_empty());
    }

    #[test]
    fn the_hold_follows_the_last_apply_and_is_capped() {
        let mut intake = Intake::default();
        assert_eq!(
            intake.hold(),
            Duration::ZERO,
            "nothing applied yet: apply at once"
        );
        intake.applied(Duration::from_millis(2));
        assert_eq!(intake.hold(), Duration::from_millis(2) * INTAKE_HOLD_FACTOR);
        intake.applied(Duration::from_secs(5));
        assert_eq!(intake.hold(), MAX_INTAKE_HOLD);
    }
}

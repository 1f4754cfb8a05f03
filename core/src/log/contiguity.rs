//! Which updates of an incoming batch extend a document's log: the per-origin contiguity
//! check over a batch, built on [`VersionVector::position`].

use crate::ids::Origin;
use crate::update::UpdateRecord;
use crate::vv::{SeqPosition, VersionVector};

/// How a batch divides against a version vector.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Admitted<'a> {
    /// The updates that are new, in batch order; each was the next from its origin.
    pub new: Vec<&'a UpdateRecord>,
    /// How many were already held (skipped).
    pub held: usize,
    /// The first update past a gap in its origin's numbering; the batch stops there.
    pub gap: Option<(Origin, u64)>,
}

/// Walks `updates` in order, advancing `version` over each new one; held ones are
/// skipped, and the first one past a gap stops the walk (nothing after it is taken).
pub fn admit<'a>(version: &mut VersionVector, updates: &'a [UpdateRecord]) -> Admitted<'a> {
    let mut out = Admitted::default();
    for record in updates {
        match version.position(&record.origin, record.seq) {
            SeqPosition::Held => out.held += 1,
            SeqPosition::Next => {
                version.advance(&record.origin, record.seq);
                out.new.push(record);
            }
            SeqPosition::Gap { .. } => {
                out.gap = Some((record.origin.clone(), record.seq));
                break;
            }
        }
    }
    out
}

/// What [`admit`] finds in a batch of which nothing is new (a resend, or a gap before
/// anything new), with `version` left untouched; `None` when some update is new (then call
/// [`admit`]). A document's version vector may be shared and large: a batch that changes
/// nothing then costs no copy of it.
pub fn nothing_new<'a>(
    version: &VersionVector,
    updates: &'a [UpdateRecord],
) -> Option<Admitted<'a>> {
    let mut out = Admitted::default();
    for record in updates {
        match version.position(&record.origin, record.seq) {
            SeqPosition::Held => out.held += 1,
            SeqPosition::Next => return None,
            SeqPosition::Gap { .. } => {
                out.gap = Some((record.origin.clone(), record.seq));
                break;
            }
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(origin: &str, seq: u64) -> UpdateRecord {
        UpdateRecord {
            origin: Origin::from(origin),
            seq,
            data: vec![seq as u8],
        }
    }

    #[test]
    fn held_updates_are_skipped_and_a_gap_stops_the_batch() {
        let mut version: VersionVector = [(Origin::from("a"), 1)].into_iter().collect();
        let batch = [
            record("a", 1),
            record("a", 2),
            record("b", 1),
            record("a", 4),
            record("a", 3),
        ];
        let admitted = admit(&mut version, &batch);
        assert_eq!(admitted.new, vec![&batch[1], &batch[2]]);
        assert_eq!(admitted.held, 1);
        assert_eq!(admitted.gap, Some((Origin::from("a"), 4)));
        assert_eq!(version.get(&Origin::from("a")), 2);
        assert_eq!(version.get(&Origin::from("b")), 1);
    }

    #[test]
    fn nothing_new_agrees_with_admit_and_defers_to_it_when_something_is_new() {
        let version: VersionVector = [(Origin::from("a"), 2)].into_iter().collect();
        let resend = [record("a", 1), record("a", 2), record("a", 1)];
        let gap_first = [record("a", 2), record("b", 3), record("b", 1)];
        for batch in [&resend[..], &gap_first[..], &[]] {
            let mut copy = version.clone();
            assert_eq!(nothing_new(&version, batch), Some(admit(&mut copy, batch)));
            assert_eq!(copy, version);
        }
        assert_eq!(
            nothing_new(&version, &[record("a", 2), record("a", 3)]),
            None
        );
        assert_eq!(nothing_new(&version, &[record("c", 1)]), None);
    }
}

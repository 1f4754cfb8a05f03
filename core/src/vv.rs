//! Version vectors: origin → highest contiguous sequence number seen.
//!
//! Every device numbers the updates it authors per document (origin, seq), starting at 1.
//! A version vector summarises which of those a replica holds; comparing two vectors tells
//! which side is ahead and exactly which updates the other side lacks.

use std::cmp::Ordering;
use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::ids::Origin;

/// How two version vectors relate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Causality {
    /// Both hold exactly the same updates.
    Equal,
    /// `self` holds everything `other` holds, and more.
    Dominates,
    /// `other` holds everything `self` holds, and more.
    DominatedBy,
    /// Each holds something the other lacks.
    Concurrent,
}

/// A range of sequence numbers from one origin that one side lacks: `from..=to`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Missing {
    pub origin: Origin,
    pub from: u64,
    pub to: u64,
}

/// Where an update `(origin, seq)` falls against a version vector: the one per-origin
/// contiguity check, used by [`VersionVector::advance`], the device store's remote apply
/// ([`crate::log::admit`]) and the relay's append.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SeqPosition {
    /// Already covered: a resend (or, with other bytes, a reused sequence number).
    Held,
    /// Exactly the next one from its origin: it can be appended.
    Next,
    /// Past the next one: the updates from `expected` on are missing first.
    Gap { expected: u64 },
}

/// origin → highest contiguous seq. An absent origin means 0 (nothing seen).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct VersionVector {
    entries: BTreeMap<Origin, u64>,
}

impl VersionVector {
    pub fn new() -> Self {
        Self::default()
    }

    /// The highest contiguous seq held from `origin` (0 when none).
    pub fn get(&self, origin: &Origin) -> u64 {
        self.entries.get(origin).copied().unwrap_or(0)
    }

    /// Sets the entry for `origin`; 0 removes it.
    pub fn set(&mut self, origin: Origin, seq: u64) {
        if seq == 0 {
            self.entries.remove(&origin);
        } else {
            self.entries.insert(origin, seq);
        }
    }

    /// Where update `(origin, seq)` falls: held, next, or past a gap. Sequence numbers
    /// start at 1: a 0 is never held nor next, so it counts as out of order (a gap).
    pub fn position(&self, origin: &Origin, seq: u64) -> SeqPosition {
        let expected = self.get(origin) + 1;
        if seq == 0 {
            SeqPosition::Gap { expected }
        } else if seq < expected {
            SeqPosition::Held
        } else if seq == expected {
            SeqPosition::Next
        } else {
            SeqPosition::Gap { expected }
        }
    }

    /// Records that update `(origin, seq)` is held. Returns false (and changes nothing)
    /// unless `seq` is exactly the next one after the current entry.
    pub fn advance(&mut self, origin: &Origin, seq: u64) -> bool {
        if self.position(origin, seq) != SeqPosition::Next {
            return false;
        }
        self.entries.insert(origin.clone(), seq);
        true
    }

    /// True when update `(origin, seq)` is covered by this vector.
    pub fn contains(&self, origin: &Origin, seq: u64) -> bool {
        seq >= 1 && seq <= self.get(origin)
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn iter(&self) -> impl Iterator<Item = (&Origin, u64)> {
        self.entries.iter().map(|(o, s)| (o, *s))
    }

    /// Total number of updates covered (sum of entries).
    pub fn total(&self) -> u64 {
        self.entries.values().sum()
    }

    /// Pointwise maximum: afterwards `self` covers everything either vector covered.
    pub fn merge(&mut self, other: &VersionVector) {
        for (origin, seq) in other.iter() {
            let entry = self.entries.entry(origin.clone()).or_insert(0);
            *entry = (*entry).max(seq);
        }
    }

    /// Pointwise maximum, by value.
    pub fn merged(&self, other: &VersionVector) -> VersionVector {
        let mut out = self.clone();
        out.merge(other);
        out
    }

    /// Compares the sets of updates the two vectors cover.
    pub fn compare(&self, other: &VersionVector) -> Causality {
        let mut self_ahead = false;
        let mut other_ahead = false;
        for origin in self.entries.keys().chain(other.entries.keys()) {
            match self.get(origin).cmp(&other.get(origin)) {
                Ordering::Greater => self_ahead = true,
                Ordering::Less => other_ahead = true,
                Ordering::Equal => {}
            }
        }
        match (self_ahead, other_ahead) {
            (false, false) => Causality::Equal,
            (true, false) => Causality::Dominates,
            (false, true) => Causality::DominatedBy,
            (true, true) => Causality::Concurrent,
        }
    }

    /// The updates `self` holds that a replica at `other` lacks, per origin.
    pub fn missing_from(&self, other: &VersionVector) -> Vec<Missing> {
        self.iter()
            .filter(|(origin, seq)| *seq > other.get(origin))
            .map(|(origin, seq)| Missing {
                origin: origin.clone(),
                from: other.get(origin) + 1,
                to: seq,
            })
            .collect()
    }
}

impl FromIterator<(Origin, u64)> for VersionVector {
    fn from_iter<T: IntoIterator<Item = (Origin, u64)>>(iter: T) -> Self {
        let mut vv = VersionVector::new();
        for (origin, seq) in iter {
            vv.set(origin, seq);
        }
        vv
    }
}

impl std::fmt::Display for VersionVector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{{")?;
        for (i, (origin, seq)) in self.iter().enumerate() {
            if i > 0 {
                write!(f, ", ")?;
            }
            write!(f, "{origin}: {seq}")?;
        }
        write!(f, "}}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn origin(i: u8) -> Origin {
        Origin::from(format!("o{i}"))
    }

    fn arb_vv() -> impl Strategy<Value = VersionVector> {
        proptest::collection::btree_map(0u8..5, 0u64..6, 0..5)
            .prop_map(|m| m.into_iter().map(|(o, s)| (origin(o), s)).collect())
    }

    #[test]
    fn advance_only_accepts_the_next_seq() {
        let mut vv = VersionVector::new();
        assert!(!vv.advance(&origin(1), 2));
        assert!(vv.advance(&origin(1), 1));
        assert!(!vv.advance(&origin(1), 1));
        assert!(vv.advance(&origin(1), 2));
        assert_eq!(vv.get(&origin(1)), 2);
        assert!(vv.contains(&origin(1), 2));
        assert!(!vv.contains(&origin(1), 3));
        assert!(!vv.contains(&origin(1), 0));
    }

    #[test]
    fn position_tells_held_next_and_gap() {
        let vv: VersionVector = [(origin(1), 3)].into_iter().collect();
        assert_eq!(vv.position(&origin(1), 2), SeqPosition::Held);
        assert_eq!(vv.position(&origin(1), 4), SeqPosition::Next);
        assert_eq!(vv.position(&origin(1), 6), SeqPosition::Gap { expected: 4 });
        assert_eq!(vv.position(&origin(2), 1), SeqPosition::Next);
        assert_eq!(vv.position(&origin(1), 0), SeqPosition::Gap { expected: 4 });
    }

    #[test]
    fn missing_lists_ranges_the_other_lacks() {
        let a: VersionVector = [(origin(1), 5), (origin(2), 2)].into_iter().collect();
        let b: VersionVector = [(origin(1), 3), (origin(3), 1)].into_iter().collect();
        assert_eq!(
            a.missing_from(&b),
            vec![
                Missing {
                    origin: origin(1),
                    from: 4,
                    to: 5
                },
                Missing {
                    origin: origin(2),
                    from: 1,
                    to: 2
                },
            ]
        );
        assert_eq!(a.compare(&b), Causality::Concurrent);
    }

    proptest! {
        #[test]
        fn merge_is_commutative_associative_idempotent(a in arb_vv(), b in arb_vv(), c in arb_vv()) {
            prop_assert_eq!(a.merged(&b), b.merged(&a));
            prop_assert_eq!(a.merged(&b).merged(&c), a.merged(&b.merged(&c)));
            prop_assert_eq!(a.merged(&a), a.clone());
        }

        #[test]
        fn merge_dominates_or_equals_both(a in arb_vv(), b in arb_vv()) {
            let m = a.merged(&b);
            prop_assert!(matches!(m.compare(&a), Causality::Dominates | Causality::Equal));
            prop_assert!(matches!(m.compare(&b), Causality::Dominates | Causality::Equal));
        }

        #[test]
        fn compare_is_antisymmetric(a in arb_vv(), b in arb_vv()) {
            let flipped = match a.compare(&b) {
                Causality::Dominates => Causality::DominatedBy,
                Causality::DominatedBy => Causality::Dominates,
                other => other,
            };
            prop_assert_eq!(b.compare(&a), flipped);
            prop_assert_eq!(a.compare(&b) == Causality::Equal, a == b);
        }

        #[test]
        fn sending_what_is_missing_makes_the_other_catch_up(a in arb_vv(), b in arb_vv()) {
            let mut b2 = b.clone();
            for m in a.missing_from(&b) {
                for seq in m.from..=m.to {
                    prop_assert!(b2.advance(&m.origin, seq));
                }
            }
            prop_assert_eq!(b2.clone(), a.merged(&b));
            prop_assert!(a.missing_from(&b2).is_empty());
        }
    }
}

//! The relay's append rules as a pure function: which updates of a batch a document
//! accepts, what is acknowledged, and why the rest is refused.
//!
//! Rules, in batch order: an update already held with identical bytes is a harmless resend
//! (re-acknowledged); held with other bytes is `seq_conflict` (the device reused a sequence
//! number); a sequence number past the next expected one of its origin is `seq_gap`; a new
//! update must decode for the document's kind and pass the caller's integration check
//! (`invalid_update` / `missing_dependencies`). The first refused update stops the batch.
//! Acks are per origin, up to the highest sequence number accepted or already held.

use std::collections::HashMap;

use crate::doc::validate_update;
use crate::ids::{DocKind, Origin};
use crate::protocol::ErrorCode;
use crate::sync::relay_request::RelayRefusal;
use crate::update::UpdateRecord;
use crate::vv::{SeqPosition, VersionVector};

/// What the rules need of a stored document.
#[derive(Debug, Clone, PartialEq)]
pub struct DocHead {
    pub kind: DocKind,
    pub version: VersionVector,
}

/// The verdict on one batch.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AppendPlan {
    /// New updates to store, in order (contiguous per origin from the head).
    pub accepted: Vec<UpdateRecord>,
    /// Per origin, the highest sequence number now held (first-seen order of origins).
    pub acked: Vec<(Origin, u64)>,
    /// Why the batch stopped early, if it did.
    pub refusal: Option<RelayRefusal>,
}

/// Applies the append rules to `batch` against `head`.
///
/// `stored(origin, seq)` returns the stored bytes of an update the head already holds (an
/// `Err` refusal, e.g. an I/O failure, stops the batch). `integrate(update)` checks that a
/// new, decodable update integrates into the document (after the accepted ones before it).
pub fn plan_append(
    head: &DocHead,
    batch: Vec<UpdateRecord>,
    mut stored: impl FnMut(&Origin, u64) -> Result<Option<Vec<u8>>, RelayRefusal>,
    mut integrate: impl FnMut(&UpdateRecord) -> Result<(), RelayRefusal>,
) -> AppendPlan {
    let mut version = head.version.clone();
    let mut plan = AppendPlan::default();
    // Where each origin's ack and each accepted update sit in the plan: a batch may name
    // many origins (or repeat updates), and searching the lists for each would cost the
    // square of the batch.
    let mut index = PlanIndex::default();
    for update in batch {
        let checked = check_one(head.kind, &version, &plan, &index, &update, &mut stored);
        let held = match checked.and_then(|held| match held {
            true => Ok(true),
            false => integrate(&update).map(|()| false),
        }) {
            Ok(held) => held,
            Err(refusal) => {
                plan.refusal = Some(refusal);
                break;
            }
        };
        index.note_ack(&mut plan.acked, &update.origin, update.seq);
        if !held {
            version.advance(&update.origin, update.seq);
            index
                .accepted
                .insert((update.origin.clone(), update.seq), plan.accepted.len());
            plan.accepted.push(update);
        }
    }
    plan
}

/// [`plan_append`] with the integration check run once for all the batch's new updates
/// (`integrate_all`, one CRDT apply instead of one per update: an Automerge apply costs
/// something that grows with the document, per call). Only when that fails is the batch
/// planned again one update at a time, after `reset` (which must drop what the failed
/// check left in the caller's document), to find the first update that does not integrate.
/// The plan is [`plan_append`]'s, except that an update whose causal dependencies come later
/// in the same request is accepted with them (checked together, nothing is left pending)
/// where one at a time it would be refused as `missing_dependencies`.
pub fn plan_append_batched(
    head: &DocHead,
    batch: Vec<UpdateRecord>,
    mut stored: impl FnMut(&Origin, u64) -> Result<Option<Vec<u8>>, RelayRefusal>,
    mut integrate_all: impl FnMut(&[&UpdateRecord]) -> Result<(), RelayRefusal>,
    reset: impl FnOnce(),
) -> AppendPlan {
    let fallback = batch.clone();
    let plan = plan_append(head, batch, &mut stored, |_| Ok(()));
    let new: Vec<&UpdateRecord> = plan.accepted.iter().collect();
    if new.is_empty() || integrate_all(&new).is_ok() {
        return plan;
    }
    reset();
    plan_append(head, fallback, stored, |update| integrate_all(&[update]))
}

/// Checks one update against the version reached so far: `Ok(true)` when it is already
/// held (same bytes), `Ok(false)` when it is new, decodes and is next for its origin.
fn check_one(
    kind: DocKind,
    version: &VersionVector,
    plan: &AppendPlan,
    index: &PlanIndex,
    update: &UpdateRecord,
    stored: &mut impl FnMut(&Origin, u64) -> Result<Option<Vec<u8>>, RelayRefusal>,
) -> Result<bool, RelayRefusal> {
    let position = version.position(&update.origin, update.seq);
    if position == SeqPosition::Held {
        let held = match index.accepted.get(&(update.origin.clone(), update.seq)) {
            Some(&i) => Some(plan.accepted[i].data.clone()),
            None => stored(&update.origin, update.seq)?,
        };
        if held.as_deref() != Some(update.data.as_slice()) {
            return Err(RelayRefusal::new(
                ErrorCode::SeqConflict,
                format!(
                    "update {}:{} differs from the stored one: the device reused a sequence number",
                    update.origin, update.seq
                ),
            ));
        }
        return Ok(true);
    }
    if let SeqPosition::Gap { expected } = position {
        return Err(RelayRefusal::new(
            ErrorCode::SeqGap,
            format!(
                "update {}:{} arrived before {}:{}",
                update.origin, update.seq, update.origin, expected
            ),
        ));
    }
    validate_update(kind, &update.data).map_err(|e| update_refusal(update, &e))?;
    Ok(false)
}

/// The refusal for an update that does not decode or integrate: missing causal
/// dependencies get their own code (the sender should send those first); anything else
/// (does not decode, misuses a type, cannot apply) is `invalid_update`.
pub fn update_refusal(update: &UpdateRecord, e: &crate::Error) -> RelayRefusal {
    let code = match e {
        crate::Error::MissingDependencies { .. } => ErrorCode::MissingDependencies,
        _ => ErrorCode::InvalidUpdate,
    };
    RelayRefusal::new(
        code,
        format!("update {}:{} refused: {e}", update.origin, update.seq),
    )
}

/// Positions in an [`AppendPlan`]'s lists, by origin and by (origin, seq).
#[derive(Default)]
struct PlanIndex {
    acks: HashMap<Origin, usize>,
    accepted: HashMap<(Origin, u64), usize>,
}

impl PlanIndex {
    fn note_ack(&mut self, acked: &mut Vec<(Origin, u64)>, origin: &Origin, seq: u64) {
        match self.acks.get(origin) {
            Some(&i) => acked[i].1 = acked[i].1.max(seq),
            None => {
                self.acks.insert(origin.clone(), acked.len());
                acked.push((origin.clone(), seq));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Store;

    /// `n` real Yrs updates of one device, and that device's id.
    fn updates(n: usize) -> (Origin, Vec<UpdateRecord>) {
        let store = Store::open_in_memory().unwrap();
        store.create_doc("d", DocKind::Yrs).unwrap();
        for i in 0..n {
            store
                .transact("d", |tx| tx.insert_text("text", 0, &i.to_string()))
                .unwrap();
        }
        (store.device_id(), store.outbox("d").unwrap())
    }

    fn head(version: VersionVector) -> DocHead {
        DocHead {
            kind: DocKind::Yrs,
            version,
        }
    }

    /// Stored bytes as a map lookup over `held`.
    fn lookup(
        held: &[UpdateRecord],
    ) -> impl FnMut(&Origin, u64) -> Result<Option<Vec<u8>>, RelayRefusal> + '_ {
        move |origin, seq| {
            Ok(held
                .iter()
                .find(|u| &u.origin == origin && u.seq == seq)
                .map(|u| u.data.clone()))
        }
    }

    fn code(plan: &AppendPlan) -> Option<ErrorCode> {
        plan.refusal.as_ref().map(|r| r.code)
    }

    #[test]
    fn new_contiguous_updates_are_accepted_and_acked_per_origin() {
        let (a, ua) = updates(3);
        let (b, ub) = updates(2);
        let batch = vec![
            ua[0].clone(),
            ub[0].clone(),
            ua[1].clone(),
            ub[1].clone(),
            ua[2].clone(),
        ];
        let plan = plan_append(
            &head(VersionVector::new()),
            batch.clone(),
            lookup(&[]),
            |_| Ok(()),
        );
        assert_eq!(plan.accepted, batch);
        assert_eq!(plan.acked, vec![(a, 3), (b, 2)]);
        assert_eq!(plan.refusal, None);
    }

    #[test]
    fn an_identical_resend_is_reacked_and_not_stored_again() {
        let (a, ua) = updates(2);
        let mut version = VersionVector::new();
        version.set(a.clone(), 1);
        let plan = plan_append(&head(version), ua.clone(), lookup(&ua[..1]), |_| Ok(()));
        assert_eq!(plan.accepted, vec![ua[1].clone()]);
        assert_eq!(plan.acked, vec![(a.clone(), 2)]);
        // The same update twice in one batch: the second is a resend of the first.
        let twice = vec![ua[0].clone(), ua[0].clone()];
        let plan = plan_append(&head(VersionVector::new()), twice, lookup(&[]), |_| Ok(()));
        assert_eq!(plan.accepted, vec![ua[0].clone()]);
        assert_eq!(plan.acked, vec![(a, 1)]);
    }

    #[test]
    fn a_reused_sequence_number_with_other_bytes_is_a_conflict() {
        let (a, ua) = updates(2);
        let mut version = VersionVector::new();
        version.set(a.clone(), 2);
        let mut changed = ua[1].clone();
        changed.data = ua[0].data.clone();
        let plan = plan_append(
            &head(version),
            vec![ua[0].clone(), changed],
            lookup(&ua),
            |_| Ok(()),
        );
        assert_eq!(code(&plan), Some(ErrorCode::SeqConflict));
        assert!(plan.accepted.is_empty());
        assert_eq!(
            plan.acked,
            vec![(a, 1)],
            "the resend before it is still acked"
        );
    }

    #[test]
    fn a_gap_stops_the_batch_at_the_first_refused_update() {
        let (a, ua) = updates(4);
        let batch = vec![ua[0].clone(), ua[2].clone(), ua[1].clone(), ua[3].clone()];
        let plan = plan_append(&head(VersionVector::new()), batch, lookup(&[]), |_| Ok(()));
        assert_eq!(code(&plan), Some(ErrorCode::SeqGap));
        assert_eq!(plan.accepted, vec![ua[0].clone()]);
        assert_eq!(plan.acked, vec![(a, 1)]);
    }

    #[test]
    fn a_batched_plan_integrates_once_and_falls_back_to_the_same_plan() {
        let (a, ua) = updates(4);
        let (b, ub) = updates(2);
        let batch = vec![
            ua[0].clone(),
            ub[0].clone(),
            ua[1].clone(),
            ub[1].clone(),
            ua[2].clone(),
            ua[3].clone(),
        ];
        // Every update integrates: one check for all of them.
        let mut calls = Vec::new();
        let plan = plan_append_batched(
            &head(VersionVector::new()),
            batch.clone(),
            lookup(&[]),
            |all| {
                calls.push(all.len());
                Ok(())
            },
            || panic!("nothing to reset"),
        );
        assert_eq!(calls, [6]);
        assert_eq!(plan.accepted, batch);
        assert_eq!(plan.acked, vec![(a.clone(), 4), (b.clone(), 2)]);

        // One does not integrate: reset, then the plan one update at a time.
        let missing = crate::Error::MissingDependencies {
            kind: DocKind::Yrs,
            detail: "a parent is missing".into(),
        };
        let refuse_third_of_a =
            |all: &[&UpdateRecord]| match all.iter().find(|u| u.origin == a && u.seq == 3) {
                Some(u) => Err(update_refusal(u, &missing)),
                None => Ok(()),
            };
        let mut reset = false;
        let plan = plan_append_batched(
            &head(VersionVector::new()),
            batch.clone(),
            lookup(&[]),
            refuse_third_of_a,
            || reset = true,
        );
        assert!(reset);
        let sequential = plan_append(&head(VersionVector::new()), batch, lookup(&[]), |u| {
            refuse_third_of_a(&[u])
        });
        assert_eq!(plan, sequential);
        assert_eq!(code(&plan), Some(ErrorCode::MissingDependencies));
        assert_eq!(plan.accepted.len(), 4);
        assert_eq!(plan.acked, vec![(a, 2), (b, 2)]);
    }

    #[test]
    fn undecodable_or_unintegrable_updates_are_refused() {
        let (a, ua) = updates(3);
        let mut garbage = ua[1].clone();
        garbage.data = vec![0xff, 0xff, 0xff];
        let batch = vec![ua[0].clone(), garbage, ua[2].clone()];
        let plan = plan_append(&head(VersionVector::new()), batch, lookup(&[]), |_| Ok(()));
        assert_eq!(code(&plan), Some(ErrorCode::InvalidUpdate));
        assert_eq!(plan.acked, vec![(a.clone(), 1)]);

        let missing = crate::Error::MissingDependencies {
            kind: DocKind::Yrs,
            detail: "a parent is missing".into(),
        };
        let plan = plan_append(&head(VersionVector::new()), ua.clone(), lookup(&[]), |u| {
            if u.seq == 2 {
                Err(update_refusal(u, &missing))
            } else {
                Ok(())
            }
        });
        assert_eq!(code(&plan), Some(ErrorCode::MissingDependencies));
        assert_eq!(plan.accepted, vec![ua[0].clone()]);
        assert_eq!(plan.acked, vec![(a, 1)]);
    }
}

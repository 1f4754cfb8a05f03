//! Yrs: writing what policies need into the document — the policy table, and the
//! stamped-write register of a path governed by a policy (`policy/register.rs`).
//!
//! The reserved maps are root types, which every device names alike, so concurrent
//! creations are one map.

use yrs::{Map, TransactionMut, WriteTxn};

use crate::policy::register::{self, Payload, CLOCK, POLICIES};
use crate::policy::yrs_meta::{newest_stamp, pairs_of};
use crate::policy::{ClockState, Hlc, HlcClock, Policy};

pub(super) fn set_policy(txn: &mut TransactionMut<'_>, pattern: &str, policy: &Policy) {
    let table = txn.get_or_insert_map(POLICIES);
    table.insert(txn, pattern, policy.to_string());
}

/// Records a write at the path `keys`: stamps it after every write it supersedes (the
/// register's entries, which it removes) and every stamp in the document.
pub(super) fn stamp(
    txn: &mut TransactionMut<'_>,
    clock: &mut HlcClock,
    keys: &[String],
    payload: &Payload,
) -> Hlc {
    let reg = txn.get_or_insert_map(register::register_name(keys));
    let pairs = pairs_of(txn, &reg);
    let seen = register::entries(pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())));
    if let Some(newest) = newest_stamp(txn) {
        clock.observe(newest);
    }
    let hlc = clock.stamp(seen.iter().map(|e| &e.hlc));
    for (key, _) in &pairs {
        reg.remove(txn, key);
    }
    reg.insert(txn, hlc.encode(), payload.encode());
    let stamps = txn.get_or_insert_map(CLOCK);
    let time = ClockState {
        ms: hlc.ms,
        counter: hlc.counter,
    };
    stamps.insert(txn, hlc.origin.as_str(), time.encode());
    hlc
}

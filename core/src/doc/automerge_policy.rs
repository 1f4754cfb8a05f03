//! Automerge: writing what policies need into the document — the policy table, and the
//! stamped-write register of a path governed by a policy (`policy/register.rs`).
//!
//! The reserved maps (policies, clock, registers: three in all, whatever the number of
//! paths) are top-level keys created as shared containers (`automerge_create.rs`), so
//! devices that create one concurrently create one map.

use automerge::transaction::Transactable;
use automerge::{AutoCommit, ObjId, ObjType, ROOT};

use super::automerge_create::{create_at_key, Shape};
use crate::error::{Error, Result};
use crate::policy::automerge_meta::{newest_stamp, register_keyed, top_map};
use crate::policy::register::{self, Payload, CLOCK, ENTRY_SEPARATOR, POLICIES, REGISTERS};
use crate::policy::{ClockState, Hlc, HlcClock, Policy};

fn edit_error(e: automerge::AutomergeError) -> Error {
    Error::InvalidEdit(e.to_string())
}

/// The map at top-level key `name`, created (shared) if absent.
fn reserved_map(doc: &mut AutoCommit, name: &str) -> Result<ObjId> {
    match top_map(doc, name) {
        Some(id) => Ok(id),
        None => create_at_key(doc, &ROOT, name, Shape::Object(ObjType::Map)),
    }
}

pub(super) fn set_policy(doc: &mut AutoCommit, pattern: &str, policy: &Policy) -> Result<()> {
    let table = reserved_map(doc, POLICIES)?;
    doc.put(&table, pattern, policy.to_string())
        .map_err(edit_error)
}

/// Records a write at the path `keys`: stamps it after every write it supersedes (the
/// register's entries, which it removes) and every stamp in the document.
pub(super) fn stamp(
    doc: &mut AutoCommit,
    clock: &mut HlcClock,
    keys: &[String],
    payload: &Payload,
) -> Result<Hlc> {
    let reg = reserved_map(doc, REGISTERS)?;
    let seen = register_keyed(doc, keys);
    if let Some(newest) = newest_stamp(doc) {
        clock.observe(newest);
    }
    let hlc = clock.stamp(seen.iter().map(|(_, e)| &e.hlc));
    for (key, _) in &seen {
        doc.delete(&reg, key.as_str()).map_err(edit_error)?;
    }
    let key = format!(
        "{}{ENTRY_SEPARATOR}{}",
        register::path_text(keys),
        hlc.encode()
    );
    doc.put(&reg, key, payload.encode()).map_err(edit_error)?;
    let stamps = reserved_map(doc, CLOCK)?;
    let time = ClockState {
        ms: hlc.ms,
        counter: hlc.counter,
    };
    doc.put(&stamps, hlc.origin.as_str(), time.encode())
        .map_err(edit_error)?;
    Ok(hlc)
}

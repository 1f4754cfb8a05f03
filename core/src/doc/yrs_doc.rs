//! Yrs (Yjs-compatible) documents: creating, decoding and applying v1 updates (with the
//! relay's integration check), and saving.
//!
//! Edits by path live in `yrs_edit.rs`, a local edit's transactions in `yrs_local.rs`,
//! text positions in `yrs_text.rs`.

use yrs::updates::decoder::Decode;
use yrs::{
    Doc, Map, MapRef, OffsetKind, Options, ReadTxn, StateVector, Transact, Transaction, Update,
};

use crate::error::{Error, Result};
use crate::ids::DocKind;

pub(super) fn new_doc() -> Doc {
    Doc::with_options(Options {
        offset_kind: OffsetKind::Utf16,
        ..Options::default()
    })
}

pub(super) fn decode_update(bytes: &[u8]) -> Result<Update> {
    decode_yrs_update(bytes)
}

/// Decodes a Yrs v1 update from a peer: first checks that no value in it nests deeper than
/// [`MAX_VALUE_DEPTH`](super::MAX_VALUE_DEPTH) (Yrs's own decoder recurses without a limit,
/// and a stack overflow aborts the process), then has Yrs decode it.
pub fn decode_yrs_update(bytes: &[u8]) -> Result<Update> {
    super::yrs_depth::check_value_depth(bytes)?;
    Update::decode_v1(bytes).map_err(invalid)
}

/// The error for an update Yrs refuses to decode or apply.
fn invalid(e: impl std::fmt::Display) -> Error {
    Error::InvalidUpdate {
        kind: DocKind::Yrs,
        reason: e.to_string(),
    }
}

pub(super) fn apply_update(doc: &mut Doc, bytes: &[u8]) -> Result<()> {
    apply_updates(doc, &[bytes])
}

/// [`apply_update`] for a saved state whose values were checked when they came in (a
/// checkpoint this build wrote): not walked for their nesting depth again.
pub(super) fn apply_checked_update(doc: &mut Doc, bytes: &[u8]) -> Result<()> {
    apply_decoded(doc, vec![Update::decode_v1(bytes).map_err(invalid)?])
}

/// [`apply_updates`] for updates from a peer (a relay): first checks that they nest no
/// shared type deeper than [`MAX_TYPE_DEPTH`](super::yrs_nesting::MAX_TYPE_DEPTH) (Yrs
/// deletes nested types by recursion).
pub(super) fn apply_peer_updates(doc: &mut Doc, updates: &[&[u8]]) -> Result<()> {
    super::yrs_nesting::check_type_depths(doc, updates)?;
    apply_updates(doc, updates)
}

/// Decodes every update, then applies them in one transaction.
pub(super) fn apply_updates(doc: &mut Doc, updates: &[&[u8]]) -> Result<()> {
    let decoded = updates
        .iter()
        .map(|bytes| decode_update(bytes))
        .collect::<Result<Vec<_>>>()?;
    apply_decoded(doc, decoded)
}

/// Applies decoded updates in one transaction.
fn apply_decoded(doc: &mut Doc, decoded: Vec<Update>) -> Result<()> {
    let mut txn = doc.transact_mut();
    for update in decoded {
        txn.apply_update(update).map_err(invalid)?;
    }
    super::yrs_roots::define_roots(&mut txn);
    Ok(())
}

/// Applies a peer's update in its own transaction and checks that it uses every type it
/// touches as that type: no keyed entries in a text or array, no sequence items in a map
/// (such an update decodes and integrates, but would hide or break the document).
pub(super) fn integrate(doc: &mut Doc, bytes: &[u8]) -> Result<()> {
    let update = decode_update(bytes)?;
    super::yrs_nesting::check_type_depth(doc, bytes)?;
    let mut txn = doc.transact_mut();
    txn.apply_update(update).map_err(invalid)?;
    super::yrs_roots::define_roots(&mut txn);
    txn.commit();
    for branch in txn.changed_parent_types() {
        let (ty, items, entries) = (
            branch.type_ref(),
            branch.len(),
            MapRef::from(*branch).len(&txn),
        );
        let misuse = match ty {
            yrs::types::TypeRef::Map if items > 0 => Some("sequence items in a map"),
            yrs::types::TypeRef::Array | yrs::types::TypeRef::Text if entries > 0 => {
                Some("keyed entries in a text or array")
            }
            _ => None,
        };
        if let Some(misuse) = misuse {
            let name = match branch.id() {
                yrs::BranchID::Root(name) => format!("root type {name:?}"),
                yrs::BranchID::Nested(id) => format!("nested type {}:{}", id.client, id.clock),
            };
            return Err(Error::TypeConflict {
                kind: DocKind::Yrs,
                detail: format!("it puts {misuse} ({name} is a {ty})"),
            });
        }
    }
    Ok(())
}

pub(super) fn save(doc: &Doc) -> Vec<u8> {
    doc.transact()
        .encode_state_as_update_v1(&StateVector::default())
}

pub(super) fn has_pending(doc: &Doc) -> bool {
    doc.transact().has_missing_updates()
}

pub(super) fn read_txn(doc: &Doc) -> Transaction<'_> {
    doc.transact()
}

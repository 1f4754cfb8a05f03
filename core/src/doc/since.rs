//! What changed since a recorded point of a document: a compact token for "the state
//! now" (Automerge: its heads; Yrs: its state vector) and, later, the updates that bring
//! a replica holding that state up to date. The device folds its unsent updates into its
//! checkpoint and rebuilds them from here when it next sends (store `fold.rs`).

use automerge::ChangeHash;
use yrs::updates::decoder::Decode;
use yrs::updates::encoder::Encode;
use yrs::{ReadTxn, StateVector, Transact};

use super::CrdtDoc;
use crate::error::{Error, Result};
use crate::ids::DocKind;

fn bad_token(kind: DocKind) -> Error {
    Error::InvalidUpdate {
        kind,
        reason: "a recorded document position does not decode".into(),
    }
}

impl CrdtDoc {
    /// A token for the document's current state, for [`CrdtDoc::updates_since`].
    pub fn position(&mut self) -> Vec<u8> {
        match self {
            CrdtDoc::Automerge(doc) => doc.get_heads().iter().flat_map(|h| h.0).collect(),
            CrdtDoc::Yrs(doc, _) => doc.transact().state_vector().encode_v1(),
        }
    }

    /// The updates (at most `records`, at least one when anything changed) that bring a
    /// replica at position `since` to this document's state, oldest first. Automerge: its
    /// changes since `since`, in causal order, split into `records` groups of about equal
    /// size; Yrs: one v1 update of the difference.
    pub fn updates_since(&mut self, since: &[u8], records: usize) -> Result<Vec<Vec<u8>>> {
        match self {
            CrdtDoc::Automerge(doc) => {
                if !since.len().is_multiple_of(32) {
                    return Err(bad_token(DocKind::Automerge));
                }
                let heads: Vec<ChangeHash> = since
                    .chunks(32)
                    .map(|c| ChangeHash(c.try_into().expect("32 bytes")))
                    .collect();
                let changes = doc.get_changes(&heads);
                let total: usize = changes.iter().map(|c| c.raw_bytes().len()).sum();
                let records = records.clamp(1, changes.len().max(1));
                let per_record = total.div_ceil(records).max(1);
                let mut out: Vec<Vec<u8>> = Vec::with_capacity(records);
                let mut current = Vec::new();
                for (i, change) in changes.iter().enumerate() {
                    current.extend_from_slice(change.raw_bytes());
                    let left = changes.len() - i - 1;
                    let slots = records - out.len() - 1;
                    if slots > 0 && (current.len() >= per_record || left == slots) {
                        out.push(std::mem::take(&mut current));
                    }
                }
                if !current.is_empty() {
                    out.push(current);
                }
                Ok(out)
            }
            CrdtDoc::Yrs(doc, _) => {
                let sv = StateVector::decode_v1(since).map_err(|_| bad_token(DocKind::Yrs))?;
                let update = doc.transact().encode_state_as_update_v1(&sv);
                Ok(vec![update])
            }
        }
    }
}

//! Checkpoints: when to take one, storing the saved state (table `checkpoints`), and
//! pruning the logged updates it covers.

use super::cached::Cached;
use rusqlite::{params, Transaction};

use super::codec::encode_version;
use super::rows::last_index;
use super::version::LAST_INDEX_EVER;
use crate::doc::CrdtDoc;
use crate::error::Result;
use crate::ids::DocKind;
use crate::vv::VersionVector;

/// The log indexes a new checkpoint took in: `(previous_upto, upto]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogSpan {
    /// What the previous checkpoint covered up to (0 when none).
    pub previous_upto: i64,
    /// What the new one covers up to: the last logged update.
    pub upto: i64,
}

/// Which covered updates [`prune`] keeps.
#[derive(Debug, Clone, Copy)]
pub enum Keep<'a> {
    /// None: every covered update is deleted.
    Nothing,
    /// Those listed in this table (columns `doc_id, origin, seq`), e.g. the device's
    /// table of local updates still to send.
    ListedIn(&'a str),
}

/// True when a checkpoint should be taken now: `tail` reached `every`, and the document
/// holds nothing it cannot integrate yet (a saved state would not contain that).
pub fn checkpoint_due(tail: u64, every: u64, crdt: &mut CrdtDoc) -> bool {
    tail >= every && !crdt.has_pending()
}

/// Stores `saved` (the document's saved state, which must hold every logged update) and
/// `roots` (its [`CrdtDoc::root_types`]) as its checkpoint, and `version` whole as its
/// stored version vector (the checkpoint may hold updates that are not logged). The
/// checkpoint is marked `checked` when `saved`, these very bytes, walk clean (see
/// [`super::schema::add_checkpoint_checked`]): a document's re-encoding is not the bytes
/// that came in, so what was walked then is not taken for what is stored now.
pub fn write_checkpoint(
    tx: &Transaction<'_>,
    doc_id: &str,
    kind: DocKind,
    version: &VersionVector,
    saved: &[u8],
    roots: Option<&str>,
) -> Result<LogSpan> {
    let checked = CrdtDoc::saved_state_walks_clean(kind, saved);
    let previous_upto: i64 = tx.query_row_cached(
        "SELECT snapshot_upto FROM docs WHERE id = ?1",
        [doc_id],
        |r| r.get(0),
    )?;
    let upto = last_index(tx, doc_id)?;
    tx.execute_cached(
        &format!(
            "UPDATE docs SET vv = ?1, vv_upto = {LAST_INDEX_EVER}, snapshot_upto = ?2
             WHERE id = ?3"
        ),
        params![encode_version(version), upto, doc_id],
    )?;
    tx.execute_cached(
        "INSERT INTO checkpoints (doc_id, state, roots, checked) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (doc_id) DO UPDATE
           SET state = excluded.state, roots = excluded.roots, checked = excluded.checked",
        params![doc_id, saved, roots, checked],
    )?;
    Ok(LogSpan {
        previous_upto,
        upto,
    })
}

/// Deletes the logged updates in `span` (they are in the checkpoint), except those `keep`
/// lists. Only the span: older survivors were kept on purpose, and re-checking them each
/// time made long unsynced logs slow down every checkpoint.
pub fn prune(tx: &Transaction<'_>, doc_id: &str, span: LogSpan, keep: Keep<'_>) -> Result<usize> {
    let range = "doc_id = ?1 AND idx > ?2 AND idx <= ?3";
    let sql = match keep {
        Keep::Nothing => format!("DELETE FROM updates WHERE {range}"),
        Keep::ListedIn(table) => format!(
            "DELETE FROM updates WHERE {range} AND NOT EXISTS
               (SELECT 1 FROM {table} k WHERE k.doc_id = updates.doc_id
                  AND k.origin = updates.origin AND k.seq = updates.seq)"
        ),
    };
    Ok(tx.execute_cached(&sql, params![doc_id, span.previous_upto, span.upto])?)
}

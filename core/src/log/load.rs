//! A document as committed: its checkpoint (saved state) plus the updates logged after it,
//! applied in one batch.

use rusqlite::types::ValueRef;
use rusqlite::{params, Connection, Row};

use super::codec::decode_version;
use crate::doc::CrdtDoc;
use crate::error::Result;
use crate::ids::DocKind;
use crate::text_unit::TextUnit;
use crate::vv::VersionVector;

/// A document's `docs` row, as the log reads it.
#[derive(Debug, Clone)]
pub struct LogHead {
    pub kind: DocKind,
    pub version: VersionVector,
    /// The saved state loading starts from, if a checkpoint was taken (and was read:
    /// [`read_heads`] leaves it out).
    pub checkpoint: Option<Vec<u8>>,
    /// The log index the checkpoint covers up to (0 when none).
    pub checkpoint_upto: i64,
    /// Updates logged since the checkpoint.
    pub tail: u64,
}

/// A loaded document and the log index of the last update applied to it.
pub struct LoadedLog {
    pub head: LogHead,
    pub crdt: CrdtDoc,
    /// The size of the checkpoint loading started from (0 when none).
    pub checkpoint_bytes: u64,
    pub last_index: i64,
    /// The bytes of the updates replayed on top of the checkpoint (the tail).
    pub tail_bytes: u64,
}

/// The columns [`head_from_row`] reads, in its order.
const HEAD_COLUMNS: &str = "kind, vv, snapshot_upto, tail";

/// A [`LogHead`] (without its checkpoint bytes) from a row selected as [`HEAD_COLUMNS`].
fn head_from_row(r: &Row<'_>) -> Result<LogHead> {
    Ok(LogHead {
        kind: r.get::<_, String>(0)?.parse()?,
        version: decode_version(&r.get::<_, Vec<u8>>(1)?)?,
        checkpoint: None,
        checkpoint_upto: r.get(2)?,
        tail: r.get::<_, i64>(3)? as u64,
    })
}

/// The document's row, or `None` when there is no such document.
pub fn read_head(conn: &Connection, doc_id: &str) -> Result<Option<LogHead>> {
    let Some(head) = read_head_only(conn, doc_id)? else {
        return Ok(None);
    };
    let checkpoint = with_checkpoint(conn, doc_id, |saved| Ok(saved.map(|(b, _)| b.to_vec())))?;
    Ok(Some(LogHead { checkpoint, ..head }))
}

/// The document's row without its checkpoint bytes (`checkpoint` is `None`).
fn read_head_only(conn: &Connection, doc_id: &str) -> Result<Option<LogHead>> {
    let mut stmt =
        conn.prepare_cached(&format!("SELECT {HEAD_COLUMNS} FROM docs WHERE id = ?1"))?;
    let mut rows = stmt.query([doc_id])?;
    match rows.next()? {
        Some(row) => Ok(Some(head_from_row(row)?)),
        None => Ok(None),
    }
}

/// Calls `f` with the document's checkpoint (`None` when it has none): its saved state as
/// SQLite holds it, without copying it out first (a checkpoint is the largest thing a load
/// reads, 368 KiB for the automerge-paper trace's Yrs document, and loading decodes it
/// once), and the root types recorded with it.
fn with_checkpoint<T>(
    conn: &Connection,
    doc_id: &str,
    f: impl FnOnce(Option<(&[u8], Option<&str>)>) -> Result<T>,
) -> Result<T> {
    let mut stmt = conn.prepare_cached("SELECT state, roots FROM checkpoints WHERE doc_id = ?1")?;
    let mut rows = stmt.query([doc_id])?;
    match rows.next()? {
        Some(row) => {
            let value = row.get_ref(0)?;
            let ValueRef::Blob(bytes) = value else {
                let found = value.data_type();
                return Err(rusqlite::Error::InvalidColumnType(0, "state".into(), found).into());
            };
            // A record that is not text is no record: the types come from the content.
            let roots = match row.get_ref(1)? {
                ValueRef::Text(text) => std::str::from_utf8(text).ok(),
                _ => None,
            };
            f(Some((bytes, roots)))
        }
        None => f(None),
    }
}

/// Every document's id and head, in id order, without reading the checkpoints (their
/// `checkpoint` is `None`): for an owner that keeps all heads in memory, such as the relay.
pub fn read_heads(conn: &Connection) -> Result<Vec<(String, LogHead)>> {
    let mut stmt = conn.prepare(&format!("SELECT {HEAD_COLUMNS}, id FROM docs ORDER BY id"))?;
    let mut rows = stmt.query([])?;
    let mut heads = Vec::new();
    while let Some(row) = rows.next()? {
        heads.push((row.get(4)?, head_from_row(row)?));
    }
    Ok(heads)
}

/// The document as committed, or `None` when there is no such document. Call it inside
/// one transaction, so a checkpoint taken by another connection cannot make updates fall
/// between the two reads.
pub fn load(conn: &Connection, doc_id: &str) -> Result<Option<LoadedLog>> {
    load_in(conn, doc_id, TextUnit::default())
}

/// [`load`], the document's text positions counting `unit`.
pub fn load_in(conn: &Connection, doc_id: &str, unit: TextUnit) -> Result<Option<LoadedLog>> {
    let Some(head) = read_head_only(conn, doc_id)? else {
        return Ok(None);
    };
    let (crdt, checkpoint_bytes) = with_checkpoint(conn, doc_id, |saved| {
        Ok(match saved {
            Some((bytes, roots)) => (
                CrdtDoc::load_checkpoint(head.kind, bytes, roots, unit)?,
                bytes.len() as u64,
            ),
            None => (CrdtDoc::new_in(head.kind, unit), 0),
        })
    })?;
    let (crdt, last_index, tail_bytes) = replay_onto(conn, doc_id, crdt, head.checkpoint_upto)?;
    Ok(Some(LoadedLog {
        head,
        crdt,
        checkpoint_bytes,
        last_index,
        tail_bytes,
    }))
}

/// Applies the updates logged after log index `upto` to `crdt` in one batch.
fn replay_onto(
    conn: &Connection,
    doc_id: &str,
    mut crdt: CrdtDoc,
    upto: i64,
) -> Result<(CrdtDoc, i64, u64)> {
    let mut stmt = conn.prepare_cached(
        "SELECT idx, data FROM updates WHERE doc_id = ?1 AND idx > ?2 ORDER BY idx",
    )?;
    let tail: Vec<(i64, Vec<u8>)> = stmt
        .query_map(params![doc_id, upto], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<std::result::Result<_, _>>()?;
    if !tail.is_empty() {
        crdt.apply_updates(&tail.iter().map(|(_, d)| d.as_slice()).collect::<Vec<_>>())?;
    }
    let last = tail.last().map(|(idx, _)| *idx).unwrap_or(upto);
    let bytes = tail.iter().map(|(_, d)| d.len() as u64).sum();
    Ok((crdt, last, bytes))
}

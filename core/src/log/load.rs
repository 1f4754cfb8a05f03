//! A document as committed: its checkpoint (saved state) plus the updates logged after it,
//! applied in one batch.

use rusqlite::{params, Connection, OptionalExtension};

use super::codec::decode_version;
use crate::doc::CrdtDoc;
use crate::error::Result;
use crate::ids::DocKind;
use crate::vv::VersionVector;

/// A document's `docs` row, as the log reads it.
#[derive(Debug, Clone)]
pub struct LogHead {
    pub kind: DocKind,
    pub version: VersionVector,
    /// The saved state loading starts from, if a checkpoint was taken.
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
    pub last_index: i64,
}

/// The document's row, or `None` when there is no such document.
pub fn read_head(conn: &Connection, doc_id: &str) -> Result<Option<LogHead>> {
    let row = conn
        .query_row(
            "SELECT kind, vv, snapshot, snapshot_upto, tail FROM docs WHERE id = ?1",
            [doc_id],
            |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, Vec<u8>>(1)?,
                    r.get::<_, Option<Vec<u8>>>(2)?,
                    r.get::<_, i64>(3)?,
                    r.get::<_, i64>(4)?,
                ))
            },
        )
        .optional()?;
    let Some((kind, vv, checkpoint, checkpoint_upto, tail)) = row else {
        return Ok(None);
    };
    Ok(Some(LogHead {
        kind: kind.parse()?,
        version: decode_version(&vv)?,
        checkpoint,
        checkpoint_upto,
        tail: tail as u64,
    }))
}

/// The document as committed, or `None` when there is no such document. Call it inside
/// one transaction, so a checkpoint taken by another connection cannot make updates fall
/// between the two reads.
pub fn load(conn: &Connection, doc_id: &str) -> Result<Option<LoadedLog>> {
    let Some(head) = read_head(conn, doc_id)? else {
        return Ok(None);
    };
    let (crdt, last_index) = replay(
        conn,
        doc_id,
        head.kind,
        head.checkpoint.as_deref(),
        head.checkpoint_upto,
    )?;
    Ok(Some(LoadedLog {
        head,
        crdt,
        last_index,
    }))
}

/// Loads `checkpoint` (an empty document when `None`) and applies the updates logged after
/// log index `upto` in one batch. Returns the document and the log index of the last
/// update applied (`upto` when none).
pub fn replay(
    conn: &Connection,
    doc_id: &str,
    kind: DocKind,
    checkpoint: Option<&[u8]>,
    upto: i64,
) -> Result<(CrdtDoc, i64)> {
    let mut crdt = match checkpoint {
        Some(bytes) => CrdtDoc::load(kind, bytes)?,
        None => CrdtDoc::new(kind),
    };
    let mut stmt = conn.prepare_cached(
        "SELECT idx, data FROM updates WHERE doc_id = ?1 AND idx > ?2 ORDER BY idx",
    )?;
    let tail: Vec<(i64, Vec<u8>)> = stmt
        .query_map(params![doc_id, upto], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<std::result::Result<_, _>>()?;
    crdt.apply_updates(&tail.iter().map(|(_, d)| d.as_slice()).collect::<Vec<_>>())?;
    let last = tail.last().map(|(idx, _)| *idx).unwrap_or(upto);
    Ok((crdt, last))
}

//! A document as committed: its checkpoint (saved state) plus the updates logged after it,
//! applied in one batch.

use std::collections::HashMap;

use rusqlite::types::ValueRef;
use rusqlite::{params, Connection, Row};

use super::codec::decode_version;
use super::version::fold_logged;
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

/// The columns [`Partial::from_row`] reads, in its order.
const HEAD_COLUMNS: &str = "kind, vv, snapshot_upto, vv_upto";

/// A document's row before the updates logged after it are counted: its tail and its
/// version vector come from the row and those updates ([`super::version`]).
struct Partial {
    head: LogHead,
    /// The log index the row's version vector holds the document as of.
    vv_upto: i64,
}

impl Partial {
    /// From a row selected as [`HEAD_COLUMNS`] (the tail not counted yet).
    fn from_row(r: &Row<'_>) -> Result<Self> {
        Ok(Partial {
            head: LogHead {
                kind: r.get::<_, String>(0)?.parse()?,
                version: decode_version(&r.get::<_, Vec<u8>>(1)?)?,
                checkpoint: None,
                checkpoint_upto: r.get(2)?,
                tail: 0,
            },
            vv_upto: r.get(3)?,
        })
    }

    /// The log index after which rows count, for the tail or the version vector.
    fn rows_after(&self) -> i64 {
        self.head.checkpoint_upto.min(self.vv_upto)
    }

    /// Counts the update logged at `idx` (after [`Partial::rows_after`]).
    fn take(&mut self, idx: i64, origin: String, seq: u64) {
        if idx > self.head.checkpoint_upto {
            self.head.tail += 1;
        }
        if idx > self.vv_upto {
            fold_logged(&mut self.head.version, origin, seq);
        }
    }
}

/// The document's row, or `None` when there is no such document.
pub fn read_head(conn: &Connection, doc_id: &str) -> Result<Option<LogHead>> {
    let Some(head) = read_head_only(conn, doc_id)? else {
        return Ok(None);
    };
    let checkpoint = read_checkpoint(conn, doc_id)?;
    Ok(Some(LogHead { checkpoint, ..head }))
}

/// The document's checkpoint (saved state), if one was taken, without reading its row or
/// its tail.
pub fn read_checkpoint(conn: &Connection, doc_id: &str) -> Result<Option<Vec<u8>>> {
    with_checkpoint(conn, doc_id, |saved| Ok(saved.map(|s| s.state.to_vec())))
}

/// The document's stored version vector, or `None` when there is no such document.
pub fn read_version(conn: &Connection, doc_id: &str) -> Result<Option<VersionVector>> {
    Ok(read_head_only(conn, doc_id)?.map(|head| head.version))
}

/// The document's row, `None` when there is none; its updates not counted yet.
fn read_partial(conn: &Connection, doc_id: &str) -> Result<Option<Partial>> {
    let mut stmt =
        conn.prepare_cached(&format!("SELECT {HEAD_COLUMNS} FROM docs WHERE id = ?1"))?;
    let mut rows = stmt.query([doc_id])?;
    match rows.next()? {
        Some(row) => Ok(Some(Partial::from_row(row)?)),
        None => Ok(None),
    }
}

/// The document's row without its checkpoint bytes (`checkpoint` is `None`).
fn read_head_only(conn: &Connection, doc_id: &str) -> Result<Option<LogHead>> {
    let Some(mut partial) = read_partial(conn, doc_id)? else {
        return Ok(None);
    };
    let mut stmt =
        conn.prepare_cached("SELECT idx, origin, seq FROM updates WHERE doc_id = ?1 AND idx > ?2")?;
    let mut rows = stmt.query(params![doc_id, partial.rows_after()])?;
    while let Some(row) = rows.next()? {
        partial.take(row.get(0)?, row.get(1)?, row.get::<_, i64>(2)? as u64);
    }
    Ok(Some(partial.head))
}

/// A checkpoint's row as SQLite holds it.
struct SavedRow<'a> {
    /// The saved state, not copied out (a checkpoint is the largest thing a load reads,
    /// 368 KiB for the automerge-paper trace's Yrs document, and loading decodes it once).
    state: &'a [u8],
    /// The root types recorded with it.
    roots: Option<&'a str>,
    /// Its values were checked when they came in ([`super::schema::add_checkpoint_checked`]).
    checked: bool,
}

/// Calls `f` with the document's checkpoint (`None` when it has none).
fn with_checkpoint<T>(
    conn: &Connection,
    doc_id: &str,
    f: impl FnOnce(Option<SavedRow<'_>>) -> Result<T>,
) -> Result<T> {
    let mut stmt =
        conn.prepare_cached("SELECT state, roots, checked FROM checkpoints WHERE doc_id = ?1")?;
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
            let checked = matches!(row.get_ref(2)?, ValueRef::Integer(1));
            f(Some(SavedRow {
                state: bytes,
                roots,
                checked,
            }))
        }
        None => f(None),
    }
}

/// Every document's id and head, in id order, without reading the checkpoints (their
/// `checkpoint` is `None`): for an owner that keeps all heads in memory, such as the relay.
pub fn read_heads(conn: &Connection) -> Result<Vec<(String, LogHead)>> {
    let mut stmt = conn.prepare(&format!("SELECT {HEAD_COLUMNS}, id FROM docs ORDER BY id"))?;
    let mut rows = stmt.query([])?;
    let mut partials = Vec::new();
    while let Some(row) = rows.next()? {
        partials.push((row.get::<_, String>(4)?, Partial::from_row(row)?));
    }
    drop(rows);
    let at: HashMap<String, usize> = partials
        .iter()
        .enumerate()
        .map(|(i, (id, _))| (id.clone(), i))
        .collect();
    // CROSS JOIN keeps `docs` the outer loop, so each document's rows come from its range
    // of `updates_by_doc`; left to itself SQLite scans the whole log (a relay prunes
    // nothing) and looks each row's document up.
    let mut stmt = conn.prepare(
        "SELECT u.doc_id, u.idx, u.origin, u.seq FROM docs d CROSS JOIN updates u
           ON u.doc_id = d.id AND u.idx > MIN(d.snapshot_upto, d.vv_upto)",
    )?;
    let mut rows = stmt.query([])?;
    while let Some(row) = rows.next()? {
        let doc_id: String = row.get(0)?;
        if let Some(&i) = at.get(&doc_id) {
            partials[i]
                .1
                .take(row.get(1)?, row.get(2)?, row.get::<_, i64>(3)? as u64);
        }
    }
    Ok(partials
        .into_iter()
        .map(|(id, partial)| (id, partial.head))
        .collect())
}

/// The document as committed, or `None` when there is no such document. Call it inside
/// one transaction, so a checkpoint taken by another connection cannot make updates fall
/// between the two reads.
pub fn load(conn: &Connection, doc_id: &str) -> Result<Option<LoadedLog>> {
    load_in(conn, doc_id, TextUnit::default())
}

/// [`load`], the document's text positions counting `unit`.
pub fn load_in(conn: &Connection, doc_id: &str, unit: TextUnit) -> Result<Option<LoadedLog>> {
    let Some(mut partial) = read_partial(conn, doc_id)? else {
        return Ok(None);
    };
    let kind = partial.head.kind;
    let (crdt, checkpoint_bytes) = with_checkpoint(conn, doc_id, |saved| {
        Ok(match saved {
            Some(saved) => (
                CrdtDoc::load_checkpoint(kind, saved.state, saved.roots, unit, saved.checked)?,
                saved.state.len() as u64,
            ),
            None => (CrdtDoc::new_in(kind, unit), 0),
        })
    })?;
    let (crdt, last_index, tail_bytes) = replay_onto(conn, doc_id, crdt, &mut partial)?;
    Ok(Some(LoadedLog {
        head: partial.head,
        crdt,
        checkpoint_bytes,
        last_index,
        tail_bytes,
    }))
}

/// Applies the updates logged after the checkpoint to `crdt` in one batch, counting
/// every row after the head's [`Partial::rows_after`] into its tail and version vector.
fn replay_onto(
    conn: &Connection,
    doc_id: &str,
    mut crdt: CrdtDoc,
    partial: &mut Partial,
) -> Result<(CrdtDoc, i64, u64)> {
    let upto = partial.head.checkpoint_upto;
    let mut stmt = conn.prepare_cached(
        "SELECT idx, origin, seq, data FROM updates WHERE doc_id = ?1 AND idx > ?2 ORDER BY idx",
    )?;
    let mut rows = stmt.query(params![doc_id, partial.rows_after()])?;
    let mut tail: Vec<Vec<u8>> = Vec::new();
    let mut last = upto;
    while let Some(row) = rows.next()? {
        let idx: i64 = row.get(0)?;
        partial.take(idx, row.get(1)?, row.get::<_, i64>(2)? as u64);
        if idx > upto {
            tail.push(row.get(3)?);
            last = idx;
        }
    }
    if !tail.is_empty() {
        crdt.apply_updates(&tail.iter().map(Vec::as_slice).collect::<Vec<_>>())?;
    }
    let bytes = tail.iter().map(|d| d.len() as u64).sum();
    Ok((crdt, last, bytes))
}

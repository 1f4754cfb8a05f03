//! A document's rows in the log: creating its `docs` row, appending updates (each advances
//! the stored version vector, see [`super::version`]), and reading updates back as
//! [`UpdateRecord`]s.

use super::cached::Cached;
use rusqlite::{params, Connection, OptionalExtension, Row};

use super::codec::encode_version;
use crate::error::Result;
use crate::ids::{DocKind, Origin};
use crate::update::UpdateRecord;
use crate::vv::VersionVector;

/// The columns [`record_from_row`] reads, in its order: `SELECT origin, seq, data ...`.
pub const RECORD_COLUMNS: &str = "origin, seq, data";

/// An update from a row selected as [`RECORD_COLUMNS`].
pub fn record_from_row(r: &Row<'_>) -> rusqlite::Result<UpdateRecord> {
    Ok(UpdateRecord {
        origin: Origin::from(r.get::<_, String>(0)?),
        seq: r.get::<_, i64>(1)? as u64,
        data: r.get(2)?,
    })
}

/// Inserts the `docs` row of a new, empty document (the caller checks it is new).
pub fn create_doc(conn: &Connection, doc_id: &str, kind: DocKind) -> Result<()> {
    conn.execute_cached(
        "INSERT INTO docs (id, kind, vv) VALUES (?1, ?2, ?3)",
        params![doc_id, kind.as_str(), encode_version(&VersionVector::new())],
    )?;
    Ok(())
}

/// Appends one update at the end of the document's log (the caller has checked it is the
/// next from its origin, see [`super::admit`]).
pub fn append(conn: &Connection, doc_id: &str, record: &UpdateRecord) -> Result<()> {
    conn.execute_cached(
        "INSERT INTO updates (doc_id, origin, seq, data) VALUES (?1, ?2, ?3, ?4)",
        params![
            doc_id,
            record.origin.as_str(),
            record.seq as i64,
            record.data
        ],
    )?;
    Ok(())
}

/// The log index of the document's last logged update (0 when none).
pub fn last_index(conn: &Connection, doc_id: &str) -> Result<i64> {
    Ok(conn.query_row_cached(
        "SELECT COALESCE(MAX(idx), 0) FROM updates WHERE doc_id = ?1",
        [doc_id],
        |r| r.get(0),
    )?)
}

/// The stored bytes of update `(origin, seq)`, if it is logged.
pub fn stored_update(
    conn: &Connection,
    doc_id: &str,
    origin: &Origin,
    seq: u64,
) -> Result<Option<Vec<u8>>> {
    Ok(conn
        .query_row_cached(
            "SELECT data FROM updates WHERE doc_id = ?1 AND origin = ?2 AND seq = ?3",
            params![doc_id, origin.as_str(), seq as i64],
            |r| r.get(0),
        )
        .optional()?)
}

/// The logged updates after log index `after` that a replica at `have` lacks, in log order.
pub fn missing_from(
    conn: &Connection,
    doc_id: &str,
    after: i64,
    have: &VersionVector,
) -> Result<Vec<UpdateRecord>> {
    let mut stmt = conn.prepare_cached(
        "SELECT origin, seq, data FROM updates WHERE doc_id = ?1 AND idx > ?2 ORDER BY idx",
    )?;
    let mut out = Vec::new();
    for row in stmt.query_map(params![doc_id, after], record_from_row)? {
        let record = row?;
        if !have.contains(&record.origin, record.seq) {
            out.push(record);
        }
    }
    Ok(out)
}

/// Every logged update of the document with its log index (`idx`), in log order: what an
/// offline comparison of two replicas' logs reads.
pub fn indexed(conn: &Connection, doc_id: &str) -> Result<Vec<(i64, UpdateRecord)>> {
    let mut stmt = conn.prepare_cached(
        "SELECT idx, origin, seq, data FROM updates WHERE doc_id = ?1 ORDER BY idx",
    )?;
    let rows = stmt.query_map([doc_id], |r| {
        Ok((
            r.get::<_, i64>(0)?,
            UpdateRecord {
                origin: Origin::from(r.get::<_, String>(1)?),
                seq: r.get::<_, i64>(2)? as u64,
                data: r.get(3)?,
            },
        ))
    })?;
    Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
}

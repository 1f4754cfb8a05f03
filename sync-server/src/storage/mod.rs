//! The relay's durable storage, a deterministic state machine over an ordered log.
//!
//! Writes are [`Entry`]s (a [`LogEntry`] at its log position) applied in order by
//! [`Storage::apply`], each batch in one SQLite transaction that also records the last
//! applied position; each entry yields an [`ApplyOutcome`], which is what drives fan-out.
//! A leader and a follower applying the same entries reach the same state. Reads answer
//! "what does a client at this version vector lack" ([`Storage::catchup`]).
//!
//! Files: `schema` (migrations), `log` (entries and outcomes), `apply` (the state machine
//! and snapshots), `catchup` (reads for clients), `docs` (documents kept in memory).

mod apply;
mod catchup;
mod docs;
mod error;
mod log;
mod schema;

use std::collections::HashMap;
use std::path::Path;

use concord_core::{CrdtDoc, DocKind, VersionVector};
use rusqlite::Connection;

pub use error::{Result, StorageError};
pub use log::{ApplyOutcome, Entry, LogEntry};
pub use schema::SCHEMA_VERSION;

/// What the relay keeps in memory about each document.
#[derive(Debug, Clone)]
pub struct DocState {
    pub kind: DocKind,
    pub version: VersionVector,
    tail: u64,
}

impl DocState {
    /// The head the append rules check a batch against.
    pub fn rules_head(&self) -> concord_core::sync::DocHead {
        concord_core::sync::DocHead {
            kind: self.kind,
            version: self.version.clone(),
        }
    }
}

pub struct Storage {
    conn: Connection,
    heads: HashMap<String, DocState>,
    snapshot_every: u64,
    last_applied: u64,
    /// Documents in memory, always equal to what is committed (plus, while a batch is
    /// being validated, the updates checked for it; dropped if it is refused).
    loaded: HashMap<String, CrdtDoc>,
}

fn encode_vv(vv: &VersionVector) -> Vec<u8> {
    postcard::to_allocvec(vv).expect("version vectors encode")
}

fn decode_vv(bytes: &[u8]) -> Result<VersionVector> {
    postcard::from_bytes(bytes).map_err(|e| StorageError::Corrupt(format!("version vector: {e}")))
}

impl Storage {
    /// Opens (or creates, or migrates) the database file `path`.
    pub fn open(path: &Path, snapshot_every: u64) -> Result<Storage> {
        let mut conn = Connection::open(path)?;
        schema::prepare(&mut conn)?;
        let mut heads = HashMap::new();
        {
            let mut stmt = conn.prepare("SELECT id, kind, vv, tail FROM docs")?;
            let mut rows = stmt.query([])?;
            while let Some(row) = rows.next()? {
                let id: String = row.get(0)?;
                let kind: String = row.get(1)?;
                let vv: Vec<u8> = row.get(2)?;
                let tail: i64 = row.get(3)?;
                heads.insert(
                    id,
                    DocState {
                        kind: kind.parse()?,
                        version: decode_vv(&vv)?,
                        tail: tail as u64,
                    },
                );
            }
        }
        let last_applied: i64 =
            conn.query_row("SELECT last_index FROM applied WHERE id = 0", [], |r| {
                r.get(0)
            })?;
        Ok(Storage {
            conn,
            heads,
            snapshot_every,
            last_applied: last_applied as u64,
            loaded: HashMap::new(),
        })
    }

    pub fn head(&self, doc_id: &str) -> Option<&DocState> {
        self.heads.get(doc_id)
    }

    pub fn doc_count(&self) -> usize {
        self.heads.len()
    }

    /// The log position of the last applied entry (0 for none).
    pub fn last_applied(&self) -> u64 {
        self.last_applied
    }

    /// Documents whose id starts with `prefix`, sorted.
    pub fn list(&self, prefix: &str) -> Vec<(String, DocKind)> {
        let mut docs: Vec<_> = self
            .heads
            .iter()
            .filter(|(id, _)| id.starts_with(prefix))
            .map(|(id, h)| (id.clone(), h.kind))
            .collect();
        docs.sort();
        docs
    }
}

#[cfg(test)]
mod tests;

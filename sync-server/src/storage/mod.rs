//! The relay's durable storage, a deterministic state machine over an ordered log.
//!
//! Writes are [`Entry`]s (a [`LogEntry`] at its log position) applied in order by
//! [`Storage::apply`], each batch in one SQLite transaction that also records the last
//! applied position; each entry yields an [`ApplyOutcome`], which is what drives fan-out.
//! A leader and a follower applying the same entries reach the same state. Reads answer
//! "what does a client at this version vector lack" ([`Storage::catchup`]).
//!
//! Each document's update log is core's shared one ([`concord_core::log`]: schema,
//! version-vector codec, appending, loading, checkpoints, contiguity); the relay keeps
//! every update (a checkpoint prunes nothing), so a client that lacks a few gets exactly
//! those, and one that lacks many gets a catch-up snapshot (the latest checkpoint).
//!
//! Files: `schema` (migrations), `entry` (log entries and outcomes), `apply` (the state
//! machine and checkpoints), `catchup` (reads for clients), `docs` (documents in memory).

mod apply;
mod catchup;
mod docs;
mod entry;
mod error;
mod schema;

use std::collections::HashMap;
use std::path::Path;

use concord_core::{log, CrdtDoc, DocKind, VersionVector};
use rusqlite::Connection;

pub use entry::{ApplyOutcome, Entry, LogEntry};
pub use error::{Result, StorageError};
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
    checkpoint_every: u64,
    last_applied: u64,
    /// Documents in memory, always equal to what is committed (plus, while a batch is
    /// being validated, the updates checked for it; dropped if it is refused).
    loaded: HashMap<String, CrdtDoc>,
}

impl Storage {
    /// Opens (or creates, or migrates) the database file `path`. A document's checkpoint
    /// is taken once `checkpoint_every` updates were logged since the last one.
    pub fn open(path: &Path, checkpoint_every: u64) -> Result<Storage> {
        let mut conn = Connection::open(path)?;
        schema::prepare(&mut conn)?;
        let heads = log::read_heads(&conn)?
            .into_iter()
            .map(|(id, head)| {
                let state = DocState {
                    kind: head.kind,
                    version: head.version,
                    tail: head.tail,
                };
                (id, state)
            })
            .collect();
        let last_applied: i64 =
            conn.query_row("SELECT last_index FROM applied WHERE id = 0", [], |r| {
                r.get(0)
            })?;
        Ok(Storage {
            conn,
            heads,
            checkpoint_every,
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

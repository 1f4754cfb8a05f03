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
//! machine and checkpoints), `catchup` (reads for clients), `docs` (documents in memory),
//! `copy` (consistent copies of the whole database out and in: consensus snapshots),
//! `digest` (a comparable summary of the whole database, for checking replicas offline).

mod apply;
mod catchup;
mod copy;
mod digest;
mod docs;
mod entry;
mod error;
mod queued;
mod schema;

use std::collections::HashMap;
use std::path::Path;

use concord_core::{log, CrdtDoc, DocKind, VersionVector};
use rusqlite::Connection;

pub use digest::{fnv1a, Digest, DocDigest, LoggedUpdate};
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
    /// The consensus layer's state at `last_applied` (opaque here; `None` on a single node).
    consensus: Option<Vec<u8>>,
    /// Committed copies of documents in memory (see `docs.rs`): checkpoints come from
    /// these.
    loaded: HashMap<String, CrdtDoc>,
    /// Copies that also hold the updates validated and not yet applied (see `docs.rs`).
    validating: HashMap<String, CrdtDoc>,
    /// Updates validated and queued for the single relay's next commit (see `queued.rs`).
    queued: HashMap<String, queued::Queued>,
}

impl Storage {
    /// Opens (or creates, or migrates) the database file `path`. A document's checkpoint
    /// is taken once `checkpoint_every` updates were logged since the last one.
    pub fn open(path: &Path, checkpoint_every: u64) -> Result<Storage> {
        let mut conn = Connection::open(path)?;
        conn.set_prepared_statement_cache_capacity(concord_core::log::STATEMENT_CACHE);
        schema::prepare(&mut conn)?;
        let mut storage = Storage {
            conn,
            heads: HashMap::new(),
            checkpoint_every,
            last_applied: 0,
            consensus: None,
            loaded: HashMap::new(),
            validating: HashMap::new(),
            queued: HashMap::new(),
        };
        storage.reload()?;
        Ok(storage)
    }

    /// Reads the documents' heads and the applied position from the file, and forgets the
    /// documents held in memory (after the file's content was replaced).
    fn reload(&mut self) -> Result<()> {
        self.heads = log::read_heads(&self.conn)?
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
        let (last_applied, consensus): (i64, Option<Vec<u8>>) = self.conn.query_row(
            "SELECT last_index, consensus FROM applied WHERE id = 0",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?;
        self.last_applied = last_applied as u64;
        self.consensus = consensus;
        self.loaded.clear();
        self.validating.clear();
        self.queued.clear();
        Ok(())
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

    /// The consensus layer's state recorded with the last applied position, if any.
    pub fn consensus(&self) -> Option<&[u8]> {
        self.consensus.as_deref()
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

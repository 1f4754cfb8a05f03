//! Documents kept in memory (bounded): rebuilt from the last snapshot plus the tail, used
//! to prove that a new update integrates and to take snapshots.

use concord_core::{CrdtDoc, DocKind, UpdateRecord};
use rusqlite::{params, Connection};

use super::{Result, Storage, StorageError};

/// How many documents are kept loaded in memory (for checking updates and snapshots).
const MAX_LOADED_DOCS: usize = 256;

impl Storage {
    /// Applies `update` to the in-memory document, proving it integrates (an update can
    /// decode and still be unusable, e.g. name a parent of the wrong type). On failure the
    /// in-memory copy, which may hold part of it, is dropped and reloaded on next use.
    pub fn integrate(&mut self, doc_id: &str, update: &UpdateRecord) -> Result<()> {
        let doc = self.loaded_doc(doc_id)?;
        if let Err(e) = doc.integrate(&update.data) {
            self.loaded.remove(doc_id);
            return Err(e.into());
        }
        Ok(())
    }

    /// Forgets the in-memory copy of a document (after a refused batch).
    pub fn unload(&mut self, doc_id: &str) {
        self.loaded.remove(doc_id);
    }

    fn loaded_doc(&mut self, doc_id: &str) -> Result<&mut CrdtDoc> {
        if !self.loaded.contains_key(doc_id) {
            let kind = self
                .heads
                .get(doc_id)
                .ok_or_else(|| StorageError::Corrupt(format!("unknown doc {doc_id}")))?
                .kind;
            if self.loaded.len() >= MAX_LOADED_DOCS {
                if let Some(victim) = self.loaded.keys().next().cloned() {
                    self.loaded.remove(&victim);
                }
            }
            let doc = rebuild(&self.conn, doc_id, kind)?;
            self.loaded.insert(doc_id.to_string(), doc);
        }
        Ok(self.loaded.get_mut(doc_id).expect("inserted above"))
    }
}

/// The document as committed: its last snapshot plus the updates after it.
pub(super) fn rebuild(conn: &Connection, doc_id: &str, kind: DocKind) -> Result<CrdtDoc> {
    let (snapshot, upto): (Option<Vec<u8>>, i64) = conn.query_row(
        "SELECT snapshot, snapshot_upto FROM docs WHERE id = ?1",
        [doc_id],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )?;
    let mut doc = match snapshot {
        Some(bytes) => CrdtDoc::load(kind, &bytes)?,
        None => CrdtDoc::new(kind),
    };
    let mut stmt =
        conn.prepare("SELECT data FROM updates WHERE doc_id = ?1 AND idx > ?2 ORDER BY idx")?;
    let tail: Vec<Vec<u8>> = stmt
        .query_map(params![doc_id, upto], |r| r.get(0))?
        .collect::<std::result::Result<_, _>>()?;
    doc.apply_updates(&tail.iter().map(Vec::as_slice).collect::<Vec<_>>())?;
    Ok(doc)
}

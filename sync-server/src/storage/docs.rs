//! Documents kept in memory (bounded): loaded from the shared update log (checkpoint plus
//! the updates after it), used to prove that a new update integrates and to take
//! checkpoints.

use concord_core::{log, CrdtDoc, UpdateRecord};

use super::{Result, Storage, StorageError};

/// How many documents are kept loaded in memory (for checking updates and checkpoints).
const MAX_LOADED_DOCS: usize = 256;

impl Storage {
    /// Applies `update` to the in-memory document, proving it integrates (an update can
    /// decode and still be unusable, e.g. name a parent of the wrong type). On failure the
    /// in-memory copy, which may hold part of it, is dropped and reloaded on next use.
    pub fn integrate(&mut self, doc_id: &str, update: &UpdateRecord) -> Result<()> {
        let doc = self.loaded_doc(doc_id)?;
        if let Err(e) = doc.integrate(&update.data) {
            self.loaded.remove(doc_id);
            return Err(StorageError::Doc(e));
        }
        Ok(())
    }

    /// Forgets the in-memory copy of a document (after a refused batch).
    pub fn unload(&mut self, doc_id: &str) {
        self.loaded.remove(doc_id);
    }

    fn loaded_doc(&mut self, doc_id: &str) -> Result<&mut CrdtDoc> {
        if !self.loaded.contains_key(doc_id) {
            if !self.heads.contains_key(doc_id) {
                return Err(StorageError::Corrupt(format!("unknown doc {doc_id}")));
            }
            if self.loaded.len() >= MAX_LOADED_DOCS {
                if let Some(victim) = self.loaded.keys().next().cloned() {
                    self.loaded.remove(&victim);
                }
            }
            let doc = log::load(&self.conn, doc_id)
                .map_err(StorageError::stored)?
                .ok_or_else(|| StorageError::Corrupt(format!("no row for doc {doc_id}")))?;
            self.loaded.insert(doc_id.to_string(), doc.crdt);
        }
        Ok(self.loaded.get_mut(doc_id).expect("inserted above"))
    }
}

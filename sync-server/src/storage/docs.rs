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
        self.ahead.insert(doc_id.to_string());
        let doc = self.loaded_doc(doc_id)?;
        // A crafted update can make a CRDT library panic: that is a refused update, and the
        // copy it may have half changed is dropped.
        let outcome =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| doc.integrate(&update.data)));
        match outcome {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => {
                self.unload(doc_id);
                Err(StorageError::Doc(e))
            }
            Err(panic) => {
                self.unload(doc_id);
                let reason = panic
                    .downcast_ref::<&str>()
                    .map(|s| s.to_string())
                    .or_else(|| panic.downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "the CRDT library panicked".to_string());
                Err(StorageError::Doc(concord_core::Error::InvalidUpdate {
                    kind: self.heads[doc_id].kind,
                    reason,
                }))
            }
        }
    }

    /// Forgets every in-memory copy (after a panic while one was being changed).
    pub fn unload_all(&mut self) {
        self.loaded.clear();
        self.ahead.clear();
    }

    /// Forgets the in-memory copy of a document (after a refused batch).
    pub fn unload(&mut self, doc_id: &str) {
        self.loaded.remove(doc_id);
        self.ahead.remove(doc_id);
    }

    fn loaded_doc(&mut self, doc_id: &str) -> Result<&mut CrdtDoc> {
        if !self.loaded.contains_key(doc_id) {
            if !self.heads.contains_key(doc_id) {
                return Err(StorageError::Corrupt(format!("unknown doc {doc_id}")));
            }
            if self.loaded.len() >= MAX_LOADED_DOCS {
                if let Some(victim) = self.loaded.keys().next().cloned() {
                    self.unload(&victim);
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

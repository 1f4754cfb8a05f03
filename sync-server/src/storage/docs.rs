//! Documents kept in memory (bounded), loaded from the shared update log (checkpoint plus
//! the updates after it). Two copies per document, each made when first needed:
//! - `loaded`: exactly what is committed (changed only by apply); checkpoints are taken
//!   from it, so a checkpoint, and every catch-up snapshot made from it, holds committed
//!   updates only;
//! - `validating`: what is committed plus the updates validated and not yet applied (on
//!   the node that validates writes), so the next validation sees them; dropped with the
//!   committed copy when a batch is refused or fails, and rebuilt from the committed state
//!   plus what the single relay has queued (`queued.rs`).

use concord_core::{log, CrdtDoc, UpdateRecord};

use super::{Result, Storage, StorageError};

/// How many documents are kept loaded in memory (for checking updates and checkpoints).
pub(super) const MAX_LOADED_DOCS: usize = 256;

impl Storage {
    /// Applies `update` to the in-memory document, proving it integrates (an update can
    /// decode and still be unusable, e.g. name a parent of the wrong type). On failure the
    /// in-memory copy, which may hold part of it, is dropped and reloaded on next use.
    pub fn integrate(&mut self, doc_id: &str, update: &UpdateRecord) -> Result<()> {
        self.integrate_all(doc_id, &[update])
    }

    /// [`Storage::integrate`] for several updates at once, in order (one CRDT apply).
    pub fn integrate_all(&mut self, doc_id: &str, updates: &[&UpdateRecord]) -> Result<()> {
        let doc = self.validating_doc(doc_id)?;
        let data: Vec<&[u8]> = updates.iter().map(|u| u.data.as_slice()).collect();
        // A crafted update can make a CRDT library panic: that is a refused update, and the
        // copy it may have half changed is dropped.
        let outcome =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| doc.integrate_all(&data)));
        match outcome {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => {
                self.forget_validated(doc_id);
                Err(StorageError::Doc(e))
            }
            Err(panic) => {
                self.forget_validated(doc_id);
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
        self.validating.clear();
    }

    /// Forgets the in-memory copies of a document, and what was queued of it (after a
    /// failed apply: the queued updates were in it, and their writers are told it failed).
    pub fn unload(&mut self, doc_id: &str) {
        self.loaded.remove(doc_id);
        self.validating.remove(doc_id);
        self.queued.remove(doc_id);
    }

    /// Forgets what was validated for `doc_id` and not applied (a refused update, or writes
    /// that did not commit): the next validation starts from the committed state.
    pub fn forget_validated(&mut self, doc_id: &str) {
        self.validating.remove(doc_id);
    }

    /// The validating copy of `doc_id`, read from the committed state when there is none.
    fn validating_doc(&mut self, doc_id: &str) -> Result<&mut CrdtDoc> {
        if !self.validating.contains_key(doc_id) {
            if !self.heads.contains_key(doc_id) {
                return Err(StorageError::Corrupt(format!("unknown doc {doc_id}")));
            }
            if self.validating.len() >= MAX_LOADED_DOCS {
                if let Some(victim) = self.validating.keys().next().cloned() {
                    self.validating.remove(&victim);
                }
            }
            let mut doc = log::load(&self.conn, doc_id)
                .map_err(StorageError::stored)?
                .ok_or_else(|| StorageError::Corrupt(format!("no row for doc {doc_id}")))?;
            // What is queued for the next commit was validated on top of the committed
            // state: the next validation builds on it too (`queued.rs`).
            let queued: Vec<&[u8]> = self
                .queued_updates(doc_id)
                .iter()
                .map(|u| u.data.as_slice())
                .collect();
            if !queued.is_empty() {
                doc.crdt.integrate_all(&queued).map_err(StorageError::Doc)?;
            }
            self.validating.insert(doc_id.to_string(), doc.crdt);
        }
        Ok(self.validating.get_mut(doc_id).expect("inserted above"))
    }
}

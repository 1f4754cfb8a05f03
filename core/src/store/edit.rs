//! Creating documents and editing them: each edit is committed durably, with its update
//! logged and listed in the outbox, before [`Store::transact`] returns.

use std::sync::Arc;

use super::{change_event, clock, fold, sql, Store};
use crate::doc::DocTxn;
use crate::error::{Error, Result};
use crate::ids::{validate_doc_id, DocKind};
use crate::log;
use crate::notify::ChangeSource;
use crate::update::UpdateRecord;

impl Store {
    /// Creates an empty document; fails if the id is taken.
    pub fn create_doc(&self, id: &str, kind: DocKind) -> Result<()> {
        validate_doc_id(id)?;
        self.write(|tx| {
            if sql::kind_of(tx, id)?.is_some() {
                return Err(Error::DocExists(id.to_string()));
            }
            log::create_doc(tx, id, kind)
        })
    }

    /// Creates the document unless it exists; fails if it exists with another kind.
    pub fn ensure_doc(&self, id: &str, kind: DocKind) -> Result<()> {
        validate_doc_id(id)?;
        let check = |actual: DocKind| {
            if actual == kind {
                Ok(())
            } else {
                Err(Error::KindMismatch {
                    id: id.to_string(),
                    expected: kind,
                    actual,
                })
            }
        };
        // Most calls find the document: no write lock for them.
        if let Some(actual) = self.doc_kind(id)? {
            return check(actual);
        }
        self.write(|tx| match sql::kind_of(tx, id)? {
            Some(actual) => check(actual),
            None => log::create_doc(tx, id, kind),
        })
    }

    /// Runs a local edit and commits it durably. If `f` fails, nothing is stored. Reads
    /// inside the edit go through the store's [`crate::read::Reader`].
    ///
    /// ```
    /// # use concord_core::{Store, DocKind};
    /// let store = Store::open_in_memory()?;
    /// store.create_doc("notes", DocKind::Automerge)?;
    /// store.transact("notes", |tx| {
    ///     tx.put("title", "Groceries")?;
    ///     tx.insert_text("body", 0, "milk")
    /// })?;
    /// assert_eq!(store.get("notes", "title")?, Some("Groceries".into()));
    /// # Ok::<(), concord_core::Error>(())
    /// ```
    pub fn transact<R>(&self, id: &str, f: impl FnOnce(&mut DocTxn<'_>) -> Result<R>) -> Result<R> {
        let (result, event) = self.write_doc(id, |tx, doc, device, options| {
            // Folded updates are rebuilt first, so this edit's update follows them in the
            // log and the outbox (its seq is after theirs).
            if fold::has_fold(tx, id)? {
                fold::unfold(tx, id, doc)?;
            }
            if !doc.base_noted {
                fold::note_base(tx, id, &doc.crdt.position())?;
                doc.base_noted = true;
            }
            let mut hlc = clock::load(tx, device, options)?;
            let (result, update) = doc.crdt.edit_stamped(&options.reader, &mut hlc, f)?;
            clock::save(tx, &hlc)?;
            let Some(data) = update else {
                return Ok((result, None));
            };
            let record = UpdateRecord {
                origin: device.clone(),
                seq: doc.version.get(device) + 1,
                data,
            };
            sql::insert_update(tx, id, &record, true)?;
            Arc::make_mut(&mut doc.version).advance(&record.origin, record.seq);
            doc.tail += 1;
            doc.tail_bytes += record.data.len() as u64;
            sql::write_doc_state(tx, id, doc, options)?;
            Ok((result, Some(change_event(id, ChangeSource::Local, doc))))
        })?;
        self.listeners.emit(event.as_slice());
        Ok(result)
    }
}

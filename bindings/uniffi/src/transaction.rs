//! Edits as data (`Edit`, applied inside one core transaction) and `Transaction`, which
//! records several edits and commits them as one durable update.

use std::sync::{Arc, Mutex};

use concord_core::DocTxn;
use serde_json::Value as Json;

use crate::document::Document;
use crate::error::{guard, ConcordError};
use crate::value::{parse_json, Value};

/// A position or length given by the host (a signed integer there): never negative.
pub(crate) fn count(what: &str, n: i64) -> Result<usize, ConcordError> {
    usize::try_from(n).map_err(|_| ConcordError::InvalidValue {
        detail: format!("{what} {n} is negative"),
    })
}

/// One edit of a document.
pub(crate) enum Edit {
    Put(String, Json),
    Delete(String),
    InsertText(String, usize, String),
    DeleteText(String, usize, usize),
    Push(String, Json),
    Insert(String, Json),
    Increment(String, i64),
}

impl Edit {
    pub(crate) fn apply(self, tx: &mut DocTxn<'_>) -> concord_core::Result<()> {
        match self {
            Edit::Put(path, v) => tx.put(&path, v),
            Edit::Delete(path) => tx.delete(&path),
            Edit::InsertText(path, i, text) => tx.insert_text(&path, i, &text),
            Edit::DeleteText(path, i, n) => tx.delete_text(&path, i, n),
            Edit::Push(path, v) => tx.push(&path, v),
            Edit::Insert(path, v) => tx.insert(&path, v),
            Edit::Increment(path, by) => tx.increment(&path, by),
        }
    }
}

/// Several edits of one document, committed together by `commit()` (one update, one
/// SQLite commit; all or nothing). Recording an edit does not touch the store.
#[derive(uniffi::Object)]
pub struct Transaction {
    doc: Arc<Document>,
    edits: Mutex<Vec<Edit>>,
}

impl Transaction {
    pub(crate) fn new(doc: Arc<Document>) -> Transaction {
        Transaction {
            doc,
            edits: Mutex::new(Vec::new()),
        }
    }

    fn record(&self, edit: Edit) {
        self.edits
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(edit);
    }
}

#[uniffi::export]
impl Transaction {
    pub fn put(&self, path: String, value: Value) {
        self.record(Edit::Put(path, value.into()));
    }

    pub fn put_json(&self, path: String, json: String) -> Result<(), ConcordError> {
        self.record(Edit::Put(path, parse_json(&json)?));
        Ok(())
    }

    pub fn delete(&self, path: String) {
        self.record(Edit::Delete(path));
    }

    pub fn insert_text(&self, path: String, index: i64, text: String) -> Result<(), ConcordError> {
        self.record(Edit::InsertText(path, count("index", index)?, text));
        Ok(())
    }

    pub fn delete_text(&self, path: String, index: i64, length: i64) -> Result<(), ConcordError> {
        self.record(Edit::DeleteText(
            path,
            count("index", index)?,
            count("length", length)?,
        ));
        Ok(())
    }

    pub fn push(&self, path: String, value: Value) {
        self.record(Edit::Push(path, value.into()));
    }

    pub fn insert(&self, path: String, value: Value) {
        self.record(Edit::Insert(path, value.into()));
    }

    pub fn increment(&self, path: String, by: i64) {
        self.record(Edit::Increment(path, by));
    }

    /// How many edits are recorded.
    pub fn len(&self) -> u64 {
        self.edits.lock().unwrap_or_else(|p| p.into_inner()).len() as u64
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Applies every recorded edit and commits them durably as one update; if one fails,
    /// nothing is stored. The transaction is then empty and may be reused.
    pub fn commit(&self) -> Result<(), ConcordError> {
        let edits = std::mem::take(&mut *self.edits.lock().unwrap_or_else(|p| p.into_inner()));
        guard(|| self.doc.apply(edits))
    }
}

//! `Document`: a handle on one document of a store — reads, edits (each one durable
//! commit), transactions, change listeners and conflict policies.

use std::sync::Arc;

use crate::callbacks::{listen, ChangeListener, Subscription};
use crate::error::{guard, ConcordError};
use crate::store::Shared;
use crate::transaction::{count, Edit, Transaction};
use crate::types::{DocumentKind, Policy, ValueVersion};
use crate::value::{parse_json, Value};

/// One document of a store. Cheap; any number may exist for the same id.
#[derive(uniffi::Object)]
pub struct Document {
    shared: Arc<Shared>,
    id: String,
    kind: DocumentKind,
}

impl Document {
    pub(crate) fn new(shared: Arc<Shared>, id: String, kind: DocumentKind) -> Document {
        Document { shared, id, kind }
    }

    /// Applies `edits` in one core transaction (one durable commit).
    pub(crate) fn apply(&self, edits: Vec<Edit>) -> Result<(), ConcordError> {
        self.shared.store.transact(&self.id, |tx| {
            edits.into_iter().try_for_each(|edit| edit.apply(tx))
        })?;
        Ok(())
    }

    fn edit(&self, edit: Edit) -> Result<(), ConcordError> {
        guard(|| self.apply(vec![edit]))
    }
}

#[uniffi::export]
impl Document {
    pub fn id(&self) -> String {
        self.id.clone()
    }

    pub fn kind(&self) -> DocumentKind {
        self.kind
    }

    /// The value at `path` (`""` for the whole document), or null when nothing is there.
    pub fn get(&self, path: String) -> Result<Option<Value>, ConcordError> {
        guard(|| {
            Ok(self
                .shared
                .store
                .get(&self.id, &path)?
                .as_ref()
                .map(Value::from))
        })
    }

    /// The value at `path` as JSON text, or null when nothing is there.
    pub fn get_json(&self, path: String) -> Result<Option<String>, ConcordError> {
        guard(|| {
            Ok(self
                .shared
                .store
                .get(&self.id, &path)?
                .map(|v| v.to_string()))
        })
    }

    /// The whole document as JSON text.
    pub fn to_json(&self) -> Result<String, ConcordError> {
        guard(|| Ok(self.shared.store.to_json(&self.id)?.to_string()))
    }

    /// Sets the value at `path` (a map key, or a list index to replace).
    pub fn put(&self, path: String, value: Value) -> Result<(), ConcordError> {
        self.edit(Edit::Put(path, value.into()))
    }

    /// Sets the value at `path` from JSON text (objects and arrays become maps and lists).
    pub fn put_json(&self, path: String, json: String) -> Result<(), ConcordError> {
        let value = parse_json(&json)?;
        self.edit(Edit::Put(path, value))
    }

    /// Removes a map key or a list element.
    pub fn delete(&self, path: String) -> Result<(), ConcordError> {
        self.edit(Edit::Delete(path))
    }

    /// Inserts `text` into the text at `path` (created if absent). Positions and lengths
    /// count Unicode scalar values (characters) in both document kinds.
    pub fn insert_text(&self, path: String, index: i64, text: String) -> Result<(), ConcordError> {
        self.edit(Edit::InsertText(path, count("index", index)?, text))
    }

    /// Deletes `length` characters of the text at `path` from `index`.
    pub fn delete_text(&self, path: String, index: i64, length: i64) -> Result<(), ConcordError> {
        let (index, length) = (count("index", index)?, count("length", length)?);
        self.edit(Edit::DeleteText(path, index, length))
    }

    /// Appends `value` to the list at `path` (created if absent).
    pub fn push(&self, path: String, value: Value) -> Result<(), ConcordError> {
        self.edit(Edit::Push(path, value.into()))
    }

    /// Inserts `value` into a list before the index that ends `path` (`items/0`).
    pub fn insert(&self, path: String, value: Value) -> Result<(), ConcordError> {
        self.edit(Edit::Insert(path, value.into()))
    }

    /// Adds `by` to the counter at `path` (created at 0). Automerge documents only.
    pub fn increment(&self, path: String, by: i64) -> Result<(), ConcordError> {
        self.edit(Edit::Increment(path, by))
    }

    /// A transaction: record several edits, then `commit()` them as one durable update.
    pub fn transaction(self: Arc<Self>) -> Arc<Transaction> {
        Arc::new(Transaction::new(self))
    }

    /// Calls `listener` (on a background thread) after every change of this document,
    /// local or remote. Keep the subscription: dropping or cancelling it stops the calls.
    pub fn subscribe(&self, listener: Arc<dyn ChangeListener>) -> Arc<Subscription> {
        listen(
            &self.shared.store,
            Some(&self.id),
            &self.shared.dispatcher,
            listener,
        )
    }

    /// Resolves the paths matching `pattern` (a key `title`, a prefix `draft_*`, any key `*`,
    /// everything below `**`; segments joined by slashes) with
    /// `policy`. Synced like any edit.
    pub fn set_policy(&self, pattern: String, policy: Policy) -> Result<(), ConcordError> {
        guard(|| {
            let policy = policy.into();
            Ok(self.shared.store.set_policy(&self.id, &pattern, &policy)?)
        })
    }

    /// Every value concurrently at `path`, oldest first, with who wrote it and when.
    pub fn get_all(&self, path: String) -> Result<Vec<ValueVersion>, ConcordError> {
        guard(|| {
            Ok(self
                .shared
                .store
                .get_all(&self.id, &path)?
                .into_iter()
                .map(|v| ValueVersion {
                    value: Value::from(&v.value),
                    hlc: v.hlc.map(Into::into),
                })
                .collect())
        })
    }

    /// Writes `value` at `path`, superseding the values this device holds there now.
    pub fn resolve(&self, path: String, value: Value) -> Result<(), ConcordError> {
        guard(|| {
            let value: serde_json::Value = value.into();
            Ok(self.shared.store.resolve(&self.id, &path, value)?)
        })
    }

    /// The keep-all paths that hold several concurrent values.
    pub fn conflicts(&self) -> Result<Vec<String>, ConcordError> {
        guard(|| Ok(self.shared.store.conflicts(&self.id)?))
    }
}

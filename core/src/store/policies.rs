//! Conflict policies through the store: setting a policy (an ordinary, synced edit),
//! reading every concurrent value at a path, the unresolved keep-all conflicts, and
//! resolving one (docs/conflicts.md).

use serde_json::Value;

use super::Store;
use crate::error::{Error, Result};
use crate::policy::{Policy, PolicyTable};
use crate::read::policies::ValueVersion;

impl Store {
    /// Sets the policy of the paths of `id` matching `pattern`. Committed and synced like
    /// any edit, so every device resolves those paths the same way.
    pub fn set_policy(&self, id: &str, pattern: &str, policy: &Policy) -> Result<()> {
        self.transact(id, |tx| tx.set_policy(pattern, policy))
    }

    /// The document's policy table.
    pub fn policies(&self, id: &str) -> Result<PolicyTable> {
        self.with_loaded(id, |doc, _| Ok(doc.crdt.policies()))
    }

    /// Every value concurrently at `path`, oldest first, each with its origin and hybrid
    /// logical clock time (for a path written under a policy; otherwise the one value).
    pub fn get_all(&self, id: &str, path: &str) -> Result<Vec<ValueVersion>> {
        self.with_loaded(id, |doc, options| {
            doc.crdt.get_all_with(&options.reader, path)
        })
    }

    /// The keep-all paths of `id` that hold several concurrent values.
    pub fn conflicts(&self, id: &str) -> Result<Vec<String>> {
        self.with_loaded(id, |doc, _| Ok(doc.crdt.conflicts()))
    }

    /// Writes `value` at `path`, superseding exactly the values this device holds there
    /// now; a value written concurrently elsewhere remains, as a new conflict.
    pub fn resolve(&self, id: &str, path: &str, value: impl Into<Value>) -> Result<()> {
        let value = value.into();
        self.transact(id, |tx| tx.resolve(path, value))
    }

    /// Writes the value a `merge` policy shows at `path` back as a new local update (it
    /// supersedes the values it merged). Returns it. Converges when the merge function is
    /// deterministic, order-independent and idempotent (`f(x, x) = x`): devices that do
    /// this concurrently write the same value.
    pub fn write_back_merge(&self, id: &str, path: &str) -> Result<Value> {
        self.transact(id, |tx| {
            let merged = tx
                .get(path)?
                .ok_or_else(|| Error::InvalidEdit(format!("nothing at {path:?} to write back")))?;
            tx.resolve(path, merged.clone())?;
            Ok(merged)
        })
    }
}

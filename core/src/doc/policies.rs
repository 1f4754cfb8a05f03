//! Conflict policies on documents: the policy table, every concurrent value at a path and
//! the unresolved keep-all paths (reading, through [`crate::read::policies`]), and in an
//! edit, setting a policy, resolving, and stamping writes at governed keys
//! (`automerge_policy.rs`, `yrs_policy.rs`).

use serde_json::Value;

use super::{automerge_doc, automerge_policy, yrs_doc, yrs_edit, yrs_policy};
use super::{CrdtDoc, DocTxn, Path, TxnInner};
use crate::error::{Error, Result};
use crate::policy::register::Payload;
use crate::policy::{automerge_meta, yrs_meta, ClockState, Hlc, Policy, PolicyTable};
use crate::read::policies::{self, ValueVersion};
use crate::read::Reader;

impl CrdtDoc {
    /// The document's policy table (replicated with it).
    pub fn policies(&self) -> PolicyTable {
        match self {
            CrdtDoc::Automerge(doc) => automerge_meta::table(doc.as_ref()),
            CrdtDoc::Yrs(doc, _) => yrs_meta::table(&yrs_doc::read_txn(doc)),
        }
    }

    /// Every value concurrently at `path` with who wrote it when (for a path governed by a
    /// policy other than the CRDT's; otherwise the one value shown), oldest first.
    pub fn get_all_with(&self, reader: &Reader, path: &str) -> Result<Vec<ValueVersion>> {
        let parsed = Path::parse(path)?;
        let table = self.policies();
        match self {
            CrdtDoc::Automerge(doc) => policies::versions(
                &table,
                &parsed,
                |keys| automerge_meta::register(doc.as_ref(), keys),
                || reader.automerge(doc.as_ref(), &parsed),
            ),
            CrdtDoc::Yrs(doc, _) => {
                let txn = yrs_doc::read_txn(doc);
                policies::versions(
                    &table,
                    &parsed,
                    |keys| yrs_meta::register(&txn, keys),
                    || reader.yrs(&txn, &parsed),
                )
            }
        }
    }

    /// The keep-all paths that hold several concurrent values (unresolved conflicts).
    pub fn conflicts(&self) -> Vec<String> {
        let table = self.policies();
        if table.is_empty() {
            return Vec::new();
        }
        let registers = match self {
            CrdtDoc::Automerge(doc) => automerge_meta::registers(doc.as_ref()),
            CrdtDoc::Yrs(doc, _) => yrs_meta::registers(&yrs_doc::read_txn(doc)),
        };
        policies::conflicts(&table, registers)
    }

    /// The newest stamp any device recorded in the document (a store's clock observes it).
    pub fn newest_stamp(&self) -> Option<ClockState> {
        match self {
            CrdtDoc::Automerge(doc) => automerge_meta::newest_stamp(doc.as_ref()),
            CrdtDoc::Yrs(doc, _) => yrs_meta::newest_stamp(&yrs_doc::read_txn(doc)),
        }
    }
}

impl DocTxn<'_> {
    /// Writes `value` at `path`, superseding exactly the concurrent values this device
    /// holds there now (a keep-all conflict's resolution; under any policy it is a put).
    /// A write made concurrently elsewhere is not superseded: it shows up as a new conflict.
    pub fn resolve(&mut self, path: &str, value: impl Into<Value>) -> Result<()> {
        self.put(path, value)
    }

    /// Sets the policy of the paths matching `pattern` (see [`crate::policy::table`]): an
    /// ordinary edit of the document's policy table, so every device resolves alike.
    pub fn set_policy(&mut self, pattern: &str, policy: &Policy) -> Result<()> {
        crate::policy::Pattern::parse(pattern).map_err(Error::InvalidEdit)?;
        match self.inner_for_write() {
            TxnInner::Automerge(doc) => automerge_policy::set_policy(doc, pattern, policy),
            TxnInner::Yrs(edit) => {
                edit.step(|txn, _| yrs_policy::set_policy(txn, pattern, policy));
                Ok(())
            }
        }
    }

    /// The hybrid logical clock time of the latest write in this edit that a policy
    /// governs (`None` if there was none).
    pub fn last_stamp(&self) -> Option<Hlc> {
        self.last_stamp.clone()
    }

    /// Stamps a write at `path` when a policy other than the CRDT's governs it (and it is a
    /// map key): its register then records it with its hybrid logical clock time.
    pub(super) fn stamp_if_governed(&mut self, path: &Path, payload: &Payload) -> Result<()> {
        let keys = policies::keys_of(path);
        // A stamp is a write (see `DocTxn::inner_for_write`).
        self.last_splice = None;
        match &mut self.inner {
            TxnInner::Automerge(doc) => {
                let table = automerge_meta::table(&**doc);
                if *table.policy_for(&keys) == Policy::Crdt
                    || !automerge_doc::parent_is_map(doc, path)
                {
                    return Ok(());
                }
                self.last_stamp = Some(automerge_policy::stamp(doc, self.clock, &keys, payload)?);
                Ok(())
            }
            TxnInner::Yrs(edit) => {
                let governed = {
                    let read = edit.read();
                    *yrs_meta::table(&read).policy_for(&keys) != Policy::Crdt
                        && yrs_edit::parent_is_map(&read, path)
                };
                if governed {
                    let clock = &mut *self.clock;
                    let stamp = edit.step(|txn, _| yrs_policy::stamp(txn, clock, &keys, payload));
                    self.last_stamp = Some(stamp);
                }
                Ok(())
            }
        }
    }
}

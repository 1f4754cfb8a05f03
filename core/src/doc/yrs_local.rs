//! A local Yrs edit: each step (one `put`, one splice…) commits a Yrs transaction of its
//! own, and the edit's one update is encoded when it ends.
//!
//! Yrs merges the items a transaction wrote only when the transaction commits, and finds a
//! text position by walking the text's items from its start. Run as one long transaction,
//! a store commit of many splices (a batch of keystrokes, a paste typed out) keeps every
//! character its own item until the end, every later splice walks them, and the update
//! lists them one by one: on the automerge-paper trace in commits of 100 edits, 1.5x the
//! time of one transaction per edit and an update ten times the size. Committing each step
//! keeps Yrs on its fast path. The edit's update is then every block written since it began
//! with the deletions its steps made (`yrs_diff.rs`); an edit of one step sends that step's
//! own update, as before.

use yrs::{Doc, IdSet, StateVector, Transact, Transaction, TransactionMut, ID};

use super::yrs_diff;
use super::yrs_text::AstralTexts;

pub(super) struct YrsEdit<'a> {
    doc: &'a mut Doc,
    astral: &'a mut AstralTexts,
    /// The document's state vector when the edit began: the first step that changed it
    /// began there (steps that change nothing leave it as it was). Yrs computes it for
    /// each transaction anyway; computing it again per edit costs a walk over every client
    /// the document knows.
    before: Option<StateVector>,
    /// What the edit's steps deleted.
    deleted: IdSet,
    /// How many steps changed the document.
    steps: usize,
    /// The update of the first step that changed it.
    first: Option<Vec<u8>>,
}

impl<'a> YrsEdit<'a> {
    pub(super) fn new(doc: &'a mut Doc, astral: &'a mut AstralTexts) -> YrsEdit<'a> {
        YrsEdit {
            doc,
            astral,
            before: None,
            deleted: IdSet::new(),
            steps: 0,
            first: None,
        }
    }

    /// Runs one step in a Yrs transaction of its own, committed when the step returns.
    pub(super) fn step<R>(
        &mut self,
        f: impl FnOnce(&mut TransactionMut<'_>, &mut AstralTexts) -> R,
    ) -> R {
        let mut txn = self.doc.transact_mut();
        let out = f(&mut txn, self.astral);
        if txn.has_changes() {
            if self.steps == 0 {
                self.first = Some(txn.encode_update_v1());
                self.before = Some(txn.before_state().clone());
            }
            self.steps += 1;
            for (client, ranges) in txn.delete_set().iter() {
                for range in ranges.iter() {
                    self.deleted
                        .insert(ID::new(*client, range.start), range.end - range.start);
                }
            }
        }
        out
    }

    /// A read of the document as the edit has left it so far.
    pub(super) fn read(&self) -> Transaction<'_> {
        self.doc.transact()
    }

    /// The edit's update, or `None` when it changed nothing.
    pub(super) fn finish(self) -> Option<Vec<u8>> {
        match self.steps {
            0 => None,
            1 => self.first,
            _ => Some(yrs_diff::update_since(
                &self.doc.transact(),
                self.before
                    .as_ref()
                    .expect("set by the first step that changed the document"),
                &self.deleted,
            )),
        }
    }
}

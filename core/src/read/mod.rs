//! The one place document values are read and turned into JSON.
//!
//! Every read of a document value — `Store::get`, `Store::to_json`, reads inside an edit —
//! goes through a [`Reader`], the store's ([`crate::StoreOptions::reader`]) or the default.
//! A document's own policy table ([`crate::policy`]) comes first: at a map key governed by
//! last-writer-wins, a merge function or keep-all, the key's stamped writes decide what is
//! shown (`policies.rs`); a shared container stays what is at the key, so edits
//! inside it always show. Elsewhere every step goes through [`Reader::resolve`]: an app's
//! [`ConflictPolicy`] may choose among Automerge's concurrent values there; without one the
//! CRDT's own deterministic winner is shown. Yrs keeps one value per key, so a
//! `ConflictPolicy` is never asked there.
//!
//! This module reads the CRDT libraries' own types (`automerge.rs`, `yrs.rs`) and knows
//! nothing of [`crate::doc`] (which calls it), nor of storage.

mod automerge;
pub(crate) mod policies;
mod yrs;

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use serde_json::Value;

use crate::error::{Error, Result};
use crate::path::Segment;
use crate::policy::merge::{self, MergeFunction};

/// One of the values concurrently written at a key, as a [`ConflictPolicy`] sees it.
#[derive(Debug, Clone, PartialEq)]
pub enum Candidate {
    /// A plain value (string, number, boolean, null; bytes as a list of numbers).
    Value(Value),
    /// A nested map.
    Map,
    /// A nested list.
    List,
    /// A collaborative text.
    Text,
}

/// Chooses the value shown for a key that holds several concurrent values. An app's
/// conflict policy implements this and is set with [`Reader::with_policy`].
pub trait ConflictPolicy: Send + Sync {
    /// The index in `candidates` of the value to show for `key` (a map key, or a list
    /// index in decimal). `candidates` holds at least two, in the CRDT's order, its own
    /// winner first. An index past the end shows the CRDT's winner.
    fn choose(&self, key: &str, candidates: &[Candidate]) -> usize;
}

/// Turns stored CRDT values into the JSON an app sees.
#[derive(Clone, Default)]
pub struct Reader {
    policy: Option<Arc<dyn ConflictPolicy>>,
    /// The app's merge functions by name (the built-in ones need no registering).
    merges: Option<Arc<BTreeMap<String, Arc<dyn MergeFunction>>>>,
}

/// The reader used where none is configured: the CRDT's own winner.
pub(crate) static DEFAULT_READER: Reader = Reader {
    policy: None,
    merges: None,
};

impl fmt::Debug for Reader {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Reader")
            .field(
                "policy",
                &if self.policy.is_some() {
                    "app"
                } else {
                    "crdt winner"
                },
            )
            .field(
                "merge_functions",
                &self
                    .merges
                    .iter()
                    .flat_map(|m| m.keys())
                    .collect::<Vec<_>>(),
            )
            .finish()
    }
}

impl Reader {
    /// A reader that shows what `policy` chooses for keys with concurrent values.
    pub fn with_policy(policy: impl ConflictPolicy + 'static) -> Reader {
        Reader {
            policy: Some(Arc::new(policy)),
            merges: None,
        }
    }

    /// This reader, with `f` as the merge function named `name` (for paths whose policy is
    /// `merge:<name>`; it replaces a built-in of that name). Every device must register
    /// the same functions to show the same values.
    pub fn with_merge_function(mut self, name: &str, f: Arc<dyn MergeFunction>) -> Reader {
        let mut merges = self.merges.as_deref().cloned().unwrap_or_default();
        merges.insert(name.to_string(), f);
        self.merges = Some(Arc::new(merges));
        self
    }

    /// The merge function named `name`: the app's, else a built-in one.
    pub(crate) fn merge_fn(&self, name: &str) -> Option<Arc<dyn MergeFunction>> {
        self.merges
            .as_ref()
            .and_then(|m| m.get(name).cloned())
            .or_else(|| merge::builtin(name))
    }

    /// Picks the value shown for `key`, which holds `candidates` (in the CRDT's order,
    /// winner first); `describe` shows a candidate to the policy. The policy is asked
    /// only when there is a choice (only then is the key spelled out).
    pub(super) fn resolve<T>(
        &self,
        key: impl FnOnce() -> String,
        mut candidates: Vec<T>,
        describe: impl Fn(&T) -> Candidate,
    ) -> Option<T> {
        if candidates.is_empty() {
            return None;
        }
        let chosen = match &self.policy {
            Some(policy) if candidates.len() > 1 => {
                let seen: Vec<Candidate> = candidates.iter().map(describe).collect();
                let i = policy.choose(&key(), &seen);
                if i < candidates.len() {
                    i
                } else {
                    0
                }
            }
            _ => 0,
        };
        Some(candidates.swap_remove(chosen))
    }
}

/// How many maps and lists a read's JSON may nest, the value read (level 0) included; a
/// whole Yrs document's object of roots counts as one, its roots are level 1. A read
/// recurses once per level, and so does Yrs's own conversion: a document nested a hundred
/// thousand deep (a hostile peer's few MiB) would overflow the reading thread's stack,
/// which aborts the process. Deeper values are read by a path inside them. `serde_json`
/// parses JSON that nests up to 127 containers, as here, so a read's JSON always parses
/// again (in the bindings, and in merge functions).
pub const MAX_READ_DEPTH: usize = 127;

thread_local! {
    /// Where the read in progress on this thread went deeper than [`MAX_READ_DEPTH`].
    static TOO_DEEP: RefCell<Option<String>> = const { RefCell::new(None) };
}

/// Runs the read `f`, an error if it went deeper than [`MAX_READ_DEPTH`] (the recursion
/// below notes it with [`too_deep`] and returns a placeholder, which is never shown).
/// Reentrant: a read made inside `f` (an app's merge function reading) keeps its own note.
pub(super) fn bounded<T>(f: impl FnOnce() -> Result<T>) -> Result<T> {
    let outer = TOO_DEEP.with(|t| t.borrow_mut().take());
    let result = f();
    match TOO_DEEP.with(|t| std::mem::replace(&mut *t.borrow_mut(), outer)) {
        Some(path) => Err(Error::TooDeep {
            path,
            limit: MAX_READ_DEPTH,
        }),
        None => result,
    }
}

/// Notes that the read in progress went too deep at `keys` (the first place is kept), and
/// returns the placeholder to return instead of the value there.
pub(super) fn too_deep(keys: &[String]) -> Value {
    TOO_DEEP.with(|t| {
        t.borrow_mut().get_or_insert_with(|| {
            let shown: Vec<&str> = keys.iter().take(8).map(String::as_str).collect();
            let more = if keys.len() > shown.len() { "/…" } else { "" };
            format!("/{}{more}", shown.join("/"))
        });
    });
    Value::Null
}

/// Follows `segments` inside a JSON value.
pub(super) fn lookup_json(mut v: Value, segments: &[Segment]) -> Option<Value> {
    for seg in segments {
        v = match (v, seg) {
            (Value::Object(mut m), s) => m.remove(&s.as_key())?,
            (Value::Array(mut a), Segment::Index(i)) if *i < a.len() => a.swap_remove(*i),
            _ => return None,
        };
    }
    Some(v)
}

//! The one place document values are read and turned into JSON.
//!
//! Every read of a document value — `Store::get`, `Store::to_json`, reads inside an edit —
//! goes through a [`Reader`], the store's ([`crate::StoreOptions::reader`]) or the default.
//! A document's own policy table ([`crate::policy`]) comes first: at a map key governed by
//! last-writer-wins, a merge function or keep-all, the key's stamped writes decide what is
//! shown (`read_policies.rs`); a shared container stays what is at the key, so edits
//! inside it always show. Elsewhere every step goes through [`Reader::resolve`]: an app's
//! [`ConflictPolicy`] may choose among Automerge's concurrent values there; without one the
//! CRDT's own deterministic winner is shown. Yrs keeps one value per key, so a
//! `ConflictPolicy` is never asked there.
//!
//! This module reads the CRDT libraries' own types and knows nothing of [`crate::doc`]
//! (which calls it), nor of storage.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use automerge::{ObjId, ObjType, ReadDoc, ScalarValue, Value as AmValue, ROOT};
use serde_json::Value;
use yrs::types::ToJson;
use yrs::{Any, Array, Map, Out, ReadTxn};

use crate::error::{Error, Result};
use crate::path::{Path, Segment};
use crate::policy::merge::{self, MergeFunction};
use crate::policy::register::{Shown, RESERVED_PREFIX};
use crate::policy::{automerge_meta, yrs_meta};
use crate::read_policies::Policies;

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
    fn resolve<T>(
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

    /// Reads `path` in an Automerge document.
    pub fn automerge(&self, doc: &impl ReadDoc, path: &Path) -> Result<Option<Value>> {
        let table = automerge_meta::table(doc);
        let policies = (!table.is_empty()).then(|| Policies {
            table,
            registers: Box::new(|keys: &[String]| automerge_meta::register(doc, keys)),
        });
        self.automerge_in(doc, path, policies.as_ref())
    }

    /// [`Reader::automerge`] with the document's policies already read.
    pub(crate) fn automerge_in(
        &self,
        doc: &impl ReadDoc,
        path: &Path,
        policies: Option<&Policies<'_>>,
    ) -> Result<Option<Value>> {
        let mut obj = ROOT;
        let mut ty = ObjType::Map;
        let mut keys = Vec::new();
        for (depth, seg) in path.segments.iter().enumerate() {
            let prop: automerge::Prop = match (ty, seg) {
                (ObjType::Map | ObjType::Table, s) => s.as_key().into(),
                (_, Segment::Index(i)) => (*i).into(),
                (_, Segment::Key(_)) => return Ok(None),
            };
            if ty == ObjType::Text {
                let text = doc.text(&obj).map_err(|e| Error::Corrupt(e.to_string()))?;
                let Segment::Index(i) = seg else {
                    return Ok(None);
                };
                return Ok(text
                    .chars()
                    .nth(*i)
                    .map(|c| Value::String(c.to_string()))
                    .filter(|_| depth + 1 == path.segments.len()));
            }
            let is_map = matches!(ty, ObjType::Map | ObjType::Table);
            keys.push(seg.as_key());
            let winner = self.resolve(
                || seg.as_key(),
                doc.get_all(&obj, prop)
                    .map_err(|e| Error::Corrupt(e.to_string()))?,
                automerge_candidate,
            );
            if let Some(p) = policies.filter(|_| is_map) {
                let at_path =
                    || Some(self.automerge_value(doc, winner.clone(), &mut keys.clone(), Some(p)));
                match p.shown(self, &keys, at_path) {
                    Some(Shown::Value(v)) => {
                        return Ok(lookup_json(v, &path.segments[depth + 1..]))
                    }
                    Some(Shown::Absent) => return Ok(None),
                    Some(Shown::AtPath) | None => {}
                }
            }
            match winner {
                None => return Ok(None),
                Some((AmValue::Object(t), id)) => {
                    obj = id;
                    ty = t;
                }
                Some((AmValue::Scalar(s), _)) => {
                    return Ok((depth + 1 == path.segments.len()).then(|| scalar_json(&s)));
                }
            }
        }
        Ok(Some(
            self.automerge_object(doc, &obj, ty, &mut keys, policies),
        ))
    }

    /// The object `obj` (at the path `keys`) as JSON.
    fn automerge_object(
        &self,
        doc: &impl ReadDoc,
        obj: &ObjId,
        ty: ObjType,
        keys: &mut Vec<String>,
        policies: Option<&Policies<'_>>,
    ) -> Value {
        match ty {
            ObjType::Text => Value::String(doc.text(obj).unwrap_or_default()),
            ObjType::List => Value::Array(
                (0..doc.length(obj))
                    .map(|i| {
                        let winner = self.resolve(
                            || i.to_string(),
                            doc.get_all(obj, i).unwrap_or_default(),
                            automerge_candidate,
                        );
                        keys.push(i.to_string());
                        let v = self.automerge_value(doc, winner, keys, policies);
                        keys.pop();
                        v
                    })
                    .collect(),
            ),
            ObjType::Map | ObjType::Table => {
                let mut out = serde_json::Map::new();
                for k in doc.keys(obj) {
                    if keys.is_empty() && k.starts_with(RESERVED_PREFIX) {
                        continue;
                    }
                    let winner = self.resolve(
                        || k.clone(),
                        doc.get_all(obj, k.as_str()).unwrap_or_default(),
                        automerge_candidate,
                    );
                    keys.push(k.clone());
                    let shown = policies.and_then(|p| {
                        let at_path = || {
                            Some(self.automerge_value(
                                doc,
                                winner.clone(),
                                &mut keys.clone(),
                                Some(p),
                            ))
                        };
                        p.shown(self, keys, at_path)
                    });
                    let v = match shown {
                        Some(Shown::Value(v)) => Some(v),
                        Some(Shown::Absent) => None,
                        Some(Shown::AtPath) | None => {
                            Some(self.automerge_value(doc, winner, keys, policies))
                        }
                    };
                    keys.pop();
                    if let Some(v) = v {
                        out.insert(k, v);
                    }
                }
                Value::Object(out)
            }
        }
    }

    fn automerge_value(
        &self,
        doc: &impl ReadDoc,
        v: Option<(AmValue<'_>, ObjId)>,
        keys: &mut Vec<String>,
        policies: Option<&Policies<'_>>,
    ) -> Value {
        match v {
            None => Value::Null,
            Some((AmValue::Object(t), id)) => self.automerge_object(doc, &id, t, keys, policies),
            Some((AmValue::Scalar(s), _)) => scalar_json(&s),
        }
    }

    /// Reads `path` in a Yrs document (first segment = root type name; the empty path is
    /// the whole document, each root by name).
    pub fn yrs(&self, txn: &impl ReadTxn, path: &Path) -> Result<Option<Value>> {
        let table = yrs_meta::table(txn);
        let policies = (!table.is_empty()).then(|| Policies {
            table,
            registers: Box::new(|keys: &[String]| yrs_meta::register(txn, keys)),
        });
        self.yrs_in(txn, path, policies.as_ref())
    }

    /// [`Reader::yrs`] with the document's policies already read.
    pub(crate) fn yrs_in(
        &self,
        txn: &impl ReadTxn,
        path: &Path,
        policies: Option<&Policies<'_>>,
    ) -> Result<Option<Value>> {
        let Some(first) = path.segments.first() else {
            let mut out = serde_json::Map::new();
            for (name, root) in txn.root_refs() {
                if name.starts_with(RESERVED_PREFIX) {
                    continue;
                }
                let mut keys = vec![name.to_string()];
                out.insert(
                    name.to_string(),
                    self.yrs_json(txn, &root, &mut keys, policies),
                );
            }
            return Ok(Some(Value::Object(out)));
        };
        let name = first.as_key();
        let root = ReadTxn::get(txn, &name);
        let Some(mut current) =
            self.resolve(|| name.clone(), root.into_iter().collect(), yrs_candidate)
        else {
            return Ok(None);
        };
        let mut keys = vec![name];
        for (depth, seg) in path.segments.iter().enumerate().skip(1) {
            let is_map = matches!(current, Out::YMap(_));
            let next = match &current {
                Out::YMap(m) => m.get(txn, &seg.as_key()),
                Out::YArray(a) => match seg {
                    Segment::Index(i) => a.get(txn, *i as u32),
                    Segment::Key(_) => None,
                },
                Out::Any(any) => return Ok(lookup_any(any, &path.segments[depth..])),
                _ => None,
            };
            keys.push(seg.as_key());
            if let Some(p) = policies.filter(|_| is_map) {
                let at_path = || {
                    next.as_ref()
                        .map(|n| self.yrs_json(txn, n, &mut keys.clone(), Some(p)))
                };
                match p.shown(self, &keys, at_path) {
                    Some(Shown::Value(v)) => {
                        return Ok(lookup_json(v, &path.segments[depth + 1..]))
                    }
                    Some(Shown::Absent) => return Ok(None),
                    Some(Shown::AtPath) | None => {}
                }
            }
            match self.resolve(|| seg.as_key(), next.into_iter().collect(), yrs_candidate) {
                Some(n) => current = n,
                None => return Ok(None),
            }
        }
        Ok(Some(self.yrs_json(txn, &current, &mut keys, policies)))
    }

    /// A Yrs value (at the path `keys`) and everything below it as JSON, showing what the
    /// document's policies decide at map keys.
    fn yrs_json(
        &self,
        txn: &impl ReadTxn,
        out: &Out,
        keys: &mut Vec<String>,
        policies: Option<&Policies<'_>>,
    ) -> Value {
        let Some(p) = policies else {
            return out_to_json(txn, out);
        };
        match out {
            Out::YMap(m) => {
                let mut entries: Vec<(String, Out)> =
                    m.iter(txn).map(|(k, v)| (k.to_string(), v)).collect();
                entries.sort_by(|a, b| a.0.cmp(&b.0));
                let mut obj = serde_json::Map::new();
                for (k, v) in entries {
                    keys.push(k.clone());
                    let at_path = || Some(self.yrs_json(txn, &v, &mut keys.clone(), Some(p)));
                    let shown = match p.shown(self, keys, at_path) {
                        Some(Shown::Value(v)) => Some(v),
                        Some(Shown::Absent) => None,
                        Some(Shown::AtPath) | None => Some(self.yrs_json(txn, &v, keys, Some(p))),
                    };
                    keys.pop();
                    if let Some(value) = shown {
                        obj.insert(k, value);
                    }
                }
                Value::Object(obj)
            }
            Out::YArray(a) => Value::Array(
                a.iter(txn)
                    .enumerate()
                    .map(|(i, v)| {
                        keys.push(i.to_string());
                        let value = self.yrs_json(txn, &v, keys, Some(p));
                        keys.pop();
                        value
                    })
                    .collect(),
            ),
            other => out_to_json(txn, other),
        }
    }
}

fn automerge_candidate((value, _): &(AmValue<'_>, ObjId)) -> Candidate {
    match value {
        AmValue::Object(ObjType::Map | ObjType::Table) => Candidate::Map,
        AmValue::Object(ObjType::List) => Candidate::List,
        AmValue::Object(ObjType::Text) => Candidate::Text,
        AmValue::Scalar(s) => Candidate::Value(scalar_json(s)),
    }
}

fn yrs_candidate(out: &Out) -> Candidate {
    match out {
        Out::YMap(_) => Candidate::Map,
        Out::YArray(_) => Candidate::List,
        Out::YText(_) => Candidate::Text,
        Out::Any(any) => Candidate::Value(any_to_json(any)),
        _ => Candidate::Value(Value::Null),
    }
}

fn scalar_json(s: &ScalarValue) -> Value {
    match s {
        ScalarValue::Bytes(b) => Value::Array(b.iter().map(|x| Value::from(*x)).collect()),
        ScalarValue::Str(s) => Value::String(s.to_string()),
        ScalarValue::Int(i) => Value::from(*i),
        ScalarValue::Uint(u) => Value::from(*u),
        ScalarValue::F64(f) => Value::from(*f),
        ScalarValue::Counter(c) => Value::from(i64::from(c)),
        ScalarValue::Timestamp(t) => Value::from(*t),
        ScalarValue::Boolean(b) => Value::Bool(*b),
        ScalarValue::Unknown { .. } | ScalarValue::Null => Value::Null,
    }
}

/// Converts a Yrs value (and everything below it) to JSON.
fn out_to_json(txn: &impl ReadTxn, out: &Out) -> Value {
    any_to_json(&out.to_json(txn))
}

fn any_to_json(any: &Any) -> Value {
    match any {
        Any::Undefined | Any::Null => Value::Null,
        other => serde_json::to_value(other).unwrap_or(Value::Null),
    }
}

/// Follows `segments` inside a plain (non-shared) Yrs value.
fn lookup_any(any: &Any, segments: &[Segment]) -> Option<Value> {
    lookup_json(any_to_json(any), segments)
}

/// Follows `segments` inside a JSON value.
fn lookup_json(mut v: Value, segments: &[Segment]) -> Option<Value> {
    for seg in segments {
        v = match (v, seg) {
            (Value::Object(mut m), s) => m.remove(&s.as_key())?,
            (Value::Array(mut a), Segment::Index(i)) if *i < a.len() => a.swap_remove(*i),
            _ => return None,
        };
    }
    Some(v)
}

//! Where policies keep their data inside a document, and how a path's stamped writes
//! resolve.
//!
//! Reserved names (top-level keys in Automerge, root types in Yrs), all starting with
//! `_concord`: `_concord_policies` (pattern → policy), `_concord_clock` (origin → the
//! latest `ms.counter` it stamped) and the registers of paths written under a policy: the
//! HLC of each write not yet superseded → its payload. In Yrs each path has its own root
//! map `_concord_reg:<path>`; in Automerge all share one map `_concord_reg` keyed
//! `<path>\u{1}<hlc>` (a path's entries are one key range; no map is created per path).
//! A write removes the entries it saw and adds its own, so after merging, the entries left
//! are exactly the concurrent writes (on both CRDTs alike).

use serde_json::Value;

use super::hlc::Hlc;
use super::merge::{ConcurrentValue, MergeFunction};
use super::table::Policy;
use super::value::PlainValue;

/// Every reserved name starts with this; reads of whole documents leave them out.
pub const RESERVED_PREFIX: &str = "_concord";
/// The policy table.
pub const POLICIES: &str = "_concord_policies";
/// Each device's latest stamp.
pub const CLOCK: &str = "_concord_clock";
/// Automerge: the one map holding every path's entries.
pub const REGISTERS: &str = "_concord_reg";
const REGISTER_PREFIX: &str = "_concord_reg:";
/// Automerge: separates the path from the HLC in a [`REGISTERS`] key.
pub const ENTRY_SEPARATOR: char = '\u{1}';

/// A path as written: its keys joined by `/`, escaped like a path.
pub fn path_text(keys: &[String]) -> String {
    keys.iter()
        .map(|key| key.replace('~', "~0").replace('/', "~1"))
        .collect::<Vec<_>>()
        .join("/")
}

/// Yrs: the register's root name for a path.
pub fn register_name(keys: &[String]) -> String {
    format!("{REGISTER_PREFIX}{}", path_text(keys))
}

/// Yrs: the path a register's root name stands for, as written (`a/b`).
pub fn register_path(name: &str) -> Option<&str> {
    name.strip_prefix(REGISTER_PREFIX)
}

/// What a stamped write put at its path.
#[derive(Debug, Clone, PartialEq)]
pub enum Payload {
    /// A plain value (kept here and at the path itself).
    Value(Value),
    /// A map or list: it lives at the path, shared by every device that created it, so
    /// edits inside it always merge; reading this entry reads the path.
    Container,
    /// A deletion.
    Deleted,
}

impl Payload {
    pub fn encode(&self) -> String {
        match self {
            Payload::Value(v) => format!("v{v}"),
            Payload::Container => "c".into(),
            Payload::Deleted => "d".into(),
        }
    }

    pub fn decode(text: &str) -> Option<Payload> {
        match text {
            "c" => Some(Payload::Container),
            "d" => Some(Payload::Deleted),
            _ => serde_json::from_str(text.strip_prefix('v')?)
                .ok()
                .map(Payload::Value),
        }
    }

    /// The payload of `value` put at a path.
    pub fn of(value: &Value) -> Payload {
        match value {
            Value::Object(_) | Value::Array(_) => Payload::Container,
            v => Payload::Value(v.clone()),
        }
    }
}

/// One write not yet superseded.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    pub hlc: Hlc,
    pub payload: Payload,
}

/// Entries from a register's (key, value) pairs, oldest first; malformed ones skipped.
pub fn entries<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> Vec<Entry> {
    let mut out: Vec<Entry> = pairs
        .into_iter()
        .filter_map(|(k, v)| {
            Some(Entry {
                hlc: Hlc::decode(k)?,
                payload: Payload::decode(v)?,
            })
        })
        .collect();
    out.sort_by(|a, b| a.hlc.cmp(&b.hlc));
    out
}

/// What a path shows under its policy.
#[derive(Debug, Clone, PartialEq)]
pub enum Shown {
    /// This value.
    Value(Value),
    /// What is at the path itself (a shared container).
    AtPath,
    /// Nothing (deleted).
    Absent,
}

/// Resolves a non-empty register (oldest first) under `policy`. `at_path` reads the
/// value at the path itself (for container entries, handed to merge functions);
/// `merge_fn` finds a merge function by name.
pub fn resolve(
    policy: &Policy,
    path: &str,
    entries: &[Entry],
    at_path: impl Fn() -> Option<Value>,
    merge_fn: impl Fn(&str) -> Option<std::sync::Arc<dyn MergeFunction>>,
) -> Shown {
    let live: Vec<&Entry> = entries
        .iter()
        .filter(|e| e.payload != Payload::Deleted)
        .collect();
    let latest = |e: Option<&Entry>| match e.map(|e| &e.payload) {
        Some(Payload::Value(v)) => Shown::Value(v.clone()),
        Some(Payload::Container) => Shown::AtPath,
        Some(Payload::Deleted) | None => Shown::Absent,
    };
    match policy {
        Policy::Merge(name) if live.len() > 1 => {
            let Some(f) = merge_fn(name) else {
                return latest(entries.last());
            };
            let values = live
                .iter()
                .map(|e| ConcurrentValue {
                    value: PlainValue::from(&match &e.payload {
                        Payload::Value(v) => v.clone(),
                        _ => at_path().unwrap_or(Value::Null),
                    }),
                    origin: e.hlc.origin.clone(),
                    hlc: e.hlc.clone(),
                })
                .collect();
            Shown::Value(f.merge(path.to_string(), values).into())
        }
        // Merge and keep-all show a live value over a concurrent deletion.
        Policy::Merge(_) | Policy::KeepAll => latest(live.last().copied()),
        Policy::Lww | Policy::Crdt => latest(entries.last()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn payloads_and_names_round_trip() {
        for p in [
            Payload::Value(json!("a/b")),
            Payload::Value(json!(null)),
            Payload::Container,
            Payload::Deleted,
        ] {
            assert_eq!(Payload::decode(&p.encode()), Some(p));
        }
        let name = register_name(&["a/b".into(), "c".into()]);
        assert_eq!(register_path(&name), Some("a~1b/c"));
    }
}

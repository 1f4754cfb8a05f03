//! What a document's policies show: the stamped writes at a map key, resolved under the
//! key's policy (used by [`super::Reader`]), every concurrent value at a path
//! (`get --all`), and the keep-all paths that still hold several values.

use serde_json::Value;

use super::Reader;
use crate::error::Result;
use crate::path::Path;
use crate::policy::hlc::Hlc;
use crate::policy::register::{self, Entry, Payload, Shown};
use crate::policy::table::{Policy, PolicyTable};

/// Reads the stamped writes at a path (its keys), oldest first.
pub(crate) type RegisterReader<'a> = Box<dyn Fn(&[String]) -> Vec<Entry> + 'a>;

/// A document's policy table and access to its registers, for one read.
pub(crate) struct Policies<'a> {
    pub table: PolicyTable,
    pub registers: RegisterReader<'a>,
}

impl Policies<'_> {
    /// What the map key at `keys` shows under its policy, or `None` when no policy other
    /// than the CRDT's governs it or nothing was written under one (then: the CRDT's value).
    /// `at_path` reads what is at the key itself.
    pub fn shown(
        &self,
        reader: &Reader,
        keys: &[String],
        at_path: impl Fn() -> Option<Value>,
    ) -> Option<Shown> {
        let policy = self.table.policy_for(keys);
        if *policy == Policy::Crdt {
            return None;
        }
        let entries = (self.registers)(keys);
        if entries.is_empty() {
            return None;
        }
        Some(register::resolve(
            policy,
            &keys.join("/"),
            &entries,
            at_path,
            |name| reader.merge_fn(name),
        ))
    }
}

/// One of the values concurrently at a path.
#[derive(Debug, Clone, PartialEq)]
pub struct ValueVersion {
    pub value: Value,
    /// When and by whom it was written; `None` for a value not written under a policy.
    pub hlc: Option<Hlc>,
}

/// The path's keys (each step as a map key).
pub(crate) fn keys_of(path: &Path) -> Vec<String> {
    path.segments.iter().map(|s| s.as_key()).collect()
}

/// Every value at `path`: each live stamped write (oldest first) when a policy governs the
/// path and writes were stamped there, else the one value shown. `read` reads the path.
pub(crate) fn versions(
    table: &PolicyTable,
    path: &Path,
    entries: impl FnOnce(&[String]) -> Vec<Entry>,
    read: impl Fn() -> Result<Option<Value>>,
) -> Result<Vec<ValueVersion>> {
    let keys = keys_of(path);
    let stamped = if keys.is_empty() || *table.policy_for(&keys) == Policy::Crdt {
        Vec::new()
    } else {
        entries(&keys)
    };
    if stamped.is_empty() {
        return Ok(read()?
            .map(|value| ValueVersion { value, hlc: None })
            .into_iter()
            .collect());
    }
    let mut out = Vec::new();
    for entry in stamped {
        let value = match entry.payload {
            Payload::Deleted => continue,
            Payload::Value(v) => v,
            Payload::Container => read()?.unwrap_or(Value::Null),
        };
        out.push(ValueVersion {
            value,
            hlc: Some(entry.hlc),
        });
    }
    Ok(out)
}

/// The keep-all paths holding more than one live value, sorted.
pub(crate) fn conflicts(table: &PolicyTable, registers: Vec<(String, Vec<Entry>)>) -> Vec<String> {
    let mut out: Vec<String> = registers
        .into_iter()
        .filter(|(path, entries)| {
            let Ok(parsed) = Path::parse(path) else {
                return false;
            };
            *table.policy_for(&keys_of(&parsed)) == Policy::KeepAll
                && entries
                    .iter()
                    .filter(|e| e.payload != Payload::Deleted)
                    .count()
                    > 1
        })
        .map(|(path, _)| path)
        .collect();
    out.sort();
    out
}

//! Reading the policy data (`register.rs` names) out of an Automerge document.

use automerge::{ObjId, ObjType, ReadDoc, ScalarValue, Value as AmValue, ROOT};

use super::hlc::ClockState;
use super::register::{self, Entry, CLOCK, POLICIES};
use super::table::PolicyTable;

/// The map at top-level key `name`, if there is one.
pub fn top_map(doc: &impl ReadDoc, name: &str) -> Option<ObjId> {
    match doc.get(ROOT, name) {
        Ok(Some((AmValue::Object(ObjType::Map), id))) => Some(id),
        _ => None,
    }
}

/// Every (key, text value) of the map `obj` (the CRDT's winner where a key has several).
pub fn text_pairs(doc: &impl ReadDoc, obj: &ObjId) -> Vec<(String, String)> {
    doc.keys(obj)
        .filter_map(|k| match doc.get(obj, k.as_str()) {
            Ok(Some((AmValue::Scalar(s), _))) => match s.as_ref() {
                ScalarValue::Str(text) => Some((k, text.to_string())),
                _ => None,
            },
            _ => None,
        })
        .collect()
}

/// The document's policy table (empty when it has none).
pub fn table(doc: &impl ReadDoc) -> PolicyTable {
    match top_map(doc, POLICIES) {
        None => PolicyTable::default(),
        Some(obj) => {
            let pairs = text_pairs(doc, &obj);
            PolicyTable::from_entries(pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        }
    }
}

/// The stamped writes at the path `keys`, oldest first.
pub fn register(doc: &impl ReadDoc, keys: &[String]) -> Vec<Entry> {
    register_named(doc, &register::register_name(keys))
}

fn register_named(doc: &impl ReadDoc, name: &str) -> Vec<Entry> {
    match top_map(doc, name) {
        None => Vec::new(),
        Some(obj) => {
            let pairs = text_pairs(doc, &obj);
            register::entries(pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        }
    }
}

/// Every register: (path as written, entries).
pub fn registers(doc: &impl ReadDoc) -> Vec<(String, Vec<Entry>)> {
    doc.keys(ROOT)
        .filter_map(|name| {
            let path = register::register_path(&name)?.to_string();
            Some((path, register_named(doc, &name)))
        })
        .collect()
}

/// The newest stamp any device recorded in the document.
pub fn newest_stamp(doc: &impl ReadDoc) -> Option<ClockState> {
    let obj = top_map(doc, CLOCK)?;
    text_pairs(doc, &obj)
        .iter()
        .filter_map(|(_, v)| ClockState::decode(v))
        .max()
}

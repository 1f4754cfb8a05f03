//! Reading the policy data (`register.rs` names) out of an Automerge document.

use automerge::{ObjId, ObjType, ReadDoc, ScalarValue, Value as AmValue, ROOT};

use super::hlc::ClockState;
use super::register::{self, Entry, CLOCK, ENTRY_SEPARATOR, POLICIES, REGISTERS};
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

/// The stamped writes at the path `keys`, oldest first, with their keys in the registers
/// map.
pub fn register_keyed(doc: &impl ReadDoc, keys: &[String]) -> Vec<(String, Entry)> {
    let Some(obj) = top_map(doc, REGISTERS) else {
        return Vec::new();
    };
    let path = register::path_text(keys);
    let start = format!("{path}{ENTRY_SEPARATOR}");
    let end = format!(
        "{path}{}",
        char::from_u32(ENTRY_SEPARATOR as u32 + 1).unwrap_or('~')
    );
    let pairs: Vec<(String, String)> = doc
        .map_range(&obj, start.clone()..end)
        .filter_map(|item| {
            let value = automerge::Value::from(item.value);
            Some((item.key.into_owned(), value.as_str()?.to_string()))
        })
        .collect();
    let mut out: Vec<(String, Entry)> = pairs
        .iter()
        .filter_map(|(k, v)| {
            let hlc = k.strip_prefix(start.as_str())?;
            let entry = register::entries([(hlc, v.as_str())]).pop()?;
            Some((k.clone(), entry))
        })
        .collect();
    out.sort_by(|a, b| a.1.hlc.cmp(&b.1.hlc));
    out
}

/// The stamped writes at the path `keys`, oldest first.
pub fn register(doc: &impl ReadDoc, keys: &[String]) -> Vec<Entry> {
    register_keyed(doc, keys)
        .into_iter()
        .map(|(_, e)| e)
        .collect()
}

/// Every register: (path as written, entries).
pub fn registers(doc: &impl ReadDoc) -> Vec<(String, Vec<Entry>)> {
    let Some(obj) = top_map(doc, REGISTERS) else {
        return Vec::new();
    };
    let mut by_path: std::collections::BTreeMap<String, Vec<(String, String)>> = Default::default();
    for (key, value) in text_pairs(doc, &obj) {
        if let Some((path, hlc)) = key.split_once(ENTRY_SEPARATOR) {
            by_path
                .entry(path.to_string())
                .or_default()
                .push((hlc.to_string(), value));
        }
    }
    by_path
        .into_iter()
        .map(|(path, pairs)| {
            let entries = register::entries(pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())));
            (path, entries)
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

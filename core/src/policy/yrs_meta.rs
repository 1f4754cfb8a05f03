//! Reading the policy data (`register.rs` names) out of a Yrs document.

use yrs::{Any, Map, MapRef, Out, ReadTxn};

use super::hlc::ClockState;
use super::register::{self, Entry, CLOCK, POLICIES};
use super::table::PolicyTable;

/// Every (key, text value) of the root map `name`.
fn text_pairs(txn: &impl ReadTxn, name: &str) -> Vec<(String, String)> {
    match txn.get_map(name) {
        None => Vec::new(),
        Some(map) => pairs_of(txn, &map),
    }
}

pub fn pairs_of(txn: &impl ReadTxn, map: &MapRef) -> Vec<(String, String)> {
    map.iter(txn)
        .filter_map(|(k, v)| match v {
            Out::Any(Any::String(s)) => Some((k.to_string(), s.to_string())),
            _ => None,
        })
        .collect()
}

/// The document's policy table (empty when it has none).
pub fn table(txn: &impl ReadTxn) -> PolicyTable {
    let pairs = text_pairs(txn, POLICIES);
    PolicyTable::from_entries(pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())))
}

/// The stamped writes at the path `keys`, oldest first.
pub fn register(txn: &impl ReadTxn, keys: &[String]) -> Vec<Entry> {
    let pairs = text_pairs(txn, &register::register_name(keys));
    register::entries(pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())))
}

/// Every register: (path as written, entries).
pub fn registers(txn: &impl ReadTxn) -> Vec<(String, Vec<Entry>)> {
    txn.root_refs()
        .filter_map(|(name, out)| {
            let path = register::register_path(name)?.to_string();
            let Out::YMap(map) = out else { return None };
            let pairs = pairs_of(txn, &map);
            Some((
                path,
                register::entries(pairs.iter().map(|(k, v)| (k.as_str(), v.as_str()))),
            ))
        })
        .collect()
}

/// The newest stamp any device recorded in the document.
pub fn newest_stamp(txn: &impl ReadTxn) -> Option<ClockState> {
    text_pairs(txn, CLOCK)
        .iter()
        .filter_map(|(_, v)| ClockState::decode(v))
        .max()
}

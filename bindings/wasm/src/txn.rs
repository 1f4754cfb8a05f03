//! A transaction from JavaScript: a list of edit operations applied in one commit (one
//! update, one SQLite transaction). Each op is `{op, path, ...}`:
//! `put {value}`, `insert {value}`, `push {value}`, `delete`, `insertText {index, text}`,
//! `deleteText {index, len}`, `spliceText {index, delete, text}`, `increment {by}`,
//! `resolve {value}`.

use concord_core::{DocTxn, Error};
use serde_json::Value;

/// Applies one op inside an open transaction.
pub fn apply(txn: &mut DocTxn<'_>, op: &Value) -> Result<(), Error> {
    let name = op.get("op").and_then(Value::as_str).unwrap_or_default();
    let path = op.get("path").and_then(Value::as_str).unwrap_or_default();
    let value = || op.get("value").cloned().unwrap_or(Value::Null);
    let num = |key: &str| op.get(key).and_then(Value::as_u64).unwrap_or(0) as usize;
    let text = || op.get("text").and_then(Value::as_str).unwrap_or_default();
    match name {
        "put" => txn.put(path, value()),
        "insert" => txn.insert(path, value()),
        "push" => txn.push(path, value()),
        "delete" => txn.delete(path),
        "insertText" => txn.insert_text(path, num("index"), text()),
        "deleteText" => txn.delete_text(path, num("index"), num("len")),
        "spliceText" => txn.splice_text(path, num("index"), num("delete"), text()),
        "increment" => txn.increment(path, op.get("by").and_then(Value::as_i64).unwrap_or(1)),
        "resolve" => txn.resolve(path, value()),
        other => Err(Error::InvalidEdit(format!("unknown operation {other:?}"))),
    }
}

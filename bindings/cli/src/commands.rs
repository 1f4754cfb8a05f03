//! The local commands: create, edit and read documents in the device's store.
//!
//! None of these talk to the network. Every edit is one `Store::transact`, committed
//! durably to the SQLite file (and queued in the outbox for the next `sync`) before the
//! command returns.

use std::fmt::Write as _;

use anyhow::Context;
use concord_core::{DocKind, DocStatus, Error as CoreError, Store};
use serde_json::{json, Value};

use crate::output::{self, Output};

/// A VALUE argument: JSON if it parses as JSON, else the plain string.
pub fn parse_value(raw: &str) -> Value {
    serde_json::from_str(raw).unwrap_or_else(|_| Value::String(raw.to_string()))
}

/// The kind of `doc`, or a "no such document" error.
fn kind_of(store: &Store, doc: &str) -> anyhow::Result<DocKind> {
    Ok(store
        .doc_kind(doc)?
        .ok_or_else(|| CoreError::NoSuchDoc(doc.to_string()))?)
}

/// Reports a committed edit (silent for people; `{"ok":true,...}` with `--json`).
fn edited(store: &Store, out: &Output, doc: &str) -> anyhow::Result<()> {
    if out.is_json() {
        let pending = store.pending(doc)?;
        out.result(
            None,
            || json!({ "ok": true, "doc": doc, "pending": pending }),
        )?;
    }
    Ok(())
}

pub fn create(store: &Store, out: &Output, doc: &str, kind: DocKind) -> anyhow::Result<()> {
    store.create_doc(doc, kind)?;
    out.result(
        Some(&format!("created {doc} ({kind})")),
        || json!({ "doc": doc, "kind": kind.as_str() }),
    )?;
    Ok(())
}

pub fn put(store: &Store, out: &Output, doc: &str, path: &str, value: &str) -> anyhow::Result<()> {
    let value = parse_value(value);
    store.transact(doc, |tx| tx.put(path, value))?;
    edited(store, out, doc)
}

pub fn push(store: &Store, out: &Output, doc: &str, path: &str, value: &str) -> anyhow::Result<()> {
    let value = parse_value(value);
    store.transact(doc, |tx| tx.push(path, value))?;
    edited(store, out, doc)
}

pub fn insert(
    store: &Store,
    out: &Output,
    doc: &str,
    path: &str,
    value: &str,
) -> anyhow::Result<()> {
    let value = parse_value(value);
    store.transact(doc, |tx| tx.insert(path, value))?;
    edited(store, out, doc)
}

pub fn delete(store: &Store, out: &Output, doc: &str, path: &str) -> anyhow::Result<()> {
    store.transact(doc, |tx| tx.delete(path))?;
    edited(store, out, doc)
}

pub fn incr(store: &Store, out: &Output, doc: &str, path: &str, by: i64) -> anyhow::Result<()> {
    store.transact(doc, |tx| tx.increment(path, by))?;
    edited(store, out, doc)
}

pub fn insert_text(
    store: &Store,
    out: &Output,
    doc: &str,
    path: &str,
    index: usize,
    text: &str,
) -> anyhow::Result<()> {
    store.transact(doc, |tx| tx.insert_text(path, index, text))?;
    edited(store, out, doc)
}

pub fn delete_text(
    store: &Store,
    out: &Output,
    doc: &str,
    path: &str,
    index: usize,
    len: usize,
) -> anyhow::Result<()> {
    store.transact(doc, |tx| tx.delete_text(path, index, len))?;
    edited(store, out, doc)
}

pub fn get(store: &Store, out: &Output, doc: &str, path: Option<&str>) -> anyhow::Result<()> {
    let path = path.unwrap_or("");
    let value = store
        .get(doc, path)?
        .with_context(|| format!("nothing at {path:?} in document {doc:?}"))?;
    out.document(&value)?;
    Ok(())
}

/// The text at `path` (or its part `start..end`); with `--json`, `{"text", "len"}` where
/// `len` is the whole text's length.
pub fn text(
    store: &Store,
    out: &Output,
    doc: &str,
    path: &str,
    start: Option<usize>,
    end: Option<usize>,
) -> anyhow::Result<()> {
    let len = store.text_len(doc, path)?;
    let part = store.text_slice(doc, path, start.unwrap_or(0), end.unwrap_or(len))?;
    out.result(
        Some(&part),
        || serde_json::json!({"text": part, "len": len}),
    )?;
    Ok(())
}

/// The document; then, if keep-all paths hold several values, a line naming them (with
/// `--json`, a second line `{"conflicts": [...]}`).
pub fn show(store: &Store, out: &Output, doc: &str) -> anyhow::Result<()> {
    kind_of(store, doc)?;
    out.document(&store.to_json(doc)?)?;
    let conflicts = store.conflicts(doc)?;
    if !conflicts.is_empty() {
        out.result(
            Some(&format!(
                "unresolved conflicts: {} (see `concord get --all {doc} PATH`; settle with `concord resolve {doc} PATH VALUE`)",
                conflicts.join(", ")
            )),
            || json!({ "conflicts": conflicts }),
        )?;
    }
    Ok(())
}

pub fn list(store: &Store, out: &Output) -> anyhow::Result<()> {
    let docs = store.list_docs()?;
    if out.is_json() {
        let docs: Vec<Value> = docs
            .iter()
            .map(|d| json!({ "id": d.id, "kind": d.kind.as_str() }))
            .collect();
        output::line(&Value::Array(docs))?;
    } else {
        let width = docs.iter().map(|d| d.id.len()).max().unwrap_or(0);
        for d in &docs {
            output::line(&format_args!("{:width$}  {}", d.id, d.kind))?;
        }
    }
    Ok(())
}

pub fn status(store: &Store, out: &Output, doc: Option<&str>) -> anyhow::Result<()> {
    let docs = match doc {
        Some(id) => vec![DocStatus {
            id: id.to_string(),
            kind: kind_of(store, id)?,
            version: store.version_vector(id)?,
            pending: store.pending(id)?,
        }],
        None => store.status()?,
    };
    let device = store.device_id();
    let total: usize = docs.iter().map(|d| d.pending).sum();
    if out.is_json() {
        let docs: Vec<Value> = docs
            .iter()
            .map(|d| {
                json!({
                    "id": d.id,
                    "kind": d.kind.as_str(),
                    "version": output::version_json(&d.version),
                    "pending": d.pending,
                })
            })
            .collect();
        output::line(&json!({ "device": device.as_str(), "pending": total, "docs": docs }))?;
    } else {
        let mut text = format!("device {device}");
        let width = docs.iter().map(|d| d.id.len()).max().unwrap_or(0);
        for d in &docs {
            write!(
                text,
                "\n{:width$}  {:9}  pending {:<4}  version {}",
                d.id,
                d.kind.as_str(),
                d.pending,
                output::version_text(&d.version)
            )?;
        }
        output::line(&text)?;
    }
    Ok(())
}

/// `count` separate commits, each reported (and flushed) once `transact` has returned.
pub fn edit_loop(
    store: &Store,
    out: &Output,
    doc: &str,
    count: u64,
    path: Option<&str>,
) -> anyhow::Result<()> {
    let kind = kind_of(store, doc)?;
    for i in 1..=count {
        match kind {
            DocKind::Automerge => {
                store.transact(doc, |tx| tx.increment(path.unwrap_or("counter"), 1))?
            }
            DocKind::Yrs => {
                let path = path.unwrap_or("log");
                let digit = char::from_digit((i % 10) as u32, 10).expect("a decimal digit");
                store.transact(doc, |tx| {
                    let end = match tx.get(path)? {
                        None => 0,
                        Some(Value::String(s)) => s.encode_utf16().count(),
                        Some(_) => {
                            return Err(CoreError::InvalidEdit(format!(
                                "{path:?} is not a text; edit-loop appends to a root text"
                            )))
                        }
                    };
                    tx.insert_text(path, end, digit.encode_utf8(&mut [0; 4]))
                })?
            }
        }
        out.result(
            Some(&format!("committed {i}")),
            || json!({ "committed": i }),
        )?;
    }
    Ok(())
}

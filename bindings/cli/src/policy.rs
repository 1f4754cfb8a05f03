//! The conflict-policy commands: `policy set` / `policy list`, `get --all` (every
//! concurrent value with its origin and time) and `resolve` (settle a keep-all conflict).

use anyhow::{bail, Context};
use concord_core::policy::merge::BUILTIN_NAMES;
use concord_core::{Hlc, Policy, Store, ValueVersion};
use serde_json::{json, Value};

use crate::commands::parse_value;
use crate::output::{self, Output};

/// Parses a POLICY argument; `merge:` takes a built-in function (the CLI has no others).
fn parse_policy(raw: &str) -> anyhow::Result<Policy> {
    let policy: Policy = raw.parse().map_err(anyhow::Error::msg)?;
    if let Policy::Merge(name) = &policy {
        if !BUILTIN_NAMES.contains(&name.as_str()) {
            bail!(
                "unknown merge function {name:?}: the CLI offers {}",
                BUILTIN_NAMES.map(|n| format!("merge:{n}")).join(", ")
            );
        }
    }
    Ok(policy)
}

pub fn set(
    store: &Store,
    out: &Output,
    doc: &str,
    pattern: &str,
    policy: &str,
) -> anyhow::Result<()> {
    let policy = parse_policy(policy)?;
    store.set_policy(doc, pattern, &policy)?;
    out.result(
        Some(&format!("{doc}: {pattern} -> {policy}")),
        || json!({ "doc": doc, "pattern": pattern, "policy": policy.to_string() }),
    )?;
    Ok(())
}

pub fn list(store: &Store, out: &Output, doc: &str) -> anyhow::Result<()> {
    let table = store.policies(doc)?;
    if out.is_json() {
        let rules: Vec<Value> = table
            .rules()
            .map(|(pattern, policy)| json!({ "pattern": pattern, "policy": policy.to_string() }))
            .collect();
        output::line(&Value::Array(rules))?;
    } else {
        for (pattern, policy) in table.rules() {
            output::line(&format_args!("{pattern}  {policy}"))?;
        }
    }
    Ok(())
}

fn hlc_json(hlc: &Hlc) -> Value {
    json!({ "ms": hlc.ms, "counter": hlc.counter, "origin": hlc.origin })
}

/// `get --all`: every value at PATH, oldest first.
pub fn get_all(store: &Store, out: &Output, doc: &str, path: &str) -> anyhow::Result<()> {
    let versions = store.get_all(doc, path)?;
    if versions.is_empty() {
        if store.doc_kind(doc)?.is_none() {
            return Err(concord_core::Error::NoSuchDoc(doc.to_string()).into());
        }
        return Err(anyhow::anyhow!("nothing at {path:?} in document {doc:?}"));
    }
    if out.is_json() {
        let all: Vec<Value> = versions
            .iter()
            .map(|ValueVersion { value, hlc }| {
                json!({
                    "value": value,
                    "origin": hlc.as_ref().map(|h| h.origin.clone()),
                    "hlc": hlc.as_ref().map(hlc_json),
                })
            })
            .collect();
        output::line(&Value::Array(all))?;
    } else {
        for ValueVersion { value, hlc } in &versions {
            match hlc {
                Some(h) => output::line(&format_args!(
                    "{value}  (from {} at {}.{})",
                    output::short(&h.origin),
                    h.ms,
                    h.counter
                ))?,
                None => output::line(value)?,
            }
        }
    }
    Ok(())
}

pub fn resolve(
    store: &Store,
    out: &Output,
    doc: &str,
    path: &str,
    value: &str,
) -> anyhow::Result<()> {
    let value = parse_value(value);
    let before = store.get_all(doc, path)?.len();
    store
        .resolve(doc, path, value)
        .with_context(|| format!("cannot resolve {path:?} in {doc:?}"))?;
    out.result(
        Some(&format!("resolved {path} ({before} value(s) superseded)")),
        || json!({ "ok": true, "doc": doc, "path": path, "superseded": before, "pending": store.pending(doc).unwrap_or(0) }),
    )?;
    Ok(())
}

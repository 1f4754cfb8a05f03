//! Damaged stores: `concord check` (alias `doctor`), and the hint every other command adds
//! to its error when it hits damaged data.
//!
//! `check` runs `Store::check` (SQLite's integrity check plus a load of every document),
//! prints each problem, and says how to recover: restore the file from a backup, or
//! re-sync into a fresh store (the relay holds every acknowledged update); the documents
//! with unsynced local edits are listed, as those edits exist only in this file.

use std::path::Path;

use anyhow::anyhow;
use concord_core::native_client::ClientError;
use concord_core::store::{is_corruption, CheckReport, Problem, ProblemKind};
use concord_core::{Error as CoreError, Store};
use serde_json::{json, Map, Value};

use crate::output::{self, Output};

/// `concord check`: prints the report; fails (exit 1) when anything is wrong.
pub fn run(store: &Store, out: &Output, db: &Path) -> anyhow::Result<()> {
    let report = store.check()?;
    print(out, db, &report)?;
    if report.is_ok() {
        Ok(())
    } else {
        Err(damaged(db, &report))
    }
}

/// `concord check` on a file SQLite cannot even open as a database: the report is that.
pub fn unopenable(out: &Output, db: &Path, err: &CoreError) -> anyhow::Result<()> {
    let report = CheckReport {
        docs: 0,
        problems: vec![Problem {
            doc: None,
            kind: ProblemKind::Database,
            detail: format!("cannot open the file: {err}"),
        }],
        unsynced: None,
    };
    print(out, db, &report)?;
    Err(damaged(db, &report))
}

fn print(out: &Output, db: &Path, report: &CheckReport) -> std::io::Result<()> {
    if out.is_json() {
        let problems: Vec<Value> = report
            .problems
            .iter()
            .map(|p| json!({ "doc": p.doc, "kind": p.kind.as_str(), "detail": p.detail }))
            .collect();
        // `null` when the outbox cannot be read.
        let unsynced = report.unsynced.as_ref().map(|docs| {
            docs.iter()
                .map(|(doc, n)| (doc.clone(), json!(n)))
                .collect::<Map<String, Value>>()
        });
        return output::line(&json!({
            "ok": report.is_ok(),
            "file": db.display().to_string(),
            "docs": report.docs,
            "problems": problems,
            "unsynced": unsynced,
        }));
    }
    if report.is_ok() {
        let pending: usize = report.unsynced.iter().flatten().map(|(_, n)| n).sum();
        return output::line(&format_args!(
            "ok: {} document{}, no problems ({pending} local update{} not yet synced)",
            report.docs,
            if report.docs == 1 { "" } else { "s" },
            if pending == 1 { "" } else { "s" },
        ));
    }
    let mut text = format!(
        "{} is damaged: {} problem(s) in {} document(s) checked",
        db.display(),
        report.problems.len(),
        report.docs
    );
    for p in &report.problems {
        text.push_str(&format!("\n  {p}"));
    }
    match &report.unsynced {
        None => text.push_str("\nunsynced local edits: unknown (the outbox cannot be read)"),
        Some(docs) if docs.is_empty() => {}
        Some(docs) => {
            text.push_str("\nunsynced local edits (only in this file, at risk):");
            for (doc, n) in docs {
                text.push_str(&format!("\n  {doc}: {n} update(s)"));
            }
        }
    }
    output::line(&text)
}

/// How many documents with unsynced edits the error message names (all are printed above).
const AT_RISK_NAMED: usize = 5;

/// The error `check` exits with: what is wrong, and what to do.
fn damaged(db: &Path, report: &CheckReport) -> anyhow::Error {
    let db = db.display();
    let mut docs: Vec<&str> = report
        .problems
        .iter()
        .filter_map(|p| p.doc.as_deref())
        .collect();
    docs.sort_unstable();
    docs.dedup();
    let whole_file = report
        .problems
        .iter()
        .any(|p| p.kind == ProblemKind::Database);
    let what = match (whole_file, docs.as_slice()) {
        (true, _) => "the SQLite file itself is damaged".to_string(),
        (false, [doc]) => format!("document {doc:?} does not load"),
        (false, docs) => format!("{} documents do not load", docs.len()),
    };
    let at_risk = match &report.unsynced {
        None => "the unsynced local edits cannot be listed (the outbox does not read) and are \
                 at risk"
            .to_string(),
        Some(docs) if docs.is_empty() => "no unsynced local edits are recorded".to_string(),
        Some(docs) => {
            let mut list: Vec<String> = docs
                .iter()
                .take(AT_RISK_NAMED)
                .map(|(doc, n)| format!("{doc} ({n})"))
                .collect();
            if docs.len() > AT_RISK_NAMED {
                list.push(format!("{} more listed above", docs.len() - AT_RISK_NAMED));
            }
            format!(
                "unsynced local edits are at risk in: {} (copy what still reads with \
                 `concord show`)",
                list.join(", ")
            )
        }
    };
    anyhow!(
        "the store {db} is corrupt: {what} ({} problem(s), listed above). Restore {db} from a \
         backup, or move it aside and re-sync into a fresh store (`concord --db NEW.db sync`): \
         the relay holds every acknowledged update; {at_risk}",
        report.problems.len()
    )
}

/// When `err` comes from damaged data in the store, replaces it with a message naming the
/// file and suggesting `concord check`. `doc` is the document the command used, if any.
/// `stored_only`: the command read only stored data, so an update that does not decode
/// came from the file (not from the relay).
pub fn explain(
    err: anyhow::Error,
    db: &Path,
    doc: Option<&str>,
    stored_only: bool,
) -> anyhow::Error {
    let Some(core) = core_error(&err) else {
        return err;
    };
    let doc_level = matches!(
        core,
        CoreError::Corrupt(_) | CoreError::InvalidUpdate { .. }
    );
    if !(is_corruption(core) || stored_only && doc_level) {
        return err;
    }
    let db = db.display();
    let what = match (doc, core) {
        (Some(doc), CoreError::InvalidUpdate { kind, reason }) => {
            format!(
                "document {doc:?} does not load: its stored {kind} data does not decode: {reason}"
            )
        }
        (Some(doc), CoreError::Corrupt(_)) => format!("document {doc:?} does not load: {core}"),
        _ => core.to_string(),
    };
    anyhow!(
        "the store {db} is damaged ({what}); run `concord --db {db} check` for a full report \
         and how to recover"
    )
}

/// The engine error behind `err`, if any.
fn core_error(err: &anyhow::Error) -> Option<&CoreError> {
    err.chain().find_map(|cause| {
        cause
            .downcast_ref::<CoreError>()
            .or_else(|| match cause.downcast_ref::<ClientError>() {
                Some(ClientError::Store(e)) => Some(e),
                _ => None,
            })
    })
}

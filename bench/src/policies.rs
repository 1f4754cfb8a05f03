//! `concord-bench policies`: what conflict policies cost. On a document of 10,000 keys,
//! each written concurrently by two devices: a read of one key and of the whole document
//! resolved under last-writer-wins and a merge function, against the plain (CRDT) read;
//! and a last-writer-wins write against a plain put, one put per commit (durable on disk,
//! and on in-memory SQLite to show the engine's share).

use std::time::{Duration, Instant};

use anyhow::{ensure, Result};
use concord_core::{DocKind, Policy, Store, VersionVector};
use serde::Serialize;
use serde_json::json;

use crate::measure::Latency;
use crate::report::{self, Table};

#[derive(Debug, clap::Args)]
pub struct PoliciesArgs {
    /// Keys in the document
    #[arg(long, default_value_t = 10_000)]
    pub keys: usize,
    /// Single-key reads measured per case
    #[arg(long, default_value_t = 10_000)]
    pub reads: usize,
    /// Whole-document reads measured per case
    #[arg(long, default_value_t = 10)]
    pub whole: usize,
    /// Single-put commits measured per write case
    #[arg(long, default_value_t = 2_000)]
    pub writes: usize,
    /// Print results as JSON on stdout (tables go to stderr)
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Clone, Serialize)]
struct ReadOutcome {
    kind: DocKind,
    policy: String,
    key_read: Latency,
    whole_doc_ms: f64,
}

#[derive(Debug, Clone, Serialize)]
struct WriteOutcome {
    kind: DocKind,
    policy: String,
    storage: &'static str,
    commit: Latency,
    per_sec: f64,
}

fn key(kind: DocKind, i: usize) -> String {
    match kind {
        DocKind::Automerge => format!("k{i}"),
        DocKind::Yrs => format!("m/k{i}"),
    }
}

fn pattern(kind: DocKind) -> &'static str {
    match kind {
        DocKind::Automerge => "*",
        DocKind::Yrs => "m/*",
    }
}

/// Two in-memory devices that each wrote every key (1,000 puts per commit), merged: every
/// key holds two concurrent values. Returns one of them.
fn two_writer_doc(kind: DocKind, policy: &Option<Policy>, keys: usize) -> Result<Store> {
    let a = Store::open_in_memory()?;
    let b = Store::open_in_memory()?;
    a.create_doc("d", kind)?;
    if let Some(p) = policy {
        a.set_policy("d", pattern(kind), p)?;
    }
    b.create_doc("d", kind)?;
    b.apply_remote("d", &a.updates_missing_from("d", &VersionVector::new())?)?;
    for (store, base) in [(&a, 0i64), (&b, 1_000_000)] {
        for chunk in (0..keys).collect::<Vec<_>>().chunks(1_000) {
            store.transact("d", |tx| {
                chunk
                    .iter()
                    .try_for_each(|i| tx.put(&key(kind, *i), base + *i as i64))
            })?;
        }
    }
    a.apply_remote("d", &b.updates_missing_from("d", &a.version_vector("d")?)?)?;
    Ok(a)
}

fn label(policy: &Option<Policy>) -> String {
    policy
        .as_ref()
        .map_or("plain (crdt)".into(), |p| p.to_string())
}

fn reads(args: &PoliciesArgs) -> Result<Vec<ReadOutcome>> {
    let mut out = Vec::new();
    for kind in [DocKind::Automerge, DocKind::Yrs] {
        for policy in [None, Some(Policy::Lww), Some(Policy::Merge("max".into()))] {
            eprintln!("read: {kind} {}", label(&policy));
            let store = two_writer_doc(kind, &policy, args.keys)?;
            let expected = store.get("d", &key(kind, 7))?;
            if policy.is_some() {
                ensure!(
                    store.get_all("d", &key(kind, 7))?.len() == 2,
                    "two concurrent values"
                );
            }
            ensure!(expected.is_some(), "the key reads");
            let mut samples = Vec::with_capacity(args.reads);
            for n in 0..args.reads {
                let k = key(kind, (n * 7919) % args.keys);
                let start = Instant::now();
                let v = store.get("d", &k)?;
                samples.push(start.elapsed());
                ensure!(v.is_some(), "{k} reads");
            }
            let start = Instant::now();
            for _ in 0..args.whole {
                store.to_json("d")?;
            }
            let whole = start.elapsed() / args.whole.max(1) as u32;
            out.push(ReadOutcome {
                kind,
                policy: label(&policy),
                key_read: Latency::of(&mut samples),
                whole_doc_ms: whole.as_secs_f64() * 1e3,
            });
        }
    }
    Ok(out)
}

fn writes(args: &PoliciesArgs) -> Result<Vec<WriteOutcome>> {
    let dir = tempfile::tempdir()?;
    let mut out = Vec::new();
    for (storage, kind, policy) in [DocKind::Automerge, DocKind::Yrs]
        .into_iter()
        .flat_map(|k| [None, Some(Policy::Lww)].map(|p| (k, p)))
        .flat_map(|(k, p)| ["disk, durable", "in-memory SQLite"].map(|s| (s, k, p.clone())))
    {
        {
            eprintln!("write: {kind} {} {storage}", label(&policy));
            let store = if storage == "disk, durable" {
                Store::open(
                    dir.path()
                        .join(format!("{kind}-{}.db", label(&policy).len())),
                )?
            } else {
                Store::open_in_memory()?
            };
            store.create_doc("d", kind)?;
            if let Some(p) = &policy {
                store.set_policy("d", pattern(kind), p)?;
            }
            for chunk in (0..args.keys).collect::<Vec<_>>().chunks(1_000) {
                store.transact("d", |tx| {
                    chunk
                        .iter()
                        .try_for_each(|i| tx.put(&key(kind, *i), *i as i64))
                })?;
            }
            let mut samples: Vec<Duration> = Vec::with_capacity(args.writes);
            let start_all = Instant::now();
            for n in 0..args.writes {
                let k = key(kind, (n * 7919) % args.keys);
                let start = Instant::now();
                store.transact("d", |tx| tx.put(&k, -(n as i64)))?;
                samples.push(start.elapsed());
            }
            let wall = start_all.elapsed().as_secs_f64();
            out.push(WriteOutcome {
                kind,
                policy: label(&policy),
                storage,
                commit: Latency::of(&mut samples),
                per_sec: args.writes as f64 / wall,
            });
        }
    }
    Ok(out)
}

pub fn run(args: &PoliciesArgs) -> Result<()> {
    ensure!(
        args.keys >= 8 && args.reads >= 1 && args.writes >= 1,
        "sizes must be positive"
    );
    let read = reads(args)?;
    let write = writes(args)?;
    let mut t1 = Table::new(
        format!(
            "Resolved reads, {} keys, two concurrent values each (in-memory SQLite)",
            args.keys
        ),
        &["doc", "policy", "key read p50 µs", "p99 µs", "whole doc ms"],
    )
    .with_labels(2);
    for r in &read {
        t1.row(vec![
            r.kind.to_string(),
            r.policy.clone(),
            report::micros(r.key_read.p50_us),
            report::micros(r.key_read.p99_us),
            report::millis(r.whole_doc_ms / 1e3),
        ]);
    }
    let mut t2 = Table::new(
        format!("One put per commit, {} keys", args.keys),
        &[
            "doc",
            "policy",
            "storage",
            "commits/s",
            "commit p50 µs",
            "p99 µs",
        ],
    )
    .with_labels(3);
    for w in &write {
        t2.row(vec![
            w.kind.to_string(),
            w.policy.clone(),
            w.storage.to_string(),
            report::rate(w.per_sec),
            report::micros(w.commit.p50_us),
            report::micros(w.commit.p99_us),
        ]);
    }
    report::emit(
        &[t1, t2],
        &json!({ "reads": read, "writes": write }),
        args.json,
    );
    Ok(())
}

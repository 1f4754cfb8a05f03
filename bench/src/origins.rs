//! `concord-bench origins`: what one durable local commit costs on a document that already
//! holds updates from many other origins. Every device is an origin, and so is every
//! connection of a foreign (y-websocket, automerge-repo) client, so a popular document's
//! version vector keeps growing. The store first takes one update from each of N origins
//! (one character each, from a Yrs client of its own, applied as from a relay), then makes
//! single-character local commits, and reports their latency per N. The relay's side is
//! measured the same way: its storage (the state machine a cluster applies through) takes
//! the N origins' updates, then one device's single-character updates, one durable batch
//! each.

use std::time::Instant;

use anyhow::{ensure, Result};
use concord_core::{DocKind, Origin, Store, UpdateRecord};
use concord_server::config::ServerConfig;
use concord_server::storage::{ApplyOutcome, LogEntry, Storage};
use serde_json::json;
use yrs::{Text, Transact};

use crate::measure::Latency;
use crate::report::{self, Table};

#[derive(Debug, clap::Args)]
pub struct OriginsArgs {
    /// Other origins the document holds before the local commits (comma-separated counts)
    #[arg(long, value_delimiter = ',', default_value = "0,1000,10000,50000")]
    pub origins: Vec<usize>,
    /// Local commits measured per count
    #[arg(long, default_value_t = 200)]
    pub commits: usize,
    /// Print results as JSON on stdout (tables go to stderr)
    #[arg(long)]
    pub json: bool,
}

const DOC: &str = "popular";
const TEXT: &str = "t";
/// Updates per `apply_remote` while the document is filled.
const BATCH: usize = 5_000;

pub fn run(args: &OriginsArgs) -> Result<()> {
    let mut table = Table::new(
        "origins: one-character local commits (Yrs, on disk) on a document holding N other origins",
        &[
            "other origins",
            "commits",
            "device p50 µs",
            "device p99 µs",
            "device max µs",
            "relay p50 µs",
            "relay p99 µs",
            "relay max µs",
        ],
    );
    let mut runs = Vec::new();
    for &n in &args.origins {
        let device = measure(n, args.commits)?;
        let relay = measure_relay(n, args.commits)?;
        table.row(vec![
            report::thousands(n as u64),
            report::thousands(args.commits as u64),
            report::micros(device.p50_us),
            report::micros(device.p99_us),
            report::micros(device.max_us),
            report::micros(relay.p50_us),
            report::micros(relay.p99_us),
            report::micros(relay.max_us),
        ]);
        runs.push(json!({
            "origins": n,
            "commits": args.commits,
            "latency": device,
            "relay_latency": relay,
        }));
    }
    table.note(
        "Device: each commit is durable (SQLite WAL, synchronous=FULL). The other origins' \
         updates are applied first, as a device receives them from a relay (not timed).",
    );
    table.note(
        "Relay: the relay storage's apply of a batch of one update (one durable transaction, \
         the relay's default checkpoint interval), after it stored the other origins' updates \
         (not timed); the cost a relay or cluster node pays per stored batch on that document.",
    );
    report::emit(&[table], &json!({ "runs": runs }), args.json);
    Ok(())
}

/// The latency of `commits` local commits on a document holding `others` other origins.
fn measure(others: usize, commits: usize) -> Result<Latency> {
    let dir = tempfile::tempdir()?;
    let store = Store::open(dir.path().join("store.db"))?;
    store.create_doc(DOC, DocKind::Yrs)?;
    store.transact(DOC, |tx| tx.insert_text(TEXT, 0, "x"))?;
    let records: Vec<UpdateRecord> = (0..others).map(foreign_update).collect();
    for chunk in records.chunks(BATCH) {
        store.apply_remote(DOC, chunk)?;
    }
    ensure!(
        store.version_vector(DOC)?.len() == others + 1,
        "the document should hold {} origins",
        others + 1
    );
    let mut times = Vec::with_capacity(commits);
    for _ in 0..commits {
        let t = Instant::now();
        store.transact(DOC, |tx| tx.insert_text(TEXT, 0, "y"))?;
        times.push(t.elapsed());
    }
    ensure!(store.text_len(DOC, TEXT)? == 1 + others + commits);
    Ok(Latency::of(&mut times))
}

/// The latency of the relay storage applying `batches` batches of one update each, from
/// one device typing, on a document holding `others` other origins.
fn measure_relay(others: usize, batches: usize) -> Result<Latency> {
    let dir = tempfile::tempdir()?;
    let mut storage = Storage::open(
        &dir.path().join("relay.db"),
        ServerConfig::default().checkpoint_every,
    )?;
    let append = |update: UpdateRecord| LogEntry::Append {
        doc_id: DOC.to_string(),
        update,
    };
    storage.apply_batch(&[LogEntry::CreateDoc {
        doc_id: DOC.to_string(),
        kind: DocKind::Yrs,
    }])?;
    let records: Vec<LogEntry> = (0..others).map(|i| append(foreign_update(i))).collect();
    for chunk in records.chunks(BATCH) {
        storage.apply_batch(chunk)?;
    }
    let typist = yrs::Doc::with_client_id(7);
    let text = typist.get_or_insert_text(TEXT);
    let device = Origin::from("device-typing");
    let mut times = Vec::with_capacity(batches);
    for seq in 1..=batches as u64 {
        let data = {
            let mut txn = typist.transact_mut();
            text.insert(&mut txn, 0, "y");
            txn.encode_update_v1()
        };
        let entry = append(UpdateRecord {
            origin: device.clone(),
            seq,
            data,
        });
        let t = Instant::now();
        let outcomes = storage.apply_batch(std::slice::from_ref(&entry))?;
        times.push(t.elapsed());
        ensure!(
            matches!(outcomes.as_slice(), [ApplyOutcome::Appended { .. }]),
            "the relay should store update {seq}: {outcomes:?}"
        );
    }
    let head = storage.head(DOC).expect("the document exists");
    ensure!(head.version.len() == others + 1 && head.version.get(&device) == batches as u64);
    Ok(Latency::of(&mut times))
}

/// One character typed by client `i`, as origin `i` (a foreign connection's id is about
/// 30 bytes).
fn foreign_update(i: usize) -> UpdateRecord {
    let doc = yrs::Doc::with_client_id(1_000 + i as u64);
    let text = doc.get_or_insert_text(TEXT);
    let mut txn = doc.transact_mut();
    text.insert(&mut txn, 0, "a");
    UpdateRecord {
        origin: Origin::from(format!("yjs-{i:012}-{:012x}", i * 7_919)),
        seq: 1,
        data: txn.encode_update_v1(),
    }
}

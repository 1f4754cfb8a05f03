//! `concord-bench origins`: what one durable local commit costs on a document that already
//! holds updates from many other origins. Every device is an origin, and so is every
//! connection of a foreign (y-websocket, automerge-repo) client, so a popular document's
//! version vector keeps growing. The store first takes one update from each of N origins
//! (one character each, from a Yrs client of its own, applied as from a relay), then makes
//! single-character local commits, and reports their latency per N.

use std::time::Instant;

use anyhow::{ensure, Result};
use concord_core::{DocKind, Origin, Store, UpdateRecord};
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
        &["other origins", "commits", "p50 µs", "p99 µs", "max µs"],
    );
    let mut runs = Vec::new();
    for &n in &args.origins {
        let latency = measure(n, args.commits)?;
        table.row(vec![
            report::thousands(n as u64),
            report::thousands(args.commits as u64),
            report::micros(latency.p50_us),
            report::micros(latency.p99_us),
            report::micros(latency.max_us),
        ]);
        runs.push(json!({ "origins": n, "commits": args.commits, "latency": latency }));
    }
    table.note(
        "Each commit is durable (SQLite WAL, synchronous=FULL). The other origins' updates \
         are applied first, as a device receives them from a relay (not timed).",
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

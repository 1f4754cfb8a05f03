//! `concord-bench commit`: local commit throughput of a Concord [`Store`] with durability
//! on (SQLite WAL, synchronous=FULL), one edit per commit and batches of edits per commit,
//! on Automerge and Yrs documents; plus the same single-edit runs on an in-memory SQLite
//! database, to separate the cost of the disk from the cost of the engine.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{ensure, Result};
use concord_core::{DocKind, DocTxn, Store};
use serde::Serialize;
use serde_json::{json, Value};

use crate::measure::{Latency, Span, SqliteFiles};
use crate::report::{self, Table};

#[derive(Debug, clap::Args)]
pub struct CommitArgs {
    /// Edits in each one-edit-per-commit run
    #[arg(long, default_value_t = 10_000)]
    pub edits: usize,
    /// Edits per commit in the batched runs
    #[arg(long, default_value_t = 100)]
    pub batch: usize,
    /// Edits in each batched run
    #[arg(long, default_value_t = 50_000)]
    pub batch_edits: usize,
    /// Skip the in-memory (no disk) comparison runs
    #[arg(long)]
    pub no_memory: bool,
    /// Directory for the temporary stores [default: the system temp dir]
    #[arg(long)]
    pub tmp_dir: Option<PathBuf>,
    /// Print results as JSON on stdout (tables go to stderr)
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Clone, Copy, Serialize)]
#[serde(rename_all = "kebab-case")]
enum Op {
    /// Type one character at the end of a text.
    TextInsert,
    /// Set one of 1,000 keys of a map to a number.
    MapPut,
}

/// Number of distinct keys the map edits cycle through.
const MAP_KEYS: usize = 1_000;
const DOC: &str = "bench";

impl Op {
    fn label(self) -> &'static str {
        match self {
            Op::TextInsert => "text insert (1 char)",
            Op::MapPut => "map put",
        }
    }

    /// Makes edit number `i`.
    fn edit(self, tx: &mut DocTxn<'_>, i: usize) -> concord_core::Result<()> {
        match self {
            Op::TextInsert => {
                let ch = char::from(b'a' + (i % 26) as u8).to_string();
                tx.insert_text("text", i, &ch)
            }
            Op::MapPut => tx.put(&format!("m/k{}", i % MAP_KEYS), i as i64),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
enum Backing {
    Disk,
    Memory,
}

#[derive(Debug, Clone, Serialize)]
struct Case {
    kind: DocKind,
    op: Op,
    backing: Backing,
    edits_per_commit: usize,
    edits: usize,
}

#[derive(Debug, Clone, Serialize)]
struct Outcome {
    #[serde(flatten)]
    case: Case,
    commits: usize,
    wall_secs: f64,
    cpu_secs: Option<f64>,
    commits_per_sec: f64,
    edits_per_sec: f64,
    commit_latency: Latency,
    /// Database files after closing the store (disk runs only).
    db_bytes: Option<u64>,
}

pub fn run(args: &CommitArgs) -> Result<()> {
    ensure!(
        args.edits >= 1 && args.batch >= 1,
        "--edits and --batch must be at least 1"
    );
    ensure!(
        args.batch_edits >= args.batch,
        "--batch-edits must be at least --batch"
    );
    let mut cases = Vec::new();
    let kinds = [DocKind::Automerge, DocKind::Yrs];
    let ops = [Op::TextInsert, Op::MapPut];
    for (per_commit, edits, backing) in [
        (1, args.edits, Backing::Disk),
        (args.batch, args.batch_edits, Backing::Disk),
        (1, args.edits, Backing::Memory),
    ] {
        if backing == Backing::Memory && args.no_memory {
            continue;
        }
        for kind in kinds {
            for op in ops {
                cases.push(Case {
                    kind,
                    op,
                    backing,
                    edits_per_commit: per_commit,
                    // Whole commits only.
                    edits: edits / per_commit * per_commit,
                });
            }
        }
    }
    let mut outcomes = Vec::new();
    for case in cases {
        eprintln!(
            "running {} {} on {:?}: {} edits, {} per commit",
            case.kind,
            case.op.label(),
            case.backing,
            case.edits,
            case.edits_per_commit
        );
        outcomes.push(run_case(case, args)?);
    }
    let data = json!({
        "benchmark": "commit",
        "store_options": "default (checkpoint every 256 updates)",
        "runs": outcomes,
    });
    report::emit(&[table(&outcomes)], &data, args.json);
    Ok(())
}

fn run_case(case: Case, args: &CommitArgs) -> Result<Outcome> {
    let dir = match &args.tmp_dir {
        Some(d) => tempfile::Builder::new()
            .prefix("concord-bench-commit")
            .tempdir_in(d)?,
        None => tempfile::Builder::new()
            .prefix("concord-bench-commit")
            .tempdir()?,
    };
    let db = dir.path().join("store.db");
    let store = match case.backing {
        Backing::Disk => Store::open(&db)?,
        Backing::Memory => Store::open_in_memory()?,
    };
    store.create_doc(DOC, case.kind)?;
    if let (Op::MapPut, DocKind::Automerge) = (case.op, case.kind) {
        // Automerge puts need the parent map; Yrs creates the root map "m" on first use.
        store.transact(DOC, |tx| tx.put("m", json!({})))?;
    }
    let commits = case.edits / case.edits_per_commit;
    let mut latencies: Vec<Duration> = Vec::with_capacity(commits);
    let mut i = 0;
    let span = Span::start();
    for _ in 0..commits {
        let t = Instant::now();
        store.transact(DOC, |tx| {
            for _ in 0..case.edits_per_commit {
                case.op.edit(tx, i)?;
                i += 1;
            }
            Ok(())
        })?;
        latencies.push(t.elapsed());
    }
    let elapsed = span.stop();
    verify(&store, &case)?;
    drop(store);
    let wall = elapsed.wall.as_secs_f64();
    Ok(Outcome {
        commits,
        wall_secs: wall,
        cpu_secs: elapsed.cpu.map(|d| d.as_secs_f64()),
        commits_per_sec: commits as f64 / wall,
        edits_per_sec: case.edits as f64 / wall,
        commit_latency: Latency::of(&mut latencies),
        db_bytes: (case.backing == Backing::Disk).then(|| SqliteFiles::of(&db).total()),
        case,
    })
}

/// Checks the edits landed: the text has one character per edit, the map has its keys.
fn verify(store: &Store, case: &Case) -> Result<()> {
    match case.op {
        Op::TextInsert => {
            let text = store.get(DOC, "text")?;
            let len = text.as_ref().and_then(Value::as_str).map_or(0, |s| s.len());
            ensure!(
                len == case.edits,
                "expected {} chars, found {len}",
                case.edits
            );
        }
        Op::MapPut => {
            let map = store.get(DOC, "m")?;
            let keys = map
                .as_ref()
                .and_then(Value::as_object)
                .map_or(0, |m| m.len());
            let want = case.edits.min(MAP_KEYS);
            ensure!(keys == want, "expected {want} keys, found {keys}");
            let last = case.edits - 1;
            let value = store.get(DOC, &format!("m/k{}", last % MAP_KEYS))?;
            ensure!(
                value.as_ref().and_then(Value::as_f64) == Some(last as f64),
                "expected the last put ({last}), found {value:?}"
            );
        }
    }
    Ok(())
}

fn table(outcomes: &[Outcome]) -> Table {
    let mut t = Table::new(
        "Local commits (Store::transact)",
        &[
            "doc",
            "edit",
            "storage",
            "edits/commit",
            "edits",
            "wall s",
            "CPU s",
            "commits/s",
            "edits/s",
            "commit p50 µs",
            "p99 µs",
            "max ms",
            "db size",
        ],
    )
    .with_labels(3);
    for o in outcomes {
        let c = &o.case;
        t.row(vec![
            c.kind.to_string(),
            c.op.label().to_string(),
            match c.backing {
                Backing::Disk => "disk, durable".into(),
                Backing::Memory => "in-memory SQLite".into(),
            },
            c.edits_per_commit.to_string(),
            report::thousands(c.edits as u64),
            report::secs(o.wall_secs),
            report::cpu_secs(o.cpu_secs),
            report::rate(o.commits_per_sec),
            report::rate(o.edits_per_sec),
            report::micros(o.commit_latency.p50_us),
            report::micros(o.commit_latency.p99_us),
            report::millis(o.commit_latency.max_us / 1e6),
            o.db_bytes.map(report::bytes).unwrap_or_else(|| "-".into()),
        ]);
    }
    t.note(
        "disk, durable: a fresh store file in a temp dir (SQLite WAL, synchronous=FULL): \
         every commit is fsynced before Store::transact returns. in-memory SQLite: the same \
         engine with no disk, to show what the durability costs.",
    );
    t.note(
        "text insert types one character at the end of the text; map put sets one of 1,000 \
         keys to a number. Default StoreOptions: a checkpoint every 256 updates (its cost \
         shows in the max column).",
    );
    t.note("db size: database + WAL + shared-memory files after the store is closed.");
    t
}

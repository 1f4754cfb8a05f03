//! `concord-bench cluster-latency`: commit latency (one writer, one update in flight, its
//! `Ack` awaited) of a standalone relay and of 1-, 3- and 5-node clusters under each write
//! concern, through the leader and through a follower (which forwards to the leader), next
//! to this machine's floor measured in the same run: fsync latency, loopback TCP round trip
//! and the relay's protocol `Ping` round trip. Clients connect to the nodes' own client
//! ports and nodes dial each other directly: no proxy on any path.

use concord_testkit::cluster::WriteConcern;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use concord_core::DocKind;
use serde_json::json;

use crate::floor;
use crate::measure::{self, Latency};
use crate::pregen::{self, Pregenerated};
use crate::raw_client::RawClient;
use crate::report::{self, Table};
use crate::setup::{Running, Setup};

#[derive(Debug, clap::Args)]
pub struct LatencyArgs {
    /// Cluster sizes (a standalone relay is always measured too)
    #[arg(long, value_delimiter = ',', default_value = "1,3,5")]
    pub nodes: Vec<u64>,
    /// Write concerns: majority, all, leader
    #[arg(long, value_delimiter = ',', default_value = "majority,all,leader")]
    pub concerns: Vec<WriteConcern>,
    /// Timed writes per row (after `--warmup` untimed ones)
    #[arg(long, default_value_t = 500)]
    pub writes: usize,
    #[arg(long, default_value_t = 20)]
    pub warmup: usize,
    /// Samples of each floor measurement (fsync, TCP round trip) and of relay pings
    #[arg(long, default_value_t = 500)]
    pub floor_samples: usize,
    /// Document kind written: automerge (counter increments) or yrs (text inserts)
    #[arg(long, default_value = "automerge")]
    pub kind: DocKind,
    /// Print results as JSON on stdout
    #[arg(long)]
    pub json: bool,
}

pub fn run(args: &LatencyArgs) -> Result<()> {
    if args.writes == 0 || args.floor_samples == 0 {
        bail!("--writes and --floor-samples must be at least 1");
    }
    if let Some(bad) = args.nodes.iter().find(|&&n| n == 0 || n > 7) {
        bail!("--nodes {bad}: 1 to 7");
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    runtime.block_on(run_async(args))
}

/// One measured row.
#[derive(Debug, Clone, serde::Serialize)]
struct Row {
    setup: String,
    concern: String,
    via: &'static str,
    writes: usize,
    commit: Latency,
    ping: Latency,
    leader_stable: bool,
    load: String,
    /// fsync (4 KiB overwrite + fdatasync) measured just before this setup's rows.
    fsync: Latency,
    /// Why the row has no figures.
    error: Option<String>,
}

impl Row {
    fn failed(error: String) -> Row {
        Row {
            setup: String::new(),
            concern: String::new(),
            via: "",
            writes: 0,
            commit: Latency::default(),
            ping: Latency::default(),
            leader_stable: true,
            load: measure::load_average(),
            fsync: Latency::default(),
            error: Some(error),
        }
    }
}

async fn run_async(args: &LatencyArgs) -> Result<()> {
    let limit = Duration::from_secs(30);
    let n = args.warmup + args.writes;
    // Two documents, written through the leader and through a follower; the same updates
    // go to every setup (each starts empty).
    let sets = [
        pregen::updates("latency-leader", args.kind, n)?,
        pregen::updates("latency-follower", args.kind, n)?,
    ];
    let mut setups = vec![Setup::Standalone];
    for &nodes in &args.nodes {
        for concern in &args.concerns {
            setups.push(Setup::Cluster {
                nodes,
                concern: *concern,
            });
        }
    }

    // The floor before the commits (in the system temp dir, where testkit puts the nodes'
    // data dirs) and again after them.
    let samples = args.floor_samples;
    let before_load = measure::load_average();
    let before =
        tokio::task::spawn_blocking(move || floor::measure(&std::env::temp_dir(), samples))
            .await??;
    let mut rows = Vec::new();
    for setup in &setups {
        let running = Running::start(setup)
            .await
            .with_context(|| format!("starting {setup} ({})", setup.concern()))?;
        // fsync right now, the setup idle: the disk's latency moves with the machine's load.
        let fsync = tokio::task::spawn_blocking(move || {
            floor::measure_fsync(&std::env::temp_dir(), samples.min(100))
        })
        .await??;
        let mut targets = vec![("leader", running.leader, &sets[0])];
        if let Some(&f) = running.followers.first() {
            targets.push(("follower", f, &sets[1]));
        }
        for (via, node, set) in targets {
            // A failed row is recorded with the node's log tail, and the run goes on.
            let row = match measure_row(&running, node, set, args, limit).await {
                Ok(row) => row,
                Err(e) => {
                    eprintln!(
                        "{setup} ({}) via {via} failed: {e:#}\nnode {node}'s log tail:\n{}",
                        setup.concern(),
                        running.cluster.log_tail(node)
                    );
                    Row::failed(format!("{e:#}"))
                }
            };
            let leader_stable = running.same_leader().await;
            let row = Row {
                setup: setup.to_string(),
                concern: setup.concern().to_string(),
                via,
                leader_stable,
                fsync,
                ..row
            };
            if row.error.is_some() {
                rows.push(row);
                continue;
            }
            eprintln!(
                "{} ({}) via {}: p50 {} µs, p99 {} µs (load {})",
                row.setup,
                row.concern,
                row.via,
                report::micros(row.commit.p50_us),
                report::micros(row.commit.p99_us),
                row.load
            );
            rows.push(row);
        }
        drop(running);
    }

    let after_load = measure::load_average();
    let after = tokio::task::spawn_blocking(move || floor::measure(&std::env::temp_dir(), samples))
        .await??;

    let mut commits = Table::new(
        format!(
            "commit latency: one writer, one update in flight, Ack awaited ({} timed {} writes per row)",
            args.writes, args.kind
        ),
        &[
            "setup",
            "write concern",
            "client on",
            "p50 µs",
            "p99 µs",
            "max µs",
            "ping p50 µs",
            "fsync p50 µs",
            "fsync p99 µs",
            "load avg",
        ],
    )
    .with_labels(3);
    let mut failures = Vec::new();
    for r in &rows {
        if let Some(error) = &r.error {
            let mut cells = vec![r.setup.clone(), r.concern.clone(), r.via.to_string()];
            // The code only; the whole message is in a note and the JSON.
            let code = error
                .split("relay error ")
                .nth(1)
                .and_then(|e| e.split(':').next())
                .unwrap_or("error");
            cells.push(format!("failed ({code})"));
            failures.push(format!(
                "{} ({}) via {}: {error}",
                r.setup, r.concern, r.via
            ));
            cells.extend(std::iter::repeat_n("-".to_string(), 5));
            cells.push(r.load.clone());
            commits.row(cells);
            continue;
        }
        commits.row(vec![
            r.setup.clone(),
            r.concern.clone(),
            r.via.to_string()
                + if r.leader_stable {
                    ""
                } else {
                    " (leader changed)"
                },
            report::micros(r.commit.p50_us),
            report::micros(r.commit.p99_us),
            report::micros(r.commit.max_us),
            report::micros(r.ping.p50_us),
            report::micros(r.fsync.p50_us),
            report::micros(r.fsync.p99_us),
            r.load.clone(),
        ]);
    }
    for f in failures {
        commits.note(format!("failed: {f}"));
    }
    commits.note(
        "ping: a protocol Ping/Pong round trip on the same WebSocket to the same node (no storage); \
         fsync: 100 x (4 KiB overwrite + fdatasync) in the data dirs' file system just before the setup's rows",
    );
    let mut floor_table = Table::new(
        format!("this machine's floor, same run ({samples} samples each)"),
        &["when", "measure", "p50 µs", "p99 µs", "max µs", "load avg"],
    )
    .with_labels(2);
    for (when, floor, load) in [
        ("before", &before, &before_load),
        ("after", &after, &after_load),
    ] {
        for (name, l) in [
            ("fsync: 4 KiB append + fdatasync", floor.fsync_append),
            ("fsync: 4 KiB overwrite + fdatasync", floor.fsync_overwrite),
            ("loopback TCP round trip (64 B)", floor.tcp_rtt),
        ] {
            floor_table.row(vec![
                when.to_string(),
                name.to_string(),
                report::micros(l.p50_us),
                report::micros(l.p99_us),
                report::micros(l.max_us),
                load.clone(),
            ]);
        }
    }
    floor_table.note(format!(
        "quorum-commit floor ≈ one fsync + one round trip ≈ {} µs (before; p50s of overwrite fsync + TCP)",
        report::micros(before.fsync_overwrite.p50_us + before.tcp_rtt.p50_us)
    ));
    report::emit(
        &[commits, floor_table],
        &json!({
            "kind": args.kind.to_string(),
            "writes": args.writes,
            "rows": rows,
            "floor_before": before,
            "floor_before_load": before_load,
            "floor_after": after,
            "floor_after_load": after_load,
        }),
        args.json,
    );
    Ok(())
}

/// Pings, then the warm-up writes, then the timed writes, on one connection to `node`.
async fn measure_row(
    running: &Running,
    node: u64,
    set: &Pregenerated,
    args: &LatencyArgs,
    limit: Duration,
) -> Result<Row> {
    let mut client = RawClient::connect(&running.url(node)?, &set.origin, limit).await?;
    client.subscribe(&set.doc, set.kind).await?;
    let mut pings = Vec::with_capacity(args.floor_samples);
    for _ in 0..args.floor_samples.min(200) {
        pings.push(client.ping().await?);
    }
    let load = measure::load_average();
    let mut times = Vec::with_capacity(args.writes);
    for (i, update) in set.updates.iter().enumerate() {
        let t = Instant::now();
        client.write(&set.doc, update).await?;
        if i >= args.warmup {
            times.push(t.elapsed());
        }
    }
    client.close().await;
    Ok(Row {
        setup: String::new(),
        concern: String::new(),
        via: "",
        writes: times.len(),
        commit: Latency::of(&mut times),
        ping: Latency::of(&mut pings),
        leader_stable: true,
        load,
        fsync: Latency::default(),
        error: None,
    })
}

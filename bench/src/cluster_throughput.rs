//! `concord-bench cluster-throughput`: N concurrent writers (raw protocol clients, one
//! document each, one update in flight each) for S seconds through a standalone relay
//! versus a 3-node cluster with the writers spread over the leader and the followers
//! (followers forward to the leader; concurrent writes share log entries and fsyncs).
//! Reports updates/s acknowledged and, per node process, CPU seconds used during the
//! window and peak RSS (from `/proc/<pid>/stat` and `status`). The same pre-generated
//! updates are sent to each setup.

use concord_testkit::cluster::WriteConcern;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use concord_core::DocKind;
use serde_json::json;
use tokio::sync::Barrier;

use crate::measure::{self, Latency};
use crate::pregen::{self, Pregenerated};
use crate::raw_client::RawClient;
use crate::report::{self, Table};
use crate::setup::{Running, Setup};

#[derive(Debug, clap::Args)]
pub struct ThroughputArgs {
    /// Concurrent writers (a list runs each count)
    #[arg(long, value_delimiter = ',', default_value = "16")]
    pub writers: Vec<usize>,
    /// Seconds each setup is written to
    #[arg(long, default_value_t = 10)]
    pub secs: u64,
    /// Nodes of the cluster compared with the standalone relay
    #[arg(long, default_value_t = 3)]
    pub nodes: u64,
    /// The cluster's write concern
    #[arg(long, default_value = "majority")]
    pub concern: WriteConcern,
    /// Updates generated beforehand per writer count, shared out over its writers; a
    /// writer that runs out stops early (reported)
    #[arg(long, default_value_t = 48_000)]
    pub budget: usize,
    /// At most this many updates per writer (generating one long document is slow)
    #[arg(long, default_value_t = 6_000)]
    pub max_per_writer: usize,
    /// Document kind written: automerge (counter increments) or yrs (text inserts)
    #[arg(long, default_value = "automerge")]
    pub kind: DocKind,
    /// Print results as JSON on stdout
    #[arg(long)]
    pub json: bool,
}

pub fn run(args: &ThroughputArgs) -> Result<()> {
    if args.writers.contains(&0) || args.secs == 0 {
        bail!("--writers and --secs must be at least 1");
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    runtime.block_on(run_async(args))
}

/// One node process over the window.
#[derive(Debug, Clone, serde::Serialize)]
struct NodeUse {
    node: u64,
    role: &'static str,
    writers: usize,
    cpu_secs: Option<f64>,
    peak_rss_kib: Option<u64>,
}

/// One setup at one writer count.
#[derive(Debug, Clone, serde::Serialize)]
struct Row {
    setup: String,
    concern: String,
    writers: usize,
    acked: u64,
    secs: f64,
    per_sec: f64,
    commit: Latency,
    exhausted_writers: usize,
    leader_stable: bool,
    nodes: Vec<NodeUse>,
    bench_cpu_secs: Option<f64>,
    load: String,
}

/// What one writer did.
struct WriterResult {
    acked: u64,
    latencies: Vec<Duration>,
    exhausted: bool,
}

async fn run_async(args: &ThroughputArgs) -> Result<()> {
    let limit = Duration::from_secs(30);
    let window = Duration::from_secs(args.secs);
    let mut rows = Vec::new();
    for &writers in &args.writers {
        let per_writer = (args.budget / writers).clamp(1, args.max_per_writer.max(1));
        let sets = generate(writers, per_writer, args.kind)
            .await
            .context("generating updates")?;
        let sets = Arc::new(sets);
        for setup in [
            Setup::Standalone,
            Setup::Cluster {
                nodes: args.nodes,
                concern: args.concern,
            },
        ] {
            let row = run_setup(&setup, sets.clone(), window, limit)
                .await
                .with_context(|| format!("{setup} with {writers} writers"))?;
            eprintln!(
                "{} ({}), {} writers: {} updates/s acked (load {})",
                row.setup,
                row.concern,
                row.writers,
                report::rate(row.per_sec),
                row.load
            );
            rows.push(row);
        }
    }

    let mut table = Table::new(
        format!(
            "throughput: N writers, one {} update in flight each, {} s per row",
            args.kind, args.secs
        ),
        &[
            "setup",
            "concern",
            "writers",
            "acked",
            "updates/s",
            "ack p50 ms",
            "ack p99 ms",
            "per node: role writers CPU s peak RSS",
            "bench CPU s",
            "load avg",
        ],
    )
    .with_labels(3);
    for r in &rows {
        let nodes: Vec<String> = r
            .nodes
            .iter()
            .map(|n| {
                format!(
                    "n{} {} {}w {} {}",
                    n.node,
                    n.role,
                    n.writers,
                    report::cpu_secs(n.cpu_secs),
                    report::kib(n.peak_rss_kib)
                )
            })
            .collect();
        let mut note = String::new();
        if r.exhausted_writers > 0 {
            note.push_str(&format!(" ({} writers ran out)", r.exhausted_writers));
        }
        if !r.leader_stable {
            note.push_str(" (leader changed)");
        }
        table.row(vec![
            r.setup.clone(),
            r.concern.clone(),
            r.writers.to_string(),
            report::thousands(r.acked),
            report::rate(r.per_sec) + &note,
            report::millis(r.commit.p50_us / 1e6),
            report::millis(r.commit.p99_us / 1e6),
            nodes.join("; "),
            report::cpu_secs(r.bench_cpu_secs),
            r.load.clone(),
        ]);
    }
    table.note(
        "CPU s: user+system seconds each node process used during the window; peak RSS: its VmHWM; \
         bench CPU s: this process (all the clients) in the window",
    );
    report::emit(
        &[table],
        &json!({ "kind": args.kind.to_string(), "secs": args.secs, "rows": rows }),
        args.json,
    );
    Ok(())
}

/// `writers` documents of `per_writer` updates each, made on both cores.
async fn generate(writers: usize, per_writer: usize, kind: DocKind) -> Result<Vec<Pregenerated>> {
    let mut tasks = Vec::new();
    for w in 0..writers {
        tasks.push(tokio::task::spawn_blocking(move || {
            pregen::updates(&format!("throughput-{w}"), kind, per_writer)
        }));
    }
    let mut sets = Vec::new();
    for t in tasks {
        sets.push(t.await??);
    }
    Ok(sets)
}

async fn run_setup(
    setup: &Setup,
    sets: Arc<Vec<Pregenerated>>,
    window: Duration,
    limit: Duration,
) -> Result<Row> {
    let running = Running::start(setup).await?;
    let mut order = vec![running.leader];
    order.extend(&running.followers);
    let writers = sets.len();
    // Every writer connects and subscribes first; then all start together.
    let mut clients = Vec::new();
    for (w, set) in sets.iter().enumerate() {
        let node = order[w % order.len()];
        let mut c = RawClient::connect(&running.url(node)?, &set.origin, limit).await?;
        c.subscribe(&set.doc, set.kind).await?;
        clients.push(c);
    }
    let pids = running.pids();
    let barrier = Arc::new(Barrier::new(writers + 1));
    let mut tasks = Vec::new();
    for (w, mut client) in clients.into_iter().enumerate() {
        let (sets, barrier) = (sets.clone(), barrier.clone());
        tasks.push(tokio::spawn(async move {
            let set = &sets[w];
            barrier.wait().await;
            let start = Instant::now();
            let mut latencies = Vec::new();
            let mut exhausted = true;
            for update in &set.updates {
                if start.elapsed() >= window {
                    exhausted = false;
                    break;
                }
                let t = Instant::now();
                client.write(&set.doc, update).await?;
                latencies.push(t.elapsed());
            }
            client.close().await;
            anyhow::Ok(WriterResult {
                acked: latencies.len() as u64,
                latencies,
                exhausted,
            })
        }));
    }
    let load = measure::load_average();
    let cpu_before: Vec<Option<Duration>> = pids
        .iter()
        .map(|(_, pid)| measure::cpu_time_of(*pid))
        .collect();
    let bench_before = measure::cpu_time();
    barrier.wait().await;
    let start = Instant::now();
    let mut results = Vec::new();
    for t in tasks {
        results.push(t.await??);
    }
    let secs = start.elapsed().as_secs_f64();
    let bench_cpu = match (bench_before, measure::cpu_time()) {
        (Some(a), Some(b)) => Some(b.saturating_sub(a).as_secs_f64()),
        _ => None,
    };
    let mut nodes = Vec::new();
    for ((id, pid), before) in pids.iter().zip(cpu_before) {
        let cpu = match (before, measure::cpu_time_of(*pid)) {
            (Some(a), Some(b)) => Some(b.saturating_sub(a).as_secs_f64()),
            _ => None,
        };
        let position = order.iter().position(|n| n == id).unwrap_or(0);
        nodes.push(NodeUse {
            node: *id,
            role: if *id == running.leader {
                if running.followers.is_empty() && running.cluster.spec.standalone {
                    "relay"
                } else {
                    "leader"
                }
            } else {
                "follower"
            },
            writers: (0..writers).filter(|w| w % order.len() == position).count(),
            cpu_secs: cpu,
            peak_rss_kib: measure::peak_rss_kib_of(*pid),
        });
    }
    let leader_stable = running.same_leader().await;
    let acked: u64 = results.iter().map(|r| r.acked).sum();
    let mut all: Vec<Duration> = results.iter().flat_map(|r| r.latencies.clone()).collect();
    Ok(Row {
        setup: setup.to_string(),
        concern: setup.concern().to_string(),
        writers,
        acked,
        secs,
        per_sec: acked as f64 / secs,
        commit: Latency::of(&mut all),
        exhausted_writers: results.iter().filter(|r| r.exhausted).count(),
        leader_stable,
        nodes,
        bench_cpu_secs: bench_cpu,
        load,
    })
}

//! `concord-bench failover`: time from kill -9 of the leader to the first acknowledged write
//! on the new leader, over `--trials` kills of a cluster of real processes under
//! continuous writers (devices spread over the nodes, each writing every `--pause-ms`). Only writes committed on a device
//! after the kill count (an earlier one may have been acknowledged by the old leader just
//! before it died); acknowledgements are polled every 10 ms, which bounds the resolution.
//! The old leader restarts on its data between trials.

use concord_testkit::cluster::WriteConcern;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use concord_testkit::{settle, Cluster, ClusterSpec, WriterSpec, Writers};
use serde_json::json;

use crate::measure::Latency;
use crate::report::{self, Table};

#[derive(Debug, clap::Args)]
pub struct FailoverArgs {
    /// Kills of the leader
    #[arg(long, default_value_t = 20)]
    pub trials: usize,
    /// Nodes in the cluster (3 or 5)
    #[arg(long, default_value_t = 3)]
    pub nodes: u64,
    /// majority, all or leader
    #[arg(long, default_value = "majority")]
    pub write_concern: WriteConcern,
    /// Each device's pause between writes (ms). The default is a rate the devices keep up
    /// for all the trials on a 2-core machine: faster, and their own Automerge commits
    /// (each rebuilds its change from the document, so they cost more as it grows) fall
    /// behind, and the time measured becomes the outbox's backlog rather than the failover.
    #[arg(long, default_value_t = 50)]
    pub pause_ms: u64,
    /// Print results as JSON on stdout
    #[arg(long)]
    pub json: bool,
}

pub fn run(args: &FailoverArgs) -> Result<()> {
    if args.trials == 0 {
        bail!("--trials must be at least 1");
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    runtime.block_on(run_async(args))
}

async fn run_async(args: &FailoverArgs) -> Result<()> {
    let limit = Duration::from_secs(60);
    let spec = ClusterSpec::new(args.nodes).write_concern(args.write_concern);
    let election_ms = spec.settings.election_timeout_max_ms;
    let mut cluster = Cluster::start(spec).await?;
    let n = cluster.ids().len();
    let devices = 2 * n;
    let urls: Vec<Vec<String>> = (0..devices).map(|i| cluster.client_urls(i % n)).collect();
    let writers = Writers::start(
        &WriterSpec {
            devices,
            docs: 4,
            writes_per_device: u64::MAX,
            pause: Duration::from_millis(args.pause_ms),
        },
        |i| urls[i].clone(),
        limit,
    )
    .await?;
    let mut samples = Vec::new();
    for trial in 0..args.trials {
        let leader = cluster.wait_for_leader().await?;
        cluster.wait_caught_up().await?;
        let killed_at = writers.elapsed();
        let wall = Instant::now();
        cluster.kill9(leader)?;
        let acked_at = loop {
            if let Some(at) = writers.first_ack_of_write_after(killed_at) {
                break at;
            }
            if wall.elapsed() > limit {
                bail!(
                    "trial {trial}: no write acknowledged within {limit:?} of killing {leader} \
                     ({} of {devices} devices took a new origin); devices: {}",
                    writers.reoriginated(),
                    writers.client_states().join("\n")
                );
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        };
        let took = acked_at - killed_at;
        eprintln!(
            "trial {trial}: killed {leader}, first ack after {} ms",
            took.as_millis()
        );
        samples.push(took);
        cluster
            .restart(leader)
            .await
            .with_context(|| format!("restarting node {leader}"))?;
    }
    let report = settle(&mut cluster, writers, None, limit).await?;
    let latency = Latency::of(&mut samples);

    let mut table = Table::new(
        format!("failover: kill -9 of the leader to the first acknowledged write ({n} nodes)"),
        &[
            "trials",
            "p50 (ms)",
            "max (ms)",
            "election timeout",
            "devices write every",
        ],
    );
    table.row(vec![
        args.trials.to_string(),
        report::millis(latency.p50_us / 1e6),
        report::millis(latency.max_us / 1e6),
        format!("{election_ms} ms"),
        format!("{} ms", args.pause_ms),
    ]);
    table.note(format!("checker after the trials: {report}"));
    report::emit(
        &[table],
        &json!({
            "nodes": n,
            "trials": args.trials,
            "write_concern": args.write_concern.name(),
            "pause_ms": args.pause_ms,
            "p50_ms": latency.p50_us / 1e3,
            "max_ms": latency.max_us / 1e3,
            "election_timeout_max_ms": election_ms,
            "acked": report.acked,
            "lost_acked": report.lost_acked.len(),
            "divergent_nodes": report.divergent_nodes.len(),
            "ok": report.ok(),
        }),
        args.json,
    );
    if !report.ok() {
        bail!("the checker failed after the trials: {report}");
    }
    Ok(())
}

//! `concord-bench faults`: the long fault run. A cluster of real `concord-server` processes
//! (the binary next to this one, or `CONCORD_SERVER_BIN`) with a fault proxy on every link,
//! devices writing throughout, `--faults` nemeses picked from a seeded RNG, then heal,
//! converge and check. Prints faults injected, updates acknowledged, acknowledged updates
//! lost, and divergent nodes (under `--write-concern leader` a loss is measured, not a bug).

use concord_testkit::cluster::WriteConcern;
use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use concord_testkit::{
    settle, Cluster, ClusterSpec, Nemesis, Scheduler, Timing, WriterSpec, Writers,
};
use serde_json::json;

use crate::report::{self, Table};

#[derive(Debug, clap::Args)]
pub struct FaultsArgs {
    /// Nodes in the cluster (3 or 5)
    #[arg(long, default_value_t = 3)]
    pub nodes: u64,
    /// Faults to inject
    #[arg(long, default_value_t = 200)]
    pub faults: usize,
    /// Seed of the nemesis scheduler
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// majority, all or leader
    #[arg(long, default_value = "majority")]
    pub write_concern: WriteConcern,
    /// Writing devices
    #[arg(long, default_value_t = 4)]
    pub devices: usize,
    /// Run against one standalone relay instead (restart and link nemeses only)
    #[arg(long)]
    pub standalone: bool,
    /// Print results as JSON on stdout
    #[arg(long)]
    pub json: bool,
}

pub fn run(args: &FaultsArgs) -> Result<()> {
    if args.faults == 0 || args.devices == 0 {
        bail!("--faults and --devices must be at least 1");
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    runtime.block_on(run_async(args))
}

async fn run_async(args: &FaultsArgs) -> Result<()> {
    let spec = if args.standalone {
        ClusterSpec::standalone()
    } else {
        ClusterSpec::new(args.nodes).write_concern(args.write_concern)
    };
    let limit = Duration::from_secs(120);
    let started = Instant::now();
    let mut cluster = Cluster::start(spec).await?;
    let n = cluster.ids().len();
    let urls: Vec<Vec<String>> = (0..args.devices)
        .map(|i| cluster.client_urls(i % n))
        .collect();
    let writers = Writers::start(
        &WriterSpec {
            devices: args.devices,
            docs: 4,
            writes_per_device: u64::MAX,
            pause: Duration::from_millis(25),
        },
        |i| urls[i].clone(),
        limit,
    )
    .await?;
    let choices = if args.standalone {
        Nemesis::STANDALONE
    } else {
        Nemesis::CLUSTER
    };
    let reader = writers.start_reader(
        cluster.client_urls(0),
        Duration::from_millis(200),
        args.seed,
    );
    let timing = Timing::for_cluster(&cluster);
    let mut scheduler = Scheduler::new(args.seed, choices);
    // Bounded: at most ten seconds per fault on average.
    let faults = scheduler
        .run(
            &mut cluster,
            args.faults,
            &timing,
            Duration::from_secs(10) * args.faults as u32,
        )
        .await?;
    let report = settle(&mut cluster, writers, Some(reader), limit).await?;
    let secs = started.elapsed().as_secs_f64();
    let mut per_nemesis = std::collections::BTreeMap::<&str, usize>::new();
    for f in &faults {
        *per_nemesis.entry(f.nemesis.name()).or_default() += 1;
    }

    let mut table = Table::new("fault run", &["measure", "value"]);
    let rows: Vec<(&str, String)> = vec![
        ("nodes", n.to_string()),
        ("write concern", args.write_concern.to_string()),
        ("seed", args.seed.to_string()),
        ("faults injected", faults.len().to_string()),
        ("updates committed", report.committed.to_string()),
        ("updates acknowledged", report.acked.to_string()),
        (
            "acknowledged updates lost",
            report.lost_acked.len().to_string(),
        ),
        (
            "committed updates missing",
            report.missing_committed.to_string(),
        ),
        ("divergent nodes", report.divergent_nodes.len().to_string()),
        (
            "unconverged devices",
            report.unconverged_devices.len().to_string(),
        ),
        (
            "terms with two leaders",
            report.split_terms.len().to_string(),
        ),
        ("seconds", format!("{secs:.1}")),
    ];
    for (k, v) in &rows {
        table.row(vec![k.to_string(), v.clone()]);
    }
    eprintln!("faults by nemesis: {per_nemesis:?}");
    report::emit(
        &[table],
        &json!({
            "nodes": n,
            "write_concern": args.write_concern.name(),
            "seed": args.seed,
            "faults": faults.len(),
            "by_nemesis": per_nemesis,
            "committed": report.committed,
            "acked": report.acked,
            "lost_acked": report.lost_acked.len(),
            "missing_committed": report.missing_committed,
            "divergent_nodes": report.divergent_nodes,
            "unconverged_devices": report.unconverged_devices.len(),
            "split_terms": report.split_terms.len(),
            "reads": { "served": report.reads.0, "refused": report.reads.1, "failed": report.reads.2 },
            "stale_reads": report.stale_reads.len(),
            "seconds": secs,
            "ok": report.ok(),
        }),
        args.json,
    );
    if args.write_concern != WriteConcern::Leader && !report.ok() {
        bail!("the checker failed: {report}");
    }
    Ok(())
}

//! `concord-bench`: measures Concord — durable local commits (`commit`), the automerge-paper
//! editing trace against raw Automerge and Yrs (`trace`), and N client processes syncing
//! through one relay process (`sync`), what conflict policies cost (`policies`), a commit on
//! a document of many origins (`origins`), the long
//! fault run on a cluster (`faults`), failover time (`failover`), a cluster's commit
//! latency (`cluster-latency`) and throughput (`cluster-throughput`), and any y-websocket
//! server under load (`yjs-load`). Results are printed as
//! tables, or as JSON with
//! `--json`. See BENCHMARKS.md at the repository root for recorded results.

mod astral;
mod child;
mod cluster_latency;
mod cluster_throughput;
mod commit;
mod failover;
mod faults;
mod floor;
mod measure;
mod origins;
mod policies;
mod pregen;
mod raw_client;
mod report;
mod scenario;
mod setup;
mod sync;
mod sync_raw;
mod trace;
mod trace_data;
mod yjs_client;
mod yjs_load;

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use clap::{Parser, Subcommand};

use scenario::{Engine, Job};

#[derive(Parser)]
#[command(
    name = "concord-bench",
    about = "Benchmarks for the Concord sync engine"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Local commit throughput with durability on: one edit per commit, and batches
    Commit(commit::CommitArgs),
    /// Replay the automerge-paper editing trace: raw Automerge, raw Yrs, Concord stores
    Trace(trace::TraceArgs),
    /// N client processes x M edits on one document through one relay process
    Sync(sync::SyncArgs),
    /// Conflict policies: resolved reads (lww, merge) and LWW writes against plain ones
    Policies(policies::PoliciesArgs),
    /// Local commit latency on a document already holding updates from N other origins
    Origins(origins::OriginsArgs),
    /// The long fault run on a cluster of real processes: faults, acks, lost, divergent
    Faults(faults::FaultsArgs),
    /// Time from kill -9 of the leader to the first acknowledged write (p50, max)
    Failover(failover::FailoverArgs),
    /// Load any y-websocket server: N Yrs clients x M timestamped edits on D rooms
    YjsLoad(yjs_load::YjsLoadArgs),
    /// Commit latency (p50/p99) of 1/3/5 nodes per write concern vs a standalone relay,
    /// beside this machine's fsync latency and loopback round trip
    ClusterLatency(cluster_latency::LatencyArgs),
    /// N concurrent writers through a standalone relay vs a 3-node cluster: updates/s,
    /// CPU and peak RSS per node
    ClusterThroughput(cluster_throughput::ThroughputArgs),
    /// Internal: one measured step of `trace`, run in a child process
    #[command(subcommand, hide = true)]
    Child(ChildCommand),
}

#[derive(Subcommand)]
enum ChildCommand {
    /// Replay the trace into one engine; print an ApplyReport as JSON
    Apply {
        #[arg(long)]
        engine: Engine,
        #[arg(long)]
        compact: PathBuf,
        #[arg(long)]
        expected: PathBuf,
        #[arg(long)]
        txns: usize,
        #[arg(long)]
        batch: usize,
        #[arg(long)]
        dir: PathBuf,
    },
    /// Open what `apply` left in `dir`; print a LoadReport as JSON
    Load {
        #[arg(long)]
        engine: Engine,
        #[arg(long)]
        expected: PathBuf,
        #[arg(long)]
        dir: PathBuf,
        /// Only open and read (a repeated timing run): no acknowledgement and compaction
        #[arg(long)]
        read_only: bool,
    },
    /// Run a share of `yjs-load`'s clients; print a report as JSON
    YjsClients(yjs_client::ClientsArgs),
}

fn main() -> ExitCode {
    match run(Cli::parse().command) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("concord-bench: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(command: Command) -> Result<()> {
    match command {
        Command::Commit(args) => commit::run(&args),
        Command::Trace(args) => trace::run(&args),
        Command::Sync(args) => sync::run(&args),
        Command::Policies(args) => policies::run(&args),
        Command::Origins(args) => origins::run(&args),
        Command::Faults(args) => faults::run(&args),
        Command::Failover(args) => failover::run(&args),
        Command::YjsLoad(args) => yjs_load::run(&args),
        Command::Child(ChildCommand::YjsClients(args)) => yjs_client::run(args),
        Command::ClusterLatency(args) => cluster_latency::run(&args),
        Command::ClusterThroughput(args) => cluster_throughput::run(&args),
        Command::Child(ChildCommand::Apply {
            engine,
            compact,
            expected,
            txns,
            batch,
            dir,
        }) => child::reply(&scenario::apply(&Job {
            engine,
            compact_trace: compact,
            expected,
            txns,
            batch,
            dir,
        })?),
        Command::Child(ChildCommand::Load {
            engine,
            expected,
            dir,
            read_only,
        }) => child::reply(&scenario::load(engine, &dir, &expected, read_only)?),
    }
}

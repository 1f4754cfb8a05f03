//! `concord-bench yjs-load`: a load generator for any y-websocket-compatible server
//! (Concord's `/yjs`, `@y/websocket-server`, …). N native Yrs clients, spread over several
//! child processes (`yjs_client.rs`), each make M timestamped edits to the text of one of D
//! rooms. Reports updates/s, the time until every client held every edit of its room,
//! fan-out latency p50/p99, lost updates (edits that never reached a client of their
//! room), and — given the server's pid — its CPU use and peak RSS during the run.

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context, Result};
use serde::Serialize;

use crate::yjs_client::ChildReport;

#[derive(Debug, clap::Args)]
pub struct YjsLoadArgs {
    /// The server's y-websocket base URL: rooms are URL/ROOM (Concord: ws://HOST:PORT/yjs).
    #[arg(long)]
    url: String,
    /// Clients in all.
    #[arg(long, default_value_t = 10)]
    clients: usize,
    /// Edits per client.
    #[arg(long, default_value_t = 10)]
    edits: usize,
    /// Rooms (documents); client i edits room i mod D.
    #[arg(long, default_value_t = 1)]
    docs: usize,
    /// Child processes the clients are spread over (default: one per CPU, at most 8).
    #[arg(long)]
    procs: Option<usize>,
    /// Pause between one client's edits, ms.
    #[arg(long, default_value_t = 0)]
    interval_ms: u64,
    /// The server's pid, to report its CPU time and peak RSS over the run (Linux).
    #[arg(long)]
    server_pid: Option<u32>,
    /// Seconds to wait for convergence after the edits start.
    #[arg(long, default_value_t = 120)]
    timeout: u64,
    /// A label for the report (e.g. the server's name).
    #[arg(long, default_value = "")]
    label: String,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
}

/// The result of one run.
#[derive(Debug, Serialize)]
pub struct YjsLoadReport {
    pub label: String,
    pub clients: usize,
    pub docs: usize,
    pub edits_per_client: usize,
    pub updates_sent: u64,
    /// Updates sent per second, over the time until every client converged (or gave up).
    pub updates_per_sec: f64,
    /// Deliveries (an edit reaching one other client) per second, same time.
    pub deliveries_per_sec: f64,
    pub converged_clients: u64,
    /// ms from the start until the last client held every edit of its room.
    pub convergence_ms: Option<f64>,
    pub fanout_p50_ms: f64,
    pub fanout_p99_ms: f64,
    /// Edit deliveries that never happened (expected − received, over all clients).
    pub lost_updates: u64,
    pub server_cpu_percent: Option<f64>,
    pub server_peak_rss_mib: Option<f64>,
    pub failures: Vec<String>,
}

fn proc_cpu_ticks(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    Some(fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?)
}

fn proc_rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

fn clock_ticks_per_sec() -> f64 {
    // The usual USER_HZ on Linux.
    100.0
}

struct Worker {
    child: Child,
    lines: std::io::Lines<BufReader<std::process::ChildStdout>>,
}

pub fn run(args: &YjsLoadArgs) -> Result<()> {
    if args.clients < 2 * args.docs.max(1) {
        bail!("give every room at least two clients (--clients >= 2 x --docs)");
    }
    let procs = args
        .procs
        .unwrap_or_else(|| {
            std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(2)
                .min(8)
        })
        .clamp(1, args.clients);
    let exe = std::env::current_exe().context("locating the benchmark binary")?;
    let prefix = format!(
        "load-{:x}",
        SystemTime::now().duration_since(UNIX_EPOCH)?.as_micros()
    );
    let per = args.clients.div_ceil(procs);
    let mut workers = Vec::new();
    for first in (0..args.clients).step_by(per) {
        let count = per.min(args.clients - first);
        let mut child = Command::new(&exe)
            .args([
                "child",
                "yjs-clients",
                "--url",
                &args.url,
                "--prefix",
                &prefix,
            ])
            .args(["--first", &first.to_string(), "--count", &count.to_string()])
            .args(["--clients", &args.clients.to_string()])
            .args([
                "--edits",
                &args.edits.to_string(),
                "--docs",
                &args.docs.to_string(),
            ])
            .args(["--interval-ms", &args.interval_ms.to_string()])
            .args(["--timeout", &args.timeout.to_string()])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .context("starting a client process")?;
        let lines = BufReader::new(child.stdout.take().unwrap()).lines();
        workers.push(Worker { child, lines });
    }
    for worker in &mut workers {
        match worker.lines.next() {
            Some(Ok(line)) if line == "ready" => {}
            other => bail!("a client process did not get ready: {other:?}"),
        }
    }
    // Sample the server while the edits run.
    let sampling = Arc::new(AtomicBool::new(true));
    let peak_kib = Arc::new(AtomicU64::new(0));
    let sampler = args.server_pid.map(|pid| {
        let (sampling, peak) = (sampling.clone(), peak_kib.clone());
        std::thread::spawn(move || {
            while sampling.load(Ordering::Relaxed) {
                if let Some(kib) = proc_rss_kib(pid) {
                    peak.fetch_max(kib, Ordering::Relaxed);
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        })
    });
    let cpu_before = args.server_pid.and_then(proc_cpu_ticks);
    let started = Instant::now();
    let start_us = SystemTime::now().duration_since(UNIX_EPOCH)?.as_micros() as u64;
    for worker in &mut workers {
        let stdin = worker.child.stdin.as_mut().unwrap();
        writeln!(stdin, "go {start_us}")?;
        stdin.flush()?;
    }
    let mut reports = Vec::new();
    for worker in &mut workers {
        let line = worker
            .lines
            .next()
            .context("a client process ended without a report")??;
        reports.push(serde_json::from_str::<ChildReport>(&line).context("a client report")?);
        let _ = worker.child.wait();
    }
    let elapsed = started.elapsed().as_secs_f64();
    sampling.store(false, Ordering::Relaxed);
    if let Some(sampler) = sampler {
        let _ = sampler.join();
    }
    let cpu_after = args.server_pid.and_then(proc_cpu_ticks);

    let mut latencies: Vec<u64> = reports
        .iter()
        .flat_map(|r| r.latencies_us.iter().copied())
        .collect();
    latencies.sort_unstable();
    let at = |q: f64| {
        if latencies.is_empty() {
            return 0.0;
        }
        latencies[((latencies.len() - 1) as f64 * q).round() as usize] as f64 / 1000.0
    };
    let sent: u64 = reports.iter().map(|r| r.sent).sum();
    let expected: u64 = reports.iter().map(|r| r.expected).sum();
    let received: u64 = reports.iter().map(|r| r.received).sum();
    let converged: u64 = reports.iter().map(|r| r.converged).sum();
    let last = reports
        .iter()
        .flat_map(|r| r.converge_ms.iter().copied())
        .fold(None, |max: Option<f64>, ms| {
            Some(max.map_or(ms, |m| m.max(ms)))
        });
    let report = YjsLoadReport {
        label: args.label.clone(),
        clients: args.clients,
        docs: args.docs,
        edits_per_client: args.edits,
        updates_sent: sent,
        updates_per_sec: sent as f64 / elapsed,
        deliveries_per_sec: received as f64 / elapsed,
        converged_clients: converged,
        convergence_ms: (converged == args.clients as u64).then_some(last).flatten(),
        fanout_p50_ms: at(0.50),
        fanout_p99_ms: at(0.99),
        lost_updates: expected.saturating_sub(received),
        server_cpu_percent: match (cpu_before, cpu_after) {
            (Some(b), Some(a)) => Some((a - b) as f64 / clock_ticks_per_sec() / elapsed * 100.0),
            _ => None,
        },
        server_peak_rss_mib: args
            .server_pid
            .map(|_| peak_kib.load(Ordering::Relaxed) as f64 / 1024.0),
        failures: reports.iter().flat_map(|r| r.failures.clone()).collect(),
    };
    if args.json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        print(&report);
    }
    Ok(())
}

fn print(r: &YjsLoadReport) {
    let opt = |v: Option<f64>, unit: &str| v.map_or("-".to_string(), |v| format!("{v:.1}{unit}"));
    println!(
        "{} clients={} docs={} edits/client={}",
        r.label, r.clients, r.docs, r.edits_per_client
    );
    println!(
        "  updates sent {}  {:.0} updates/s  {:.0} deliveries/s",
        r.updates_sent, r.updates_per_sec, r.deliveries_per_sec
    );
    println!(
        "  converged {}/{}  convergence {}  fan-out p50 {:.1} ms p99 {:.1} ms  lost {}",
        r.converged_clients,
        r.clients,
        opt(r.convergence_ms, " ms"),
        r.fanout_p50_ms,
        r.fanout_p99_ms,
        r.lost_updates
    );
    println!(
        "  server cpu {}  peak rss {}",
        opt(r.server_cpu_percent, "%"),
        opt(r.server_peak_rss_mib, " MiB")
    );
    for failure in r.failures.iter().take(5) {
        println!("  failure: {failure}");
    }
}

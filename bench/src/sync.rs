//! `concord-bench sync`: N client processes each make M edits to one document through one
//! relay process. Measures the time from "go" until every client holds all N×M edits, and
//! the relay's CPU time and peak RSS over the run.
//!
//! The relay is the real `concord-server` binary next to this one (build both with
//! `cargo build --release -p concord-server -p concord-bench`). Each client is this binary
//! again (`sync --role client`, hidden): a device store on disk with the native client
//! syncing in the background, committing one counter increment per edit (durably) as fast
//! as it can, then waiting until the counter shows every client's edits.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use concord_core::native_client::{sync_once, Backoff, SyncClient};
use concord_core::sync::{ClientConfig, SyncScope};
use concord_core::{DocKind, Store};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::report::{self, Table};

const DOC: &str = "bench";
const COUNTER: &str = "n";
/// Upper bound on any wait in this benchmark.
const LIMIT: Duration = Duration::from_secs(600);

#[derive(Debug, clap::Args)]
pub struct SyncArgs {
    /// Number of client processes
    #[arg(long, default_value_t = 4)]
    pub clients: usize,
    /// Edits made by each client
    #[arg(long, default_value_t = 1_000)]
    pub edits: usize,
    /// Print results as JSON on stdout (tables go to stderr)
    #[arg(long)]
    pub json: bool,
    /// Internal: run as one client process
    #[arg(long, hide = true, default_value = "parent")]
    pub role: String,
    #[arg(long, hide = true)]
    pub url: Option<String>,
    #[arg(long, hide = true)]
    pub db: Option<PathBuf>,
}

/// What one client process reports.
#[derive(Debug, Serialize, Deserialize)]
struct ClientReport {
    /// From "go" until this client's own edits were all committed locally.
    commit_secs: f64,
    /// From "go" until this client held every client's edits.
    converged_secs: f64,
}

pub fn run(args: &SyncArgs) -> Result<()> {
    if args.role == "client" {
        return client(args);
    }
    if args.clients == 0 || args.edits == 0 {
        bail!("--clients and --edits must be at least 1");
    }
    let dir = tempfile::tempdir()?;
    let mut relay = Relay::start(dir.path())?;
    let url = relay.url.clone();
    seed(&url, dir.path())?;

    let total = args.clients * args.edits;
    eprintln!(
        "sync: {} clients x {} edits = {total} updates through {url}",
        args.clients, args.edits
    );
    let mut clients: Vec<ClientProcess> = (0..args.clients)
        .map(|i| ClientProcess::start(&url, &dir.path().join(format!("client{i}.db")), args.edits))
        .collect::<Result<_>>()?;
    for c in &mut clients {
        c.expect_line("ready")?;
    }
    let cpu_before = relay.cpu_secs()?;
    let start = Instant::now();
    for c in &mut clients {
        c.go()?;
    }
    let mut reports = Vec::new();
    for c in &mut clients {
        reports.push(c.report()?);
    }
    let all_converged = start.elapsed().as_secs_f64();
    let relay_cpu = relay.cpu_secs()? - cpu_before;
    let relay_peak_kib = relay.peak_rss_kib()?;
    relay.stop();

    let slowest_commit = reports.iter().map(|r| r.commit_secs).fold(0.0, f64::max);
    let mut table = Table::new(
        format!(
            "sync: {} client processes x {} edits, one relay process",
            args.clients, args.edits
        ),
        &["measure", "value"],
    );
    table.row(vec![
        "updates (durable commits, synced)".into(),
        report::thousands(total as u64),
    ]);
    table.row(vec![
        "all clients converged after (s)".into(),
        report::secs(all_converged),
    ]);
    table.row(vec![
        "updates/s until convergence".into(),
        report::rate(total as f64 / all_converged),
    ]);
    table.row(vec![
        "slowest client's local commits done after (s)".into(),
        report::secs(slowest_commit),
    ]);
    table.row(vec![
        "relay CPU time, user+system (s)".into(),
        report::cpu_secs(Some(relay_cpu)),
    ]);
    table.row(vec![
        "relay peak RSS".into(),
        report::kib(Some(relay_peak_kib)),
    ]);
    table.note(
        "Each edit is one durable commit on its device (SQLite WAL, synchronous=FULL), sent live; \
the relay stores each batch durably before acknowledging and fans it out to the other clients. \
Converged = every client reads a counter of clients x edits and has nothing unacknowledged.",
    );
    let data = json!({
        "clients": args.clients,
        "edits_per_client": args.edits,
        "updates": total,
        "converged_secs": all_converged,
        "slowest_commit_secs": slowest_commit,
        "relay_cpu_secs": relay_cpu,
        "relay_peak_rss_kib": relay_peak_kib,
        "clients_detail": reports,
    });
    report::emit(&[table], &data, args.json);
    Ok(())
}

/// Creates the shared document with its counter, so no client creates it concurrently.
fn seed(url: &str, dir: &Path) -> Result<()> {
    let store = Store::open(dir.join("seed.db"))?;
    store.create_doc(DOC, DocKind::Automerge)?;
    store.transact(DOC, |tx| tx.increment(COUNTER, 0))?;
    runtime()?.block_on(sync_once(
        &store,
        [url],
        ClientConfig::default(),
        Duration::from_secs(30),
    ))?;
    Ok(())
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()?)
}

/// The client process: sync in, wait for "go", commit, wait for everyone's edits.
fn client(args: &SyncArgs) -> Result<()> {
    if std::env::var_os("RUST_LOG").is_some() {
        tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_writer(std::io::stderr)
            .init();
    }
    let url = args.url.clone().context("--url")?;
    let db = args.db.clone().context("--db")?;
    let rt = runtime()?;
    let store = Store::open(&db)?;
    let config = ClientConfig {
        token: None,
        scope: SyncScope::Prefix(String::new()),
        ..ClientConfig::default()
    };
    rt.block_on(sync_once(
        &store,
        [&url],
        config.clone(),
        Duration::from_secs(60),
    ))?;
    let expected = read_counter(&store)?;
    let _guard = rt.enter();
    let syncing = SyncClient::spawn(store.clone(), [url], config, Backoff::default());
    println!("ready");
    std::io::stdout().flush()?;
    let mut line = String::new();
    std::io::stdin().read_line(&mut line)?;
    let start = Instant::now();
    for _ in 0..args.edits {
        store.transact(DOC, |tx| tx.increment(COUNTER, 1))?;
    }
    let commit_secs = start.elapsed().as_secs_f64();
    let target = expected + (args.edits * args.clients) as i64;
    // Converged: this client holds everyone's edits. It then stays until the relay has
    // acknowledged all of its own, or the others could never converge.
    while read_counter(&store)? < target || store.pending(DOC)? > 0 {
        if start.elapsed() > LIMIT {
            bail!("client did not converge within {LIMIT:?}");
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    let converged_secs = start.elapsed().as_secs_f64();
    rt.block_on(syncing.stop());
    println!(
        "{}",
        serde_json::to_string(&ClientReport {
            commit_secs,
            converged_secs
        })?
    );
    Ok(())
}

fn read_counter(store: &Store) -> Result<i64> {
    Ok(store
        .get(DOC, COUNTER)?
        .and_then(|v| v.as_i64())
        .unwrap_or(0))
}

/// A client child process, driven over its stdin/stdout.
struct ClientProcess {
    child: Child,
    stdin: Option<ChildStdin>,
    stdout: BufReader<std::process::ChildStdout>,
    /// The client's stderr, shown when it fails.
    log: PathBuf,
}

impl ClientProcess {
    fn start(url: &str, db: &Path, edits: usize) -> Result<ClientProcess> {
        let exe = std::env::current_exe()?;
        let clients = std::env::args()
            .skip_while(|a| a != "--clients")
            .nth(1)
            .unwrap_or_else(|| "4".into());
        let mut child = Command::new(exe)
            .args([
                "sync",
                "--role",
                "client",
                "--url",
                url,
                "--edits",
                &edits.to_string(),
            ])
            .args(["--clients", &clients])
            .arg("--db")
            .arg(db)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(std::fs::File::create(
                db.with_extension("log"),
            )?))
            .spawn()
            .context("starting a client process")?;
        let stdin = child.stdin.take();
        let stdout = BufReader::new(child.stdout.take().context("client stdout")?);
        Ok(ClientProcess {
            child,
            stdin,
            stdout,
            log: db.with_extension("log"),
        })
    }

    fn line(&mut self) -> Result<String> {
        let mut line = String::new();
        if self.stdout.read_line(&mut line)? == 0 {
            bail!(
                "a client process exited early ({:?}): {}",
                self.child.wait()?,
                std::fs::read_to_string(&self.log)
                    .unwrap_or_default()
                    .trim()
            );
        }
        Ok(line.trim().to_string())
    }

    fn expect_line(&mut self, expected: &str) -> Result<()> {
        let line = self.line()?;
        if line != expected {
            bail!("client said {line:?}, expected {expected:?}");
        }
        Ok(())
    }

    fn go(&mut self) -> Result<()> {
        let stdin = self.stdin.as_mut().context("client stdin")?;
        writeln!(stdin, "go")?;
        stdin.flush()?;
        Ok(())
    }

    fn report(&mut self) -> Result<ClientReport> {
        let line = self.line()?;
        let report =
            serde_json::from_str(&line).with_context(|| format!("client report {line:?}"))?;
        self.child.wait()?;
        Ok(report)
    }
}

impl Drop for ClientProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The relay process under measurement.
struct Relay {
    child: Child,
    url: String,
}

impl Relay {
    fn start(dir: &Path) -> Result<Relay> {
        let exe = std::env::current_exe()?;
        let server = exe.with_file_name("concord-server");
        if !server.exists() {
            bail!(
                "{} not found: build it first (cargo build --release -p concord-server -p concord-bench)",
                server.display()
            );
        }
        let port = concord_testkit::ports::free_port();
        let addr = format!("127.0.0.1:{port}");
        let child = Command::new(&server)
            .args(["--listen", &addr, "--data-dir"])
            .arg(dir.join("relay"))
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .context("starting concord-server")?;
        let started = Instant::now();
        while std::net::TcpStream::connect(&addr).is_err() {
            if started.elapsed() > Duration::from_secs(30) {
                bail!("the relay did not start listening");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(Relay {
            child,
            url: format!("ws://{addr}/sync"),
        })
    }

    fn proc_file(&self, name: &str) -> Result<String> {
        let path = format!("/proc/{}/{name}", self.child.id());
        std::fs::read_to_string(&path).with_context(|| format!("reading {path}"))
    }

    /// User + system CPU seconds the relay has used so far.
    fn cpu_secs(&self) -> Result<f64> {
        let stat = self.proc_file("stat")?;
        let after_name = stat.rsplit_once(')').context("parsing /proc stat")?.1;
        let fields: Vec<&str> = after_name.split_whitespace().collect();
        // Fields 14 and 15 of stat (utime, stime) are at 11 and 12 after the name.
        let ticks: u64 = fields[11].parse::<u64>()? + fields[12].parse::<u64>()?;
        Ok(ticks as f64 / clock_ticks_per_sec() as f64)
    }

    fn peak_rss_kib(&self) -> Result<u64> {
        let status = self.proc_file("status")?;
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .context("VmHWM in /proc status")
    }

    fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.stop();
    }
}

fn clock_ticks_per_sec() -> u64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(100)
}

//! `concord-bench sync`: N client processes each make M edits to one document through one
//! relay process. Measures the time from "go" until every client holds all N×M edits, the
//! lag of that behind the slowest client's last local commit, and the CPU time of the
//! clients and the relay.
//!
//! The relay is the real `concord-server` binary next to this one (build both with
//! `cargo build --release -p concord-server -p concord-bench`). Each client is this binary
//! again (`sync --role client`, hidden): a device store on disk with the native client
//! syncing in the background, committing one edit per `transact` (durably) as fast as it
//! can, then waiting (on the store's change subscription) until it holds every client's
//! edits. The edit is one of three kinds (`--edit`), each run in turn by default: an
//! increment of one shared Automerge counter, an overwrite of the client's own key, or one
//! character typed into one shared text.

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

use crate::measure;
use crate::report::{self, Table};
use crate::sync_raw;

const DOC: &str = "bench";
pub(crate) const COUNTER: &str = "n";
pub(crate) const TEXT: &str = "t";
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
    /// What each edit is: `counter` (every client increments one shared counter),
    /// `own-key` (each client overwrites its own key with its edit count) or `text` (each
    /// client types one character at the start of one shared text); every kind in turn
    /// when not given
    #[arg(long, value_enum)]
    pub edit: Option<Edit>,
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
    /// Internal: this client's number
    #[arg(long, hide = true, default_value_t = 0)]
    pub index: usize,
}

/// The edit each client makes, and how a client counts the edits it holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Edit {
    Counter,
    OwnKey,
    Text,
}

impl Edit {
    /// Makes edit number `n` (from 1) of client `index`.
    fn make(self, store: &Store, index: usize, n: usize) -> Result<()> {
        store.transact(DOC, |tx| match self {
            Edit::Counter => tx.increment(COUNTER, 1),
            Edit::OwnKey => tx.put(&own_key(index), n as i64),
            Edit::Text => tx.insert_text(TEXT, 0, "x"),
        })?;
        Ok(())
    }

    /// How many edits (of every client) this store holds.
    fn held(self, store: &Store, clients: usize) -> Result<i64> {
        Ok(match self {
            Edit::Counter => store
                .get(DOC, COUNTER)?
                .and_then(|v| v.as_i64())
                .unwrap_or(0),
            Edit::OwnKey => {
                let doc = store.get(DOC, "")?.unwrap_or_default();
                (0..clients)
                    .map(|i| doc.get(own_key(i)).and_then(|v| v.as_i64()).unwrap_or(0))
                    .sum()
            }
            Edit::Text => store.text_len(DOC, TEXT).unwrap_or(0) as i64,
        })
    }
}

pub(crate) fn own_key(index: usize) -> String {
    format!("c{index}")
}

/// What one client process reports.
#[derive(Debug, Serialize, Deserialize)]
struct ClientReport {
    /// From "go" until this client's own edits were all committed locally.
    commit_secs: f64,
    /// From "go" until this client held every client's edits.
    converged_secs: f64,
    /// CPU time (user + system) this client process used from "go" until converged.
    #[serde(default)]
    cpu_secs: f64,
}

/// What one run (one kind of edit) measured.
struct Outcome {
    edit: Edit,
    converged_secs: f64,
    slowest_commit_secs: f64,
    relay_cpu_secs: f64,
    relay_peak_rss_kib: u64,
    reports: Vec<ClientReport>,
    /// Plain Automerge's time for one client's share of the same work (`sync_raw`),
    /// applying the others' edits every `sync_raw::EVERY[i]` rounds.
    raw_client_secs: [f64; 3],
}

impl Outcome {
    /// From the slowest client's last local commit until every client converged.
    fn lag_secs(&self) -> f64 {
        self.converged_secs - self.slowest_commit_secs
    }

    fn clients_cpu_secs(&self) -> f64 {
        self.reports.iter().map(|r| r.cpu_secs).sum()
    }

    /// Plain Automerge's time for every client's share, on schedule `i`.
    fn raw_secs(&self, i: usize) -> f64 {
        self.raw_client_secs[i] * self.reports.len() as f64
    }

    /// The soonest every client could converge on schedule `i` if the library's own work
    /// were all they did, spread over every core of this machine (and never sooner than
    /// one client's share, which runs in sequence).
    fn raw_floor_secs(&self, i: usize) -> f64 {
        (self.raw_secs(i) / cores() as f64).max(self.raw_client_secs[i])
    }
}

fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

pub fn run(args: &SyncArgs) -> Result<()> {
    if args.role == "client" {
        return client(args, args.edit.context("--edit")?);
    }
    if args.clients == 0 || args.edits == 0 {
        bail!("--clients and --edits must be at least 1");
    }
    let edits = match args.edit {
        Some(edit) => vec![edit],
        None => vec![Edit::Counter, Edit::OwnKey, Edit::Text],
    };
    let outcomes: Vec<Outcome> = edits
        .into_iter()
        .map(|edit| run_one(args, edit))
        .collect::<Result<_>>()?;

    let total = args.clients * args.edits;
    let mut columns = vec!["measure".to_string()];
    columns.extend(outcomes.iter().map(|o| edit_name(o.edit)));
    let columns: Vec<&str> = columns.iter().map(String::as_str).collect();
    let mut table = Table::new(
        format!(
            "sync: {} client processes x {} edits, one relay process, per kind of edit",
            args.clients, args.edits
        ),
        &columns,
    );
    let mut row = |name: &str, value: &dyn Fn(&Outcome) -> String| {
        let mut cells = vec![name.to_string()];
        cells.extend(outcomes.iter().map(value));
        table.row(cells);
    };
    row("updates (durable commits, synced)", &|_| {
        report::thousands(total as u64)
    });
    row("slowest client's local commits done after (s)", &|o| {
        report::secs(o.slowest_commit_secs)
    });
    row("all clients converged after (s)", &|o| {
        report::secs(o.converged_secs)
    });
    row("converged after the last local commit (s)", &|o| {
        report::secs(o.lag_secs())
    });
    row("updates/s until convergence", &|o| {
        report::rate(total as f64 / o.converged_secs)
    });
    row("clients' CPU time from go, all clients (s)", &|o| {
        report::cpu_secs(Some(o.clients_cpu_secs()))
    });
    row("relay CPU time, user+system (s)", &|o| {
        report::cpu_secs(Some(o.relay_cpu_secs))
    });
    row("relay peak RSS", &|o| {
        report::kib(Some(o.relay_peak_rss_kib))
    });
    row(
        "raw Automerge, one client's share, every round (ms)",
        &|o| report::millis(o.raw_client_secs[0]),
    );
    row(
        "raw Automerge, one client's share, every 10th round (ms)",
        &|o| report::millis(o.raw_client_secs[1]),
    );
    row(
        "raw Automerge, one client's share, all at the end (ms)",
        &|o| report::millis(o.raw_client_secs[2]),
    );
    row("clients' CPU / raw Automerge every round (wall)", &|o| {
        format!("{:.2}x", o.clients_cpu_secs() / o.raw_secs(0))
    });
    let floor_row = |every: &str| {
        format!(
            "raw Automerge, every {every}, all clients on {} cores: converged after (s)",
            cores()
        )
    };
    row(&floor_row("round"), &|o| report::secs(o.raw_floor_secs(0)));
    row(&floor_row("10th round"), &|o| {
        report::secs(o.raw_floor_secs(1))
    });
    table.note(
        "Each edit is one durable commit on its device (SQLite WAL, synchronous=FULL), sent live; \
the relay stores each batch durably before acknowledging and fans it out to the other clients. \
Converged = every client holds clients x edits edits and has nothing unacknowledged. Edits: \
counter = every client increments one shared Automerge counter; own-key = each client \
overwrites its own key; text = each client types one character at the start of one shared text.",
    );
    table.note(
        "Raw Automerge: the same run replays one client's share with plain Automerge in this \
process, after the clients are done (wall time, fastest of 5): its edits, one commit each, and \
the other clients' edits decoded from their bytes and applied in one apply_changes every round \
(a round: one edit of every client), every 10th round, or once at the end (the cheapest order, \
which no live device gets); nothing stored or sent. A schedule's time for all clients, spread \
over every core, is the soonest they could all converge applying that often if the library's \
own work were all they did. The ratio row divides the clients' CPU time by the raw replay's \
wall time (single-threaded, on a quiet machine) times the clients.",
    );
    let data = json!({
        "clients": args.clients,
        "edits_per_client": args.edits,
        "updates": total,
        "runs": outcomes.iter().map(|o| json!({
            "edit": o.edit,
            "converged_secs": o.converged_secs,
            "slowest_commit_secs": o.slowest_commit_secs,
            "converged_after_last_commit_secs": o.lag_secs(),
            "relay_cpu_secs": o.relay_cpu_secs,
            "clients_cpu_secs": o.clients_cpu_secs(),
            "relay_peak_rss_kib": o.relay_peak_rss_kib,
            "raw_automerge_one_client_secs": {
                "every_round": o.raw_client_secs[0],
                "every_10th_round": o.raw_client_secs[1],
                "at_the_end": o.raw_client_secs[2],
            },
            "clients_detail": o.reports,
        })).collect::<Vec<_>>(),
    });
    report::emit(&[table], &data, args.json);
    Ok(())
}

fn edit_name(edit: Edit) -> String {
    clap::ValueEnum::to_possible_value(&edit)
        .map(|v| v.get_name().to_string())
        .unwrap_or_default()
}

/// One relay, `clients` client processes, every client making `edits` edits of one kind.
fn run_one(args: &SyncArgs, edit: Edit) -> Result<Outcome> {
    let dir = tempfile::tempdir()?;
    let mut relay = Relay::start(dir.path())?;
    let url = relay.url.clone();
    seed(&url, dir.path())?;
    eprintln!(
        "sync ({}): {} clients x {} edits = {} updates through {url}",
        edit_name(edit),
        args.clients,
        args.edits,
        args.clients * args.edits
    );
    let mut clients: Vec<ClientProcess> = (0..args.clients)
        .map(|i| {
            let db = dir.path().join(format!("client{i}.db"));
            ClientProcess::start(&url, &db, args, edit, i)
        })
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
    let converged_secs = start.elapsed().as_secs_f64();
    let relay_cpu_secs = relay.cpu_secs()? - cpu_before;
    let relay_peak_rss_kib = relay.peak_rss_kib()?;
    relay.stop();
    drop(clients);
    let raw = sync_raw::one_client(edit, args.clients, args.edits)?;
    Ok(Outcome {
        edit,
        converged_secs,
        slowest_commit_secs: reports.iter().map(|r| r.commit_secs).fold(0.0, f64::max),
        relay_cpu_secs,
        relay_peak_rss_kib,
        reports,
        raw_client_secs: raw.map(|d| d.as_secs_f64()),
    })
}

/// Creates the shared document with its counter, so no client creates it concurrently.
fn seed(url: &str, dir: &Path) -> Result<()> {
    let store = Store::open(dir.join("seed.db"))?;
    store.create_doc(DOC, DocKind::Automerge)?;
    store.transact(DOC, |tx| {
        tx.increment(COUNTER, 0)?;
        tx.insert_text(TEXT, 0, "")
    })?;
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
fn client(args: &SyncArgs, edit: Edit) -> Result<()> {
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
    let expected = edit.held(&store, args.clients)?;
    let (notify, changed) = std::sync::mpsc::channel();
    let _subscription = store.subscribe(Some(DOC), move |_| {
        let _ = notify.send(());
    });
    let _guard = rt.enter();
    let syncing = SyncClient::spawn(store.clone(), [url], config, Backoff::default());
    println!("ready");
    std::io::stdout().flush()?;
    let mut line = String::new();
    std::io::stdin().read_line(&mut line)?;
    let start = Instant::now();
    let cpu_start = measure::cpu_time().unwrap_or_default();
    for n in 1..=args.edits {
        edit.make(&store, args.index, n)?;
    }
    let commit_secs = start.elapsed().as_secs_f64();
    let target = expected + (args.edits * args.clients) as i64;
    // Converged: this client holds everyone's edits. It then stays until the relay has
    // acknowledged all of its own, or the others could never converge. The counter is
    // read again only after a change, as an app would: reading an Automerge counter walks
    // every increment, so reading it in a tight loop would measure this loop.
    let mut held = edit.held(&store, args.clients)?;
    while held < target || store.pending(DOC)? > 0 {
        if start.elapsed() > LIMIT {
            bail!("client did not converge within {LIMIT:?}");
        }
        match changed.recv_timeout(Duration::from_millis(20)) {
            Ok(()) => {
                while changed.try_recv().is_ok() {}
                held = edit.held(&store, args.clients)?;
            }
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
            Err(e) => bail!("change subscription ended: {e}"),
        }
    }
    let converged_secs = start.elapsed().as_secs_f64();
    let cpu_secs = (measure::cpu_time().unwrap_or_default() - cpu_start).as_secs_f64();
    rt.block_on(syncing.stop());
    println!(
        "{}",
        serde_json::to_string(&ClientReport {
            commit_secs,
            converged_secs,
            cpu_secs
        })?
    );
    Ok(())
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
    fn start(
        url: &str,
        db: &Path,
        args: &SyncArgs,
        edit: Edit,
        index: usize,
    ) -> Result<ClientProcess> {
        let exe = std::env::current_exe()?;
        let mut child = Command::new(exe)
            .args(["sync", "--role", "client", "--url", url])
            .args(["--edits", &args.edits.to_string()])
            .args(["--clients", &args.clients.to_string()])
            .args(["--index", &index.to_string()])
            .args(["--edit", &edit_name(edit)])
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

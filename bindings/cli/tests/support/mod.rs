//! Test support: real `concord` processes on real SQLite files, and a real
//! `concord-server` process on a free local port (killed when the guard drops).

#![allow(dead_code)] // each test binary uses a different part of this module

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, Output, Stdio};
use std::sync::mpsc;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use serde_json::Value;

/// The `concord` binary under test.
pub fn concord_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_concord"))
}

/// The `concord-server` binary next to `concord`.
///
/// `cargo test -p concord-cli` does not build other packages' binaries, so this runs
/// `cargo build -p concord-server` once per test binary: it builds the server if it is
/// missing and rebuilds it if the engine changed since (a no-op otherwise). If that build
/// fails but a binary exists, the existing binary is used.
pub fn server_bin() -> PathBuf {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        let dir = concord_bin()
            .parent()
            .expect("the binary lives in a directory")
            .to_path_buf();
        let path = dir.join(format!("concord-server{}", std::env::consts::EXE_SUFFIX));
        // `target/debug` is built by the `dev` profile; other directories by the profile
        // of the same name. CARGO_TARGET_DIR, if set, is inherited.
        let profile = match dir.file_name().and_then(|n| n.to_str()) {
            Some("debug") | None => "dev".to_string(),
            Some(other) => other.to_string(),
        };
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let built = Command::new(cargo)
            .args(["build", "-q", "-p", "concord-server", "--profile", &profile])
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .status()
            .is_ok_and(|s| s.success());
        assert!(
            path.exists(),
            "{} is missing and `cargo build -p concord-server` failed",
            path.display()
        );
        if !built {
            eprintln!("warning: cargo build -p concord-server failed; using the existing binary");
        }
        path
    })
    .clone()
}

pub use concord_testkit::ports::free_port;

/// A running `concord-server` process; killed on drop.
pub struct Server {
    child: Child,
    pub port: u16,
    /// The relay's address as the CLI takes it.
    pub url: String,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

impl Server {
    pub fn start() -> Server {
        Server::start_with(&[])
    }

    /// Starts the relay with extra flags (e.g. `--auth-secret S`) and waits for `/healthz`.
    pub fn start_with(extra: &[&str]) -> Server {
        let dir = tempfile::tempdir().expect("temp dir");
        let log = dir.path().join("server.log");
        let port = free_port();
        let child = Command::new(server_bin())
            .args(["--listen", &format!("127.0.0.1:{port}")])
            .arg("--data-dir")
            .arg(dir.path().join("data"))
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).expect("log file"))
            .spawn()
            .expect("start concord-server");
        let mut server = Server {
            child,
            port,
            url: format!("ws://127.0.0.1:{port}"),
            log,
            _dir: dir,
        };
        server.wait_healthy();
        server
    }

    fn wait_healthy(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        for _ in 0..600 {
            if let Some(status) = self.child.try_wait().expect("poll the server") {
                panic!("concord-server exited with {status}:\n{}", self.log());
            }
            if healthz(self.port) {
                return;
            }
            if Instant::now() > deadline {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("concord-server never answered /healthz:\n{}", self.log());
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// True when `GET /healthz` answers 200 with status ok.
fn healthz(port: u16) -> bool {
    let Ok(mut stream) = TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
    let request = "GET /healthz HTTP/1.0\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";
    if stream.write_all(request.as_bytes()).is_err() {
        return false;
    }
    let mut response = String::new();
    let _ = stream.read_to_string(&mut response);
    response.starts_with("HTTP/1.") && response.contains(" 200 ") && response.contains("\"ok\"")
}

/// Runs `concord-server` with arguments (e.g. `token ...`) and returns its stdout.
pub fn server_cmd(args: &[&str]) -> String {
    let out = Command::new(server_bin())
        .args(args)
        .output()
        .expect("run concord-server");
    assert!(
        out.status.success(),
        "concord-server {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .expect("utf-8")
        .trim()
        .to_string()
}

/// One device: a store file driven by separate `concord` processes.
pub struct Device {
    pub db: PathBuf,
}

impl Device {
    pub fn new(dir: &Path, name: &str) -> Device {
        Device {
            db: dir.join(format!("{name}.db")),
        }
    }

    pub fn command(&self) -> Command {
        let mut cmd = Command::new(concord_bin());
        cmd.arg("--db").arg(&self.db).env_remove("CONCORD_DB");
        cmd.env_remove("CONCORD_SERVER").env_remove("CONCORD_TOKEN");
        cmd
    }

    /// Starts `concord --json sync --watch --server <url> extra...` (stdout and stderr
    /// piped); returns the process, killed on drop, and its stdout lines.
    pub fn watch(&self, url: &str, extra: &[&str]) -> (KillOnDrop, Lines) {
        let mut cmd = self.command();
        cmd.args(["--json", "sync", "--watch", "--server", url])
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut watcher = KillOnDrop(cmd.spawn().expect("start sync --watch"));
        let lines = Lines::new(watcher.0.stdout.take().expect("piped stdout"));
        (watcher, lines)
    }

    /// Runs `concord --db <db> args...` to completion.
    pub fn run(&self, args: &[&str]) -> Output {
        self.command()
            .args(args)
            .stdin(Stdio::null())
            .output()
            .expect("run concord")
    }

    /// Runs a command that must succeed; returns its stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "concord {args:?} failed ({}):\nstdout: {}\nstderr: {}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).expect("utf-8 output")
    }

    /// Runs a command with `--json` that must succeed; parses its output.
    pub fn json(&self, args: &[&str]) -> Value {
        let mut all = vec!["--json"];
        all.extend_from_slice(args);
        let stdout = self.ok(&all);
        serde_json::from_str(stdout.trim())
            .unwrap_or_else(|e| panic!("concord {args:?} printed invalid JSON ({e}): {stdout}"))
    }

    /// Runs a command that must fail; returns (exit code, stderr).
    pub fn fails(&self, args: &[&str]) -> (i32, String) {
        let out = self.run(args);
        assert!(
            !out.status.success(),
            "concord {args:?} should have failed; stdout: {}",
            String::from_utf8_lossy(&out.stdout)
        );
        let stderr = String::from_utf8(out.stderr).expect("utf-8 stderr");
        (out.status.code().expect("exited, not killed"), stderr)
    }

    pub fn show(&self, doc: &str) -> Value {
        self.json(&["show", doc])
    }

    pub fn sync(&self, server: &Server) -> Value {
        self.json(&["sync", "--server", &server.url, "--timeout", "60"])
    }

    /// `status --json`.
    pub fn status(&self) -> Value {
        self.json(&["status"])
    }

    /// Pending (unacknowledged) updates of `doc`, from `status --json`.
    pub fn pending(&self, doc: &str) -> u64 {
        self.json(&["status", doc])["docs"][0]["pending"]
            .as_u64()
            .expect("pending is a number")
    }
}

/// Reads a child's stdout lines on a thread, so tests can wait for them with a time bound.
pub struct Lines {
    rx: mpsc::Receiver<String>,
}

impl Lines {
    pub fn new(stdout: ChildStdout) -> Lines {
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Lines { rx }
    }

    /// The next line, or `None` when the stream ended or nothing came within `timeout`.
    pub fn next(&self, timeout: Duration) -> Option<String> {
        self.rx.recv_timeout(timeout).ok()
    }

    /// Reads lines until one satisfies `pred` (returned), within `timeout` overall.
    pub fn until(&self, timeout: Duration, mut pred: impl FnMut(&str) -> bool) -> Option<String> {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.checked_duration_since(Instant::now())?;
            let line = self.next(left)?;
            if pred(&line) {
                return Some(line);
            }
        }
    }
}

/// Kills a child process on drop (so a failing test leaves nothing running).
pub struct KillOnDrop(pub Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Damaging a device's store on purpose, through SQLite or on disk (corruption tests).
impl Device {
    /// A direct SQLite connection to the store's file.
    pub fn sql(&self) -> rusqlite::Connection {
        rusqlite::Connection::open(&self.db).expect("open the store with rusqlite")
    }

    /// Moves everything in the WAL into the main file and empties the WAL.
    pub fn checkpoint(&self) {
        self.sql()
            .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
            .expect("checkpoint");
    }

    /// `PRAGMA integrity_check` as SQLite reports it ("ok" when intact).
    pub fn integrity(&self) -> String {
        self.sql()
            .query_row("PRAGMA integrity_check", [], |r| r.get(0))
            .unwrap_or_else(|e| e.to_string())
    }

    /// Overwrites `len` bytes of the file at `offset` with fixed pseudo-random bytes.
    pub fn scribble(&self, offset: u64, len: usize) {
        use std::io::{Seek, SeekFrom};
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        let bytes: Vec<u8> = (0..len)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect();
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .open(&self.db)
            .expect("open the store file");
        file.seek(SeekFrom::Start(offset)).expect("seek");
        file.write_all(&bytes).expect("write");
        file.sync_all().expect("sync");
    }

    /// The store file's size in bytes.
    pub fn file_len(&self) -> u64 {
        std::fs::metadata(&self.db).expect("the store exists").len()
    }
}

//! Shared parts of the interop tests: the npm packages in `interop/js` (installed with
//! `npm install` when `node_modules` is missing or older than the lock file; the lock pins
//! every version, and `npm ci` refuses it because this registry lacks other platforms'
//! optional packages), a node process
//! running one of its driver scripts (one JSON command per line in, one JSON answer per
//! line out, every wait bounded), and a Concord device driven through the `concord` CLI.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Mutex;
use std::time::Duration;

use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};

/// The longest a driver command may take beyond its own timeout.
const SLACK: Duration = Duration::from_secs(20);

/// `interop/js` of the repository.
pub fn js_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../interop/js")
}

static NPM: Mutex<bool> = Mutex::new(false);

/// Installs `interop/js`'s packages unless `node_modules` is current (scripts/test.sh does
/// this first; a test binary run alone does it itself).
pub fn ensure_npm() {
    let mut done = NPM.lock().unwrap_or_else(|p| p.into_inner());
    if *done {
        return;
    }
    let dir = js_dir();
    let installed = dir.join("node_modules/.package-lock.json");
    let modified = |p: &Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
    let current = match (
        modified(&installed),
        modified(&dir.join("package-lock.json")),
    ) {
        (Some(installed), Some(lock)) => installed >= lock,
        _ => false,
    };
    if !current {
        let status = std::process::Command::new("npm")
            .args(["install", "--no-audit", "--no-fund"])
            .current_dir(&dir)
            .status()
            .expect("run npm (Node.js must be installed)");
        assert!(status.success(), "npm install in {} failed", dir.display());
    }
    *done = true;
}

/// A node process running a driver script of `interop/js`.
pub struct JsClient {
    child: Child,
    stdin: ChildStdin,
    lines: Lines<BufReader<ChildStdout>>,
    name: String,
}

impl JsClient {
    pub fn spawn(script: &str, args: &[&str]) -> JsClient {
        ensure_npm();
        let mut child = Command::new("node")
            .arg(script)
            .args(args)
            .current_dir(js_dir())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .expect("start node");
        let stdin = child.stdin.take().unwrap();
        let lines = BufReader::new(child.stdout.take().unwrap()).lines();
        JsClient {
            child,
            stdin,
            lines,
            name: format!("{script} {}", args.join(" ")),
        }
    }

    /// Sends one command and returns its answer (panics on an `error` answer unless
    /// `allow_error`).
    pub async fn try_call(&mut self, command: Value) -> Value {
        let wait = Duration::from_millis(command["timeout_ms"].as_u64().unwrap_or(10_000)) + SLACK;
        let mut line = command.to_string();
        line.push('\n');
        self.stdin
            .write_all(line.as_bytes())
            .await
            .expect("write to the node driver");
        let answer = tokio::time::timeout(wait, self.lines.next_line())
            .await
            .unwrap_or_else(|_| panic!("{}: no answer to {command} in {wait:?}", self.name))
            .expect("read the node driver")
            .unwrap_or_else(|| panic!("{}: exited before answering {command}", self.name));
        serde_json::from_str(&answer).expect("a JSON answer")
    }

    /// Sends one command; panics when the answer is an error.
    pub async fn call(&mut self, command: Value) -> Value {
        let answer = self.try_call(command.clone()).await;
        assert!(
            answer.get("error").is_none(),
            "{}: {command} failed: {answer}",
            self.name
        );
        answer
    }

    /// Kills the process at once (no goodbye on its connections).
    pub async fn kill(&mut self) {
        let _ = self.child.kill().await;
    }

    /// Asks the driver to exit, bounded.
    pub async fn exit(mut self) {
        let _ = self.try_call(json!({"cmd": "exit"})).await;
        let _ = tokio::time::timeout(Duration::from_secs(10), self.child.wait()).await;
    }
}

/// The `concord` CLI binary (built by `cargo build --workspace --bins`).
pub fn cli_binary() -> PathBuf {
    let path = Path::new(env!("CARGO_BIN_EXE_concord-server")).with_file_name("concord");
    assert!(
        path.exists(),
        "{} is missing: run `cargo build --workspace --bins` first",
        path.display()
    );
    path
}

/// A Concord device: a store file used through the `concord` CLI.
pub struct CliDevice {
    db: PathBuf,
    _dir: tempfile::TempDir,
}

impl CliDevice {
    pub fn new() -> CliDevice {
        let dir = tempfile::tempdir().unwrap();
        CliDevice {
            db: dir.path().join("device.db"),
            _dir: dir,
        }
    }

    /// Runs `concord --db … ARGS`; its stdout (panics when it fails).
    pub fn run(&self, args: &[&str]) -> String {
        let output = std::process::Command::new(cli_binary())
            .arg("--db")
            .arg(&self.db)
            .args(args)
            .output()
            .expect("run concord");
        assert!(
            output.status.success(),
            "concord {args:?} failed: {}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8(output.stdout).unwrap()
    }

    /// One sync with `url` (a relay's or a node's client address).
    pub fn sync(&self, url: &str, token: Option<&str>) {
        let mut args = vec!["sync", "--server", url, "--timeout", "20"];
        if let Some(token) = token {
            args.extend(["--token", token]);
        }
        self.run(&args);
    }

    /// The JSON value at `path` of `doc` (null when absent, or when this device does not
    /// hold the document yet).
    pub fn get(&self, doc: &str, path: &str) -> Value {
        let output = std::process::Command::new(cli_binary())
            .arg("--db")
            .arg(&self.db)
            .args(["--json", "get", doc, path])
            .output()
            .expect("run concord");
        if !output.status.success() {
            return Value::Null;
        }
        serde_json::from_slice(&output.stdout).unwrap_or(Value::Null)
    }

    /// The text at `path`, or "" when there is none.
    pub fn text(&self, doc: &str, path: &str) -> String {
        self.get(doc, path).as_str().unwrap_or_default().to_string()
    }

    /// Syncs until the text at `path` contains `want` (at most `tries` syncs, 200 ms apart);
    /// the text then.
    pub async fn sync_until_text(
        &self,
        url: &str,
        token: Option<&str>,
        doc: &str,
        path: &str,
        want: &str,
    ) -> String {
        for _ in 0..50 {
            self.sync(url, token);
            let text = self.text(doc, path);
            if text.contains(want) {
                return text;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        panic!(
            "the device never got {want:?} at {doc}/{path}: it has {:?}",
            self.text(doc, path)
        );
    }
}

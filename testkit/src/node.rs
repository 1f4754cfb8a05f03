//! One real `concord-server` process: its config file, data dir and log, started, killed
//! with SIGKILL, paused with SIGSTOP / resumed with SIGCONT, restarted on its data.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::error::{Result, TestkitError};
use crate::http;

/// Where the `concord-server` binary is: `CONCORD_SERVER_BIN`, else next to the running
/// executable (`target/<profile>/`, also from `target/<profile>/deps/`).
pub fn server_binary() -> Result<PathBuf> {
    if let Ok(path) = std::env::var("CONCORD_SERVER_BIN") {
        return Ok(PathBuf::from(path));
    }
    let mut tried = Vec::new();
    if let Ok(exe) = std::env::current_exe() {
        for dir in exe.ancestors().skip(1).take(2) {
            let candidate = dir.join("concord-server");
            if candidate.is_file() {
                return Ok(candidate);
            }
            tried.push(candidate);
        }
    }
    Err(TestkitError::NoBinary(tried))
}

/// A server process and everything it needs to be started again.
pub struct NodeProcess {
    pub id: u64,
    binary: PathBuf,
    config: PathBuf,
    data_dir: PathBuf,
    log: PathBuf,
    client_addr: SocketAddr,
    child: Option<Child>,
    paused: bool,
}

impl NodeProcess {
    /// A node (not yet started) whose files live under `dir`; `config_text` is written to
    /// `dir/node.toml` and must name `client_addr` and `dir/data`.
    pub fn new(
        id: u64,
        binary: PathBuf,
        dir: &Path,
        config_text: &str,
        client_addr: SocketAddr,
    ) -> Result<NodeProcess> {
        std::fs::create_dir_all(dir)?;
        let config = dir.join("node.toml");
        std::fs::write(&config, config_text)?;
        Ok(NodeProcess {
            id,
            binary,
            config,
            data_dir: dir.join("data"),
            log: dir.join("server.log"),
            client_addr,
            child: None,
            paused: false,
        })
    }

    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    pub fn client_addr(&self) -> SocketAddr {
        self.client_addr
    }

    /// The process id while it runs (for reading `/proc/<pid>/stat` and `status`).
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(|c| c.id())
    }

    pub fn is_running(&self) -> bool {
        self.child.is_some()
    }

    pub fn is_paused(&self) -> bool {
        self.paused
    }

    /// Starts the process (it must not be running) and waits until `/healthz` answers.
    pub async fn start(&mut self, limit: Duration) -> Result<()> {
        if self.child.is_some() {
            return Err(self.fail("already running".into()));
        }
        let log = File::options().create(true).append(true).open(&self.log)?;
        let child = Command::new(&self.binary)
            .arg("serve")
            .arg("--config")
            .arg(&self.config)
            .env(
                "RUST_LOG",
                std::env::var("CONCORD_NODE_LOG").unwrap_or_else(|_| "info".into()),
            )
            .env("NO_COLOR", "1")
            .env_remove("CONCORD_AUTH_SECRET")
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .map_err(|source| TestkitError::Spawn {
                binary: self.binary.clone(),
                source,
            })?;
        self.child = Some(child);
        self.paused = false;
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                self.child = None;
                return Err(self.fail(format!(
                    "exited during startup ({status}); log:\n{}",
                    self.log_tail(4000)
                )));
            }
            let ok = http::get(self.client_addr, "/healthz", Duration::from_millis(500))
                .await
                .map(|r| r.status == 200)
                .unwrap_or(false);
            if ok {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(self.fail(format!(
                    "not healthy within {limit:?}; log:\n{}",
                    self.log_tail(4000)
                )));
            }
            tokio::time::sleep(Duration::from_millis(30)).await;
        }
    }

    /// SIGKILL (no shutdown handler runs) and reap. Nothing if not running.
    pub fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        self.paused = false;
    }

    /// SIGSTOP: the process freezes (its sockets stay open, nothing answers).
    pub fn pause(&mut self) -> Result<()> {
        self.signal(libc::SIGSTOP)?;
        self.paused = true;
        Ok(())
    }

    /// SIGCONT after [`NodeProcess::pause`].
    pub fn resume(&mut self) -> Result<()> {
        self.signal(libc::SIGCONT)?;
        self.paused = false;
        Ok(())
    }

    fn signal(&self, signal: libc::c_int) -> Result<()> {
        let Some(child) = self.child.as_ref() else {
            return Err(self.fail("not running".into()));
        };
        // SAFETY: `kill` has no memory effects; the pid is our own, unreaped child.
        let rc = unsafe { libc::kill(child.id() as libc::pid_t, signal) };
        if rc != 0 {
            return Err(TestkitError::Io(std::io::Error::last_os_error()));
        }
        Ok(())
    }

    /// The last `max` bytes of the process's log.
    pub fn log_tail(&self, max: u64) -> String {
        let Ok(mut f) = File::open(&self.log) else {
            return String::new();
        };
        let len = f.metadata().map(|m| m.len()).unwrap_or(0);
        let _ = f.seek(SeekFrom::Start(len.saturating_sub(max)));
        let mut s = String::new();
        let _ = f.read_to_string(&mut s);
        s
    }

    /// The digest of the node's relay database, read offline by `concord-server digest`
    /// (the process should be stopped first).
    pub fn digest(&self) -> Result<crate::digest::Digest> {
        let out = Command::new(&self.binary)
            .arg("digest")
            .arg("--data-dir")
            .arg(&self.data_dir)
            .stderr(Stdio::piped())
            .output()
            .map_err(|source| TestkitError::Spawn {
                binary: self.binary.clone(),
                source,
            })?;
        if !out.status.success() {
            return Err(self.fail(format!(
                "digest failed: {}",
                String::from_utf8_lossy(&out.stderr)
            )));
        }
        Ok(serde_json::from_slice(&out.stdout)?)
    }

    fn fail(&self, message: String) -> TestkitError {
        TestkitError::Node {
            node: self.id,
            message,
        }
    }
}

impl Drop for NodeProcess {
    fn drop(&mut self) {
        if self.paused {
            let _ = self.resume();
        }
        self.kill9();
    }
}

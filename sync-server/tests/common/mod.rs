//! Shared helpers for the server integration tests: a real `concord-server` process
//! ([`ServerProcess`]) and a raw protocol client ([`RawClient`]) that sends exactly the
//! frames a test chooses and reads back decoded messages, every wait bounded.

#![allow(dead_code)]

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use concord_core::protocol::{
    self, Catchup, ErrorCode, ErrorFrame, Hello, Message, Subscribe, Updates, PROTOCOL_VERSION,
};
use concord_core::{DocKind, Origin, Store, UpdateRecord, VersionVector};
use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_tungstenite::tungstenite::Message as WsMessage;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// How long any single wait for the server (a reply, a health check) may take.
pub const WAIT: Duration = Duration::from_secs(10);

pub use concord_testkit::ports::free_port;

/// A running `concord-server` binary on 127.0.0.1. Killed (SIGKILL) when dropped; its log
/// is printed when a test panics.
pub struct ServerProcess {
    child: Option<Child>,
    port: u16,
    data_dir: PathBuf,
    args: Vec<String>,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

impl ServerProcess {
    /// Starts the server on a free port with a fresh data dir and `args` (extra flags such
    /// as `--auth-secret s`), and waits until `/healthz` answers.
    pub async fn start(args: &[&str]) -> ServerProcess {
        let dir = tempfile::tempdir().unwrap();
        let mut server = ServerProcess {
            child: None,
            port: free_port(),
            data_dir: dir.path().join("data"),
            args: args.iter().map(|s| s.to_string()).collect(),
            log: dir.path().join("server.log"),
            _dir: dir,
        };
        server.spawn_on(server.port).await;
        server
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// The WebSocket sync endpoint.
    pub fn url(&self) -> String {
        format!("ws://127.0.0.1:{}/sync", self.port)
    }

    /// Runs the binary on `port` with this server's data dir and flags; waits for health.
    async fn spawn_on(&mut self, port: u16) {
        assert!(self.child.is_none(), "a server process is already running");
        let log = File::options()
            .create(true)
            .append(true)
            .open(&self.log)
            .unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_concord-server"))
            .arg("--listen")
            .arg(format!("127.0.0.1:{port}"))
            .arg("--data-dir")
            .arg(&self.data_dir)
            .args(&self.args)
            .env("RUST_LOG", "info")
            .env("NO_COLOR", "1")
            .env_remove("CONCORD_AUTH_SECRET")
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("start concord-server");
        self.child = Some(child);
        self.wait_healthy(port).await;
    }

    async fn wait_healthy(&mut self, port: u16) {
        let deadline = Instant::now() + WAIT;
        loop {
            if let Some(status) = self.child.as_mut().unwrap().try_wait().unwrap() {
                panic!(
                    "concord-server exited during startup ({status}); log:\n{}",
                    self.log_tail()
                );
            }
            if healthz_on(port).await.is_some() {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "concord-server did not become healthy on port {port}; log:\n{}",
                self.log_tail()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// `GET /healthz`, as JSON.
    pub async fn healthz(&self) -> serde_json::Value {
        healthz_on(self.port)
            .await
            .expect("the server answers /healthz")
    }

    /// Kills the process with SIGKILL (no shutdown handler runs) and reaps it.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the server again on the same port and data dir (killing it first if running).
    pub async fn restart(&mut self) {
        self.kill();
        self.spawn_on(self.port).await;
    }

    /// Starts the server on the same data dir but another port (so that clients that
    /// reconnect to the usual port cannot reach it), for inspecting what was stored.
    /// Returns the probe's sync URL; stop it with [`ServerProcess::kill`].
    pub async fn restart_on_probe_port(&mut self) -> String {
        self.kill();
        let port = free_port();
        self.spawn_on(port).await;
        format!("ws://127.0.0.1:{port}/sync")
    }

    /// The last lines of the server's log (for failure messages).
    pub fn log_tail(&self) -> String {
        let mut text = String::new();
        if let Ok(mut f) = File::open(&self.log) {
            let len = f.metadata().map(|m| m.len()).unwrap_or(0);
            let _ = f.seek(SeekFrom::Start(len.saturating_sub(8_000)));
            let _ = f.read_to_string(&mut text);
        }
        text
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        self.kill();
        if std::thread::panicking() {
            eprintln!(
                "---- concord-server log (port {}) ----\n{}",
                self.port,
                self.log_tail()
            );
        }
    }
}

/// `GET /healthz` on a loopback port; `None` if nothing answers (yet).
pub async fn healthz_on(port: u16) -> Option<serde_json::Value> {
    let fetch = async {
        let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .ok()?;
        stream
            .write_all(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
            .await
            .ok()?;
        let mut response = Vec::new();
        stream.read_to_end(&mut response).await.ok()?;
        let text = String::from_utf8(response).ok()?;
        let (head, body) = text.split_once("\r\n\r\n")?;
        if !head.starts_with("HTTP/1.1 200") {
            return None;
        }
        serde_json::from_str(body).ok()
    };
    tokio::time::timeout(Duration::from_secs(2), fetch)
        .await
        .ok()
        .flatten()
}

/// What a fresh subscriber receives for one document: the catch-up and the updates that
/// follow it.
#[derive(Debug, Clone, PartialEq)]
pub struct DocDump {
    pub catchup: Catchup,
    pub updates: Vec<UpdateRecord>,
}

impl DocDump {
    pub fn server_version(&self) -> &VersionVector {
        &self.catchup.server_version
    }
}

/// What [`RawClient::next_event`] saw.
pub enum Event {
    Message(Message),
    Closed(String),
    Timeout,
}

type Ws = WebSocketStream<MaybeTlsStream<tokio::net::TcpStream>>;

/// One WebSocket connection speaking the binary protocol frame by frame.
pub struct RawClient {
    ws: Ws,
    pub device: Origin,
    next_ping: u64,
}

impl RawClient {
    /// Opens the WebSocket; no Hello is sent.
    pub async fn connect(url: &str) -> RawClient {
        let (ws, _) = tokio::time::timeout(WAIT, tokio_tungstenite::connect_async(url))
            .await
            .expect("connect in time")
            .expect("WebSocket connect");
        RawClient {
            ws,
            device: Origin::random(),
            next_ping: 1000,
        }
    }

    /// Connects and completes the handshake (asserts a Welcome).
    pub async fn connect_hello(url: &str, token: Option<String>) -> RawClient {
        let mut client = RawClient::connect(url).await;
        match client.hello(token).await {
            Message::Welcome(w) => assert_eq!(w.protocol_version, PROTOCOL_VERSION),
            other => panic!("expected Welcome, got {other:?}"),
        }
        client
    }

    /// Sends Hello and returns the answer (Welcome or Error).
    pub async fn hello(&mut self, token: Option<String>) -> Message {
        self.send(&Message::Hello(Hello {
            protocol_version: PROTOCOL_VERSION,
            device_id: self.device.clone(),
            token,
        }))
        .await;
        self.recv().await
    }

    pub async fn send(&mut self, message: &Message) {
        self.send_raw(protocol::encode(message)).await;
    }

    /// Sends a message; false if the connection is gone.
    pub async fn try_send(&mut self, message: &Message) -> bool {
        let frame = WsMessage::Binary(protocol::encode(message).into());
        matches!(
            tokio::time::timeout(WAIT, self.ws.send(frame)).await,
            Ok(Ok(()))
        )
    }

    /// Sends arbitrary bytes as one binary frame.
    pub async fn send_raw(&mut self, frame: Vec<u8>) {
        tokio::time::timeout(WAIT, self.ws.send(WsMessage::Binary(frame.into())))
            .await
            .expect("send in time")
            .expect("send a binary frame");
    }

    /// Sends a text frame (not part of the protocol).
    pub async fn send_text(&mut self, text: &str) {
        tokio::time::timeout(WAIT, self.ws.send(WsMessage::Text(text.into())))
            .await
            .expect("send in time")
            .expect("send a text frame");
    }

    /// The next protocol message, within [`WAIT`]. Panics if the connection closes.
    pub async fn recv(&mut self) -> Message {
        self.recv_within(WAIT)
            .await
            .unwrap_or_else(|| panic!("no message from the server within {WAIT:?}"))
    }

    /// The next protocol message, or `None` if none arrives within `wait`. Panics if the
    /// connection closes.
    pub async fn recv_within(&mut self, wait: Duration) -> Option<Message> {
        match self.next_event(wait).await {
            Event::Message(m) => Some(m),
            Event::Timeout => None,
            Event::Closed(why) => panic!("the server closed the connection: {why}"),
        }
    }

    /// The next protocol message, or `None` if the server closed the connection.
    pub async fn recv_or_closed(&mut self) -> Option<Message> {
        match self.next_event(WAIT).await {
            Event::Message(m) => Some(m),
            Event::Timeout => panic!("no message from the server within {WAIT:?}"),
            Event::Closed(_) => None,
        }
    }

    /// The next protocol message, the connection's end (with the close frame, if any), or
    /// nothing within `wait`; WebSocket pings are answered and skipped.
    pub async fn next_event(&mut self, wait: Duration) -> Event {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let Ok(next) = tokio::time::timeout_at(deadline, self.ws.next()).await else {
                return Event::Timeout;
            };
            match next {
                Some(Ok(WsMessage::Binary(frame))) => {
                    return Event::Message(
                        protocol::decode(&frame).expect("the server sends valid frames"),
                    )
                }
                Some(Ok(WsMessage::Close(reason))) => {
                    return Event::Closed(format!("close frame {reason:?}"))
                }
                Some(Ok(WsMessage::Text(t))) => panic!("the server sent a text frame: {t}"),
                Some(Ok(_)) => continue, // WebSocket-level ping/pong
                Some(Err(e)) => return Event::Closed(e.to_string()),
                None => return Event::Closed("end of stream".into()),
            }
        }
    }

    /// The next message must be an Error frame with `code`.
    pub async fn expect_error(&mut self, code: ErrorCode) -> ErrorFrame {
        match self.recv().await {
            Message::Error(e) => {
                assert_eq!(e.code, code, "wrong error code in {e:?}");
                assert!(!e.message.is_empty(), "error frames explain themselves");
                e
            }
            other => panic!("expected an error {code}, got {other:?}"),
        }
    }

    /// Sends Ping(n); the next message must be Pong(n).
    pub async fn ping(&mut self) {
        self.next_ping += 1;
        let n = self.next_ping;
        self.send(&Message::Ping(n)).await;
        match self.recv().await {
            Message::Pong(m) if m == n => {}
            other => panic!("expected Pong({n}), got {other:?}"),
        }
    }

    /// Subscribes and collects the catch-up and the updates sent with it (a Ping after the
    /// Subscribe marks their end). Returns the error frame if the relay refused.
    pub async fn subscribe(
        &mut self,
        doc_id: &str,
        kind: DocKind,
        version: VersionVector,
    ) -> Result<DocDump, ErrorFrame> {
        self.send(&Message::Subscribe(Subscribe {
            doc_id: doc_id.into(),
            min_lsn: 0,
            linearizable: false,
            kind,
            version,
        }))
        .await;
        self.next_ping += 1;
        let n = self.next_ping;
        self.send(&Message::Ping(n)).await;
        let mut catchup = None;
        let mut error = None;
        let mut updates = Vec::new();
        loop {
            match self.recv().await {
                Message::Pong(m) if m == n => break,
                Message::Catchup(c) if c.doc_id == doc_id && catchup.is_none() => catchup = Some(c),
                Message::Updates(u) if u.doc_id == doc_id && catchup.is_some() => {
                    updates.extend(u.updates)
                }
                Message::Error(e) if error.is_none() && catchup.is_none() => error = Some(e),
                other => panic!("unexpected reply to Subscribe {doc_id:?}: {other:?}"),
            }
        }
        match (catchup, error) {
            (Some(catchup), None) => Ok(DocDump { catchup, updates }),
            (None, Some(e)) => Err(e),
            _ => panic!("Subscribe {doc_id:?} got neither a catch-up nor an error"),
        }
    }

    /// Subscribes from an empty version vector; panics on refusal.
    pub async fn subscribe_all(&mut self, doc_id: &str, kind: DocKind) -> DocDump {
        self.subscribe(doc_id, kind, VersionVector::new())
            .await
            .unwrap_or_else(|e| panic!("subscribing {doc_id:?} was refused: {e:?}"))
    }

    pub async fn send_updates(&mut self, doc_id: &str, updates: Vec<UpdateRecord>) {
        self.send(&Message::Updates(Updates {
            doc_id: doc_id.into(),
            lsn: 0,
            updates,
        }))
        .await;
    }

    /// The next message must be an Ack of `origin` up to `upto` on `doc_id`.
    pub async fn expect_ack(&mut self, doc_id: &str, origin: &Origin, upto: u64) {
        match self.recv().await {
            Message::Ack(a) if a.doc_id == doc_id && &a.origin == origin && a.upto == upto => {}
            other => panic!("expected Ack({doc_id}, {origin}, {upto}), got {other:?}"),
        }
    }

    /// The next message must be fanned-out Updates of `doc_id`; returns them.
    pub async fn expect_updates(&mut self, doc_id: &str) -> Vec<UpdateRecord> {
        match self.recv().await {
            Message::Updates(u) if u.doc_id == doc_id => u.updates,
            other => panic!("expected Updates of {doc_id:?}, got {other:?}"),
        }
    }

    /// Asserts that nothing arrives within `wait` (used only where something arriving
    /// would be wrong; the test does not depend on how long it waits).
    pub async fn expect_silence(&mut self, wait: Duration) {
        if let Some(m) = self.recv_within(wait).await {
            panic!("expected no message, got {m:?}");
        }
    }
}

/// What a brand-new, well-behaved client receives for `doc_id` (own connection).
pub async fn read_doc(url: &str, token: Option<String>, doc_id: &str, kind: DocKind) -> DocDump {
    let mut client = RawClient::connect_hello(url, token).await;
    client.subscribe_all(doc_id, kind).await
}

/// Commits one small edit to `doc_id` in `store` and returns the update record it made.
pub fn edit(store: &Store, doc_id: &str, n: u64) -> UpdateRecord {
    let kind = store.doc_kind(doc_id).unwrap().expect("the doc exists");
    store
        .transact(doc_id, |tx| match kind {
            DocKind::Automerge => tx.put(&format!("k{n}"), n as i64),
            DocKind::Yrs => tx.insert_text("body", 0, &format!("{n} ")),
        })
        .unwrap();
    store
        .outbox(doc_id)
        .unwrap()
        .pop()
        .expect("the edit is in the outbox")
}

/// Deterministic pseudo-random bytes (xorshift), for garbage payloads.
pub fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

/// Starts the relay inside this test process (same code as the binary) with its data in
/// `dir/server`, adjusted by `tweak`; returns its WebSocket URL once it accepts connections.
/// Needs a multi-threaded tokio runtime.
pub async fn in_process_relay(
    dir: &Path,
    tweak: impl FnOnce(&mut concord_server::ServerConfig),
) -> String {
    let addr: std::net::SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let mut config = concord_server::ServerConfig {
        listen: addr,
        data_dir: dir.join("server"),
        ..concord_server::ServerConfig::default()
    };
    tweak(&mut config);
    tokio::spawn(concord_server::serve(config, std::future::pending()));
    let deadline = Instant::now() + WAIT;
    while tokio::net::TcpStream::connect(addr).await.is_err() {
        assert!(
            Instant::now() < deadline,
            "the in-process relay did not start"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    format!("ws://{addr}/sync")
}

/// Seconds since the Unix epoch (token lifetimes).
pub fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// An access token signed with `secret` for `docs` (ids or `prefix/*`) with `right`
/// (`read` or `write`), expiring at `exp` (Unix seconds).
pub fn signed_token(secret: &str, docs: &[&str], right: &str, exp: u64) -> String {
    concord_server::auth::issue(
        secret.as_bytes(),
        &concord_server::auth::Claims {
            sub: "test".into(),
            docs: docs.iter().map(|d| d.to_string()).collect(),
            right: right.into(),
            exp,
        },
    )
    .unwrap()
}

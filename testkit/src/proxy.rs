//! A TCP proxy for one link (listen address → target address) whose behaviour is changed at
//! run time: pass, delay each chunk per direction, drop (close every connection and refuse
//! new ones), blackhole (keep connections open but forward nothing: a hung link, as in a
//! partition; what was held is forwarded after healing, like TCP retransmission), heal; and
//! retarget (new connections go to another address, as a name moved to a new machine).
//!
//! Every proxy runs on one runtime of its own: a link keeps moving whatever else the
//! process runs (devices whose sync clients do synchronous SQLite work on the caller's
//! runtime would otherwise starve the links, a stall no network would show).

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

use crate::error::{Result, TestkitError};

/// What the link does with traffic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkMode {
    /// Forward everything (after the configured delay).
    Pass,
    /// Close every connection; refuse new ones (accept and close at once).
    Drop,
    /// Accept and keep connections, forward nothing until healed.
    Blackhole,
    /// The proxy was shut down: every connection ends.
    Closed,
}

struct Shared {
    mode: watch::Sender<LinkMode>,
    /// Where new connections go.
    target: std::sync::Mutex<SocketAddr>,
    /// Delay per chunk, client → target (ms).
    delay_up: AtomicU64,
    /// Delay per chunk, target → client (ms).
    delay_down: AtomicU64,
    /// Connections accepted so far (for tests and reports).
    accepted: AtomicU64,
}

/// One running link proxy. Dropping it closes the listener and every connection.
pub struct Proxy {
    listen: SocketAddr,
    shared: Arc<Shared>,
    task: tokio::task::JoinHandle<()>,
}

/// The runtime every proxy runs on (two workers, started with the first proxy).
fn runtime() -> &'static tokio::runtime::Runtime {
    static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("link-proxy")
            .enable_all()
            .build()
            .expect("the proxies' runtime starts")
    })
}

impl Proxy {
    /// Binds `listen` (port 0 for any free port) and forwards to `target`.
    pub async fn start(listen: SocketAddr, target: SocketAddr) -> Result<Proxy> {
        let bind = |source| TestkitError::Bind {
            addr: listen,
            source,
        };
        let listener = std::net::TcpListener::bind(listen).map_err(bind)?;
        listener.set_nonblocking(true).map_err(TestkitError::Io)?;
        let listen = listener.local_addr().map_err(TestkitError::Io)?;
        let (mode, _) = watch::channel(LinkMode::Pass);
        let shared = Arc::new(Shared {
            mode,
            target: std::sync::Mutex::new(target),
            delay_up: AtomicU64::new(0),
            delay_down: AtomicU64::new(0),
            accepted: AtomicU64::new(0),
        });
        let accepting = shared.clone();
        let task = runtime().spawn(async move {
            match TcpListener::from_std(listener) {
                Ok(listener) => accept_loop(listener, accepting).await,
                Err(e) => tracing::error!(error = %e, "a link proxy could not listen"),
            }
        });
        Ok(Proxy {
            listen,
            shared,
            task,
        })
    }

    /// The address clients of this link connect to.
    pub fn addr(&self) -> SocketAddr {
        self.listen
    }

    /// The address this link forwards to.
    pub fn target(&self) -> SocketAddr {
        *self.shared.target.lock().expect("target")
    }

    /// New connections go to `target` from now on (open ones stay where they are).
    pub fn retarget(&self, target: SocketAddr) {
        *self.shared.target.lock().expect("target") = target;
    }

    pub fn mode(&self) -> LinkMode {
        *self.shared.mode.borrow()
    }

    /// Connections accepted since the start.
    pub fn accepted(&self) -> u64 {
        self.shared.accepted.load(Ordering::SeqCst)
    }

    /// Forward everything again (delays are kept; see [`Proxy::heal`]).
    pub fn pass(&self) {
        self.shared.mode.send_replace(LinkMode::Pass);
    }

    /// Close all current connections and refuse new ones.
    pub fn drop_all(&self) {
        self.shared.mode.send_replace(LinkMode::Drop);
    }

    /// Keep connections but forward nothing.
    pub fn blackhole(&self) {
        self.shared.mode.send_replace(LinkMode::Blackhole);
    }

    /// Delay every chunk by `up` (client → target) and `down` (target → client).
    pub fn delay(&self, up: Duration, down: Duration) {
        self.shared
            .delay_up
            .store(up.as_millis() as u64, Ordering::SeqCst);
        self.shared
            .delay_down
            .store(down.as_millis() as u64, Ordering::SeqCst);
    }

    /// Back to a plain link: pass, no delay.
    pub fn heal(&self) {
        self.delay(Duration::ZERO, Duration::ZERO);
        self.pass();
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.shared.mode.send_replace(LinkMode::Closed);
        self.task.abort();
    }
}

async fn accept_loop(listener: TcpListener, shared: Arc<Shared>) {
    loop {
        let Ok((client, _)) = listener.accept().await else {
            // Out of descriptors or similar: back off a moment rather than spin.
            tokio::time::sleep(Duration::from_millis(20)).await;
            continue;
        };
        shared.accepted.fetch_add(1, Ordering::SeqCst);
        match *shared.mode.borrow() {
            LinkMode::Drop | LinkMode::Closed => {
                drop(client);
                continue;
            }
            LinkMode::Pass | LinkMode::Blackhole => {}
        }
        let _ = client.set_nodelay(true);
        let target = *shared.target.lock().expect("target");
        tokio::spawn(connection(client, target, shared.clone()));
    }
}

/// Waits until the mode allows traffic. `false` when the connection must end instead.
async fn may_forward(mode: &mut watch::Receiver<LinkMode>) -> bool {
    loop {
        let current = *mode.borrow_and_update();
        match current {
            LinkMode::Pass => return true,
            LinkMode::Drop | LinkMode::Closed => return false,
            LinkMode::Blackhole => {
                if mode.changed().await.is_err() {
                    return false;
                }
            }
        }
    }
}

/// Resolves when the link is dropped or closed.
async fn ends(mut mode: watch::Receiver<LinkMode>) {
    loop {
        if matches!(*mode.borrow_and_update(), LinkMode::Drop | LinkMode::Closed) {
            return;
        }
        if mode.changed().await.is_err() {
            return;
        }
    }
}

async fn connection(client: TcpStream, target: SocketAddr, shared: Arc<Shared>) {
    let mut mode = shared.mode.subscribe();
    // A hung link hangs the connect too: dial the target only once traffic may flow.
    if !may_forward(&mut mode).await {
        return;
    }
    let upstream = tokio::select! {
        r = TcpStream::connect(target) => match r {
            Ok(s) => s,
            Err(_) => return,
        },
        _ = ends(shared.mode.subscribe()) => return,
    };
    let _ = upstream.set_nodelay(true);
    let (client_read, client_write) = client.into_split();
    let (up_read, up_write) = upstream.into_split();
    let up = pump(client_read, up_write, &shared, Direction::Up);
    let down = pump(up_read, client_write, &shared, Direction::Down);
    // Either direction ending (EOF, error, drop) ends the connection: both sockets close.
    tokio::select! {
        _ = up => {}
        _ = down => {}
        _ = ends(shared.mode.subscribe()) => {}
    }
}

#[derive(Clone, Copy)]
enum Direction {
    Up,
    Down,
}

async fn pump(
    mut from: OwnedReadHalf,
    mut to: OwnedWriteHalf,
    shared: &Shared,
    direction: Direction,
) {
    let mut mode = shared.mode.subscribe();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        let delay = match direction {
            Direction::Up => shared.delay_up.load(Ordering::SeqCst),
            Direction::Down => shared.delay_down.load(Ordering::SeqCst),
        };
        if delay > 0 {
            tokio::time::sleep(Duration::from_millis(delay)).await;
        }
        // Blackholed: hold this chunk (and read nothing more) until healed.
        if !may_forward(&mut mode).await {
            return;
        }
        if to.write_all(&buf[..n]).await.is_err() {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An echo server on a free port; returns its address.
    async fn echo() -> SocketAddr {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((mut s, _)) = l.accept().await {
                tokio::spawn(async move {
                    let mut buf = [0u8; 1024];
                    while let Ok(n) = s.read(&mut buf).await {
                        if n == 0 || s.write_all(&buf[..n]).await.is_err() {
                            return;
                        }
                    }
                });
            }
        });
        addr
    }

    async fn roundtrip(s: &mut TcpStream, msg: &[u8], limit: Duration) -> Option<Vec<u8>> {
        s.write_all(msg).await.ok()?;
        let mut buf = vec![0u8; msg.len()];
        match tokio::time::timeout(limit, s.read_exact(&mut buf)).await {
            Ok(Ok(_)) => Some(buf),
            _ => None,
        }
    }

    async fn proxy() -> Proxy {
        Proxy::start("127.0.0.1:0".parse().unwrap(), echo().await)
            .await
            .unwrap()
    }

    const LONG: Duration = Duration::from_secs(5);
    const SHORT: Duration = Duration::from_millis(300);

    #[tokio::test]
    async fn passes_traffic_both_ways() {
        let p = proxy().await;
        let mut s = TcpStream::connect(p.addr()).await.unwrap();
        assert_eq!(
            roundtrip(&mut s, b"hello", LONG).await.as_deref(),
            Some(&b"hello"[..])
        );
        assert_eq!(p.accepted(), 1);
    }

    #[tokio::test]
    async fn drop_closes_current_connections_and_refuses_new_ones_until_healed() {
        let p = proxy().await;
        let mut s = TcpStream::connect(p.addr()).await.unwrap();
        assert!(roundtrip(&mut s, b"a", LONG).await.is_some());
        p.drop_all();
        // The open connection is closed: a read sees EOF (or a reset).
        let mut buf = [0u8; 1];
        let read = tokio::time::timeout(LONG, s.read(&mut buf)).await.unwrap();
        assert!(matches!(read, Ok(0) | Err(_)));
        // A new one is accepted and closed at once.
        let mut s2 = TcpStream::connect(p.addr()).await.unwrap();
        assert!(roundtrip(&mut s2, b"b", LONG).await.is_none());
        p.heal();
        let mut s3 = TcpStream::connect(p.addr()).await.unwrap();
        assert_eq!(
            roundtrip(&mut s3, b"c", LONG).await.as_deref(),
            Some(&b"c"[..])
        );
    }

    #[tokio::test]
    async fn blackhole_hangs_the_link_and_healing_delivers_what_was_held() {
        let p = proxy().await;
        let mut s = TcpStream::connect(p.addr()).await.unwrap();
        assert!(roundtrip(&mut s, b"a", LONG).await.is_some());
        p.blackhole();
        // Nothing comes back while blackholed, and the connection stays open.
        assert!(roundtrip(&mut s, b"b", SHORT).await.is_none());
        // A new connection is accepted but hangs too.
        let mut s2 = TcpStream::connect(p.addr()).await.unwrap();
        assert!(roundtrip(&mut s2, b"x", SHORT).await.is_none());
        p.heal();
        let mut buf = [0u8; 1];
        tokio::time::timeout(LONG, s.read_exact(&mut buf))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(&buf, b"b");
        tokio::time::timeout(LONG, s2.read_exact(&mut buf))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(&buf, b"x");
    }

    #[tokio::test]
    async fn delay_holds_each_chunk() {
        let p = proxy().await;
        let mut s = TcpStream::connect(p.addr()).await.unwrap();
        p.delay(Duration::from_millis(1000), Duration::from_millis(1000));
        // Within a window shorter than the delay nothing arrives; then it does.
        assert!(roundtrip(&mut s, b"slow", Duration::from_millis(200))
            .await
            .is_none());
        let mut buf = [0u8; 4];
        tokio::time::timeout(LONG, s.read_exact(&mut buf))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(&buf, b"slow");
        p.heal();
        assert!(roundtrip(&mut s, b"fast", LONG).await.is_some());
    }
}

//! The native sync client (feature `native-client`): a tokio + WebSocket shell around the
//! sans-IO [`ClientDriver`]. It owns the socket and a timer, nothing else: it waits for a
//! frame, a local commit or the driver's timeout, feeds the driver and carries out what
//! the driver asks (connect, send, close). Every protocol decision — backoff, keepalive,
//! which errors end the run, when a one-shot sync is done — is the driver's.
//!
//! [`sync_once`] connects, syncs until caught up and returns; [`SyncClient::spawn`] keeps
//! syncing in the background, reconnecting after failures, and reports its status and
//! every acknowledgement ([`Acked`], with its log position). Both take the URLs of the
//! relay's nodes and rotate through them with backoff. A background client also carries
//! presence: [`SyncClient::set_presence`] and [`SyncClient::presence_changes`].
//!
//! Each sync runs on a thread of its own (with a single-threaded tokio runtime): the
//! store's SQLite work (a commit waits for its fsync, applying remote Automerge changes
//! takes CPU) then never holds up the app's own async runtime, its timers or its sockets.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{FutureExt, SinkExt, StreamExt};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::{self, Message as WsMessage};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use crate::notify::ChangeSource;
use crate::store::Store;
use crate::sync::{ClientConfig, ClientDriver, Disconnect, DriverEvent, DriverMode, OsRandom};

pub use crate::sync::{Acked, Backoff, ClientError, ClientStatus, PeerState};

/// Who is present on a document now (after a change): every peer with its state.
pub type PresenceChange = (String, Vec<PeerState>);
type PresenceListeners = Arc<Mutex<Vec<mpsc::UnboundedSender<PresenceChange>>>>;

/// What a background client's task shares with its handle besides the status.
struct Hooks<'a> {
    status: Option<&'a watch::Sender<ClientStatus>>,
    acks: Option<&'a AckListeners>,
    presence_out: Option<&'a PresenceListeners>,
    presence_in: Option<&'a mut mpsc::UnboundedReceiver<(String, Vec<u8>)>>,
}

/// Where a background client reports acknowledgements: every registered receiver gets
/// every [`Acked`] (receivers that were dropped are forgotten).
type AckListeners = Arc<Mutex<Vec<mpsc::UnboundedSender<Acked>>>>;

type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;
type Connecting = Pin<Box<dyn Future<Output = Result<Socket, tungstenite::Error>> + Send>>;

/// The open connection, split into its two directions.
struct Link {
    sink: SplitSink<Socket, WsMessage>,
    stream: SplitStream<Socket>,
}

/// Runs `driver` until it ends (or `cancel` fires): the socket and the timer, nothing else.
/// `origin` is the instant the driver's clock counts from.
async fn drive(
    mut driver: ClientDriver<Store, OsRandom>,
    origin: Instant,
    local: &mut mpsc::UnboundedReceiver<String>,
    hooks: Hooks<'_>,
    cancel: &mut watch::Receiver<bool>,
) -> Result<(), ClientError> {
    let Hooks {
        status,
        acks,
        presence_out,
        mut presence_in,
    } = hooks;
    let now = || origin.elapsed();
    let mut link: Option<Link> = None;
    let mut connecting: Option<(String, Connecting)> = None;
    let mut local_open = true;
    loop {
        let mut fed = false;
        while let Some(event) = driver.poll_event() {
            match event {
                DriverEvent::Connect(url) => {
                    let attempt = tokio_tungstenite::connect_async_with_config(
                        url.clone(),
                        Some(socket_config()),
                        false,
                    );
                    connecting = Some((url, Box::pin(async move { Ok(attempt.await?.0) })));
                }
                DriverEvent::Transmit(frame) => {
                    let Some(l) = link.as_mut() else { continue };
                    match l.sink.feed(WsMessage::Binary(frame.into())).await {
                        Ok(()) => fed = true,
                        Err(e) => {
                            let reason = write_failed(link.take(), e).await;
                            driver.handle_disconnected(now(), reason);
                        }
                    }
                }
                DriverEvent::Close => {
                    connecting = None;
                    if let Some(mut l) = link.take() {
                        // A relay that stopped reading must not hold up a stop.
                        let _ = tokio::time::timeout(CLOSE_WAIT, l.sink.close()).await;
                    }
                }
                DriverEvent::Status(s) => {
                    if let (false, Some(error)) = (s.connected, &s.last_error) {
                        tracing::info!(%error, retries = s.retries, "sync connection down");
                    }
                    if let Some(status) = status {
                        status.send_replace(s);
                    }
                }
                DriverEvent::Acked(ack) => {
                    if let Some(acks) = acks {
                        let mut listeners = acks.lock().expect("ack listeners lock");
                        listeners.retain(|l| l.send(ack.clone()).is_ok());
                    }
                }
                DriverEvent::Presence(doc) => {
                    if let Some(listeners) = presence_out {
                        let change = (doc.clone(), driver.presence(&doc));
                        let mut listeners = listeners.lock().expect("presence listeners lock");
                        listeners.retain(|l| l.send(change.clone()).is_ok());
                    }
                }
                DriverEvent::Refused(e) => {
                    tracing::info!(doc = ?e.doc_id, code = e.code.name(), message = %e.message, "the relay refused a document");
                }
                DriverEvent::Ended(result) => {
                    if let Err(error) = &result {
                        tracing::info!(%error, "sync ended");
                    }
                    return result;
                }
            }
        }
        if fed {
            if let Some(l) = link.as_mut() {
                if let Err(e) = l.sink.flush().await {
                    let reason = write_failed(link.take(), e).await;
                    driver.handle_disconnected(now(), reason);
                    continue;
                }
            }
        }

        let deadline = driver.poll_timeout().map(|t| origin + t);
        let timer = async move {
            match deadline {
                Some(at) => tokio::time::sleep_until(at).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            opened = async { connecting.as_mut().expect("guarded").1.as_mut().await }, if connecting.is_some() => {
                let (url, _) = connecting.take().expect("guarded");
                match opened {
                    Ok(socket) => {
                        let (sink, stream) = socket.split();
                        link = Some(Link { sink, stream });
                        driver.handle_connected(now());
                    }
                    Err(e) => driver.handle_disconnected(
                        now(),
                        Disconnect::ConnectFailed { url, reason: e.to_string() },
                    ),
                }
            }
            msg = async { link.as_mut().expect("guarded").stream.next().await }, if link.is_some() => {
                match msg {
                    Some(Ok(WsMessage::Binary(frame))) => {
                        // Every frame already waiting goes to the driver at once, so the
                        // store applies them in one transaction (group commit).
                        let mut frames = vec![frame];
                        let mut next = None;
                        while frames.len() < MAX_FRAMES_AT_ONCE {
                            let Some(l) = link.as_mut() else { break };
                            match l.stream.next().now_or_never() {
                                Some(Some(Ok(WsMessage::Binary(f)))) => frames.push(f),
                                Some(other) => {
                                    next = Some(other);
                                    break;
                                }
                                None => break,
                            }
                        }
                        driver.handle_frames(now(), &frames);
                        if let Some(other) = next {
                            not_a_frame(other, &mut link, &mut driver, now());
                        }
                    }
                    other => not_a_frame(other, &mut link, &mut driver, now()),
                }
            }
            Some((doc, state)) = async { presence_in.as_mut().expect("guarded").recv().await }, if presence_in.is_some() => {
                driver.set_presence(now(), &doc, state);
            }
            doc = local.recv(), if local_open => match doc {
                Some(doc) => driver.handle_local_change(now(), &doc),
                None => local_open = false,
            },
            _ = timer => driver.handle_timeout(now()),
            // The events of the stop (close, status, ended) are carried out above.
            _ = cancel.changed() => driver.stop(),
        }
    }
}

/// How long closing a connection may wait for the relay to take the close frame.
const CLOSE_WAIT: Duration = Duration::from_secs(2);

/// At most this many waiting frames are handed to the driver together.
const MAX_FRAMES_AT_ONCE: usize = 512;

/// The largest message (and frame) the client takes from the relay. A catch-up snapshot is
/// the document's whole saved state in one message: tungstenite's default bounds (16 MiB a
/// frame, 64 MiB a message) refused documents above them, and such a document could never
/// reach a new device. The device holds the document anyway; this only bounds a relay gone
/// wrong.
pub const MAX_INCOMING_BYTES: usize = 1 << 30;

fn socket_config() -> tungstenite::protocol::WebSocketConfig {
    tungstenite::protocol::WebSocketConfig::default()
        .max_message_size(Some(MAX_INCOMING_BYTES))
        .max_frame_size(Some(MAX_INCOMING_BYTES))
}

/// What arrived on the socket that is not a binary frame: a close, its end, an error.
fn not_a_frame(
    msg: Option<Result<WsMessage, tungstenite::Error>>,
    link: &mut Option<Link>,
    driver: &mut ClientDriver<Store, OsRandom>,
    now: Duration,
) {
    match msg {
        Some(Ok(WsMessage::Binary(frame))) => driver.handle_frame(now, &frame),
        Some(Ok(WsMessage::Close(frame))) => {
            *link = None;
            driver.handle_disconnected(now, closed(frame));
        }
        None => {
            *link = None;
            driver.handle_disconnected(now, Disconnect::Lost("closed by the relay".into()));
        }
        Some(Ok(_)) => {}
        Some(Err(e)) => {
            *link = None;
            driver.handle_disconnected(now, Disconnect::Lost(e.to_string()));
        }
    }
}

/// Why a write failed: the relay may have closed the connection with a reason (e.g. 1009
/// for a frame above its limit); report that rather than the write error.
async fn write_failed(link: Option<Link>, error: tungstenite::Error) -> Disconnect {
    let reason = match link {
        Some(mut l) => close_reason(&mut l.stream).await,
        None => None,
    };
    reason.unwrap_or_else(|| Disconnect::Lost(error.to_string()))
}

/// The disconnection a close frame from the relay means.
fn closed(frame: Option<tungstenite::protocol::CloseFrame>) -> Disconnect {
    match frame {
        Some(f) => Disconnect::Closed {
            code: u16::from(f.code),
            reason: f.reason.to_string(),
        },
        None => Disconnect::Lost("closed by the relay".into()),
    }
}

/// After a failed write: the relay's close frame, if one arrives within a moment.
async fn close_reason(stream: &mut SplitStream<Socket>) -> Option<Disconnect> {
    let wait = async {
        while let Some(msg) = stream.next().await {
            match msg {
                Ok(WsMessage::Close(Some(frame))) => return Some(closed(Some(frame))),
                Ok(WsMessage::Close(None)) | Err(_) => return None,
                Ok(_) => continue,
            }
        }
        None
    };
    tokio::time::timeout(CLOSE_WAIT, wait).await.ok().flatten()
}

fn local_changes(store: &Store) -> (crate::Subscription, mpsc::UnboundedReceiver<String>) {
    let (tx, rx) = mpsc::unbounded_channel();
    let sub = store.subscribe(None, move |event| {
        if event.source == ChangeSource::Local {
            let _ = tx.send(event.doc_id.clone());
        }
    });
    (sub, rx)
}

/// The URLs as the driver takes them; none is a connection error.
fn url_list(urls: impl IntoIterator<Item = impl Into<String>>) -> Result<Vec<String>, ClientError> {
    let urls: Vec<String> = urls.into_iter().map(Into::into).collect();
    if urls.is_empty() {
        return Err(ClientError::Connect {
            url: String::new(),
            reason: "no relay URL given".into(),
        });
    }
    Ok(urls)
}

/// Connects to the first of `urls` (the relay's nodes), syncs every document in scope
/// until this device and the relay hold the same updates and the outbox is empty, then
/// disconnects. A node that cannot serve (unreachable, `replica_behind`, `unavailable`) is
/// left for the next URL, with backoff; the sync fails when every URL in a row could not
/// be reached, or at `timeout`. A document the relay refuses (outside the token's scope,
/// say) does not stop the others: they finish, then every refused document is returned in
/// [`ClientError::DocumentsRefused`] (one error each) and their updates stay in the outbox.
/// A refused connection (token missing, invalid or expired) is [`ClientError::Refused`].
pub async fn sync_once(
    store: &Store,
    urls: impl IntoIterator<Item = impl Into<String>>,
    config: ClientConfig,
    timeout: Duration,
) -> Result<(), ClientError> {
    let urls = url_list(urls)?;
    let first = urls[0].clone();
    let store = store.clone();
    // Dropping this future (a timeout around it, say) drops the sender: the thread stops.
    let (_cancel_tx, mut cancel) = watch::channel(false);
    let done = on_own_thread("concord-sync-once", move || async move {
        let (_sub, mut local) = local_changes(&store);
        let origin = Instant::now();
        let driver = ClientDriver::new(
            store,
            config,
            urls,
            DriverMode::Once { timeout },
            OsRandom,
            Duration::ZERO,
        );
        let hooks = Hooks {
            status: None,
            acks: None,
            presence_out: None,
            presence_in: None,
        };
        drive(driver, origin, &mut local, hooks, &mut cancel).await
    })
    .map_err(|e| ClientError::Connect {
        url: first.clone(),
        reason: format!("cannot start the sync thread: {e}"),
    })?;
    done.await.unwrap_or_else(|_| {
        Err(ClientError::Disconnected(
            "the sync thread ended without a result".into(),
        ))
    })
}

/// Runs the future `make` builds on a new thread named `name`, on a single-threaded
/// runtime of its own; its output arrives on the returned receiver (dropped unanswered if
/// the future panics).
fn on_own_thread<F, Fut, T>(name: &str, make: F) -> std::io::Result<oneshot::Receiver<T>>
where
    F: FnOnce() -> Fut + Send + 'static,
    Fut: Future<Output = T>,
    T: Send + 'static,
{
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let (tx, rx) = oneshot::channel();
    std::thread::Builder::new()
        .name(name.into())
        .spawn(move || {
            let _ = tx.send(runtime.block_on(make()));
        })?;
    Ok(rx)
}

/// A background sync task. Dropping the handle (or [`SyncClient::stop`]) ends it.
pub struct SyncClient {
    store: Store,
    status: Arc<watch::Sender<ClientStatus>>,
    acks: AckListeners,
    presence: PresenceListeners,
    presence_tx: mpsc::UnboundedSender<(String, Vec<u8>)>,
    cancel: watch::Sender<bool>,
    /// Answered when the client's thread ends.
    ended: Option<oneshot::Receiver<()>>,
}

impl SyncClient {
    /// Starts syncing `store` with the relay whose nodes are at `urls` and keeps at it,
    /// reconnecting after failures with `backoff`, each attempt to the next URL (a node
    /// answering `replica_behind` or `unavailable` counts as a failure). Local commits are
    /// sent as they happen. When the relay refuses the connection for good (e.g. an expired
    /// token), the client stops and says so in [`ClientStatus::stopped`].
    ///
    /// The client runs on a thread of its own, so it needs no tokio runtime of the caller's
    /// (the receivers it hands out work on any runtime).
    ///
    /// # Panics
    /// If `urls` is empty, or the operating system cannot start a thread.
    pub fn spawn(
        store: Store,
        urls: impl IntoIterator<Item = impl Into<String>>,
        config: ClientConfig,
        backoff: Backoff,
    ) -> SyncClient {
        Self::start(store, urls, config, backoff, Vec::new())
    }

    /// [`SyncClient::spawn`], with a receiver of every acknowledgement from the start.
    pub fn spawn_with_acks(
        store: Store,
        urls: impl IntoIterator<Item = impl Into<String>>,
        config: ClientConfig,
        backoff: Backoff,
    ) -> (SyncClient, mpsc::UnboundedReceiver<Acked>) {
        let (tx, rx) = mpsc::unbounded_channel();
        (Self::start(store, urls, config, backoff, vec![tx]), rx)
    }

    fn start(
        store: Store,
        urls: impl IntoIterator<Item = impl Into<String>>,
        config: ClientConfig,
        backoff: Backoff,
        listeners: Vec<mpsc::UnboundedSender<Acked>>,
    ) -> SyncClient {
        let urls = url_list(urls).expect("a sync client needs a relay URL");
        let status = Arc::new(watch::Sender::new(ClientStatus::default()));
        let acks: AckListeners = Arc::new(Mutex::new(listeners));
        let (cancel_tx, mut cancel) = watch::channel(false);
        let presence: PresenceListeners = Arc::default();
        let (presence_tx, mut presence_rx) = mpsc::unbounded_channel();
        let task_presence = presence.clone();
        let task_status = status.clone();
        let task_acks = acks.clone();
        let task_store = store.clone();
        let ended = on_own_thread("concord-sync", move || async move {
            let (_sub, mut local) = local_changes(&store);
            let origin = Instant::now();
            let driver = ClientDriver::new(
                store,
                config,
                urls,
                DriverMode::Background { backoff },
                OsRandom,
                Duration::ZERO,
            );
            let hooks = Hooks {
                status: Some(&*task_status),
                acks: Some(&task_acks),
                presence_out: Some(&task_presence),
                presence_in: Some(&mut presence_rx),
            };
            let _ = drive(driver, origin, &mut local, hooks, &mut cancel).await;
        })
        .expect("the sync client's thread starts");
        SyncClient {
            store: task_store,
            status,
            acks,
            presence,
            presence_tx,
            cancel: cancel_tx,
            ended: Some(ended),
        }
    }

    /// Connection state, and the unacknowledged updates per document (read from the store
    /// now, so the figures are current even between frames).
    pub fn status(&self) -> ClientStatus {
        let mut status = self.status.borrow().clone();
        if let Ok(docs) = self.store.status() {
            status.pending = docs.into_iter().map(|d| (d.id, d.pending)).collect();
        }
        status
    }

    /// The connection state as it changes: the receiver is told of every status the driver
    /// reports from now on (its `pending` is not filled in; see [`SyncClient::status`]).
    pub fn status_changes(&self) -> watch::Receiver<ClientStatus> {
        self.status.subscribe()
    }

    /// Every acknowledgement from now on: (document, origin, up to which seq, at which log
    /// position). To see every one from the start, use [`SyncClient::spawn_with_acks`].
    pub fn acks(&self) -> mpsc::UnboundedReceiver<Acked> {
        let (tx, rx) = mpsc::unbounded_channel();
        self.acks.lock().expect("ack listeners lock").push(tx);
        rx
    }

    /// Sets this device's presence on `doc_id` (opaque bytes, JSON by convention; empty
    /// withdraws it): shown to the document's other subscribers on the same relay node
    /// while connected, re-sent after reconnects. Never stored.
    pub fn set_presence(&self, doc_id: &str, state: Vec<u8>) {
        let _ = self.presence_tx.send((doc_id.to_string(), state));
    }

    /// Every change of who is present on a document from now on: (document, the peers
    /// now present). When the connection drops, each document is reported empty.
    pub fn presence_changes(&self) -> mpsc::UnboundedReceiver<PresenceChange> {
        let (tx, rx) = mpsc::unbounded_channel();
        self.presence
            .lock()
            .expect("presence listeners lock")
            .push(tx);
        rx
    }

    /// Stops syncing and waits for the task to end.
    pub async fn stop(mut self) {
        let _ = self.cancel.send(true);
        if let Some(ended) = self.ended.take() {
            let _ = ended.await;
        }
    }
}

impl Drop for SyncClient {
    fn drop(&mut self) {
        let _ = self.cancel.send(true);
    }
}

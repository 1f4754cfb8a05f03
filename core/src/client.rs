//! The native sync client (feature `native-client`): a tokio + WebSocket shell around
//! [`ClientSession`]. [`sync_once`] connects, syncs until caught up and returns;
//! [`SyncClient::spawn`] keeps syncing in the background, reconnecting with exponential
//! backoff and jitter, and reports its status.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use thiserror::Error;
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message as WsMessage;

use crate::notify::ChangeSource;
use crate::protocol::ErrorFrame;
use crate::store::Store;
use crate::sync::{ClientConfig, ClientSession};

/// Why syncing failed.
#[derive(Debug, Error)]
pub enum ClientError {
    #[error("cannot connect to {url}: {reason}")]
    Connect { url: String, reason: String },
    #[error("connection lost: {0}")]
    Disconnected(String),
    /// The relay closed the WebSocket with a status code, e.g. 1009 (message too big) for
    /// a frame above its transport limit.
    #[error("the relay closed the connection: {reason} (WebSocket close code {code})")]
    Closed { code: u16, reason: String },
    #[error("the relay refused: {} ({}){}", .0.message, .0.code.name(), .0.doc_id.as_ref().map(|d| format!(" for document {d:?}")).unwrap_or_default())]
    Refused(ErrorFrame),
    /// [`sync_once`] synced every document except these, which the relay refused (one
    /// error per document, e.g. `forbidden` outside the token's scope). Their updates stay
    /// in the outbox.
    #[error("the relay refused {}; the others synced", refusals_text(.0))]
    DocumentsRefused(Vec<ErrorFrame>),
    #[error("not synced after {0:?}")]
    Timeout(Duration),
    #[error(transparent)]
    Store(#[from] crate::Error),
}

/// `2 documents: "a": <message> (<code>); "b": ...`
fn refusals_text(refused: &[ErrorFrame]) -> String {
    let plural = if refused.len() == 1 { "" } else { "s" };
    let each = refused
        .iter()
        .map(|e| {
            format!(
                "{:?}: {} ({})",
                e.doc_id.as_deref().unwrap_or_default(),
                e.message,
                e.code.name()
            )
        })
        .collect::<Vec<_>>()
        .join("; ");
    format!("{} document{plural}: {each}", refused.len())
}

/// A snapshot of the client's state.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ClientStatus {
    pub connected: bool,
    /// Unacknowledged local updates per document.
    pub pending: BTreeMap<String, usize>,
    /// Reconnect attempts since the last successful connection.
    pub retries: u32,
    pub last_error: Option<String>,
    /// Set when the relay refused the connection for good (see
    /// [`ends_session`](crate::protocol::ErrorCode::ends_session), e.g. `token_expired`):
    /// the client has stopped and does not reconnect. Start a new one with a new token.
    pub stopped: Option<ErrorFrame>,
}

/// Reconnect delays: exponential from `initial` to `max`, each drawn uniformly from
/// `[delay/2, delay]` (jitter) so that many devices do not reconnect in lockstep.
#[derive(Debug, Clone)]
pub struct Backoff {
    pub initial: Duration,
    pub max: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff {
            initial: Duration::from_millis(100),
            max: Duration::from_secs(10),
        }
    }
}

impl Backoff {
    /// The delay before reconnect attempt `attempt` (0-based).
    pub fn delay(&self, attempt: u32) -> Duration {
        let base = self
            .initial
            .saturating_mul(1u32 << attempt.min(20))
            .min(self.max);
        let mut b = [0u8; 4];
        let _ = getrandom::fill(&mut b);
        let frac = 0.5 + (u32::from_le_bytes(b) as f64 / u32::MAX as f64) / 2.0;
        base.mul_f64(frac)
    }
}

enum Stop {
    Synced,
    Cancelled,
}

/// Drives one connection until it drops, the session is synced (when `until_synced`),
/// or `cancel` fires.
async fn run_connection(
    session: &mut ClientSession,
    url: &str,
    until_synced: bool,
    local: &mut mpsc::UnboundedReceiver<String>,
    status: &Mutex<ClientStatus>,
    cancel: &mut tokio::sync::watch::Receiver<bool>,
) -> Result<Stop, ClientError> {
    let (ws, _) =
        tokio_tungstenite::connect_async(url)
            .await
            .map_err(|e| ClientError::Connect {
                url: url.to_string(),
                reason: e.to_string(),
            })?;
    let (mut sink, mut stream) = ws.split();
    let send_all =
        |frames: Vec<Vec<u8>>| frames.into_iter().map(|f| Ok(WsMessage::Binary(f.into())));
    let hello: Vec<Vec<u8>> = session
        .connected()
        .iter()
        .map(crate::protocol::encode)
        .collect();
    let mut hello_stream = futures_util::stream::iter(send_all(hello));
    sink.send_all(&mut hello_stream)
        .await
        .map_err(|e| ClientError::Disconnected(e.to_string()))?;
    {
        let mut s = status.lock().expect("status lock");
        s.connected = true;
        s.retries = 0;
        s.last_error = None;
    }
    let mut refusals = Vec::new();
    let mut keepalive = tokio::time::interval(Duration::from_secs(20));
    // Commits made by other processes on the same store file raise no in-process event:
    // poll for them.
    let mut external = tokio::time::interval(Duration::from_millis(250));
    let mut external_seen = session.store().external_changes();
    keepalive.tick().await;
    loop {
        let out: Vec<Vec<u8>> = tokio::select! {
            msg = stream.next() => match msg {
                Some(Ok(WsMessage::Binary(frame))) => session.handle_frame(&frame)?,
                Some(Ok(WsMessage::Close(frame))) => return Err(closed(frame)),
                None => return Err(ClientError::Disconnected("closed by the relay".into())),
                Some(Ok(_)) => vec![],
                Some(Err(e)) => return Err(ClientError::Disconnected(e.to_string())),
            },
            doc = local.recv() => match doc {
                Some(doc) => session
                    .local_change(&doc)?
                    .iter()
                    .map(crate::protocol::encode)
                    .collect(),
                None => vec![],
            },
            _ = keepalive.tick() => vec![crate::protocol::encode(&crate::protocol::Message::Ping(0))],
            _ = external.tick() => {
                let now = session.store().external_changes();
                if now == external_seen {
                    vec![]
                } else {
                    external_seen = now;
                    let mut out = Vec::new();
                    for doc in session.store().list_docs()? {
                        out.extend(session.local_change(&doc.id)?);
                    }
                    out.iter().map(crate::protocol::encode).collect()
                }
            },
            _ = cancel.changed() => return Ok(Stop::Cancelled),
        };
        if !out.is_empty() {
            let mut frames = futures_util::stream::iter(send_all(out));
            if let Err(e) = sink.send_all(&mut frames).await {
                // The relay may have closed the connection with a reason (e.g. 1009 for
                // a frame above its limit): report that rather than the write error.
                return Err(close_reason(&mut stream)
                    .await
                    .unwrap_or_else(|| ClientError::Disconnected(e.to_string())));
            }
        }
        for error in session.take_errors() {
            status.lock().expect("status lock").last_error =
                Some(format!("{} ({})", error.message, error.code.name()));
            if error.doc_id.is_none() && error.code.ends_session() {
                // The connection as a whole was refused (token, version): reconnecting
                // with the same settings cannot succeed.
                return Err(ClientError::Refused(error));
            }
            if until_synced && !error.code.is_retryable() {
                if error.doc_id.is_none() {
                    return Err(ClientError::Refused(error));
                }
                // One document was refused: finish the others, then report it (once).
                if !refusals
                    .iter()
                    .any(|r: &ErrorFrame| r.doc_id == error.doc_id)
                {
                    refusals.push(error);
                }
            }
        }
        if until_synced && session.is_synced() {
            let _ = sink.close().await;
            return if refusals.is_empty() {
                Ok(Stop::Synced)
            } else {
                Err(ClientError::DocumentsRefused(refusals))
            };
        }
    }
}

/// The error for a close frame from the relay.
fn closed(frame: Option<tokio_tungstenite::tungstenite::protocol::CloseFrame>) -> ClientError {
    match frame {
        Some(f) => ClientError::Closed {
            code: u16::from(f.code),
            reason: f.reason.to_string(),
        },
        None => ClientError::Disconnected("closed by the relay".into()),
    }
}

/// After a failed write: the relay's close frame, if one arrives within a moment.
async fn close_reason<S>(stream: &mut S) -> Option<ClientError>
where
    S: futures_util::Stream<Item = Result<WsMessage, tokio_tungstenite::tungstenite::Error>>
        + Unpin,
{
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
    tokio::time::timeout(Duration::from_secs(2), wait)
        .await
        .ok()
        .flatten()
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

/// Connects to `url`, syncs every document in scope until this device and the relay hold
/// the same updates and the outbox is empty, then disconnects. A document the relay
/// refuses (outside the token's scope, say) does not stop the others: they finish, then
/// every refused document is returned in [`ClientError::DocumentsRefused`] (one error
/// each) and their updates stay in the outbox. A refused connection (token missing,
/// invalid or expired) is [`ClientError::Refused`].
pub async fn sync_once(
    store: &Store,
    url: &str,
    config: ClientConfig,
    timeout: Duration,
) -> Result<(), ClientError> {
    let mut session = ClientSession::new(store.clone(), config);
    let (_sub, mut local) = local_changes(store);
    let status = Mutex::new(ClientStatus::default());
    let (_cancel_tx, mut cancel) = tokio::sync::watch::channel(false);
    match tokio::time::timeout(
        timeout,
        run_connection(&mut session, url, true, &mut local, &status, &mut cancel),
    )
    .await
    {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(e)) => Err(e),
        Err(_) => Err(ClientError::Timeout(timeout)),
    }
}

/// A background sync task. Dropping the handle (or [`SyncClient::stop`]) ends it.
pub struct SyncClient {
    store: Store,
    status: Arc<Mutex<ClientStatus>>,
    cancel: tokio::sync::watch::Sender<bool>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl SyncClient {
    /// Starts syncing `store` with the relay at `url` and keeps at it, reconnecting after
    /// failures with `backoff`. Local commits are sent as they happen. When the relay
    /// refuses the connection for good
    /// ([`ends_session`](crate::protocol::ErrorCode::ends_session), e.g. an expired token),
    /// the client stops and says so in [`ClientStatus::stopped`].
    pub fn spawn(store: Store, url: String, config: ClientConfig, backoff: Backoff) -> SyncClient {
        let status = Arc::new(Mutex::new(ClientStatus::default()));
        let (cancel_tx, mut cancel) = tokio::sync::watch::channel(false);
        let task_status = status.clone();
        let task_store = store.clone();
        let task = tokio::spawn(async move {
            let mut session = ClientSession::new(store.clone(), config);
            let (_sub, mut local) = local_changes(&store);
            let mut attempt = 0u32;
            loop {
                let result = run_connection(
                    &mut session,
                    &url,
                    false,
                    &mut local,
                    &task_status,
                    &mut cancel,
                )
                .await;
                session.disconnected();
                {
                    let mut s = task_status.lock().expect("status lock");
                    s.connected = false;
                    match &result {
                        Ok(_) => return,
                        Err(ClientError::Refused(e)) if e.code.ends_session() => {
                            tracing::info!(
                                code = e.code.name(),
                                message = %e.message,
                                "the relay refused the connection; stopping"
                            );
                            s.last_error = Some(format!("{} ({})", e.message, e.code.name()));
                            s.stopped = Some(e.clone());
                            return;
                        }
                        Err(e) => {
                            s.last_error = Some(e.to_string());
                            s.retries = attempt + 1;
                        }
                    }
                }
                if let Err(e) = &result {
                    tracing::info!(error = %e, attempt, "sync connection ended; reconnecting");
                }
                let delay = backoff.delay(attempt);
                attempt = attempt.saturating_add(1);
                tokio::select! {
                    _ = tokio::time::sleep(delay) => {}
                    _ = cancel.changed() => return,
                }
            }
        });
        SyncClient {
            store: task_store,
            status,
            cancel: cancel_tx,
            task: Some(task),
        }
    }

    /// Connection state, and the unacknowledged updates per document (read from the store
    /// now, so the figures are current even between frames).
    pub fn status(&self) -> ClientStatus {
        let mut status = self.status.lock().expect("status lock").clone();
        if let Ok(docs) = self.store.status() {
            status.pending = docs.into_iter().map(|d| (d.id, d.pending)).collect();
        }
        status
    }

    /// Stops syncing and waits for the task to end.
    pub async fn stop(mut self) {
        let _ = self.cancel.send(true);
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for SyncClient {
    fn drop(&mut self) {
        let _ = self.cancel.send(true);
    }
}

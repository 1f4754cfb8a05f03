//! The network shell: the client port serving `GET /healthz`, `GET /cluster` (this node's
//! view of the cluster), `GET /metrics` (Prometheus) and the WebSocket sync endpoint
//! (`/sync`, also `/`), and the interop endpoints for Yjs and automerge-repo clients
//! (`/yjs/{room}`, `/automerge`; `interop/`). With a static directory configured, a plain `GET /` and any other
//! path serve its files (the web demo, `static_files.rs`). Each socket gets a [`RelaySession`] fed with its frames; the
//! session's requests run on tokio's blocking pool ([`Relay::execute`]) — or, on a cluster
//! node, through the cluster's write and read paths — while the connection task awaits
//! their completion before it reads the next frame, so replies leave in request order. Replies and fanned-out updates leave through the connection's
//! queue. This file never touches storage itself.
//!
//! Frame sizes: the WebSocket layer takes frames up to [`transport_limit`] (64 MiB, or
//! `max_frame_bytes` when larger), so that every frame above `max_frame_bytes` but below it
//! gets a `frame_too_large` error frame and the connection stays open. A frame above the
//! transport limit is not read: the relay closes the connection with close code 1009
//! (message too big) and a reason naming the limit.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::ws::{
    close_code, CloseFrame, Message as WsMessage, WebSocket, WebSocketUpgrade,
};
use axum::extract::{ConnectInfo, FromRequestParts, Request, State};
use axum::http::{header, StatusCode, Uri};
use axum::response::{IntoResponse, Json, Response};
use axum::routing::get;
use axum::Router;
use concord_core::protocol::{self, ErrorCode, Message};
use concord_core::sync::{RelayOutput, RelaySession};
use futures_util::{SinkExt, StreamExt};
use tokio::sync::oneshot;

use crate::cluster::reads::SubscribeRequest;
use crate::cluster::writes::Write;
use crate::cluster::{Cluster, ClusterStatus};
use crate::hub::ConnQueue;
use crate::hub::{conn_queue, ConnReceiver};
use crate::state::{now_secs, Connection, Relay};
use concord_core::sync::{AppendOutcome, Completion, RelayRequest};

/// What the client port's handlers share: the relay, and the cluster node when it is one.
#[derive(Clone)]
pub struct Node {
    pub relay: Arc<Relay>,
    pub cluster: Option<Arc<Cluster>>,
    /// The directory served as static files, if any (`--static-dir`).
    pub static_dir: Option<Arc<std::path::PathBuf>>,
    /// The y-websocket rooms of this node (awareness; `interop/yjs.rs`).
    pub yjs_rooms: Arc<crate::interop::yjs_rooms::YjsRooms>,
    /// The automerge-repo connections of this node per document (ephemeral messages).
    pub automerge_peers: Arc<crate::interop::automerge_peers::AutomergePeers>,
}

pub fn router(
    relay: Arc<Relay>,
    cluster: Option<Arc<Cluster>>,
    static_dir: Option<std::path::PathBuf>,
) -> Router {
    let static_dir = static_dir.map(Arc::new);
    Router::new()
        .route("/healthz", get(healthz))
        .route("/cluster", get(cluster_status))
        .route("/metrics", get(metrics_page))
        .route("/sync", get(upgrade))
        .route("/yjs/{*room}", get(crate::interop::yjs::upgrade))
        .route("/automerge", get(crate::interop::automerge_repo::upgrade))
        .route("/", get(root))
        .fallback(get(static_file))
        .with_state(Node {
            relay,
            cluster,
            static_dir,
            yjs_rooms: Arc::default(),
            automerge_peers: Arc::default(),
        })
}

/// `/`: a WebSocket upgrade is a sync connection; a plain GET gets the static index page
/// (when a static directory is configured).
async fn root(
    State(node): State<Node>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    request: Request,
) -> Response {
    let (mut parts, _body) = request.into_parts();
    match WebSocketUpgrade::from_request_parts(&mut parts, &node).await {
        Ok(ws) => upgrade(ws, State(node), ConnectInfo(peer))
            .await
            .into_response(),
        Err(rejection) => match &node.static_dir {
            Some(dir) => crate::static_files::serve(dir, "/").await,
            None => rejection.into_response(),
        },
    }
}

/// Any other GET: a file of the static directory, if one is configured.
async fn static_file(State(node): State<Node>, uri: Uri) -> Response {
    match &node.static_dir {
        Some(dir) => crate::static_files::serve(dir, uri.path()).await,
        None => (StatusCode::NOT_FOUND, "not found").into_response(),
    }
}

/// This node's view of the cluster; readable from any origin (the demo's cluster panel
/// asks every node).
async fn cluster_status(State(node): State<Node>) -> impl IntoResponse {
    (
        [(header::ACCESS_CONTROL_ALLOW_ORIGIN, "*")],
        cluster_json(node).await,
    )
}

async fn cluster_json(node: Node) -> Json<ClusterStatus> {
    Json(match &node.cluster {
        Some(cluster) => cluster.status().await,
        None => {
            let relay = node.relay.clone();
            let applied = tokio::task::spawn_blocking(move || relay.applied_lsn())
                .await
                .unwrap_or(0);
            ClusterStatus::standalone(applied)
        }
    })
}

async fn metrics_page(State(node): State<Node>) -> impl IntoResponse {
    {
        let hub = node.relay.hub();
        crate::metrics::connections(hub.connection_count(), hub.queued_frames());
    }
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4",
        )],
        crate::metrics::render(),
    )
}

async fn healthz(State(Node { relay, .. }): State<Node>) -> impl IntoResponse {
    // The document count takes the storage lock: off the async workers.
    let counted = relay.clone();
    let documents = tokio::task::spawn_blocking(move || counted.doc_count())
        .await
        .unwrap_or(0);
    Json(serde_json::json!({
        "status": "ok",
        "server_id": relay.config.server_id,
        "documents": documents,
        "connections": relay.hub().connection_count(),
    }))
}

/// The hard cap on one WebSocket frame (unless `max_frame_bytes` is larger).
pub const TRANSPORT_LIMIT_BYTES: usize = 64 << 20;

/// The largest frame the WebSocket layer reads for a relay with `max_frame_bytes`.
pub fn transport_limit(max_frame_bytes: usize) -> usize {
    TRANSPORT_LIMIT_BYTES.max(max_frame_bytes)
}

/// The close reason for a foreign client's message above the relay's `max_frame_bytes`
/// (the y-websocket and automerge-repo protocols have no error frame: they are closed
/// with 1009).
pub(crate) fn above_max_frame(max_frame_bytes: usize) -> String {
    format!("message above the relay's max_frame_bytes of {max_frame_bytes} bytes")
}

/// True when a read failed because the frame was above the transport limit.
pub(crate) fn is_too_big(e: &axum::Error) -> bool {
    std::error::Error::source(e)
        .and_then(|inner| inner.downcast_ref::<tungstenite::Error>())
        .is_some_and(|inner| matches!(inner, tungstenite::Error::Capacity(_)))
}

async fn upgrade(
    ws: WebSocketUpgrade,
    State(node): State<Node>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
) -> impl IntoResponse {
    let relay = node.relay.clone();
    // The transport accepts frames well past the protocol limit so that an oversized
    // frame gets a `frame_too_large` error frame instead of a dropped connection.
    let limit = transport_limit(relay.config.max_frame_bytes);
    ws.max_message_size(limit)
        .max_frame_size(limit)
        .on_upgrade(move |socket| serve_socket(node, socket, peer))
}

/// How long a connection's reader waits for the client to read what is queued for it
/// before closing the connection.
pub(crate) const DRAIN_LIMIT: std::time::Duration = std::time::Duration::from_secs(30);

async fn serve_socket(node: Node, socket: WebSocket, peer: SocketAddr) {
    let relay = node.relay.clone();
    let (queue, receiver) = conn_queue();
    let conn = relay.connection(queue.clone());
    let mut session =
        RelaySession::new(relay.config.server_id.clone(), relay.config.max_frame_bytes);
    let (sink, mut stream) = socket.split();
    let (close_tx, close_rx) = oneshot::channel();
    let mut close_tx = Some(close_tx);
    let idle = relay.config.idle_timeout;
    let mut writer = tokio::spawn(write_frames(
        sink,
        receiver,
        close_rx,
        relay.config.ping_every(),
    ));
    // A connection that has not said Hello by then is closed (it holds a socket and a
    // task without being anyone).
    let hello_by = tokio::time::Instant::now() + idle;
    tracing::info!(%peer, "connection opened");
    loop {
        // A client that sends requests and does not read the replies is not served more
        // until it has read them: what waits for it stays bounded (`hub.rs`). One that
        // still has not read them after `DRAIN_LIMIT` is closed.
        let max_queue = relay.config.max_queue;
        if tokio::time::timeout(DRAIN_LIMIT, queue.drained(max_queue))
            .await
            .is_err()
        {
            tracing::warn!(%peer, "closing a connection that does not read its replies");
            break;
        }
        // A connection whose token expires is closed then, so it stops receiving updates.
        let expiry = token_expiry(session.expires_at());
        let greeted = session.device().is_some();
        let msg = tokio::select! {
            msg = tokio::time::timeout(idle, stream.next()) => match msg {
                Ok(msg) => msg,
                Err(_) => {
                    tracing::info!(%peer, "connection idle: closed");
                    closing(&mut close_tx, close_code::AWAY, format!(
                        "idle: nothing received for {} s", idle.as_secs()
                    ));
                    break;
                }
            },
            _ = tokio::time::sleep_until(hello_by), if !greeted => {
                tracing::info!(%peer, "no Hello in time: closed");
                closing(&mut close_tx, close_code::POLICY, format!(
                    "no Hello within {} s of connecting", idle.as_secs()
                ));
                break;
            }
            _ = expiry => match session.handle_timeout(now_secs()) {
                Some(reply) => {
                    queue.send(Arc::new(protocol::encode(&reply)));
                    break;
                }
                None => continue,
            }
        };
        let Some(msg) = msg else { break };
        let frame = match msg {
            Ok(WsMessage::Binary(b)) => b,
            Ok(WsMessage::Text(_)) => {
                let reply = Message::error(
                    ErrorCode::MalformedFrame,
                    "the protocol uses binary frames",
                    None,
                );
                queue.send(Arc::new(protocol::encode(&reply)));
                continue;
            }
            Ok(WsMessage::Close(_)) => break,
            Ok(_) => continue,
            Err(e) => {
                tracing::info!(%peer, error = %e, "connection failed");
                if is_too_big(&e) {
                    let limit = transport_limit(relay.config.max_frame_bytes);
                    closing(
                        &mut close_tx,
                        close_code::SIZE,
                        format!(
                            "frame above the relay's transport limit of {limit} bytes \
                             ({} MiB)",
                            limit >> 20
                        ),
                    );
                }
                break;
            }
        };
        let outputs = session.handle_frame(&frame, now_secs(), &*relay);
        if !run_outputs(&node, &conn, &mut session, &queue, outputs, peer).await {
            break;
        }
        if writer.is_finished() {
            break;
        }
    }
    // Stop fan-out, then let the writer flush what is queued (bounded) and close.
    drop(conn);
    drop(queue);
    if tokio::time::timeout(std::time::Duration::from_secs(5), &mut writer)
        .await
        .is_err()
    {
        tracing::warn!(%peer, "writer did not drain in time");
        writer.abort();
    }
    tracing::info!(%peer, device = ?session.device().map(|d| d.to_string()), "connection closed");
}

/// A connection's ping timer: first tick one period from now; a tick missed while a send
/// was blocked is not made up for with a burst.
pub(crate) async fn ping_interval(every: std::time::Duration) -> tokio::time::Interval {
    let mut ping = tokio::time::interval(every);
    ping.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    ping.tick().await;
    ping
}

/// Hands the writer the close frame it sends before it closes the socket (once).
pub(crate) fn closing(
    close_tx: &mut Option<oneshot::Sender<CloseFrame>>,
    code: u16,
    reason: String,
) {
    if let Some(tx) = close_tx.take() {
        let _ = tx.send(close_frame(code, reason));
    }
}

/// The longest reason a close frame can carry (RFC 6455: 125 bytes of payload, 2 of them
/// the code).
const MAX_CLOSE_REASON: usize = 123;

/// A close frame with `reason` cut to what the frame can carry (at a character boundary):
/// a longer one makes the send fail, and the peer sees a reset instead of the code.
pub(crate) fn close_frame(code: u16, reason: String) -> CloseFrame {
    let mut reason = reason;
    if reason.len() > MAX_CLOSE_REASON {
        let mut end = MAX_CLOSE_REASON;
        while !reason.is_char_boundary(end) {
            end -= 1;
        }
        reason.truncate(end);
    }
    CloseFrame {
        code,
        reason: reason.into(),
    }
}

/// One step of [`run_outputs`]: a session output, or the point after a listing's answer
/// where the documents announced since the listing was read are sent.
enum Step {
    Output(RelayOutput),
    ListingAnswered,
}

/// Carries out a session's outputs in order: sends replies, unfollows, and runs each
/// request on the blocking pool, feeding its completion back. False when a request could
/// not complete (its task panicked): the connection is then closed.
async fn run_outputs(
    node: &Node,
    conn: &Connection,
    session: &mut RelaySession,
    queue: &ConnQueue,
    outputs: Vec<RelayOutput>,
    peer: SocketAddr,
) -> bool {
    let mut pending: std::collections::VecDeque<Step> =
        outputs.into_iter().map(Step::Output).collect();
    while let Some(step) = pending.pop_front() {
        let output = match step {
            Step::Output(output) => output,
            Step::ListingAnswered => {
                conn.listing_answered();
                continue;
            }
        };
        match output {
            RelayOutput::Send(reply) => {
                match &reply {
                    Message::Error(e) => {
                        tracing::warn!(%peer, code = e.code.name(), doc = ?e.doc_id, message = %e.message, "refused")
                    }
                    // A new Hello's rights replace the old: what was watched with them ends.
                    Message::Welcome(_) => conn.credentials_changed(),
                    _ => {}
                }
                queue.send(Arc::new(protocol::encode(&reply)));
            }
            RelayOutput::Unfollow(doc_id) => conn.unfollow(&doc_id),
            RelayOutput::Presence {
                doc_id,
                device_id,
                state,
            } => conn.presence(doc_id, device_id, state),
            RelayOutput::Request(id, request) => {
                let lists = matches!(request, RelayRequest::ListDocs { .. });
                let done = execute(node, conn.id(), request).await;
                if let Ok(Completion::Appended(outcome)) = &done {
                    crate::metrics::acked(outcome.acked.len() as u64);
                }
                let completion = match done {
                    Ok(completion) => completion,
                    Err(e) => {
                        tracing::error!(%peer, error = %e, "request failed");
                        return false;
                    }
                };
                let relay = conn.relay();
                let answer = session.handle_completion(id, completion, now_secs(), &**relay);
                pending.extend(answer.into_iter().map(Step::Output));
                if lists {
                    pending.push_back(Step::ListingAnswered);
                }
            }
        }
    }
    true
}

/// Carries out one session request: on the blocking pool for a single relay, through the
/// cluster's write and read paths on a cluster node.
pub(crate) async fn execute(
    node: &Node,
    conn: crate::hub::ConnId,
    request: RelayRequest,
) -> Result<Completion, tokio::task::JoinError> {
    let Some(cluster) = &node.cluster else {
        let relay = node.relay.clone();
        return tokio::task::spawn_blocking(move || relay.execute(conn, request)).await;
    };
    Ok(match request {
        RelayRequest::Subscribe {
            doc_id,
            kind,
            client_version,
            may_create,
            min_lsn,
            linearizable,
        } => Completion::Subscribed(
            cluster
                .subscribe(
                    conn,
                    SubscribeRequest {
                        doc_id,
                        kind,
                        client_version,
                        may_create,
                        min_lsn,
                        linearizable,
                    },
                )
                .await,
        ),
        RelayRequest::Append { doc_id, updates } => {
            let reply = cluster.write(Write::Append { doc_id, updates }, conn).await;
            Completion::Appended(AppendOutcome {
                refusal: reply.refusal(),
                acked: reply.acked,
                lsn: reply.lsn,
            })
        }
        list @ RelayRequest::ListDocs { .. } => {
            let relay = node.relay.clone();
            tokio::task::spawn_blocking(move || relay.execute(conn, list)).await?
        }
    })
}

/// Resolves when a token that expires at `expires_at` (Unix seconds) runs out; never
/// without one.
pub(crate) async fn token_expiry(expires_at: Option<u64>) {
    let Some(expires_at) = expires_at else {
        return std::future::pending().await;
    };
    tokio::time::sleep(std::time::Duration::from_secs(
        expires_at.saturating_sub(now_secs()),
    ))
    .await;
}

/// Sends the connection's queued frames until the queue closes, then closes the socket
/// (with `close`'s frame when the reader sent one, e.g. 1009 for a frame too big). Pings
/// the client every `ping_every`, so that a live one answers within the idle timeout.
async fn write_frames(
    mut sink: futures_util::stream::SplitSink<WebSocket, WsMessage>,
    mut receiver: ConnReceiver,
    mut close: oneshot::Receiver<CloseFrame>,
    ping_every: std::time::Duration,
) {
    let mut ping = ping_interval(ping_every).await;
    loop {
        tokio::select! {
            _ = ping.tick() => {
                if sink.send(WsMessage::Ping(Vec::new().into())).await.is_err() {
                    break;
                }
            }
            frame = receiver.rx.recv() => {
                let Some(frame) = frame else { break };
                receiver.watch.sent(&frame);
                if sink.send(WsMessage::Binary(frame.as_ref().clone().into())).await.is_err() {
                    break;
                }
            }
            _ = receiver.watch.lagged() => {
                tracing::warn!("closing a connection that fell too far behind");
                let reply = Message::error(
                    ErrorCode::SlowConsumer,
                    "too many updates queued for this connection; reconnect to resync",
                    None,
                );
                let _ = sink.send(WsMessage::Binary(protocol::encode(&reply).into())).await;
                break;
            }
        }
    }
    if let Ok(frame) = close.try_recv() {
        let _ = sink.send(WsMessage::Close(Some(frame))).await;
    }
    let _ = sink.close().await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_close_reason_is_cut_to_what_a_frame_carries_at_a_character_boundary() {
        let short = close_frame(1002, "malformed".into());
        assert_eq!(short.reason.as_str(), "malformed");
        let long = close_frame(1002, format!("{}é", "x".repeat(122)));
        assert_eq!(long.reason.len(), 122, "the two-byte é does not fit");
        assert_eq!(long.code, 1002);
        let exact = close_frame(1002, "y".repeat(123));
        assert_eq!(exact.reason.len(), 123);
    }
}

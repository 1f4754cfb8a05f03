//! The automerge-repo endpoint, `ws://HOST:PORT/automerge?token=…`: an unmodified
//! automerge-repo client (`@automerge/automerge-repo` with its WebSocket network adapter)
//! syncs the Concord Automerge documents whose ids are `automerge:<documentId>` — the
//! document's automerge URL. A thin shell: the wire protocol is implemented here over
//! `automerge::sync` (not samod, whose repo owns its storage and documents, while here
//! the relay's log is the only storage), the writes go through the [`Bridge`] (the relay's
//! own session and append path), and the connection follows its documents in the hub.
//!
//! Per connection and document it keeps a copy of the document (catch-up, fanned-out
//! updates, the client's changes) and the Automerge sync state with the client. Changes
//! a sync message brings are appended as one update; what the client lacks is sent after
//! each message and after each fanned-out update. A frame that is not an automerge-repo
//! message, or a sync message that does not decode or apply, closes the connection with
//! 1002. A `request` for a document the relay does not hold gets `doc-unavailable`. The
//! changes a connection's copies hold waiting for their dependencies are bounded
//! ([`WAITING_CHANGES_FLOOR`]): past it, the connection is closed 1008.

use std::collections::HashMap;

use automerge::sync::{Message as SyncMessage, State as SyncState, SyncDoc};
use automerge::{Automerge, ReadDoc};
use axum::extract::ws::{Message as WsMessage, WebSocket, WebSocketUpgrade};
use axum::extract::{Query, State};
use axum::response::IntoResponse;
use concord_core::protocol::{self, ErrorCode, Message as Concord};
use concord_core::DocKind;
use futures_util::stream::SplitSink;
use futures_util::{SinkExt, StreamExt};

use super::automerge_peers::{peer_channel, PeerTx};
use super::automerge_wire::{self as wire, FromClient};
use super::bridge::{Bridge, Written};
use crate::http::{above_max_frame, is_too_big, Node, DRAIN_LIMIT};
use crate::hub::conn_queue;
use crate::state::now_secs;

const PROTOCOL_ERROR: u16 = 1002;
const POLICY: u16 = 1008;
const UNAVAILABLE: u16 = 1011;

/// The Concord document id of an automerge-repo document id.
pub fn concord_doc_id(document_id: &str) -> String {
    format!("automerge:{document_id}")
}

/// One open document of a connection.
struct OpenDoc {
    copy: Automerge,
    sync: SyncState,
    /// About the memory of the changes the client sent since the copy last held every
    /// change its changes depend on: Automerge keeps a change whose dependencies it lacks
    /// until they come, so this is what the copy may be holding for the client.
    waiting_bytes: u64,
}

/// The least bound on the changes of one sync message, and on what a connection's copies
/// hold of changes waiting for their dependencies (a client sends a change before one it
/// depends on when its sync state wrongly took the relay to have it, and sends that one
/// when asked), measured inflated. The bound is this or 16 of the relay's largest
/// messages, whichever is more; a message past it closes the connection (1008), and what
/// its copies held is dropped.
pub const WAITING_CHANGES_FLOOR: u64 = 64 << 20;

/// The bound on one message's changes, and on the changes a connection's copies hold
/// waiting for their dependencies.
fn waiting_limit(max_frame_bytes: usize) -> u64 {
    WAITING_CHANGES_FLOOR.max(16 * max_frame_bytes as u64)
}

type Sink = SplitSink<WebSocket, WsMessage>;

pub async fn upgrade(
    ws: WebSocketUpgrade,
    State(node): State<Node>,
    Query(params): Query<HashMap<String, String>>,
) -> impl IntoResponse {
    // A message above the relay's frame limit is not read: the connection is closed 1009.
    let limit = node.relay.config.max_frame_bytes;
    let token = params.get("token").cloned();
    ws.max_message_size(limit)
        .max_frame_size(limit)
        .on_upgrade(move |socket| serve(node, socket, token))
}

async fn close(sink: &mut Sink, code: u16, reason: String) {
    let _ = sink
        .send(WsMessage::Close(Some(crate::http::close_frame(
            code, reason,
        ))))
        .await;
}

/// One connection: its state and what it needs to answer.
struct Conn {
    node: Node,
    bridge: Bridge,
    server_peer: String,
    client_peer: String,
    docs: HashMap<String, OpenDoc>,
    ephemeral: PeerTx,
}

/// Why a connection ends.
struct Closing(u16, String);

async fn serve(node: Node, socket: WebSocket, token: Option<String>) {
    let (queue, mut receiver) = conn_queue();
    let bridge = Bridge::new(&node, queue.clone(), "automerge-repo");
    let (mut sink, mut stream) = socket.split();
    let (ephemeral, mut relayed) = peer_channel();
    let mut conn = Conn {
        server_peer: format!("concord-{}", node.relay.config.server_id),
        node: node.clone(),
        bridge,
        client_peer: String::new(),
        docs: HashMap::new(),
        ephemeral,
    };
    tracing::info!(origin = %conn.bridge.origin(), "automerge-repo connection opened");
    let mut ping = crate::http::ping_interval(node.relay.config.ping_every()).await;
    let idle = node.relay.config.idle_timeout;
    // Only what the client sends counts as a sign of life (not the pings or frames the
    // relay sends it).
    let mut heard = tokio::time::Instant::now();
    let closing = match conn.bridge.hello(token).await {
        Err(e) => {
            let why = format!("{}: {}", e.code.name(), e.message);
            let _ = sink
                .send(WsMessage::Binary(
                    wire::error(&conn.server_peer, "", &why).into(),
                ))
                .await;
            Some(Closing(POLICY, why))
        }
        Ok(()) => loop {
            let expiry = crate::http::token_expiry(conn.bridge.expires_at());
            let out: Vec<Vec<u8>> = tokio::select! {
                biased;
                frame = receiver.rx.recv() => {
                    let Some(frame) = frame else { break None };
                    receiver.watch.sent(&frame);
                    conn.fanned_out(&frame)
                }
                _ = receiver.watch.lagged() => {
                    break Some(Closing(1013, "slow_consumer: reconnect to resync".into()))
                }
                frame = relayed.recv() => frame.into_iter().collect(),
                _ = ping.tick() => vec![Vec::new()],
                _ = expiry => {
                    if conn.bridge.expires_at().is_some_and(|at| at <= now_secs()) {
                        break Some(Closing(POLICY, "token_expired".into()));
                    }
                    continue;
                }
                _ = tokio::time::sleep_until(heard + idle) => {
                    tracing::info!("automerge-repo connection idle: closed");
                    break Some(Closing(1001, "idle".into()));
                }
                msg = stream.next() => {
                    heard = tokio::time::Instant::now();
                    match msg {
                        Some(Ok(WsMessage::Binary(bytes))) => match conn.client_frame(&bytes).await {
                            Ok(out) => out,
                            Err(closing) => break Some(closing),
                        },
                        Some(Err(e)) if is_too_big(&e) => {
                            let limit = conn.bridge.max_frame_bytes();
                            break Some(Closing(1009, above_max_frame(limit)));
                        }
                        Some(Ok(WsMessage::Close(_))) | None | Some(Err(_)) => break None,
                        Some(Ok(_)) => continue,
                    }
                }
            };
            // One task reads and writes: a client that does not read is given the drain
            // limit to take what is sent to it (an empty frame here is a ping), then closed.
            let send = async {
                for frame in out {
                    let message = if frame.is_empty() {
                        WsMessage::Ping(Vec::new().into())
                    } else {
                        WsMessage::Binary(frame.into())
                    };
                    sink.send(message).await?;
                }
                Ok::<(), axum::Error>(())
            };
            match tokio::time::timeout(DRAIN_LIMIT, send).await {
                Ok(Ok(())) => {}
                Ok(Err(_)) => break None,
                Err(_) => {
                    tracing::warn!("closing an automerge-repo connection that does not read");
                    break None;
                }
            }
        },
    };
    if let Some(Closing(code, reason)) = closing {
        tracing::info!(code, reason, "closing an automerge-repo connection");
        close(&mut sink, code, reason).await;
        super::yjs::drain(stream).await;
    }
    node.automerge_peers.leave(conn.bridge.conn_id());
    let _ = sink.close().await;
    tracing::info!("automerge-repo connection closed");
}

impl Conn {
    /// A Concord frame from the hub: live updates of an open document.
    fn fanned_out(&mut self, frame: &[u8]) -> Vec<Vec<u8>> {
        let Ok(Concord::Updates(updates)) = protocol::decode(frame) else {
            return Vec::new();
        };
        let Some(document_id) = updates.doc_id.strip_prefix("automerge:") else {
            return Vec::new();
        };
        let Some(doc) = self.docs.get_mut(document_id) else {
            return Vec::new();
        };
        for update in &updates.updates {
            if let Err(e) = doc.copy.load_incremental(&update.data) {
                tracing::warn!(error = %e, "stored update did not apply to the automerge copy");
            }
        }
        let document_id = document_id.to_string();
        self.sync_out(&document_id).into_iter().collect()
    }

    /// What the client lacks of `document_id`, as a sync message (if anything).
    fn sync_out(&mut self, document_id: &str) -> Option<Vec<u8>> {
        let doc = self.docs.get_mut(document_id)?;
        let message = doc.copy.generate_sync_message(&mut doc.sync)?;
        Some(wire::sync(
            &self.server_peer,
            &self.client_peer,
            document_id,
            message.encode(),
        ))
    }

    /// Opens `document_id`: follows it and loads the copy from the catch-up. False when
    /// the relay does not hold it and this is only a request for it.
    async fn open(&mut self, document_id: &str, request: bool) -> bool {
        if self.docs.contains_key(document_id) {
            return true;
        }
        let doc_id = concord_doc_id(document_id);
        if request {
            // The kind takes the storage lock: off the async workers.
            let relay = self.node.relay.clone();
            let id = doc_id.clone();
            let kind = tokio::task::spawn_blocking(move || relay.doc_kind(&id))
                .await
                .ok()
                .flatten();
            if kind != Some(DocKind::Automerge) {
                return false;
            }
        }
        let catchup = match self.bridge.subscribe(&doc_id, DocKind::Automerge).await {
            Ok(catchup) => catchup,
            Err(e) => {
                tracing::info!(doc_id, code = e.code.name(), message = %e.message, "automerge-repo open refused");
                return false;
            }
        };
        let mut copy = Automerge::new();
        for message in catchup {
            let loaded = match message {
                Concord::Catchup(c) => match c.snapshot {
                    Some(snapshot) => Automerge::load(&snapshot.data).map(|doc| copy = doc),
                    None => Ok(()),
                },
                Concord::Updates(u) => u
                    .updates
                    .iter()
                    .try_for_each(|update| copy.load_incremental(&update.data).map(|_| ())),
                _ => Ok(()),
            };
            if let Err(e) = loaded {
                tracing::warn!(doc_id, error = %e, "stored state did not load");
            }
        }
        self.docs.insert(
            document_id.to_string(),
            OpenDoc {
                copy,
                sync: SyncState::new(),
                waiting_bytes: 0,
            },
        );
        self.node.automerge_peers.join(
            document_id,
            self.bridge.conn_id(),
            self.client_peer.clone(),
            self.ephemeral.clone(),
        );
        true
    }

    /// One frame from the client; the frames to answer with.
    async fn client_frame(&mut self, frame: &[u8]) -> Result<Vec<Vec<u8>>, Closing> {
        let message = wire::decode(frame).map_err(|e| {
            tracing::warn!(error = %e, "malformed automerge-repo message: closing");
            Closing(PROTOCOL_ERROR, format!("malformed message: {e}"))
        })?;
        match message {
            FromClient::Join { sender_id } => {
                self.client_peer = sender_id;
                Ok(vec![wire::peer(&self.server_peer, &self.client_peer)])
            }
            FromClient::Sync {
                request,
                sender_id,
                document_id,
                data,
            } => {
                if self.client_peer.is_empty() {
                    self.client_peer = sender_id;
                }
                let message = SyncMessage::decode(&data)
                    .map_err(|e| Closing(PROTOCOL_ERROR, format!("malformed sync message: {e}")))?;
                let size = super::automerge_checks::check(&message).map_err(|why| {
                    Closing(PROTOCOL_ERROR, format!("sync message refused: {why}"))
                })?;
                if !self.open(&document_id, request).await {
                    return Ok(vec![wire::doc_unavailable(
                        &self.server_peer,
                        &self.client_peer,
                        &document_id,
                    )]);
                }
                // Checked before Automerge reads the changes: while changes wait for their
                // dependencies, this message's may wait too.
                let limit = waiting_limit(self.bridge.max_frame_bytes());
                let waiting: u64 = self.docs.values().map(|d| d.waiting_bytes).sum();
                if size > limit || (waiting > 0 && waiting + size > limit) {
                    return Err(Closing(
                        POLICY,
                        format!(
                            "changes waiting for changes they depend on would exceed {} MiB",
                            limit >> 20
                        ),
                    ));
                }
                let doc = self.docs.get_mut(&document_id).expect("opened above");
                let before = doc.copy.get_heads();
                doc.copy
                    .receive_sync_message(&mut doc.sync, message)
                    .map_err(|e| Closing(PROTOCOL_ERROR, format!("sync message refused: {e}")))?;
                doc.waiting_bytes = if doc.copy.get_missing_deps(&[]).is_empty() {
                    0
                } else {
                    doc.waiting_bytes + size
                };
                let mut data = Vec::new();
                for mut change in doc.copy.get_changes(&before) {
                    data.extend_from_slice(&change.bytes());
                }
                if !data.is_empty() {
                    match self
                        .bridge
                        .append(&concord_doc_id(&document_id), data)
                        .await
                    {
                        Written::Stored => {}
                        Written::Dropped => {
                            tracing::debug!(
                                document_id,
                                "changes of a read-only connection dropped"
                            );
                            // Its later changes are not applied to the copy either (they
                            // would never leave it).
                            if let Some(doc) = self.docs.get_mut(&document_id) {
                                doc.sync.set_read_only(true);
                            }
                        }
                        Written::Refused(e) => {
                            let code = match e.code {
                                ErrorCode::Unavailable | ErrorCode::Internal => UNAVAILABLE,
                                _ => PROTOCOL_ERROR,
                            };
                            return Err(Closing(code, format!("{}: {}", e.code.name(), e.message)));
                        }
                    }
                }
                Ok(self.sync_out(&document_id).into_iter().collect())
            }
            // Only to a document this connection has open (which took read rights).
            FromClient::Ephemeral { document_id, raw } => {
                if self.docs.contains_key(&document_id) {
                    self.node
                        .automerge_peers
                        .relay(&document_id, self.bridge.conn_id(), &raw);
                } else {
                    tracing::debug!(document_id, "ephemeral message for a document not open");
                }
                Ok(Vec::new())
            }
            FromClient::Other(kind) => {
                tracing::debug!(kind, "automerge-repo message ignored");
                Ok(Vec::new())
            }
        }
    }
}

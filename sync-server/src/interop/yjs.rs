//! The y-websocket endpoint, `ws://HOST:PORT/yjs/{room}?token=…`: an unmodified Yjs client
//! (`y-websocket`'s `WebsocketProvider`) syncs the Concord Yrs document whose id is the
//! room name. A thin shell: its writes go through the [`Bridge`] (the relay's own session
//! and append path), it follows the document in the hub like a device, and awareness goes
//! through this node's [`YjsRooms`].
//!
//! The server's sync step 1 and its answer to the client's are made from the catch-up (the
//! document as stored when the connection subscribed; a later sync step 1 reads it anew);
//! everything stored after it reaches the client as fanned-out updates, which the writer
//! task forwards as they are — no per-connection copy is kept up to date. A message that
//! does not decode (or an update the relay refuses as invalid) closes the connection with
//! code 1002; nothing of it is stored. Updates sent with a read-only token are dropped.
//!
//! The server's own messages (sync replies, room frames) wait in a bounded queue of the
//! connection's (`hub.rs`): a client that asks and does not read is not read from until it
//! does (closed after [`DRAIN_LIMIT`]), and one that falls behind its room is closed with
//! 1013. A connection silent for the relay's idle timeout (no message, no pong to its
//! pings) is closed.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message as WsMessage, WebSocket, WebSocketUpgrade};
use axum::extract::{Path, Query, State};
use axum::response::IntoResponse;
use concord_core::protocol::{self, Message as Concord};
use concord_core::DocKind;
use futures_util::{SinkExt, StreamExt};
use tokio::sync::oneshot;
use yrs::sync::{Message, SyncMessage};
use yrs::updates::decoder::Decode;
use yrs::updates::encoder::Encode;
use yrs::{Doc, ReadTxn, Transact};

use super::bridge::{Bridge, Written};
use super::yjs_rooms::MemberTx;
use crate::http::{above_max_frame, closing, is_too_big, Node, DRAIN_LIMIT};
use crate::hub::{conn_queue, ConnQueue, ConnReceiver};
use crate::state::now_secs;

/// WebSocket close code for a protocol error (a malformed message).
const PROTOCOL_ERROR: u16 = 1002;
/// WebSocket close code for a refused token (y-websocket reconnects after any close).
const POLICY: u16 = 1008;
/// WebSocket close code for a connection that fell too far behind ("try again later").
const TRY_AGAIN_LATER: u16 = 1013;

/// The document as stored, from the relay's catch-up messages.
fn catchup_doc(catchup: &[Concord]) -> Doc {
    let doc = Doc::new();
    for message in catchup {
        match message {
            Concord::Catchup(c) => {
                if let Some(snapshot) = &c.snapshot {
                    apply(&doc, &snapshot.data);
                }
            }
            Concord::Updates(u) => {
                for update in &u.updates {
                    apply(&doc, &update.data);
                }
            }
            _ => {}
        }
    }
    doc
}

fn sync_bytes(message: SyncMessage) -> Vec<u8> {
    Message::Sync(message).encode_v1()
}

pub async fn upgrade(
    ws: WebSocketUpgrade,
    State(node): State<Node>,
    Path(room): Path<String>,
    Query(params): Query<HashMap<String, String>>,
) -> impl IntoResponse {
    // A message above the relay's frame limit is not read: the connection is closed 1009.
    let limit = node.relay.config.max_frame_bytes;
    let token = params.get("token").cloned();
    ws.max_message_size(limit)
        .max_frame_size(limit)
        .on_upgrade(move |socket| serve(node, socket, room, token))
}

/// Queues one of the server's own y-websocket messages for the connection.
fn reply(own: &ConnQueue, message: Vec<u8>) {
    own.send(Arc::new(message));
}

async fn serve(node: Node, socket: WebSocket, room: String, token: Option<String>) {
    let config = node.relay.config.clone();
    // The hub's fan-out (Concord frames of the document), and the server's own messages.
    let (queue, receiver) = conn_queue();
    let (own, own_receiver) = conn_queue();
    let mut bridge = Bridge::new(&node, queue.clone(), "yjs");
    let member = bridge.conn_id();
    let (sink, mut stream) = socket.split();
    let (close_tx, close_rx) = oneshot::channel();
    let mut close_tx = Some(close_tx);
    // Resolves when the writer has ended (closed as too slow, or the socket failed): the
    // reader then ends too, so the connection leaves its room at once.
    let (writer_alive, mut writer_ended) = oneshot::channel::<()>();
    let mut writer = tokio::spawn(write_frames(
        sink,
        receiver,
        own_receiver,
        close_rx,
        config.ping_every(),
        writer_alive,
    ));
    tracing::info!(room, origin = %bridge.origin(), "yjs connection opened");

    let start = async {
        bridge.hello(token).await?;
        bridge.subscribe(&room, DocKind::Yrs).await
    };
    let catchup = match start.await {
        Ok(catchup) => catchup,
        Err(e) => {
            tracing::warn!(room, code = e.code.name(), message = %e.message, "yjs connection refused");
            closing(
                &mut close_tx,
                POLICY,
                format!("{}: {}", e.code.name(), e.message),
            );
            drop(own);
            let _ = tokio::time::timeout(Duration::from_secs(5), &mut writer).await;
            drain(stream).await;
            return;
        }
    };
    // The stored document answers the client's first sync step 1; later ones read it anew.
    let mut stored = Some(catchup_doc(&catchup));
    drop(catchup);
    if let Some(doc) = &stored {
        let sv = doc.transact().state_vector();
        reply(&own, sync_bytes(SyncMessage::SyncStep1(sv)));
    }
    let tx = MemberTx {
        queue: own.clone(),
        max_queue: config.max_queue,
    };
    if let Some(frame) = node.yjs_rooms.join(&room, member, tx) {
        own.send(frame);
    }

    loop {
        // A client that asks (sync step 1 is answered with the whole document) and does not
        // read is not read from until it has, and closed if it still has not.
        tokio::select! {
            drained = tokio::time::timeout(DRAIN_LIMIT, own.drained(config.max_queue)) => {
                if drained.is_err() {
                    tracing::warn!(
                        room,
                        "closing a yjs connection that does not read its replies"
                    );
                    break;
                }
            }
            _ = &mut writer_ended => break,
        }
        let expiry = crate::http::token_expiry(bridge.expires_at());
        let msg = tokio::select! {
            _ = &mut writer_ended => break,
            msg = tokio::time::timeout(config.idle_timeout, stream.next()) => match msg {
                Ok(msg) => msg,
                Err(_) => {
                    tracing::info!(room, "yjs connection idle: closed");
                    break;
                }
            },
            _ = expiry => {
                if bridge.expires_at().is_some_and(|at| at <= now_secs()) {
                    closing(&mut close_tx, POLICY, "token_expired".into());
                    break;
                }
                continue;
            }
        };
        let bytes = match msg {
            Some(Ok(WsMessage::Binary(bytes))) => bytes,
            Some(Ok(WsMessage::Close(_))) | None => break,
            Some(Ok(_)) => continue,
            Some(Err(e)) => {
                tracing::info!(room, error = %e, "yjs connection failed");
                if is_too_big(&e) {
                    closing(
                        &mut close_tx,
                        axum::extract::ws::close_code::SIZE,
                        above_max_frame(config.max_frame_bytes),
                    );
                }
                break;
            }
        };
        let message = match Message::decode_v1(&bytes) {
            Ok(message) => message,
            Err(e) => {
                tracing::warn!(room, error = %e, "malformed y-websocket message: closing");
                closing(
                    &mut close_tx,
                    PROTOCOL_ERROR,
                    format!("malformed message: {e}"),
                );
                break;
            }
        };
        match message {
            Message::Sync(SyncMessage::SyncStep1(sv)) => {
                let doc = match stored.take() {
                    Some(doc) => doc,
                    None => match bridge.subscribe(&room, DocKind::Yrs).await {
                        Ok(catchup) => catchup_doc(&catchup),
                        Err(e) => {
                            closing(
                                &mut close_tx,
                                POLICY,
                                format!("{}: {}", e.code.name(), e.message),
                            );
                            break;
                        }
                    },
                };
                let diff = doc.transact().encode_state_as_update_v1(&sv);
                reply(&own, sync_bytes(SyncMessage::SyncStep2(diff)));
            }
            Message::Sync(SyncMessage::SyncStep2(update) | SyncMessage::Update(update)) => {
                match concord_core::doc::decode_yrs_update(&update) {
                    Ok(decoded) if decoded.is_empty() => continue,
                    Ok(_) => {}
                    Err(e) => {
                        tracing::warn!(room, error = %e, "malformed Yjs update: closing");
                        closing(
                            &mut close_tx,
                            PROTOCOL_ERROR,
                            format!("malformed update: {e}"),
                        );
                        break;
                    }
                }
                match bridge.append(&room, update).await {
                    Written::Stored => {}
                    Written::Dropped => {
                        tracing::debug!(room, "update of a read-only connection dropped");
                    }
                    Written::Refused(e) => {
                        tracing::warn!(room, code = e.code.name(), message = %e.message, "yjs update refused: closing");
                        closing(
                            &mut close_tx,
                            PROTOCOL_ERROR,
                            format!("{}: {}", e.code.name(), e.message),
                        );
                        break;
                    }
                }
            }
            Message::Awareness(update) => {
                let frame = Arc::new(bytes.to_vec());
                if let Err(e) = node.yjs_rooms.update(&room, member, update, frame) {
                    tracing::warn!(room, error = %e, "yjs awareness past its bound: closing");
                    closing(&mut close_tx, POLICY, e.to_string());
                    break;
                }
            }
            Message::AwarenessQuery => {
                if let Some(frame) = node.yjs_rooms.query(&room) {
                    own.send(frame);
                }
            }
            Message::Auth(_) | Message::Custom(..) => {}
        }
    }
    node.yjs_rooms.leave(&room, member);
    drop(bridge);
    drop(queue);
    drop(own);
    drop(close_tx);
    if tokio::time::timeout(Duration::from_secs(5), &mut writer)
        .await
        .is_err()
    {
        writer.abort();
    }
    drain(stream).await;
    tracing::info!(room, "yjs connection closed");
}

/// After the server's close frame: reads what the client still sends until its close
/// reply (bounded), so the socket is not dropped with unread data — which would reset the
/// connection and hide the close code from the client.
pub(super) async fn drain(mut stream: futures_util::stream::SplitStream<WebSocket>) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(2);
    while let Ok(Some(Ok(msg))) = tokio::time::timeout_at(deadline, stream.next()).await {
        if matches!(msg, WsMessage::Close(_)) {
            break;
        }
    }
}

/// Applies a Yrs v1 update to the connection's copy of the document.
fn apply(doc: &Doc, update: &[u8]) {
    match concord_core::doc::decode_yrs_update(update) {
        Ok(update) => {
            if let Err(e) = doc.transact_mut().apply_update(update) {
                tracing::warn!(error = %e, "stored update did not apply to the yjs copy");
            }
        }
        Err(e) => tracing::warn!(error = %e, "stored update did not decode"),
    }
}

/// The connection's writer: turns the relay's fanned-out Concord updates into y-websocket
/// updates, sends the server's own messages (replies, room frames), pings; ends with the
/// reader's close frame, or 1013 when either queue fell too far behind.
async fn write_frames(
    mut sink: futures_util::stream::SplitSink<WebSocket, WsMessage>,
    mut fanned: ConnReceiver,
    mut own: ConnReceiver,
    mut close: oneshot::Receiver<CloseFrame>,
    ping_every: Duration,
    // Dropped when this task ends, which tells the reader.
    _alive: oneshot::Sender<()>,
) {
    let mut ping = crate::http::ping_interval(ping_every).await;
    let mut reader_done = false;
    let slow = || {
        tracing::warn!("closing a yjs connection that fell too far behind");
        Some(CloseFrame {
            code: TRY_AGAIN_LATER,
            reason: "slow_consumer: reconnect to resync".into(),
        })
    };
    let last = loop {
        let out = tokio::select! {
            biased;
            frame = &mut close, if !reader_done => match frame {
                Ok(frame) => break Some(frame),
                // The reader ended without a close frame: send what is queued, then stop.
                Err(_) => {
                    reader_done = true;
                    continue;
                }
            },
            // Too far behind: closed at once, what is queued is not sent first.
            _ = fanned.watch.lagged() => break slow(),
            _ = own.watch.lagged() => break slow(),
            frame = own.rx.recv() => {
                let Some(frame) = frame else { break None };
                own.watch.sent(&frame);
                WsMessage::Binary(frame.as_ref().clone().into())
            }
            frame = fanned.rx.recv() => {
                let Some(frame) = frame else { break None };
                fanned.watch.sent(&frame);
                let Ok(Concord::Updates(updates)) = protocol::decode(&frame) else {
                    continue;
                };
                let mut sent = true;
                for update in updates.updates {
                    let message = sync_bytes(SyncMessage::Update(update.data));
                    sent &= sink.send(WsMessage::Binary(message.into())).await.is_ok();
                }
                if !sent {
                    break None;
                }
                continue;
            }
            _ = ping.tick() => WsMessage::Ping(Vec::new().into()),
        };
        if sink.send(out).await.is_err() {
            break None;
        }
    };
    if let Some(frame) = last {
        let _ = sink.send(WsMessage::Close(Some(frame))).await;
    }
    let _ = sink.close().await;
}

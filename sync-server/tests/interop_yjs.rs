//! Unmodified Yjs clients (`yjs` + `y-websocket` in node) against a real `concord-server`
//! process on `/yjs/{room}`: a Yjs client and a Concord CLI device edit the same text and
//! converge (in both directions, live, and durably across a restart); awareness between two
//! Yjs clients (shown to newcomers, echoed to the sender, removed when a connection dies);
//! a malformed message closes only that connection; a read-only token's writes are dropped.

mod common;
mod interop_support;

use std::time::Duration;

use common::ServerProcess;
use futures_util::{SinkExt, StreamExt};
use interop_support::{CliDevice, JsClient};
use serde_json::json;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::Message as WsMessage;
use yrs::sync::awareness::{AwarenessUpdate, AwarenessUpdateEntry};
use yrs::sync::{Message, SyncMessage};
use yrs::updates::decoder::Decode;
use yrs::updates::encoder::Encode;

fn yjs_url(server: &ServerProcess) -> String {
    format!("ws://127.0.0.1:{}/yjs", server.port())
}

fn yjs(server: &ServerProcess, room: &str, token: Option<&str>) -> JsClient {
    let url = yjs_url(server);
    let mut args = vec![url.as_str(), room];
    if let Some(token) = token {
        args.push(token);
    }
    JsClient::spawn("yjs-client.mjs", &args)
}

/// A device that created `doc` (a Yrs document) with `text` in its root text `body` and
/// synced it.
fn device_with_text(
    server: &ServerProcess,
    doc: &str,
    text: &str,
    token: Option<&str>,
) -> CliDevice {
    let device = CliDevice::new();
    device.run(&["create", doc, "--kind", "yrs"]);
    device.run(&["insert-text", doc, "body", "0", text]);
    device.sync(&server.url(), token);
    device
}

#[tokio::test]
async fn a_yjs_client_and_a_concord_device_edit_one_text_and_converge() {
    let mut server = ServerProcess::start(&[]).await;
    let device = device_with_text(&server, "notes", "concord says hi.", None);

    let mut client = yjs(&server, "notes", None);
    client.call(json!({"cmd": "wait_synced"})).await;
    client
        .call(json!({"cmd": "wait_text", "contains": "concord says hi."}))
        .await;
    client
        .call(json!({"cmd": "insert", "text": " yjs says hello."}))
        .await;
    let text = device
        .sync_until_text(&server.url(), None, "notes", "body", "yjs says hello.")
        .await;
    assert_eq!(text, "concord says hi. yjs says hello.");

    // Live: the device's next edit reaches the connected Yjs client.
    device.run(&["insert-text", "notes", "body", "0", "[live] "]);
    device.sync(&server.url(), None);
    let seen = client
        .call(json!({"cmd": "wait_text", "contains": "[live] "}))
        .await;
    assert_eq!(seen["text"], "[live] concord says hi. yjs says hello.");
    client.exit().await;

    // Durable: after a restart a new Yjs client gets the whole text from storage.
    server.restart().await;
    let mut late = yjs(&server, "notes", None);
    late.call(json!({"cmd": "wait_synced"})).await;
    let seen = late.call(json!({"cmd": "text"})).await;
    assert_eq!(seen["text"], "[live] concord says hi. yjs says hello.");
    late.exit().await;
}

#[tokio::test]
async fn a_room_a_yjs_client_creates_is_a_concord_document() {
    let server = ServerProcess::start(&[]).await;
    let mut client = yjs(&server, "fresh/room", None);
    client.call(json!({"cmd": "wait_synced"})).await;
    client
        .call(json!({"cmd": "insert", "text": "made in yjs"}))
        .await;
    let device = CliDevice::new();
    let text = device
        .sync_until_text(&server.url(), None, "fresh/room", "body", "made in yjs")
        .await;
    assert_eq!(text, "made in yjs");
    client.exit().await;
}

#[tokio::test]
async fn awareness_between_two_yjs_clients() {
    let server = ServerProcess::start(&[]).await;
    let mut ann = yjs(&server, "aware", None);
    let mut bob = yjs(&server, "aware", None);
    ann.call(json!({"cmd": "wait_synced"})).await;
    bob.call(json!({"cmd": "wait_synced"})).await;
    ann.call(json!({"cmd": "awareness", "user": {"name": "ann"}}))
        .await;
    bob.call(json!({"cmd": "awareness", "user": {"name": "bob"}}))
        .await;
    ann.call(json!({"cmd": "wait_peers", "names": ["bob"]}))
        .await;
    bob.call(json!({"cmd": "wait_peers", "names": ["ann"]}))
        .await;

    // A newcomer is shown the room's current states.
    let mut cid = yjs(&server, "aware", None);
    cid.call(json!({"cmd": "wait_synced"})).await;
    cid.call(json!({"cmd": "wait_peers", "names": ["ann", "bob"]}))
        .await;

    // Ann's process dies without a goodbye: the server removes her state, well before
    // y-websocket's own 30 s timeout for silent peers would.
    ann.kill().await;
    bob.call(json!({"cmd": "wait_peers", "names": [], "timeout_ms": 10_000}))
        .await;
    cid.call(json!({"cmd": "wait_peers", "names": ["bob"], "timeout_ms": 10_000}))
        .await;
    bob.exit().await;
    cid.exit().await;
}

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// The next y-websocket message on a raw connection, or the close frame's code.
async fn next_raw(ws: &mut Ws) -> Result<Message, Option<CloseCode>> {
    loop {
        let frame = tokio::time::timeout(Duration::from_secs(10), ws.next())
            .await
            .expect("the server answers within 10 s");
        match frame {
            Some(Ok(WsMessage::Binary(bytes))) => {
                return Ok(Message::decode_v1(&bytes).expect("a y-websocket message"))
            }
            Some(Ok(WsMessage::Close(frame))) => return Err(frame.map(|f| f.code)),
            Some(Ok(_)) => continue,
            Some(Err(_)) | None => return Err(None),
        }
    }
}

/// Reads until the server closes the connection; the close code.
async fn closed_with(ws: &mut Ws) -> Option<CloseCode> {
    for _ in 0..100 {
        if let Err(code) = next_raw(ws).await {
            return code;
        }
    }
    panic!("the server kept the connection open");
}

#[tokio::test]
async fn a_malformed_yjs_message_closes_that_connection_only() {
    let server = ServerProcess::start(&[]).await;
    let device = device_with_text(&server, "shared", "stored text.", None);
    let mut client = yjs(&server, "shared", None);
    client.call(json!({"cmd": "wait_synced"})).await;
    client
        .call(json!({"cmd": "wait_text", "contains": "stored text."}))
        .await;

    let url = format!("{}/shared", yjs_url(&server));
    // A raw connection gets the server's sync step 1, and its own awareness echoed.
    let (mut raw, _) = tokio_tungstenite::connect_async(&url).await.unwrap();
    let mut step1 = false;
    for _ in 0..10 {
        if let Ok(Message::Sync(SyncMessage::SyncStep1(_))) = next_raw(&mut raw).await {
            step1 = true;
            break;
        }
    }
    assert!(step1, "the server sends its sync step 1");
    let mine = yrs::ClientID::new(4242);
    let awareness = Message::Awareness(AwarenessUpdate {
        clients: [(
            mine,
            AwarenessUpdateEntry {
                clock: 1,
                json: r#"{"user":{"name":"raw"}}"#.into(),
            },
        )]
        .into(),
    });
    raw.send(WsMessage::Binary(awareness.encode_v1().into()))
        .await
        .unwrap();
    let mut echoed = false;
    for _ in 0..10 {
        if let Ok(Message::Awareness(update)) = next_raw(&mut raw).await {
            if update.clients.contains_key(&mine) {
                echoed = true;
                break;
            }
        }
    }
    assert!(echoed, "the sender's awareness update came back to it");
    // Bytes that are no y-websocket message: closed with 1002 (protocol error).
    raw.send(WsMessage::Binary(vec![0, 7, 0xff, 0xff, 0xff].into()))
        .await
        .unwrap();
    assert_eq!(closed_with(&mut raw).await, Some(CloseCode::Protocol));

    // A well-formed message carrying an update that is not one: closed the same way (the
    // reason, naming the decoder's error, is cut to what a close frame carries).
    let (mut raw, _) = tokio_tungstenite::connect_async(&url).await.unwrap();
    let bogus = Message::Sync(SyncMessage::Update(vec![9, 200, 1, 2, 3, 4, 5]));
    raw.send(WsMessage::Binary(bogus.encode_v1().into()))
        .await
        .unwrap();
    assert_eq!(closed_with(&mut raw).await, Some(CloseCode::Protocol));

    // An update whose one value nests an array 200,000 deep (Yrs's decoder recursed on it
    // until the stack overflowed and the relay process aborted): closed the same way.
    let (mut raw, _) = tokio_tungstenite::connect_async(&url).await.unwrap();
    let mut deep = vec![1, 1, 1, 0, 8, 1, 1, b't', 1];
    for _ in 0..200_000 {
        deep.extend([117, 1]);
    }
    deep.extend([126, 0]);
    let deep = Message::Sync(SyncMessage::Update(deep));
    raw.send(WsMessage::Binary(deep.encode_v1().into()))
        .await
        .unwrap();
    assert_eq!(closed_with(&mut raw).await, Some(CloseCode::Protocol));

    // The other client still syncs both ways, and the stored text is whole.
    client
        .call(json!({"cmd": "insert", "text": " still fine."}))
        .await;
    let text = device
        .sync_until_text(&server.url(), None, "shared", "body", "still fine.")
        .await;
    assert_eq!(text, "stored text. still fine.");
    device.run(&["insert-text", "shared", "body", "0", ">"]);
    device.sync(&server.url(), None);
    client
        .call(json!({"cmd": "wait_text", "contains": ">stored text. still fine."}))
        .await;
    let probe = CliDevice::new();
    probe.sync(&server.url(), None);
    assert_eq!(probe.text("shared", "body"), ">stored text. still fine.");
    client.exit().await;
}

fn token(secret: &str, doc: &str, right: &str) -> String {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_concord-server"))
        .args(["token", "--secret", secret, "--docs", doc, "--right", right])
        .output()
        .expect("run concord-server token");
    assert!(output.status.success());
    String::from_utf8(output.stdout).unwrap().trim().to_string()
}

#[tokio::test]
async fn a_read_only_token_reads_and_its_writes_are_dropped() {
    let server = ServerProcess::start(&["--auth-secret", "s3cret"]).await;
    let write = token("s3cret", "guarded", "write");
    let read = token("s3cret", "guarded", "read");
    let device = device_with_text(&server, "guarded", "by the device.", Some(&write));

    let mut reader = yjs(&server, "guarded", Some(&read));
    reader.call(json!({"cmd": "wait_synced"})).await;
    reader
        .call(json!({"cmd": "wait_text", "contains": "by the device."}))
        .await;
    reader
        .call(json!({"cmd": "awareness", "user": {"name": "reader"}}))
        .await;
    reader.call(json!({"cmd": "insert", "text": "NOPE"})).await;
    // The server has handled the insert once it answers the query sent after it.
    reader.call(json!({"cmd": "roundtrip"})).await;

    device.run(&["insert-text", "guarded", "body", "0", "still "]);
    device.sync(&server.url(), Some(&write));
    reader
        .call(json!({"cmd": "wait_text", "contains": "still by the device."}))
        .await;
    let probe = CliDevice::new();
    probe.sync(&server.url(), Some(&write));
    assert_eq!(probe.text("guarded", "body"), "still by the device.");
    let closes = reader.call(json!({"cmd": "closes"})).await;
    assert_eq!(
        closes["closes"],
        json!([]),
        "the read-only connection stays open"
    );

    // Without a token the server refuses the connection.
    let mut stranger = yjs(&server, "guarded", None);
    let closed = stranger.call(json!({"cmd": "wait_closed"})).await;
    assert_eq!(closed["closes"][0]["code"], 1008);
    assert_eq!(closed["synced"], false);
    reader.exit().await;
    stranger.exit().await;
}

/// Awareness client ids announced in a y-websocket message.
fn awareness_of(message: &Message) -> Vec<(u64, u32, String)> {
    match message {
        Message::Awareness(update) => update
            .clients
            .iter()
            .map(|(id, e)| (id.get(), e.clock, e.json.to_string()))
            .collect(),
        _ => Vec::new(),
    }
}

/// A client that announced the largest awareness clock and leaves is still removed: the
/// others get its state as `null` (at that clock, which y-protocols takes as the end), a
/// newcomer is not shown it, and the server does not panic on `clock + 1`.
#[tokio::test]
async fn a_client_at_the_largest_awareness_clock_is_removed_when_it_leaves() {
    let server = ServerProcess::start(&[]).await;
    let room = format!("{}/clock-max", yjs_url(&server));
    const GHOST: u64 = 4242;
    let (mut ghost, _) = tokio_tungstenite::connect_async(&room).await.unwrap();
    let mut clients = std::collections::HashMap::new();
    clients.insert(
        yrs::ClientID::new(GHOST),
        AwarenessUpdateEntry {
            clock: u32::MAX,
            json: "{\"user\":\"ghost\"}".into(),
        },
    );
    let frame = Message::Awareness(AwarenessUpdate { clients }).encode_v1();
    ghost.send(WsMessage::Binary(frame.into())).await.unwrap();
    // Its state is held once it comes back (the room echoes what it stores).
    loop {
        let m = next_raw(&mut ghost).await.expect("the room answers");
        if awareness_of(&m).iter().any(|(id, _, _)| *id == GHOST) {
            break;
        }
    }
    let (mut watcher, _) = tokio_tungstenite::connect_async(&room).await.unwrap();
    loop {
        let m = next_raw(&mut watcher).await.expect("the room answers");
        if awareness_of(&m)
            .iter()
            .any(|(id, _, json)| *id == GHOST && json != "null")
        {
            break;
        }
    }
    ghost.close(None).await.unwrap();
    drop(ghost);
    let removal = loop {
        let m = next_raw(&mut watcher)
            .await
            .expect("the watcher is told the ghost left");
        if let Some(entry) = awareness_of(&m)
            .into_iter()
            .find(|(id, _, json)| *id == GHOST && json == "null")
        {
            break entry;
        }
    };
    assert_eq!(removal.1, u32::MAX, "removed at the clock it announced");
    // A newcomer is shown the room's states: the ghost is not among them.
    let (mut newcomer, _) = tokio_tungstenite::connect_async(&room).await.unwrap();
    while let Ok(Some(Ok(WsMessage::Binary(bytes)))) =
        tokio::time::timeout(Duration::from_millis(800), newcomer.next()).await
    {
        let m = Message::decode_v1(&bytes).expect("a y-websocket message");
        assert!(
            !awareness_of(&m)
                .iter()
                .any(|(id, _, json)| *id == GHOST && json != "null"),
            "a newcomer is shown the departed client"
        );
    }
    assert!(
        !server.log_tail().contains("panicked"),
        "the server panicked:\n{}",
        server.log_tail()
    );
}

/// A y-websocket awareness message announcing `id` at `clock` with `json`.
fn awareness(id: u64, clock: u32, json: &str) -> WsMessage {
    let update = AwarenessUpdate {
        clients: [(
            yrs::ClientID::new(id),
            AwarenessUpdateEntry {
                clock,
                json: json.into(),
            },
        )]
        .into(),
    };
    WsMessage::Binary(Message::Awareness(update).encode_v1().into())
}

/// Reads `ws` until an awareness message names `id` with a state other than `null`;
/// every awareness entry seen on the way (and in that message).
async fn until_announced(ws: &mut Ws, id: u64) -> Vec<(u64, u32, String)> {
    let mut seen = Vec::new();
    loop {
        let m = next_raw(ws).await.expect("the room answers");
        let entries = awareness_of(&m);
        let found = entries
            .iter()
            .any(|(i, _, json)| *i == id && json != "null");
        seen.extend(entries);
        if found {
            return seen;
        }
    }
}

/// A client id's awareness state belongs to the connection that announced it: another
/// member of the room can neither change it nor remove it (before, any member could, with
/// a higher clock), while its owner still can.
#[tokio::test]
async fn another_connection_cannot_change_or_remove_a_clients_awareness() {
    let server = ServerProcess::start(&[]).await;
    let room = format!("{}/owned", yjs_url(&server));
    const OWNER: u64 = 77;
    const FORGER: u64 = 88;
    let (mut owner, _) = tokio_tungstenite::connect_async(&room).await.unwrap();
    owner
        .send(awareness(OWNER, 1, r#"{"user":"owner"}"#))
        .await
        .unwrap();
    until_announced(&mut owner, OWNER).await;
    let (mut forger, _) = tokio_tungstenite::connect_async(&room).await.unwrap();
    until_announced(&mut forger, OWNER).await;
    forger
        .send(awareness(OWNER, 5, r#"{"user":"forged"}"#))
        .await
        .unwrap();
    forger.send(awareness(OWNER, 6, "null")).await.unwrap();
    // Its own state, echoed once the two before it were handled (one connection's
    // messages are handled in order).
    forger
        .send(awareness(FORGER, 1, r#"{"user":"forger"}"#))
        .await
        .unwrap();
    until_announced(&mut forger, FORGER).await;
    let seen = until_announced(&mut owner, FORGER).await;
    assert!(
        seen.iter().all(|(id, _, _)| *id != OWNER),
        "the owner was sent a forged state of its client: {seen:?}"
    );
    let (mut newcomer, _) = tokio_tungstenite::connect_async(&room).await.unwrap();
    let shown = until_announced(&mut newcomer, OWNER).await;
    assert!(
        shown.contains(&(OWNER, 1, r#"{"user":"owner"}"#.to_string())),
        "a newcomer is shown the owner's own state: {shown:?}"
    );
    // The owner itself still changes its state.
    owner
        .send(awareness(OWNER, 2, r#"{"user":"owner, moved"}"#))
        .await
        .unwrap();
    loop {
        let m = next_raw(&mut newcomer).await.expect("the room relays");
        if awareness_of(&m).contains(&(OWNER, 2, r#"{"user":"owner, moved"}"#.to_string())) {
            break;
        }
    }
}

/// A member of a busy room that does not read is closed as a slow consumer (1013) once
/// its queue is full, instead of having every awareness frame buffered for it.
#[tokio::test]
async fn a_room_member_that_does_not_read_is_closed_not_buffered_for() {
    let server = ServerProcess::start(&["--max-queue", "8"]).await;
    let room = format!("{}/busy", yjs_url(&server));
    let (mut slow, _) = tokio_tungstenite::connect_async(&room).await.unwrap();
    let (mut talker, _) = tokio_tungstenite::connect_async(&room).await.unwrap();
    // The talker announces itself, then keeps reading (its own echoes) in the background.
    talker
        .send(awareness(1, 1, r#"{"user":"talker"}"#))
        .await
        .unwrap();
    until_announced(&mut talker, 1).await;
    let (mut talk, mut listen) = talker.split();
    let listener = tokio::spawn(async move { while let Some(Ok(_)) = listen.next().await {} });
    // 100 states of 400 KB: 40 MB, far more than the socket buffers plus 8 frames.
    const SENT: u32 = 100;
    let pad = "x".repeat(400_000);
    for clock in 2..SENT + 2 {
        let json = format!(r#"{{"user":"talker","n":{clock},"pad":"{pad}"}}"#);
        talk.send(awareness(1, clock, &json)).await.unwrap();
    }
    // Now the slow member reads: some frames, then the close.
    let mut frames = 0;
    let code = loop {
        match next_raw(&mut slow).await {
            Ok(_) => frames += 1,
            Err(code) => break code,
        }
    };
    assert_eq!(code, Some(CloseCode::Again), "closed as a slow consumer");
    assert!(
        frames < SENT,
        "{frames} frames of {SENT} reached a member that did not read: all were buffered"
    );
    listener.abort();
}

/// A client that sends sync step 1 over and over (each answered with the whole document)
/// and does not read is not read from until it does: an update it sends after them is not
/// stored meanwhile (before, every answer was queued without limit and the update went
/// through); once it reads, it gets every answer and its update is stored.
#[tokio::test]
async fn a_client_that_asks_and_does_not_read_is_held_back() {
    let server = ServerProcess::start(&["--max-queue", "8"]).await;
    let room = format!("{}/asked", yjs_url(&server));
    let (mut observer, _) = tokio_tungstenite::connect_async(&room).await.unwrap();
    // A 300 KB text, stored through the observer.
    let doc = yrs::Doc::new();
    let text = doc.get_or_insert_text("body");
    {
        use yrs::{Text, Transact};
        let mut txn = doc.transact_mut();
        text.insert(&mut txn, 0, &"stored ".repeat(43_000));
    }
    let big = {
        use yrs::{ReadTxn, Transact};
        doc.transact()
            .encode_state_as_update_v1(&yrs::StateVector::default())
    };
    let step1 = |sv: yrs::StateVector| {
        WsMessage::Binary(Message::Sync(SyncMessage::SyncStep1(sv)).encode_v1().into())
    };
    observer
        .send(WsMessage::Binary(
            Message::Sync(SyncMessage::Update(big)).encode_v1().into(),
        ))
        .await
        .unwrap();
    // Its own step 1 is answered with the document, which holds the text once stored.
    loop {
        observer
            .send(step1(yrs::StateVector::default()))
            .await
            .unwrap();
        let stored = loop {
            if let Ok(Message::Sync(SyncMessage::SyncStep2(update))) = next_raw(&mut observer).await
            {
                break update.len() > 250_000;
            }
        };
        if stored {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let (asker, _) = tokio_tungstenite::connect_async(&room).await.unwrap();
    let (mut ask, mut replies) = asker.split();
    const ASKED: usize = 300;
    for _ in 0..ASKED {
        ask.send(step1(yrs::StateVector::default())).await.unwrap();
    }
    let marker = {
        use yrs::{Text, Transact};
        let mine = yrs::Doc::with_client_id(9_999);
        let text = mine.get_or_insert_text("marker");
        let mut txn = mine.transact_mut();
        text.insert(&mut txn, 0, "after the questions");
        txn.encode_update_v1()
    };
    ask.send(WsMessage::Binary(
        Message::Sync(SyncMessage::Update(marker))
            .encode_v1()
            .into(),
    ))
    .await
    .unwrap();
    // While the asker does not read, its update is not taken: the observer (which reads)
    // is sent nothing. Something arriving would be the failure; the wait is not a timing.
    let early = tokio::time::timeout(Duration::from_secs(3), async {
        loop {
            match next_raw(&mut observer).await {
                Ok(Message::Sync(SyncMessage::Update(u))) => return u,
                Ok(_) => continue,
                Err(code) => panic!("the observer was closed: {code:?}"),
            }
        }
    })
    .await;
    assert!(
        early.is_err(),
        "the asker's update was taken while {ASKED} whole-document answers waited for it"
    );
    // Once the asker reads, every question is answered and its update is stored.
    let mut answers = 0;
    while answers < ASKED {
        let frame = tokio::time::timeout(Duration::from_secs(30), replies.next())
            .await
            .expect("the answers come")
            .expect("the connection stays open")
            .unwrap();
        if let WsMessage::Binary(bytes) = frame {
            if let Ok(Message::Sync(SyncMessage::SyncStep2(update))) = Message::decode_v1(&bytes) {
                assert!(update.len() > 250_000, "each answer is the whole document");
                answers += 1;
            }
        }
    }
    loop {
        if let Ok(Message::Sync(SyncMessage::Update(u))) = next_raw(&mut observer).await {
            let update = yrs::Update::decode_v1(&u).unwrap();
            if update
                .state_vector()
                .contains_client(&yrs::ClientID::new(9_999))
            {
                break;
            }
        }
    }
}

/// The close frame a raw connection ends with: its code and reason.
async fn close_of(ws: &mut Ws) -> (CloseCode, String) {
    loop {
        let frame = tokio::time::timeout(Duration::from_secs(10), ws.next())
            .await
            .expect("the server closes the connection within 10 s");
        match frame {
            Some(Ok(WsMessage::Close(Some(close)))) => {
                return (close.code, close.reason.to_string())
            }
            Some(Ok(WsMessage::Close(None))) | Some(Err(_)) | None => {
                panic!("the connection ended without a close code")
            }
            Some(Ok(_)) => continue,
        }
    }
}

/// A message above the relay's `max_frame_bytes` (the operator's bound on one write, as
/// for a Concord device's frames) is not read: that connection is closed 1009 with a
/// reason naming the limit, nothing of it is stored, and the room serves the next client.
#[tokio::test]
async fn a_message_above_the_frame_limit_closes_that_connection_with_1009() {
    use yrs::{ReadTxn, StateVector, Text, Transact};
    let server = ServerProcess::start(&["--max-frame-bytes", "65536"]).await;
    let url = format!("{}/bounded", yjs_url(&server));
    let typed = |client: u64, text: &str| {
        let doc = yrs::Doc::with_client_id(client);
        let body = doc.get_or_insert_text("body");
        body.insert(&mut doc.transact_mut(), 0, text);
        let update = doc
            .transact()
            .encode_state_as_update_v1(&StateVector::default());
        WsMessage::Binary(
            Message::Sync(SyncMessage::Update(update))
                .encode_v1()
                .into(),
        )
    };
    let (mut big, _) = tokio_tungstenite::connect_async(&url).await.unwrap();
    big.send(typed(77, &"x".repeat(100_000))).await.unwrap();
    let (code, reason) = close_of(&mut big).await;
    assert_eq!(code, CloseCode::Size, "{reason}");
    assert!(
        reason.contains("max_frame_bytes") && reason.contains("65536"),
        "{reason}"
    );

    let (mut small, _) = tokio_tungstenite::connect_async(&url).await.unwrap();
    small.send(typed(78, "small")).await.unwrap();
    let device = CliDevice::new();
    let text = device
        .sync_until_text(&server.url(), None, "bounded", "body", "small")
        .await;
    assert_eq!(text, "small", "the oversized message stored nothing");
}

/// A connection announcing more awareness client ids than a connection may own (64) is
/// closed with 1008 (policy), and the room serves others.
#[tokio::test]
async fn awareness_past_a_connections_bound_closes_it() {
    let server = ServerProcess::start(&[]).await;
    let url = format!("{}/crowded", yjs_url(&server));
    let (mut flood, _) = tokio_tungstenite::connect_async(&url).await.unwrap();
    let update = Message::Awareness(AwarenessUpdate {
        clients: (1..=65u64)
            .map(|id| {
                (
                    yrs::ClientID::new(id),
                    AwarenessUpdateEntry {
                        clock: 1,
                        json: r#"{"user":{"name":"flood"}}"#.into(),
                    },
                )
            })
            .collect(),
    });
    flood
        .send(WsMessage::Binary(update.encode_v1().into()))
        .await
        .unwrap();
    let (code, reason) = close_of(&mut flood).await;
    assert_eq!(code, CloseCode::Policy, "{reason}");
    assert!(reason.contains("awareness"), "{reason}");

    let (mut next, _) = tokio_tungstenite::connect_async(&url).await.unwrap();
    next.send(awareness(9, 1, r#"{"user":{"name":"next"}}"#))
        .await
        .unwrap();
    // Its own state echoed: the room still relays.
    until_announced(&mut next, 9).await;
}

//! Unmodified automerge-repo clients (`@automerge/automerge-repo` + its WebSocket network
//! adapter in node) against a real `concord-server` process on `/automerge`: a document an
//! automerge-repo client creates is a Concord document (`automerge:<documentId>`) that a
//! CLI device edits, and the other way round; both converge, live; a document the relay
//! does not hold is unavailable; ephemeral messages reach the document's other clients,
//! and only from a connection that has the document open.

mod common;
mod interop_support;

use common::ServerProcess;
use interop_support::{CliDevice, JsClient};
use serde_json::json;

fn automerge(server: &ServerProcess) -> JsClient {
    let url = format!("ws://127.0.0.1:{}/automerge", server.port());
    JsClient::spawn("automerge-client.mjs", &[&url])
}

#[tokio::test]
async fn a_document_made_by_automerge_repo_is_edited_by_a_concord_device() {
    let server = ServerProcess::start(&[]).await;
    let mut ann = automerge(&server);
    let created = ann
        .call(json!({"cmd": "create", "text": "from automerge-repo."}))
        .await;
    let url = created["url"].as_str().unwrap().to_string();
    assert!(url.starts_with("automerge:"));

    // The Concord document's id is the automerge URL.
    let device = CliDevice::new();
    let text = device
        .sync_until_text(&server.url(), None, &url, "text", "from automerge-repo.")
        .await;
    assert_eq!(text, "from automerge-repo.");
    device.run(&["insert-text", &url, "text", "0", "concord: "]);
    device.sync(&server.url(), None);
    let seen = ann
        .call(json!({"cmd": "wait_text", "contains": "concord: from"}))
        .await;
    assert_eq!(seen["text"], "concord: from automerge-repo.");

    // Another automerge-repo client finds it on the relay and adds to it.
    let mut bob = automerge(&server);
    let found = bob.call(json!({"cmd": "find", "url": url})).await;
    assert_eq!(found["text"], "concord: from automerge-repo.");
    bob.call(json!({"cmd": "splice", "text": " bob was here."}))
        .await;
    let text = device
        .sync_until_text(&server.url(), None, &url, "text", "bob was here.")
        .await;
    assert_eq!(text, "concord: from automerge-repo. bob was here.");
    ann.call(json!({"cmd": "wait_text", "contains": "bob was here."}))
        .await;
    ann.exit().await;
    bob.exit().await;
}

#[tokio::test]
async fn a_document_made_by_a_concord_device_is_found_by_automerge_repo() {
    let server = ServerProcess::start(&[]).await;
    let mut client = automerge(&server);
    let url = client.call(json!({"cmd": "new_url"})).await["url"]
        .as_str()
        .unwrap()
        .to_string();
    // Not on the relay yet: unavailable.
    let missing = client
        .try_call(json!({"cmd": "find", "url": url, "timeout_ms": 5000}))
        .await;
    assert!(
        missing.get("error").is_some(),
        "found a missing document: {missing}"
    );

    let device = CliDevice::new();
    device.run(&["create", &url, "--kind", "automerge"]);
    device.run(&["insert-text", &url, "text", "0", "written offline."]);
    device.sync(&server.url(), None);
    let mut reader = automerge(&server);
    let found = reader.call(json!({"cmd": "find", "url": url})).await;
    assert_eq!(found["text"], "written offline.");
    reader
        .call(json!({"cmd": "splice", "index": 0, "text": "synced: "}))
        .await;
    let text = device
        .sync_until_text(&server.url(), None, &url, "text", "synced: ")
        .await;
    assert_eq!(text, "synced: written offline.");
    client.exit().await;
    reader.exit().await;
}

/// Ann creates a document (stored on the relay once a device reads it back), Bob finds it:
/// both have it open. Its automerge URL.
async fn two_clients_on_one_document(server: &ServerProcess) -> (JsClient, JsClient, String) {
    let mut ann = automerge(server);
    let url = ann.call(json!({"cmd": "create", "text": "x"})).await["url"]
        .as_str()
        .unwrap()
        .to_string();
    let device = CliDevice::new();
    device
        .sync_until_text(&server.url(), None, &url, "text", "x")
        .await;
    let mut bob = automerge(server);
    bob.call(json!({"cmd": "find", "url": url})).await;
    (ann, bob, url)
}

#[tokio::test]
async fn ephemeral_messages_reach_the_documents_other_clients() {
    let server = ServerProcess::start(&[]).await;
    let (mut ann, mut bob, _url) = two_clients_on_one_document(&server).await;
    ann.call(json!({"cmd": "broadcast", "message": {"cursor": 1, "from": "ann"}}))
        .await;
    bob.call(json!({"cmd": "wait_ephemeral", "message": {"cursor": 1, "from": "ann"}}))
        .await;
    ann.exit().await;
    bob.exit().await;
}

/// One automerge-repo wire message (a CBOR map), as a WebSocket frame.
fn cbor_frame(entries: Vec<(&str, ciborium::Value)>) -> tokio_tungstenite::tungstenite::Message {
    let map = ciborium::Value::Map(
        entries
            .into_iter()
            .map(|(k, v)| (ciborium::Value::Text(k.into()), v))
            .collect(),
    );
    let mut bytes = Vec::new();
    ciborium::into_writer(&map, &mut bytes).unwrap();
    tokio_tungstenite::tungstenite::Message::Binary(bytes.into())
}

/// An ephemeral message is relayed only from a connection that has the document open
/// (which took the right to read it): one that names a document it never opened reaches
/// nobody, while the document's own clients still reach each other.
#[tokio::test]
async fn ephemeral_messages_for_a_document_not_opened_reach_nobody() {
    use futures_util::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::Message as WsMessage;
    let server = ServerProcess::start(&[]).await;
    let (mut ann, mut bob, url) = two_clients_on_one_document(&server).await;

    // A raw connection joins and sends an ephemeral message for the document, never
    // having opened it.
    let endpoint = format!("ws://127.0.0.1:{}/automerge", server.port());
    let (mut mallory, _) = tokio_tungstenite::connect_async(&endpoint).await.unwrap();
    let text = |s: &str| ciborium::Value::Text(s.into());
    let mut data = Vec::new();
    ciborium::into_writer(&json!({"cursor": 9, "from": "mallory"}), &mut data).unwrap();
    let document_id = url.trim_start_matches("automerge:").to_string();
    let join = || cbor_frame(vec![("type", text("join")), ("senderId", text("mallory"))]);
    mallory.send(join()).await.unwrap();
    mallory
        .send(cbor_frame(vec![
            ("type", text("ephemeral")),
            ("senderId", text("mallory")),
            ("targetId", text("server")),
            ("documentId", text(&document_id)),
            ("sessionId", text("mallory-session")),
            ("count", ciborium::Value::Integer(1.into())),
            ("data", ciborium::Value::Bytes(data)),
        ]))
        .await
        .unwrap();
    // A second join: its answer shows the ephemeral message before it was handled.
    mallory.send(join()).await.unwrap();
    let mut answers = 0;
    while answers < 2 {
        let frame = tokio::time::timeout(std::time::Duration::from_secs(10), mallory.next())
            .await
            .expect("the relay answers a join")
            .expect("the connection stays open")
            .unwrap();
        if matches!(frame, WsMessage::Binary(_)) {
            answers += 1;
        }
    }
    // Ann's message, sent after, reaches Bob; Mallory's, queued before it, did not.
    ann.call(json!({"cmd": "broadcast", "message": {"cursor": 1, "from": "ann"}}))
        .await;
    let got = bob
        .call(json!({"cmd": "wait_ephemeral", "message": {"cursor": 1, "from": "ann"}}))
        .await;
    let received = got["received"]
        .as_array()
        .expect("the messages Bob received");
    assert!(
        received.iter().all(|m| m["from"] != "mallory"),
        "a message for a document its sender never opened was relayed: {received:?}"
    );
    ann.exit().await;
    bob.exit().await;
}

/// A `request` whose Bloom filter of what the client has claims one entry and no bits:
/// Automerge divided by the filter's size (a panic in the connection's task, whose peer
/// entry then leaked), and a filter asking for 2^32 probes had it allocate 16 GiB. Such a
/// message closes that connection (1002); the relay and the document's clients carry on.
#[tokio::test]
async fn a_sync_message_with_a_hostile_bloom_filter_closes_that_connection_only() {
    use futures_util::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
    use tokio_tungstenite::tungstenite::Message as WsMessage;
    let server = ServerProcess::start(&[]).await;
    let (mut ann, mut bob, url) = two_clients_on_one_document(&server).await;
    let document_id = url.trim_start_matches("automerge:").to_string();
    let endpoint = format!("ws://127.0.0.1:{}/automerge", server.port());
    let text = |s: &str| ciborium::Value::Text(s.into());
    for bloom in [
        vec![1, 0, 7],
        vec![1, 10, 0xff, 0xff, 0xff, 0xff, 0x0f, 0xff, 0xff],
    ] {
        let (mut mallory, _) = tokio_tungstenite::connect_async(&endpoint).await.unwrap();
        mallory
            .send(cbor_frame(vec![
                ("type", text("join")),
                ("senderId", text("mallory")),
            ]))
            .await
            .unwrap();
        // A v1 sync message: no heads, no needs, one `have` (no last sync, the filter),
        // no changes.
        let mut data = vec![0x42, 0, 0, 1, 0, bloom.len() as u8];
        data.extend(&bloom);
        data.push(0);
        mallory
            .send(cbor_frame(vec![
                ("type", text("request")),
                ("senderId", text("mallory")),
                ("targetId", text("server")),
                ("documentId", text(&document_id)),
                ("data", ciborium::Value::Bytes(data)),
            ]))
            .await
            .unwrap();
        let code = loop {
            let frame = tokio::time::timeout(std::time::Duration::from_secs(10), mallory.next())
                .await
                .expect("the relay answers");
            match frame {
                Some(Ok(WsMessage::Close(frame))) => break frame.map(|f| f.code),
                Some(Ok(_)) => continue,
                Some(Err(_)) | None => break None,
            }
        };
        assert_eq!(code, Some(CloseCode::Protocol), "filter {bloom:?}");
    }
    ann.call(json!({"cmd": "broadcast", "message": {"cursor": 2, "from": "ann"}}))
        .await;
    bob.call(json!({"cmd": "wait_ephemeral", "message": {"cursor": 2, "from": "ann"}}))
        .await;
    ann.exit().await;
    bob.exit().await;
}

/// A message above the relay's `max_frame_bytes` is not read: that connection is closed
/// 1009 with a reason naming the limit; the document's clients carry on.
#[tokio::test]
async fn a_message_above_the_frame_limit_closes_that_connection_with_1009() {
    use futures_util::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
    use tokio_tungstenite::tungstenite::Message as WsMessage;
    let server = ServerProcess::start(&["--max-frame-bytes", "65536"]).await;
    let (mut ann, mut bob, url) = two_clients_on_one_document(&server).await;
    let document_id = url.trim_start_matches("automerge:").to_string();
    let endpoint = format!("ws://127.0.0.1:{}/automerge", server.port());
    let text = |s: &str| ciborium::Value::Text(s.into());
    let (mut big, _) = tokio_tungstenite::connect_async(&endpoint).await.unwrap();
    big.send(cbor_frame(vec![
        ("type", text("join")),
        ("senderId", text("big")),
    ]))
    .await
    .unwrap();
    big.send(cbor_frame(vec![
        ("type", text("request")),
        ("senderId", text("big")),
        ("targetId", text("server")),
        ("documentId", text(&document_id)),
        ("data", ciborium::Value::Bytes(vec![0x42; 100_000])),
    ]))
    .await
    .unwrap();
    let (code, reason) = loop {
        let frame = tokio::time::timeout(std::time::Duration::from_secs(10), big.next())
            .await
            .expect("the relay closes the connection within 10 s");
        match frame {
            Some(Ok(WsMessage::Close(Some(close)))) => break (close.code, close.reason),
            Some(Ok(WsMessage::Close(None))) | Some(Err(_)) | None => {
                panic!("the connection ended without a close code")
            }
            Some(Ok(_)) => continue,
        }
    };
    assert_eq!(code, CloseCode::Size, "{reason}");
    assert!(
        reason.contains("max_frame_bytes") && reason.contains("65536"),
        "{reason}"
    );
    ann.call(json!({"cmd": "broadcast", "message": {"cursor": 3, "from": "ann"}}))
        .await;
    bob.call(json!({"cmd": "wait_ephemeral", "message": {"cursor": 3, "from": "ann"}}))
        .await;
    ann.exit().await;
    bob.exit().await;
}

/// Automerge keeps a change whose dependencies it lacks until they come; a client that
/// sends only such changes (each small on the wire, megabytes once inflated) filled the
/// relay's copy of the document without bound. Past the bound on what a connection's
/// copies hold waiting, that connection is closed (1008); the document's clients carry on.
#[tokio::test]
async fn changes_that_never_get_their_dependencies_close_that_connection() {
    use automerge::sync::{ChunkList, Message as SyncMessage, MessageVersion};
    use automerge::transaction::Transactable;
    use automerge::{AutoCommit, ROOT};
    use futures_util::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
    use tokio_tungstenite::tungstenite::Message as WsMessage;
    let server = ServerProcess::start(&[]).await;
    let (mut ann, mut bob, url) = two_clients_on_one_document(&server).await;
    let document_id = url.trim_start_matches("automerge:").to_string();
    let endpoint = format!("ws://127.0.0.1:{}/automerge", server.port());
    let text = |s: &str| ciborium::Value::Text(s.into());
    let (mut mallory, _) = tokio_tungstenite::connect_async(&endpoint).await.unwrap();
    let join = || cbor_frame(vec![("type", text("join")), ("senderId", text("mallory"))]);
    // The relay's answers until its `peer` (the answer to a join).
    async fn until_peer(
        ws: &mut tokio_tungstenite::WebSocketStream<
            tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>,
        >,
    ) {
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(60);
        loop {
            let frame = tokio::time::timeout_at(deadline, ws.next())
                .await
                .expect("the relay answers")
                .expect("the connection stays open")
                .expect("the connection stays open");
            let WsMessage::Binary(bytes) = frame else {
                assert!(!matches!(frame, WsMessage::Close(_)), "closed: {frame:?}");
                continue;
            };
            let value: ciborium::Value = ciborium::from_reader(&bytes[..]).unwrap();
            let is_peer = value.as_map().is_some_and(|m| {
                m.iter()
                    .any(|(k, v)| k.as_text() == Some("type") && v.as_text() == Some("peer"))
            });
            if is_peer {
                return;
            }
        }
    }
    mallory.send(join()).await.unwrap();
    until_peer(&mut mallory).await;
    // A first change the relay never gets; every later one depends on it.
    let mut doc = AutoCommit::new();
    doc.put(ROOT, "root", "never sent").unwrap();
    doc.commit();
    let piece = 4 << 20;
    let limit = 64 << 20;
    let mut orphan = |request: bool| {
        doc.put(ROOT, "big", "x".repeat(piece)).unwrap();
        doc.commit();
        let mut change = doc.get_last_local_change().unwrap().clone();
        let bytes = change.bytes().to_vec();
        assert!(bytes.len() < 64 * 1024, "compressed on the wire");
        // What the relay counts: more than the piece, less than 1/16 past it.
        let size = concord_core::doc::check_automerge_chunks(&bytes).unwrap();
        assert!(
            size > piece as u64 && size < piece as u64 * 17 / 16,
            "{size}"
        );
        let message = SyncMessage {
            heads: doc.get_heads(),
            need: Vec::new(),
            have: Vec::new(),
            changes: ChunkList::from(vec![bytes]),
            flags: None,
            version: MessageVersion::V1,
        };
        cbor_frame(vec![
            ("type", text(if request { "request" } else { "sync" })),
            ("senderId", text("mallory")),
            ("targetId", text("server")),
            ("documentId", text(&document_id)),
            ("data", ciborium::Value::Bytes(message.encode())),
        ])
    };
    // Up to the bound, the connection stays open: a join after them is answered.
    for i in 0..limit / piece - 1 {
        mallory.send(orphan(i == 0)).await.unwrap();
    }
    mallory.send(join()).await.unwrap();
    until_peer(&mut mallory).await;
    // Past it, closed.
    for _ in 0..2 {
        let _ = mallory.send(orphan(false)).await;
    }
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(60);
    let close = loop {
        let frame = tokio::time::timeout_at(deadline, mallory.next())
            .await
            .expect("the relay closes the connection");
        match frame {
            Some(Ok(WsMessage::Close(close))) => break close.expect("a close code"),
            Some(Ok(_)) => continue,
            Some(Err(e)) => panic!("the connection failed: {e}"),
            None => panic!("the connection ended without a close frame"),
        }
    };
    assert_eq!(close.code, CloseCode::Policy, "{}", close.reason);
    assert!(close.reason.contains("depend on"), "{}", close.reason);
    // The document and its clients carry on.
    ann.call(json!({"cmd": "broadcast", "message": {"cursor": 4, "from": "ann"}}))
        .await;
    bob.call(json!({"cmd": "wait_ephemeral", "message": {"cursor": 4, "from": "ann"}}))
        .await;
    ann.call(json!({"cmd": "splice", "text": " still here"}))
        .await;
    bob.call(json!({"cmd": "wait_text", "contains": "still here"}))
        .await;
    ann.exit().await;
    bob.exit().await;
}

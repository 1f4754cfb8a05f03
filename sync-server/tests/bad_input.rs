//! Bad input from a client gets an error frame naming what was wrong, and harms nothing:
//! the same connection keeps working, stored documents are unchanged, and other
//! connections keep receiving updates. Each test runs a real `concord-server` process and
//! speaks the binary protocol frame by frame.

mod common;

use common::{edit, noise, read_doc, DocDump, RawClient, ServerProcess};
use concord_core::protocol::{
    encode, Ack, ErrorCode, ListDocs, Message, Subscribe, Updates, Welcome, PROTOCOL_VERSION,
};
use concord_core::{DocKind, Store, UpdateRecord, VersionVector};

/// An Automerge document and a Yrs document, each with two stored updates.
const AM: &str = "notes";
const YRS: &str = "pad";

/// A server holding two seeded documents, the device that wrote them, and a bystander
/// connection subscribed to both.
struct Fixture {
    server: ServerProcess,
    /// The author of the seeded updates; makes further valid updates.
    author: Store,
    /// The seeded updates, as stored.
    seeded_am: Vec<UpdateRecord>,
    /// What a fresh subscriber received before the bad input.
    before_am: DocDump,
    before_yrs: DocDump,
    bystander: RawClient,
}

impl Fixture {
    async fn start(args: &[&str]) -> Fixture {
        let server = ServerProcess::start(args).await;
        let url = server.url();
        let author = Store::open_in_memory().unwrap();
        let mut seeder = RawClient::connect_hello(&url, None).await;
        let mut seeded_am = Vec::new();
        for (doc, kind) in [(AM, DocKind::Automerge), (YRS, DocKind::Yrs)] {
            author.create_doc(doc, kind).unwrap();
            edit(&author, doc, 1);
            edit(&author, doc, 2);
            let updates = author.outbox(doc).unwrap();
            assert_eq!(updates.len(), 2);
            if doc == AM {
                seeded_am = updates.clone();
            }
            seeder.subscribe_all(doc, kind).await;
            seeder.send_updates(doc, updates).await;
            seeder.expect_ack(doc, &author.device_id(), 2).await;
            author.acknowledge(doc, &author.device_id(), 2).unwrap();
        }
        let before_am = read_doc(&url, None, AM, DocKind::Automerge).await;
        let before_yrs = read_doc(&url, None, YRS, DocKind::Yrs).await;
        assert_eq!(before_am.server_version().get(&author.device_id()), 2);
        assert_eq!(before_am.updates, seeded_am);
        assert_eq!(before_yrs.updates.len(), 2);

        let mut bystander = RawClient::connect_hello(&url, None).await;
        assert_eq!(
            bystander.subscribe_all(AM, DocKind::Automerge).await,
            before_am
        );
        assert_eq!(bystander.subscribe_all(YRS, DocKind::Yrs).await, before_yrs);
        Fixture {
            server,
            author,
            seeded_am,
            before_am,
            before_yrs,
            bystander,
        }
    }

    fn url(&self) -> String {
        self.server.url()
    }

    /// A client that has said Hello and subscribed to the Automerge document.
    async fn subscribed_client(&self) -> RawClient {
        let mut client = RawClient::connect_hello(&self.url(), None).await;
        assert_eq!(
            client.subscribe_all(AM, DocKind::Automerge).await,
            self.before_am
        );
        client
    }

    /// After the bad input on `bad` (which has said Hello by now):
    /// - the same connection answers a Ping and can subscribe and read documents;
    /// - a fresh, well-behaved client gets exactly what it got before (nothing stored,
    ///   nothing lost) and the server holds no extra documents;
    /// - a valid update sent on the same connection is acknowledged and reaches the
    ///   bystander, which received nothing else in between.
    async fn assert_unharmed(&mut self, bad: &mut RawClient) {
        bad.ping().await;

        let url = self.url();
        assert_eq!(
            read_doc(&url, None, AM, DocKind::Automerge).await,
            self.before_am,
            "the stored Automerge document changed"
        );
        assert_eq!(
            read_doc(&url, None, YRS, DocKind::Yrs).await,
            self.before_yrs,
            "the stored Yrs document changed"
        );
        assert_eq!(self.server.healthz().await["documents"], 2);

        assert_eq!(bad.subscribe_all(YRS, DocKind::Yrs).await, self.before_yrs);
        assert_eq!(
            bad.subscribe_all(AM, DocKind::Automerge).await,
            self.before_am
        );

        edit(&self.author, AM, 100);
        let pending = self.author.outbox(AM).unwrap();
        let last = pending.last().unwrap().seq;
        bad.send_updates(AM, pending.clone()).await;
        bad.expect_ack(AM, &self.author.device_id(), last).await;
        assert_eq!(
            self.bystander.expect_updates(AM).await,
            pending,
            "the bystander gets exactly the valid update"
        );
        bad.ping().await;
    }
}

/// An update that decodes as the other kind of document (and not as this kind).
fn yrs_update() -> Vec<u8> {
    let s = Store::open_in_memory().unwrap();
    s.create_doc("x", DocKind::Yrs).unwrap();
    edit(&s, "x", 1).data
}

fn automerge_change() -> Vec<u8> {
    let s = Store::open_in_memory().unwrap();
    s.create_doc("x", DocKind::Automerge).unwrap();
    edit(&s, "x", 1).data
}

#[tokio::test]
async fn malformed_frames_are_refused_with_malformed_frame() {
    let mut f = Fixture::start(&[]).await;
    let mut bad = f.subscribed_client().await;

    let valid = encode(&Message::Updates(Updates {
        doc_id: AM.into(),
        lsn: 0,
        updates: vec![edit(&f.author, AM, 3)],
    }));
    let mut with_trailing_byte = valid.clone();
    with_trailing_byte.push(0);
    let mut garbage_body = vec![PROTOCOL_VERSION, 5];
    garbage_body.extend(noise(200, 7));
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("empty frame", vec![]),
        ("shorter than the header", vec![PROTOCOL_VERSION]),
        ("garbage body after a valid header", garbage_body),
        (
            "valid header, truncated body",
            valid[..valid.len() - 5].to_vec(),
        ),
        ("valid header, body cut to 3 bytes", valid[..5].to_vec()),
        ("trailing bytes after the body", with_trailing_byte),
    ];
    for (what, frame) in cases {
        bad.send_raw(frame).await;
        let e = bad.expect_error(ErrorCode::MalformedFrame).await;
        eprintln!("{what}: {}", e.message);
    }
    // The truncated update (seq 3) was not stored: it is sent again, validly, below.
    f.assert_unharmed(&mut bad).await;
}

#[tokio::test]
async fn undecodable_automerge_update_is_invalid_update_and_not_stored() {
    let mut f = Fixture::start(&[]).await;
    let mut bad = f.subscribed_client().await;
    let device = bad.device.clone();
    for data in [
        noise(64, 1),
        noise(3, 2),
        vec![],
        yrs_update(),
        // An Automerge change with its body damaged (the checksum no longer matches).
        {
            let mut c = automerge_change();
            let n = c.len();
            c[n - 1] ^= 0xff;
            c
        },
    ] {
        bad.send_updates(
            AM,
            vec![UpdateRecord {
                origin: device.clone(),
                seq: 1,
                data,
            }],
        )
        .await;
        let e = bad.expect_error(ErrorCode::InvalidUpdate).await;
        assert_eq!(e.doc_id.as_deref(), Some(AM));
    }
    let after = read_doc(&f.url(), None, AM, DocKind::Automerge).await;
    assert_eq!(after.server_version(), f.before_am.server_version());
    assert_eq!(after.server_version().get(&device), 0);
    f.assert_unharmed(&mut bad).await;
}

#[tokio::test]
async fn undecodable_yrs_update_is_invalid_update_and_not_stored() {
    let mut f = Fixture::start(&[]).await;
    let mut bad = f.subscribed_client().await;
    bad.subscribe_all(YRS, DocKind::Yrs).await;
    let device = bad.device.clone();
    for data in [noise(64, 3), noise(5, 4), vec![0xff; 32]] {
        bad.send_updates(
            YRS,
            vec![UpdateRecord {
                origin: device.clone(),
                seq: 1,
                data,
            }],
        )
        .await;
        let e = bad.expect_error(ErrorCode::InvalidUpdate).await;
        assert_eq!(e.doc_id.as_deref(), Some(YRS));
    }
    let after = read_doc(&f.url(), None, YRS, DocKind::Yrs).await;
    assert_eq!(after.server_version(), f.before_yrs.server_version());
    assert_eq!(after.server_version().get(&device), 0);
    f.assert_unharmed(&mut bad).await;
}

#[tokio::test]
async fn automerge_change_sent_to_a_yrs_document_is_invalid_update() {
    let mut f = Fixture::start(&[]).await;
    let mut bad = f.subscribed_client().await;
    bad.subscribe_all(YRS, DocKind::Yrs).await;
    bad.send_updates(
        YRS,
        vec![UpdateRecord {
            origin: bad.device.clone(),
            seq: 1,
            data: automerge_change(),
        }],
    )
    .await;
    bad.expect_error(ErrorCode::InvalidUpdate).await;
    f.assert_unharmed(&mut bad).await;
}

#[tokio::test]
async fn a_gap_in_sequence_numbers_is_seq_gap() {
    let mut f = Fixture::start(&[]).await;
    let mut bad = f.subscribed_client().await;
    // The server holds the author's updates 1..=2; 3 is skipped and 4 sent.
    edit(&f.author, AM, 3);
    let four = edit(&f.author, AM, 4);
    assert_eq!(four.seq, 4);
    bad.send_updates(AM, vec![four]).await;
    let e = bad.expect_error(ErrorCode::SeqGap).await;
    assert_eq!(e.doc_id.as_deref(), Some(AM));
    // A new origin starting at 2 is a gap too.
    bad.send_updates(
        AM,
        vec![UpdateRecord {
            origin: bad.device.clone(),
            seq: 2,
            data: automerge_change(),
        }],
    )
    .await;
    bad.expect_error(ErrorCode::SeqGap).await;
    // Filling the gap (3, 4, then a new 5) works: see assert_unharmed.
    f.assert_unharmed(&mut bad).await;
}

#[tokio::test]
async fn an_oversized_frame_is_frame_too_large() {
    let mut f = Fixture::start(&["--max-frame-bytes", "65536"]).await;
    let mut bad = RawClient::connect(&f.url()).await;
    match bad.hello(None).await {
        Message::Welcome(Welcome {
            max_frame_bytes, ..
        }) => assert_eq!(max_frame_bytes, 65536),
        other => panic!("expected Welcome, got {other:?}"),
    }
    bad.subscribe_all(AM, DocKind::Automerge).await;
    let frame = encode(&Message::Updates(Updates {
        doc_id: AM.into(),
        lsn: 0,
        updates: vec![UpdateRecord {
            origin: bad.device.clone(),
            seq: 1,
            data: noise(100_000, 5),
        }],
    }));
    assert!(frame.len() > 100_000);
    bad.send_raw(frame).await;
    bad.expect_error(ErrorCode::FrameTooLarge).await;
    // An oversized frame of garbage is refused for its size before anything else.
    bad.send_raw(noise(100_000, 6)).await;
    bad.expect_error(ErrorCode::FrameTooLarge).await;
    f.assert_unharmed(&mut bad).await;
}

#[tokio::test]
async fn a_20_mb_frame_is_frame_too_large_and_the_connection_stays_usable() {
    // Default limits: max_frame_bytes 4 MiB; the WebSocket layer takes up to 64 MiB.
    let mut f = Fixture::start(&[]).await;
    let mut bad = f.subscribed_client().await;
    let frame = encode(&Message::Updates(Updates {
        doc_id: AM.into(),
        lsn: 0,
        updates: vec![UpdateRecord {
            origin: bad.device.clone(),
            seq: 1,
            data: noise(20_000_000, 7),
        }],
    }));
    assert!(frame.len() > 20_000_000);
    bad.send_raw(frame).await;
    bad.expect_error(ErrorCode::FrameTooLarge).await;
    f.assert_unharmed(&mut bad).await;
}

#[tokio::test]
async fn a_frame_above_the_transport_limit_is_closed_with_1009() {
    use futures_util::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
    use tokio_tungstenite::tungstenite::Message as WsMessage;

    let mut f = Fixture::start(&[]).await;
    let (ws, _) = tokio_tungstenite::connect_async(f.url()).await.unwrap();
    let (mut sink, mut stream) = ws.split();
    // One byte above the 64 MiB hard cap. The relay does not read it: the send may fail
    // once the relay has closed, so it runs beside the read.
    let frame = noise((64 << 20) + 1, 8);
    let send = tokio::spawn(async move {
        let _ =
            tokio::time::timeout(common::WAIT, sink.send(WsMessage::Binary(frame.into()))).await;
    });
    let close = match tokio::time::timeout(common::WAIT, stream.next())
        .await
        .expect("the relay closes the connection in time")
    {
        Some(Ok(WsMessage::Close(frame))) => frame,
        other => panic!("expected a close frame, got {other:?}"),
    }
    .expect("the close frame has a code and a reason");
    assert_eq!(close.code, CloseCode::Size, "{close:?}");
    assert!(
        close.reason.contains("transport limit") && close.reason.contains("67108864"),
        "the reason names the limit: {close:?}"
    );
    send.abort();
    // Other connections are unharmed.
    let mut other = f.subscribed_client().await;
    f.assert_unharmed(&mut other).await;
}

#[tokio::test]
async fn the_native_client_reports_a_1009_close_with_its_reason() {
    use concord_core::native_client::{sync_once, ClientError};
    use concord_core::sync::ClientConfig;

    let server = ServerProcess::start(&[]).await;
    // One update above the 64 MiB transport limit: the client sends it in a frame of its
    // own (updates are never split), and the relay closes the connection.
    let device = Store::open_in_memory().unwrap();
    device.create_doc("big", DocKind::Yrs).unwrap();
    let text = "x".repeat((64 << 20) + 1024);
    device
        .transact("big", |tx| tx.insert_text("body", 0, &text))
        .unwrap();
    drop(text);
    match sync_once(
        &device,
        [server.url()],
        ClientConfig::default(),
        common::WAIT,
    )
    .await
    {
        Err(e @ ClientError::Closed { code: 1009, .. }) => {
            let message = e.to_string();
            assert!(
                message.contains("transport limit") && message.contains("1009"),
                "{message}"
            );
        }
        other => panic!("expected the relay's 1009 close, got {other:?}"),
    }
    assert_eq!(
        device.pending("big").unwrap(),
        1,
        "the update stays in the outbox"
    );
}

#[tokio::test]
async fn an_unknown_message_tag_is_unknown_message() {
    let mut f = Fixture::start(&[]).await;
    let mut bad = f.subscribed_client().await;
    bad.send_raw(vec![PROTOCOL_VERSION, 200, 1, 2, 3]).await;
    bad.expect_error(ErrorCode::UnknownMessage).await;
    bad.send_raw(vec![PROTOCOL_VERSION, 0]).await;
    bad.expect_error(ErrorCode::UnknownMessage).await;
    // Messages only a server sends are refused the same way.
    for m in [
        Message::Welcome(Welcome {
            protocol_version: PROTOCOL_VERSION,
            server_id: "me".into(),
            max_frame_bytes: 1,
        }),
        Message::Ack(Ack {
            doc_id: AM.into(),
            lsn: 0,
            origin: bad.device.clone(),
            upto: 9,
        }),
    ] {
        bad.send(&m).await;
        bad.expect_error(ErrorCode::UnknownMessage).await;
    }
    f.assert_unharmed(&mut bad).await;
}

#[tokio::test]
async fn a_wrong_protocol_version_is_unsupported_version() {
    let mut f = Fixture::start(&[]).await;
    // In the Hello itself: refused, and a correct Hello afterwards is welcomed.
    let mut bad = RawClient::connect(&f.url()).await;
    let mut hello = encode(&Message::Hello(concord_core::protocol::Hello {
        protocol_version: PROTOCOL_VERSION + 1,
        device_id: bad.device.clone(),
        token: None,
    }));
    bad.send_raw(hello.clone()).await;
    bad.expect_error(ErrorCode::UnsupportedVersion).await;
    // The frame's version byte wrong, body a valid Hello.
    hello[0] = PROTOCOL_VERSION + 1;
    bad.send_raw(hello).await;
    bad.expect_error(ErrorCode::UnsupportedVersion).await;
    // Still no session: requests need a Hello first.
    bad.send(&Message::ListDocs(ListDocs { prefix: "".into() }))
        .await;
    bad.expect_error(ErrorCode::HelloRequired).await;
    assert!(matches!(bad.hello(None).await, Message::Welcome(_)));

    // After the handshake: a frame with another version byte is refused.
    bad.subscribe_all(AM, DocKind::Automerge).await;
    let mut ping = encode(&Message::Ping(5));
    ping[0] = 0;
    bad.send_raw(ping.clone()).await;
    bad.expect_error(ErrorCode::UnsupportedVersion).await;
    let mut updates = encode(&Message::Updates(Updates {
        doc_id: AM.into(),
        lsn: 0,
        updates: vec![edit(&f.author, AM, 3)],
    }));
    updates[0] = 0xff;
    bad.send_raw(updates).await;
    bad.expect_error(ErrorCode::UnsupportedVersion).await;
    f.assert_unharmed(&mut bad).await;
}

#[tokio::test]
async fn a_text_frame_is_malformed_frame() {
    let mut f = Fixture::start(&[]).await;
    let mut bad = f.subscribed_client().await;
    bad.send_text("{\"type\":\"hello\"}").await;
    bad.expect_error(ErrorCode::MalformedFrame).await;
    bad.send_text("").await;
    bad.expect_error(ErrorCode::MalformedFrame).await;
    f.assert_unharmed(&mut bad).await;
}

#[tokio::test]
async fn requests_before_hello_are_hello_required() {
    let mut f = Fixture::start(&[]).await;
    let mut bad = RawClient::connect(&f.url()).await;
    // Ping is answered even before the handshake.
    bad.ping().await;
    bad.send_updates(AM, vec![edit(&f.author, AM, 3)]).await;
    bad.expect_error(ErrorCode::HelloRequired).await;
    bad.send(&Message::Subscribe(Subscribe {
        doc_id: AM.into(),
        min_lsn: 0,
        linearizable: false,
        kind: DocKind::Automerge,
        version: VersionVector::new(),
    }))
    .await;
    bad.expect_error(ErrorCode::HelloRequired).await;
    bad.send(&Message::ListDocs(ListDocs { prefix: "".into() }))
        .await;
    bad.expect_error(ErrorCode::HelloRequired).await;
    assert!(matches!(bad.hello(None).await, Message::Welcome(_)));
    f.assert_unharmed(&mut bad).await;
}

#[tokio::test]
async fn updates_for_a_document_not_subscribed_are_not_subscribed() {
    let mut f = Fixture::start(&[]).await;
    let mut bad = RawClient::connect_hello(&f.url(), None).await;
    // An existing document, not subscribed on this connection.
    bad.send_updates(AM, vec![edit(&f.author, AM, 3)]).await;
    let e = bad.expect_error(ErrorCode::NotSubscribed).await;
    assert_eq!(e.doc_id.as_deref(), Some(AM));
    // A document that does not exist: refused, and not created.
    bad.send_updates(
        "ghost",
        vec![UpdateRecord {
            origin: bad.device.clone(),
            seq: 1,
            data: automerge_change(),
        }],
    )
    .await;
    bad.expect_error(ErrorCode::NotSubscribed).await;
    // Subscribed once, then unsubscribed: refused again.
    bad.subscribe_all(YRS, DocKind::Yrs).await;
    bad.send(&Message::Unsubscribe(concord_core::protocol::Unsubscribe {
        doc_id: YRS.into(),
    }))
    .await;
    bad.send_updates(
        YRS,
        vec![UpdateRecord {
            origin: bad.device.clone(),
            seq: 1,
            data: yrs_update(),
        }],
    )
    .await;
    bad.expect_error(ErrorCode::NotSubscribed).await;
    f.assert_unharmed(&mut bad).await;
}

#[tokio::test]
async fn resending_a_stored_update_with_identical_bytes_is_acked_and_harmless() {
    let mut f = Fixture::start(&[]).await;
    let mut bad = f.subscribed_client().await;
    let author = f.author.device_id();
    bad.send_updates(AM, f.seeded_am.clone()).await;
    bad.expect_ack(AM, &author, 2).await;
    bad.send_updates(AM, vec![f.seeded_am[0].clone()]).await;
    bad.expect_ack(AM, &author, 1).await;
    // A batch of an old update and a new one: both acknowledged, only the new one stored
    // and fanned out.
    let three = edit(&f.author, AM, 3);
    bad.send_updates(AM, vec![f.seeded_am[1].clone(), three.clone()])
        .await;
    bad.expect_ack(AM, &author, 3).await;
    assert_eq!(f.bystander.expect_updates(AM).await, vec![three.clone()]);
    f.author.acknowledge(AM, &author, 3).unwrap();
    let mut expected = f.before_am.clone();
    expected.catchup.server_version.set(author.clone(), 3);
    expected.updates.push(three);
    f.before_am = expected;
    // The relay's log moved on by the one commit that stored `three`.
    f.before_am.catchup.lsn += 1;
    f.before_yrs.catchup.lsn += 1;
    f.assert_unharmed(&mut bad).await;
}

#[tokio::test]
async fn resending_a_stored_seq_with_different_bytes_is_seq_conflict() {
    let mut f = Fixture::start(&[]).await;
    let mut bad = f.subscribed_client().await;
    let author = f.author.device_id();
    // Another valid change under the author's (origin, 2).
    let forged = UpdateRecord {
        origin: author.clone(),
        seq: 2,
        data: automerge_change(),
    };
    bad.send_updates(AM, vec![forged.clone()]).await;
    let e = bad.expect_error(ErrorCode::SeqConflict).await;
    assert_eq!(e.doc_id.as_deref(), Some(AM));
    // The same inside a batch after an identical resend: the good prefix is acked, then
    // the conflict is reported.
    bad.send_updates(AM, vec![f.seeded_am[0].clone(), forged])
        .await;
    bad.expect_ack(AM, &author, 1).await;
    bad.expect_error(ErrorCode::SeqConflict).await;
    f.assert_unharmed(&mut bad).await;
}

#[tokio::test]
async fn bad_subscriptions_are_refused_with_their_reason() {
    let mut f = Fixture::start(&[]).await;
    let mut bad = RawClient::connect_hello(&f.url(), None).await;
    let long = "x".repeat(300);
    for id in ["", "has space", "tab\tid", "é", long.as_str()] {
        let e = bad
            .subscribe(id, DocKind::Automerge, VersionVector::new())
            .await
            .expect_err("an invalid id is refused");
        assert_eq!(e.code, ErrorCode::InvalidDocId, "{id:?}: {e:?}");
    }
    let e = bad
        .subscribe(AM, DocKind::Yrs, VersionVector::new())
        .await
        .expect_err("the wrong kind is refused");
    assert_eq!(e.code, ErrorCode::KindMismatch);
    assert_eq!(e.doc_id.as_deref(), Some(AM));
    // Refused subscriptions do not subscribe.
    bad.send_updates(AM, vec![edit(&f.author, AM, 3)]).await;
    bad.expect_error(ErrorCode::NotSubscribed).await;
    f.assert_unharmed(&mut bad).await;
}

fn write_varuint(mut n: u64, out: &mut Vec<u8>) {
    loop {
        let b = (n & 0x7f) as u8;
        n >>= 7;
        if n == 0 {
            out.push(b);
            return;
        }
        out.push(b | 0x80);
    }
}

fn read_varuint(bytes: &[u8]) -> u64 {
    let mut n = 0u64;
    for (i, b) in bytes.iter().enumerate() {
        n |= u64::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            return n;
        }
    }
    panic!("unterminated varuint");
}

/// A Yrs v1 update that decodes but cannot be integrated: one string item whose parent is
/// the item `(parent_client, 0)`, which in the seeded document is a string, not a shared
/// type (yrs: `UpdateError::InvalidParent`).
fn yrs_update_with_a_string_as_parent(parent_client: u64) -> Vec<u8> {
    let mut u = vec![1, 1]; // one client, one block
    write_varuint(0x5eed, &mut u); // the (new) client id
    u.push(0); // starting clock
    u.push(4); // item info: string content, no origins, no parent_sub
    u.push(0); // parent info: the parent is an item id ...
    write_varuint(parent_client, &mut u); // ... (parent_client,
    u.push(0); //                               0)
    u.push(4);
    u.extend_from_slice(b"evil"); // content: the string "evil"
    u.push(0); // empty delete set
    u
}

/// BUG (fails today): the relay only checks that an update *decodes*; an update that
/// decodes but cannot be applied is stored, acknowledged and fanned out. Every device that
/// syncs the document then fails to apply it (`sync_once` returns an error, forever), and
/// once the server snapshots the document every later write to it is refused `internal`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_yrs_update_that_decodes_but_cannot_be_applied_is_invalid_update() {
    let mut f = Fixture::start(&[]).await;
    let mut bad = f.subscribed_client().await;
    bad.subscribe_all(YRS, DocKind::Yrs).await;
    // The seeded Yrs update is [1 client][1 block][client id]...: take the client id.
    let seeded = &f.before_yrs.updates[0].data;
    assert_eq!(&seeded[..2], &[1, 1]);
    let poison = yrs_update_with_a_string_as_parent(read_varuint(&seeded[2..]));
    bad.send_updates(
        YRS,
        vec![UpdateRecord {
            origin: bad.device.clone(),
            seq: 1,
            data: poison,
        }],
    )
    .await;
    let e = bad.expect_error(ErrorCode::InvalidUpdate).await;
    assert_eq!(e.doc_id.as_deref(), Some(YRS));
    // A new device can still sync every document.
    let fresh = Store::open_in_memory().unwrap();
    concord_core::native_client::sync_once(
        &fresh,
        [f.url()],
        concord_core::sync::ClientConfig::default(),
        common::WAIT,
    )
    .await
    .expect("a new device syncs");
    assert_eq!(
        fresh.version_vector(YRS).unwrap(),
        *f.before_yrs.server_version()
    );
    f.assert_unharmed(&mut bad).await;
}

/// A valid Yrs update, as another Yjs implementation would make it, that uses the root
/// `body` (a text in the seeded document) as a map. Stored, it would hide the text on every
/// device and make every later text edit fail.
fn yrs_update_using_body_as_a_map() -> Vec<u8> {
    use yrs::{Map, Transact};
    let doc = yrs::Doc::with_client_id(0x7e57);
    let body = doc.get_or_insert_map("body");
    let mut txn = doc.transact_mut();
    body.insert(&mut txn, "k", "v");
    txn.encode_update_v1()
}

#[tokio::test]
async fn a_yrs_update_redefining_a_text_root_as_a_map_is_invalid_update() {
    let mut f = Fixture::start(&[]).await;
    let mut bad = f.subscribed_client().await;
    bad.subscribe_all(YRS, DocKind::Yrs).await;
    bad.send_updates(
        YRS,
        vec![UpdateRecord {
            origin: bad.device.clone(),
            seq: 1,
            data: yrs_update_using_body_as_a_map(),
        }],
    )
    .await;
    let e = bad.expect_error(ErrorCode::InvalidUpdate).await;
    assert_eq!(e.doc_id.as_deref(), Some(YRS));
    assert!(e.message.contains("body"), "{}", e.message);
    f.assert_unharmed(&mut bad).await;
}

/// The second update of another document's history: it depends on the first, which the
/// relay does not have, so it could never be applied.
fn update_with_missing_dependencies(kind: DocKind) -> Vec<u8> {
    let s = Store::open_in_memory().unwrap();
    s.create_doc("x", kind).unwrap();
    edit(&s, "x", 1);
    edit(&s, "x", 2).data
}

#[tokio::test]
async fn updates_whose_dependencies_the_relay_lacks_are_missing_dependencies() {
    let mut f = Fixture::start(&[]).await;
    let mut bad = f.subscribed_client().await;
    bad.subscribe_all(YRS, DocKind::Yrs).await;
    for (doc, kind) in [(AM, DocKind::Automerge), (YRS, DocKind::Yrs)] {
        bad.send_updates(
            doc,
            vec![UpdateRecord {
                origin: bad.device.clone(),
                seq: 1,
                data: update_with_missing_dependencies(kind),
            }],
        )
        .await;
        let e = bad.expect_error(ErrorCode::MissingDependencies).await;
        assert_eq!(e.doc_id.as_deref(), Some(doc));
        let after = read_doc(&f.url(), None, doc, kind).await;
        assert_eq!(after.server_version().get(&bad.device), 0, "nothing stored");
    }
    f.assert_unharmed(&mut bad).await;
}

/// An origin (device id) must be 1 to 128 bytes without control characters: it is stored
/// with each update and sent in every version vector of its document. A Hello naming
/// another is refused with `malformed_frame`; a batch with an update under one is refused
/// whole with `invalid_update` and nothing of it is stored.
#[tokio::test]
async fn an_origin_too_long_or_empty_is_refused_and_nothing_is_stored() {
    let mut f = Fixture::start(&[]).await;
    for device in [String::new(), "d".repeat(129), "tab\there".to_string()] {
        let mut client = RawClient::connect(&f.url()).await;
        client.device = concord_core::Origin::from(device.clone());
        match client.hello(None).await {
            Message::Error(e) => {
                assert_eq!(e.code, ErrorCode::MalformedFrame, "{device:?}");
                assert!(e.message.contains("device id"), "{}", e.message);
            }
            other => panic!("a Hello with device id {device:?} got {other:?}"),
        }
    }
    let mut bad = f.subscribed_client().await;
    bad.subscribe_all(YRS, DocKind::Yrs).await;
    let valid = f.author.outbox(YRS).unwrap();
    assert!(valid.is_empty(), "the author's updates were all sent");
    let huge = concord_core::Origin::from("x".repeat(1 << 20));
    let record = |origin: &concord_core::Origin, seq| UpdateRecord {
        origin: origin.clone(),
        seq,
        data: yrs_update(),
    };
    // A valid update first in the batch, then one under a 1 MiB origin: neither is kept.
    let device = bad.device.clone();
    bad.send_updates(YRS, vec![record(&device, 1), record(&huge, 1)])
        .await;
    let e = bad.expect_error(ErrorCode::InvalidUpdate).await;
    assert_eq!(e.doc_id.as_deref(), Some(YRS));
    assert!(e.message.contains("at most 128 bytes"), "{}", e.message);
    let after = read_doc(&f.url(), None, YRS, DocKind::Yrs).await;
    assert_eq!(after.server_version(), f.before_yrs.server_version());
    f.assert_unharmed(&mut bad).await;
}

/// A Yrs update whose one value nests an array in an array 200,000 times (400 KB, under
/// the frame cap). Yrs decodes nested values by recursion, and the stack overflow that
/// made aborted the whole relay process: it is refused `invalid_update` before Yrs sees it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_yrs_value_nested_too_deeply_is_invalid_update_and_the_relay_lives() {
    refused_yrs_update(deeply_nested_yrs_update(200_000), "nests deeper").await;
}

/// A Yrs update holding JSON content (Yjs's deprecated ContentJSON, which no current Yjs
/// writes). yrs 0.28 reads one string more than such an item's count and writes the count
/// of what it read, so the relay's saved state of the document would read back out of
/// step after that item (as values the walk of the update never saw): refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_yrs_update_with_json_content_is_invalid_update_and_the_relay_lives() {
    let json_item = vec![1, 1, 1, 0, 2, 1, 1, b't', 0, 3, b'"', b'x', b'"', 0];
    refused_yrs_update(json_item, "JSON content").await;
}

/// Sends `data` as a fresh client's first update of the Yrs document: it must be refused
/// `invalid_update` with `reason` in its message, and leave the relay unharmed.
async fn refused_yrs_update(data: Vec<u8>, reason: &str) -> Fixture {
    let mut f = Fixture::start(&[]).await;
    let mut bad = f.subscribed_client().await;
    bad.subscribe_all(YRS, DocKind::Yrs).await;
    let origin = bad.device.clone();
    bad.send_updates(
        YRS,
        vec![UpdateRecord {
            origin,
            seq: 1,
            data,
        }],
    )
    .await;
    let e = bad.expect_error(ErrorCode::InvalidUpdate).await;
    assert!(e.message.contains(reason), "{e:?}");
    f.assert_unharmed(&mut bad).await;
    f
}

/// One item (client 1, clock 0, in root "t") holding one value nested `depth` arrays deep.
fn deeply_nested_yrs_update(depth: usize) -> Vec<u8> {
    let mut bytes = vec![1, 1, 1, 0, 8, 1, 1, b't', 1];
    for _ in 0..depth {
        bytes.extend([117, 1]);
    }
    bytes.extend([126, 0]);
    bytes
}

/// A Yrs update of maps (shared types, not values) nested 100,000 deep. The relay guessed
/// an undeclared root's type with Yrs's `as_prelim`, which copies the whole root by
/// recursion, and Yrs deletes or overwrites a nested type by recursion too: either
/// overflowed the stack and aborted the relay. Such an update is refused
/// `invalid_update` before Yrs applies it; one within the bound is taken, and a device
/// reads it, and deletes it, on a thread of 2 MiB of stack.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_yrs_update_nesting_maps_100000_deep_is_invalid_update_and_the_relay_lives() {
    use yrs::{Map, MapPrelim, Transact, WriteTxn};
    let chain = |depth: usize| {
        let doc = yrs::Doc::new();
        let mut txn = doc.transact_mut();
        let root = txn.get_or_insert_map("root");
        root.insert(&mut txn, "title", "shallow");
        let mut map = root.insert(&mut txn, "deep", MapPrelim::default());
        for _ in 0..depth {
            map = map.insert(&mut txn, "a", MapPrelim::default());
        }
        txn.encode_update_v1()
    };
    let f = refused_yrs_update(chain(100_000), "nests shared types deeper").await;

    // Within the bound: stored, synced, read and deleted by a device.
    let url = f.url();
    let mut writer = RawClient::connect_hello(&url, None).await;
    writer.subscribe_all("deep", DocKind::Yrs).await;
    let origin = writer.device.clone();
    let depth = concord_core::doc::MAX_TYPE_DEPTH as usize - 1;
    let data = chain(depth);
    writer
        .send_updates(
            "deep",
            vec![UpdateRecord {
                origin: origin.clone(),
                seq: 1,
                data,
            }],
        )
        .await;
    writer.expect_ack("deep", &origin, 1).await;
    let dir = tempfile::tempdir().unwrap();
    let device = Store::open(dir.path().join("device.db")).unwrap();
    device.ensure_doc("deep", DocKind::Yrs).unwrap();
    let sync = |device: Store| {
        let url = url.clone();
        async move {
            concord_core::native_client::sync_once(
                &device,
                [url.as_str()],
                concord_core::sync::ClientConfig::default(),
                std::time::Duration::from_secs(60),
            )
            .await
        }
    };
    sync(device.clone()).await.unwrap();
    let reader = device.clone();
    let (title, whole) = std::thread::Builder::new()
        .stack_size(2 << 20)
        .spawn(move || {
            let title = reader.get("deep", "root/title").unwrap();
            let whole = reader.get("deep", "").unwrap_err();
            reader
                .transact("deep", |tx| tx.delete("root/deep"))
                .unwrap();
            (title, whole)
        })
        .unwrap()
        .join()
        .unwrap();
    assert_eq!(title, Some(serde_json::json!("shallow")));
    assert!(
        matches!(whole, concord_core::Error::TooDeep { .. }),
        "{whole}"
    );
    // The deletion reaches the relay, which stores it and fans it out.
    sync(device.clone()).await.unwrap();
    assert_eq!(device.pending("deep").unwrap(), 0);
    let fanned = writer.expect_updates("deep").await;
    assert_eq!(fanned.len(), 1);
    writer.ping().await;
}

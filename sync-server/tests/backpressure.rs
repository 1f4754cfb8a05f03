//! A subscriber that stops reading is never silently skipped: once too many frames queue
//! up for it, the relay closes it with `slow_consumer`; when it resyncs from its version
//! vector it gets every update it missed.

mod common;

use std::time::{Duration, Instant};

use concord_core::native_client::sync_once;
use concord_core::protocol::{self, ErrorCode, Hello, Message, Subscribe, PROTOCOL_VERSION};
use concord_core::sync::ClientConfig;
use concord_core::{DocKind, Store, VersionVector};
use futures_util::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::Message as Ws;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_subscriber_is_disconnected_and_catches_up_after_resync() {
    let dir = tempfile::tempdir().unwrap();
    let url = common::in_process_relay(dir.path(), |config| {
        config.max_queue = 8;
        // One 100 KB update per frame: many frames, so the queue limit is what bites.
        config.max_frame_bytes = 256 * 1024;
    })
    .await;
    let writer = Store::open(dir.path().join("writer.db")).unwrap();
    writer.create_doc("big", DocKind::Yrs).unwrap();
    writer
        .transact("big", |tx| tx.insert_text("text", 0, "start"))
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while sync_once(
        &writer,
        [&url],
        ClientConfig::default(),
        Duration::from_secs(5),
    )
    .await
    .is_err()
    {
        assert!(Instant::now() < deadline, "server did not come up");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // The slow subscriber: handshake, subscribe, then stop reading.
    let (mut slow, _) = tokio_tungstenite::connect_async(&url).await.unwrap();
    let device = concord_core::Origin::from("slow-device");
    for m in [
        Message::Hello(Hello {
            protocol_version: PROTOCOL_VERSION,
            device_id: device,
            token: None,
        }),
        Message::Subscribe(Subscribe {
            doc_id: "big".into(),
            min_lsn: 0,
            linearizable: false,
            kind: DocKind::Yrs,
            version: VersionVector::new(),
        }),
    ] {
        slow.send(Ws::Binary(protocol::encode(&m).into()))
            .await
            .unwrap();
    }
    tokio::time::sleep(Duration::from_millis(200)).await;

    // 200 frames of 100 KB: far more than the socket buffers plus 8 queued frames.
    let chunk = "x".repeat(100_000);
    for _ in 0..200 {
        writer
            .transact("big", |tx| tx.insert_text("text", 0, &chunk))
            .unwrap();
    }
    sync_once(
        &writer,
        [&url],
        ClientConfig::default(),
        Duration::from_secs(60),
    )
    .await
    .unwrap();

    // Now read what the slow subscriber got: some updates, then slow_consumer, then close.
    let lagging = Store::open(dir.path().join("slow.db")).unwrap();
    lagging.create_doc("big", DocKind::Yrs).unwrap();
    let mut received = 0;
    let mut saw_slow_consumer = false;
    let read_deadline = Instant::now() + Duration::from_secs(30);
    loop {
        assert!(
            Instant::now() < read_deadline,
            "the slow connection was never closed"
        );
        let frame = match tokio::time::timeout(Duration::from_secs(10), slow.next()).await {
            Ok(Some(Ok(Ws::Binary(b)))) => b,
            Ok(Some(Ok(Ws::Close(_)))) | Ok(None) | Ok(Some(Err(_))) => break,
            Ok(Some(Ok(_))) => continue,
            Err(_) => panic!("no frame and no close within 10 s (received {received}, slow_consumer {saw_slow_consumer})"),
        };
        match protocol::decode(&frame).unwrap() {
            Message::Updates(u) => {
                received += u.updates.len();
                lagging.apply_remote("big", &u.updates).unwrap();
            }
            Message::Error(e) => {
                assert_eq!(e.code, ErrorCode::SlowConsumer);
                saw_slow_consumer = true;
            }
            _ => {}
        }
    }
    assert!(
        saw_slow_consumer,
        "the relay said why it closed the connection"
    );
    assert!(
        received < 201,
        "it was cut off before everything arrived (got {received})"
    );

    // Resync from its vector: nothing is missing.
    sync_once(
        &lagging,
        [&url],
        ClientConfig::default(),
        Duration::from_secs(60),
    )
    .await
    .unwrap();
    assert_eq!(
        lagging.version_vector("big").unwrap(),
        writer.version_vector("big").unwrap()
    );
    assert_eq!(
        lagging.to_json("big").unwrap(),
        writer.to_json("big").unwrap()
    );
}

/// The relay's count of frames waiting for its connections (`/metrics`), once it has
/// stopped changing for a second (bounded).
async fn settled_queue_depth(ws_url: &str) -> u64 {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let addr = ws_url
        .trim_start_matches("ws://")
        .trim_end_matches("/sync")
        .to_string();
    let read = || async {
        let mut s = tokio::net::TcpStream::connect(&addr).await.unwrap();
        s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .await
            .unwrap();
        let mut page = String::new();
        tokio::time::timeout(Duration::from_secs(5), s.read_to_string(&mut page))
            .await
            .unwrap()
            .unwrap();
        page.lines()
            .find_map(|l| l.strip_prefix("concord_fanout_queue_depth "))
            .and_then(|v| v.trim().parse::<f64>().ok())
            .expect("the queue depth on /metrics") as u64
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut last = read().await;
    let mut since = Instant::now();
    while since.elapsed() < Duration::from_secs(1) && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let now = read().await;
        if now != last {
            last = now;
            since = Instant::now();
        }
    }
    last
}

/// A client that sends requests and does not read the replies is held back, not buffered
/// for: the relay takes no more of its requests while `max_queue` frames wait for it, and
/// answers the rest once it reads. (Before, every pipelined request was answered into an
/// unbounded queue: 60 subscribes to a 3 MiB document held about 190 MiB.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_does_not_read_its_replies_is_held_back_not_buffered() {
    let dir = tempfile::tempdir().unwrap();
    let url = common::in_process_relay(dir.path(), |config| config.max_queue = 8).await;
    let writer = Store::open(dir.path().join("writer.db")).unwrap();
    writer.create_doc("big", DocKind::Yrs).unwrap();
    writer
        .transact("big", |tx| tx.insert_text("text", 0, &"x".repeat(200_000)))
        .unwrap();
    sync_once(
        &writer,
        [&url],
        ClientConfig::default(),
        Duration::from_secs(30),
    )
    .await
    .unwrap();

    // 300 subscribes, each answered with the 200 KB document, and nothing read.
    const REQUESTS: usize = 300;
    let (mut ws, _) = tokio_tungstenite::connect_async(&url).await.unwrap();
    let hello = Message::Hello(Hello {
        protocol_version: PROTOCOL_VERSION,
        device_id: concord_core::Origin::from("never-reads"),
        token: None,
    });
    ws.send(Ws::Binary(protocol::encode(&hello).into()))
        .await
        .unwrap();
    let subscribe = Message::Subscribe(Subscribe {
        doc_id: "big".into(),
        min_lsn: 0,
        linearizable: false,
        kind: DocKind::Yrs,
        version: VersionVector::new(),
    });
    for _ in 0..REQUESTS {
        ws.send(Ws::Binary(protocol::encode(&subscribe).into()))
            .await
            .unwrap();
    }
    let depth = settled_queue_depth(&url).await;
    assert!(
        depth <= 8 + 1,
        "{depth} frames wait for a client that reads nothing (limit 8)"
    );

    // Once it reads, every request is answered.
    let mut answered = 0;
    while answered < REQUESTS {
        match tokio::time::timeout(Duration::from_secs(30), ws.next()).await {
            Ok(Some(Ok(Ws::Binary(b)))) => {
                if let Message::Catchup(_) = protocol::decode(&b).unwrap() {
                    answered += 1;
                }
            }
            Ok(Some(Ok(_))) => {}
            other => panic!("the connection ended after {answered} answers: {other:?}"),
        }
    }
}

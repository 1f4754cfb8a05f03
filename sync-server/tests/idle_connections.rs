//! Connections that hold a socket without taking part are closed, and live ones are not:
//! a sync connection that never says Hello, and one whose client stops answering the
//! relay's pings, are closed after the idle timeout (`--idle-timeout-secs`); a client that
//! reads (and so answers pings) stays connected however quiet it is. The same holds on the
//! Yjs and automerge-repo endpoints.

mod common;

use std::time::Duration;

use common::{RawClient, ServerProcess};
use concord_core::DocKind;

/// The idle timeout the tests' relays run with, in seconds.
const IDLE_SECS: &str = "2";

#[tokio::test]
async fn a_connection_that_never_says_hello_is_closed() {
    let server = ServerProcess::start(&["--idle-timeout-secs", IDLE_SECS]).await;
    let mut silent = RawClient::connect(&server.url()).await;
    // It reads, so it answers the relay's pings: being alive is not enough without Hello.
    let closed = match silent.next_event(Duration::from_secs(20)).await {
        common::Event::Closed(why) => why,
        common::Event::Message(m) => panic!("expected the relay to close, got {m:?}"),
        common::Event::Timeout => panic!("a connection without Hello was kept open"),
    };
    assert!(
        closed.contains("Policy") && closed.contains("no Hello"),
        "closed with a policy code that says why: {closed}"
    );
    // The relay still serves everyone else.
    let mut client = RawClient::connect_hello(&server.url(), None).await;
    client.ping().await;
}

#[tokio::test]
async fn a_client_that_stops_answering_pings_is_closed_and_one_that_reads_is_not() {
    let server = ServerProcess::start(&["--idle-timeout-secs", IDLE_SECS]).await;
    let mut gone = RawClient::connect_hello(&server.url(), None).await;
    gone.subscribe_all("quiet", DocKind::Yrs).await;
    // `live` is set up last, so that it reads from its last frame on.
    let mut live = RawClient::connect_hello(&server.url(), None).await;
    live.subscribe_all("quiet", DocKind::Yrs).await;
    // Three idle timeouts in which neither sends a frame: `live` reads (its WebSocket
    // answers pings as it reads), `gone` does not read at all.
    live.expect_silence(Duration::from_secs(6)).await;
    live.ping().await;
    // What it reads now ends in the close (or, as its WebSocket answers the pings it finds
    // first, in a broken pipe): either way the relay has closed it, and says why.
    match gone.next_event(Duration::from_secs(20)).await {
        common::Event::Closed(_) => {}
        common::Event::Message(m) => panic!("expected the relay to close, got {m:?}"),
        common::Event::Timeout => panic!("a client that answered nothing was kept open"),
    }
    assert_eq!(
        server.log_tail().matches("connection idle: closed").count(),
        1,
        "one connection, the silent one, closed as idle:\n{}",
        server.log_tail()
    );
}

/// On the Yjs and automerge-repo endpoints, a client that neither sends nor answers pings
/// is closed after the idle timeout too (the relay's own pings do not count as life).
#[tokio::test]
async fn silent_yjs_and_automerge_repo_connections_are_closed() {
    let server = ServerProcess::start(&["--idle-timeout-secs", IDLE_SECS]).await;
    let port = server.port();
    let (_yjs, _) = tokio_tungstenite::connect_async(format!("ws://127.0.0.1:{port}/yjs/room"))
        .await
        .unwrap();
    let (_automerge, _) =
        tokio_tungstenite::connect_async(format!("ws://127.0.0.1:{port}/automerge"))
            .await
            .unwrap();
    // Neither is read from (so neither answers a ping). Bounded wait for the relay's log.
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let log = server.log_tail();
        if log.contains("yjs connection idle: closed")
            && log.contains("automerge-repo connection idle: closed")
        {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "silent connections were kept open:\n{log}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

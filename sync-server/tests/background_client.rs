//! The background client (`SyncClient::spawn`) against a real relay process: it reports
//! whether it is connected and what is pending per document, keeps committing offline
//! while the relay is down, reconnects with backoff when it returns, and drains its outbox.

mod common;

use std::time::{Duration, Instant};

use common::ServerProcess;
use concord_core::native_client::{Backoff, ClientStatus, SyncClient};
use concord_core::sync::ClientConfig;
use concord_core::{DocKind, Store};

/// Waits (bounded) until the client's status satisfies `pred`.
async fn wait_for(
    client: &SyncClient,
    what: &str,
    pred: impl Fn(&ClientStatus) -> bool,
) -> ClientStatus {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let status = client.status();
        if pred(&status) {
            return status;
        }
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}: {status:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_tracks_the_connection_and_the_outbox_across_a_relay_outage() {
    let mut server = ServerProcess::start(&[]).await;
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path().join("device.db")).unwrap();
    store.create_doc("doc", DocKind::Yrs).unwrap();
    let backoff = Backoff {
        initial: Duration::from_millis(20),
        max: Duration::from_millis(200),
    };
    let client = SyncClient::spawn(
        store.clone(),
        [server.url()],
        ClientConfig::default(),
        backoff,
    );

    wait_for(&client, "connected", |s| s.connected).await;
    store
        .transact("doc", |tx| tx.insert_text("t", 0, "online "))
        .unwrap();
    wait_for(&client, "the edit acknowledged", |s| {
        s.pending.get("doc") == Some(&0)
    })
    .await;

    // The relay dies; the device keeps working offline and its edits wait in the outbox.
    server.kill();
    let down = wait_for(&client, "disconnected", |s| !s.connected).await;
    assert!(down.last_error.is_some(), "the status says why: {down:?}");
    for word in ["offline ", "edits"] {
        let len = store
            .get("doc", "t")
            .unwrap()
            .unwrap()
            .as_str()
            .unwrap()
            .len();
        store
            .transact("doc", |tx| tx.insert_text("t", len, word))
            .unwrap();
    }
    let waiting = wait_for(&client, "retrying", |s| s.retries >= 2).await;
    assert_eq!(waiting.pending.get("doc"), Some(&2), "{waiting:?}");

    // It comes back: the client reconnects by itself and drains the outbox.
    server.restart().await;
    let up = wait_for(&client, "reconnected and drained", |s| {
        s.connected && s.pending.get("doc") == Some(&0)
    })
    .await;
    assert_eq!(up.retries, 0);
    assert_eq!(up.last_error, None);
    client.stop().await;

    let other = Store::open(dir.path().join("other.db")).unwrap();
    concord_core::native_client::sync_once(
        &other,
        [server.url()],
        ClientConfig::default(),
        Duration::from_secs(20),
    )
    .await
    .unwrap();
    assert_eq!(
        other.get("doc", "t").unwrap(),
        Some("online offline edits".into())
    );
}

/// The client runs on a thread of its own: it is started outside any tokio runtime, and
/// it syncs while the caller's thread never yields to one (an app whose runtime is busy,
/// or that has none, is not held up by the client's SQLite work, nor the client by it).
#[test]
fn a_background_client_syncs_on_its_own_thread_without_the_callers_runtime() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let server = runtime.block_on(ServerProcess::start(&[]));
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path().join("device.db")).unwrap();
    store.create_doc("doc", DocKind::Automerge).unwrap();
    let client = SyncClient::spawn(
        store.clone(),
        [server.url()],
        ClientConfig::default(),
        Backoff::default(),
    );
    for i in 0..5i64 {
        store.transact("doc", |tx| tx.put("n", i)).unwrap();
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let status = client.status();
        if status.connected && status.pending.get("doc") == Some(&0) {
            break;
        }
        assert!(Instant::now() < deadline, "not synced: {status:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
    runtime.block_on(client.stop());
}

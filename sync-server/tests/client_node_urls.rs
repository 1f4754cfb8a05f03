//! The native client over a list of node URLs against a real relay process: it moves past
//! a node that does not answer, and reports every acknowledgement with its log position
//! (LSN), the highest of which it keeps in its status.

mod common;

use std::time::{Duration, Instant};

use common::{free_port, ServerProcess, WAIT};
use concord_core::native_client::{sync_once, Backoff, ClientError, SyncClient};
use concord_core::sync::ClientConfig;
use concord_core::{DocKind, Store};

/// A URL nothing listens on.
fn dead_url() -> String {
    format!("ws://127.0.0.1:{}/sync", free_port())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acks_reach_the_app_with_growing_lsns_through_the_node_that_answers() {
    let server = ServerProcess::start(&[]).await;
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path().join("device.db")).unwrap();
    store.create_doc("doc", DocKind::Yrs).unwrap();
    let backoff = Backoff {
        initial: Duration::from_millis(20),
        max: Duration::from_millis(200),
    };
    let (client, mut acks) = SyncClient::spawn_with_acks(
        store.clone(),
        vec![dead_url(), server.url()],
        ClientConfig::default(),
        backoff,
    );

    // Three edits, each acknowledged before the next: three commits, three positions.
    let mut seen = Vec::new();
    for i in 0..3u64 {
        store
            .transact("doc", |tx| tx.insert_text("t", 0, "x"))
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(30);
        while !seen
            .iter()
            .any(|a: &concord_core::sync::Acked| a.upto == i + 1)
        {
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(!left.is_zero(), "no ack for seq {} in {seen:?}", i + 1);
            if let Ok(Some(ack)) = tokio::time::timeout(left, acks.recv()).await {
                seen.push(ack);
            }
        }
    }
    assert!(seen.iter().all(|a| a.doc_id == "doc"));
    assert!(seen.iter().all(|a| a.origin == store.device_id()));
    let lsns: Vec<u64> = seen.iter().map(|a| a.lsn).collect();
    assert!(lsns[0] > 0, "{lsns:?}");
    assert!(lsns.windows(2).all(|w| w[0] < w[1]), "{lsns:?}");
    let last = *lsns.last().unwrap();
    let deadline = Instant::now() + WAIT;
    while client.status().max_lsn < last {
        assert!(Instant::now() < deadline, "{:?}", client.status());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(client.status().max_lsn, last);
    assert_eq!(store.pending("doc").unwrap(), 0);
    client.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_one_shot_sync_tries_each_node_and_fails_only_when_none_answers() {
    let server = ServerProcess::start(&[]).await;
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path().join("device.db")).unwrap();
    store.create_doc("doc", DocKind::Automerge).unwrap();
    store.transact("doc", |tx| tx.put("k", 1)).unwrap();

    sync_once(
        &store,
        [dead_url(), server.url()],
        ClientConfig::default(),
        WAIT,
    )
    .await
    .unwrap();
    assert_eq!(store.pending("doc").unwrap(), 0);

    match sync_once(
        &store,
        [dead_url(), dead_url()],
        ClientConfig::default(),
        WAIT,
    )
    .await
    {
        Err(ClientError::Connect { .. }) => {}
        other => panic!("expected a connection failure, got {other:?}"),
    }
}

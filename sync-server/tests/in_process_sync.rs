//! Two devices converge through an in-process relay over real sockets and real SQLite files.

mod common;

use std::time::Duration;

use concord_core::native_client::sync_once;
use concord_core::sync::ClientConfig;
use concord_core::{DocKind, Store};

async fn start_server(dir: &std::path::Path) -> String {
    common::in_process_relay(dir, |_| {}).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offline_edits_on_two_devices_converge_and_a_new_device_gets_everything() {
    let dir = tempfile::tempdir().unwrap();
    let url = start_server(dir.path()).await;
    let a = Store::open(dir.path().join("a.db")).unwrap();
    let b = Store::open(dir.path().join("b.db")).unwrap();
    let t = Duration::from_secs(20);

    a.create_doc("notes", DocKind::Automerge).unwrap();
    a.create_doc("todo", DocKind::Yrs).unwrap();
    a.transact("notes", |tx| tx.put("title", "shared")).unwrap();
    a.transact("todo", |tx| tx.insert_text("body", 0, "hello"))
        .unwrap();
    sync_once(&a, [&url], ClientConfig::default(), t)
        .await
        .unwrap();
    sync_once(&b, [&url], ClientConfig::default(), t)
        .await
        .unwrap();
    assert_eq!(b.to_json("notes").unwrap(), a.to_json("notes").unwrap());

    // Offline, concurrent edits.
    a.transact("notes", |tx| tx.put("from_a", 1)).unwrap();
    b.transact("notes", |tx| tx.put("from_b", 2)).unwrap();
    a.transact("todo", |tx| tx.insert_text("body", 0, "A: "))
        .unwrap();
    b.transact("todo", |tx| tx.insert_text("body", 5, " from B"))
        .unwrap();
    assert_eq!(a.pending("notes").unwrap(), 1);

    sync_once(&a, [&url], ClientConfig::default(), t)
        .await
        .unwrap();
    sync_once(&b, [&url], ClientConfig::default(), t)
        .await
        .unwrap();
    sync_once(&a, [&url], ClientConfig::default(), t)
        .await
        .unwrap();

    for id in ["notes", "todo"] {
        assert_eq!(a.to_json(id).unwrap(), b.to_json(id).unwrap(), "{id}");
        assert_eq!(a.version_vector(id).unwrap(), b.version_vector(id).unwrap());
        assert_eq!(a.pending(id).unwrap(), 0);
        assert_eq!(b.pending(id).unwrap(), 0);
    }
    assert_eq!(a.get("notes", "from_b").unwrap(), Some(2.into()));
    assert_eq!(
        b.get("todo", "body").unwrap(),
        Some("A: hello from B".into())
    );

    let c = Store::open(dir.path().join("c.db")).unwrap();
    sync_once(&c, [&url], ClientConfig::default(), t)
        .await
        .unwrap();
    assert_eq!(c.to_json("notes").unwrap(), a.to_json("notes").unwrap());
    assert_eq!(c.to_json("todo").unwrap(), a.to_json("todo").unwrap());
}

//! A device restored from an old backup must not reuse sequence numbers it already used:
//! it detects the restore from the relay (its vector, or a `seq_conflict`), takes a new
//! origin, and nothing written before or after the restore is lost.

mod common;

use std::time::Duration;

use concord_core::native_client::sync_once;
use concord_core::sync::ClientConfig;
use concord_core::{DocKind, Store};

async fn start_server(dir: &std::path::Path) -> String {
    common::in_process_relay(dir, |_| {}).await
}

async fn sync(store: &Store, url: &str) {
    sync_once(
        store,
        [url],
        ClientConfig::default(),
        Duration::from_secs(20),
    )
    .await
    .unwrap();
}

/// Writes `n` lines "<tag><i>" into list "log", one commit each.
fn write(store: &Store, tag: &str, n: usize) {
    for i in 0..n {
        store
            .transact("doc", |tx| tx.push("log", format!("{tag}{i}")))
            .unwrap();
    }
}

async fn restore_scenario(edits_after_restore: usize) {
    let dir = tempfile::tempdir().unwrap();
    let url = start_server(dir.path()).await;
    let a_path = dir.path().join("a.db");
    let backup = dir.path().join("backup.db");

    let a = Store::open(&a_path).unwrap();
    a.create_doc("doc", DocKind::Automerge).unwrap();
    write(&a, "before-backup-", 3);
    sync(&a, &url).await;
    let old_origin = a.device_id();
    drop(a); // closing checkpoints the WAL into the file
    std::fs::copy(&a_path, &backup).unwrap();

    let a = Store::open(&a_path).unwrap();
    write(&a, "after-backup-", 2);
    sync(&a, &url).await;
    drop(a);

    // The device is restored from the backup and keeps working offline.
    let restored = Store::open(&backup).unwrap();
    assert_eq!(restored.device_id(), old_origin);
    write(&restored, "after-restore-", edits_after_restore);
    sync(&restored, &url).await;
    sync(&restored, &url).await;

    assert_ne!(
        restored.device_id(),
        old_origin,
        "a restored device takes a new origin"
    );
    assert_eq!(restored.pending("doc").unwrap(), 0);
    let fresh = Store::open(dir.path().join("fresh.db")).unwrap();
    sync(&fresh, &url).await;
    assert_eq!(
        fresh.to_json("doc").unwrap(),
        restored.to_json("doc").unwrap()
    );
    let log = fresh.get("doc", "log").unwrap().unwrap();
    let mut lines: Vec<String> = log
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect();
    lines.sort();
    let mut expected: Vec<String> = (0..3)
        .map(|i| format!("before-backup-{i}"))
        .chain((0..2).map(|i| format!("after-backup-{i}")))
        .chain((0..edits_after_restore).map(|i| format!("after-restore-{i}")))
        .collect();
    expected.sort();
    assert_eq!(
        lines, expected,
        "every edit, before and after the restore, is kept once"
    );
    let vv = fresh.version_vector("doc").unwrap();
    assert_eq!(vv.get(&old_origin), 5);
    assert_eq!(vv.get(&restored.device_id()), edits_after_restore as u64);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restore_detected_from_the_relays_vector() {
    // One edit after the restore: the relay holds more of the old origin (5) than the
    // device (4), so the catch-up reveals the restore before anything is sent.
    restore_scenario(1).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restore_detected_by_a_sequence_conflict() {
    // Two edits after the restore: the device's vector (5) equals the relay's, so it only
    // learns of the restore when the relay refuses its different update 4 (seq_conflict).
    restore_scenario(2).await;
}

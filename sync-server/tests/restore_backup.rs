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

/// Copies a directory's files (one level: the relay's data dir).
fn copy_dir(from: &std::path::Path, to: &std::path::Path) {
    let _ = std::fs::remove_dir_all(to);
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        if entry.file_type().unwrap().is_file() {
            std::fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
        }
    }
}

/// The relay is restored from an old backup and so lacks updates it had acknowledged;
/// the devices had already folded them into their checkpoints. Each device re-authors what
/// the relay lost as one whole-document update under a new origin, and a fresh device then
/// sees every edit exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relay_restored_from_an_old_backup_gets_back_what_it_had_acknowledged() {
    for kind in [DocKind::Automerge, DocKind::Yrs] {
        let mut server = common::ServerProcess::start(&[]).await;
        let url = server.url();
        let dir = tempfile::tempdir().unwrap();
        let edit = |s: &Store, tag: &str, n: usize| {
            for i in 0..n {
                s.transact("doc", |tx| match kind {
                    DocKind::Automerge => tx.push("log", format!("{tag}{i}")),
                    DocKind::Yrs => tx.insert_text("t", 0, &format!("{tag}{i};")),
                })
                .unwrap();
            }
        };
        let a = Store::open(dir.path().join("a.db")).unwrap();
        let b = Store::open(dir.path().join("b.db")).unwrap();
        a.create_doc("doc", kind).unwrap();
        edit(&a, "a-early-", 3);
        sync(&a, &url).await;
        sync(&b, &url).await;
        edit(&b, "b-early-", 2);
        sync(&b, &url).await;

        server.kill();
        let backup = dir.path().join("backup");
        copy_dir(server.data_dir(), &backup);
        server.restart().await;

        // Acknowledged by the relay, then folded into the devices' checkpoints.
        edit(&a, "a-late-", 4);
        edit(&b, "b-late-", 3);
        for _ in 0..2 {
            sync(&a, &url).await;
            sync(&b, &url).await;
        }
        assert_eq!(
            (a.pending("doc").unwrap(), b.pending("doc").unwrap()),
            (0, 0)
        );
        a.compact("doc").unwrap();
        b.compact("doc").unwrap();
        let (a_origin, b_origin) = (a.device_id(), b.device_id());

        server.kill();
        copy_dir(&backup, server.data_dir());
        server.restart().await;

        for _ in 0..2 {
            sync(&a, &url).await;
            sync(&b, &url).await;
        }
        assert_ne!(
            a.device_id(),
            a_origin,
            "{kind}: a re-authored what was lost"
        );
        assert_ne!(b.device_id(), b_origin, "{kind}: so did b");
        let fresh = Store::open(dir.path().join("fresh.db")).unwrap();
        sync(&fresh, &url).await;
        let content = fresh.to_json("doc").unwrap();
        assert_eq!(content, a.to_json("doc").unwrap(), "{kind}");
        assert_eq!(content, b.to_json("doc").unwrap(), "{kind}");
        let text = content.to_string();
        for tag in ["a-early-2", "b-early-1", "a-late-3", "b-late-2"] {
            assert_eq!(text.matches(tag).count(), 1, "{kind}: {tag} once in {text}");
        }
    }
}

//! A store written in the previous schema (version 2: before the compact outbox) opens,
//! migrates, reads and syncs. The fixture `fixtures/store-v2.db` was made by
//! `make_v2_fixture` (ignored; run it with `--ignored` to remake the file): commits by
//! this code, left unfolded, then the version 3 tables dropped and `user_version` set to 2,
//! which is exactly the version 2 layout.

use std::path::{Path, PathBuf};

use concord_core::store::SCHEMA_VERSION;
use concord_core::{DocKind, Store};
use rusqlite::Connection;
use serde_json::json;

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/store-v2.db")
}

#[test]
#[ignore = "remakes the committed fixture"]
fn make_v2_fixture() {
    let path = fixture();
    let _ = std::fs::remove_file(&path);
    let store = Store::open(&path).unwrap();
    store.create_doc("notes", DocKind::Automerge).unwrap();
    store.create_doc("pad", DocKind::Yrs).unwrap();
    for (i, word) in ["one ", "two ", "three "].iter().enumerate() {
        let at = ["one ", "two ", "three "][..i].concat().chars().count();
        store
            .transact("notes", |tx| tx.insert_text("body", at, word))
            .unwrap();
        store
            .transact("pad", |tx| tx.insert_text("t", at, word))
            .unwrap();
    }
    store
        .transact("notes", |tx| tx.put("title", "old"))
        .unwrap();
    // The first update of each is acknowledged; the rest are still to send.
    let me = store.device_id();
    store.acknowledge("notes", &me, 1).unwrap();
    store.acknowledge("pad", &me, 1).unwrap();
    // Leave the outbox as rows (no fold on close), as version 2 kept it.
    std::mem::forget(store);
    let conn = Connection::open(&path).unwrap();
    conn.execute_batch("DROP TABLE outbox_base; DROP TABLE outbox_fold; PRAGMA user_version = 2;")
        .unwrap();
    conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
        .unwrap();
}

#[test]
fn a_version_2_store_migrates_reads_and_syncs() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("old.db");
    std::fs::copy(fixture(), &path).unwrap();
    let version: i64 = Connection::open(&path)
        .unwrap()
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap();
    assert_eq!(version, 2, "the fixture is in the old format");

    let store = Store::open(&path).unwrap();
    assert_eq!(
        store.to_json("notes").unwrap(),
        json!({"body": "one two three ", "title": "old"})
    );
    assert_eq!(
        store.get("pad", "t").unwrap(),
        Some(json!("one two three "))
    );
    assert_eq!(store.text_len("pad", "t").unwrap(), 14);
    assert_eq!(store.pending("notes").unwrap(), 3);
    assert_eq!(store.pending("pad").unwrap(), 2);

    // Sync with a peer: what the old store has to send, then an edit from the peer.
    let peer = Store::open_in_memory().unwrap();
    for (doc, kind) in [("notes", DocKind::Automerge), ("pad", DocKind::Yrs)] {
        peer.create_doc(doc, kind).unwrap();
        let all = store
            .updates_missing_from(doc, &Default::default())
            .unwrap();
        peer.apply_remote(doc, &all).unwrap();
        assert_eq!(peer.to_json(doc).unwrap(), store.to_json(doc).unwrap());
        peer.transact(doc, |tx| {
            tx.insert_text(if doc == "pad" { "t" } else { "body" }, 0, ">")
        })
        .unwrap();
        let back = peer
            .updates_missing_from(doc, &store.version_vector(doc).unwrap())
            .unwrap();
        assert_eq!(store.apply_remote(doc, &back).unwrap().applied, 1);
        assert_eq!(peer.to_json(doc).unwrap(), store.to_json(doc).unwrap());
    }
    // New local edits continue the old sequence, and fold/unfold on the migrated file.
    store
        .transact("notes", |tx| tx.insert_text("body", 0, "new "))
        .unwrap();
    store.compact_all().unwrap();
    let out = store.outbox("notes").unwrap();
    assert!(out.iter().all(|r| r.seq >= 2), "{out:?}");
    drop(store);
    let version: i64 = Connection::open(&path)
        .unwrap()
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap();
    assert_eq!(version, SCHEMA_VERSION);
}

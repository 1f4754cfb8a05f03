//! `Store::check` on real SQLite files: a healthy store, damaged documents (bytes replaced
//! through SQLite) and a damaged file (bytes overwritten on disk).

use std::io::{Seek, SeekFrom, Write};
use std::path::Path;

use concord_core::store::ProblemKind;
use concord_core::{DocKind, Store, StoreOptions};
use rusqlite::{params, Connection};

fn open(path: &Path, checkpoint_every: u64) -> Store {
    Store::open_with(
        path,
        StoreOptions {
            checkpoint_every,
            ..Default::default()
        },
    )
    .unwrap()
}

/// Two documents of each kind, some with snapshots, some updates acknowledged.
fn fill(path: &Path) {
    let s = open(path, 4);
    for (id, kind) in [
        ("am1", DocKind::Automerge),
        ("am2", DocKind::Automerge),
        ("y1", DocKind::Yrs),
        ("y2", DocKind::Yrs),
    ] {
        s.create_doc(id, kind).unwrap();
        for i in 0..10 {
            s.transact(id, |tx| match kind {
                DocKind::Automerge => tx.put(&format!("k{i}"), i),
                DocKind::Yrs => tx.put(&format!("m/k{i}"), i),
            })
            .unwrap();
        }
    }
    // am1 was synced up to its 6th update: those leave the outbox.
    let device = s.device_id();
    s.acknowledge("am1", &device, 6).unwrap();
    s.transact("am1", |tx| tx.put("after", true)).unwrap();
}

fn sql(path: &Path) -> Connection {
    Connection::open(path).unwrap()
}

#[test]
fn a_healthy_store_checks_ok_and_lists_unsynced_edits() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("a.db");
    fill(&path);
    let report = open(&path, 4).check().unwrap();
    assert!(report.is_ok(), "{:#?}", report.problems);
    assert_eq!(report.docs, 4);
    assert_eq!(
        report.unsynced.unwrap(),
        vec![
            ("am1".to_string(), 5),
            ("am2".to_string(), 10),
            ("y1".to_string(), 10),
            ("y2".to_string(), 10),
        ]
    );
    assert!(Store::open_in_memory().unwrap().check().unwrap().is_ok());
}

#[test]
fn damaged_documents_are_each_named_with_what_is_wrong() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("a.db");
    fill(&path);
    let garbage = b"\x85\x6f\x4a\x83 these bytes are not a CRDT \x00\xff".to_vec();
    let db = sql(&path);
    let snapshots: i64 = db
        .query_row("SELECT COUNT(*) FROM checkpoints", [], |r| r.get(0))
        .unwrap();
    assert_eq!(snapshots, 4, "every document has a snapshot to damage");
    db.execute(
        "UPDATE checkpoints SET state = ?1 WHERE doc_id = 'am1'",
        params![garbage],
    )
    .unwrap();
    db.execute(
        "UPDATE checkpoints SET state = ?1 WHERE doc_id = 'y1'",
        params![garbage],
    )
    .unwrap();
    db.execute(
        "UPDATE updates SET data = ?1 WHERE idx = (SELECT MAX(idx) FROM updates WHERE doc_id = 'am2')",
        params![garbage],
    )
    .unwrap();
    db.execute("UPDATE docs SET vv = x'ffffffff' WHERE id = 'y2'", [])
        .unwrap();
    db.execute(
        "DELETE FROM updates WHERE idx = (SELECT MIN(idx) FROM updates WHERE doc_id = 'y2')",
        [],
    )
    .unwrap();
    drop(db);

    let store = open(&path, 4);
    let report = store.check().unwrap();
    assert!(!report.is_ok());
    assert_eq!(report.docs, 4);
    let found = |doc: &str, kind: ProblemKind| {
        report
            .problems
            .iter()
            .any(|p| p.doc.as_deref() == Some(doc) && p.kind == kind)
    };
    assert!(
        found("am1", ProblemKind::Snapshot),
        "{:#?}",
        report.problems
    );
    assert!(found("y1", ProblemKind::Snapshot), "{:#?}", report.problems);
    assert!(found("am2", ProblemKind::Update), "{:#?}", report.problems);
    assert!(
        found("y2", ProblemKind::VersionVector),
        "{:#?}",
        report.problems
    );
    assert!(found("y2", ProblemKind::Outbox), "{:#?}", report.problems);
    assert!(
        report.problems.iter().all(|p| p.doc.is_some()),
        "the file itself is intact: {:#?}",
        report.problems
    );
    let am1 = report
        .problems
        .iter()
        .find(|p| p.doc.as_deref() == Some("am1"))
        .unwrap();
    assert!(am1.to_string().contains("am1") && am1.to_string().contains("snapshot"));
    // The outbox still reads: every unsynced edit is listed.
    assert_eq!(report.unsynced.map(|u| u.len()), Some(4));
    // Loading a damaged document fails as it did before the check.
    assert!(store.to_json("am1").is_err());
}

#[test]
fn bytes_overwritten_in_the_file_are_found() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("a.db");
    {
        // No snapshots, so nothing is pruned and no page is free: the middle is in use.
        let s = open(&path, 1_000_000);
        for d in 0..60 {
            let id = format!("doc{d}");
            s.create_doc(&id, DocKind::Automerge).unwrap();
            for i in 0..5 {
                s.transact(&id, |tx| {
                    tx.put(&format!("key{i}"), "some text to fill pages")
                })
                .unwrap();
            }
        }
    }
    let db = sql(&path);
    db.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
        .unwrap();
    drop(db);
    scribble_middle(&path);
    let ok: String = sql(&path)
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap_or_else(|e| e.to_string());
    assert_ne!(ok, "ok", "the file is damaged");

    let report = open(&path, 1_000_000).check().unwrap();
    assert!(!report.is_ok());
    assert!(
        report
            .problems
            .iter()
            .any(|p| p.kind == ProblemKind::Database && p.doc.is_none()),
        "{:#?}",
        report.problems
    );
}

/// Overwrites 8 KiB in the middle of the file with fixed pseudo-random bytes.
fn scribble_middle(path: &Path) {
    let len = std::fs::metadata(path).unwrap().len();
    assert!(len > 64 * 1024, "the file has a middle ({len} bytes)");
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let bytes: Vec<u8> = (0..8192)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect();
    let mut file = std::fs::OpenOptions::new().write(true).open(path).unwrap();
    file.seek(SeekFrom::Start(len / 2 / 4096 * 4096)).unwrap();
    file.write_all(&bytes).unwrap();
    file.sync_all().unwrap();
}

#[test]
fn a_stored_version_vector_that_would_read_back_wrong_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("a.db");
    fill(&path);
    // Two commits after y1's vector was last written whole, left as rows (no close).
    let s = open(&path, 1_000);
    for v in ["a", "b"] {
        s.transact("y1", |tx| tx.put("m/late", v)).unwrap();
    }
    std::mem::forget(s);
    let db = sql(&path);
    // y1: the first of them lost, so the second skips a seq of its origin.
    db.execute(
        "DELETE FROM updates WHERE idx = (SELECT MAX(idx) - 1 FROM updates WHERE doc_id = 'y1')",
        [],
    )
    .unwrap();
    // am2: stored as of a log index no update has reached (the next commits would not count).
    db.execute(
        "UPDATE docs SET vv_upto = vv_upto + 1000 WHERE id = 'am2'",
        [],
    )
    .unwrap();
    // y2: stored as of a log index before its checkpoint's.
    let upto: i64 = db
        .query_row("SELECT snapshot_upto FROM docs WHERE id = 'y2'", [], |r| {
            r.get(0)
        })
        .unwrap();
    assert!(upto > 0, "y2 has a checkpoint");
    db.execute("UPDATE docs SET vv_upto = 0 WHERE id = 'y2'", [])
        .unwrap();
    drop(db);

    let report = open(&path, 4).check().unwrap();
    let named = |doc: &str, words: &str| {
        report.problems.iter().any(|p| {
            p.doc.as_deref() == Some(doc)
                && p.kind == ProblemKind::VersionVector
                && p.detail.contains(words)
        })
    };
    assert!(named("y1", "skips from"), "{:#?}", report.problems);
    assert!(
        named("am2", "past the last one given"),
        "{:#?}",
        report.problems
    );
    assert!(
        named("y2", "before its checkpoint"),
        "{:#?}",
        report.problems
    );
    assert!(
        !report
            .problems
            .iter()
            .any(|p| p.doc.as_deref() == Some("am1")),
        "am1 is intact: {:#?}",
        report.problems
    );
}

//! The device store at the raw library's floor: opening to read writes nothing,
//! checkpoints by the tail's size, compaction (explicit and on close), and the disk
//! given back once updates are acknowledged.

use std::fs;
use std::path::Path;

use concord_core::{DocKind, Store, StoreOptions};
use rusqlite::Connection;

fn db_stats(path: &Path) -> (i64, i64, i64) {
    let conn = Connection::open(path).unwrap();
    let tail: i64 = conn
        .query_row("SELECT tail FROM docs WHERE id = 'd'", [], |r| r.get(0))
        .unwrap();
    let rows: i64 = conn
        .query_row("SELECT COUNT(*) FROM updates", [], |r| r.get(0))
        .unwrap();
    let outbox: i64 = conn
        .query_row("SELECT COUNT(*) FROM outbox", [], |r| r.get(0))
        .unwrap();
    (tail, rows, outbox)
}

fn type_text(store: &Store, kind: DocKind, chars: usize) {
    store.ensure_doc("d", kind).unwrap();
    for i in 0..chars {
        store
            .transact("d", |tx| tx.insert_text("t", i, "x"))
            .unwrap();
    }
}

#[test]
fn opening_and_reading_a_current_store_writes_nothing() {
    for kind in [DocKind::Automerge, DocKind::Yrs] {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.db");
        {
            let s = Store::open(&path).unwrap();
            type_text(&s, kind, 20);
        }
        let before = fs::read(&path).unwrap();
        let mtime = fs::metadata(&path).unwrap().modified().unwrap();
        // Coarse file-system clocks would hide a write made within the same tick.
        std::thread::sleep(std::time::Duration::from_millis(20));
        {
            let s = Store::open(&path).unwrap();
            assert_eq!(s.text_len("d", "t").unwrap(), 20);
            assert_eq!(s.text_slice("d", "t", 0, 3).unwrap(), "xxx");
            assert_eq!(s.list_docs().unwrap().len(), 1);
            assert_eq!(s.status().unwrap()[0].pending, 20);
            s.outbox("d").unwrap();
        }
        assert!(
            !dir.path().join("a.db-wal").exists()
                || fs::metadata(dir.path().join("a.db-wal")).unwrap().len() == 0,
            "{kind}: nothing left in the WAL"
        );
        assert_eq!(fs::read(&path).unwrap(), before, "{kind}: byte-identical");
        assert_eq!(
            fs::metadata(&path).unwrap().modified().unwrap(),
            mtime,
            "{kind}: mtime unchanged"
        );
    }
}

#[test]
fn a_few_large_commits_get_a_checkpoint_by_size() {
    for kind in [DocKind::Automerge, DocKind::Yrs] {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.db");
        let s = Store::open_with(
            &path,
            StoreOptions {
                checkpoint_every: 1_000_000,
                checkpoint_min_bytes: 4096,
                ..Default::default()
            },
        )
        .unwrap();
        s.create_doc("d", kind).unwrap();
        let block = "0123456789abcdef".repeat(256); // 4 KiB per commit
        let mut max_tail = 0;
        for i in 0..40 {
            s.transact("d", |tx| tx.insert_text("t", i * block.len(), &block))
                .unwrap();
            max_tail = max_tail.max(db_stats(&path).0);
        }
        assert!(max_tail < 40, "{kind}: a checkpoint was taken ({max_tail})");
        assert!(max_tail >= 1, "{kind}");
        drop(s);
        let s = Store::open(&path).unwrap();
        assert_eq!(s.text_len("d", "t").unwrap(), 40 * block.len(), "{kind}");
    }
}

#[test]
fn closing_checkpoints_what_this_handle_wrote() {
    for kind in [DocKind::Automerge, DocKind::Yrs] {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.db");
        let s = Store::open(&path).unwrap();
        type_text(&s, kind, 10);
        assert_eq!(db_stats(&path).0, 10, "{kind}: a tail while open");
        drop(s);
        assert_eq!(db_stats(&path).0, 0, "{kind}: checkpointed on close");
        let s = Store::open(&path).unwrap();
        assert_eq!(s.text_len("d", "t").unwrap(), 10);
        assert_eq!(
            s.outbox("d").unwrap().len(),
            10,
            "{kind}: the outbox is kept"
        );
    }
}

#[test]
fn compaction_after_acknowledgement_gives_the_disk_back() {
    for kind in [DocKind::Automerge, DocKind::Yrs] {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.db");
        let s = Store::open(&path).unwrap();
        type_text(&s, kind, 2000);
        let outbox = s.outbox("d").unwrap();
        assert_eq!(outbox.len(), 2000);
        // Compaction keeps what is still to send.
        s.compact("d").unwrap();
        assert_eq!(s.outbox("d").unwrap(), outbox, "{kind}");
        assert_eq!(db_stats(&path).1, 2000, "{kind}");
        let before = fs::metadata(&path).unwrap().len();
        s.acknowledge("d", &s.device_id(), 2000).unwrap();
        s.compact_all().unwrap();
        let (tail, rows, pending) = db_stats(&path);
        assert_eq!((tail, rows, pending), (0, 0, 0), "{kind}");
        let after = fs::metadata(&path).unwrap().len();
        assert!(after < before / 2, "{kind}: {before} -> {after}");
        let saved = s.saved_state("d").unwrap().len() as u64;
        drop(s);
        let s = Store::open(&path).unwrap();
        assert_eq!(s.text_len("d", "t").unwrap(), 2000, "{kind}");
        assert!(
            after < saved + 64 * 1024,
            "{kind}: {after} vs saved {saved}"
        );
    }
}

//! The device store at the raw library's floor: opening to read writes nothing,
//! checkpoints by the tail's size, compaction (explicit and on close), and the disk
//! given back once updates are acknowledged.

use std::fs;
use std::path::Path;

use concord_core::sync::DeviceLog;
use concord_core::{DocKind, Store, StoreOptions};
use rusqlite::Connection;

fn db_stats(path: &Path) -> (i64, i64, i64) {
    let conn = Connection::open(path).unwrap();
    let tail: i64 = conn
        // The tail: the updates logged after the checkpoint.
        .query_row(
            "SELECT COUNT(*) FROM updates u JOIN docs d ON d.id = u.doc_id
             WHERE d.id = 'd' AND u.idx > d.snapshot_upto",
            [],
            |r| r.get(0),
        )
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
            assert!(s.status().unwrap()[0].pending >= 1);
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
        let s = Store::open_with(
            &path,
            StoreOptions {
                fold_outbox_at: 10,
                ..Default::default()
            },
        )
        .unwrap();
        type_text(&s, kind, 10);
        assert_eq!(db_stats(&path).0, 10, "{kind}: a tail while open");
        drop(s);
        assert_eq!(db_stats(&path).0, 0, "{kind}: checkpointed on close");
        let s = Store::open(&path).unwrap();
        assert_eq!(s.text_len("d", "t").unwrap(), 10);
        assert_eq!(s.pending("d").unwrap(), 10, "{kind}: folded, not lost");
        assert_eq!(
            s.outbox("d").unwrap().len(),
            1,
            "{kind}: rebuilt as one update"
        );
        assert_eq!(s.pending("d").unwrap(), 1, "{kind}");
    }
}

/// Commits [`PARAGRAPHS`] makes.
const PARAGRAPHS: usize = 120;

/// A new store in a directory of its own, with [`PARAGRAPHS`] commits that together
/// outweigh the document (a batched editor's: each rewrites a paragraph, typed one
/// character at a time); asserts they do.
fn store_with_paragraphs(kind: DocKind) -> (tempfile::TempDir, std::path::PathBuf, Store) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("a.db");
    let s = Store::open(&path).unwrap();
    let commits = PARAGRAPHS;
    s.ensure_doc("d", kind).unwrap();
    for i in 0..commits {
        s.transact("d", |tx| {
            for (j, c) in format!("paragraph {i:03} ")
                .chars()
                .cycle()
                .take(200)
                .enumerate()
            {
                tx.insert_text("t", j, &c.to_string())?;
            }
            if i > 0 {
                tx.delete_text("t", 200, 200)?;
            }
            Ok(())
        })
        .unwrap();
    }
    // Measured in the file: a handle that read its outbox does not fold it for its size
    // on close.
    let outbox: usize = Connection::open(&path)
        .unwrap()
        .query_row(
            "SELECT SUM(LENGTH(u.data)) FROM outbox o JOIN updates u
               ON u.doc_id = o.doc_id AND u.origin = o.origin AND u.seq = o.seq",
            [],
            |r| r.get::<_, i64>(0),
        )
        .unwrap() as usize;
    let saved = s.saved_state("d").unwrap().len();
    assert!(
        outbox > saved.max(16 * 1024),
        "{kind}: the commits ({outbox} bytes) outweigh the document ({saved} bytes)"
    );
    assert!(commits < StoreOptions::default().fold_outbox_at as usize);
    (dir, path, s)
}

/// A few commits that outweigh the document are folded on close although they are fewer
/// than `fold_outbox_at`: the file does not stay several times the document until a relay
/// acknowledges them. They are still all pending, and rebuilt before sending.
#[test]
fn closing_folds_fewer_commits_that_outweigh_the_document() {
    for kind in [DocKind::Automerge, DocKind::Yrs] {
        // The handle that made the commits never read them to send (an app offline).
        let (_dir, path, s) = store_with_paragraphs(kind);
        let text = s.get("d", "t").unwrap();
        drop(s);
        assert_eq!(
            db_stats(&path).1,
            0,
            "{kind}: folded on close, no row per commit"
        );
        let s = Store::open(&path).unwrap();
        assert_eq!(
            s.pending("d").unwrap(),
            PARAGRAPHS,
            "{kind}: every commit still pending"
        );
        assert_eq!(s.get("d", "t").unwrap(), text, "{kind}");
        let out = s.outbox("d").unwrap();
        let peer = Store::open_in_memory().unwrap();
        peer.create_doc("d", kind).unwrap();
        peer.apply_remote("d", &out).unwrap();
        assert_eq!(peer.get("d", "t").unwrap(), text, "{kind}");
    }
}

/// Commits the closing handle read to send are not folded for their size: a relay may
/// hold them with the acknowledgement on its way, and a fold would renumber them (the
/// device would then take a new origin). They stay rows, exact, until acknowledged.
#[test]
fn closing_does_not_fold_by_size_what_it_read_to_send() {
    for kind in [DocKind::Automerge, DocKind::Yrs] {
        let (_dir, path, s) = store_with_paragraphs(kind);
        let commits = PARAGRAPHS;
        let sent = s.outbox("d").unwrap();
        drop(s);
        assert_eq!(
            db_stats(&path).1,
            commits as i64,
            "{kind}: a row per commit still"
        );
        let s = Store::open(&path).unwrap();
        assert_eq!(
            s.outbox("d").unwrap(),
            sent,
            "{kind}: exactly what was sent"
        );
    }
}

/// Updates read to send are never folded, by this handle or another one on the file (an
/// app's compaction, another process closing): their acknowledgement may be on its way,
/// and a fold renumbers. It did: 10 updates sent, folded into seq 1, an edit as seq 2,
/// then the acknowledgement of 10 deleted both, and the edit was never sent.
#[test]
fn updates_read_to_send_stay_as_they_are_through_compaction_and_their_ack() {
    for kind in [DocKind::Automerge, DocKind::Yrs] {
        for other_handle in [false, true] {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("a.db");
            let s = Store::open(&path).unwrap();
            type_text(&s, kind, 10);
            let device = s.device_id();
            // Read to send as a sync session does (through `DeviceLog`).
            let sent = DeviceLog::outbox_after(&s, "d", 0).unwrap();
            assert_eq!(sent.len(), 10);
            if other_handle {
                let other = Store::open(&path).unwrap();
                other.compact("d").unwrap();
                drop(other);
            } else {
                s.compact("d").unwrap();
            }
            assert_eq!(
                s.outbox("d").unwrap(),
                sent,
                "{kind}, {other_handle}: as sent"
            );
            s.transact("d", |tx| tx.insert_text("t", 0, "after "))
                .unwrap();
            let text = s.get("d", "t").unwrap();
            s.acknowledge("d", &device, 10).unwrap();
            assert_eq!(s.pending("d").unwrap(), 1, "{kind}, {other_handle}");
            let left = s.outbox("d").unwrap();
            assert_eq!(
                left.iter().map(|u| u.seq).collect::<Vec<_>>(),
                [11],
                "{kind}, {other_handle}"
            );
            // A relay holding the 10 it acknowledged takes the edit and holds the text.
            let relay = Store::open_in_memory().unwrap();
            relay.create_doc("d", kind).unwrap();
            relay.apply_remote("d", &sent).unwrap();
            assert_eq!(relay.apply_remote("d", &left).unwrap().applied, 1);
            assert_eq!(relay.get("d", "t").unwrap(), text, "{kind}, {other_handle}");
        }
    }
}

/// Updates typed after the last one read to send are folded all the same (offline typing
/// after a connection dropped keeps the outbox compact), and rebuilt after the sent ones.
#[test]
fn updates_after_those_read_to_send_are_folded_and_follow_them() {
    for kind in [DocKind::Automerge, DocKind::Yrs] {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.db");
        let s = Store::open(&path).unwrap();
        type_text(&s, kind, 5);
        let sent = DeviceLog::outbox_after(&s, "d", 0).unwrap();
        for i in 0..30 {
            s.transact("d", |tx| tx.insert_text("t", 0, &format!("{i}")))
                .unwrap();
        }
        s.compact("d").unwrap();
        let device = s.device_id();
        assert_eq!(
            s.version_vector("d").unwrap().get(&device),
            6,
            "{kind}: 5 kept, 30 folded into one"
        );
        assert_eq!(s.pending("d").unwrap(), 35, "{kind}");
        let out = s.outbox("d").unwrap();
        assert_eq!(
            out.iter().map(|u| u.seq).collect::<Vec<_>>(),
            [1, 2, 3, 4, 5, 6]
        );
        assert_eq!(out[..5], sent[..], "{kind}");
        let relay = Store::open_in_memory().unwrap();
        relay.create_doc("d", kind).unwrap();
        relay.apply_remote("d", &out).unwrap();
        assert_eq!(
            relay.get("d", "t").unwrap(),
            s.get("d", "t").unwrap(),
            "{kind}"
        );
    }
}

/// An edit made while the outbox is folded (typed offline, the store closed, reopened and
/// typed in again) comes after the folded ones: the outbox lists them in sequence (it
/// listed the new edit first, and a relay refuses `[2, 1]` as a gap, or a catch-up sent
/// only seq 1 and stalled).
#[test]
fn an_edit_after_a_fold_follows_the_folded_updates_in_the_outbox() {
    for kind in [DocKind::Automerge, DocKind::Yrs] {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.db");
        let s = Store::open(&path).unwrap();
        type_text(&s, kind, 20);
        s.compact("d").unwrap();
        drop(s);
        let s = Store::open(&path).unwrap();
        s.transact("d", |tx| tx.insert_text("t", 0, ">")).unwrap();
        let out = s.outbox("d").unwrap();
        let seqs: Vec<u64> = out.iter().map(|u| u.seq).collect();
        assert_eq!(seqs, [1, 2], "{kind}");
        let peer = Store::open_in_memory().unwrap();
        peer.create_doc("d", kind).unwrap();
        let applied = peer.apply_remote("d", &out).unwrap();
        assert_eq!((applied.applied, applied.gap), (2, None), "{kind}");
        assert_eq!(
            peer.get("d", "t").unwrap(),
            s.get("d", "t").unwrap(),
            "{kind}"
        );
    }
}

/// Folded local updates are rebuilt, exact and in sequence, before they are sent: a peer
/// that applies what the outbox gives (as a relay would) holds every edit, and later
/// commits continue the sequence.
#[test]
fn a_folded_outbox_is_rebuilt_in_sequence_and_syncs() {
    for kind in [DocKind::Automerge, DocKind::Yrs] {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.db");
        let s = Store::open(&path).unwrap();
        type_text(&s, kind, 50);
        let device = s.device_id();
        assert_eq!(s.version_vector("d").unwrap().get(&device), 50);
        let rows_before = db_stats(&path).1;
        s.compact("d").unwrap();
        assert_eq!(db_stats(&path), (0, 0, 0), "{kind}: no row per keystroke");
        assert!(rows_before >= 50);
        assert_eq!(
            s.version_vector("d").unwrap().get(&device),
            1,
            "{kind}: renumbered"
        );
        assert_eq!(
            s.pending("d").unwrap(),
            50,
            "{kind}: edits not yet acknowledged"
        );
        drop(s);

        let s = Store::open(&path).unwrap();
        let out = s.outbox("d").unwrap();
        assert_eq!(out.len(), 1, "{kind}");
        assert_eq!((out[0].origin.clone(), out[0].seq), (device.clone(), 1));
        assert_eq!(
            s.outbox("d").unwrap(),
            out,
            "{kind}: rebuilt once, then exact"
        );
        let peer = Store::open_in_memory().unwrap();
        peer.create_doc("d", kind).unwrap();
        assert_eq!(peer.apply_remote("d", &out).unwrap().applied, 1);
        assert_eq!(
            peer.get("d", "t").unwrap(),
            s.get("d", "t").unwrap(),
            "{kind}"
        );

        s.transact("d", |tx| tx.insert_text("t", 0, "new "))
            .unwrap();
        let out = s.outbox("d").unwrap();
        assert_eq!(out.iter().map(|r| r.seq).collect::<Vec<_>>(), vec![1, 2]);
        let applied = peer.apply_remote("d", &out).unwrap();
        assert_eq!((applied.applied, applied.duplicates), (1, 1), "{kind}");
        assert_eq!(
            peer.get("d", "t").unwrap(),
            s.get("d", "t").unwrap(),
            "{kind}"
        );
        s.acknowledge("d", &device, 2).unwrap();
        assert_eq!(s.pending("d").unwrap(), 0);
    }
}

/// A new store at `path` that folds from 4 unsent rows, where a fold of `commits` rows (of
/// any number when `None`) cannot write its record: a trigger stands in for a full disk.
/// Made before any edit: another connection's commit after them would make the store
/// reload its documents.
fn store_whose_fold_fails(path: &Path, commits: Option<u32>) -> (Store, StoreOptions) {
    let options = StoreOptions {
        fold_outbox_at: 4,
        ..Default::default()
    };
    let store = Store::open_with(path, options.clone()).unwrap();
    let when = commits
        .map(|n| format!("WHEN NEW.commits = {n}"))
        .unwrap_or_default();
    Connection::open(path)
        .unwrap()
        .execute_batch(&format!(
            "CREATE TRIGGER no_fold BEFORE INSERT ON outbox_fold {when}
             BEGIN SELECT RAISE(ABORT, 'disk full'); END;"
        ))
        .unwrap();
    (store, options)
}

#[test]
fn a_fold_that_fails_half_way_commits_nothing() {
    // The fold's record cannot be written (a trigger stands in for a full disk): its
    // deletions of the unsent rows must not be committed without it, on compaction or on
    // close, or those edits would never be sent.
    for kind in [DocKind::Automerge, DocKind::Yrs] {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.db");
        let (s, options) = store_whose_fold_fails(&path, None);
        type_text(&s, kind, 30);
        let text = s.get("d", "t").unwrap();
        assert!(s.compact("d").is_err(), "{kind}");
        assert_eq!(s.pending("d").unwrap(), 30, "{kind}");
        assert_eq!(s.outbox("d").unwrap().len(), 30, "{kind}");
        s.transact("d", |tx| tx.insert_text("t", 0, "y")).unwrap();
        drop(s); // closing tries to fold again

        let s = Store::open_with(&path, options).unwrap();
        let out = s.outbox("d").unwrap();
        assert_eq!(
            out.iter().map(|r| r.seq).collect::<Vec<_>>(),
            (1..=31).collect::<Vec<u64>>(),
            "{kind}: every unsent edit is still there to send"
        );
        let peer = Store::open_in_memory().unwrap();
        peer.create_doc("d", kind).unwrap();
        assert_eq!(peer.apply_remote("d", &out).unwrap().applied, 31);
        let typed = format!("y{}", text.unwrap().as_str().unwrap());
        assert_eq!(peer.get("d", "t").unwrap(), Some(typed.into()), "{kind}");
    }
}

#[test]
fn a_failed_compaction_leaves_nothing_stale_for_the_close_after_it() {
    // The compaction's checkpoint was rolled back with it: had the document stayed cached
    // as the checkpoint left it (tail 0), closing would skip the checkpoint and fold the
    // unsent rows away, their edits in no checkpoint.
    for kind in [DocKind::Automerge, DocKind::Yrs] {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.db");
        // Only a fold of all 30 fails.
        let (s, options) = store_whose_fold_fails(&path, Some(30));
        type_text(&s, kind, 30);
        let text = s.get("d", "t").unwrap();
        assert!(s.compact("d").is_err(), "{kind}");
        let device = s.device_id();
        assert_eq!(s.acknowledge("d", &device, 1).unwrap(), 1);
        drop(s); // closing checkpoints and folds the other 29

        let s = Store::open_with(&path, options).unwrap();
        assert_eq!(s.get("d", "t").unwrap(), text, "{kind}");
        assert_eq!(s.pending("d").unwrap(), 29, "{kind}");
        let peer = Store::open_in_memory().unwrap();
        peer.create_doc("d", kind).unwrap();
        // The acknowledged first edit from the relay, the other 29 from the outbox.
        let all = s.updates_missing_from("d", &Default::default()).unwrap();
        assert_eq!(all.len(), 30, "{kind}");
        assert_eq!(peer.apply_remote("d", &all).unwrap().applied, 30);
        assert_eq!(peer.get("d", "t").unwrap(), text, "{kind}");
    }
}

#[test]
fn compaction_after_acknowledgement_gives_the_disk_back() {
    for kind in [DocKind::Automerge, DocKind::Yrs] {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.db");
        let s = Store::open(&path).unwrap();
        type_text(&s, kind, 2000);
        assert_eq!(s.outbox("d").unwrap().len(), 2000);
        let before = fs::metadata(&path).unwrap().len();
        // Compaction folds what is still to send; sending rebuilds it.
        s.compact("d").unwrap();
        let outbox = s.outbox("d").unwrap();
        assert_eq!(outbox.len(), 1, "{kind}");
        assert_eq!(db_stats(&path).1, 1, "{kind}");
        s.acknowledge("d", &s.device_id(), outbox[0].seq).unwrap();
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

#[test]
fn a_remote_batch_due_a_checkpoint_is_kept_in_it_across_reopening() {
    for kind in [DocKind::Automerge, DocKind::Yrs] {
        let dir = tempfile::tempdir().unwrap();
        let writer = Store::open(dir.path().join("w.db")).unwrap();
        type_text(&writer, kind, 300);
        let updates = writer.outbox("d").unwrap();
        let path = dir.path().join("a.db");
        let options = StoreOptions {
            checkpoint_every: 1_000_000,
            checkpoint_min_bytes: 4096,
            ..Default::default()
        };
        let s = Store::open_with(&path, options.clone()).unwrap();
        s.create_doc("d", kind).unwrap();
        // A small batch stays in the log; a big one is due a checkpoint, which holds it.
        s.apply_remote("d", &updates[..2]).unwrap();
        let (tail, rows, _) = db_stats(&path);
        assert_eq!((tail, rows), (2, 2), "{kind}: a short tail is logged");
        s.apply_remote("d", &updates[2..]).unwrap();
        let (tail, rows, outbox) = db_stats(&path);
        assert_eq!(
            (tail, rows, outbox),
            (0, 0, 0),
            "{kind}: all in the checkpoint"
        );
        drop(s);
        let s = Store::open_with(&path, options).unwrap();
        assert_eq!(s.text_len("d", "t").unwrap(), 300, "{kind}");
        assert_eq!(
            s.version_vector("d").unwrap(),
            writer.version_vector("d").unwrap()
        );
        // What the checkpoint holds is known as held: a resend is a duplicate.
        let again = s.apply_remote("d", &updates[100..110]).unwrap();
        assert_eq!((again.applied, again.duplicates), (0, 10), "{kind}");
    }
}

#[test]
fn a_new_stores_schema_is_kept_without_layout_whitespace() {
    // SQLite keeps each CREATE statement's text in the file: indented, it took a 1 KiB
    // page more of every store (4 against 3), next to documents of a few KiB.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("new.db");
    drop(Store::open(&path).unwrap());
    let conn = Connection::open(&path).unwrap();
    let (statements, loose): (i64, i64) = conn
        .query_row(
            "SELECT COUNT(*), SUM(sql LIKE '%  %' OR instr(sql, char(10)) > 0 OR sql LIKE '%( %')
             FROM sqlite_master WHERE sql IS NOT NULL",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert!(statements >= 10, "{statements} statements");
    assert_eq!(loose, 0, "statements with layout whitespace");
}

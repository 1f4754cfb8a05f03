//! Tests of the relay storage: catch-up snapshots, reopening, refused batches, databases
//! written by earlier versions, corrupt stored data.

use super::*;
use concord_core::sync::CatchupData;
use concord_core::Store;
use concord_core::{CrdtDoc, UpdateRecord};
use std::path::Path;

/// `n` updates of one document made by a real device store.
fn device_updates(kind: DocKind, n: usize) -> (Store, Vec<UpdateRecord>) {
    let store = Store::open_in_memory().unwrap();
    store.create_doc("d", kind).unwrap();
    for i in 0..n {
        store
            .transact("d", |tx| tx.insert_text("text", 0, &format!("{}", i % 10)))
            .unwrap();
    }
    let updates = store.outbox("d").unwrap();
    (store, updates)
}

fn append_all(storage: &mut Storage, kind: DocKind, updates: &[UpdateRecord]) {
    let mut entries = vec![LogEntry::CreateDoc {
        doc_id: "d".into(),
        kind,
    }];
    entries.extend(updates.iter().map(|u| LogEntry::Append {
        doc_id: "d".into(),
        update: u.clone(),
    }));
    // One entry per batch (checkpoints are considered after each batch), then the second
    // half again in one batch: re-applying held updates is a no-op.
    for entry in &entries {
        storage.apply_batch(std::slice::from_ref(entry)).unwrap();
    }
    storage.apply_batch(&entries[entries.len() / 2..]).unwrap();
}

#[test]
fn new_clients_get_a_snapshot_plus_tail_that_rebuilds_the_document() {
    for kind in [DocKind::Automerge, DocKind::Yrs] {
        let dir = tempfile::tempdir().unwrap();
        let (device, updates) = device_updates(kind, 100);
        let mut storage = Storage::open(&dir.path().join("s.db"), 30).unwrap();
        append_all(&mut storage, kind, &updates);
        let head = storage.head("d").unwrap().clone();
        assert_eq!(head.version.get(&device.device_id()), 100);

        let fresh = storage.catchup("d", &VersionVector::new()).unwrap();
        let snapshot = fresh.snapshot.expect("a new client gets the snapshot");
        assert_eq!(
            snapshot.covers.get(&device.device_id()),
            90,
            "checkpoints every 30"
        );
        assert_eq!(
            fresh.updates.iter().map(|u| u.seq).collect::<Vec<_>>(),
            (91..=100).collect::<Vec<_>>()
        );
        let mut rebuilt = CrdtDoc::load(kind, &snapshot.data).unwrap();
        for u in &fresh.updates {
            rebuilt.apply_update(&u.data).unwrap();
        }
        assert_eq!(rebuilt.to_json(), device.to_json("d").unwrap(), "{kind}");

        // A client that lacks only a few gets exactly those, no snapshot.
        let mut almost: VersionVector = VersionVector::new();
        almost.set(device.device_id(), 97);
        let few = storage.catchup("d", &almost).unwrap();
        assert!(few.snapshot.is_none());
        assert_eq!(
            few.updates.iter().map(|u| u.seq).collect::<Vec<_>>(),
            vec![98, 99, 100]
        );

        // Reopening reads the same heads back.
        drop(storage);
        let reopened = Storage::open(&dir.path().join("s.db"), 30).unwrap();
        assert_eq!(reopened.head("d").unwrap().version, head.version);
    }
}

#[test]
fn reopening_reads_every_documents_vector_and_tail_back() {
    // Document "x" takes two devices' updates and passes its checkpoint interval, "y" one
    // device's and stays under it, "z" none; batches mix the documents.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.db");
    let (one, from_one) = device_updates(DocKind::Yrs, 45);
    let (two, from_two) = device_updates(DocKind::Yrs, 7);
    let append = |doc: &str, u: &UpdateRecord| LogEntry::Append {
        doc_id: doc.into(),
        update: u.clone(),
    };
    let mut entries: Vec<LogEntry> = ["x", "y", "z"]
        .iter()
        .map(|doc| LogEntry::CreateDoc {
            doc_id: doc.to_string(),
            kind: DocKind::Yrs,
        })
        .collect();
    for (i, u) in from_one.iter().enumerate() {
        entries.push(append("x", u));
        if let Some(u) = from_two.get(i) {
            entries.push(append("x", u));
            entries.push(append("y", u));
        }
    }
    let mut storage = Storage::open(&path, 20).unwrap();
    for batch in entries.chunks(5) {
        storage.apply_batch(batch).unwrap();
    }
    let heads: Vec<DocState> = ["x", "y", "z"]
        .iter()
        .map(|doc| storage.head(doc).unwrap().clone())
        .collect();
    let (one, two) = (one.device_id(), two.device_id());
    assert_eq!(
        (heads[0].version.get(&one), heads[0].version.get(&two)),
        (45, 7)
    );
    assert!(
        heads[0].tail > 0 && heads[0].tail < 20,
        "x took checkpoints and has a tail: {}",
        heads[0].tail
    );
    assert_eq!((heads[1].version.get(&two), heads[1].tail), (7, 7));
    assert!(heads[2].version.is_empty() && heads[2].tail == 0);

    drop(storage);
    let reopened = Storage::open(&path, 20).unwrap();
    for (doc, head) in ["x", "y", "z"].iter().zip(&heads) {
        let back = reopened.head(doc).unwrap();
        assert_eq!(
            (&back.kind, &back.version, back.tail),
            (&head.kind, &head.version, head.tail),
            "{doc}"
        );
    }
}

#[test]
fn a_batch_with_a_gap_is_rejected_whole() {
    let dir = tempfile::tempdir().unwrap();
    let (_device, updates) = device_updates(DocKind::Yrs, 3);
    let mut storage = Storage::open(&dir.path().join("s.db"), 30).unwrap();
    storage
        .apply_batch(&[LogEntry::CreateDoc {
            doc_id: "d".into(),
            kind: DocKind::Yrs,
        }])
        .unwrap();
    let batch: Vec<_> = [&updates[0], &updates[2]]
        .iter()
        .map(|u| LogEntry::Append {
            doc_id: "d".into(),
            update: (*u).clone(),
        })
        .collect();
    assert!(storage.apply_batch(&batch).is_err());
    assert!(storage.head("d").unwrap().version.is_empty());
    assert!(storage
        .stored_update("d", &updates[0].origin, 1)
        .unwrap()
        .is_none());

    // A failed batch that created a document and advanced another leaves neither in memory.
    let origin = updates[0].origin.clone();
    let good = |u: &UpdateRecord| LogEntry::Append {
        doc_id: "d".into(),
        update: u.clone(),
    };
    storage.apply_batch(&[good(&updates[0])]).unwrap();
    let failing = [
        LogEntry::CreateDoc {
            doc_id: "e".into(),
            kind: DocKind::Yrs,
        },
        good(&updates[1]),
        LogEntry::Append {
            doc_id: "nope".into(),
            update: updates[2].clone(),
        },
    ];
    assert!(storage.apply_batch(&failing).is_err());
    assert!(
        storage.head("e").is_none(),
        "the created document is undone"
    );
    let head = storage.head("d").unwrap();
    assert_eq!((head.version.get(&origin), head.tail), (1, 1));
    // And the next batch starts from there, in memory and on disk.
    storage
        .apply_batch(&[good(&updates[1]), good(&updates[2])])
        .unwrap();
    let head = storage.head("d").unwrap().clone();
    assert_eq!((head.version.get(&origin), head.tail), (3, 3));
    drop(storage);
    let reopened = Storage::open(&dir.path().join("s.db"), 30).unwrap();
    let back = reopened.head("d").unwrap();
    assert_eq!((&back.version, back.tail), (&head.version, head.tail));
    assert!(reopened.head("e").is_none());
}

#[test]
fn apply_is_deterministic_records_the_last_position_and_skips_replays() {
    let (_device, updates) = device_updates(DocKind::Yrs, 3);
    let entries: Vec<Entry> = std::iter::once(LogEntry::CreateDoc {
        doc_id: "d".into(),
        kind: DocKind::Yrs,
    })
    .chain(updates.iter().map(|u| LogEntry::Append {
        doc_id: "d".into(),
        update: u.clone(),
    }))
    .zip(1..)
    .map(|(payload, index)| Entry { index, payload })
    .collect();
    let dir = tempfile::tempdir().unwrap();
    let mut leader = Storage::open(&dir.path().join("leader.db"), 2).unwrap();
    let mut follower = Storage::open(&dir.path().join("follower.db"), 2).unwrap();
    let outcomes = leader.apply(&entries).unwrap();
    assert_eq!(
        outcomes[0],
        ApplyOutcome::Created {
            doc_id: "d".into(),
            kind: DocKind::Yrs
        }
    );
    assert_eq!(
        outcomes[3],
        ApplyOutcome::Appended {
            doc_id: "d".into(),
            update: updates[2].clone()
        }
    );
    // The same entries, split differently, give the same outcomes and state.
    let mut split = follower.apply(&entries[..2]).unwrap();
    split.extend(follower.apply(&entries[2..]).unwrap());
    assert_eq!(split, outcomes);
    assert_eq!(
        follower.head("d").unwrap().version,
        leader.head("d").unwrap().version
    );
    assert_eq!(
        follower.catchup("d", &VersionVector::new()).unwrap(),
        leader.catchup("d", &VersionVector::new()).unwrap()
    );
    // Replayed entries change nothing; the position survives a reopen.
    assert_eq!(
        leader.apply(&entries[1..]).unwrap(),
        vec![ApplyOutcome::Unchanged; 3]
    );
    assert_eq!(leader.last_applied(), 4);
    drop(leader);
    let reopened = Storage::open(&dir.path().join("leader.db"), 2).unwrap();
    assert_eq!(reopened.last_applied(), 4);
    // A position past the next one is refused and changes nothing.
    let mut gap = Storage::open(&dir.path().join("gap.db"), 2).unwrap();
    assert!(gap.apply(&entries[1..2]).is_err());
    assert_eq!(gap.last_applied(), 0);
}

/// The relay's tables as written before migrations were numbered (schema version 1), with
/// its own column order (`snapshot_vv` before `snapshot_upto`).
const OLD_LOG_TABLES: &str = "
    CREATE TABLE docs (id TEXT PRIMARY KEY, kind TEXT NOT NULL, vv BLOB NOT NULL,
        snapshot BLOB, snapshot_vv BLOB, snapshot_upto INTEGER NOT NULL DEFAULT 0,
        tail INTEGER NOT NULL DEFAULT 0);
    CREATE TABLE updates (idx INTEGER PRIMARY KEY AUTOINCREMENT, doc_id TEXT NOT NULL,
        origin TEXT NOT NULL, seq INTEGER NOT NULL, data BLOB NOT NULL,
        UNIQUE (doc_id, origin, seq));
    CREATE INDEX updates_by_doc ON updates (doc_id, idx);";

#[test]
fn a_database_of_schema_version_1_is_migrated() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("old.db");
    {
        // The schema as written before migrations were numbered.
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.execute_batch(&format!("{OLD_LOG_TABLES} PRAGMA user_version = 1;"))
            .unwrap();
        conn.execute(
            "INSERT INTO docs (id, kind, vv) VALUES ('old', 'yrs', ?1)",
            [postcard::to_allocvec(&VersionVector::new()).unwrap()],
        )
        .unwrap();
    }
    let mut storage = Storage::open(&path, 30).unwrap();
    assert_eq!(storage.head("old").unwrap().kind, DocKind::Yrs);
    assert_eq!(storage.last_applied(), 0);
    storage
        .apply_batch(&[LogEntry::CreateDoc {
            doc_id: "new".into(),
            kind: DocKind::Automerge,
        }])
        .unwrap();
    drop(storage);
    let conn = rusqlite::Connection::open(&path).unwrap();
    let version: i64 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap();
    assert_eq!(version, SCHEMA_VERSION);
    assert_eq!(Storage::open(&path, 30).unwrap().last_applied(), 1);
}

/// Creates `path` as the relay wrote it before it used core's update log (schema version
/// `user_version`: 0 before migrations were numbered, or 2 with the `applied` table;
/// `snapshot_vv` between `snapshot` and `snapshot_upto`, version vectors as postcard
/// bytes), holding document "d" with `updates` and a checkpoint after the first
/// `checkpointed` of them.
fn write_old_database(
    path: &Path,
    user_version: i64,
    kind: DocKind,
    updates: &[UpdateRecord],
    checkpointed: usize,
) {
    let conn = rusqlite::Connection::open(path).unwrap();
    let applied = match user_version {
        0 => String::new(),
        _ => format!(
            "CREATE TABLE applied (id INTEGER PRIMARY KEY CHECK (id = 0),
                last_index INTEGER NOT NULL);
             INSERT INTO applied (id, last_index) VALUES (0, {});",
            updates.len() + 1
        ),
    };
    conn.execute_batch(&format!(
        "{OLD_LOG_TABLES} {applied} PRAGMA user_version = {user_version};"
    ))
    .unwrap();
    let version_after = |n: usize| {
        let mut vv = VersionVector::new();
        for u in &updates[..n] {
            vv.advance(&u.origin, u.seq);
        }
        postcard::to_allocvec(&vv).unwrap()
    };
    let mut saved = CrdtDoc::new(kind);
    for u in &updates[..checkpointed] {
        saved.apply_update(&u.data).unwrap();
    }
    conn.execute(
        "INSERT INTO docs (id, kind, vv, snapshot, snapshot_vv, snapshot_upto, tail)
         VALUES ('d', ?1, ?2, ?3, ?4, ?5, ?6)",
        rusqlite::params![
            kind.as_str(),
            version_after(updates.len()),
            saved.save(),
            version_after(checkpointed),
            checkpointed as i64,
            (updates.len() - checkpointed) as i64
        ],
    )
    .unwrap();
    for u in updates {
        conn.execute(
            "INSERT INTO updates (doc_id, origin, seq, data) VALUES ('d', ?1, ?2, ?3)",
            rusqlite::params![u.origin.as_str(), u.seq as i64, u.data],
        )
        .unwrap();
    }
}

#[test]
fn a_database_written_by_the_previous_relay_opens_and_serves() {
    // Version 2 as numbered, and version 0: written before migrations were numbered.
    for user_version in [2, 0] {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("old.db");
        let (device, updates) = device_updates(DocKind::Yrs, 100);
        write_old_database(&path, user_version, DocKind::Yrs, &updates[..80], 70);
        let mut storage = Storage::open(&path, 30).unwrap();
        let last_applied = if user_version == 0 { 0 } else { 81 };
        assert_eq!(storage.last_applied(), last_applied);
        assert_eq!(
            storage.head("d").unwrap().version.get(&device.device_id()),
            80
        );

        let checked = |path: &Path| -> i64 {
            rusqlite::Connection::open(path)
                .unwrap()
                .query_row(
                    "SELECT checked FROM checkpoints WHERE doc_id = 'd'",
                    [],
                    |r| r.get(0),
                )
                .unwrap()
        };
        assert_eq!(checked(&path), 0, "an old checkpoint is not marked");
        let fresh = storage.catchup("d", &VersionVector::new()).unwrap();
        let snapshot = fresh
            .snapshot
            .expect("a new client gets the old checkpoint");
        assert_eq!(snapshot.covers.get(&device.device_id()), 70);
        assert_eq!(
            fresh.updates.iter().map(|u| u.seq).collect::<Vec<_>>(),
            (71..=80).collect::<Vec<_>>()
        );

        // Appending to it works, and takes the next checkpoint (tail 10 + 20 reaches 30).
        for u in &updates[80..] {
            storage.integrate("d", u).unwrap();
        }
        storage
            .apply_batch(
                &updates[80..]
                    .iter()
                    .map(|u| LogEntry::Append {
                        doc_id: "d".into(),
                        update: u.clone(),
                    })
                    .collect::<Vec<_>>(),
            )
            .unwrap();
        drop(storage);
        assert_eq!(checked(&path), 1, "the checkpoint taken since is marked");
        let reopened = Storage::open(&path, 30).unwrap();
        let fresh = reopened.catchup("d", &VersionVector::new()).unwrap();
        let snapshot = fresh.snapshot.expect("a checkpoint covers everything");
        assert_eq!(snapshot.covers.get(&device.device_id()), 100);
        assert!(fresh.updates.is_empty());
        let rebuilt = CrdtDoc::load(DocKind::Yrs, &snapshot.data).unwrap();
        assert_eq!(rebuilt.to_json(), device.to_json("d").unwrap());
    }
}

#[test]
fn corrupt_stored_data_is_a_storage_failure_not_a_refused_update() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.db");
    let (_device, updates) = device_updates(DocKind::Yrs, 40);
    let mut storage = Storage::open(&path, 30).unwrap();
    append_all(&mut storage, DocKind::Yrs, &updates[..35]);
    drop(storage);
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.execute(
        "UPDATE checkpoints SET state = x'00ff00ff' WHERE doc_id = 'd'",
        [],
    )
    .unwrap();
    // A checkpoint that no longer loads: the update is not the client's fault.
    let mut storage = Storage::open(&path, 30).unwrap();
    let e = storage.integrate("d", &updates[35]).unwrap_err();
    assert!(matches!(e, StorageError::Corrupt(_)), "{e:?}");
    drop(storage);
    // A version vector that does not decode.
    conn.execute("UPDATE docs SET vv = x'ff' WHERE id = 'd'", [])
        .unwrap();
    let e = Storage::open(&path, 30)
        .err()
        .expect("the head does not decode");
    assert!(matches!(e, StorageError::Corrupt(_)), "{e:?}");
}

/// The document a new client holds after a catch-up: its snapshot, then its updates.
fn rebuilt(kind: DocKind, catchup: &CatchupData) -> serde_json::Value {
    let snapshot = catchup.snapshot.as_ref().expect("a catch-up snapshot");
    let mut doc = CrdtDoc::load(kind, &snapshot.data).unwrap();
    for u in &catchup.updates {
        doc.apply_update(&u.data).unwrap();
    }
    doc.to_json()
}

/// The node that validates writes keeps validated updates in its in-memory copy until they
/// are applied (so the next validation sees them). A checkpoint taken meanwhile, from other
/// updates' apply, must hold only what is committed: a catch-up snapshot made from it must
/// not show a write that may never commit (a leader can lose it with its leadership).
#[test]
fn a_checkpoint_never_holds_a_validated_update_that_is_not_applied() {
    for kind in [DocKind::Automerge, DocKind::Yrs] {
        let dir = tempfile::tempdir().unwrap();
        let (writer, updates) = device_updates(kind, 4);
        // Another device's edit, made on top of the first three updates.
        let other = Store::open_in_memory().unwrap();
        other.create_doc("d", kind).unwrap();
        for u in &updates[..3] {
            other.apply_remote("d", std::slice::from_ref(u)).unwrap();
        }
        other
            .transact("d", |tx| tx.insert_text("text", 0, "uncommitted"))
            .unwrap();
        let pending = other.outbox("d").unwrap();
        assert_eq!(pending.len(), 1);

        let mut storage = Storage::open(&dir.path().join("s.db"), 4).unwrap();
        let mut entries = vec![LogEntry::CreateDoc {
            doc_id: "d".into(),
            kind,
        }];
        entries.extend(updates[..3].iter().map(|u| LogEntry::Append {
            doc_id: "d".into(),
            update: u.clone(),
        }));
        storage.apply_batch(&entries).unwrap();
        // Validated (integrated into the in-memory copy), proposed, not applied.
        storage.integrate("d", &pending[0]).unwrap();
        // The writer's fourth update commits and takes the tail to the checkpoint bound.
        storage
            .apply_batch(&[LogEntry::Append {
                doc_id: "d".into(),
                update: updates[3].clone(),
            }])
            .unwrap();
        let fresh = storage.catchup("d", &VersionVector::new()).unwrap();
        let snapshot = fresh.snapshot.as_ref().expect("a checkpoint was taken");
        assert_eq!(snapshot.covers.get(&writer.device_id()), 4, "{kind}");
        assert_eq!(
            rebuilt(kind, &fresh),
            writer.to_json("d").unwrap(),
            "{kind}: the snapshot holds exactly the committed updates"
        );
        // Reopened, the document is the committed one too.
        drop(storage);
        let mut reopened = Storage::open(&dir.path().join("s.db"), 4).unwrap();
        let again = reopened.catchup("d", &VersionVector::new()).unwrap();
        assert_eq!(
            rebuilt(kind, &again),
            writer.to_json("d").unwrap(),
            "{kind}"
        );
        // Once the validated update commits, it is there like any other.
        reopened.integrate("d", &pending[0]).unwrap();
        reopened
            .apply_batch(&[LogEntry::Append {
                doc_id: "d".into(),
                update: pending[0].clone(),
            }])
            .unwrap();
        let last = reopened.catchup("d", &VersionVector::new()).unwrap();
        other.apply_remote("d", &updates[3..]).unwrap();
        assert_eq!(rebuilt(kind, &last), other.to_json("d").unwrap(), "{kind}");
    }
}

/// A relay database at `path` holding document "d" of `kind` with `updates`, closed.
fn stored(path: &Path, checkpoint_every: u64, kind: DocKind, updates: &[UpdateRecord]) {
    let mut storage = Storage::open(path, checkpoint_every).unwrap();
    append_all(&mut storage, kind, updates);
}

/// Marks the database at `path` as written by a newer relay; returns its version.
fn mark_newer(path: &Path) -> i64 {
    let newer = schema::SCHEMA_VERSION + 1;
    rusqlite::Connection::open(path)
        .unwrap()
        .pragma_update(None, "user_version", newer)
        .unwrap();
    newer
}

#[test]
fn a_database_written_by_a_newer_relay_is_refused_and_left_as_it_was() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("newer.db");
    stored(
        &path,
        30,
        DocKind::Automerge,
        &device_updates(DocKind::Automerge, 5).1,
    );
    let newer = mark_newer(&path);
    let before = std::fs::read(&path).unwrap();
    let Err(e) = Storage::open(&path, 30) else {
        panic!("a newer file opened");
    };
    assert!(
        matches!(e, StorageError::SchemaTooNew { found, supported }
            if found == newer && supported == schema::SCHEMA_VERSION),
        "{e:?}"
    );
    assert!(e.chain().contains("newer than this relay"), "{}", e.chain());
    assert_eq!(
        std::fs::read(&path).unwrap(),
        before,
        "the file is unchanged"
    );
}

#[test]
fn a_copy_of_a_newer_schema_is_refused_before_anything_is_replaced() {
    let dir = tempfile::tempdir().unwrap();
    let (_device, updates) = device_updates(DocKind::Yrs, 5);
    let mut node = Storage::open(&dir.path().join("node.db"), 30).unwrap();
    append_all(&mut node, DocKind::Yrs, &updates);
    let digest = node.digest().unwrap();
    let copy = dir.path().join("copy.db");
    {
        let mut other = Storage::open(&dir.path().join("other.db"), 30).unwrap();
        append_all(
            &mut other,
            DocKind::Automerge,
            &device_updates(DocKind::Automerge, 3).1,
        );
        other.copy_to(&copy).unwrap();
    }
    mark_newer(&copy);
    let e = node.restore_from(&copy).unwrap_err();
    assert!(matches!(e, StorageError::SchemaTooNew { .. }), "{e:?}");
    assert_eq!(
        node.digest().unwrap(),
        digest,
        "the node's content is as it was"
    );
    drop(node);
    let reopened = Storage::open(&dir.path().join("node.db"), 30).unwrap();
    assert_eq!(reopened.digest().unwrap(), digest);
}

#[test]
fn relay_checkpoints_record_the_yrs_root_types_and_that_they_walk_clean() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.db");
    let (device, updates) = device_updates(DocKind::Yrs, 40);
    stored(&path, 10, DocKind::Yrs, &updates);
    let (roots, checked): (Option<String>, i64) = rusqlite::Connection::open(&path)
        .unwrap()
        .query_row(
            "SELECT roots, checked FROM checkpoints WHERE doc_id = 'd'",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!(roots.as_deref(), Some(r#"{"text":"text"}"#));
    assert_eq!(checked, 1, "marked as walking clean");
    // Reopened, the relay loads that checkpoint and still serves the document whole.
    let storage = Storage::open(&path, 10).unwrap();
    let catchup = storage.catchup("d", &VersionVector::new()).unwrap();
    assert_eq!(
        rebuilt(DocKind::Yrs, &catchup),
        device.to_json("d").unwrap()
    );
}

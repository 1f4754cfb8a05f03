//! The shared update log on its own, the way the relay storage uses it: a `docs` table
//! built from the shared columns, the shared `updates` and `checkpoints` tables, and no
//! outbox.

use concord_core::log::{self, schema, Keep};
use concord_core::{DocKind, Origin, Store, UpdateRecord, VersionVector};
use rusqlite::Connection;

fn relay_like_db() -> Connection {
    let conn = Connection::open_in_memory().unwrap();
    conn.execute_batch(&format!(
        "CREATE TABLE docs (id TEXT PRIMARY KEY, {}); {} {}",
        schema::DOC_LOG_COLUMNS,
        schema::UPDATES_TABLE,
        schema::CHECKPOINTS_TABLE,
    ))
    .unwrap();
    schema::add_checkpoint_roots(&conn).unwrap();
    schema::add_version_index(&conn).unwrap();
    schema::add_checkpoint_checked(&conn).unwrap();
    conn
}

/// `n` updates of one document, made by a real device store.
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

#[test]
fn appended_updates_load_back_before_and_after_a_pruning_checkpoint() {
    for kind in [DocKind::Automerge, DocKind::Yrs] {
        let (device, updates) = device_updates(kind, 12);
        let mut conn = relay_like_db();
        log::create_doc(&conn, "d", kind).unwrap();

        // A batch with a resend and a gap: only the contiguous new ones are appended.
        let mut batch = updates[..8].to_vec();
        batch.insert(3, updates[1].clone());
        batch.push(updates[10].clone());
        let mut version = VersionVector::new();
        let admitted = log::admit(&mut version, &batch);
        assert_eq!((admitted.new.len(), admitted.held), (8, 1));
        assert_eq!(admitted.gap, Some((device.device_id(), 11)));
        let tx = conn.transaction().unwrap();
        for record in &admitted.new {
            log::append(&tx, "d", record).unwrap();
        }
        // Appending is all it takes: the logged updates advance the stored version vector.
        tx.commit().unwrap();

        let loaded = log::load(&conn, "d").unwrap().expect("the doc exists");
        assert_eq!(loaded.head.version, version);
        assert_eq!((loaded.head.tail, loaded.head.checkpoint_upto), (8, 0));
        assert_eq!(loaded.last_index, log::last_index(&conn, "d").unwrap());
        let mut crdt = loaded.crdt;
        assert!(log::checkpoint_due(8, 8, &mut crdt));

        // Checkpoint and prune everything it covers (a relay keeping no outbox).
        let tx = conn.transaction().unwrap();
        let span = log::write_checkpoint(&tx, "d", kind, &version, &crdt.save(), None).unwrap();
        assert_eq!(span.previous_upto, 0);
        assert_eq!(log::prune(&tx, "d", span, Keep::Nothing).unwrap(), 8);
        for record in &updates[8..] {
            log::append(&tx, "d", record).unwrap();
            assert!(version.advance(&record.origin, record.seq));
        }
        tx.commit().unwrap();

        let reloaded = log::load(&conn, "d").unwrap().unwrap();
        assert_eq!(reloaded.head.checkpoint_upto, span.upto);
        assert_eq!((&reloaded.head.version, reloaded.head.tail), (&version, 4));
        let head = log::read_head(&conn, "d").unwrap().unwrap();
        assert_eq!((&head.version, head.tail), (&version, 4));
        let heads = log::read_heads(&conn).unwrap();
        assert_eq!(heads.len(), 1);
        assert_eq!((&heads[0].1.version, heads[0].1.tail), (&version, 4));
        assert_eq!(
            reloaded.crdt.to_json(),
            device.to_json("d").unwrap(),
            "{kind}"
        );
        let tail = log::missing_from(&conn, "d", 0, &VersionVector::new()).unwrap();
        assert_eq!(
            tail.iter().map(|u| u.seq).collect::<Vec<_>>(),
            vec![9, 10, 11, 12]
        );
        assert_eq!(
            log::stored_update(&conn, "d", &device.device_id(), 12).unwrap(),
            Some(updates[11].data.clone())
        );
        assert_eq!(
            log::stored_update(&conn, "d", &Origin::from("nobody"), 1).unwrap(),
            None
        );
        assert!(log::load(&conn, "missing").unwrap().is_none());
    }
}

/// Whether the checkpoint's row in `conn` is marked as walked clean.
fn marked(conn: &Connection) -> bool {
    conn.query_row(
        "SELECT checked FROM checkpoints WHERE doc_id = 'd'",
        [],
        |r| r.get(0),
    )
    .unwrap()
}

#[test]
fn a_checkpoint_is_marked_checked_only_when_its_own_bytes_walk_clean() {
    let (_device, updates) = device_updates(DocKind::Yrs, 3);
    let mut conn = relay_like_db();
    log::create_doc(&conn, "d", DocKind::Yrs).unwrap();
    let mut version = VersionVector::new();
    let tx = conn.transaction().unwrap();
    for record in &updates {
        log::append(&tx, "d", record).unwrap();
        version.advance(&record.origin, record.seq);
    }
    tx.commit().unwrap();
    let saved = log::load(&conn, "d").unwrap().unwrap().crdt.save();

    let write = |conn: &mut Connection, state: &[u8]| {
        let tx = conn.transaction().unwrap();
        log::write_checkpoint(&tx, "d", DocKind::Yrs, &version, state, None).unwrap();
        tx.commit().unwrap();
    };
    write(&mut conn, &saved);
    assert!(marked(&conn), "the document's own saved state");
    // A value nested past the bound (one item, content Any, 200 nested arrays): stored,
    // but not marked, so loading it walks it and refuses it.
    let mut deep = vec![1, 1, 1, 0, 8, 1, 1, b't', 1];
    deep.extend(std::iter::repeat_n([117u8, 1], 200).flatten());
    deep.extend([126, 0]);
    write(&mut conn, &deep);
    assert!(!marked(&conn));
    assert!(log::load(&conn, "d").is_err());
    // JSON content, which Yrs does not read back as it writes it: not marked either.
    write(
        &mut conn,
        &[1, 1, 1, 0, 2, 1, 1, b't', 0, 3, b'"', b'x', b'"', 0],
    );
    assert!(!marked(&conn));
    write(&mut conn, &saved);
    assert!(marked(&conn));
    let mut reloaded = log::load(&conn, "d").unwrap().unwrap();
    assert_eq!(reloaded.crdt.save(), saved);
}

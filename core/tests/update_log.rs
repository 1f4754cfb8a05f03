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
        let span = log::write_checkpoint(&tx, "d", &version, &crdt.save(), None).unwrap();
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

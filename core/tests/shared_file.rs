//! Several connections (processes) on one store file: opening a current store writes
//! nothing, writers wait for SQLite's write lock instead of failing at once, and a sync
//! session is not held up by updates another process sent.

use std::path::Path;
use std::sync::mpsc;
use std::time::Duration;

use concord_core::protocol::{Catchup, DocList, Message, Welcome, PROTOCOL_VERSION};
use concord_core::sync::{ClientConfig, ClientSession};
use concord_core::{DocKind, Store, VersionVector};
use rusqlite::Connection;
use serde_json::json;

/// `PRAGMA data_version` as seen by `observer`: it changes when any other connection commits.
fn data_version(observer: &Connection) -> i64 {
    observer
        .query_row("PRAGMA data_version", [], |r| r.get(0))
        .unwrap()
}

/// The bytes of the main database file and of its write-ahead log (if any).
fn file_bytes(db: &Path) -> (Vec<u8>, Vec<u8>) {
    let wal = db.with_file_name(format!("{}-wal", db.file_name().unwrap().to_str().unwrap()));
    (
        std::fs::read(db).unwrap(),
        std::fs::read(wal).unwrap_or_default(),
    )
}

#[test]
fn opening_a_current_store_and_reading_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("a.db");
    let device = {
        let store = Store::open(&db).unwrap();
        store.create_doc("d", DocKind::Automerge).unwrap();
        store.transact("d", |tx| tx.put("title", "hi")).unwrap();
        store.device_id()
    };

    // An observer connection stays open throughout, so closing the store below does not
    // checkpoint the log: any commit would show in data_version and in the files' bytes.
    let observer = Connection::open(&db).unwrap();
    let version_before = data_version(&observer);
    let bytes_before = file_bytes(&db);
    {
        let store = Store::open(&db).unwrap();
        assert_eq!(store.device_id(), device);
        assert_eq!(store.get("d", "title").unwrap(), Some(json!("hi")));
        assert_eq!(store.list_docs().unwrap().len(), 1);
        assert_eq!(store.status().unwrap()[0].pending, 1);
        assert_eq!(store.outbox("d").unwrap().len(), 1);
    }
    assert_eq!(
        data_version(&observer),
        version_before,
        "opening and reading committed a write"
    );
    assert!(file_bytes(&db) == bytes_before, "the store file changed");
}

#[test]
fn writers_wait_for_another_connections_write_lock() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("a.db");
    Store::open(&db)
        .unwrap()
        .create_doc("d", DocKind::Automerge)
        .unwrap();

    // Another process holds the write lock for a moment.
    let (locked_tx, locked) = mpsc::channel();
    let holder = {
        let db = db.clone();
        std::thread::spawn(move || {
            let mut conn = Connection::open(&db).unwrap();
            let tx = conn
                .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
                .unwrap();
            tx.execute(
                "INSERT INTO meta (key, value) VALUES ('other', 'process')",
                [],
            )
            .unwrap();
            locked_tx.send(()).unwrap();
            std::thread::sleep(Duration::from_millis(300));
            tx.commit().unwrap();
        })
    };
    locked
        .recv_timeout(Duration::from_secs(10))
        .expect("the other connection takes the lock");

    // Opening, creating and committing all wait for it and succeed.
    let store = Store::open(&db).unwrap();
    store.ensure_doc("e", DocKind::Yrs).unwrap();
    store.transact("d", |tx| tx.increment("n", 1)).unwrap();
    store.create_doc("f", DocKind::Automerge).unwrap();
    store.acknowledge("d", &store.device_id(), 1).unwrap();
    holder.join().unwrap();
    assert_eq!(store.get("d", "n").unwrap(), Some(json!(1)));
    assert_eq!(store.list_docs().unwrap().len(), 3);
}

#[test]
fn a_session_is_synced_when_another_process_had_the_update_acknowledged() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("a.db");
    // Two processes on one store: a one-shot sync, and (say) a `sync --watch`.
    let syncing = Store::open(&db).unwrap();
    let other = Store::open(&db).unwrap();
    syncing.create_doc("d", DocKind::Automerge).unwrap();

    let mut session = ClientSession::new(syncing.clone(), ClientConfig::default());
    session.connected();
    let mut replies = |message| session.handle(message).unwrap();
    replies(Message::Welcome(Welcome {
        protocol_version: PROTOCOL_VERSION,
        server_id: "relay".into(),
        max_frame_bytes: 1 << 20,
    }));
    replies(Message::DocList(DocList { docs: vec![] }));
    replies(Message::Catchup(Catchup {
        doc_id: "d".into(),
        lsn: 0,
        kind: DocKind::Automerge,
        server_version: VersionVector::new(),
        snapshot: None,
    }));
    assert!(session.is_synced());

    // The other process commits an edit, sends it and has it acknowledged before this
    // session looks: nothing is left to send, and no message about it will come here.
    other.transact("d", |tx| tx.put("k", 1)).unwrap();
    other.acknowledge("d", &other.device_id(), 1).unwrap();
    assert_eq!(session.local_change("d").unwrap(), vec![]);
    assert!(
        session.is_synced(),
        "the session waits for an update another process already delivered"
    );
}

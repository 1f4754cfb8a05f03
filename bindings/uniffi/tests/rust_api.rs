//! The binding's API called from Rust (no FFI): typed errors per case, a panic in a merge
//! function as `ConcordError::Panic` with the store still usable, listeners on a background
//! thread, and transactions as one update.

use std::collections::HashMap;
use std::sync::mpsc::{channel, Sender};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use concord_uniffi::{
    ChangeEvent, ChangeListener, ConcordError, ConcurrentValue, DocumentKind, MergeFunction,
    Policy, Store, Value,
};

fn open(dir: &tempfile::TempDir, name: &str) -> Arc<Store> {
    Store::open(dir.path().join(name).to_string_lossy().into_owned()).expect("open")
}

#[test]
fn each_kind_of_bad_input_has_its_own_error() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir, "a.db");
    assert!(matches!(
        store.document("nope".into()),
        Err(ConcordError::NotFound { .. })
    ));
    let doc = store
        .create_document("d".into(), DocumentKind::Yrs)
        .unwrap();
    let again = store.create_document("d".into(), DocumentKind::Yrs);
    assert!(matches!(again, Err(ConcordError::AlreadyExists { .. })));
    let bad_path = doc.put("a//b".into(), Value::Int { value: 1 });
    assert!(
        matches!(bad_path, Err(ConcordError::BadPath { .. })),
        "{bad_path:?}"
    );
    let counter = doc.increment("meta/n".into(), 1);
    assert!(
        matches!(counter, Err(ConcordError::WrongKind { .. })),
        "{counter:?}"
    );
    let json = doc.put_json("meta/x".into(), "{nope".into());
    assert!(matches!(json, Err(ConcordError::InvalidValue { .. })));
    let negative = doc.insert_text("log".into(), -1, "x".into());
    assert!(matches!(negative, Err(ConcordError::InvalidValue { .. })));
    let url = store.start_sync(vec!["http://x".into()], None, None);
    assert!(matches!(url, Err(ConcordError::InvalidValue { .. })));
}

struct Boom;

impl MergeFunction for Boom {
    fn merge(&self, _path: String, _values: Vec<ConcurrentValue>) -> Value {
        panic!("boom in a merge function")
    }
}

#[test]
fn a_panic_is_a_typed_error_and_the_store_stays_usable() {
    let dir = tempfile::tempdir().unwrap();
    let path = |n: &str| dir.path().join(n).to_string_lossy().into_owned();
    let merges = HashMap::from([("boom".to_string(), Arc::new(Boom) as Arc<dyn MergeFunction>)]);
    let a = Store::open_with_merge_functions(path("a.db"), merges).unwrap();
    let doc = a
        .create_document("d".into(), DocumentKind::Automerge)
        .unwrap();
    doc.set_policy(
        "k".into(),
        Policy::Merge {
            name: "boom".into(),
        },
    )
    .unwrap();
    doc.put("k".into(), Value::Int { value: 1 }).unwrap();
    // A second device writes k concurrently; its updates reach a as remote updates.
    let b = concord_core::Store::open(path("b.db")).unwrap();
    b.create_doc("d", concord_core::DocKind::Automerge).unwrap();
    let boom = concord_core::Policy::Merge("boom".into());
    b.set_policy("d", "k", &boom).unwrap();
    b.transact("d", |tx| tx.put("k", 2)).unwrap();
    let core_a = concord_core::Store::open(path("a.db")).unwrap();
    core_a.apply_remote("d", &b.outbox("d").unwrap()).unwrap();

    match doc.get("k".into()) {
        Err(ConcordError::Panic { detail }) => assert!(detail.contains("boom"), "{detail}"),
        other => panic!("expected a Panic error, got {other:?}"),
    }
    doc.put("other".into(), Value::Text { value: "ok".into() })
        .unwrap();
    assert_eq!(
        doc.get("other".into()).unwrap(),
        Some(Value::Text { value: "ok".into() })
    );
}

struct Collect(Mutex<Sender<(ChangeEvent, std::thread::ThreadId)>>);

impl ChangeListener for Collect {
    fn on_change(&self, event: ChangeEvent) {
        let _ = self
            .0
            .lock()
            .unwrap()
            .send((event, std::thread::current().id()));
    }
}

#[test]
fn listeners_run_on_a_background_thread_and_a_transaction_is_one_update() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir, "a.db");
    let doc = store
        .create_document("d".into(), DocumentKind::Automerge)
        .unwrap();
    let (tx, rx) = channel();
    let sub = doc.subscribe(Arc::new(Collect(Mutex::new(tx))));
    let t = doc.clone().transaction();
    for i in 0..10 {
        t.push("items".into(), Value::Int { value: i });
    }
    t.insert_text("body".into(), 0, "hi".into()).unwrap();
    t.commit().unwrap();
    let (event, thread) = rx.recv_timeout(Duration::from_secs(10)).expect("an event");
    assert_eq!(event.document_id, "d");
    assert_ne!(thread, std::thread::current().id());
    assert_eq!(store.status().unwrap()[0].pending, 1);
    assert_eq!(
        doc.get_json("body".into()).unwrap().as_deref(),
        Some("\"hi\"")
    );
    sub.cancel();
}

#[test]
fn text_positions_count_characters_in_both_kinds() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir, "t.db");
    for (id, kind) in [("am", DocumentKind::Automerge), ("y", DocumentKind::Yrs)] {
        let doc = store.create_document(id.into(), kind).unwrap();
        doc.insert_text("t".into(), 0, "a👋b".into()).unwrap();
        // The emoji is one position: "b" is at 2.
        doc.insert_text("t".into(), 2, "X".into()).unwrap();
        doc.delete_text("t".into(), 1, 1).unwrap();
        assert_eq!(
            doc.get("t".into()).unwrap(),
            Some(Value::Text {
                value: "aXb".into()
            }),
            "{id}"
        );
    }
}

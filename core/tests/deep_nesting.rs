//! Documents nested very deeply (a hostile peer's changes) are applied and read without
//! overflowing the thread's stack: a read turns at most `MAX_READ_DEPTH` levels of maps
//! and lists into JSON (the value read is level 0); deeper, it is a typed error
//! (`TooDeep`), and the document still reads by a path inside the deep value.

use automerge::transaction::Transactable;
use automerge::{AutoCommit, ObjType, ROOT};
use concord_core::read::MAX_READ_DEPTH;
use concord_core::{DocKind, Error, Store, UpdateRecord};
use serde_json::{json, Value};

/// Runs `f` on a thread with a 2 MiB stack (a tokio worker's, and Rust's default for a
/// spawned thread), as an app's reads and a sync client's applies would.
fn on_small_stack(f: impl FnOnce() + Send + 'static) {
    std::thread::Builder::new()
        .stack_size(2 << 20)
        .spawn(f)
        .unwrap()
        .join()
        .unwrap();
}

/// A store whose document "d" of `kind`, received from a peer, holds a title and a chain
/// of `depth` maps (`{"a": {"a": …}}`) under "deep" (Automerge: at the document's root;
/// Yrs: in the root map "root").
fn nested(kind: DocKind, depth: usize) -> Store {
    let (store, applied) = try_nested(kind, depth);
    applied.unwrap();
    store
}

/// [`nested`], and whether the store took the peer's update.
fn try_nested(kind: DocKind, depth: usize) -> (Store, concord_core::Result<()>) {
    let data = match kind {
        DocKind::Automerge => {
            let mut doc = AutoCommit::new();
            doc.put(ROOT, "title", "shallow").unwrap();
            let mut obj = doc.put_object(ROOT, "deep", ObjType::Map).unwrap();
            for _ in 0..depth {
                obj = doc.put_object(&obj, "a", ObjType::Map).unwrap();
            }
            doc.commit();
            doc.get_last_local_change().unwrap().raw_bytes().to_vec()
        }
        DocKind::Yrs => {
            use yrs::{Map, MapPrelim, Transact, WriteTxn};
            let doc = yrs::Doc::new();
            let mut txn = doc.transact_mut();
            let root = txn.get_or_insert_map("root");
            root.insert(&mut txn, "title", "shallow");
            let mut map = root.insert(&mut txn, "deep", MapPrelim::default());
            for _ in 0..depth {
                map = map.insert(&mut txn, "a", MapPrelim::default());
            }
            txn.encode_update_v1()
        }
    };
    let store = Store::open_in_memory().unwrap();
    store.ensure_doc("d", kind).unwrap();
    let record = UpdateRecord {
        origin: "peer".into(),
        seq: 1,
        data,
    };
    let applied = store.apply_remote("d", &[record]).map(|_| ());
    (store, applied)
}

/// `depth` maps nested under "a" keys, as JSON.
fn chain(depth: usize) -> Value {
    let mut v = json!({});
    for _ in 0..depth {
        v = json!({ "a": v });
    }
    v
}

/// The path of the title and the whole document as JSON, for `kind`.
fn shape(kind: DocKind, depth: usize) -> (&'static str, Value) {
    let body = json!({ "title": "shallow", "deep": chain(depth) });
    match kind {
        DocKind::Automerge => ("title", body),
        DocKind::Yrs => ("root/title", json!({ "root": body })),
    }
}

/// Automerge nests objects without recursion: such a document is taken, and reading it
/// whole is an error, not a crash.
#[test]
fn an_automerge_document_nested_100000_deep_is_applied_and_read_as_an_error_not_a_crash() {
    on_small_stack(move || {
        let store = nested(DocKind::Automerge, 100_000);
        assert_eq!(store.get("d", "title").unwrap(), Some(json!("shallow")));
        let err = store.get("d", "").unwrap_err();
        assert!(matches!(err, Error::TooDeep { .. }), "{err}");
        assert!(err.to_string().contains("deeper than 127"), "{err}");
        assert!(store.to_json("d").is_err());
    });
}

/// Yrs deletes nested types by recursion: an update nesting them past MAX_TYPE_DEPTH is
/// refused before Yrs applies it, and nothing of it is stored.
#[test]
fn a_yrs_update_nesting_types_100000_deep_is_refused() {
    on_small_stack(move || {
        let (store, applied) = try_nested(DocKind::Yrs, 100_000);
        let err = applied.unwrap_err();
        assert!(matches!(err, Error::InvalidUpdate { .. }), "{err}");
        assert!(
            err.to_string()
                .contains("nests shared types deeper than 128"),
            "{err}"
        );
        assert_eq!(store.get("d", "").unwrap(), Some(json!({})));
        // At the bound, it is taken.
        let depth = concord_core::doc::MAX_TYPE_DEPTH as usize - 1;
        let (store, applied) = try_nested(DocKind::Yrs, depth);
        applied.unwrap();
        assert!(store.get("d", "root/deep/a").unwrap().is_some());
        let (_, applied) = try_nested(DocKind::Yrs, depth + 1);
        assert!(applied.is_err());
    });
}

/// How many containers `value` nests, itself included.
fn containers(value: &Value) -> usize {
    let mut deepest = 0;
    let mut stack = vec![(value, 1)];
    while let Some((v, depth)) = stack.pop() {
        let children: Vec<&Value> = match v {
            Value::Object(m) => m.values().collect(),
            Value::Array(a) => a.iter().collect(),
            _ => continue,
        };
        deepest = deepest.max(depth);
        stack.extend(children.into_iter().map(|c| (c, depth + 1)));
    }
    deepest
}

#[test]
fn a_document_reads_whole_up_to_the_bound_and_by_a_path_past_it() {
    // The whole document nests its root object (Yrs: the object of roots, then the root
    // map), "deep", then the chain: the longest chain that fits makes MAX_READ_DEPTH
    // containers in all, which serde_json parses back.
    for kind in [DocKind::Automerge, DocKind::Yrs] {
        let above = match kind {
            DocKind::Automerge => 2,
            DocKind::Yrs => 3,
        };
        let fits = MAX_READ_DEPTH - above;
        let store = nested(kind, fits);
        let whole = store.get("d", "").unwrap().unwrap();
        assert_eq!(whole, shape(kind, fits).1);
        assert_eq!(containers(&whole), MAX_READ_DEPTH, "{kind}");
        let text = serde_json::to_string(&whole).unwrap();
        assert_eq!(serde_json::from_str::<Value>(&text).unwrap(), whole);

        let store = nested(kind, fits + 1);
        let err = store.get("d", "").unwrap_err();
        assert!(matches!(err, Error::TooDeep { .. }), "{kind}: {err}");
        // Inside "deep", it fits again.
        let inside = match kind {
            DocKind::Automerge => "deep",
            DocKind::Yrs => "root/deep",
        };
        assert_eq!(store.get("d", inside).unwrap(), Some(chain(fits + 1)));
        // And the store's check finds nothing wrong with it.
        assert!(store.check().unwrap().problems.is_empty(), "{kind}");
    }
}

/// A local edit nesting types past what a relay takes from a peer is refused at commit
/// with a typed error (committed, it could never sync: the relay would refuse the whole
/// document to this device); up to the bound, the edits sync, and a peer takes them.
#[test]
fn a_local_yrs_edit_past_the_nesting_bound_is_refused_and_one_at_it_syncs() {
    on_small_stack(move || {
        let max = concord_core::doc::MAX_TYPE_DEPTH as usize;
        let store = Store::open_in_memory().unwrap();
        store.ensure_doc("d", DocKind::Yrs).unwrap();
        // "root" is level 0, "deep" level 1, so a chain of max - 1 more maps reaches max.
        store
            .transact("d", |t| t.put("root/deep", chain(max - 1)))
            .unwrap();
        let err = store
            .transact("d", |t| t.put("root/deeper", chain(max)))
            .unwrap_err();
        assert!(matches!(err, Error::InvalidEdit(_)), "{err}");
        assert!(err.to_string().contains("129 levels deep"), "{err}");
        // A chain 1,000 deep (past serde's own parse limit: built in code) is refused alike.
        assert!(store
            .transact("d", |t| t.put("root/deeper", chain(1000)))
            .is_err());
        // One level at a time, at the deepest map: a map, a list, a text, past the bound.
        let deepest = format!("root/deep{}", "/a".repeat(max - 1));
        for (what, edit) in [
            (
                "map",
                store.transact("d", |t| t.put(&format!("{deepest}/m"), json!({}))),
            ),
            (
                "list",
                store.transact("d", |t| t.push(&format!("{deepest}/l"), json!(1))),
            ),
            (
                "text",
                store.transact("d", |t| t.splice_text(&format!("{deepest}/t"), 0, 0, "x")),
            ),
            (
                "list item",
                store.transact("d", |t| t.put(&format!("{deepest}/k"), json!([[]]))),
            ),
        ] {
            let err = edit.unwrap_err();
            assert!(matches!(err, Error::InvalidEdit(_)), "{what}: {err}");
        }
        // Scalars go at the deepest level, and nothing refused was stored.
        store
            .transact("d", |t| t.put(&format!("{deepest}/n"), 1))
            .unwrap();
        assert_eq!(store.get("d", "root/deeper").unwrap(), None);
        // What was committed is taken by a peer, whose check is the relay's.
        let peer = Store::open_in_memory().unwrap();
        peer.ensure_doc("d", DocKind::Yrs).unwrap();
        peer.apply_remote("d", &store.outbox("d").unwrap()).unwrap();
        assert_eq!(
            peer.get("d", &format!("{deepest}/n")).unwrap(),
            Some(json!(1))
        );
    });
}

//! Store behaviour on real SQLite files: commits, reads, snapshots, outbox, notifications.

use std::sync::{Arc, Mutex};

use concord_core::{ChangeSource, DocKind, Error, Store, StoreOptions, UpdateRecord};
use serde_json::json;

fn open(dir: &tempfile::TempDir, name: &str, checkpoint_every: u64) -> Store {
    Store::open_with(
        dir.path().join(name),
        StoreOptions {
            checkpoint_every,
            ..Default::default()
        },
    )
    .unwrap()
}

#[test]
fn device_id_is_created_once_and_kept() {
    let dir = tempfile::tempdir().unwrap();
    let id = open(&dir, "a.db", 256).device_id();
    assert_eq!(open(&dir, "a.db", 256).device_id(), id);
    assert_ne!(open(&dir, "b.db", 256).device_id(), id);
}

#[test]
fn automerge_edits_by_path_read_back_as_json() {
    let dir = tempfile::tempdir().unwrap();
    let s = open(&dir, "a.db", 256);
    s.create_doc("d", DocKind::Automerge).unwrap();
    s.transact("d", |tx| {
        tx.put("title", "hi")?;
        tx.put("meta", json!({"tags": ["a", "b"], "n": 1}))?;
        tx.push("meta/tags", "c")?;
        tx.insert("meta/tags/0", "z")?;
        tx.delete("meta/n")?;
        tx.insert_text("body", 0, "hello")?;
        tx.splice_text("body", 0, 1, "J")?;
        tx.increment("count", 2)?;
        tx.increment("count", 3)
    })
    .unwrap();
    assert_eq!(
        s.to_json("d").unwrap(),
        json!({"title": "hi", "meta": {"tags": ["z", "a", "b", "c"]}, "body": "Jello", "count": 5})
    );
    assert_eq!(s.get("d", "meta/tags/1").unwrap(), Some(json!("a")));
    assert_eq!(s.get("d", "missing").unwrap(), None);
}

#[test]
fn yrs_edits_by_root_name_read_back_as_json() {
    let dir = tempfile::tempdir().unwrap();
    let s = open(&dir, "a.db", 256);
    s.create_doc("y", DocKind::Yrs).unwrap();
    s.transact("y", |tx| {
        tx.put("meta/title", "list")?;
        tx.put("meta/nested", json!({"a": 1}))?;
        tx.put("meta/nested/b", 2)?;
        tx.push("items", "x")?;
        tx.insert("items/0", "w")?;
        tx.insert_text("body", 0, "hello")?;
        tx.delete_text("body", 0, 1)
    })
    .unwrap();
    assert_eq!(
        s.to_json("y").unwrap(),
        json!({"meta": {"title": "list", "nested": {"a": 1, "b": 2}}, "items": ["w", "x"], "body": "ello"})
    );
    let err = s.transact("y", |tx| tx.put("scalar", 1)).unwrap_err();
    assert!(matches!(err, Error::InvalidPath { .. }), "{err}");
}

/// One edit inside a transaction.
type Edit = dyn Fn(&mut concord_core::DocTxn<'_>) -> concord_core::Result<()>;

#[test]
fn every_edit_at_the_root_path_is_refused_as_a_bad_path() {
    // The root is a map that is never replaced, pushed to or typed into (and a Yrs
    // document's values live inside its named root types: "" and "/" name none).
    let s = Store::open_in_memory().unwrap();
    s.create_doc("y", DocKind::Yrs).unwrap();
    s.create_doc("a", DocKind::Automerge).unwrap();
    s.transact("y", |tx| tx.put("m/k", 1)).unwrap();
    s.transact("a", |tx| tx.put("k", 1)).unwrap();
    let before = (s.to_json("y").unwrap(), s.to_json("a").unwrap());
    for (doc, path) in [("y", ""), ("y", "/"), ("a", ""), ("a", "/")] {
        let edits: [(&str, Box<Edit>); 7] = [
            ("put", Box::new(|tx| tx.put(path, 1))),
            ("insert", Box::new(|tx| tx.insert(path, 1))),
            ("push", Box::new(|tx| tx.push(path, 1))),
            ("delete", Box::new(|tx| tx.delete(path))),
            ("insert_text", Box::new(|tx| tx.insert_text(path, 0, "a"))),
            ("delete_text", Box::new(|tx| tx.delete_text(path, 0, 1))),
            (
                "splice_text",
                Box::new(|tx| tx.splice_text(path, 0, 0, "a")),
            ),
        ];
        for (name, edit) in edits {
            let err = s.transact(doc, |tx| edit(tx)).unwrap_err();
            assert!(
                matches!(err, Error::InvalidPath { .. }),
                "{name} at {path:?} in {doc}: {err}"
            );
        }
    }
    assert_eq!((s.to_json("y").unwrap(), s.to_json("a").unwrap()), before);
}

#[test]
fn a_failed_edit_stores_nothing_and_leaves_the_document_as_it_was() {
    let dir = tempfile::tempdir().unwrap();
    for kind in [DocKind::Automerge, DocKind::Yrs] {
        let s = open(&dir, &format!("{kind}.db"), 256);
        s.create_doc("d", kind).unwrap();
        s.transact("d", |tx| tx.put("m/k", 1)).ok();
        let before = s.to_json("d").unwrap();
        let vv = s.version_vector("d").unwrap();
        let err = s
            .transact("d", |tx| {
                tx.put("m/other", 2)?;
                tx.delete_text("m/k", 5, 1)
            })
            .unwrap_err();
        assert!(matches!(err, Error::InvalidPath { .. }), "{err}");
        assert_eq!(s.to_json("d").unwrap(), before, "{kind}");
        assert_eq!(s.version_vector("d").unwrap(), vv);
        drop(s);
        let reopened = open(&dir, &format!("{kind}.db"), 256);
        assert_eq!(reopened.to_json("d").unwrap(), before);
    }
}

#[test]
fn a_panicking_edit_stores_nothing_and_leaves_the_document_as_it_was() {
    // An app's edit closure (or a foreign callback behind a binding, which catches the
    // panic) may panic halfway: what it did to the document in memory must not show in
    // reads, nor be carried into the next commit.
    let dir = tempfile::tempdir().unwrap();
    for kind in [DocKind::Automerge, DocKind::Yrs] {
        let s = open(&dir, &format!("panic-{kind}.db"), 256);
        s.create_doc("d", kind).unwrap();
        s.transact("d", |tx| tx.insert_text("t", 0, "kept"))
            .unwrap();
        let before = s.to_json("d").unwrap();
        let vv = s.version_vector("d").unwrap();
        let panicked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            s.transact("d", |tx| -> Result<(), Error> {
                tx.insert_text("t", 0, "lost ")?;
                panic!("the app's closure panics");
            })
        }));
        assert!(panicked.is_err());
        assert_eq!(
            s.to_json("d").unwrap(),
            before,
            "{kind}: read after the panic"
        );
        assert_eq!(s.version_vector("d").unwrap(), vv, "{kind}");
        s.transact("d", |tx| tx.insert_text("t", 4, "!")).unwrap();
        let after = serde_json::json!({ "t": "kept!" });
        assert_eq!(s.to_json("d").unwrap(), after, "{kind}: the next commit");
        drop(s);
        let reopened = open(&dir, &format!("panic-{kind}.db"), 256);
        assert_eq!(reopened.to_json("d").unwrap(), after, "{kind}: reopened");
    }
}

#[test]
fn a_panicking_edit_followed_by_closing_the_store_leaves_nothing_of_it_in_the_file() {
    // Closing checkpoints the cached documents: the half-made edit must not be among them
    // (it would be in the file with no update row, never synced, and later edits that
    // build on it refused by every relay).
    let dir = tempfile::tempdir().unwrap();
    for kind in [DocKind::Automerge, DocKind::Yrs] {
        let name = format!("panic-close-{kind}.db");
        let s = open(&dir, &name, 256);
        s.create_doc("d", kind).unwrap();
        s.transact("d", |tx| tx.insert_text("t", 0, "kept"))
            .unwrap();
        let panicked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            s.transact("d", |tx| -> Result<(), Error> {
                tx.insert_text("t", 0, "lost ")?;
                panic!("the app's closure panics");
            })
        }));
        assert!(panicked.is_err());
        drop(s);
        let reopened = open(&dir, &name, 256);
        assert_eq!(
            reopened.to_json("d").unwrap(),
            serde_json::json!({ "t": "kept" }),
            "{kind}"
        );
        assert!(reopened.check().unwrap().is_ok(), "{kind}");
    }
}

#[test]
fn commits_survive_reopen_and_snapshots_load_the_same_state() {
    let dir = tempfile::tempdir().unwrap();
    for kind in [DocKind::Automerge, DocKind::Yrs] {
        let name = format!("{kind}.db");
        let s = open(&dir, &name, 10);
        s.create_doc("d", kind).unwrap();
        for i in 0..57 {
            s.transact("d", |tx| tx.insert_text("text", 0, &format!("{}", i % 10)))
                .unwrap();
        }
        let expected = s.to_json("d").unwrap();
        assert_eq!(s.pending("d").unwrap(), 57);
        drop(s);
        // Reopen with snapshots taken (every 10) and with a store that never snapshots.
        let reopened = open(&dir, &name, 10);
        assert_eq!(reopened.to_json("d").unwrap(), expected);
        assert_eq!(
            reopened
                .version_vector("d")
                .unwrap()
                .get(&reopened.device_id()),
            57
        );
        assert_eq!(
            reopened.outbox("d").unwrap().len(),
            57,
            "snapshots never drop the outbox"
        );
        let conn = rusqlite::Connection::open(dir.path().join(&name)).unwrap();
        let (snap, tail): (Option<Vec<u8>>, i64) = conn
            .query_row("SELECT (SELECT state FROM checkpoints WHERE doc_id = id),
                               (SELECT COUNT(*) FROM updates u WHERE u.doc_id = id AND u.idx > snapshot_upto)
                        FROM docs WHERE id = 'd'", [], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .unwrap();
        assert!(snap.is_some(), "a snapshot was taken");
        assert_eq!(tail, 0, "closing the writer checkpointed its tail");
    }
}

#[test]
fn acknowledged_updates_leave_the_outbox_and_are_pruned_by_the_next_snapshot() {
    let dir = tempfile::tempdir().unwrap();
    let s = open(&dir, "a.db", 4);
    s.create_doc("d", DocKind::Automerge).unwrap();
    for i in 0..3 {
        s.transact("d", |tx| tx.put("k", i)).unwrap();
    }
    let me = s.device_id();
    assert_eq!(s.acknowledge("d", &me, 2).unwrap(), 2);
    assert_eq!(
        s.outbox("d")
            .unwrap()
            .iter()
            .map(|u| u.seq)
            .collect::<Vec<_>>(),
        vec![3]
    );
    s.transact("d", |tx| tx.put("k", 9)).unwrap(); // 4th: snapshot, prunes acked 1 and 2
    let vv = concord_core::VersionVector::new();
    let available: Vec<u64> = s
        .updates_missing_from("d", &vv)
        .unwrap()
        .iter()
        .map(|u| u.seq)
        .collect();
    assert_eq!(available, vec![3, 4]);
    assert_eq!(s.get("d", "k").unwrap(), Some(json!(9)));
}

#[test]
fn remote_updates_apply_once_and_gaps_stop_the_batch() {
    let dir = tempfile::tempdir().unwrap();
    let a = open(&dir, "a.db", 256);
    let b = open(&dir, "b.db", 256);
    a.create_doc("d", DocKind::Yrs).unwrap();
    b.create_doc("d", DocKind::Yrs).unwrap();
    for word in ["one ", "two ", "three "] {
        a.transact("d", |tx| tx.insert_text("t", 0, word)).unwrap();
    }
    let updates: Vec<UpdateRecord> = a.outbox("d").unwrap();
    let r = b
        .apply_remote("d", &[updates[0].clone(), updates[2].clone()])
        .unwrap();
    assert_eq!((r.applied, r.gap.clone().map(|g| g.1)), (1, Some(3)));
    let r = b.apply_remote("d", &updates).unwrap();
    assert_eq!((r.applied, r.duplicates), (2, 1));
    assert_eq!(b.to_json("d").unwrap(), a.to_json("d").unwrap());
    assert_eq!(
        b.pending("d").unwrap(),
        0,
        "remote updates are not in the outbox"
    );
    let garbage = UpdateRecord {
        origin: "x".into(),
        seq: 1,
        data: vec![1, 2, 3],
    };
    assert!(matches!(
        b.apply_remote("d", &[garbage]),
        Err(Error::InvalidUpdate { .. })
    ));
    assert_eq!(b.to_json("d").unwrap(), a.to_json("d").unwrap());
}

#[test]
fn subscribers_hear_local_and_remote_changes() {
    let dir = tempfile::tempdir().unwrap();
    let a = open(&dir, "a.db", 256);
    let b = open(&dir, "b.db", 256);
    a.create_doc("d", DocKind::Automerge).unwrap();
    b.create_doc("d", DocKind::Automerge).unwrap();
    let heard = Arc::new(Mutex::new(Vec::new()));
    let h = heard.clone();
    let reader = b.clone();
    let _sub = b.subscribe(Some("d"), move |e| {
        // Callbacks may read the store.
        let value = reader.get(&e.doc_id, "k").unwrap();
        h.lock().unwrap().push((e.source, value));
    });
    b.transact("d", |tx| tx.put("k", 1)).unwrap();
    a.transact("d", |tx| tx.put("other", 2)).unwrap();
    b.apply_remote("d", &a.outbox("d").unwrap()).unwrap();
    assert_eq!(
        *heard.lock().unwrap(),
        vec![
            (ChangeSource::Local, Some(json!(1))),
            (ChangeSource::Remote, Some(json!(1)))
        ]
    );
}

#[test]
fn reoriginate_moves_unacknowledged_updates_to_a_new_origin() {
    let dir = tempfile::tempdir().unwrap();
    let s = open(&dir, "a.db", 256);
    s.create_doc("d", DocKind::Automerge).unwrap();
    for i in 0..5 {
        s.transact("d", |tx| tx.put("k", i)).unwrap();
    }
    let old = s.device_id();
    s.acknowledge("d", &old, 3).unwrap();
    let new = s.reoriginate().unwrap();
    assert_ne!(new, old);
    assert_eq!(s.device_id(), new);
    let vv = s.version_vector("d").unwrap();
    assert_eq!((vv.get(&old), vv.get(&new)), (3, 2));
    let outbox = s.outbox("d").unwrap();
    assert_eq!(
        outbox
            .iter()
            .map(|u| (u.origin.clone(), u.seq))
            .collect::<Vec<_>>(),
        vec![(new.clone(), 1), (new.clone(), 2)]
    );
    s.transact("d", |tx| tx.put("k", 10)).unwrap();
    assert_eq!(s.version_vector("d").unwrap().get(&new), 3);
    drop(s);
    assert_eq!(open(&dir, "a.db", 256).device_id(), new);
}

#[test]
fn another_handle_reads_the_vectors_that_reoriginate_and_repair_wrote() {
    // Both move the version vector other than by logging an update (an origin renamed or
    // cut back): what they write must read back as the vector the writer holds.
    let dir = tempfile::tempdir().unwrap();
    let s = open(&dir, "a.db", 256);
    let docs = [("am", DocKind::Automerge), ("y", DocKind::Yrs)];
    for (doc, kind) in docs {
        s.create_doc(doc, kind).unwrap();
        for i in 0..5 {
            s.transact(doc, |tx| tx.insert_text("t", i, "x")).unwrap();
        }
    }
    let old = s.device_id();
    s.acknowledge("am", &old, 3).unwrap();
    let same_on_disk = |what: &str| {
        let other = open(&dir, "a.db", 256);
        for (doc, _) in docs {
            assert_eq!(
                other.version_vector(doc).unwrap(),
                s.version_vector(doc).unwrap(),
                "{doc} after {what}"
            );
            assert_eq!(other.to_json(doc).unwrap(), s.to_json(doc).unwrap());
        }
    };
    let new = s.reoriginate().unwrap();
    assert_eq!(s.version_vector("am").unwrap().get(&old), 3);
    same_on_disk("reoriginate");

    // The relay acknowledged everything, then lost the new origin's updates past its first.
    for (doc, _) in docs {
        let seq = s.version_vector(doc).unwrap().get(&new);
        s.acknowledge(doc, &new, seq).unwrap();
    }
    s.compact_all().unwrap();
    assert!(s.repair_lost("am", &[(new.clone(), 1)], 1).unwrap());
    assert_eq!(s.version_vector("am").unwrap().get(&new), 1);
    same_on_disk("repair_lost");
}

#[test]
fn bad_ids_kinds_and_missing_docs_are_typed_errors() {
    let dir = tempfile::tempdir().unwrap();
    let s = open(&dir, "a.db", 256);
    assert!(matches!(
        s.create_doc("has space", DocKind::Yrs),
        Err(Error::InvalidDocId(_))
    ));
    assert!(matches!(
        s.create_doc("", DocKind::Yrs),
        Err(Error::InvalidDocId(_))
    ));
    s.create_doc("d", DocKind::Yrs).unwrap();
    assert!(matches!(
        s.create_doc("d", DocKind::Yrs),
        Err(Error::DocExists(_))
    ));
    assert!(matches!(
        s.ensure_doc("d", DocKind::Automerge),
        Err(Error::KindMismatch { .. })
    ));
    assert!(matches!(s.to_json("nope"), Err(Error::NoSuchDoc(_))));
    assert!(matches!(
        "sheets".parse::<DocKind>(),
        Err(Error::UnknownDocKind(_))
    ));
}

#[test]
fn two_handles_on_one_file_see_each_others_commits() {
    // Two connections to one file, as two processes (an app and `concord sync --watch`).
    let dir = tempfile::tempdir().unwrap();
    for kind in [DocKind::Automerge, DocKind::Yrs] {
        let name = format!("shared-{kind}.db");
        let first = open(&dir, &name, 3);
        let second = open(&dir, &name, 3);
        first.create_doc("d", kind).unwrap();
        first
            .transact("d", |tx| {
                tx.put("m/k", -1).or_else(|_| tx.put("m", json!({"k": -1})))
            })
            .unwrap();
        for i in 0..7 {
            let writer = if i % 2 == 0 { &first } else { &second };
            // Each handle has the document cached from its previous turn.
            writer.transact("d", |tx| tx.put("m/k", i)).unwrap();
            assert_eq!(first.get("d", "m/k").unwrap(), Some(json!(i)));
            assert_eq!(second.get("d", "m/k").unwrap(), Some(json!(i)));
        }
        let me = first.device_id();
        assert_eq!(second.version_vector("d").unwrap().get(&me), 8);
        assert_eq!(second.pending("d").unwrap(), 8);
        // A remote update applied through one handle is seen by the other.
        let other = Store::open_in_memory().unwrap();
        other.create_doc("d", kind).unwrap();
        other
            .apply_remote("d", &first.outbox("d").unwrap())
            .unwrap();
        other.transact("d", |tx| tx.put("m/remote", true)).unwrap();
        let from_other: Vec<_> = other.outbox("d").unwrap();
        second.apply_remote("d", &from_other).unwrap();
        first.transact("d", |tx| tx.put("m/k", 100)).unwrap();
        assert_eq!(
            open(&dir, &name, 3).to_json("d").unwrap(),
            json!({"m": {"k": 100, "remote": true}})
        );
    }
}

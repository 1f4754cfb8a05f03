//! A Yrs document's root types survive reopening the store from a checkpoint. Yrs's saved
//! state does not say what type each root is; the checkpoint records it (column
//! `checkpoints.roots`), so a reopened store reads each root as it was written instead of
//! guessing from its content (a text whose characters were all deleted looks like an
//! empty array).

use std::path::Path;

use concord_core::{DocKind, Store};
use rusqlite::Connection;
use serde_json::json;

/// A store at `path` with an empty Yrs document "pad".
fn store_with_pad(path: &Path) -> Store {
    let store = Store::open(path).unwrap();
    store.create_doc("pad", DocKind::Yrs).unwrap();
    store
}

/// The root types recorded with "pad"'s checkpoint in the file at `path`.
fn recorded_roots(path: &Path) -> Option<String> {
    Connection::open(path)
        .unwrap()
        .query_row(
            "SELECT roots FROM checkpoints WHERE doc_id = 'pad'",
            [],
            |r| r.get(0),
        )
        .unwrap()
}

#[test]
fn an_emptied_text_reads_as_text_after_reopening_from_its_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store.db");
    {
        let store = store_with_pad(&path);
        store
            .transact("pad", |tx| tx.insert_text("t", 0, "hello"))
            .unwrap();
        store
            .transact("pad", |tx| tx.insert_text("title", 0, "x"))
            .unwrap();
        store
            .transact("pad", |tx| tx.delete_text("t", 0, 5))
            .unwrap();
        store.transact("pad", |tx| tx.push("list", 1)).unwrap();
        store.transact("pad", |tx| tx.put("m/k", "v")).unwrap();
        assert_eq!(store.get("pad", "t").unwrap(), Some(json!("")));
        store.compact_all().unwrap();
    }
    let roots = recorded_roots(&path).expect("roots recorded");
    let roots: serde_json::Value = serde_json::from_str(&roots).unwrap();
    assert_eq!(
        roots,
        json!({"t": "text", "title": "text", "list": "array", "m": "map"})
    );

    let store = Store::open(&path).unwrap();
    assert_eq!(store.get("pad", "t").unwrap(), Some(json!("")));
    assert_eq!(
        store.to_json("pad").unwrap(),
        json!({"t": "", "title": "x", "list": [1], "m": {"k": "v"}})
    );
    // Still a text: it takes text edits.
    store
        .transact("pad", |tx| tx.insert_text("t", 0, "again"))
        .unwrap();
    assert_eq!(store.get("pad", "t").unwrap(), Some(json!("again")));
}

#[test]
fn a_checkpoint_without_recorded_roots_still_loads_by_content() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store.db");
    {
        let store = store_with_pad(&path);
        store
            .transact("pad", |tx| tx.insert_text("t", 0, "kept"))
            .unwrap();
        store.transact("pad", |tx| tx.put("m/k", 2)).unwrap();
        store.compact_all().unwrap();
    }
    // A checkpoint from before roots were recorded (or with a record this build cannot
    // read): the types come from the content, as before.
    for roots in ["NULL", "'not json'", "'{\"t\": \"widget\"}'"] {
        let conn = Connection::open(&path).unwrap();
        conn.execute_batch(&format!("UPDATE checkpoints SET roots = {roots}"))
            .unwrap();
        drop(conn);
        let store = Store::open(&path).unwrap();
        assert_eq!(
            store.to_json("pad").unwrap(),
            json!({"t": "kept", "m": {"k": 2}}),
            "roots = {roots}"
        );
    }
}

/// A text emptied before it reached this device arrives with no declaration and is
/// guessed an array. That guess must not be recorded: once text is typed into it again,
/// the next load reads it as text.
#[test]
fn a_guessed_array_is_not_recorded_so_the_text_comes_back_as_text() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("b.db");
    let a = Store::open_in_memory().unwrap();
    a.create_doc("pad", DocKind::Yrs).unwrap();
    a.transact("pad", |tx| tx.insert_text("t", 0, "hello"))
        .unwrap();
    a.transact("pad", |tx| tx.delete_text("t", 0, 5)).unwrap();
    a.transact("pad", |tx| tx.push("list", 1)).unwrap();
    {
        let b = store_with_pad(&path);
        let saved = a.saved_state("pad").unwrap();
        let version = a.version_vector("pad").unwrap();
        b.apply_catchup_snapshot("pad", &saved, &version).unwrap();
        b.compact_all().unwrap();
        assert_eq!(
            recorded_roots(&path).as_deref(),
            Some(r#"{"list":"array"}"#)
        );
        a.transact("pad", |tx| tx.insert_text("t", 0, "back"))
            .unwrap();
        let missing = a
            .updates_missing_from("pad", &b.version_vector("pad").unwrap())
            .unwrap();
        assert_eq!(b.apply_remote("pad", &missing).unwrap().applied, 1);
        b.compact_all().unwrap();
    }
    let b = Store::open(&path).unwrap();
    assert_eq!(b.get("pad", "t").unwrap(), Some(json!("back")));
    assert_eq!(b.get("pad", "list").unwrap(), Some(json!([1])));
    b.transact("pad", |tx| tx.insert_text("t", 4, "!")).unwrap();
    assert_eq!(b.get("pad", "t").unwrap(), Some(json!("back!")));
}

//! A Yrs document's root types survive reopening the store from a checkpoint. Yrs's saved
//! state does not say what type each root is; the checkpoint records it (column
//! `checkpoints.roots`), so a reopened store reads each root as it was written instead of
//! guessing from its content (a text whose characters were all deleted looks like an
//! empty array).

use concord_core::{DocKind, Store};
use rusqlite::Connection;
use serde_json::json;

#[test]
fn an_emptied_text_reads_as_text_after_reopening_from_its_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store.db");
    {
        let store = Store::open(&path).unwrap();
        store.create_doc("pad", DocKind::Yrs).unwrap();
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
    let conn = Connection::open(&path).unwrap();
    let roots: Option<String> = conn
        .query_row(
            "SELECT roots FROM checkpoints WHERE doc_id = 'pad'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    let roots: serde_json::Value = serde_json::from_str(&roots.expect("roots recorded")).unwrap();
    assert_eq!(
        roots,
        json!({"t": "text", "title": "text", "list": "array", "m": "map"})
    );
    drop(conn);

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
        let store = Store::open(&path).unwrap();
        store.create_doc("pad", DocKind::Yrs).unwrap();
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

//! A Yrs checkpoint is walked for the nesting depth of its values when it is loaded, as a
//! peer's update is, unless the store marked it as checked when it wrote it (column
//! `checkpoints.checked`): the walk then ran on those very bytes as they were stored, so it
//! is not run again at every load (a whole extra pass over the saved state).

use std::path::Path;

use concord_core::doc::MAX_VALUE_DEPTH;
use concord_core::{DocKind, Error, Store};
use rusqlite::{params, Connection};
use serde_json::json;
use yrs::{Any, Doc, Map, ReadTxn, StateVector, Transact};

/// A Yrs saved state whose root map "m" holds at "v" an array nested `depth` levels.
fn nested_state(depth: usize) -> Vec<u8> {
    let doc = Doc::new();
    let map = doc.get_or_insert_map("m");
    let mut value = Any::Null;
    for _ in 0..depth {
        value = Any::from(vec![value]);
    }
    let mut txn = doc.transact_mut();
    map.insert(&mut txn, "v", value);
    txn.encode_state_as_update_v1(&StateVector::default())
}

/// Replaces "pad"'s checkpoint in the file at `path` with `state`, marked `checked`.
fn replace_checkpoint(path: &Path, state: &[u8], checked: bool) {
    let changed = Connection::open(path)
        .unwrap()
        .execute(
            "UPDATE checkpoints SET state = ?1, checked = ?2, roots = NULL WHERE doc_id = 'pad'",
            params![state, checked],
        )
        .unwrap();
    assert_eq!(changed, 1, "pad has a checkpoint");
}

/// How many levels the value at "m/v" nests (an array in an array…).
fn levels(value: &serde_json::Value) -> usize {
    let (mut levels, mut at) = (0, value);
    while let Some(inner) = at.as_array().and_then(|a| a.first()) {
        levels += 1;
        at = inner;
    }
    levels + usize::from(at.is_array())
}

#[test]
fn a_checkpoint_the_store_wrote_is_marked_and_loads_as_written() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store.db");
    let store = Store::open(&path).unwrap();
    store.create_doc("pad", DocKind::Yrs).unwrap();
    store
        .transact("pad", |tx| {
            tx.insert_text("t", 0, "hello")?;
            tx.put("m/k", json!({"a": [1, 2, {"b": true}]}))
        })
        .unwrap();
    store.compact("pad").unwrap();
    let checked: i64 = Connection::open(&path)
        .unwrap()
        .query_row(
            "SELECT checked FROM checkpoints WHERE doc_id = 'pad'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(checked, 1);
    let before = store.to_json("pad").unwrap();
    drop(store);
    let store = Store::open(&path).unwrap();
    assert_eq!(store.to_json("pad").unwrap(), before);
}

#[test]
fn an_unmarked_checkpoint_is_walked_and_a_marked_one_is_not() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store.db");
    {
        let store = Store::open(&path).unwrap();
        store.create_doc("pad", DocKind::Yrs).unwrap();
        store.transact("pad", |tx| tx.put("m/k", 1)).unwrap();
        store.compact("pad").unwrap();
    }
    let deep = nested_state(MAX_VALUE_DEPTH + 20);

    // Not marked (as every checkpoint written before the mark): refused like a peer's
    // update that nests too deep, and nothing is lost by refusing.
    replace_checkpoint(&path, &deep, false);
    let store = Store::open(&path).unwrap();
    match store.get("pad", "m/v") {
        Err(Error::InvalidUpdate { reason, .. }) => {
            assert!(reason.contains("nests deeper"), "{reason}");
        }
        other => panic!("an unmarked deep checkpoint was not walked: {other:?}"),
    }
    drop(store);

    // Marked: the walk is skipped (Yrs decodes this depth itself).
    replace_checkpoint(&path, &deep, true);
    let store = Store::open(&path).unwrap();
    let value = store.get("pad", "m/v").unwrap().expect("the value loads");
    assert_eq!(levels(&value), MAX_VALUE_DEPTH + 20);

    // And one at the bound loads either way.
    drop(store);
    replace_checkpoint(&path, &nested_state(MAX_VALUE_DEPTH), false);
    let store = Store::open(&path).unwrap();
    let value = store.get("pad", "m/v").unwrap().expect("the value loads");
    assert_eq!(levels(&value), MAX_VALUE_DEPTH);
}

//! Containers created concurrently at one key on several devices: no edit disappears.
//!
//! Devices are real stores (SQLite files); they exchange their updates directly, in both
//! directions and in random orders, as they would through a relay.

use concord_core::{DocKind, Store};
use proptest::prelude::*;
use serde_json::{json, Value};

fn device(dir: &tempfile::TempDir, name: &str) -> Store {
    Store::open(dir.path().join(name)).unwrap()
}

/// Sends `from` every update of `doc` that `to` lacks.
fn send(from: &Store, to: &Store, doc: &str) {
    let missing = from
        .updates_missing_from(doc, &to.version_vector(doc).unwrap())
        .unwrap();
    let outcome = to.apply_remote(doc, &missing).unwrap();
    assert_eq!(outcome.gap, None);
}

fn sync_all(devices: &[&Store], doc: &str) {
    for a in devices {
        for b in devices {
            if !std::ptr::eq(*a, *b) {
                send(a, b, doc);
            }
        }
    }
}

fn two_devices(kind: DocKind) -> (tempfile::TempDir, Store, Store) {
    let dir = tempfile::tempdir().unwrap();
    let (x, y) = (device(&dir, "x.db"), device(&dir, "y.db"));
    // Each device creates the document offline, as the README quickstart does.
    x.create_doc("d", kind).unwrap();
    y.create_doc("d", kind).unwrap();
    (dir, x, y)
}

#[test]
fn concurrently_created_counters_add_up() {
    let (_dir, x, y) = two_devices(DocKind::Automerge);
    x.transact("d", |tx| tx.increment("cc", 1)).unwrap();
    y.transact("d", |tx| tx.increment("cc", 10)).unwrap();
    sync_all(&[&x, &y], "d");
    assert_eq!(x.get("d", "cc").unwrap(), Some(json!(11)));
    assert_eq!(y.get("d", "cc").unwrap(), Some(json!(11)));
    // A later increment counts once, not once per device that created the counter.
    x.transact("d", |tx| tx.increment("cc", 1)).unwrap();
    sync_all(&[&x, &y], "d");
    assert_eq!(y.get("d", "cc").unwrap(), Some(json!(12)));
}

#[test]
fn concurrently_created_automerge_lists_texts_and_maps_keep_every_edit() {
    let (_dir, x, y) = two_devices(DocKind::Automerge);
    x.transact("d", |tx| {
        tx.push("items", "bread")?;
        tx.insert_text("note", 0, "milk")?;
        tx.put("meta", json!({"a": 1, "inner": {"x": 1}}))
    })
    .unwrap();
    y.transact("d", |tx| {
        tx.push("items", "jam")?;
        tx.insert_text("note", 0, "oat ")?;
        tx.put("meta", json!({"b": 2, "inner": {"y": 2}}))
    })
    .unwrap();
    sync_all(&[&x, &y], "d");
    let doc = x.to_json("d").unwrap();
    assert_eq!(doc, y.to_json("d").unwrap());
    let mut items: Vec<Value> = doc["items"].as_array().unwrap().clone();
    items.sort_by_key(|v| v.to_string());
    assert_eq!(items, vec![json!("bread"), json!("jam")]);
    let note = doc["note"].as_str().unwrap();
    assert!(note.contains("milk") && note.contains("oat "), "{note}");
    assert_eq!(
        doc["meta"],
        json!({"a": 1, "b": 2, "inner": {"x": 1, "y": 2}})
    );
}

#[test]
fn concurrently_created_yrs_nested_types_keep_every_edit() {
    let (_dir, x, y) = two_devices(DocKind::Yrs);
    x.transact("d", |tx| {
        tx.push("meta/tags", "a")?;
        tx.insert_text("meta/note", 0, "milk")?;
        tx.put("meta/info", json!({"a": 1, "inner": {"x": 1}}))
    })
    .unwrap();
    y.transact("d", |tx| {
        tx.push("meta/tags", "b")?;
        tx.insert_text("meta/note", 0, "oat ")?;
        tx.put("meta/info", json!({"b": 2, "inner": {"y": 2}}))
    })
    .unwrap();
    sync_all(&[&x, &y], "d");
    let doc = x.to_json("d").unwrap();
    assert_eq!(doc, y.to_json("d").unwrap());
    let mut tags: Vec<Value> = doc["meta"]["tags"].as_array().unwrap().clone();
    tags.sort_by_key(|v| v.to_string());
    assert_eq!(tags, vec![json!("a"), json!("b")]);
    let note = doc["meta"]["note"].as_str().unwrap();
    assert!(note.contains("milk") && note.contains("oat "), "{note}");
    assert_eq!(
        doc["meta"]["info"],
        json!({"a": 1, "b": 2, "inner": {"x": 1, "y": 2}})
    );
}

#[test]
fn automerge_container_recreated_after_a_delete_still_merges() {
    let (_dir, x, y) = two_devices(DocKind::Automerge);
    x.transact("d", |tx| tx.push("items", "old")).unwrap();
    sync_all(&[&x, &y], "d");
    x.transact("d", |tx| tx.delete("items")).unwrap();
    sync_all(&[&x, &y], "d");
    assert_eq!(y.get("d", "items").unwrap(), None);
    x.transact("d", |tx| tx.push("items", "b")).unwrap();
    y.transact("d", |tx| tx.push("items", "c")).unwrap();
    sync_all(&[&x, &y], "d");
    let items = x.get("d", "items").unwrap().unwrap();
    assert_eq!(items, y.get("d", "items").unwrap().unwrap());
    let mut items = items.as_array().unwrap().clone();
    items.sort_by_key(|v| v.to_string());
    assert_eq!(items, vec![json!("b"), json!("c")]);
}

#[test]
fn shared_creation_survives_reload_from_disk() {
    let dir = tempfile::tempdir().unwrap();
    {
        let (x, y) = (device(&dir, "x.db"), device(&dir, "y.db"));
        x.create_doc("d", DocKind::Automerge).unwrap();
        y.create_doc("d", DocKind::Automerge).unwrap();
        x.transact("d", |tx| tx.increment("n", 2)).unwrap();
        y.transact("d", |tx| tx.increment("n", 3)).unwrap();
        sync_all(&[&x, &y], "d");
    }
    let (x, y) = (device(&dir, "x.db"), device(&dir, "y.db"));
    assert_eq!(x.get("d", "n").unwrap(), Some(json!(5)));
    assert_eq!(y.get("d", "n").unwrap(), Some(json!(5)));
}

/// One random edit: each leaves a mark that must be visible on every replica at the end.
#[derive(Debug, Clone)]
enum Edit {
    Incr { key: u8, by: i64 },
    Push { key: u8 },
    Text { key: u8 },
    PutInMap { key: u8, nested: bool },
    Sync { from: usize, to: usize },
}

fn edit() -> impl Strategy<Value = (usize, Edit)> {
    let e = prop_oneof![
        (0u8..2, 1i64..100).prop_map(|(key, by)| Edit::Incr { key, by }),
        (0u8..2).prop_map(|key| Edit::Push { key }),
        (0u8..2).prop_map(|key| Edit::Text { key }),
        (0u8..2, any::<bool>()).prop_map(|(key, nested)| Edit::PutInMap { key, nested }),
        (0usize..3, 0usize..3).prop_map(|(from, to)| Edit::Sync { from, to }),
    ];
    (0usize..3, e)
}

/// Runs random edits on 3 devices with random partial syncs, then a full sync, and checks
/// that every edit is visible on every device.
fn run_random(kind: DocKind, edits: Vec<(usize, Edit)>) {
    let dir = tempfile::tempdir().unwrap();
    let devices: Vec<Store> = (0..3)
        .map(|i| {
            let s = device(&dir, &format!("{i}.db"));
            s.create_doc("d", kind).unwrap();
            s
        })
        .collect();
    // Yrs paths need a root type: everything lives under the root map "r".
    let at = |name: String| match kind {
        DocKind::Automerge => name,
        DocKind::Yrs => format!("r/{name}"),
    };
    let mut counters = [0i64; 2];
    let mut pushed: Vec<(u8, String)> = Vec::new();
    let mut typed: Vec<(u8, String)> = Vec::new();
    let mut keys: Vec<(u8, String, bool)> = Vec::new();
    for (n, (dev, e)) in edits.into_iter().enumerate() {
        let store = &devices[dev];
        let mark = format!("m{n}d{dev}");
        match e {
            Edit::Incr { key, by } => {
                if kind == DocKind::Yrs {
                    continue;
                }
                store
                    .transact("d", |tx| tx.increment(&at(format!("c{key}")), by))
                    .unwrap();
                counters[key as usize] += by;
            }
            Edit::Push { key } => {
                store
                    .transact("d", |tx| tx.push(&at(format!("l{key}")), mark.as_str()))
                    .unwrap();
                pushed.push((key, mark));
            }
            Edit::Text { key } => {
                let token = format!("<{mark}>");
                store
                    .transact("d", |tx| tx.insert_text(&at(format!("t{key}")), 0, &token))
                    .unwrap();
                typed.push((key, token));
            }
            Edit::PutInMap { key, nested } => {
                let value = if nested {
                    json!({ "inner": { mark.clone(): n } })
                } else {
                    json!({ mark.clone(): n })
                };
                let path = at(format!("m{key}"));
                store
                    .transact("d", |tx| {
                        if tx.get(&path)?.is_some() {
                            if nested && tx.get(&format!("{path}/inner"))?.is_some() {
                                tx.put(&format!("{path}/inner/{mark}"), n as i64)
                            } else if nested {
                                tx.put(&format!("{path}/inner"), json!({ mark.clone(): n }))
                            } else {
                                tx.put(&format!("{path}/{mark}"), n as i64)
                            }
                        } else {
                            tx.put(&path, value.clone())
                        }
                    })
                    .unwrap();
                keys.push((key, mark, nested));
            }
            Edit::Sync { from, to } => {
                if from != to {
                    send(&devices[from], &devices[to], "d");
                }
            }
        }
    }
    let all: Vec<&Store> = devices.iter().collect();
    sync_all(&all, "d");
    sync_all(&all, "d");
    let first = devices[0].to_json("d").unwrap();
    for s in &devices[1..] {
        assert_eq!(s.to_json("d").unwrap(), first, "replicas differ");
    }
    for (key, total) in counters.iter().enumerate() {
        if *total != 0 {
            assert_eq!(
                devices[0].get("d", &format!("c{key}")).unwrap(),
                Some(json!(total)),
                "counter c{key} in {first}"
            );
        }
    }
    let read = |p: String| devices[0].get("d", &at(p)).unwrap();
    for (key, mark) in &pushed {
        let list = read(format!("l{key}")).unwrap_or(Value::Null);
        assert!(
            list.as_array().is_some_and(|l| l.contains(&json!(mark))),
            "{mark} missing from l{key}: {first}"
        );
    }
    for (key, token) in &typed {
        let text = read(format!("t{key}")).unwrap_or(Value::Null);
        assert!(
            text.as_str().is_some_and(|t| t.contains(token.as_str())),
            "{token} missing from t{key}: {first}"
        );
    }
    for (key, mark, nested) in &keys {
        let path = if *nested {
            format!("m{key}/inner/{mark}")
        } else {
            format!("m{key}/{mark}")
        };
        assert!(read(path).is_some(), "{mark} missing from m{key}: {first}");
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn every_edit_in_concurrently_created_containers_is_visible_automerge(
        edits in proptest::collection::vec(edit(), 1..40)
    ) {
        run_random(DocKind::Automerge, edits);
    }

    #[test]
    fn every_edit_in_concurrently_created_containers_is_visible_yrs(
        edits in proptest::collection::vec(edit(), 1..40)
    ) {
        run_random(DocKind::Yrs, edits);
    }
}

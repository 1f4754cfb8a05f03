//! Concurrent edits under one key on devices that have not synced, through the CLI and a
//! real `concord-server`: counters add up, lists, texts and maps keep every device's
//! contents, and two devices creating the same document id offline merge (no edit vanishes).

mod support;

use serde_json::{json, Value};
use support::{Device, Server};

fn sorted(value: &Value) -> Vec<Value> {
    let mut items = value
        .as_array()
        .unwrap_or_else(|| panic!("{value} is not an array"))
        .clone();
    items.sort_by_key(|v| v.to_string());
    items
}

#[test]
fn counters_lists_texts_and_maps_created_on_two_devices_merge() {
    let server = Server::start();
    let dir = tempfile::tempdir().unwrap();
    let x = Device::new(dir.path(), "x");
    let y = Device::new(dir.path(), "y");

    // Both create "cc" offline: neither has seen the other's document.
    for (d, n, item, text, key) in [
        (&x, "1", "bread", "milk", "a"),
        (&y, "10", "jam", "oat ", "b"),
    ] {
        d.ok(&["create", "cc"]);
        d.ok(&["incr", "cc", "k", n]);
        d.ok(&["push", "cc", "items", &format!("\"{item}\"")]);
        d.ok(&["insert-text", "cc", "note", "0", text]);
        d.ok(&["put", "cc", "meta", &format!("{{\"{key}\": 1}}")]);
    }
    x.sync(&server);
    y.sync(&server);
    x.sync(&server);
    let shown = x.show("cc");
    assert_eq!(shown, y.show("cc"));
    assert_eq!(shown["k"], json!(11), "{shown}");
    assert_eq!(sorted(&shown["items"]), vec![json!("bread"), json!("jam")]);
    let note = shown["note"].as_str().unwrap();
    assert!(note.contains("milk") && note.contains("oat "), "{shown}");
    assert_eq!(shown["meta"], json!({"a": 1, "b": 1}));

    // The same for a Yrs document's nested types.
    for (d, tag, text) in [(&x, "red", "day one"), (&y, "blue", "tram 28")] {
        d.ok(&["create", "trip", "--kind", "yrs"]);
        d.ok(&["push", "trip", "meta/tags", &format!("\"{tag}\"")]);
        d.ok(&["insert-text", "trip", "meta/log", "0", text]);
    }
    x.sync(&server);
    y.sync(&server);
    x.sync(&server);
    let trip = x.show("trip");
    assert_eq!(trip, y.show("trip"));
    assert_eq!(
        sorted(&trip["meta"]["tags"]),
        vec![json!("blue"), json!("red")]
    );
    let log = trip["meta"]["log"].as_str().unwrap();
    assert!(log.contains("day one") && log.contains("tram 28"), "{trip}");
}

//! Conflict policies end to end: two `concord` devices write the same key offline under
//! each policy, sync through a real `concord-server`, and `get`, `get --all`, `show` and
//! `resolve` give the results docs/conflicts.md documents.

mod support;

use serde_json::{json, Value};
use support::{Device, Server};

/// `a` creates document `d-<kind>-<policy>` with `policy` on every top-level key (yrs: every key of root `m`);
/// both devices have it; then `a` writes `va` and `b` writes `vb` at `key`, offline, in
/// that order; then both sync (a, b, a).
fn concurrent_writes(
    server: &Server,
    dir: &std::path::Path,
    kind: &str,
    policy: &str,
    key: &str,
    va: &str,
    vb: &str,
) -> (Device, Device, String) {
    let a = Device::new(dir, &format!("a-{kind}-{}", policy.replace(':', "-")));
    let b = Device::new(dir, &format!("b-{kind}-{}", policy.replace(':', "-")));
    // One relay serves every case: each case has its own document id.
    let doc = format!("d-{kind}-{}", policy.replace(':', "-"));
    let doc = doc.as_str();
    a.ok(&["create", doc, "--kind", kind]);
    let pattern = if kind == "yrs" { "m/*" } else { "*" };
    let set = a.json(&["policy", "set", doc, pattern, policy]);
    assert_eq!(
        set,
        json!({"doc": doc, "pattern": pattern, "policy": policy})
    );
    a.sync(server);
    b.sync(server);
    a.ok(&["put", doc, key, va]);
    b.ok(&["put", doc, key, vb]);
    a.sync(server);
    b.sync(server);
    a.sync(server);
    (a, b, doc.to_string())
}

fn device_id(d: &Device) -> Value {
    d.json(&["status"])["device"].clone()
}

fn values(all: &Value) -> Vec<Value> {
    all.as_array()
        .unwrap()
        .iter()
        .map(|v| v["value"].clone())
        .collect()
}

/// `show --json`: the document, then `{"conflicts": [...]}` when there are some.
fn show_lines(d: &Device, doc: &str) -> Vec<Value> {
    d.ok(&["--json", "show", doc])
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn each_policy_resolves_two_offline_writes_alike_on_both_devices() {
    let server = Server::start();
    let dir = tempfile::tempdir().unwrap();
    for kind in ["automerge", "yrs"] {
        let key = if kind == "yrs" { "m/title" } else { "title" };

        // lww: b wrote later (its hybrid logical clock is higher): b's value everywhere.
        let (a, b, doc) =
            concurrent_writes(&server, dir.path(), kind, "lww", key, "from-a", "from-b");
        for d in [&a, &b] {
            assert_eq!(d.json(&["get", &doc, key]), json!("from-b"), "{kind} lww");
            let all = d.json(&["get", "--all", &doc, key]);
            assert_eq!(
                values(&all),
                vec![json!("from-a"), json!("from-b")],
                "{kind}: oldest first"
            );
            assert_eq!(all[0]["origin"], device_id(&a));
            assert_eq!(all[1]["origin"], device_id(&b));
            assert!(all[0]["hlc"]["ms"].as_u64().unwrap() > 0);
            assert_eq!(
                show_lines(d, &doc).len(),
                1,
                "lww leaves no conflict to mark"
            );
        }

        // keep-all: both values until resolved; show marks the conflict.
        let (a, b, doc) =
            concurrent_writes(&server, dir.path(), kind, "keep-all", key, "red", "blue");
        for d in [&a, &b] {
            let all = d.json(&["get", "--all", &doc, key]);
            assert_eq!(
                values(&all),
                vec![json!("red"), json!("blue")],
                "{kind} keep-all"
            );
            let lines = show_lines(d, &doc);
            assert_eq!(
                lines.get(1),
                Some(&json!({"conflicts": [key]})),
                "{kind}: {lines:?}"
            );
            let text = d.ok(&["show", &doc]);
            assert!(
                text.contains("unresolved conflicts: ") && text.contains(key),
                "{text}"
            );
        }
        let resolved = a.json(&["resolve", &doc, key, "purple"]);
        assert_eq!(resolved["superseded"], json!(2), "{resolved}");
        a.sync(&server);
        b.sync(&server);
        for d in [&a, &b] {
            assert_eq!(
                values(&d.json(&["get", "--all", &doc, key])),
                vec![json!("purple")]
            );
            assert_eq!(d.json(&["get", &doc, key]), json!("purple"));
            assert_eq!(show_lines(d, &doc).len(), 1, "{kind}: resolved");
        }

        // merge:max: the greater number everywhere, whichever was written last.
        let (a, b, doc) = concurrent_writes(&server, dir.path(), kind, "merge:max", key, "9", "5");
        for d in [&a, &b] {
            assert_eq!(d.json(&["get", &doc, key]), json!(9), "{kind} merge:max");
            assert_eq!(
                values(&d.json(&["get", "--all", &doc, key])),
                vec![json!(9), json!(5)]
            );
        }

        // crdt: the CRDT's own winner, the same on both; one value, not stamped.
        let (a, b, doc) = concurrent_writes(&server, dir.path(), kind, "crdt", key, "x", "y");
        let shown = a.json(&["get", &doc, key]);
        assert_eq!(b.json(&["get", &doc, key]), shown, "{kind} crdt");
        let all = b.json(&["get", "--all", &doc, key]);
        assert_eq!(all, json!([{"value": shown, "origin": null, "hlc": null}]));
        assert_eq!(a.show(&doc), b.show(&doc));
    }
}

#[test]
fn bad_policies_are_refused_with_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let a = Device::new(dir.path(), "a");
    a.ok(&["create", "d"]);
    let (code, err) = a.fails(&["policy", "set", "d", "title", "newest"]);
    assert_eq!(code, 1);
    assert!(err.contains("unknown policy \"newest\""), "{err}");
    let (_, err) = a.fails(&["policy", "set", "d", "title", "merge:median"]);
    assert!(err.contains("merge:max"), "{err}");
    let (_, err) = a.fails(&["policy", "set", "d", "a/**/b", "lww"]);
    assert!(err.contains("`**` may only end a pattern"), "{err}");
    a.ok(&["policy", "set", "d", "settings/*", "merge:union"]);
    assert_eq!(
        a.json(&["policy", "list", "d"]),
        json!([{"pattern": "settings/*", "policy": "merge:union"}])
    );
}

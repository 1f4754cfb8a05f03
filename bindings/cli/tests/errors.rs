//! Bad input gets a non-zero exit and a clear message on stderr, and stores nothing.

mod support;

use serde_json::json;
use support::{free_port, Device};

#[test]
fn unknown_document_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    let a = Device::new(dir.path(), "a");
    for args in [
        &["get", "nope"][..],
        &["show", "nope"],
        &["put", "nope", "k", "1"],
        &["status", "nope"],
        &["edit-loop", "nope", "--count", "1"],
    ] {
        let (code, stderr) = a.fails(args);
        assert_eq!(code, 1, "{args:?}");
        assert!(
            stderr.starts_with("error: ") && stderr.contains(r#"no document "nope""#),
            "{args:?}: {stderr}"
        );
    }
    assert_eq!(a.json(&["list"]), json!([]), "nothing was created");
}

#[test]
fn bad_paths_and_edits_are_reported_and_change_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let a = Device::new(dir.path(), "a");
    a.ok(&["create", "notes"]);
    a.ok(&["create", "todo", "--kind", "yrs"]);
    a.ok(&["put", "notes", "title", "kept"]);
    a.ok(&["put", "todo", "meta/title", "kept"]);

    let cases: &[(&[&str], &str)] = &[
        (&["put", "notes", "a//b", "1"], "empty segment"),
        (&["get", "notes", "missing"], r#"nothing at "missing""#),
        (&["put", "todo", "title", r#""x""#], "root type"),
        (&["incr", "todo", "meta/count"], "automerge"),
        (&["insert", "notes", "title/x", "1"], "invalid"),
        (&["delete-text", "todo", "meta/title", "0", "1"], "text"),
        (&["insert-text", "notes", "title", "99", "x"], ""),
    ];
    for (args, needle) in cases {
        let (code, stderr) = a.fails(args);
        assert_eq!(code, 1, "{args:?}: {stderr}");
        assert!(stderr.starts_with("error: "), "{args:?}: {stderr}");
        assert!(stderr.contains(needle), "{args:?}: {stderr}");
    }
    assert_eq!(a.show("notes"), json!({"title": "kept"}));
    assert_eq!(a.show("todo"), json!({"meta": {"title": "kept"}}));
    assert_eq!(a.pending("notes"), 1);
    assert_eq!(a.pending("todo"), 1);
}

#[test]
fn sync_without_a_server_fails_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let a = Device::new(dir.path(), "a");
    a.ok(&["create", "notes"]);
    a.ok(&["put", "notes", "k", "1"]);
    let url = format!("ws://127.0.0.1:{}", free_port());
    let (code, stderr) = a.fails(&["sync", "--server", &url, "--timeout", "20"]);
    assert_eq!(code, 1);
    assert!(
        stderr.contains("cannot connect") && stderr.contains(&url),
        "{stderr}"
    );
    assert_eq!(a.pending("notes"), 1, "the outbox is intact");
}

#[test]
fn usage_errors_exit_with_2() {
    let dir = tempfile::tempdir().unwrap();
    let a = Device::new(dir.path(), "a");
    let (code, stderr) = a.fails(&["create", "notes", "--kind", "bogus"]);
    assert_eq!(code, 2);
    assert!(
        stderr.contains("bogus") && stderr.contains("automerge"),
        "{stderr}"
    );
    let (code, _) = a.fails(&["frobnicate"]);
    assert_eq!(code, 2);
    let (code, stderr) = a.fails(&["insert-text", "notes", "body", "-1", "x"]);
    assert_eq!(code, 2, "{stderr}");

    // No store given at all.
    let out = std::process::Command::new(support::concord_bin())
        .args(["list"])
        .env_remove("CONCORD_DB")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--db"));
    assert_eq!(a.json(&["list"]), json!([]));
}

#[test]
fn plain_values_are_strings_and_json_values_are_json() {
    let dir = tempfile::tempdir().unwrap();
    let a = Device::new(dir.path(), "a");
    a.ok(&["create", "notes"]);
    a.ok(&["put", "notes", "plain", "hello world"]);
    a.ok(&["put", "notes", "quoted", r#""42""#]);
    a.ok(&["put", "notes", "number", "42"]);
    a.ok(&["put", "notes", "object", r#"{"a": [1, true, null]}"#]);
    a.ok(&["put", "notes", "negative", "-3"]);
    a.ok(&["insert-text", "notes", "text", "0", "héllo"]);
    a.ok(&["insert-text", "notes", "text", "5", "!"]);
    a.ok(&["delete-text", "notes", "text", "1", "1"]);
    a.ok(&["push", "notes", "list", "b"]);
    a.ok(&["insert", "notes", "list/0", "a"]);
    a.ok(&["incr", "notes", "count", "-2"]);
    a.ok(&["delete", "notes", "quoted"]);
    assert_eq!(
        a.show("notes"),
        json!({
            "plain": "hello world",
            "number": 42,
            "object": {"a": [1, true, null]},
            "negative": -3,
            "text": "hllo!",
            "list": ["a", "b"],
            "count": -2,
        })
    );
}

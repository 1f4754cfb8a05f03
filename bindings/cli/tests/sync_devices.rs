//! Devices that are separate `concord` processes on separate SQLite files converge through
//! a real `concord-server` process: offline edits, tokens, `sync --watch`, several `--server` URLs.

mod support;

use std::time::Duration;

use serde_json::{json, Value};
use support::{server_cmd, Device, Server};

/// Every document of `device` has nothing pending.
fn assert_nothing_pending(name: &str, device: &Device) {
    let status = device.status();
    assert_eq!(status["pending"], json!(0), "{name}: {status}");
    for doc in status["docs"].as_array().expect("docs") {
        assert_eq!(doc["pending"], json!(0), "{name}: {doc}");
    }
}

fn strings(value: &Value) -> Vec<&str> {
    value
        .as_array()
        .unwrap_or_else(|| panic!("{value} is not an array"))
        .iter()
        .map(|v| v.as_str().expect("a string"))
        .collect()
}

#[test]
fn two_devices_converge_offline_then_third_device_gets_all() {
    let server = Server::start();
    let dir = tempfile::tempdir().unwrap();
    let a = Device::new(dir.path(), "a");
    let b = Device::new(dir.path(), "b");

    // A creates both documents and syncs; B learns them from the relay.
    a.ok(&["create", "notes"]);
    a.ok(&["create", "todo", "--kind", "yrs"]);
    a.ok(&["put", "notes", "title", "shared"]); // not JSON: stored as a string
    a.ok(&["push", "notes", "items", r#""first""#]);
    a.ok(&["incr", "notes", "likes"]);
    a.ok(&["insert-text", "todo", "body", "0", "hello"]);
    a.ok(&["put", "todo", "meta/title", r#""Todo""#]);
    let summary = a.sync(&server);
    assert_eq!(summary["pending"], json!(0), "{summary}");
    let summary = b.sync(&server);
    assert_eq!(summary["new"], json!(["notes", "todo"]), "{summary}");
    assert_eq!(b.show("notes"), a.show("notes"));
    assert_eq!(b.show("todo"), a.show("todo"));
    assert_eq!(
        b.json(&["list"]),
        json!([
            {"id": "notes", "kind": "automerge"},
            {"id": "todo", "kind": "yrs"},
        ])
    );

    // Offline, concurrent edits on both devices.
    a.ok(&["put", "notes", "from_a", "1"]);
    b.ok(&["put", "notes", "from_b", r#"{"n": 2}"#]);
    a.ok(&["push", "notes", "items", r#""from A""#]);
    b.ok(&["push", "notes", "items", r#""from B""#]);
    a.ok(&["incr", "notes", "likes"]);
    b.ok(&["incr", "notes", "likes", "2"]);
    a.ok(&["insert-text", "todo", "body", "0", "A: "]);
    b.ok(&["insert-text", "todo", "body", "5", " from B"]);
    a.ok(&["push", "todo", "tasks", r#""task A""#]);
    b.ok(&["push", "todo", "tasks", r#""task B""#]);
    b.ok(&["put", "todo", "meta/owner", r#""bob""#]);
    assert_eq!(a.pending("notes"), 3);
    assert_eq!(b.pending("todo"), 3);

    a.sync(&server);
    b.sync(&server);
    a.sync(&server);

    for doc in ["notes", "todo"] {
        assert_eq!(a.show(doc), b.show(doc), "{doc} differs between A and B");
    }
    let notes = a.show("notes");
    assert_eq!(notes["title"], json!("shared"));
    assert_eq!(notes["from_a"], json!(1));
    assert_eq!(notes["from_b"], json!({"n": 2}));
    assert_eq!(notes["likes"], json!(4), "concurrent increments add up");
    let items = strings(&notes["items"]);
    assert_eq!(items.len(), 3, "{items:?}");
    assert_eq!(items[0], "first");
    assert!(
        items.contains(&"from A") && items.contains(&"from B"),
        "{items:?}"
    );

    let todo = a.show("todo");
    assert_eq!(todo["body"], json!("A: hello from B"));
    assert_eq!(todo["meta"], json!({"title": "Todo", "owner": "bob"}));
    let mut tasks = strings(&todo["tasks"]);
    tasks.sort();
    assert_eq!(tasks, ["task A", "task B"]);
    assert_eq!(
        a.ok(&["get", "todo", "body"]).trim(),
        r#""A: hello from B""#
    );

    // A new, empty device gets everything.
    let c = Device::new(dir.path(), "c");
    let summary = c.sync(&server);
    assert_eq!(summary["documents"], json!(2), "{summary}");
    assert_eq!(c.show("notes"), notes);
    assert_eq!(c.show("todo"), todo);
    assert_eq!(c.json(&["list"]), a.json(&["list"]));

    for (name, device) in [("A", &a), ("B", &b), ("C", &c)] {
        assert_nothing_pending(name, device);
    }
    // All three hold the same updates.
    let versions = |d: &Device| -> Vec<Value> {
        d.status()["docs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|doc| doc["version"].clone())
            .collect()
    };
    assert_eq!(versions(&a), versions(&b));
    assert_eq!(versions(&a), versions(&c));
}

#[test]
fn tokens_gate_sync_and_refusals_are_reported() {
    let server = Server::start_with(&["--auth-secret", "s3cret"]);
    let write = server_cmd(&[
        "token", "--secret", "s3cret", "--docs", "team/*", "--right", "write",
    ]);
    let read = server_cmd(&[
        "token", "--secret", "s3cret", "--docs", "team/*", "--right", "read",
    ]);
    let dir = tempfile::tempdir().unwrap();
    let a = Device::new(dir.path(), "a");
    a.ok(&["create", "team/plan"]);
    a.ok(&["put", "team/plan", "goal", "ship it"]);

    let (code, stderr) = a.fails(&["sync", "--server", &server.url]);
    assert_eq!(code, 1);
    assert!(stderr.contains("requires an access token"), "{stderr}");
    let (code, stderr) = a.fails(&["sync", "--server", &server.url, "--token", "not-a-token"]);
    assert_eq!(code, 1);
    assert!(stderr.contains("invalid access token"), "{stderr}");
    assert_eq!(a.pending("team/plan"), 1, "a refused sync keeps the outbox");

    a.ok(&["sync", "--server", &server.url, "--token", &write]);
    assert_eq!(a.pending("team/plan"), 0);

    // A read-only device receives, but its own edits are refused and stay pending.
    let b = Device::new(dir.path(), "b");
    b.ok(&["sync", "--server", &server.url, "--token", &read]);
    assert_eq!(b.show("team/plan"), json!({"goal": "ship it"}));
    b.ok(&["put", "team/plan", "goal", "changed"]);
    let (code, stderr) = b.fails(&["sync", "--server", &server.url, "--token", &read]);
    assert_eq!(code, 3, "a refused document: {stderr}");
    assert!(stderr.contains("write access"), "{stderr}");
    assert_eq!(b.pending("team/plan"), 1);
    assert_eq!(b.ok(&["get", "team/plan", "goal"]).trim(), r#""changed""#);
}

#[test]
fn watch_prints_remote_changes_and_stops_on_sigterm() {
    let server = Server::start();
    let dir = tempfile::tempdir().unwrap();
    let a = Device::new(dir.path(), "a");
    let b = Device::new(dir.path(), "b");
    a.ok(&["create", "notes"]);
    a.ok(&["put", "notes", "title", "v1"]);
    a.sync(&server);

    let (mut watcher, lines) = b.watch(&server.url, &[]);
    let event = |line: &str| -> Value { serde_json::from_str(line).expect("a JSON line") };
    let wait = Duration::from_secs(30);

    lines
        .until(wait, |l| event(l)["event"] == "connected")
        .expect("the watcher connects");
    // B learns the document A created.
    lines
        .until(wait, |l| {
            event(l)["event"] == "change" && event(l)["doc"] == "notes"
        })
        .expect("a change event for notes");
    // Reads work while the watcher runs.
    let mut seen = Value::Null;
    for _ in 0..200 {
        seen = b.show("notes");
        if seen["title"] == "v1" {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(seen, json!({"title": "v1"}));

    // A live edit from A reaches B while it watches.
    a.ok(&["put", "notes", "title", "v2"]);
    a.sync(&server);
    let line = lines
        .until(wait, |l| {
            let e = event(l);
            e["event"] == "change" && e["doc"] == "notes" && e["source"] == "remote"
        })
        .expect("a remote change event");
    assert_eq!(event(&line)["pending"], json!(0));
    let mut title = Value::Null;
    for _ in 0..200 {
        title = b.show("notes")["title"].clone();
        if title == "v2" {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(title, json!("v2"));

    // Another process edits B's store while the watcher runs: the edit commits at once and
    // the watcher notices the new outbox entry and sends it.
    b.ok(&["put", "notes", "from_b", "edited beside the watcher"]);
    let mut seen_by_a = Value::Null;
    for _ in 0..100 {
        a.sync(&server);
        seen_by_a = a.show("notes")["from_b"].clone();
        if seen_by_a != Value::Null {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(seen_by_a, json!("edited beside the watcher"));
    let mut pending = u64::MAX;
    for _ in 0..100 {
        pending = b.pending("notes");
        if pending == 0 {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(pending, 0, "the watcher's connection acknowledged it");

    // SIGTERM stops it cleanly.
    let pid = watcher.0.id().to_string();
    let killed = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .expect("run kill");
    assert!(killed.success());
    lines
        .until(wait, |l| event(l)["event"] == "stopped")
        .expect("a stopped event");
    let status = watcher.0.wait().expect("wait for the watcher");
    assert!(status.success(), "sync --watch exited with {status}");
}

#[test]
fn documents_outside_the_token_are_refused_and_the_others_sync_with_exit_code_3() {
    let server = Server::start_with(&["--auth-secret", "s3cret"]);
    let team = server_cmd(&["token", "--secret", "s3cret", "--docs", "team/*"]);
    let dir = tempfile::tempdir().unwrap();
    let a = Device::new(dir.path(), "a");
    for doc in ["team/a", "team/b", "private"] {
        a.ok(&["create", doc]);
        a.ok(&["put", doc, "k", doc]);
    }

    // Text: the summary on stdout names the refused document; stderr explains it.
    let out = a.run(&["sync", "--server", &server.url, "--token", &team]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(3),
        "stdout: {stdout}\nstderr: {stderr}"
    );
    assert!(
        stdout.starts_with("synced 2 documents") && stdout.contains("refused: private"),
        "{stdout}"
    );
    assert!(
        stderr.starts_with("error: ")
            && stderr.contains(r#""private""#)
            && stderr.contains("forbidden"),
        "{stderr}"
    );
    assert!(
        !stderr.contains("team/"),
        "only refused documents are errors: {stderr}"
    );
    assert_eq!(a.pending("team/a"), 0);
    assert_eq!(a.pending("team/b"), 0);
    assert_eq!(
        a.pending("private"),
        1,
        "the refused document keeps its outbox"
    );

    // JSON: one object listing what synced and what was refused, with code and message.
    a.ok(&["put", "team/a", "k", "again"]);
    let out = a.run(&["--json", "sync", "--server", &server.url, "--token", &team]);
    assert_eq!(out.status.code(), Some(3));
    let report: Value = serde_json::from_slice(&out.stdout).expect("one JSON object");
    assert_eq!(strings(&report["synced"]), ["team/a", "team/b"]);
    assert_eq!(report["documents"], json!(2));
    assert_eq!(report["sent"], json!(1));
    assert_eq!(report["pending"], json!(1));
    let refused = report["refused"].as_array().expect("refused is a list");
    assert_eq!(refused.len(), 1, "{report}");
    assert_eq!(refused[0]["doc"], json!("private"));
    assert_eq!(refused[0]["code"], json!("forbidden"));
    assert_eq!(refused[0]["code_number"], json!(12));
    assert!(!refused[0]["message"]
        .as_str()
        .unwrap_or_default()
        .is_empty());

    // A complete sync lists no refusals and exits 0.
    let b = Device::new(dir.path(), "b");
    b.ok(&["create", "team/c"]);
    let report = b.json(&["sync", "--server", &server.url, "--token", &team]);
    assert_eq!(report["refused"], json!([]));
    assert_eq!(strings(&report["synced"]), ["team/a", "team/b", "team/c"]);

    // The exit codes are documented.
    let help = a.ok(&["sync", "--help"]);
    assert!(
        help.contains("Exit status") && help.contains("3  synced, but"),
        "{help}"
    );
}

#[test]
fn watch_reports_an_expired_token_and_exits_non_zero() {
    let server = Server::start_with(&["--auth-secret", "s3cret"]);
    // Expires in a second or two: during the watch (or, on a slow machine, before its
    // Hello; it must stop either way).
    let token = server_cmd(&["token", "--secret", "s3cret", "--docs", "*", "--ttl", "2"]);
    let dir = tempfile::tempdir().unwrap();
    let a = Device::new(dir.path(), "a");
    a.ok(&["create", "notes"]);
    let (mut watcher, lines) = a.watch(&server.url, &["--token", &token]);
    let event = |line: &str| -> Value { serde_json::from_str(line).expect("a JSON line") };
    let refused = lines
        .until(Duration::from_secs(30), |l| event(l)["event"] == "refused")
        .expect("the watcher reports the refusal");
    assert_eq!(event(&refused)["code"], json!("token_expired"), "{refused}");
    let mut status = None;
    for _ in 0..300 {
        status = watcher.0.try_wait().expect("poll the watcher");
        if status.is_some() {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let status = status.expect("sync --watch exits after its token expired");
    assert_eq!(status.code(), Some(1));
    let mut stderr = String::new();
    std::io::Read::read_to_string(
        watcher.0.stderr.as_mut().expect("piped stderr"),
        &mut stderr,
    )
    .unwrap();
    assert!(
        stderr.starts_with("error: ") && stderr.contains("token_expired"),
        "{stderr}"
    );
}

#[test]
fn sync_takes_several_server_urls_and_moves_past_a_node_that_is_down() {
    let server = Server::start();
    let dir = tempfile::tempdir().unwrap();
    let a = Device::new(dir.path(), "a");
    let b = Device::new(dir.path(), "b");
    a.ok(&["create", "notes"]);
    a.ok(&["put", "notes", "k", "1"]);
    let dead = format!("ws://127.0.0.1:{}", support::free_port());

    // Comma-separated: the first node is down, the second serves.
    let both = format!("{dead},{}", server.url);
    let summary = a.json(&["sync", "--server", &both, "--timeout", "60"]);
    assert_eq!(summary["pending"], json!(0), "{summary}");
    // Repeated.
    let summary = b.json(&[
        "sync",
        "--server",
        &dead,
        "--server",
        &server.url,
        "--timeout",
        "60",
    ]);
    assert_eq!(summary["new"], json!(["notes"]), "{summary}");
    assert_eq!(b.show("notes"), a.show("notes"));
    // No node answers: a connection error once each was tried (not a timeout).
    let (code, stderr) = b.fails(&[
        "sync",
        "--server",
        &format!("{dead},{dead}"),
        "--timeout",
        "60",
    ]);
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains("cannot connect"), "{stderr}");
}

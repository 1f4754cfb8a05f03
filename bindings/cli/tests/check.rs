//! `concord check` finds damage in a store (the SQLite file, or a document's stored bytes),
//! and every other command that hits damage says so, naming the file and `concord check`.

mod support;

use serde_json::json;
use support::Device;

/// stderr names the store and points to `concord check`.
fn points_to_check(device: &Device, stderr: &str) {
    let db = device.db.display().to_string();
    assert!(stderr.starts_with("error: "), "{stderr}");
    assert!(stderr.contains(&db), "names the file: {stderr}");
    assert!(
        stderr.contains(&format!("concord --db {db} check")),
        "suggests check: {stderr}"
    );
}

#[test]
fn a_healthy_store_checks_ok() {
    let dir = tempfile::tempdir().unwrap();
    let a = Device::new(dir.path(), "a");
    a.ok(&["create", "notes"]);
    a.ok(&["create", "trip", "--kind", "yrs"]);
    a.ok(&["edit-loop", "notes", "--count", "300"]);
    a.ok(&["insert-text", "trip", "log", "0", "day one"]);
    assert!(a.ok(&["check"]).starts_with("ok"));
    assert!(a.ok(&["doctor"]).starts_with("ok"));
    let report = a.json(&["check"]);
    assert_eq!(report["ok"], json!(true));
    assert_eq!(report["docs"], json!(2));
    assert_eq!(report["problems"], json!([]));
    assert_eq!(report["unsynced"], json!({"notes": 300, "trip": 1}));
}

#[test]
fn random_bytes_in_the_file_fail_the_check() {
    let dir = tempfile::tempdir().unwrap();
    let a = Device::new(dir.path(), "a");
    // One large edit per document (one row, never folded into the checkpoint): nothing is
    // pruned, no page is free, and the file has a middle to damage.
    for d in 0..6 {
        let doc = format!("doc{d}");
        a.ok(&["create", &doc]);
        let text: String = (0..3_000u32)
            .map(|i| format!("{:x}", i.wrapping_mul(2_654_435_761) ^ d))
            .collect();
        a.ok(&["insert-text", &doc, "body", "0", &text]);
    }
    a.checkpoint();
    let len = a.file_len();
    assert!(len > 64 * 1024, "the file has a middle ({len} bytes)");
    a.scribble(len / 2 / 4096 * 4096, 8192);
    assert_ne!(a.integrity(), "ok", "the file is damaged");

    let (code, stderr) = a.fails(&["check"]);
    assert_eq!(code, 1, "{stderr}");
    let db = a.db.display().to_string();
    assert!(
        stderr.contains(&db) && stderr.contains("corrupt") && stderr.contains("backup"),
        "{stderr}"
    );
    assert!(stderr.contains("re-sync"), "{stderr}");
    let out = a.run(&["check"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("database: "),
        "lists the problems: {stdout}"
    );

    let out = a.run(&["--json", "check"]);
    assert_eq!(out.status.code(), Some(1));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["ok"], json!(false));
    assert_eq!(report["file"], json!(db));
    assert_eq!(report["problems"][0]["kind"], json!("database"));
    // Every document had unsynced edits: listed as at risk, or (when the damage hides
    // the outbox) said to be unknown.
    assert!(stderr.contains("unsynced local edits"), "{stderr}");
}

#[test]
fn a_file_that_is_not_a_database_is_reported_by_every_command() {
    let dir = tempfile::tempdir().unwrap();
    let a = Device::new(dir.path(), "a");
    a.ok(&["create", "notes"]);
    a.ok(&["put", "notes", "title", "kept"]);
    a.checkpoint();
    a.scribble(0, 4096);

    for args in [
        &["list"][..],
        &["show", "notes"],
        &["get", "notes", "title"],
        &["put", "notes", "title", "x"],
        &["status"],
    ] {
        let (code, stderr) = a.fails(args);
        assert_eq!(code, 1, "{args:?}: {stderr}");
        points_to_check(&a, &stderr);
    }
    let (code, stderr) = a.fails(&["check"]);
    assert_eq!(code, 1, "{stderr}");
    assert!(
        stderr.contains(&a.db.display().to_string()) && stderr.contains("backup"),
        "{stderr}"
    );
}

#[test]
fn a_garbage_snapshot_is_named_by_check_and_reported_by_show() {
    let dir = tempfile::tempdir().unwrap();
    let a = Device::new(dir.path(), "a");
    a.ok(&["create", "notes"]);
    a.ok(&["create", "other"]);
    a.ok(&["put", "other", "title", "fine"]);
    // Past the snapshot interval (256), so `notes` has a snapshot.
    a.ok(&["edit-loop", "notes", "--count", "300"]);
    let changed = a
        .sql()
        .execute(
            "UPDATE checkpoints SET state = x'856f4a83deadbeef00ff' WHERE doc_id = 'notes'",
            [],
        )
        .unwrap();
    assert_eq!(changed, 1, "notes had a snapshot");
    assert_eq!(a.integrity(), "ok", "the SQLite file itself is intact");

    let (code, stderr) = a.fails(&["check"]);
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains(r#"document "notes""#), "{stderr}");
    assert!(
        stderr.contains("notes (300)"),
        "unsynced edits at risk: {stderr}"
    );
    let out = a.run(&["--json", "check"]);
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["ok"], json!(false));
    assert_eq!(report["docs"], json!(2));
    let problems = report["problems"].as_array().unwrap();
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert_eq!(problems[0]["doc"], json!("notes"));
    assert_eq!(problems[0]["kind"], json!("snapshot"));

    for args in [
        &["show", "notes"][..],
        &["get", "notes", "counter"],
        &["incr", "notes", "counter"],
    ] {
        let (code, stderr) = a.fails(args);
        assert_eq!(code, 1, "{args:?}: {stderr}");
        points_to_check(&a, &stderr);
        assert!(stderr.contains(r#"document "notes""#), "{args:?}: {stderr}");
    }
    // The rest of the store still works.
    assert_eq!(a.show("other"), json!({"title": "fine"}));
    assert_eq!(a.json(&["list"]).as_array().unwrap().len(), 2);
}

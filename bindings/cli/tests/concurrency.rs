//! Several `concord` processes on ONE store file at once (edits, edit loops, one-shot
//! syncs, and a `sync --watch` alongside) all succeed, and every edit survives and reaches
//! the relay: processes wait for SQLite's write lock instead of failing with
//! "database is locked".

mod support;

use std::process::Output;
use std::sync::mpsc;
use std::time::Duration;

use serde_json::{json, Value};
use support::{Device, Server};

/// How many times each edit stream runs its command.
const ROUNDS: usize = 8;
/// Commits per `edit-loop` process.
const LOOP_COUNT: u64 = 30;

/// One concurrent stream: runs its commands one after another, reporting each failure.
fn stream(db: std::path::PathBuf, commands: Vec<Vec<String>>) -> Vec<String> {
    let device = Device { db };
    let mut failures = Vec::new();
    for args in commands {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let out: Output = device.run(&args);
        if !out.status.success() {
            failures.push(format!(
                "concord {args:?} failed ({}): {}",
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
    }
    failures
}

fn args(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

#[test]
fn concurrent_processes_on_one_store_all_succeed_and_keep_every_edit() {
    let server = Server::start();
    let dir = tempfile::tempdir().unwrap();
    let device = Device::new(dir.path(), "shared");
    device.ok(&["create", "notes"]);
    device.ok(&["create", "log", "--kind", "yrs"]);
    device.sync(&server);

    // The README's scenario: a watcher keeps the store connected while other processes edit.
    let (watcher, lines) = device.watch(&server.url, &[]);
    lines
        .until(Duration::from_secs(30), |l| {
            serde_json::from_str::<Value>(l).is_ok_and(|e| e["event"] == "connected")
        })
        .expect("the watcher connects");

    let url = server.url.clone();
    let streams: Vec<Vec<Vec<String>>> = vec![
        // Automerge counter: one long edit loop ...
        vec![args(&[
            "edit-loop",
            "notes",
            "--count",
            &LOOP_COUNT.to_string(),
        ])],
        // ... and separate `incr` processes on the same counter.
        (0..ROUNDS)
            .map(|_| args(&["incr", "notes", "counter"]))
            .collect(),
        // Separate `put` processes, one key each.
        (0..ROUNDS)
            .map(|i| args(&["put", "notes", &format!("k{i}"), &i.to_string()]))
            .collect(),
        // Yrs text: an edit loop appending digits, and `insert-text` processes at 0.
        vec![args(&[
            "edit-loop",
            "log",
            "--count",
            &LOOP_COUNT.to_string(),
        ])],
        (0..ROUNDS)
            .map(|_| args(&["insert-text", "log", "log", "0", "x"]))
            .collect(),
        // One-shot syncs with the relay while all of the above runs.
        (0..ROUNDS / 2)
            .map(|_| args(&["sync", "--server", &url, "--timeout", "60"]))
            .collect(),
    ];
    let (tx, rx) = mpsc::channel();
    let count = streams.len();
    for commands in streams {
        let tx = tx.clone();
        let db = device.db.clone();
        std::thread::spawn(move || {
            let _ = tx.send(stream(db, commands));
        });
    }
    let mut failures = Vec::new();
    for _ in 0..count {
        failures.extend(
            rx.recv_timeout(Duration::from_secs(300))
                .expect("every stream finishes in time"),
        );
    }
    assert!(
        failures.is_empty(),
        "{} process(es) failed:\n{}",
        failures.len(),
        failures.join("\n")
    );

    // Every edit is in the store.
    let notes = device.show("notes");
    let expected_counter = LOOP_COUNT + ROUNDS as u64;
    assert_eq!(notes["counter"], json!(expected_counter), "{notes}");
    for i in 0..ROUNDS {
        assert_eq!(notes[format!("k{i}")], json!(i), "{notes}");
    }
    let log = device.show("log")["log"].clone();
    let text = log.as_str().unwrap_or_else(|| panic!("log is text: {log}"));
    assert_eq!(text.matches('x').count(), ROUNDS, "{text}");
    assert_eq!(text.len(), ROUNDS + LOOP_COUNT as usize, "{text}");

    // ... and on the relay: a fresh device receives all of it.
    drop(watcher);
    device.sync(&server);
    assert_eq!(device.pending("notes"), 0);
    assert_eq!(device.pending("log"), 0);
    let other = Device::new(dir.path(), "other");
    other.sync(&server);
    assert_eq!(other.show("notes"), notes);
    assert_eq!(other.show("log")["log"], json!(text));
}

//! A device process killed mid-stream keeps every edit whose commit returned, and its
//! outbox, and delivers them at the next sync.

mod support;

use std::process::Stdio;
use std::time::Duration;

use support::{Device, KillOnDrop, Lines, Server};

#[test]
fn device_killed_after_commit_keeps_its_edits() {
    let dir = tempfile::tempdir().unwrap();
    let a = Device::new(dir.path(), "a");
    a.ok(&["create", "doc"]);

    let mut child = a.command();
    child
        .args(["edit-loop", "doc", "--count", "100000"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    let mut child = KillOnDrop(child.spawn().expect("start edit-loop"));
    let lines = Lines::new(child.0.stdout.take().expect("piped stdout"));
    let mut k = 0u64;
    while k < 50 {
        let line = lines
            .next(Duration::from_secs(60))
            .expect("edit-loop keeps printing `committed <i>`");
        let i = line
            .strip_prefix("committed ")
            .and_then(|n| n.parse::<u64>().ok())
            .unwrap_or_else(|| panic!("unexpected line {line:?}"));
        assert_eq!(i, k + 1, "commits are reported in order");
        k = i;
    }
    child.0.kill().expect("SIGKILL the device");
    child.0.wait().expect("reap it");
    // Lines printed before the kill landed may still be buffered in the pipe.
    while let Some(line) = lines.next(Duration::from_millis(500)) {
        if let Some(i) = line.strip_prefix("committed ").and_then(|n| n.parse().ok()) {
            k = k.max(i);
        }
    }

    // Reopened by new processes: every reported commit is there, and still pending.
    let counter: u64 = a.ok(&["get", "doc", "counter"]).trim().parse().unwrap();
    assert!(counter >= k, "counter {counter} < {k} reported commits");
    let pending = a.pending("doc");
    assert!(pending >= k, "pending {pending} < {k} reported commits");
    assert_eq!(pending, counter, "one outbox entry per committed increment");
    // The store is still writable after the crash.
    a.ok(&["incr", "doc", "counter"]);
    let counter = counter + 1;

    let server = Server::start();
    a.sync(&server);
    assert_eq!(a.pending("doc"), 0);

    let b = Device::new(dir.path(), "b");
    b.sync(&server);
    let b_counter: u64 = b.ok(&["get", "doc", "counter"]).trim().parse().unwrap();
    assert_eq!(b_counter, counter);
    assert_eq!(b.show("doc"), a.show("doc"));
}

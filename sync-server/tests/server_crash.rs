//! Done-when: "The server is killed with SIGKILL and restarted mid-run: no acknowledged
//! update is lost; unacknowledged updates are resent by clients and land exactly once in
//! effect."
//!
//! Three devices increment one shared counter while background sync clients run; the
//! real server process is SIGKILLed twice mid-run. After each kill the data dir is first
//! opened by a probe server on another port (which the devices cannot reach) to check that
//! everything the devices saw acknowledged is there; then the server restarts on its port.
//! At the end every device, and a fresh device, holds exactly all increments.

mod common;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{read_doc, ServerProcess};
use concord_core::native_client::{sync_once, Backoff, SyncClient};
use concord_core::sync::{ClientConfig, SyncScope};
use concord_core::{DocKind, Origin, Store, VersionVector};
use serde_json::json;

const DOC: &str = "ctr";

fn backoff() -> Backoff {
    Backoff {
        initial: Duration::from_millis(20),
        max: Duration::from_millis(200),
    }
}

fn everything() -> ClientConfig {
    ClientConfig {
        token: None,
        scope: SyncScope::Prefix(String::new()),
        ..ClientConfig::default()
    }
}

/// The highest seq of this device's own updates of `doc` that the relay acknowledged.
/// Acks are cumulative, so the outbox is always a suffix of the device's updates.
fn acked_upto(store: &Store, doc: &str) -> u64 {
    let device = store.device_id();
    // Read the version first: anything committed by then is either still in the outbox
    // when it is read below, or acknowledged.
    let committed = store.version_vector(doc).unwrap().get(&device);
    let outbox = store.outbox(doc).unwrap();
    match outbox
        .iter()
        .filter(|u| u.origin == device)
        .map(|u| u.seq)
        .min()
    {
        Some(first_unacked) => first_unacked - 1,
        None => committed,
    }
}

/// Waits (bounded) until `done` holds, polling.
async fn wait_until(what: &str, limit: Duration, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Kills the server with SIGKILL, checks that its data dir holds every update the
/// devices saw acknowledged, and restarts it on its usual port.
async fn crash_and_restart(server: &mut ServerProcess, devices: &[Store]) {
    let acked: Vec<(Origin, u64)> = devices
        .iter()
        .map(|d| (d.device_id(), acked_upto(d, DOC)))
        .collect();
    server.kill();
    eprintln!(
        "SIGKILL with {} of the devices' own updates acknowledged, {} pending",
        acked.iter().map(|(_, n)| n).sum::<u64>(),
        devices
            .iter()
            .map(|d| d.pending(DOC).unwrap())
            .sum::<usize>()
    );
    let probe = server.restart_on_probe_port().await;
    let stored = read_doc(&probe, None, DOC, DocKind::Automerge).await;
    for (origin, upto) in &acked {
        assert!(
            stored.server_version().get(origin) >= *upto,
            "acknowledged updates of {origin} up to {upto} were lost: the server holds up to {}",
            stored.server_version().get(origin)
        );
    }
    server.restart().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_mid_run_loses_no_acknowledged_update_and_applies_each_once() {
    const K: u64 = 150; // increments per device
    let mut server = ServerProcess::start(&[]).await;
    let url = server.url();
    let dir = tempfile::tempdir().unwrap();
    let t = Duration::from_secs(20);

    let a = Store::open(dir.path().join("a.db")).unwrap();
    let b = Store::open(dir.path().join("b.db")).unwrap();
    let c = Store::open(dir.path().join("c.db")).unwrap();
    a.create_doc(DOC, DocKind::Automerge).unwrap();
    a.transact(DOC, |tx| tx.increment("n", 0)).unwrap();
    assert_eq!(a.get(DOC, "n").unwrap(), Some(json!(0)));
    sync_once(&a, [&url], everything(), t).await.unwrap();
    sync_once(&b, [&url], everything(), t).await.unwrap();
    sync_once(&c, [&url], everything(), t).await.unwrap();
    assert_eq!(b.get(DOC, "n").unwrap(), Some(json!(0)));
    assert_eq!(c.get(DOC, "n").unwrap(), Some(json!(0)));

    let devices = [a.clone(), b.clone(), c.clone()];
    let clients: Vec<SyncClient> = devices
        .iter()
        .map(|d| SyncClient::spawn(d.clone(), [url.clone()], everything(), backoff()))
        .collect();

    // Each device commits K increments, at its own pace, whether or not the server is up.
    let committed = Arc::new(AtomicU64::new(0));
    let writers: Vec<_> = devices
        .iter()
        .enumerate()
        .map(|(i, d)| {
            let d = d.clone();
            let committed = committed.clone();
            tokio::task::spawn_blocking(move || {
                for _ in 0..K {
                    d.transact(DOC, |tx| tx.increment("n", 1)).unwrap();
                    committed.fetch_add(1, Ordering::SeqCst);
                    std::thread::sleep(Duration::from_millis(6 + 2 * i as u64));
                }
            })
        })
        .collect();

    // Two crashes: after a third and after two thirds of the increments.
    for round in 1..=2 {
        wait_until(
            "enough increments are committed",
            Duration::from_secs(30),
            || committed.load(Ordering::SeqCst) >= round * K,
        )
        .await;
        crash_and_restart(&mut server, &devices).await;
    }
    for w in writers {
        w.await.unwrap();
    }

    // Every device's own updates: the initial one on A, then K each.
    let mut expected = VersionVector::new();
    expected.set(a.device_id(), K + 1);
    expected.set(b.device_id(), K);
    expected.set(c.device_id(), K);
    let converged = || {
        devices
            .iter()
            .all(|d| d.pending(DOC).unwrap() == 0 && d.version_vector(DOC).unwrap() == expected)
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    while !converged() {
        if Instant::now() > deadline {
            for (d, client) in devices.iter().zip(&clients) {
                eprintln!(
                    "{}: pending {}, version {:?}, status {:?}",
                    d.device_id(),
                    d.pending(DOC).unwrap(),
                    d.version_vector(DOC).unwrap(),
                    client.status()
                );
            }
            panic!("the devices did not converge on {expected:?}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    for client in clients {
        client.stop().await;
    }

    // Exactly once in effect: every increment counted, none twice.
    let total = 3 * K;
    for d in &devices {
        assert_eq!(
            d.get(DOC, "n").unwrap(),
            Some(json!(total)),
            "{}",
            d.device_id()
        );
        assert_eq!(d.to_json(DOC).unwrap(), a.to_json(DOC).unwrap());
    }

    // The server kept everything, durably: after one more crash, a new device gets it all,
    // and the server's log holds each device's updates exactly once (no resent update
    // was stored under another number or origin).
    server.kill();
    server.restart().await;
    let d = Store::open(dir.path().join("d.db")).unwrap();
    sync_once(&d, [&url], everything(), t).await.unwrap();
    assert_eq!(d.get(DOC, "n").unwrap(), Some(json!(total)));
    assert_eq!(d.to_json(DOC).unwrap(), a.to_json(DOC).unwrap());
    assert_eq!(d.version_vector(DOC).unwrap(), expected);
    let stored = read_doc(&url, None, DOC, DocKind::Automerge).await;
    assert_eq!(*stored.server_version(), expected);
}

/// A device uploading a long backlog in many frames when the server dies: the sync fails,
/// and after the restart the next sync sends exactly what the server lacks.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upload_cut_by_sigkill_completes_after_restart() {
    const N: u64 = 400;
    // Small frames: the backlog goes out as many batches, each stored and acknowledged
    // on its own, so the kill can land between them.
    let mut server = ServerProcess::start(&["--max-frame-bytes", "4096"]).await;
    let url = server.url();
    let dir = tempfile::tempdir().unwrap();
    let a = Store::open(dir.path().join("a.db")).unwrap();
    a.create_doc("log", DocKind::Yrs).unwrap();
    let line = "x".repeat(200);
    for i in 0..N {
        a.transact("log", |tx| tx.push("lines", format!("{i:04} {line}")))
            .unwrap();
    }
    assert_eq!(a.pending("log").unwrap() as u64, N);

    let upload = {
        let a = a.clone();
        let url = url.clone();
        tokio::spawn(
            async move { sync_once(&a, [&url], everything(), Duration::from_secs(30)).await },
        )
    };
    // Kill once part of the backlog is acknowledged (or the upload is over, if it was
    // faster than this poll; the assertions below hold either way).
    wait_until("the upload has started", Duration::from_secs(20), || {
        upload.is_finished() || (a.pending("log").unwrap() as u64) < N
    })
    .await;
    let acked = acked_upto(&a, "log");
    server.kill();
    let result = upload.await.unwrap();
    eprintln!(
        "upload ended with {result:?}; {acked} of {N} acknowledged before the kill, {} pending",
        a.pending("log").unwrap()
    );

    server.restart().await;
    let stored = read_doc(&url, None, "log", DocKind::Yrs).await;
    assert!(stored.server_version().get(&a.device_id()) >= acked);
    sync_once(&a, [&url], everything(), Duration::from_secs(30))
        .await
        .unwrap();
    assert_eq!(a.pending("log").unwrap(), 0);

    let b = Store::open(dir.path().join("b.db")).unwrap();
    sync_once(&b, [&url], everything(), Duration::from_secs(30))
        .await
        .unwrap();
    assert_eq!(b.version_vector("log").unwrap().get(&a.device_id()), N);
    let lines = b.get("log", "lines").unwrap().unwrap();
    let lines = lines.as_array().unwrap();
    assert_eq!(lines.len() as u64, N, "every line exactly once");
    assert_eq!(b.to_json("log").unwrap(), a.to_json("log").unwrap());
}

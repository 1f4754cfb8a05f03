//! Presence against a real relay process: a device's presence on a document reaches the
//! document's other subscribers (with the device's id), a later subscriber is shown who is
//! already there, a change is relayed, and the peer is removed when its connection drops.
//! Nothing is stored: a presence leaves no update in any device's log.

mod common;

use std::time::{Duration, Instant};

use common::ServerProcess;
use concord_core::native_client::{Backoff, PeerState, PresenceChange, SyncClient};
use concord_core::sync::ClientConfig;
use concord_core::{DocKind, Store};
use tokio::sync::mpsc::UnboundedReceiver;

/// Waits (bounded) for a presence change on `doc` whose peers satisfy `pred`.
async fn wait_for(
    changes: &mut UnboundedReceiver<PresenceChange>,
    doc: &str,
    what: &str,
    pred: impl Fn(&[PeerState]) -> bool,
) -> Vec<PeerState> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let change = tokio::time::timeout(left, changes.recv())
            .await
            .unwrap_or_else(|_| panic!("timed out waiting for {what}"))
            .expect("the client runs");
        if change.0 == doc && pred(&change.1) {
            return change.1;
        }
    }
}

fn device(dir: &std::path::Path, name: &str) -> Store {
    let store = Store::open(dir.join(format!("{name}.db"))).unwrap();
    store.ensure_doc("board", DocKind::Yrs).unwrap();
    store
}

fn backoff() -> Backoff {
    Backoff {
        initial: Duration::from_millis(20),
        max: Duration::from_millis(200),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn presence_reaches_subscribers_and_is_removed_when_the_connection_drops() {
    let server = ServerProcess::start(&[]).await;
    let dir = tempfile::tempdir().unwrap();
    let (ann, bob) = (device(dir.path(), "ann"), device(dir.path(), "bob"));

    let a = SyncClient::spawn(
        ann.clone(),
        [server.url()],
        ClientConfig::default(),
        backoff(),
    );
    let mut a_sees = a.presence_changes();
    a.set_presence("board", br#"{"name":"ann"}"#.to_vec());

    // Bob joins later: he is shown Ann, who is already there, and Ann is shown Bob.
    let b = SyncClient::spawn(
        bob.clone(),
        [server.url()],
        ClientConfig::default(),
        backoff(),
    );
    let mut b_sees = b.presence_changes();
    b.set_presence("board", br#"{"name":"bob"}"#.to_vec());
    let peers = wait_for(&mut b_sees, "board", "Ann at Bob", |p| !p.is_empty()).await;
    assert_eq!(peers.len(), 1);
    assert_eq!(peers[0].state, br#"{"name":"ann"}"#);
    assert_eq!(peers[0].device_id, ann.device_id());
    let peers = wait_for(&mut a_sees, "board", "Bob at Ann", |p| !p.is_empty()).await;
    assert_eq!(peers[0].state, br#"{"name":"bob"}"#);
    assert_eq!(peers[0].device_id, bob.device_id());

    // A change is relayed.
    a.set_presence("board", br#"{"name":"ann","cursor":3}"#.to_vec());
    wait_for(&mut b_sees, "board", "Ann's new state", |p| {
        p.iter().any(|p| p.state == br#"{"name":"ann","cursor":3}"#)
    })
    .await;

    // Ann's connection drops: Bob sees her leave.
    a.stop().await;
    wait_for(&mut b_sees, "board", "Ann leaving", |p| p.is_empty()).await;

    // Never stored: no device holds an update for it, and the relay has nothing pending.
    assert_eq!(bob.pending("board").unwrap(), 0);
    assert!(bob.version_vector("board").unwrap().is_empty());
    b.stop().await;
}

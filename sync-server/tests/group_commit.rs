//! Group commit on a single relay: many connections appending at the same time (their
//! appends are committed together) each get every update acknowledged, every follower
//! receives every other writer's updates, and all of it is in the file after reopening.

use std::collections::HashSet;
use std::sync::{Arc, Barrier};

use concord_core::protocol::{self, Hello, Message, Subscribe, Updates, PROTOCOL_VERSION};
use concord_core::sync::RelaySession;
use concord_core::{DocKind, Origin, Store, UpdateRecord, VersionVector};
use concord_server::auth::Auth;
use concord_server::hub::{conn_queue, ConnReceiver};
use concord_server::state::{Relay, RelayConfig};
use concord_server::storage::Storage;

const WRITERS: usize = 12;
const EACH: u64 = 25;

fn config() -> RelayConfig {
    RelayConfig {
        server_id: "t".into(),
        max_frame_bytes: 1 << 20,
        max_queue: 1 << 16,
    }
}

/// A device's updates: `EACH` text inserts into document "d" (Yrs), one per commit.
fn device_updates() -> (Origin, Vec<UpdateRecord>) {
    let store = Store::open_in_memory().unwrap();
    store.create_doc("d", DocKind::Yrs).unwrap();
    for i in 0..EACH {
        store
            .transact("d", |tx| tx.insert_text("text", 0, &format!("{i} ")))
            .unwrap();
    }
    (store.device_id(), store.outbox("d").unwrap())
}

fn drain(rx: &mut ConnReceiver) -> Vec<Message> {
    let mut out = Vec::new();
    while let Ok(frame) = rx.rx.try_recv() {
        rx.watch.sent_one();
        out.push(protocol::decode(&frame).unwrap());
    }
    out
}

#[test]
fn concurrent_writers_are_all_acknowledged_fanned_out_and_durable() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("relay.db");
    let relay = Relay::new(config(), Auth::Open, Storage::open(&path, 64).unwrap());
    let devices: Vec<(Origin, Vec<UpdateRecord>)> =
        (0..WRITERS).map(|_| device_updates()).collect();
    let start = Arc::new(Barrier::new(WRITERS));

    let threads: Vec<_> = devices
        .iter()
        .cloned()
        .map(|(origin, updates)| {
            let relay = relay.clone();
            let start = start.clone();
            std::thread::spawn(move || {
                let (queue, mut rx) = conn_queue();
                let conn = relay.connection(queue);
                let mut session = RelaySession::new("t", 1 << 20);
                for m in [
                    Message::Hello(Hello {
                        protocol_version: PROTOCOL_VERSION,
                        device_id: origin.clone(),
                        token: None,
                    }),
                    Message::Subscribe(Subscribe {
                        doc_id: "d".into(),
                        min_lsn: 0,
                        linearizable: false,
                        kind: DocKind::Yrs,
                        version: VersionVector::new(),
                    }),
                ] {
                    conn.handle_frame_blocking(&mut session, &protocol::encode(&m));
                }
                start.wait();
                let mut acked = 0;
                for update in updates {
                    let frame = protocol::encode(&Message::Updates(Updates {
                        doc_id: "d".into(),
                        updates: vec![update],
                        lsn: 0,
                    }));
                    for reply in conn.handle_frame_blocking(&mut session, &frame) {
                        match reply {
                            Message::Ack(ack) => {
                                assert_eq!(ack.origin, origin);
                                assert!(ack.upto > acked, "acks move forward");
                                acked = ack.upto;
                            }
                            other => panic!("unexpected reply {other:?}"),
                        }
                    }
                }
                assert_eq!(acked, EACH, "every update of {origin} acknowledged");
                // Keep the connection (and its subscription) until everyone is done.
                start.wait();
                let received: HashSet<(Origin, u64)> = drain(&mut rx)
                    .into_iter()
                    .flat_map(|m| match m {
                        Message::Updates(u) => u.updates,
                        _ => vec![],
                    })
                    .map(|u| (u.origin, u.seq))
                    .collect();
                (origin, received)
            })
        })
        .collect();
    let everything: HashSet<(Origin, u64)> = devices
        .iter()
        .flat_map(|(o, _)| (1..=EACH).map(move |s| (o.clone(), s)))
        .collect();
    for t in threads {
        let (origin, received) = t.join().unwrap();
        let others: HashSet<(Origin, u64)> = everything
            .iter()
            .filter(|(o, _)| *o != origin)
            .cloned()
            .collect();
        assert!(
            others.is_subset(&received),
            "{origin} missed {} of the other writers' updates",
            others.difference(&received).count()
        );
    }

    // Reopened from the file: every acknowledged update is there.
    drop(relay);
    let storage = Storage::open(&path, 64).unwrap();
    let stored = storage.catchup("d", &VersionVector::new()).unwrap();
    for (origin, _) in &devices {
        assert_eq!(stored.server_version.get(origin), EACH);
    }
}

//! Fan-out is driven by what the relay storage applied: entries applied without any
//! writing connection (as a follower applies replicated entries) reach every follower of
//! the document, and entries a connection wrote reach the others but not the writer.

use concord_core::protocol::{self, Message};
use concord_core::sync::RelaySession;
use concord_core::{DocKind, Store, UpdateRecord};
use concord_server::auth::Auth;
use concord_server::hub::{conn_queue, ConnReceiver};
use concord_server::state::{Relay, RelayConfig};
use concord_server::storage::{Entry, LogEntry, Storage};

fn updates(n: usize) -> Vec<UpdateRecord> {
    let store = Store::open_in_memory().unwrap();
    store.create_doc("d", DocKind::Yrs).unwrap();
    for i in 0..n {
        store
            .transact("d", |tx| tx.insert_text("text", 0, &i.to_string()))
            .unwrap();
    }
    store.outbox("d").unwrap()
}

fn received(rx: &mut ConnReceiver) -> Vec<Message> {
    let mut out = Vec::new();
    while let Ok(frame) = rx.rx.try_recv() {
        rx.watch.sent(&frame);
        out.push(protocol::decode(&frame).unwrap());
    }
    out
}

fn hello_and_subscribe() -> Vec<Message> {
    vec![
        Message::Hello(concord_core::protocol::Hello {
            protocol_version: concord_core::protocol::PROTOCOL_VERSION,
            device_id: concord_core::Origin::from("dev".to_string()),
            token: None,
        }),
        Message::Subscribe(concord_core::protocol::Subscribe {
            doc_id: "d".into(),
            min_lsn: 0,
            linearizable: false,
            kind: DocKind::Yrs,
            version: Default::default(),
        }),
    ]
}

#[test]
fn applied_entries_fan_out_to_followers_but_not_to_their_writer() {
    let dir = tempfile::tempdir().unwrap();
    let storage = Storage::open(&dir.path().join("relay.db"), 100).unwrap();
    let relay = Relay::new(
        RelayConfig {
            server_id: "t".into(),
            max_frame_bytes: 1 << 20,
            max_queue: 1 << 10,
            idle_timeout: std::time::Duration::from_secs(45),
        },
        Auth::Open,
        storage,
    );
    let (qa, mut rx_a) = conn_queue();
    let (qb, mut rx_b) = conn_queue();
    let (a, b) = (relay.connection(qa), relay.connection(qb));
    let (mut sa, mut sb) = (
        RelaySession::new("t", 1 << 20),
        RelaySession::new("t", 1 << 20),
    );
    for m in hello_and_subscribe() {
        a.handle_frame_blocking(&mut sa, &protocol::encode(&m));
        b.handle_frame_blocking(&mut sb, &protocol::encode(&m));
    }
    let ups = updates(3);

    // A connection writes: the other follower gets the update, the writer only its ack.
    let replies = a.handle_frame_blocking(
        &mut sa,
        &protocol::encode(&Message::Updates(concord_core::protocol::Updates {
            doc_id: "d".into(),
            lsn: 0,
            updates: ups[..1].to_vec(),
        })),
    );
    assert!(matches!(&replies[..], [Message::Ack(ack)] if ack.upto == 1));
    assert!(received(&mut rx_a).is_empty());
    assert!(matches!(&received(&mut rx_b)[..], [Message::Updates(u)] if u.updates == ups[..1]));

    // Replicated entries applied with no writer reach every follower, once.
    let entries: Vec<Entry> = ups[1..]
        .iter()
        .zip(3..) // after CreateDoc (1) and the first append (2)
        .map(|(u, index)| Entry {
            index,
            payload: LogEntry::Append {
                doc_id: "d".into(),
                update: u.clone(),
            },
        })
        .collect();
    relay.apply_replicated(&entries).unwrap();
    relay.apply_replicated(&entries).unwrap(); // a replay: nothing new, nothing sent
    for rx in [&mut rx_a, &mut rx_b] {
        assert!(matches!(&received(rx)[..], [Message::Updates(u)] if u.updates == ups[1..]));
    }
}

//! A relay that lost updates it had acknowledged (a leader under the `leader` write concern
//! died before passing them on, or the relay was restored from an old backup) gets their
//! content back from the device, even when the device no longer holds them one by one: the
//! device re-authors them as one update of the whole document under a new origin. And a
//! device never sends another origin's updates past a gap the relay would refuse.

mod support;

use concord_core::protocol::{Catchup, Message};
use concord_core::sync::{ClientConfig, ClientSession};
use concord_core::{DocKind, Origin, Store, UpdateRecord, VersionVector};
use support::{frame, welcome};

fn edit(store: &Store, kind: DocKind, i: usize) {
    store
        .transact("d", |tx| match kind {
            DocKind::Automerge => tx.put(&format!("k{i}"), i as i64),
            DocKind::Yrs => tx.insert_text("t", i, "x"),
        })
        .unwrap();
}

fn catchup(kind: DocKind, server_version: VersionVector) -> Vec<u8> {
    frame(Message::Catchup(Catchup {
        doc_id: "d".into(),
        kind,
        server_version,
        snapshot: None,
        lsn: 1,
    }))
}

/// Every update the session sends for the document.
fn sent(out: &[Message]) -> Vec<UpdateRecord> {
    out.iter()
        .filter_map(|m| match m {
            Message::Updates(u) => Some(u.updates.clone()),
            _ => None,
        })
        .flatten()
        .collect()
}

#[test]
fn acknowledged_updates_the_relay_lost_come_back_as_one_whole_update() {
    for kind in [DocKind::Automerge, DocKind::Yrs] {
        let device = Store::open_in_memory().unwrap();
        let relay = Store::open_in_memory().unwrap();
        device.create_doc("d", kind).unwrap();
        relay.create_doc("d", kind).unwrap();
        let old = device.device_id();
        for i in 0..10 {
            edit(&device, kind, i);
        }
        // The relay keeps the first 4; it acknowledged all 10, then lost 5..10.
        let all = device.outbox("d").unwrap();
        relay.apply_remote("d", &all[..4]).unwrap();
        device.acknowledge("d", &old, 10).unwrap();
        device.compact("d").unwrap(); // the acknowledged updates leave the log
        assert!(device
            .updates_missing_from("d", &relay.version_vector("d").unwrap())
            .unwrap()
            .is_empty());

        let mut session = ClientSession::new(device.clone(), ClientConfig::default());
        session.connected();
        session.handle_frame(&welcome()).unwrap();
        // A lagging follower would show the same: the loss is confirmed by a linearizable
        // read before anything is repaired.
        let out = session
            .handle_frame(&catchup(kind, relay.version_vector("d").unwrap()))
            .unwrap();
        assert!(
            matches!(&out[..], [Message::Subscribe(s)] if s.linearizable),
            "{kind}: {out:?}"
        );
        assert_eq!(device.device_id(), old, "{kind}: nothing repaired yet");
        let out = session
            .handle_frame(&catchup(kind, relay.version_vector("d").unwrap()))
            .unwrap();
        assert!(
            sent(&out).is_empty(),
            "{kind}: nothing is sent past the gap"
        );
        let new = device.device_id();
        assert_ne!(new, old, "{kind}: the device took a new origin");
        assert!(
            out.iter().any(|m| matches!(m, Message::Subscribe(_))),
            "{kind}: and subscribes again"
        );
        assert_eq!(device.version_vector("d").unwrap().get(&old), 4);

        let out = session
            .handle_frame(&catchup(kind, relay.version_vector("d").unwrap()))
            .unwrap();
        let repair = sent(&out);
        assert_eq!(repair.len(), 1, "{kind}: one update");
        assert_eq!((&repair[0].origin, repair[0].seq), (&new, 1));
        relay.apply_remote("d", &repair).unwrap();
        assert_eq!(
            relay.to_json("d").unwrap(),
            device.to_json("d").unwrap(),
            "{kind}: the relay holds everything the device typed"
        );
        assert_eq!(
            relay.version_vector("d").unwrap(),
            device.version_vector("d").unwrap()
        );
        assert_eq!(
            device.outbox("d").unwrap(),
            repair,
            "{kind}: it waits for its ack"
        );
    }
}

#[test]
fn updates_the_relay_lost_that_the_device_still_holds_are_resent_as_they_were() {
    let device = Store::open_in_memory().unwrap();
    let relay = Store::open_in_memory().unwrap();
    device.create_doc("d", DocKind::Yrs).unwrap();
    relay.create_doc("d", DocKind::Yrs).unwrap();
    let origin = device.device_id();
    for i in 0..6 {
        edit(&device, DocKind::Yrs, i);
    }
    let all = device.outbox("d").unwrap();
    relay.apply_remote("d", &all[..2]).unwrap();
    device.acknowledge("d", &origin, 6).unwrap();

    let mut session = ClientSession::new(device.clone(), ClientConfig::default());
    session.connected();
    session.handle_frame(&welcome()).unwrap();
    let out = session
        .handle_frame(&catchup(DocKind::Yrs, relay.version_vector("d").unwrap()))
        .unwrap();
    assert_eq!(device.device_id(), origin, "no new origin is needed");
    let seqs: Vec<u64> = sent(&out).iter().map(|u| u.seq).collect();
    assert_eq!(seqs, vec![3, 4, 5, 6]);
}

#[test]
fn another_origins_updates_past_a_gap_are_not_sent() {
    let device = Store::open_in_memory().unwrap();
    let other = Store::open_in_memory().unwrap();
    let relay = Store::open_in_memory().unwrap();
    for s in [&device, &other, &relay] {
        s.create_doc("d", DocKind::Yrs).unwrap();
    }
    for i in 0..5 {
        edit(&other, DocKind::Yrs, i);
    }
    let theirs = other.outbox("d").unwrap();
    relay.apply_remote("d", &theirs[..1]).unwrap(); // the relay lost 2..5
    device.apply_remote("d", &theirs[..2]).unwrap();
    device.compact("d").unwrap(); // 1 and 2 now live only in the checkpoint
    device.apply_remote("d", &theirs[2..]).unwrap();
    let held: Vec<u64> = device
        .updates_missing_from("d", &relay.version_vector("d").unwrap())
        .unwrap()
        .iter()
        .map(|u| u.seq)
        .collect();
    assert_eq!(
        held,
        vec![3, 4, 5],
        "the device holds 3..5 one by one, not 2"
    );

    let mut session = ClientSession::new(device.clone(), ClientConfig::default());
    session.connected();
    session.handle_frame(&welcome()).unwrap();
    let out = session
        .handle_frame(&catchup(DocKind::Yrs, relay.version_vector("d").unwrap()))
        .unwrap();
    let other_origin: Origin = other.device_id();
    let sent_seqs: Vec<u64> = sent(&out)
        .iter()
        .filter(|u| u.origin == other_origin)
        .map(|u| u.seq)
        .collect();
    assert_eq!(
        sent_seqs,
        Vec::<u64>::new(),
        "3..5 would be refused with seq_gap"
    );
    // Confirmed by a second (linearizable) catch-up, the loss is repaired: the device's
    // entry for that origin becomes the relay's, and its whole document goes out under its
    // own origin (a new one is not needed: the lost updates were not its own).
    let own = device.device_id();
    let out = session
        .handle_frame(&catchup(DocKind::Yrs, relay.version_vector("d").unwrap()))
        .unwrap();
    assert!(sent(&out).is_empty(), "{out:?}");
    assert_eq!(device.device_id(), own);
    assert_eq!(device.version_vector("d").unwrap().get(&other_origin), 1);
    let out = session
        .handle_frame(&catchup(DocKind::Yrs, relay.version_vector("d").unwrap()))
        .unwrap();
    let repair = sent(&out);
    assert_eq!(repair.len(), 1);
    assert_eq!(repair[0].origin, own);
    relay.apply_remote("d", &repair).unwrap();
    assert_eq!(relay.to_json("d").unwrap(), device.to_json("d").unwrap());
}

/// The fault run's case: one leader death loses acknowledged updates of two documents, and
/// the device has more unacknowledged edits of the second, built on what was lost. The
/// first catch-up makes the device take a new origin; the second document's edits and its
/// lost content then reach the relay whole, and device and relay agree on every vector.
#[test]
fn losses_in_two_documents_are_both_repaired_and_the_vectors_agree() {
    let device = Store::open_in_memory().unwrap();
    let relay = Store::open_in_memory().unwrap();
    let docs = [("a", DocKind::Automerge), ("b", DocKind::Yrs)];
    let old = device.device_id();
    for (id, kind) in docs {
        device.create_doc(id, kind).unwrap();
        relay.create_doc(id, kind).unwrap();
        for i in 0..10usize {
            device
                .transact(id, |tx| match kind {
                    DocKind::Automerge => tx.put(&format!("k{i}"), i as i64),
                    DocKind::Yrs => tx.insert_text("t", 0, "x"),
                })
                .unwrap();
        }
        let all = device.outbox(id).unwrap();
        relay.apply_remote(id, &all[..4]).unwrap();
        device.acknowledge(id, &old, 10).unwrap();
        device.compact(id).unwrap();
    }
    for _ in 0..3 {
        device
            .transact("b", |tx| tx.insert_text("t", 0, "y"))
            .unwrap();
    }
    let catchup_of = |id: &str, kind| {
        frame(Message::Catchup(Catchup {
            doc_id: id.into(),
            kind,
            server_version: relay.version_vector(id).unwrap(),
            snapshot: None,
            lsn: 1,
        }))
    };

    let mut session = ClientSession::new(device.clone(), ClientConfig::default());
    session.connected();
    session.handle_frame(&welcome()).unwrap();
    session
        .handle_frame(&catchup_of("b", DocKind::Yrs))
        .unwrap();
    // Whatever order the catch-ups come in, each is answered until nothing more is sent.
    for _ in 0..4 {
        for (id, kind) in docs {
            let out = session.handle_frame(&catchup_of(id, kind)).unwrap();
            let updates = sent(&out);
            relay.apply_remote(id, &updates).unwrap();
            device
                .acknowledge(
                    id,
                    &device.device_id(),
                    device.version_vector(id).unwrap().get(&device.device_id()),
                )
                .unwrap();
        }
    }
    assert_ne!(device.device_id(), old);
    for (id, _) in docs {
        assert_eq!(
            relay.to_json(id).unwrap(),
            device.to_json(id).unwrap(),
            "{id}"
        );
        assert_eq!(
            relay.version_vector(id).unwrap(),
            device.version_vector(id).unwrap(),
            "{id}: the device's vector is the relay's again"
        );
        assert_eq!(device.pending(id).unwrap(), 0, "{id}");
    }
    let text = relay.get("b", "t").unwrap().unwrap();
    assert_eq!(
        text.as_str().unwrap().len(),
        13,
        "ten x and three y, once each"
    );
}

/// The repair's updates may be folded into the checkpoint (compaction, or closing the
/// store) before they are sent, together with a later edit: they are rebuilt whole, so
/// the relay still gets everything it lost.
#[test]
fn a_repair_folded_before_it_is_sent_is_rebuilt_whole() {
    for kind in [DocKind::Automerge, DocKind::Yrs] {
        let device = Store::open_in_memory().unwrap();
        let relay = Store::open_in_memory().unwrap();
        device.create_doc("d", kind).unwrap();
        relay.create_doc("d", kind).unwrap();
        let old = device.device_id();
        for i in 0..10 {
            edit(&device, kind, i);
        }
        relay
            .apply_remote("d", &device.outbox("d").unwrap()[..4])
            .unwrap();
        device.acknowledge("d", &old, 10).unwrap();
        device.compact("d").unwrap();

        let mut session = ClientSession::new(device.clone(), ClientConfig::default());
        session.connected();
        session.handle_frame(&welcome()).unwrap();
        for _ in 0..2 {
            session
                .handle_frame(&catchup(kind, relay.version_vector("d").unwrap()))
                .unwrap();
        }
        assert_ne!(device.device_id(), old, "{kind}: repaired");
        edit(&device, kind, 10);
        device.compact("d").unwrap(); // folds the repair and the new edit together
        let out = session
            .handle_frame(&catchup(kind, relay.version_vector("d").unwrap()))
            .unwrap();
        relay.apply_remote("d", &sent(&out)).unwrap();
        assert_eq!(
            relay.to_json("d").unwrap(),
            device.to_json("d").unwrap(),
            "{kind}: the relay holds everything"
        );
    }
}

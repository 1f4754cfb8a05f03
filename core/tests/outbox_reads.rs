//! A local commit costs the same however long the outbox is: the store reads a document's
//! unsent updates alone (`Store::outbox_after`), and a connected session asks for only
//! those on each commit, not for every update still waiting for its acknowledgement. How
//! far the relay acknowledged is read without update data (`Store::acknowledged_upto`).

mod support;

use concord_core::protocol::{Catchup, Message};
use concord_core::sync::{ClientConfig, ClientSession};
use concord_core::{DocKind, Store, VersionVector};
use support::{frame, welcome, Counting};

#[test]
fn outbox_after_holds_the_own_unacknowledged_updates_past_a_seq_oldest_first() {
    let device = Store::open_in_memory().unwrap();
    let other = Store::open_in_memory().unwrap();
    for s in [&device, &other] {
        s.create_doc("d", DocKind::Automerge).unwrap();
    }
    for i in 0..6i64 {
        device.transact("d", |tx| tx.put("n", i)).unwrap();
    }
    other.transact("d", |tx| tx.put("m", 1)).unwrap();
    device
        .apply_remote("d", &other.outbox("d").unwrap())
        .unwrap();
    assert_eq!(device.acknowledged_upto("d").unwrap(), 0);
    device.acknowledge("d", &device.device_id(), 2).unwrap();
    assert_eq!(device.acknowledged_upto("d").unwrap(), 2);

    let seqs = |after| -> Vec<u64> {
        let records = device.outbox_after("d", after).unwrap();
        assert!(records.iter().all(|r| r.origin == device.device_id()));
        records.iter().map(|r| r.seq).collect()
    };
    assert_eq!(seqs(0), vec![3, 4, 5, 6], "acknowledged ones are gone");
    assert_eq!(seqs(4), vec![5, 6]);
    assert_eq!(seqs(6), Vec::<u64>::new());
    let full: Vec<u64> = device.outbox("d").unwrap().iter().map(|r| r.seq).collect();
    assert_eq!(full, seqs(0), "the same records as the outbox");

    device.acknowledge("d", &device.device_id(), 6).unwrap();
    assert_eq!(seqs(0), Vec::<u64>::new());
    assert_eq!(device.acknowledged_upto("d").unwrap(), 6, "all of it");
}

#[test]
fn a_commit_on_a_live_connection_reads_only_the_update_it_sends() {
    for kind in [DocKind::Automerge, DocKind::Yrs] {
        let device = Store::open_in_memory().unwrap();
        device.create_doc("d", kind).unwrap();
        let log = Counting::new(device.clone());
        let reads = log.outbox_records_read.clone();
        let mut session = ClientSession::new(log, ClientConfig::default());
        session.connected();
        session.handle_frame(&welcome()).unwrap();
        session
            .handle_frame(&frame(Message::Catchup(Catchup {
                doc_id: "d".into(),
                kind,
                server_version: VersionVector::new(),
                snapshot: None,
                lsn: 1,
            })))
            .unwrap();

        // 300 commits the relay never acknowledges: the outbox grows to 300.
        let before = reads.get();
        for i in 0..300usize {
            device
                .transact("d", |tx| tx.insert_text("t", i, "x"))
                .unwrap();
            let sent = session.local_change("d").unwrap();
            assert_eq!(sent.len(), 1, "{kind}: commit {i} is sent");
        }
        assert_eq!(device.pending("d").unwrap(), 300);
        assert_eq!(
            reads.get() - before,
            300,
            "{kind}: each commit read its own update and nothing else"
        );
    }
}

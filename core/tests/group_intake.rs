//! Group commit on intake: update frames that arrive together are applied as one batch
//! per document (one store transaction, one CRDT apply), in order, with other messages
//! handled in their place.

mod support;

use concord_core::protocol::{Ack, Catchup, Message, Updates};
use concord_core::sync::{ClientConfig, ClientSession, SyncScope};
use concord_core::{DocKind, Store, VersionVector};
use support::{frame, welcome, Counting};

/// A writer and a device, both holding documents `a` and `b` of `kind`; the writer has
/// typed `n` characters, one commit each, into the text of each `(doc, n)` of `typed`.
fn writer_and_device(kind: DocKind, typed: &[(&str, usize)]) -> (Store, Store) {
    let writer = Store::open_in_memory().unwrap();
    let device = Store::open_in_memory().unwrap();
    for doc in ["a", "b"] {
        writer.create_doc(doc, kind).unwrap();
        device.create_doc(doc, kind).unwrap();
    }
    for &(doc, n) in typed {
        for i in 0..n {
            writer
                .transact(doc, |tx| tx.insert_text("t", i, "x"))
                .unwrap();
        }
    }
    (writer, device)
}

#[test]
fn waiting_update_frames_are_applied_as_one_batch_per_document() {
    for kind in [DocKind::Automerge, DocKind::Yrs] {
        let (writer, device) = writer_and_device(kind, &[("a", 5), ("b", 5)]);
        let log = Counting::new(device.clone());
        let applies = log.applies.clone();
        let mut session = ClientSession::new(log, ClientConfig::default());
        session.connected();
        session.handle_frame(&welcome()).unwrap();
        let mut frames = Vec::new();
        for doc in ["a", "b"] {
            frames.push(frame(Message::Catchup(Catchup {
                doc_id: doc.into(),
                kind,
                server_version: VersionVector::new(),
                snapshot: None,
                lsn: 1,
            })));
        }
        // Five live frames per document, interleaved, one update each.
        let (a, b) = (writer.outbox("a").unwrap(), writer.outbox("b").unwrap());
        for (i, (ua, ub)) in a.iter().zip(&b).enumerate() {
            for (doc, update) in [("a", ua), ("b", ub)] {
                frames.push(frame(Message::Updates(Updates {
                    doc_id: doc.to_string(),
                    updates: vec![update.clone()],
                    lsn: 2 + i as u64,
                })));
            }
        }
        session.handle_frames(&frames).unwrap();
        assert_eq!(applies.get(), 2, "{kind}: one apply per document");
        for doc in ["a", "b"] {
            assert_eq!(device.get(doc, "t").unwrap(), writer.get(doc, "t").unwrap());
        }
        assert_eq!(session.max_lsn(), 6);
    }
}

#[test]
fn held_updates_wait_for_apply_held_and_a_catchup_applies_them_first() {
    for kind in [DocKind::Automerge, DocKind::Yrs] {
        let (writer, device) = writer_and_device(kind, &[("a", 3)]);
        let log = Counting::new(device.clone());
        let applies = log.applies.clone();
        let config = ClientConfig {
            scope: SyncScope::LocalDocs,
            ..ClientConfig::default()
        };
        let mut session = ClientSession::new(log, config);
        session.set_hold_intake(true);
        session.connected();
        session.handle_frame(&welcome()).unwrap();
        let catchup = |doc: &str, lsn| {
            frame(Message::Catchup(Catchup {
                doc_id: doc.into(),
                kind,
                server_version: VersionVector::new(),
                snapshot: None,
                lsn,
            }))
        };
        session
            .handle_frames(&[catchup("a", 1), catchup("b", 1)])
            .unwrap();
        assert!(session.is_synced(), "{kind}");
        let live: Vec<_> = writer
            .outbox("a")
            .unwrap()
            .into_iter()
            .enumerate()
            .map(|(i, u)| {
                frame(Message::Updates(Updates {
                    doc_id: "a".into(),
                    updates: vec![u],
                    lsn: 2 + i as u64,
                }))
            })
            .collect();
        // Held: nothing applied, a ping is still answered at once.
        let mut frames = live[..2].to_vec();
        frames.push(frame(Message::Ping(7)));
        let out = session.handle_frames(&frames).unwrap();
        assert_eq!(out, vec![Message::Pong(7)]);
        assert_eq!(applies.get(), 0, "{kind}: held");
        assert!(session.has_held_intake());
        assert!(
            !session.is_synced(),
            "{kind}: not in sync while updates wait"
        );
        assert_eq!(session.max_lsn(), 1, "{kind}: an LSN counts once applied");
        // An ack is handled at once, and does not make the session look in sync.
        let ack = frame(Message::Ack(Ack {
            doc_id: "a".into(),
            origin: device.device_id(),
            upto: 0,
            lsn: 1,
        }));
        session.handle_frames(&[ack]).unwrap();
        assert_eq!(applies.get(), 0, "{kind}: still held after an ack");
        assert!(!session.is_synced(), "{kind}: not in sync after an ack");
        // A catch-up (of another document) must see them applied first.
        session
            .handle_frames(&[live[2].clone(), catchup("b", 5)])
            .unwrap();
        assert_eq!(
            applies.get(),
            1,
            "{kind}: applied together, before the catch-up"
        );
        assert!(!session.has_held_intake());
        assert_eq!(device.get("a", "t").unwrap(), writer.get("a", "t").unwrap());
        assert!(session.apply_held().unwrap().is_empty());
        assert_eq!(session.max_lsn(), 5);
        assert!(session.is_synced(), "{kind}");
    }
}

//! Group commit on intake: update frames that arrive together are applied as one batch
//! per document (one store transaction, one CRDT apply), in order, with other messages
//! handled in their place.

mod support;

use concord_core::protocol::{Catchup, Message, Updates};
use concord_core::sync::{ClientConfig, ClientSession};
use concord_core::{DocKind, Store, VersionVector};
use support::{frame, welcome, Counting};

#[test]
fn waiting_update_frames_are_applied_as_one_batch_per_document() {
    for kind in [DocKind::Automerge, DocKind::Yrs] {
        let writer = Store::open_in_memory().unwrap();
        let device = Store::open_in_memory().unwrap();
        for doc in ["a", "b"] {
            writer.create_doc(doc, kind).unwrap();
            device.create_doc(doc, kind).unwrap();
            for i in 0..5 {
                writer
                    .transact(doc, |tx| tx.insert_text("t", i, "x"))
                    .unwrap();
            }
        }
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

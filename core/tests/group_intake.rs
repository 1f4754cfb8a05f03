//! Group commit on intake: update frames that arrive together are applied as one batch
//! per document (one store transaction, one CRDT apply), in order, with other messages
//! handled in their place.

use std::cell::Cell;
use std::rc::Rc;

use concord_core::protocol::{self, Catchup, Message, Updates, Welcome, PROTOCOL_VERSION};
use concord_core::sync::{ClientConfig, ClientSession, DeviceLog};
use concord_core::{DocKind, Origin, Result, Store, UpdateRecord, VersionVector};

/// A store that counts how often remote updates are applied to it.
struct Counting {
    store: Store,
    applies: Rc<Cell<usize>>,
}

impl DeviceLog for Counting {
    fn device_id(&self) -> Origin {
        DeviceLog::device_id(&self.store)
    }
    fn doc_ids(&self) -> Result<Vec<String>> {
        DeviceLog::doc_ids(&self.store)
    }
    fn doc_kind(&self, doc_id: &str) -> Result<Option<DocKind>> {
        DeviceLog::doc_kind(&self.store, doc_id)
    }
    fn ensure_doc(&mut self, doc_id: &str, kind: DocKind) -> Result<()> {
        DeviceLog::ensure_doc(&mut self.store, doc_id, kind)
    }
    fn version_vector(&self, doc_id: &str) -> Result<VersionVector> {
        DeviceLog::version_vector(&self.store, doc_id)
    }
    fn pending(&self, doc_id: &str) -> Result<usize> {
        DeviceLog::pending(&self.store, doc_id)
    }
    fn outbox(&self, doc_id: &str) -> Result<Vec<UpdateRecord>> {
        DeviceLog::outbox(&self.store, doc_id)
    }
    fn updates_missing_from(
        &self,
        doc_id: &str,
        other: &VersionVector,
    ) -> Result<Vec<UpdateRecord>> {
        DeviceLog::updates_missing_from(&self.store, doc_id, other)
    }
    fn apply_remote(
        &mut self,
        doc_id: &str,
        updates: &[UpdateRecord],
    ) -> Result<Option<(Origin, u64)>> {
        self.applies.set(self.applies.get() + 1);
        DeviceLog::apply_remote(&mut self.store, doc_id, updates)
    }
    fn apply_catchup_snapshot(
        &mut self,
        doc_id: &str,
        saved: &[u8],
        covers: &VersionVector,
    ) -> Result<()> {
        DeviceLog::apply_catchup_snapshot(&mut self.store, doc_id, saved, covers)
    }
    fn acknowledge(&mut self, doc_id: &str, origin: &Origin, upto: u64) -> Result<()> {
        DeviceLog::acknowledge(&mut self.store, doc_id, origin, upto)
    }
    fn reoriginate(&mut self) -> Result<()> {
        DeviceLog::reoriginate(&mut self.store)
    }
    fn external_changes(&self) -> u64 {
        DeviceLog::external_changes(&self.store)
    }
}

fn frame(m: Message) -> Vec<u8> {
    protocol::encode(&m)
}

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
        let applies = Rc::new(Cell::new(0));
        let mut session = ClientSession::new(
            Counting {
                store: device.clone(),
                applies: applies.clone(),
            },
            ClientConfig::default(),
        );
        session.connected();
        session
            .handle_frame(&frame(Message::Welcome(Welcome {
                protocol_version: PROTOCOL_VERSION,
                server_id: "relay".into(),
                max_frame_bytes: 1 << 20,
            })))
            .unwrap();
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

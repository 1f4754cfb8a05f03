//! Shared by the session tests that run a `ClientSession` by hand over a real store: a
//! `DeviceLog` that counts what the session asks of the store, and the frames a relay
//! sends first.

#![allow(dead_code)] // each test binary uses a different part of this module

use std::cell::Cell;
use std::rc::Rc;

use concord_core::protocol::{self, Message, Welcome, PROTOCOL_VERSION};
use concord_core::sync::DeviceLog;
use concord_core::{DocKind, Origin, Result, Store, UpdateRecord, VersionVector};

/// A store that counts how often remote updates are applied to it, and how many outbox
/// records the session reads from it.
pub struct Counting {
    pub store: Store,
    pub applies: Rc<Cell<usize>>,
    pub outbox_records_read: Rc<Cell<usize>>,
}

impl Counting {
    pub fn new(store: Store) -> Counting {
        Counting {
            store,
            applies: Rc::default(),
            outbox_records_read: Rc::default(),
        }
    }

    fn read(&self, records: Result<Vec<UpdateRecord>>) -> Result<Vec<UpdateRecord>> {
        if let Ok(r) = &records {
            self.outbox_records_read
                .set(self.outbox_records_read.get() + r.len());
        }
        records
    }
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
        self.read(DeviceLog::outbox(&self.store, doc_id))
    }
    fn outbox_after(&self, doc_id: &str, after: u64) -> Result<Vec<UpdateRecord>> {
        self.read(DeviceLog::outbox_after(&self.store, doc_id, after))
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
    fn last_apply_time(&self) -> std::time::Duration {
        DeviceLog::last_apply_time(&self.store)
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

/// One message as the relay frames it.
pub fn frame(m: Message) -> Vec<u8> {
    protocol::encode(&m)
}

/// The relay's greeting.
pub fn welcome() -> Vec<u8> {
    frame(Message::Welcome(Welcome {
        protocol_version: PROTOCOL_VERSION,
        server_id: "relay".into(),
        max_frame_bytes: 1 << 20,
    }))
}

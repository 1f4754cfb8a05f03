//! An in-memory [`DeviceLog`] for driver tests: opaque update bytes, a version vector and
//! an outbox per document, no CRDT and no SQLite. A cheap-to-clone handle, so a test keeps
//! one while the driver owns another.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;

use concord_core::sync::DeviceLog;
use concord_core::{DocKind, Origin, Result, UpdateRecord, VersionVector};

#[derive(Default)]
struct Doc {
    kind: Option<DocKind>,
    updates: Vec<UpdateRecord>,
    version: VersionVector,
    /// Own updates up to this seq are acknowledged.
    acked: u64,
    snapshots: usize,
}

struct Inner {
    device: Origin,
    docs: BTreeMap<String, Doc>,
    external: u64,
    /// How long each `apply_remote` takes (a stand-in for a CRDT's apply).
    apply_cost: std::time::Duration,
    /// How many times `apply_remote` was called.
    applies: usize,
}

#[derive(Clone)]
pub struct MemLog(Rc<RefCell<Inner>>);

impl MemLog {
    pub fn new(device: &str) -> MemLog {
        MemLog(Rc::new(RefCell::new(Inner {
            device: Origin::from(device),
            docs: BTreeMap::new(),
            external: 0,
            apply_cost: std::time::Duration::ZERO,
            applies: 0,
        })))
    }

    pub fn create(&self, doc_id: &str, kind: DocKind) {
        self.0
            .borrow_mut()
            .docs
            .entry(doc_id.into())
            .or_default()
            .kind = Some(kind);
    }

    /// A local commit: the next own update of the document.
    pub fn commit(&self, doc_id: &str, data: &[u8]) {
        let mut inner = self.0.borrow_mut();
        let device = inner.device.clone();
        let doc = inner.docs.get_mut(doc_id).expect("document exists");
        let seq = doc.version.get(&device) + 1;
        doc.version.set(device.clone(), seq);
        doc.updates.push(UpdateRecord {
            origin: device,
            seq,
            data: data.to_vec(),
        });
    }

    /// A commit by another process on the same log: no in-process event, only the
    /// external-changes counter moves.
    pub fn commit_from_another_process(&self, doc_id: &str, data: &[u8]) {
        self.commit(doc_id, data);
        self.0.borrow_mut().external += 1;
    }

    pub fn has(&self, doc_id: &str) -> bool {
        self.0.borrow().docs.contains_key(doc_id)
    }

    pub fn version(&self, doc_id: &str) -> VersionVector {
        self.0.borrow().docs[doc_id].version.clone()
    }

    /// Every later `apply_remote` takes this long (it sleeps).
    pub fn set_apply_cost(&self, cost: std::time::Duration) {
        self.0.borrow_mut().apply_cost = cost;
    }

    /// How many times other devices' updates were applied.
    pub fn applies(&self) -> usize {
        self.0.borrow().applies
    }

    pub fn pending_of(&self, doc_id: &str) -> usize {
        DeviceLog::pending(self, doc_id).unwrap()
    }
}

impl DeviceLog for MemLog {
    fn device_id(&self) -> Origin {
        self.0.borrow().device.clone()
    }

    fn doc_ids(&self) -> Result<Vec<String>> {
        Ok(self.0.borrow().docs.keys().cloned().collect())
    }

    fn doc_kind(&self, doc_id: &str) -> Result<Option<DocKind>> {
        Ok(self.0.borrow().docs.get(doc_id).and_then(|d| d.kind))
    }

    fn ensure_doc(&mut self, doc_id: &str, kind: DocKind) -> Result<()> {
        self.create(doc_id, kind);
        Ok(())
    }

    fn version_vector(&self, doc_id: &str) -> Result<VersionVector> {
        Ok(self
            .0
            .borrow()
            .docs
            .get(doc_id)
            .map(|d| d.version.clone())
            .unwrap_or_default())
    }

    fn pending(&self, doc_id: &str) -> Result<usize> {
        Ok(self.outbox(doc_id)?.len())
    }

    fn outbox(&self, doc_id: &str) -> Result<Vec<UpdateRecord>> {
        let inner = self.0.borrow();
        let Some(doc) = inner.docs.get(doc_id) else {
            return Ok(vec![]);
        };
        Ok(doc
            .updates
            .iter()
            .filter(|u| u.origin == inner.device && u.seq > doc.acked)
            .cloned()
            .collect())
    }

    fn updates_missing_from(
        &self,
        doc_id: &str,
        version: &VersionVector,
    ) -> Result<Vec<UpdateRecord>> {
        let inner = self.0.borrow();
        Ok(inner
            .docs
            .get(doc_id)
            .map(|d| {
                d.updates
                    .iter()
                    .filter(|u| !version.contains(&u.origin, u.seq))
                    .cloned()
                    .collect()
            })
            .unwrap_or_default())
    }

    fn last_apply_time(&self) -> std::time::Duration {
        // What each apply is made to take (it sleeps that long).
        self.0.borrow().apply_cost
    }

    fn apply_remote(
        &mut self,
        doc_id: &str,
        updates: &[UpdateRecord],
    ) -> Result<Option<(Origin, u64)>> {
        let mut inner = self.0.borrow_mut();
        inner.applies += 1;
        std::thread::sleep(inner.apply_cost);
        let doc = inner.docs.entry(doc_id.into()).or_default();
        for u in updates {
            let held = doc.version.get(&u.origin);
            if u.seq <= held {
                continue;
            }
            if u.seq != held + 1 {
                return Ok(Some((u.origin.clone(), u.seq)));
            }
            doc.version.set(u.origin.clone(), u.seq);
            doc.updates.push(u.clone());
        }
        Ok(None)
    }

    fn apply_catchup_snapshot(
        &mut self,
        doc_id: &str,
        _data: &[u8],
        covers: &VersionVector,
    ) -> Result<()> {
        let mut inner = self.0.borrow_mut();
        let doc = inner.docs.entry(doc_id.into()).or_default();
        doc.version.merge(covers);
        doc.snapshots += 1;
        Ok(())
    }

    fn acknowledge(&mut self, doc_id: &str, origin: &Origin, upto: u64) -> Result<()> {
        let mut inner = self.0.borrow_mut();
        let device = inner.device.clone();
        if let Some(doc) = inner.docs.get_mut(doc_id) {
            if *origin == device && upto > doc.acked {
                doc.acked = upto;
            }
        }
        Ok(())
    }

    fn reoriginate(&mut self) -> Result<()> {
        let mut inner = self.0.borrow_mut();
        let old = inner.device.clone();
        let new = Origin::from(format!("{old}-restored"));
        for doc in inner.docs.values_mut() {
            let mut seq = 0;
            for u in doc
                .updates
                .iter_mut()
                .filter(|u| u.origin == old && u.seq > doc.acked)
            {
                seq += 1;
                u.origin = new.clone();
                u.seq = seq;
            }
            if seq > 0 {
                doc.version.set(new.clone(), seq);
            }
        }
        inner.device = new;
        Ok(())
    }

    fn external_changes(&self) -> u64 {
        self.0.borrow().external
    }
}

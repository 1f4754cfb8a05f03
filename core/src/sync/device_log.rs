//! [`DeviceLog`]: what a device's sync session needs from its update log, as a trait, so
//! the session runs over the SQLite [`Store`] in production and over an in-memory log in
//! tests. Implemented here for [`Store`] through its public API only.

use std::time::Duration;

use crate::error::Result;
use crate::ids::{DocKind, Origin};
use crate::store::Store;
use crate::update::UpdateRecord;
use crate::vv::VersionVector;

/// The device side of sync: its documents, their version vectors, the outbox of own
/// updates the relay has not acknowledged, and the writes that remote data causes.
pub trait DeviceLog {
    /// The origin of the updates this device authors.
    fn device_id(&self) -> Origin;
    /// Every document the device holds, by id.
    fn doc_ids(&self) -> Result<Vec<String>>;
    /// The kind of a document, or `None` if the device does not hold it.
    fn doc_kind(&self, doc_id: &str) -> Result<Option<DocKind>>;
    /// Creates the document unless it exists (a document learned from the relay's list).
    fn ensure_doc(&mut self, doc_id: &str, kind: DocKind) -> Result<()>;
    /// What the device holds of a document.
    fn version_vector(&self, doc_id: &str) -> Result<VersionVector>;
    /// How many own updates of the document the relay has not acknowledged.
    fn pending(&self, doc_id: &str) -> Result<usize>;
    /// The unacknowledged own updates of the document, in order.
    fn outbox(&self, doc_id: &str) -> Result<Vec<UpdateRecord>>;
    /// The unacknowledged own updates of the document with a seq above `after`, in order
    /// (what a connection has not sent yet). A log that can read these alone should: the
    /// session asks on every local commit, while the outbox may be long.
    fn outbox_after(&self, doc_id: &str, after: u64) -> Result<Vec<UpdateRecord>> {
        let device = self.device_id();
        let mut unsent = self.outbox(doc_id)?;
        unsent.retain(|u| u.seq > after && u.origin == device);
        Ok(unsent)
    }
    /// The updates the device holds that `version` lacks, in an order they apply in.
    fn updates_missing_from(
        &self,
        doc_id: &str,
        version: &VersionVector,
    ) -> Result<Vec<UpdateRecord>>;
    /// Applies updates from the relay. Returns the first update skipped because an earlier
    /// one of its origin is missing (`(origin, seq)`), if any.
    fn apply_remote(
        &mut self,
        doc_id: &str,
        updates: &[UpdateRecord],
    ) -> Result<Option<(Origin, u64)>>;
    /// How long the last `apply_remote` took (wall time), when the log measures it: a
    /// background session holds live updates for a multiple of it (`sync::intake`). The
    /// default, zero, never holds.
    fn last_apply_time(&self) -> Duration {
        Duration::ZERO
    }
    /// Merges a catch-up snapshot (a saved state covering `covers`) into a document.
    fn apply_catchup_snapshot(
        &mut self,
        doc_id: &str,
        data: &[u8],
        covers: &VersionVector,
    ) -> Result<()>;
    /// The relay durably holds every update of `origin` up to `upto`: drop them from the
    /// outbox.
    fn acknowledge(&mut self, doc_id: &str, origin: &Origin, upto: u64) -> Result<()>;
    /// Takes a new device id, re-authoring the outbox under it (after a restore from a
    /// backup, the old sequence numbers may be taken on the relay).
    fn reoriginate(&mut self) -> Result<()>;
    /// The relay lost updates of `doc_id` this device cannot resend one by one (each
    /// `(origin, seq)` in `lost`: the relay holds that origin only up to `seq`; of the
    /// device's own origin it holds `own`): drop them and queue their content as updates
    /// of the whole document (see [`Store::repair_lost`]). True when the device took a new
    /// origin. A log that cannot build such updates refuses (error).
    fn repair_lost(&mut self, doc_id: &str, lost: &[(Origin, u64)], own: u64) -> Result<bool> {
        let _ = (doc_id, lost, own);
        Err(crate::Error::InvalidEdit(
            "this log cannot re-author a document whole".into(),
        ))
    }
    /// A counter that changes when another process committed to the same log (whose
    /// commits raise no in-process event): the driver polls it.
    fn external_changes(&self) -> u64;
}

impl DeviceLog for Store {
    fn device_id(&self) -> Origin {
        Store::device_id(self)
    }

    fn doc_ids(&self) -> Result<Vec<String>> {
        Ok(self.list_docs()?.into_iter().map(|d| d.id).collect())
    }

    fn doc_kind(&self, doc_id: &str) -> Result<Option<DocKind>> {
        Store::doc_kind(self, doc_id)
    }

    fn ensure_doc(&mut self, doc_id: &str, kind: DocKind) -> Result<()> {
        Store::ensure_doc(self, doc_id, kind)
    }

    fn version_vector(&self, doc_id: &str) -> Result<VersionVector> {
        Store::version_vector(self, doc_id)
    }

    fn pending(&self, doc_id: &str) -> Result<usize> {
        Store::pending(self, doc_id)
    }

    // What the session reads here it sends: recorded, so no fold renumbers it while its
    // acknowledgement may be on the way (`Store::note_sent`).
    fn outbox(&self, doc_id: &str) -> Result<Vec<UpdateRecord>> {
        let rows = Store::outbox(self, doc_id)?;
        self.note_sent(doc_id, &rows)?;
        Ok(rows)
    }

    fn outbox_after(&self, doc_id: &str, after: u64) -> Result<Vec<UpdateRecord>> {
        let rows = Store::outbox_after(self, doc_id, after)?;
        self.note_sent(doc_id, &rows)?;
        Ok(rows)
    }

    fn updates_missing_from(
        &self,
        doc_id: &str,
        version: &VersionVector,
    ) -> Result<Vec<UpdateRecord>> {
        let rows = Store::updates_missing_from(self, doc_id, version)?;
        self.note_sent(doc_id, &rows)?;
        Ok(rows)
    }

    fn apply_remote(
        &mut self,
        doc_id: &str,
        updates: &[UpdateRecord],
    ) -> Result<Option<(Origin, u64)>> {
        Ok(Store::apply_remote(self, doc_id, updates)?.gap)
    }

    fn last_apply_time(&self) -> Duration {
        Store::last_apply_time(self)
    }

    fn apply_catchup_snapshot(
        &mut self,
        doc_id: &str,
        data: &[u8],
        covers: &VersionVector,
    ) -> Result<()> {
        Store::apply_catchup_snapshot(self, doc_id, data, covers)
    }

    fn acknowledge(&mut self, doc_id: &str, origin: &Origin, upto: u64) -> Result<()> {
        Store::acknowledge(self, doc_id, origin, upto).map(drop)
    }

    fn reoriginate(&mut self) -> Result<()> {
        Store::reoriginate(self).map(drop)
    }

    fn repair_lost(&mut self, doc_id: &str, lost: &[(Origin, u64)], own: u64) -> Result<bool> {
        Store::repair_lost(self, doc_id, lost, own)
    }

    fn external_changes(&self) -> u64 {
        Store::external_changes(self)
    }
}

//! Reads for clients: what a client at a version vector lacks (the updates, or a catch-up
//! snapshot — the latest checkpoint — plus the updates after it), and the stored bytes of
//! one update.

use concord_core::log;
use concord_core::log::Cached;
use concord_core::protocol::CatchupSnapshot;
use concord_core::sync::CatchupData;
use concord_core::{Origin, VersionVector};
use rusqlite::OptionalExtension;

use super::{Result, Storage, StorageError};

/// A client lacking more than this many updates that the checkpoint covers gets it as a
/// catch-up snapshot.
const SNAPSHOT_CATCHUP_THRESHOLD: u64 = 64;

impl Storage {
    /// The stored bytes of one update, if held.
    pub fn stored_update(
        &self,
        doc_id: &str,
        origin: &Origin,
        seq: u64,
    ) -> Result<Option<Vec<u8>>> {
        Ok(log::stored_update(&self.conn, doc_id, origin, seq)?)
    }

    /// What a client at `client` lacks of `doc_id` (which must exist).
    pub fn catchup(&self, doc_id: &str, client: &VersionVector) -> Result<CatchupData> {
        let head = self
            .heads
            .get(doc_id)
            .ok_or_else(|| StorageError::Corrupt(format!("catch-up of unknown doc {doc_id}")))?;
        let mut data = CatchupData {
            kind: head.kind,
            lsn: self.last_applied,
            server_version: head.version.clone(),
            snapshot: None,
            updates: Vec::new(),
        };
        if head.version.missing_from(client).is_empty() {
            return Ok(data);
        }
        let mut after = 0;
        let mut covered = VersionVector::new();
        if let Some((checkpoint, checkpoint_upto, version)) = self.checkpoint(doc_id)? {
            let lacking: u64 = version
                .missing_from(client)
                .iter()
                .map(|m| m.to - m.from + 1)
                .sum();
            if lacking > SNAPSHOT_CATCHUP_THRESHOLD || (client.is_empty() && lacking > 0) {
                after = checkpoint_upto;
                covered = version.clone();
                data.snapshot = Some(CatchupSnapshot {
                    data: checkpoint,
                    covers: version,
                });
            }
        }
        data.updates = log::missing_from(&self.conn, doc_id, after, &client.merged(&covered))?;
        Ok(data)
    }

    /// The document's checkpoint (saved state), the log index it covers up to and the
    /// version vector it covers (the relay's `snapshot_vv` column), if one was taken.
    fn checkpoint(&self, doc_id: &str) -> Result<Option<(Vec<u8>, i64, VersionVector)>> {
        let (upto, covers): (i64, Option<Vec<u8>>) = self
            .conn
            .query_row_cached(
                "SELECT snapshot_upto, snapshot_vv FROM docs WHERE id = ?1",
                [doc_id],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?
            .ok_or_else(|| StorageError::Corrupt(format!("no row for doc {doc_id}")))?;
        let Some(covers) = covers else {
            return Ok(None);
        };
        let Some(checkpoint) = log::read_checkpoint(&self.conn, doc_id)? else {
            return Ok(None);
        };
        Ok(Some((checkpoint, upto, log::decode_version(&covers)?)))
    }
}

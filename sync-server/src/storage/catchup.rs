//! Reads for clients: what a client at a version vector lacks (the updates, or the latest
//! snapshot plus the updates after it), and the stored bytes of one update.

use concord_core::protocol::Snapshot;
use concord_core::sync::CatchupData;
use concord_core::{Origin, UpdateRecord, VersionVector};
use rusqlite::{params, OptionalExtension};

use super::{decode_vv, Result, Storage, StorageError};

/// A client lacking more than this many updates that a snapshot covers gets the snapshot.
const SNAPSHOT_CATCHUP_THRESHOLD: u64 = 64;

impl Storage {
    /// The stored bytes of one update, if held.
    pub fn stored_update(
        &self,
        doc_id: &str,
        origin: &Origin,
        seq: u64,
    ) -> Result<Option<Vec<u8>>> {
        Ok(self
            .conn
            .query_row(
                "SELECT data FROM updates WHERE doc_id = ?1 AND origin = ?2 AND seq = ?3",
                params![doc_id, origin.as_str(), seq as i64],
                |r| r.get(0),
            )
            .optional()?)
    }

    /// What a client at `client` lacks of `doc_id` (which must exist).
    pub fn catchup(&self, doc_id: &str, client: &VersionVector) -> Result<CatchupData> {
        let head = self
            .heads
            .get(doc_id)
            .ok_or_else(|| StorageError::Corrupt(format!("catch-up of unknown doc {doc_id}")))?;
        let mut data = CatchupData {
            kind: head.kind,
            server_version: head.version.clone(),
            snapshot: None,
            updates: Vec::new(),
        };
        if head.version.missing_from(client).is_empty() {
            return Ok(data);
        }
        let (snapshot, snapshot_vv, upto): (Option<Vec<u8>>, Option<Vec<u8>>, i64) =
            self.conn.query_row(
                "SELECT snapshot, snapshot_vv, snapshot_upto FROM docs WHERE id = ?1",
                [doc_id],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )?;
        let mut skip_upto = 0;
        let mut covered = VersionVector::new();
        if let (Some(snapshot), Some(snapshot_vv)) = (snapshot, snapshot_vv) {
            let snapshot_vv = decode_vv(&snapshot_vv)?;
            let lacking: u64 = snapshot_vv
                .missing_from(client)
                .iter()
                .map(|m| m.to - m.from + 1)
                .sum();
            if lacking > SNAPSHOT_CATCHUP_THRESHOLD || (client.is_empty() && lacking > 0) {
                skip_upto = upto;
                covered = snapshot_vv.clone();
                data.snapshot = Some(Snapshot {
                    data: snapshot,
                    covers: snapshot_vv,
                });
            }
        }
        let have = client.merged(&covered);
        let mut stmt = self.conn.prepare(
            "SELECT origin, seq, data FROM updates WHERE doc_id = ?1 AND idx > ?2 ORDER BY idx",
        )?;
        let rows = stmt.query_map(params![doc_id, skip_upto], |r| {
            Ok(UpdateRecord {
                origin: Origin::from(r.get::<_, String>(0)?),
                seq: r.get::<_, i64>(1)? as u64,
                data: r.get(2)?,
            })
        })?;
        for row in rows {
            let update = row?;
            if !have.contains(&update.origin, update.seq) {
                data.updates.push(update);
            }
        }
        Ok(data)
    }
}

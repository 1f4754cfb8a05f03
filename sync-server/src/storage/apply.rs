//! The state machine: applies ordered log entries in one transaction each batch, records
//! the last applied position with them, and takes snapshots when a tail grows long.

use concord_core::{CrdtDoc, VersionVector};
use rusqlite::params;

use super::docs::rebuild;
use super::{encode_vv, ApplyOutcome, DocState, Entry, LogEntry, Result, Storage, StorageError};

impl Storage {
    /// The single-node path: gives `entries` the next log positions and applies them.
    pub fn apply_batch(&mut self, entries: &[LogEntry]) -> Result<Vec<ApplyOutcome>> {
        let first = self.last_applied + 1;
        let entries: Vec<Entry> = entries
            .iter()
            .zip(first..)
            .map(|(payload, index)| Entry {
                index,
                payload: payload.clone(),
            })
            .collect();
        self.apply(&entries)
    }

    /// Applies `entries` (ascending positions) in one durable transaction, with the last
    /// applied position; returns one outcome per entry. Entries at or below the last
    /// applied position are skipped (`Unchanged`), so replaying a log is harmless. Entries
    /// must have been validated (contiguous sequence numbers, decodable updates): a gap
    /// or an unknown document fails the whole batch, which then changes nothing.
    pub fn apply(&mut self, entries: &[Entry]) -> Result<Vec<ApplyOutcome>> {
        let result = self.write(entries);
        if result.is_err() {
            // Nothing was committed: in-memory copies may be ahead of the file.
            for entry in entries {
                if let LogEntry::Append { doc_id, .. } = &entry.payload {
                    self.loaded.remove(doc_id);
                }
            }
        }
        result
    }

    fn write(&mut self, entries: &[Entry]) -> Result<Vec<ApplyOutcome>> {
        let mut heads = self.heads.clone();
        let mut last_applied = self.last_applied;
        let tx = self.conn.transaction()?;
        let mut touched: Vec<String> = Vec::new();
        let mut outcomes = Vec::with_capacity(entries.len());
        for entry in entries {
            if entry.index <= last_applied {
                outcomes.push(ApplyOutcome::Unchanged);
                continue;
            }
            if entry.index != last_applied + 1 {
                return Err(StorageError::Corrupt(format!(
                    "log entry {} follows {last_applied}",
                    entry.index
                )));
            }
            last_applied = entry.index;
            let outcome = match &entry.payload {
                LogEntry::CreateDoc { doc_id, kind } => {
                    if heads.contains_key(doc_id) {
                        outcomes.push(ApplyOutcome::Unchanged);
                        continue;
                    }
                    tx.execute(
                        "INSERT INTO docs (id, kind, vv) VALUES (?1, ?2, ?3)",
                        params![doc_id, kind.as_str(), encode_vv(&VersionVector::new())],
                    )?;
                    heads.insert(
                        doc_id.clone(),
                        DocState {
                            kind: *kind,
                            version: VersionVector::new(),
                            tail: 0,
                        },
                    );
                    ApplyOutcome::Created {
                        doc_id: doc_id.clone(),
                        kind: *kind,
                    }
                }
                LogEntry::Append { doc_id, update } => {
                    let head = heads.get_mut(doc_id).ok_or_else(|| {
                        StorageError::Corrupt(format!("append to unknown doc {doc_id}"))
                    })?;
                    if head.version.contains(&update.origin, update.seq) {
                        outcomes.push(ApplyOutcome::Unchanged);
                        continue;
                    }
                    if !head.version.advance(&update.origin, update.seq) {
                        return Err(StorageError::Corrupt(format!(
                            "batch has a gap at {}:{}",
                            update.origin, update.seq
                        )));
                    }
                    tx.execute(
                        "INSERT INTO updates (doc_id, origin, seq, data) VALUES (?1, ?2, ?3, ?4)",
                        params![
                            doc_id,
                            update.origin.as_str(),
                            update.seq as i64,
                            update.data
                        ],
                    )?;
                    head.tail += 1;
                    if let Some(doc) = self.loaded.get_mut(doc_id) {
                        // Already applied by `integrate` on the leader's path: a no-op then.
                        if doc.apply_update(&update.data).is_err() {
                            self.loaded.remove(doc_id);
                        }
                    }
                    if !touched.contains(doc_id) {
                        touched.push(doc_id.clone());
                    }
                    ApplyOutcome::Appended {
                        doc_id: doc_id.clone(),
                        update: update.clone(),
                    }
                }
            };
            outcomes.push(outcome);
        }
        for doc_id in &touched {
            let head = heads.get_mut(doc_id).expect("touched docs exist");
            if head.tail >= self.snapshot_every {
                snapshot(&tx, doc_id, head, self.loaded.get_mut(doc_id))?;
            } else {
                tx.execute(
                    "UPDATE docs SET vv = ?1, tail = ?2 WHERE id = ?3",
                    params![encode_vv(&head.version), head.tail as i64, doc_id],
                )?;
            }
        }
        tx.execute(
            "UPDATE applied SET last_index = ?1 WHERE id = 0",
            [last_applied as i64],
        )?;
        tx.commit()?;
        self.heads = heads;
        self.last_applied = last_applied;
        Ok(outcomes)
    }
}

/// Stores a new snapshot of the document (from its in-memory copy when there is one).
/// The individual updates are kept so clients that lack a few still get exactly those.
fn snapshot(
    tx: &rusqlite::Transaction<'_>,
    doc_id: &str,
    head: &mut DocState,
    loaded: Option<&mut CrdtDoc>,
) -> Result<()> {
    let mut rebuilt;
    let doc = match loaded {
        Some(doc) => doc,
        None => {
            rebuilt = rebuild(tx, doc_id, head.kind)?;
            &mut rebuilt
        }
    };
    let upto: i64 = tx.query_row(
        "SELECT COALESCE(MAX(idx), 0) FROM updates WHERE doc_id = ?1",
        [doc_id],
        |r| r.get(0),
    )?;
    if doc.has_pending() {
        // Causal gaps across origins: keep the tail until they fill.
        tx.execute(
            "UPDATE docs SET vv = ?1, tail = ?2 WHERE id = ?3",
            params![encode_vv(&head.version), head.tail as i64, doc_id],
        )?;
        return Ok(());
    }
    tx.execute(
        "UPDATE docs SET vv = ?1, snapshot = ?2, snapshot_vv = ?1, snapshot_upto = ?3, tail = 0 WHERE id = ?4",
        params![encode_vv(&head.version), doc.save(), upto, doc_id],
    )?;
    head.tail = 0;
    Ok(())
}

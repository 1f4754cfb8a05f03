//! The state machine: applies ordered log entries in one transaction each batch, records
//! the last applied position with them, and takes checkpoints when a tail grows long.
//!
//! Two paths: the single node's (`apply_batch`/`apply`: one position per entry, gap-free)
//! and the consensus log's (`apply_through`: a position may hold several entries or none).

use concord_core::log;
use concord_core::log::Cached;
use concord_core::vv::SeqPosition;
use std::collections::HashMap;

use concord_core::{CrdtDoc, Origin, VersionVector};
use rusqlite::{params, Transaction};

use super::{ApplyOutcome, DocState, Entry, LogEntry, Result, Storage, StorageError};

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
        self.apply_checked(entries, Positions::Contiguous)
    }

    /// The consensus log's path: applies `entries` taken from the log positions up to
    /// `through` in one durable transaction, and records `through` as the last applied
    /// position together with `consensus` (the consensus layer's state, opaque here).
    /// One position may hold several entries (one consensus entry carries a batch) or
    /// none (positions of the consensus layer's own entries), so positions must only be
    /// ascending. Entries at or below the last applied position are skipped (`Unchanged`).
    pub fn apply_through(
        &mut self,
        entries: &[Entry],
        through: u64,
        consensus: &[u8],
    ) -> Result<Vec<ApplyOutcome>> {
        self.apply_checked(entries, Positions::Through { through, consensus })
    }

    fn apply_checked(
        &mut self,
        entries: &[Entry],
        positions: Positions<'_>,
    ) -> Result<Vec<ApplyOutcome>> {
        let result = self.write(entries, &positions);
        if result.is_err() {
            // Nothing was committed: in-memory copies may be ahead of the file.
            for entry in entries {
                if let LogEntry::Append { doc_id, .. } = &entry.payload {
                    self.unload(doc_id);
                }
            }
        }
        result
    }

    /// Applies the batch in one transaction; if it fails or panics before committing, the
    /// in-memory heads it changed are put back as they were (a panic is caught by the
    /// callers' recovery, which does not re-read the heads).
    fn write(&mut self, entries: &[Entry], positions: &Positions<'_>) -> Result<Vec<ApplyOutcome>> {
        let mut undo = Undo::default();
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            self.write_undoable(entries, positions, &mut undo)
        }));
        match result {
            Ok(Ok(outcomes)) => Ok(outcomes),
            Ok(Err(e)) => {
                undo.revert(&mut self.heads);
                Err(e)
            }
            Err(panic) => {
                undo.revert(&mut self.heads);
                std::panic::resume_unwind(panic)
            }
        }
    }

    fn write_undoable(
        &mut self,
        entries: &[Entry],
        positions: &Positions<'_>,
        undo: &mut Undo,
    ) -> Result<Vec<ApplyOutcome>> {
        let heads = &mut self.heads;
        let applied_before = self.last_applied;
        let mut last_applied = self.last_applied;
        let tx = self.conn.transaction()?;
        // Per document, in order: the documents changed and the updates appended to each.
        let mut touched: Vec<String> = Vec::new();
        let mut appended: HashMap<&str, Vec<&[u8]>> = HashMap::new();
        let mut outcomes = Vec::with_capacity(entries.len());
        for entry in entries {
            let (skip, in_order) = match positions {
                Positions::Contiguous => {
                    (entry.index <= last_applied, entry.index == last_applied + 1)
                }
                Positions::Through { through, .. } => (
                    entry.index <= applied_before,
                    entry.index >= last_applied && entry.index <= *through,
                ),
            };
            if skip {
                outcomes.push(ApplyOutcome::Unchanged);
                continue;
            }
            if !in_order {
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
                    log::create_doc(&tx, doc_id, *kind)?;
                    undo.created.push(doc_id.clone());
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
                    match head.version.position(&update.origin, update.seq) {
                        SeqPosition::Held => {
                            outcomes.push(ApplyOutcome::Unchanged);
                            continue;
                        }
                        SeqPosition::Next => {
                            let before = head.version.get(&update.origin);
                            head.version.advance(&update.origin, update.seq);
                            undo.advanced
                                .push((doc_id.clone(), update.origin.clone(), before));
                        }
                        SeqPosition::Gap { .. } => {
                            return Err(StorageError::Corrupt(format!(
                                "batch has a gap at {}:{}",
                                update.origin, update.seq
                            )));
                        }
                    }
                    log::append(&tx, doc_id, update)?;
                    undo.tails.entry(doc_id.clone()).or_insert(head.tail);
                    head.tail += 1;
                    appended
                        .entry(doc_id.as_str())
                        .or_default()
                        .push(update.data.as_slice());
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
        // The in-memory copies take each document's new updates in one call (one
        // Automerge `apply_changes`: applying a long history change by change is what
        // costs). The validating copy holds those it validated already: no-ops there.
        for (doc_id, updates) in &appended {
            if let Some(doc) = self.loaded.get_mut(*doc_id) {
                if doc.apply_updates(updates).is_err() {
                    self.loaded.remove(*doc_id);
                }
            }
            if let Some(doc) = self.validating.get_mut(*doc_id) {
                if doc.apply_updates(updates).is_err() {
                    self.validating.remove(*doc_id);
                }
            }
        }
        for doc_id in &touched {
            let head = heads.get_mut(doc_id).expect("touched docs exist");
            let every = self.checkpoint_every;
            if head.tail < every || !checkpoint(&tx, doc_id, head, every, &mut self.loaded)? {
                // Logging the updates advanced the stored version vector.
                log::debug_check(&tx, doc_id, &head.version);
            }
        }
        match positions {
            Positions::Contiguous => {
                tx.execute_cached(
                    "UPDATE applied SET last_index = ?1 WHERE id = 0",
                    [last_applied as i64],
                )?;
            }
            Positions::Through { through, consensus } => {
                last_applied = last_applied.max(*through);
                tx.execute_cached(
                    "UPDATE applied SET last_index = ?1, consensus = ?2 WHERE id = 0",
                    params![last_applied as i64, consensus],
                )?;
            }
        }
        tx.commit()?;
        undo.committed = true;
        self.last_applied = last_applied;
        for entry in entries {
            if let LogEntry::Append { doc_id, .. } = &entry.payload {
                self.settle_queued(doc_id);
            }
        }
        if let Positions::Through { consensus, .. } = positions {
            self.consensus = Some(consensus.to_vec());
        }
        Ok(outcomes)
    }
}

/// What undoes a batch's changes to the in-memory heads, which it makes in place: a
/// batch changes a few documents of possibly many, and copying each one it touches (its
/// version vector, one entry per origin) cost O(origins) per batch.
#[derive(Default)]
struct Undo {
    /// Set once the batch is committed: nothing is undone after that.
    committed: bool,
    /// Documents the batch created.
    created: Vec<String>,
    /// Each version vector entry the batch advanced, with its value before.
    advanced: Vec<(String, Origin, u64)>,
    /// Each document's tail before the batch appended to it.
    tails: HashMap<String, u64>,
}

impl Undo {
    /// Puts `heads` back as they were before the batch.
    fn revert(self, heads: &mut HashMap<String, DocState>) {
        if self.committed {
            return;
        }
        for (doc_id, origin, before) in self.advanced.into_iter().rev() {
            if let Some(head) = heads.get_mut(&doc_id) {
                head.version.set(origin, before);
            }
        }
        for (doc_id, tail) in self.tails {
            if let Some(head) = heads.get_mut(&doc_id) {
                head.tail = tail;
            }
        }
        for doc_id in self.created {
            heads.remove(&doc_id);
        }
    }
}

/// How a batch's log positions are checked.
enum Positions<'a> {
    /// One entry per position, each the next one.
    Contiguous,
    /// Ascending positions up to `through`, which becomes the last applied one.
    Through { through: u64, consensus: &'a [u8] },
}

/// Takes the document's checkpoint from its committed copy in `loaded` (read back in `tx`
/// when there is none), unless the document holds updates it cannot integrate yet (then
/// its tail is kept until they fill); returns
/// whether it took one. The relay also records the version the checkpoint covers
/// (`snapshot_vv`), for catch-up snapshots, and prunes nothing: clients that lack a few
/// updates still get exactly those.
fn checkpoint(
    tx: &Transaction<'_>,
    doc_id: &str,
    head: &mut DocState,
    every: u64,
    loaded: &mut HashMap<String, CrdtDoc>,
) -> Result<bool> {
    if !loaded.contains_key(doc_id) {
        // Read back once (this transaction's rows included), then kept: later checkpoints
        // of the document need no replay. Dropped if the transaction fails.
        let doc = log::load(tx, doc_id)
            .map_err(StorageError::stored)?
            .ok_or_else(|| StorageError::Corrupt(format!("no row for doc {doc_id}")))?
            .crdt;
        if loaded.len() >= super::docs::MAX_LOADED_DOCS {
            if let Some(victim) = loaded.keys().next().cloned() {
                loaded.remove(&victim);
            }
        }
        loaded.insert(doc_id.to_string(), doc);
    }
    let doc = loaded.get_mut(doc_id).expect("inserted above");
    if !log::checkpoint_due(head.tail, every, doc) {
        return Ok(false);
    }
    let roots = doc.root_types();
    let (kind, saved) = (doc.kind(), doc.save());
    log::write_checkpoint(tx, doc_id, kind, &head.version, &saved, roots.as_deref())?;
    tx.execute_cached(
        "UPDATE docs SET snapshot_vv = ?1 WHERE id = ?2",
        params![log::encode_version(&head.version), doc_id],
    )?;
    head.tail = 0;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use concord_core::DocKind;

    #[test]
    fn undo_puts_back_repeated_advances_tails_and_created_documents() {
        let a = Origin::from("a");
        let b = Origin::from("b");
        let state = |entries: &[(&Origin, u64)], tail| DocState {
            kind: DocKind::Yrs,
            version: entries.iter().map(|(o, s)| ((*o).clone(), *s)).collect(),
            tail,
        };
        let before: HashMap<String, DocState> = [("d".to_string(), state(&[(&a, 2)], 5))]
            .into_iter()
            .collect();
        let mut heads = before.clone();
        let mut undo = Undo::default();
        // What a batch does: advances a twice and b once, appends (tail 5 -> 8), takes a
        // checkpoint (tail 0), and creates a document.
        let head = heads.get_mut("d").unwrap();
        undo.tails.insert("d".into(), head.tail);
        for (origin, seq) in [(&a, 3), (&b, 1), (&a, 4)] {
            let was = head.version.get(origin);
            assert!(head.version.advance(origin, seq));
            undo.advanced.push(("d".into(), origin.clone(), was));
        }
        head.tail = 0;
        heads.insert("e".into(), state(&[], 0));
        undo.created.push("e".into());

        undo.revert(&mut heads);
        assert_eq!(heads.len(), 1);
        let (back, was) = (&heads["d"], &before["d"]);
        assert_eq!((&back.version, back.tail), (&was.version, was.tail));
    }

    #[test]
    fn a_committed_batch_is_not_undone() {
        let mut heads: HashMap<String, DocState> = HashMap::new();
        let mut undo = Undo::default();
        heads.insert(
            "e".into(),
            DocState {
                kind: DocKind::Yrs,
                version: VersionVector::new(),
                tail: 0,
            },
        );
        undo.created.push("e".into());
        undo.committed = true;
        undo.revert(&mut heads);
        assert!(heads.contains_key("e"));
    }
}

//! What sync needs of the store: the outbox of unacknowledged local updates, the updates
//! a peer lacks, applying remote updates and catch-up snapshots, acknowledgements, and
//! taking a new origin after a restore from an old backup.

use std::sync::Arc;

use crate::log::Cached;
use rusqlite::params;

use super::durability::Durability;
use super::{change_event, clock, fold, sql, RemoteApplied, Store, Write};
use crate::doc::CrdtDoc;
use crate::error::{Error, Result};
use crate::ids::Origin;
use crate::log;
use crate::notify::ChangeSource;
use crate::update::UpdateRecord;
use crate::vv::VersionVector;

impl Store {
    /// The unacknowledged local updates of `id`, oldest first.
    pub fn outbox(&self, id: &str) -> Result<Vec<UpdateRecord>> {
        self.unfold(id)?;
        let inner = self.lock();
        let mut stmt = inner.conn.prepare(
            "SELECT u.origin, u.seq, u.data FROM outbox o
             JOIN updates u ON u.doc_id = o.doc_id AND u.origin = o.origin AND u.seq = o.seq
             WHERE o.doc_id = ?1 ORDER BY u.idx",
        )?;
        let rows = stmt.query_map([id], log::record_from_row)?;
        Ok(rows.collect::<std::result::Result<_, _>>()?)
    }

    /// This device's own unacknowledged updates of `id` after seq `after`, oldest first:
    /// what a live connection has not sent yet (read without the rest of the outbox, so
    /// a commit costs the same however many updates wait for their acknowledgement).
    pub fn outbox_after(&self, id: &str, after: u64) -> Result<Vec<UpdateRecord>> {
        self.unfold(id)?;
        let inner = self.lock();
        let mut stmt = inner.conn.prepare_cached(
            "SELECT u.origin, u.seq, u.data FROM outbox o
             JOIN updates u ON u.doc_id = o.doc_id AND u.origin = o.origin AND u.seq = o.seq
             WHERE o.doc_id = ?1 AND o.origin = ?2 AND o.seq > ?3 ORDER BY u.idx",
        )?;
        let rows = stmt.query_map(
            params![id, inner.device.as_str(), after as i64],
            log::record_from_row,
        )?;
        Ok(rows.collect::<std::result::Result<_, _>>()?)
    }

    /// Updates in this device's log that a replica at `other` lacks, in log order.
    /// (Updates folded into a checkpoint are no longer individually available, except
    /// those still in the outbox, which are never pruned.)
    pub fn updates_missing_from(
        &self,
        id: &str,
        other: &VersionVector,
    ) -> Result<Vec<UpdateRecord>> {
        self.unfold(id)?;
        log::missing_from(&self.lock().conn, id, 0, other)
    }

    /// Records that this device's own updates of `id` up to the highest in `rows` were
    /// read to send: a relay may hold them from now on, so no fold (on close, a
    /// compaction, another process) renumbers them (`fold.rs`). Written only when it
    /// moves; not fsynced (after a power cut the connection that sent them is gone too,
    /// and the next catch-up finds what the relay holds).
    /// (The sync session's reads, through [`DeviceLog`](crate::sync::DeviceLog), call it;
    /// the store's own reads write nothing.)
    pub(crate) fn note_sent(&self, id: &str, rows: &[UpdateRecord]) -> Result<()> {
        let mut inner = self.lock();
        let device = inner.device.clone();
        let Some(upto) = rows
            .iter()
            .filter(|u| u.origin == device)
            .map(|u| u.seq)
            .max()
        else {
            return Ok(());
        };
        if fold::sent_upto(&inner.conn, id, &device)? >= upto {
            return Ok(());
        }
        let Write { tx, .. } = inner.begin_write_with(Durability::FromRelay)?;
        fold::note_sent(&tx, id, &device, upto)?;
        tx.commit()?;
        Ok(())
    }

    /// Rebuilds the document's folded local updates (if any) before they are read to send.
    fn unfold(&self, id: &str) -> Result<()> {
        {
            let mut inner = self.lock();
            inner.read_to_send.insert(id.to_string());
            if !fold::has_fold(&inner.conn, id)? {
                return Ok(());
            }
        }
        self.write_doc(id, |tx, doc, _, _| fold::unfold(tx, id, doc))
    }

    /// The relay holds every update of `origin` up to `upto`: drop them from the outbox.
    /// Not fsynced: lost in a power cut, the updates are sent again and the relay
    /// acknowledges what it holds (see `durability`).
    pub fn acknowledge(&self, id: &str, origin: &Origin, upto: u64) -> Result<usize> {
        let mut inner = self.lock();
        let Write { tx, docs, .. } = inner.begin_write_with(Durability::FromRelay)?;
        let n = tx.execute_cached(
            "DELETE FROM outbox WHERE doc_id = ?1 AND origin = ?2 AND seq <= ?3",
            params![id, origin.as_str(), upto as i64],
        )?;
        fold::forget_base_if_sent(&tx, id)?;
        tx.commit()?;
        if let Some(doc) = docs.get_mut(id) {
            doc.base_noted = false;
        }
        Ok(n)
    }

    /// Applies updates received from the relay, in order, in one SQLite transaction.
    /// Updates already held are skipped; an update whose predecessor from the same origin
    /// is missing stops the batch (the caller should ask for a resync).
    pub fn apply_remote(&self, id: &str, updates: &[UpdateRecord]) -> Result<RemoteApplied> {
        let watch = crate::stopwatch::Stopwatch::start();
        let applied = self.apply_remote_timed(id, updates);
        let nanos = u64::try_from(watch.elapsed().as_nanos()).unwrap_or(u64::MAX);
        self.last_apply_nanos
            .store(nanos, std::sync::atomic::Ordering::Relaxed);
        applied
    }

    /// How long the last [`Store::apply_remote`] took (wall time, lock wait included): a
    /// sync client holds live updates for a multiple of it (see `sync::intake`).
    pub fn last_apply_time(&self) -> std::time::Duration {
        std::time::Duration::from_nanos(
            self.last_apply_nanos
                .load(std::sync::atomic::Ordering::Relaxed),
        )
    }

    fn apply_remote_timed(&self, id: &str, updates: &[UpdateRecord]) -> Result<RemoteApplied> {
        // Not fsynced: the relay holds these and sends them again if a power cut loses
        // them (see `durability`).
        let (outcome, event) =
            self.write_doc_with(id, Durability::FromRelay, |tx, doc, device, options| {
                // Advanced in place: if anything below fails, the loaded document is
                // dropped (`write_doc`, or `Store::lock` after a panic), version and all.
                // A batch with nothing new leaves it alone (a listener may share it).
                let admitted = match log::nothing_new(&doc.version, updates) {
                    Some(admitted) => admitted,
                    None => log::admit(Arc::make_mut(&mut doc.version), updates),
                };
                let mut outcome = RemoteApplied {
                    applied: 0,
                    duplicates: admitted.held,
                    gap: admitted.gap,
                };
                if admitted.new.is_empty() {
                    return Ok((outcome, None));
                }
                let data: Vec<&[u8]> = admitted.new.iter().map(|r| r.data.as_slice()).collect();
                doc.crdt.apply_peer_updates(&data)?;
                clock::observe_doc(tx, &doc.crdt, device, options)?;
                doc.tail += admitted.new.len() as u64;
                doc.tail_bytes += data.iter().map(|d| d.len() as u64).sum::<u64>();
                sql::log_and_write_doc_state(tx, id, doc, options, &admitted.new)?;
                outcome.applied = admitted.new.len();
                Ok((outcome, Some(change_event(id, ChangeSource::Remote, doc))))
            })?;
        self.listeners.emit(event.as_slice());
        Ok(outcome)
    }

    /// Merges a catch-up snapshot from the relay (a saved state) that covers `covers`;
    /// afterwards this device holds every update in `covers`. Stored at once as this
    /// device's checkpoint.
    pub fn apply_catchup_snapshot(
        &self,
        id: &str,
        saved: &[u8],
        covers: &VersionVector,
    ) -> Result<()> {
        let event =
            self.write_doc_with(id, Durability::FromRelay, |tx, doc, device, options| {
                doc.crdt.merge_saved_state(saved)?;
                clock::observe_doc(tx, &doc.crdt, device, options)?;
                Arc::make_mut(&mut doc.version).merge(covers);
                sql::take_checkpoint(tx, id, doc)?;
                Ok(change_event(id, ChangeSource::Remote, doc))
            })?;
        self.listeners.emit(&[event]);
        Ok(())
    }

    /// Called when the relay holds updates under this device's origin that this device
    /// does not (it was restored from an old backup). Takes a new origin id and moves every
    /// unacknowledged local update to it, renumbered from 1, so no sequence number is ever
    /// used twice for different content. Returns the new origin.
    pub fn reoriginate(&self) -> Result<Origin> {
        let mut guard = self.lock();
        let (new, unfolded) = guard.write_docs(|w| {
            let unfolded = fold::unfold_docs(w, None)?;
            let old = w.device.clone();
            let new = Origin::random();
            let tx = &w.tx;
            set_device(tx, &new)?;
            for id in &doc_ids(tx)? {
                let pending = pending_seqs(tx, id, &old)?;
                let mut version = log::read_version(tx, id)?
                    .ok_or_else(|| Error::Corrupt(format!("document {id:?} has no row")))?;
                let acked = pending
                    .first()
                    .map(|s| *s as u64 - 1)
                    .unwrap_or(version.get(&old));
                version.set(old.clone(), acked);
                for (i, seq) in pending.iter().enumerate() {
                    let new_seq = i as i64 + 1;
                    tx.execute_cached(
                        "UPDATE updates SET origin = ?1, seq = ?2 WHERE doc_id = ?3 AND origin = ?4 AND seq = ?5",
                        params![new.as_str(), new_seq, id, old.as_str(), seq],
                    )?;
                    tx.execute_cached(
                        "UPDATE outbox SET origin = ?1, seq = ?2 WHERE doc_id = ?3 AND origin = ?4 AND seq = ?5",
                        params![new.as_str(), new_seq, id, old.as_str(), seq],
                    )?;
                }
                version.set(new.clone(), pending.len() as u64);
                log::write_version(tx, id, &version)?;
            }
            Ok((new, unfolded))
        })?;
        guard.device = new.clone();
        guard.docs.clear();
        guard.read_to_send.extend(unfolded);
        Ok(new)
    }

    /// The relay holds the updates of each `(origin, seq)` in `lost` of document `id` only
    /// up to `seq`, while this device has more of them and no longer holds the next one by
    /// itself (they were folded into its checkpoint): a leader under the `leader` write
    /// concern died before passing acknowledged updates on, or the relay was restored from
    /// an old backup. Drops those origins' later updates from this device's log and
    /// version (so device and relay agree on them again) and queues their content as one
    /// update of the whole document ([`CrdtDoc::whole_update`](crate::CrdtDoc::whole_update)),
    /// which the relay integrates whatever it holds; the document's own unacknowledged
    /// updates go into it too (they may build on what was lost). When this device's own
    /// origin is among `lost` it first takes a new origin (an acknowledged sequence number
    /// is never reused), and every document with unacknowledged updates sends them the same
    /// way, as one whole update. Returns true when it took a new origin.
    pub fn repair_lost(&self, id: &str, lost: &[(Origin, u64)], own: u64) -> Result<bool> {
        let mut guard = self.lock();
        let (author, renew, unfolded) = guard.write_docs(|w| {
            let renew = lost.iter().any(|(o, _)| o == &*w.device);
            // A new origin renumbers every document's outbox; otherwise only this one's.
            let unfolded = fold::unfold_docs(w, (!renew).then_some(id))?;
            let Write {
                tx,
                device,
                docs,
                options,
            } = w;
            let current = device.clone();
            let author = if renew {
                Origin::random()
            } else {
                current.clone()
            };
            let mut here = lost.to_vec();
            if !renew {
                // This document's own unacknowledged updates may build on what was lost: they
                // go into the whole update too, which takes the first of their seqs.
                // Never below what the relay holds of this origin (no seq it has is reused).
                if let Some(first) = pending_seqs(tx, id, &current)?.first() {
                    here.push((current.clone(), (*first as u64 - 1).max(own)));
                }
            }
            let mut cut: Vec<(String, Vec<(Origin, u64)>)> = vec![(id.to_string(), here)];
            if renew {
                set_device(tx, &author)?;
                for other in doc_ids(tx)? {
                    if other == id {
                        continue;
                    }
                    // Unacknowledged updates go out whole under the new origin.
                    let pending = pending_seqs(tx, &other, &current)?;
                    if let Some(first) = pending.first() {
                        cut.push((other, vec![(current.clone(), *first as u64 - 1)]));
                    }
                }
            }
            for (doc_id, origins) in &cut {
                let doc = sql::loaded(tx, docs, doc_id, options.text_unit)?;
                // The whole document from the empty position, in records of at most about
                // 1 MiB (Automerge; Yrs is one update), well under a relay's frame cap.
                let empty = CrdtDoc::new(doc.crdt.kind()).position();
                let size = doc.crdt.whole_update().len() as u64;
                let records = doc
                    .crdt
                    .updates_since(&empty, (size / fold::RECORD_BYTES + 1) as usize)?;
                for (origin, upto) in origins {
                    for table in ["updates", "outbox"] {
                        tx.execute_cached(
                            &format!(
                                "DELETE FROM {table} WHERE doc_id = ?1 AND origin = ?2 AND seq > ?3"
                            ),
                            params![doc_id, origin.as_str(), *upto as i64],
                        )?;
                    }
                    Arc::make_mut(&mut doc.version).set(origin.clone(), *upto);
                }
                for data in records {
                    let seq = doc.version.get(&author) + 1;
                    Arc::make_mut(&mut doc.version).set(author.clone(), seq);
                    let record = UpdateRecord {
                        origin: author.clone(),
                        seq,
                        data,
                    };
                    sql::insert_update(tx, doc_id, &record, true)?;
                    doc.tail += 1;
                }
                // Origins cut back: written whole.
                log::write_version(tx, doc_id, &doc.version)?;
                // Should these updates be folded before they are sent, they are rebuilt from
                // the empty position too: the whole document, not only what follows them.
                tx.execute_cached("DELETE FROM outbox_base WHERE doc_id = ?1", [doc_id])?;
                fold::note_base(tx, doc_id, &empty)?;
            }
            Ok((author, renew, unfolded))
        })?;
        guard.device = author;
        guard.docs.clear();
        guard.read_to_send.extend(unfolded);
        Ok(renew)
    }
}

fn set_device(tx: &rusqlite::Transaction<'_>, origin: &Origin) -> Result<()> {
    tx.execute_cached(
        "UPDATE meta SET value = ?1 WHERE key = 'device_id'",
        [origin.as_str()],
    )?;
    Ok(())
}

fn doc_ids(tx: &rusqlite::Transaction<'_>) -> Result<Vec<String>> {
    let mut stmt = tx.prepare("SELECT id FROM docs")?;
    let ids = stmt.query_map([], |r| r.get(0))?;
    Ok(ids.collect::<std::result::Result<_, _>>()?)
}

/// The seqs of `origin`'s updates of `id` still in the outbox, in order.
fn pending_seqs(tx: &rusqlite::Transaction<'_>, id: &str, origin: &Origin) -> Result<Vec<i64>> {
    let mut stmt =
        tx.prepare("SELECT seq FROM outbox WHERE doc_id = ?1 AND origin = ?2 ORDER BY seq")?;
    let seqs = stmt.query_map(params![id, origin.as_str()], |r| r.get(0))?;
    Ok(seqs.collect::<std::result::Result<_, _>>()?)
}

impl Store {}

//! Compaction: a checkpoint of what was logged since the last one, the logged updates it
//! covers pruned (the outbox, which must still be sent, folded into the checkpoint: see
//! `fold.rs`), and the file's free pages given back. Explicit (`compact`, `compact_all`) and on close, for the documents this
//! handle changed (a handle that only read writes nothing).

use rusqlite::{params, Connection};

use super::{fold, sql, Inner, Store};
use crate::error::Result;

/// Free pages above this share of the file are given back (VACUUM) by a compaction.
const FREE_SHARE_TO_RECLAIM: f64 = 0.25;

impl Store {
    /// Checkpoints document `id` (when anything was logged since its last checkpoint),
    /// deletes every logged update the checkpoint covers that is not waiting to be sent,
    /// and gives the freed space back to the file system.
    pub fn compact(&self, id: &str) -> Result<()> {
        let mut guard = self.lock();
        compact_docs(&mut guard, &[id.to_string()])?;
        reclaim(&guard.conn)
    }

    /// [`Store::compact`] for every document.
    pub fn compact_all(&self) -> Result<()> {
        let mut guard = self.lock();
        let ids: Vec<String> = {
            let mut stmt = guard.conn.prepare("SELECT id FROM docs ORDER BY id")?;
            let ids = stmt.query_map([], |r| r.get(0))?;
            ids.collect::<std::result::Result<_, _>>()?
        };
        compact_docs(&mut guard, &ids)?;
        reclaim(&guard.conn)
    }
}

/// Checkpoints and prunes each document in one write transaction.
fn compact_docs(inner: &mut Inner, ids: &[String]) -> Result<()> {
    inner.write_docs(|w| {
        for id in ids {
            let doc = sql::loaded(&w.tx, w.docs, id, w.options.text_unit)?;
            if doc.crdt.has_pending() {
                continue;
            }
            if doc.tail > 0 {
                sql::take_checkpoint(&w.tx, id, doc)?;
            }
            sql::prune_covered(&w.tx, id)?;
            fold::fold(&w.tx, id, doc, w.device, 0, true)?;
        }
        Ok(())
    })
}

/// Runs VACUUM when free pages are a large share of the file (outside any transaction).
fn reclaim(conn: &Connection) -> Result<()> {
    let pages: i64 = conn.query_row("PRAGMA page_count", [], |r| r.get(0))?;
    let free: i64 = conn.query_row("PRAGMA freelist_count", [], |r| r.get(0))?;
    if pages > 0 && free as f64 > pages as f64 * FREE_SHARE_TO_RECLAIM {
        conn.execute_batch("VACUUM")?;
        conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", params![], |_| Ok(()))?;
    }
    Ok(())
}

impl Drop for Inner {
    /// On close, checkpoints the documents this handle changed whose tail is not empty,
    /// so the next open loads a checkpoint instead of replaying a tail, and folds an
    /// outbox of at least `StoreOptions::fold_outbox_at` rows. Best effort: every local
    /// commit is already durable (and what the relay holds it sends again), so a failure
    /// here loses nothing. All or nothing: a fold that failed half-way (its rows deleted,
    /// its record not written) must not be committed, or the unsent updates it held would
    /// never be sent.
    fn drop(&mut self) {
        let dirty: Vec<String> = self
            .docs
            .iter()
            .filter(|(_, d)| d.dirty)
            .map(|(id, _)| id.clone())
            .collect();
        if dirty.is_empty() {
            return;
        }
        let read_to_send = std::mem::take(&mut self.read_to_send);
        let folded = self.write_docs(|w| {
            let mut folded = 0;
            for id in &dirty {
                // A document that does not load is left as it is.
                let Ok(doc) = sql::loaded(&w.tx, w.docs, id, w.options.text_unit) else {
                    continue;
                };
                if doc.crdt.has_pending() {
                    continue;
                }
                if doc.tail > 0 {
                    sql::take_checkpoint(&w.tx, id, doc)?;
                }
                let by_size = !read_to_send.contains(id);
                folded += fold::fold(&w.tx, id, doc, w.device, w.options.fold_outbox_at, by_size)?;
            }
            Ok(folded)
        });
        if folded.is_ok_and(|n| n > 0) {
            // The folded rows' pages go back to the file system.
            let _ = reclaim(&self.conn);
        }
    }
}

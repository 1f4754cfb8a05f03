//! The compact outbox. Every local commit logs its update as a row (durable at once), but
//! a device that cannot reach a relay would keep a row per keystroke. So, on compaction
//! and on close, the unsent local updates of a document are folded into its checkpoint:
//! their rows are deleted and one `outbox_fold` row remembers the position before the
//! oldest of them (`outbox_base`, recorded when the outbox was empty) and the sequence
//! numbers it will use. Before anything is sent (`outbox`, `updates_missing_from`,
//! `reoriginate`), the fold is rebuilt from the document as `records` updates
//! (`CrdtDoc::updates_since`), logged and listed in the outbox like any other: from then on
//! they are exact per (origin, seq), as the protocol requires. The wire is unchanged.
//!
//! Folding renumbers: updates `a..=b` become `a..a+records`, and the version vector's
//! own entry goes back to `a + records - 1`. That is safe only for updates no relay
//! holds, so only updates after the highest one read to send (`outbox_sent`, written by
//! whichever handle or process read them) are folded: those before it stay rows, and
//! an acknowledgement on its way still means them. If the record of that was lost (a
//! power cut), so was the connection that sent them; at the next catch-up the relay
//! reports more of this origin than the device has, and the device takes a new origin
//! (protocol.md, restored device), so no sequence number is ever stored twice with
//! different content. The folded updates are rebuilt from the base, the position before
//! the oldest unacknowledged update, so they may repeat what a sent one holds: the CRDTs
//! take it once.

use std::sync::Arc;

use crate::log::Cached;
use rusqlite::{params, OptionalExtension, Transaction};

use super::{sql, Loaded, Write};
use crate::error::Result;
use crate::ids::{DocKind, Origin};
use crate::log;
use crate::update::UpdateRecord;

/// The size an Automerge fold aims at per rebuilt update (well under a relay's frame cap).
pub(super) const RECORD_BYTES: u64 = 1024 * 1024;

/// On close, an outbox of fewer than `fold_outbox_at` rows is folded anyway once its rows
/// hold more bytes than the document's checkpoint, and at least this many: the few large
/// commits of a batched editor would otherwise keep the file several times the document
/// (the sveltecomponent trace's 184 commits of 100 txns: 5x) until a relay acknowledges
/// them. Below it, rebuilding the fold before sending would cost more than it saves. Not
/// when the closing handle read them to send: a relay may hold them with the
/// acknowledgement still on its way, and folding them would make the device take a new
/// origin at its next catch-up (harmless, but every origin stays in the document's version
/// vector for good).
pub(super) const FOLD_MIN_BYTES: u64 = 16 * 1024;

/// Records, before a local edit, the document's position if no earlier unacknowledged
/// update holds one (the oldest is kept).
pub(super) fn note_base(tx: &Transaction<'_>, id: &str, position: &[u8]) -> Result<()> {
    tx.prepare_cached("INSERT OR IGNORE INTO outbox_base (doc_id, since) VALUES (?1, ?2)")?
        .execute(params![id, position])?;
    Ok(())
}

/// Forgets the base, and what was read to send, once nothing of the document is left to
/// send.
pub(super) fn forget_base_if_sent(tx: &rusqlite::Connection, id: &str) -> Result<()> {
    for table in ["outbox_base", "outbox_sent"] {
        tx.execute_cached(
            &format!(
                "DELETE FROM {table} WHERE doc_id = ?1
                   AND NOT EXISTS (SELECT 1 FROM outbox WHERE doc_id = ?1)
                   AND NOT EXISTS (SELECT 1 FROM outbox_fold WHERE doc_id = ?1)"
            ),
            [id],
        )?;
    }
    Ok(())
}

/// The highest of `device`'s updates of `id` read to send (0 when none, or when they were
/// read under another origin).
pub(super) fn sent_upto(conn: &rusqlite::Connection, id: &str, device: &Origin) -> Result<u64> {
    let mark: Option<(String, i64)> = conn
        .query_row_cached(
            "SELECT origin, seq FROM outbox_sent WHERE doc_id = ?1",
            [id],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?;
    Ok(match mark {
        Some((origin, seq)) if origin == device.as_str() => seq as u64,
        _ => 0,
    })
}

/// Records that `device`'s updates of `id` up to `upto` were read to send.
pub(super) fn note_sent(tx: &Transaction<'_>, id: &str, device: &Origin, upto: u64) -> Result<()> {
    tx.execute_cached(
        "INSERT INTO outbox_sent (doc_id, origin, seq) VALUES (?1, ?2, ?3)
         ON CONFLICT (doc_id) DO UPDATE SET origin = excluded.origin, seq = excluded.seq
           WHERE outbox_sent.origin != excluded.origin OR outbox_sent.seq < excluded.seq",
        params![id, device.as_str(), upto as i64],
    )?;
    Ok(())
}

/// Folds the document's unsent local updates into its checkpoint, when they are all from
/// `device`, follow one another up to its entry in the version vector, and there are more
/// of them than the updates they will be rebuilt as, and at least `min_rows` of them or
/// (`by_size`) more bytes than the checkpoint and [`FOLD_MIN_BYTES`]. The checkpoint must
/// cover them (the caller has just taken it: tail 0). Returns how many rows were folded.
pub(super) fn fold(
    tx: &Transaction<'_>,
    id: &str,
    doc: &mut Loaded,
    device: &Origin,
    min_rows: u64,
    by_size: bool,
) -> Result<usize> {
    if doc.tail > 0 || has_fold(tx, id)? {
        return Ok(0);
    }
    let Some(since): Option<Vec<u8>> = tx
        .query_row_cached(
            "SELECT since FROM outbox_base WHERE doc_id = ?1",
            [id],
            |r| r.get(0),
        )
        .optional()?
    else {
        return Ok(0);
    };
    // What was read to send stays as it is: a relay may hold it, its acknowledgement on
    // the way, and renumbered it would be acknowledged as something else.
    let sent = sent_upto(tx, id, device)? as i64;
    let (rows, others, first, last, bytes): (i64, i64, Option<i64>, Option<i64>, i64) = tx
        .query_row_cached(
            "SELECT COUNT(*), COALESCE(SUM(o.origin != ?2), 0), MIN(o.seq), MAX(o.seq),
                    COALESCE(SUM(LENGTH(u.data)), 0)
             FROM outbox o JOIN updates u
               ON u.doc_id = o.doc_id AND u.origin = o.origin AND u.seq = o.seq
             WHERE o.doc_id = ?1 AND NOT (o.origin = ?2 AND o.seq <= ?3)",
            params![id, device.as_str(), sent],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)),
        )?;
    let (Some(first), Some(last)) = (first, last) else {
        return Ok(0);
    };
    let records = match doc.crdt.kind() {
        DocKind::Yrs => 1,
        DocKind::Automerge => (bytes as u64).div_ceil(RECORD_BYTES).max(1) as i64,
    };
    let contiguous = last - first + 1 == rows && last as u64 == doc.version.get(device);
    let outweighs = by_size && bytes as u64 > doc.checkpoint_bytes.max(FOLD_MIN_BYTES);
    if others > 0 || !contiguous || rows <= records || ((rows as u64) < min_rows && !outweighs) {
        return Ok(0);
    }
    tx.execute_cached(
        "DELETE FROM updates WHERE doc_id = ?1 AND origin = ?2 AND seq >= ?3",
        params![id, device.as_str(), first],
    )?;
    tx.execute_cached(
        "DELETE FROM outbox WHERE doc_id = ?1 AND origin = ?2 AND seq >= ?3",
        params![id, device.as_str(), first],
    )?;
    tx.execute_cached(
        "INSERT INTO outbox_fold (doc_id, origin, first_seq, records, commits, since)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![id, device.as_str(), first, records, rows, since],
    )?;
    Arc::make_mut(&mut doc.version).set(device.clone(), (first + records - 1) as u64);
    // Cut back below the deleted rows: written whole.
    log::write_version(tx, id, &doc.version)?;
    Ok(rows as usize)
}

/// Rebuilds a folded outbox as updates, logged and listed in the outbox (before sending).
pub(super) fn unfold(tx: &Transaction<'_>, id: &str, doc: &mut Loaded) -> Result<()> {
    let fold: Option<(String, i64, i64, Vec<u8>)> = tx
        .query_row_cached(
            "SELECT origin, first_seq, records, since FROM outbox_fold WHERE doc_id = ?1",
            [id],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
        )
        .optional()?;
    let Some((origin, first, records, since)) = fold else {
        return Ok(());
    };
    let updates = doc.crdt.updates_since(&since, records as usize)?;
    for (i, data) in updates.into_iter().enumerate() {
        let record = UpdateRecord {
            origin: Origin::from(origin.clone()),
            seq: first as u64 + i as u64,
            data,
        };
        doc.tail_bytes += record.data.len() as u64;
        sql::insert_update(tx, id, &record, true)?;
        doc.tail += 1;
    }
    tx.execute_cached("DELETE FROM outbox_fold WHERE doc_id = ?1", [id])?;
    // The rebuilt updates are the ones the version vector already counted.
    log::debug_check(tx, id, &doc.version);
    Ok(())
}

/// Rebuilds the folded outbox of document `only`, or of every document, in `w`'s
/// transaction, and returns the documents it rebuilt. A renumbering of the outbox
/// (`reoriginate`, `repair_lost`) must see every unsent update as a row in the transaction
/// that renumbers: rebuilt in a transaction of its own, another process could fold them
/// again before it, and the fold would later be rebuilt under the old origin, at sequence
/// numbers the relay already holds with other content.
pub(super) fn unfold_docs(w: &mut Write<'_>, only: Option<&str>) -> Result<Vec<String>> {
    let ids: Vec<String> = {
        let mut stmt =
            w.tx.prepare_cached("SELECT doc_id FROM outbox_fold WHERE ?1 IS NULL OR doc_id = ?1")?;
        let ids = stmt.query_map([only], |r| r.get(0))?;
        ids.collect::<std::result::Result<_, _>>()?
    };
    for id in &ids {
        let doc = sql::loaded(&w.tx, w.docs, id, w.options.text_unit)?;
        unfold(&w.tx, id, doc)?;
    }
    Ok(ids)
}

/// True when the document has a folded outbox (a cheap check before taking the lock).
pub(super) fn has_fold(conn: &rusqlite::Connection, id: &str) -> Result<bool> {
    Ok(conn
        .query_row_cached("SELECT 1 FROM outbox_fold WHERE doc_id = ?1", [id], |_| {
            Ok(())
        })
        .optional()?
        .is_some())
}

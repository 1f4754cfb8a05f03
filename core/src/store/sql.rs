//! The device's SQL: its uses of the shared update log ([`crate::log`]) plus what only a
//! device has, the outbox of local updates the relay has not acknowledged.

use crate::log::Cached;
use std::collections::HashMap;

use rusqlite::{params, Connection, OptionalExtension, Transaction};

use super::{Loaded, StoreOptions};
use crate::error::{Error, Result};
use crate::ids::DocKind;
use crate::log::{self, Keep};
use crate::text_unit::TextUnit;
use crate::update::UpdateRecord;

/// The table of local updates still to send: a checkpoint never prunes them.
pub(super) const OUTBOX: &str = "outbox";

pub(super) fn kind_of(conn: &Connection, id: &str) -> Result<Option<DocKind>> {
    let kind: Option<String> = conn
        .query_row_cached("SELECT kind FROM docs WHERE id = ?1", [id], |r| r.get(0))
        .optional()?;
    kind.map(|k| k.parse()).transpose()
}

/// The in-memory copy of `id`, loaded from checkpoint + tail on first use.
pub(super) fn loaded<'a>(
    conn: &Connection,
    docs: &'a mut HashMap<String, Loaded>,
    id: &str,
    unit: TextUnit,
) -> Result<&'a mut Loaded> {
    if !docs.contains_key(id) {
        // Checkpoint and tail are read in one transaction, so a concurrent checkpoint by
        // another process cannot make updates fall between the two reads.
        let doc = if conn.is_autocommit() {
            let tx = conn.unchecked_transaction()?;
            let doc = load(&tx, id, unit)?;
            tx.commit()?;
            doc
        } else {
            load(conn, id, unit)?
        };
        docs.insert(id.to_string(), doc);
    }
    Ok(docs.get_mut(id).expect("inserted above"))
}

fn load(conn: &Connection, id: &str, unit: TextUnit) -> Result<Loaded> {
    let loaded = log::load_in(conn, id, unit)?.ok_or_else(|| Error::NoSuchDoc(id.to_string()))?;
    Ok(Loaded {
        crdt: loaded.crdt,
        version: std::sync::Arc::new(loaded.head.version),
        tail: loaded.head.tail,
        tail_bytes: loaded.tail_bytes,
        checkpoint_bytes: loaded.checkpoint_bytes,
        dirty: false,
        base_noted: false,
    })
}

/// Logs `record`; a local one (`outbox`) is also listed as still to send.
pub(super) fn insert_update(
    tx: &Transaction<'_>,
    id: &str,
    record: &UpdateRecord,
    outbox: bool,
) -> Result<()> {
    log::append(tx, id, record)?;
    if outbox {
        tx.execute_cached(
            "INSERT INTO outbox (doc_id, origin, seq) VALUES (?1, ?2, ?3)",
            params![id, record.origin.as_str(), record.seq as i64],
        )?;
    }
    Ok(())
}

/// Writes a checkpoint when the tail is long enough:
/// [`StoreOptions::checkpoint_every`] updates, or more bytes than the size bound
/// ([`StoreOptions::checkpoint_tail_ratio`] of the checkpoint, at least
/// [`StoreOptions::checkpoint_min_bytes`]).
pub(super) fn write_doc_state(
    tx: &Transaction<'_>,
    id: &str,
    doc: &mut Loaded,
    options: &StoreOptions,
) -> Result<()> {
    log_and_write_doc_state(tx, id, doc, options, &[])
}

/// [`write_doc_state`] after other devices' updates `new` were applied to the document
/// (and counted in its tail) but not yet logged: they are logged, unless the checkpoint
/// taken now holds them, which would prune them at once.
pub(super) fn log_and_write_doc_state(
    tx: &Transaction<'_>,
    id: &str,
    doc: &mut Loaded,
    options: &StoreOptions,
    new: &[&UpdateRecord],
) -> Result<()> {
    doc.dirty = true;
    let byte_bound = ((doc.checkpoint_bytes as f64 * options.checkpoint_tail_ratio) as u64)
        .max(options.checkpoint_min_bytes);
    let every = if doc.tail_bytes >= byte_bound {
        doc.tail.max(1)
    } else {
        options.checkpoint_every
    };
    if log::checkpoint_due(doc.tail, every, &mut doc.crdt) {
        return take_checkpoint(tx, id, doc);
    }
    for record in new {
        insert_update(tx, id, record, false)?;
    }
    // Logging the updates advanced the stored version vector.
    log::debug_check(tx, id, &doc.version);
    Ok(())
}

/// Stores the saved state as the new checkpoint and prunes the logged updates it covers
/// (keeping those still in the outbox, which must be sent).
pub(super) fn take_checkpoint(tx: &Transaction<'_>, id: &str, doc: &mut Loaded) -> Result<()> {
    let saved = doc.crdt.save();
    let roots = doc.crdt.root_types();
    let kind = doc.crdt.kind();
    let span = log::write_checkpoint(tx, id, kind, &doc.version, &saved, roots.as_deref())?;
    log::prune(tx, id, span, Keep::ListedIn(OUTBOX))?;
    doc.tail = 0;
    doc.tail_bytes = 0;
    doc.checkpoint_bytes = saved.len() as u64;
    Ok(())
}

/// Deletes every logged update the document's checkpoint covers, except those still in
/// the outbox (all of them, not only the last checkpoint's span).
pub(super) fn prune_covered(tx: &Transaction<'_>, id: &str) -> Result<usize> {
    let upto: i64 =
        tx.query_row_cached("SELECT snapshot_upto FROM docs WHERE id = ?1", [id], |r| {
            r.get(0)
        })?;
    let span = log::LogSpan {
        previous_upto: 0,
        upto,
    };
    log::prune(tx, id, span, Keep::ListedIn(OUTBOX))
}

//! Cache coherence across processes: the store caches loaded documents and the device id,
//! and another process sharing the file may commit at any time. `PRAGMA data_version`
//! tells when it has; the cache is then dropped and reloaded on next use.

use crate::log::Cached;
use std::collections::HashMap;

use rusqlite::{Connection, Transaction, TransactionBehavior};

use super::{schema, Loaded};
use crate::error::{Error, Result};
use crate::ids::Origin;

/// `PRAGMA data_version` when the cache was last known to match the file, and how many
/// times another connection (another process) was seen to have committed since opening.
#[derive(Debug, Clone, Copy)]
pub(super) struct DiskVersion {
    pub seen: i64,
    pub external_changes: u64,
}

impl DiskVersion {
    /// The file's state as this connection sees it now.
    pub fn read(conn: &Connection) -> Result<DiskVersion> {
        Ok(DiskVersion {
            seen: conn.query_row_cached("PRAGMA data_version", [], |r| r.get(0))?,
            external_changes: 0,
        })
    }
}

/// The cached state that another process's commits can make stale.
pub(super) struct Cache<'a> {
    pub device: &'a mut Origin,
    pub docs: &'a mut HashMap<String, Loaded>,
    pub data_version: &'a mut DiskVersion,
}

/// Drops cached documents (and re-reads the device id) when another connection — another
/// process sharing the file — has committed since we last looked.
pub(super) fn refresh_from_disk(conn: &Connection, cache: Cache<'_>) -> Result<()> {
    let now: i64 = conn.query_row_cached("PRAGMA data_version", [], |r| r.get(0))?;
    if now != cache.data_version.seen {
        cache.docs.clear();
        *cache.device = read_device(conn)?;
        cache.data_version.seen = now;
        cache.data_version.external_changes += 1;
    }
    Ok(())
}

pub(super) fn read_device(conn: &Connection) -> Result<Origin> {
    schema::device_id(conn)?.ok_or_else(|| Error::Corrupt("the store has no device id".into()))
}

/// Starts a write transaction that holds SQLite's write lock from the start, after which
/// the cache is brought up to date with the file.
pub(super) fn begin_write<'c>(
    conn: &'c mut Connection,
    cache: Cache<'_>,
) -> Result<Transaction<'c>> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    refresh_from_disk(&tx, cache)?;
    Ok(tx)
}

//! What a write waits for before it returns: the disk, or only the file.
//!
//! A local commit holds what the user typed, which exists nowhere else until a relay has
//! it: it is fsynced before [`Store::transact`](super::Store::transact) returns
//! (`synchronous=FULL`). What the device stores on the relay's word (other devices'
//! updates, catch-up snapshots, acknowledgements of its own updates) the relay already
//! holds: it is committed without waiting for the fsync (`synchronous=NORMAL`). A power
//! cut may lose the last of those writes, and the next sync gets them again: the relay
//! re-sends what the device's version vector lacks, and acknowledges again a re-sent update
//! it holds (if the device folded that update meanwhile, `fold.rs`, the relay reports more
//! of the device's origin than it has and the device takes a new origin, as after any lost
//! acknowledgement). Nothing local is put at risk: the WAL is written in order, so the
//! fsync of a later local commit covers every earlier write, and a local edit made on top
//! of updates from the relay is never on disk without them.
//!
//! "The relay holds it" is as strong as the relay's write concern: under `leader` (or a
//! relay restored from an old backup) an acknowledged update can be lost there, and a
//! device that also lost it in a power cut cannot give it back (`repair_lost`); its author
//! still can, as the author's own commits are fsynced.
//!
//! On a phone or a laptop an fsync costs milliseconds and battery, and a device catching
//! up applies many batches and acknowledgements: those no longer wait for the disk.

use rusqlite::Connection;

use crate::error::Result;
use crate::log::Cached;

/// How durable a write must be when its commit returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Durability {
    /// On disk (fsynced): a local commit, or anything the relay cannot give back.
    Disk,
    /// In the file (written, not yet fsynced): what the relay holds and would send again.
    FromRelay,
}

/// The connection's `synchronous` setting, switched only when it changes.
#[derive(Debug)]
pub(super) struct SyncMode {
    current: Durability,
}

impl Durability {
    /// The `synchronous` level a write of this durability commits with.
    fn level(self) -> i64 {
        match self {
            Durability::Disk => 2,
            Durability::FromRelay => 1,
        }
    }
}

/// The connection's `synchronous` level now (2 = FULL, 1 = NORMAL).
fn level_of(conn: &Connection) -> Result<i64> {
    Ok(conn.query_row_cached("PRAGMA synchronous", [], |r| r.get(0))?)
}

/// Checks, in builds with debug assertions, that an open write transaction will commit
/// with the level its durability asks for.
pub(super) fn debug_check(conn: &Connection, durability: Durability) {
    if cfg!(debug_assertions) {
        let level = level_of(conn).expect("reading PRAGMA synchronous");
        assert_eq!(
            level,
            durability.level(),
            "a {durability:?} write commits with synchronous={level}"
        );
    }
}

impl SyncMode {
    /// A connection `schema::prepare` opened: `synchronous=FULL`.
    pub fn new() -> SyncMode {
        SyncMode {
            current: Durability::Disk,
        }
    }

    /// Sets the connection up for a write of `durability`; call it outside a transaction
    /// (the setting applies to the commits that follow).
    pub fn set(&mut self, conn: &Connection, durability: Durability) -> Result<()> {
        if self.current != durability {
            let sql = match durability {
                Durability::Disk => "PRAGMA synchronous = FULL",
                Durability::FromRelay => "PRAGMA synchronous = NORMAL",
            };
            conn.execute_cached(sql, [])?;
            self.current = durability;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{DocKind, Store};

    /// The `synchronous` setting the store's connection holds now: the one its last
    /// write committed with.
    fn synchronous(store: &Store) -> i64 {
        level_of(&store.inner.lock().unwrap().conn).unwrap()
    }

    const NORMAL: i64 = 1;
    const FULL: i64 = 2;

    #[test]
    fn local_commits_wait_for_the_disk_and_what_the_relay_holds_does_not() {
        let dir = tempfile::tempdir().unwrap();
        let author = Store::open(dir.path().join("author.db")).unwrap();
        author.create_doc("d", DocKind::Automerge).unwrap();
        author
            .transact("d", |tx| tx.insert_text("t", 0, "hello"))
            .unwrap();
        assert_eq!(synchronous(&author), FULL, "a local commit");

        let device = Store::open(dir.path().join("device.db")).unwrap();
        assert_eq!(synchronous(&device), FULL, "a store as opened");
        device.create_doc("d", DocKind::Automerge).unwrap();
        let applied = device
            .apply_remote("d", &author.outbox("d").unwrap())
            .unwrap();
        assert_eq!(applied.applied, 1);
        assert_eq!(synchronous(&device), NORMAL, "updates from the relay");

        device
            .transact("d", |tx| tx.insert_text("t", 5, " world"))
            .unwrap();
        assert_eq!(synchronous(&device), FULL, "a local commit after them");

        let own = device.device_id();
        assert_eq!(device.acknowledge("d", &own, 1).unwrap(), 1);
        assert_eq!(synchronous(&device), NORMAL, "an acknowledgement");
        device
            .transact("d", |tx| tx.insert_text("t", 0, ">"))
            .unwrap();
        assert_eq!(synchronous(&device), FULL, "a local commit after it");
        assert_eq!(device.pending("d").unwrap(), 1);

        let saved = author.saved_state("d").unwrap();
        let covers = author.version_vector("d").unwrap();
        device.apply_catchup_snapshot("d", &saved, &covers).unwrap();
        assert_eq!(synchronous(&device), NORMAL, "a catch-up snapshot");
        drop(device);

        // Everything is in the file all the same.
        let reopened = Store::open(dir.path().join("device.db")).unwrap();
        assert_eq!(
            reopened.get("d", "t").unwrap(),
            Some(serde_json::json!(">hello world"))
        );
        assert_eq!(reopened.pending("d").unwrap(), 1);
    }

    #[test]
    fn the_setting_is_switched_only_when_it_changes() {
        let conn = Connection::open_in_memory().unwrap();
        let mut mode = SyncMode::new();
        let level = |c: &Connection| level_of(c).unwrap();
        conn.pragma_update(None, "synchronous", "FULL").unwrap();
        mode.set(&conn, Durability::FromRelay).unwrap();
        assert_eq!(level(&conn), NORMAL);
        // Changed behind its back: `set` trusts what it last set, so a same-mode call
        // runs no statement.
        conn.pragma_update(None, "synchronous", "OFF").unwrap();
        mode.set(&conn, Durability::FromRelay).unwrap();
        assert_eq!(level(&conn), 0);
        mode.set(&conn, Durability::Disk).unwrap();
        assert_eq!(level(&conn), FULL);
    }
}

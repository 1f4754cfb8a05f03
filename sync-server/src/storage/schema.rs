//! The relay database's schema and its versioned migrations (`PRAGMA user_version`).

use rusqlite::{Connection, TransactionBehavior};

use super::error::Result;

/// Each entry migrates from version `index` to `index + 1`. Version 1 is the schema that
/// databases written before migrations were numbered already have (hence `IF NOT EXISTS`).
const MIGRATIONS: &[&str] = &[
    // 0 -> 1: documents and their update log.
    "CREATE TABLE IF NOT EXISTS docs (
        id            TEXT PRIMARY KEY,
        kind          TEXT NOT NULL,
        vv            BLOB NOT NULL,
        snapshot      BLOB,
        snapshot_vv   BLOB,
        snapshot_upto INTEGER NOT NULL DEFAULT 0,
        tail          INTEGER NOT NULL DEFAULT 0
    );
    CREATE TABLE IF NOT EXISTS updates (
        idx    INTEGER PRIMARY KEY AUTOINCREMENT,
        doc_id TEXT NOT NULL,
        origin TEXT NOT NULL,
        seq    INTEGER NOT NULL,
        data   BLOB NOT NULL,
        UNIQUE (doc_id, origin, seq)
    );
    CREATE INDEX IF NOT EXISTS updates_by_doc ON updates (doc_id, idx);",
    // 1 -> 2: the log position of the last applied entry, written with each batch.
    "CREATE TABLE applied (
        id         INTEGER PRIMARY KEY CHECK (id = 0),
        last_index INTEGER NOT NULL
    );
    INSERT INTO applied (id, last_index) VALUES (0, 0);",
];

/// The schema version this build writes.
pub const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

/// Sets the durability pragmas and brings the schema up to date, in one transaction.
pub fn prepare(conn: &mut Connection) -> Result<()> {
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let version: i64 = tx.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    if version < SCHEMA_VERSION {
        for migration in &MIGRATIONS[version as usize..] {
            tx.execute_batch(migration)?;
        }
        tx.pragma_update(None, "user_version", SCHEMA_VERSION)?;
    }
    tx.commit()?;
    Ok(())
}

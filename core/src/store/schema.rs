//! The device database's schema and its migrations (tracked in `PRAGMA user_version`).

use rusqlite::Connection;

use crate::error::{Error, Result};

/// Each entry migrates from version `index` to `index + 1`.
const MIGRATIONS: &[&str] = &[
    // 0 -> 1: documents, their update log, the outbox of unacknowledged local updates.
    "CREATE TABLE meta (
        key   TEXT PRIMARY KEY,
        value TEXT NOT NULL
    );
    CREATE TABLE docs (
        id            TEXT PRIMARY KEY,
        kind          TEXT NOT NULL,
        vv            BLOB NOT NULL,
        snapshot      BLOB,
        snapshot_upto INTEGER NOT NULL DEFAULT 0,
        tail          INTEGER NOT NULL DEFAULT 0
    );
    CREATE TABLE updates (
        idx    INTEGER PRIMARY KEY AUTOINCREMENT,
        doc_id TEXT NOT NULL,
        origin TEXT NOT NULL,
        seq    INTEGER NOT NULL,
        data   BLOB NOT NULL,
        UNIQUE (doc_id, origin, seq)
    );
    CREATE INDEX updates_by_doc ON updates (doc_id, idx);
    CREATE TABLE outbox (
        doc_id TEXT NOT NULL,
        origin TEXT NOT NULL,
        seq    INTEGER NOT NULL,
        PRIMARY KEY (doc_id, origin, seq)
    ) WITHOUT ROWID;",
];

/// The schema version this build writes.
pub const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

/// Sets durability pragmas and brings the schema up to date, in one transaction.
pub fn prepare(conn: &mut Connection) -> Result<()> {
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    conn.busy_timeout(std::time::Duration::from_secs(5))?;
    let tx = conn.transaction()?;
    let version: i64 = tx.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    if version > SCHEMA_VERSION {
        return Err(Error::SchemaTooNew {
            found: version,
            supported: SCHEMA_VERSION,
        });
    }
    for migration in &MIGRATIONS[version as usize..] {
        tx.execute_batch(migration)?;
    }
    tx.pragma_update(None, "user_version", SCHEMA_VERSION)?;
    tx.commit()?;
    Ok(())
}

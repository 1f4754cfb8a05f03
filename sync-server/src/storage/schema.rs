//! The relay database's schema and its versioned migrations (`PRAGMA user_version`).
//!
//! The documents' update log is core's shared one ([`concord_core::log::schema`]); the
//! relay adds `snapshot_vv` to `docs`: the version vector its checkpoint covers, sent with
//! a catch-up snapshot. Column names are the file format and stay as written (the
//! checkpoint is in `checkpoints`, `snapshot_vv` the version it covers).

use concord_core::log::schema::{
    add_checkpoint_checked, add_checkpoint_roots, add_version_index, Step, CHECKPOINTS_TABLE,
    DOC_LOG_COLUMNS, MOVE_CHECKPOINTS, UPDATES_TABLE,
};
use rusqlite::{Connection, TransactionBehavior};

use super::error::{Result, StorageError};

/// Each entry migrates from version `index` to `index + 1`.
const MIGRATIONS: &[Step] = &[
    // 0 -> 1: documents and their update log.
    Step::Sql(&[
        "CREATE TABLE docs (
        id            TEXT PRIMARY KEY,",
        DOC_LOG_COLUMNS,
        ",
        snapshot_vv   BLOB
    );",
        UPDATES_TABLE,
    ]),
    // 1 -> 2: the log position of the last applied entry, written with each batch.
    Step::Sql(&["CREATE TABLE applied (
        id         INTEGER PRIMARY KEY CHECK (id = 0),
        last_index INTEGER NOT NULL
    );
    INSERT INTO applied (id, last_index) VALUES (0, 0);"]),
    // 2 -> 3: the consensus layer's state at the last applied position (opaque to the
    // relay; a cluster node's last applied log id and membership), written with it.
    Step::Sql(&["ALTER TABLE applied ADD COLUMN consensus BLOB;"]),
    // 3 -> 4: checkpoints in a table of their own (see `CHECKPOINTS_TABLE`).
    Step::Sql(&[CHECKPOINTS_TABLE, MOVE_CHECKPOINTS]),
    // 4 -> 5: a checkpoint records its document's root types (see `add_checkpoint_roots`).
    Step::Run(add_checkpoint_roots),
    // 5 -> 6: the version vector is stored as of a log index, and commits only log their
    // updates (see `add_version_index`).
    Step::Run(add_version_index),
    // 6 -> 7: a checkpoint records whether its values were checked when they came in (see
    // `add_checkpoint_checked`).
    Step::Run(add_checkpoint_checked),
];

/// The schema version this build writes.
pub const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

/// Refuses a file written by a newer relay (before anything is written to it), sets the
/// durability pragmas and brings the schema up to date, in one transaction.
pub fn prepare(conn: &mut Connection) -> Result<()> {
    refuse_newer(conn)?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let mut version: i64 = tx.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    if version == 0 && has_docs_table(&tx)? {
        // Written before migrations were numbered: it already has version 1's tables.
        version = 1;
    }
    if version < SCHEMA_VERSION {
        for migration in &MIGRATIONS[version as usize..] {
            migration.apply(&tx)?;
        }
        tx.pragma_update(None, "user_version", SCHEMA_VERSION)?;
    }
    tx.commit()?;
    Ok(())
}

/// An error if the database at `conn` is of a newer schema than this build's.
pub fn refuse_newer(conn: &Connection) -> Result<()> {
    let found: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    if found > SCHEMA_VERSION {
        return Err(StorageError::SchemaTooNew {
            found,
            supported: SCHEMA_VERSION,
        });
    }
    Ok(())
}

fn has_docs_table(conn: &Connection) -> Result<bool> {
    Ok(conn.query_row(
        "SELECT COUNT(*) > 0 FROM sqlite_master WHERE type = 'table' AND name = 'docs'",
        [],
        |r| r.get(0),
    )?)
}

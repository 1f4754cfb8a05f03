//! The device database's schema and its migrations (tracked in `PRAGMA user_version`).

use std::time::Duration;

use rusqlite::{Connection, OptionalExtension, TransactionBehavior};

use crate::doc::CrdtDoc;
use crate::error::{Error, Result};
use crate::ids::{DocKind, Origin};
use crate::log::schema::{
    add_checkpoint_checked, add_checkpoint_roots, add_version_index, Step, CHECKPOINTS_TABLE,
    DOC_LOG_COLUMNS, MOVE_CHECKPOINTS, UPDATES_TABLE,
};

/// Each entry migrates from version `index` to `index + 1` (the shared update log's pieces
/// come from [`crate::log::schema`]).
const MIGRATIONS: &[Step] = &[
    // 0 -> 1: documents, their update log, the outbox of unacknowledged local updates.
    Step::Sql(&[
        "CREATE TABLE meta (
            key   TEXT PRIMARY KEY,
            value TEXT NOT NULL
        );
        CREATE TABLE docs (
            id            TEXT PRIMARY KEY,",
        DOC_LOG_COLUMNS,
        "
        );",
        UPDATES_TABLE,
        "
        CREATE TABLE outbox (
            doc_id TEXT NOT NULL,
            origin TEXT NOT NULL,
            seq    INTEGER NOT NULL,
            PRIMARY KEY (doc_id, origin, seq)
        ) WITHOUT ROWID;",
    ]),
    // 1 -> 2: the device's hybrid logical clock (conflict policies), one row.
    Step::Sql(&["CREATE TABLE hlc (
            id      INTEGER PRIMARY KEY CHECK (id = 0),
            ms      INTEGER NOT NULL,
            counter INTEGER NOT NULL
        );"]),
    // 2 -> 3: the compact outbox (store `fold.rs`): per document, the position before its
    // oldest unacknowledged local update, and the local updates folded into the checkpoint
    // (`commits` of them, to be rebuilt from it as `records` updates from `first_seq`
    // before they are sent).
    Step::Run(add_compact_outbox),
    // 3 -> 4: checkpoints in a table of their own (see `CHECKPOINTS_TABLE`).
    Step::Sql(&[CHECKPOINTS_TABLE, MOVE_CHECKPOINTS]),
    // 4 -> 5: a checkpoint records its document's root types (see `add_checkpoint_roots`).
    Step::Run(add_checkpoint_roots),
    // 5 -> 6: the version vector is stored as of a log index, and commits only log their
    // updates (see `add_version_index`).
    Step::Run(add_version_index),
    // 6 -> 7: per document, the highest of the device's own updates read to send (by any
    // handle or process): a fold never renumbers what a relay may hold (`fold.rs`).
    Step::Sql(&["CREATE TABLE IF NOT EXISTS outbox_sent (
            doc_id TEXT PRIMARY KEY,
            origin TEXT NOT NULL,
            seq    INTEGER NOT NULL
        ) WITHOUT ROWID;"]),
    // 7 -> 8: a checkpoint records whether its values were checked when they came in (see
    // `add_checkpoint_checked`).
    Step::Run(add_checkpoint_checked),
];

/// 2 -> 3: the compact outbox's tables. A document that already has unacknowledged local
/// updates gets the empty position as its base: the position before the oldest of them is
/// not known any more, and a base noted at the next edit would come after them (a fold
/// would then rebuild only the updates since that edit and lose the older ones); from the
/// empty position a fold rebuilds the whole document, which holds them all.
fn add_compact_outbox(conn: &Connection) -> rusqlite::Result<()> {
    conn.execute_batch(&crate::log::schema::compact(
        "CREATE TABLE IF NOT EXISTS outbox_base (
            doc_id TEXT PRIMARY KEY,
            since  BLOB NOT NULL
        ) WITHOUT ROWID;
        CREATE TABLE IF NOT EXISTS outbox_fold (
            doc_id    TEXT PRIMARY KEY,
            origin    TEXT NOT NULL,
            first_seq INTEGER NOT NULL,
            records   INTEGER NOT NULL,
            commits   INTEGER NOT NULL,
            since     BLOB NOT NULL
        ) WITHOUT ROWID;",
    ))?;
    for kind in [DocKind::Automerge, DocKind::Yrs] {
        let empty = CrdtDoc::new(kind).position();
        conn.execute(
            "INSERT OR IGNORE INTO outbox_base (doc_id, since)
             SELECT DISTINCT o.doc_id, ?2 FROM outbox o JOIN docs d ON d.id = o.doc_id
             WHERE d.kind = ?1",
            rusqlite::params![kind.to_string(), empty],
        )?;
    }
    Ok(())
}

/// The schema version this build writes.
pub const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

/// How long a connection waits for another connection's (another process's) lock before
/// giving up with "database is locked".
pub const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// The page size of a new store file. Each table and index takes at least one page, so a
/// store holding one small document is mostly those pages: at SQLite's default of 4 KiB
/// its file is several times the document. Documents' saved states live in overflow
/// chains either way. An existing file keeps the page size it was created with.
pub const NEW_STORE_PAGE_SIZE: u32 = 1024;

/// Sets the busy timeout (first, so that everything after it waits for other processes'
/// locks) and the durability pragmas, brings the schema up to date and makes sure the
/// store has a device id; returns the device id.
///
/// Opening a store that is already current writes nothing: the version and the device id
/// are read first, and only when something is missing is an IMMEDIATE transaction taken
/// (holding the write lock from its start, so it waits for other writers instead of
/// failing), in which both are checked again before anything is written. A current store
/// is opened with as few statements as it takes (each costs a cold open tens of µs).
pub fn prepare(conn: &mut Connection) -> Result<Origin> {
    conn.busy_timeout(BUSY_TIMEOUT)?;
    // A file of a newer schema is refused before anything (a pragma) is written to it.
    let version = schema_version(conn)?;
    // Only an empty file (a new store) takes a page size; this reads nothing and writes
    // nothing for an existing one.
    if version == 0 {
        let pages: i64 = conn.query_row("PRAGMA page_count", [], |r| r.get(0))?;
        if pages == 0 {
            conn.pragma_update(None, "page_size", NEW_STORE_PAGE_SIZE)?;
        }
    }
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    // The version only moves forward (a newer build's migration): a current version and a
    // device id read apart are current. (The device id changes when a process takes a new
    // origin; the store reads `data_version` before this, so it notices that commit.)
    if version == SCHEMA_VERSION {
        if let Some(device) = device_id(conn)? {
            return Ok(device);
        }
    }
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let version = schema_version(&tx)?;
    if version < SCHEMA_VERSION {
        for migration in &MIGRATIONS[version as usize..] {
            migration.apply(&tx)?;
        }
        tx.pragma_update(None, "user_version", SCHEMA_VERSION)?;
    }
    let device = match device_id(&tx)? {
        Some(device) => device,
        None => {
            let device = Origin::random();
            tx.execute(
                "INSERT INTO meta (key, value) VALUES ('device_id', ?1)",
                [device.as_str()],
            )?;
            device
        }
    };
    tx.commit()?;
    Ok(device)
}

/// The schema version in the file; an error if it is newer than this build understands.
fn schema_version(conn: &Connection) -> Result<i64> {
    let version: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    if version > SCHEMA_VERSION {
        return Err(Error::SchemaTooNew {
            found: version,
            supported: SCHEMA_VERSION,
        });
    }
    Ok(version)
}

/// The device id stored in `meta`, if any.
pub fn device_id(conn: &Connection) -> Result<Option<Origin>> {
    Ok(conn
        .query_row("SELECT value FROM meta WHERE key = 'device_id'", [], |r| {
            r.get::<_, String>(0)
        })
        .optional()?
        .map(Origin::from))
}

//! The SQL of the shared log schema, for the owners' migrations to include.

/// The columns of the owner's `docs` table that the log uses, after `id TEXT PRIMARY KEY`:
/// kind, version vector, checkpoint (saved state, named `snapshot` in the file), the log
/// index it covers up to, and how many updates were logged since.
pub const DOC_LOG_COLUMNS: &str = "
        kind          TEXT NOT NULL,
        vv            BLOB NOT NULL,
        snapshot      BLOB,
        snapshot_upto INTEGER NOT NULL DEFAULT 0,
        tail          INTEGER NOT NULL DEFAULT 0";

/// The `updates` table (one row per update, `idx` is the log order) and its index.
pub const UPDATES_TABLE: &str = "
    CREATE TABLE updates (
        idx    INTEGER PRIMARY KEY AUTOINCREMENT,
        doc_id TEXT NOT NULL,
        origin TEXT NOT NULL,
        seq    INTEGER NOT NULL,
        data   BLOB NOT NULL,
        UNIQUE (doc_id, origin, seq)
    );
    CREATE INDEX updates_by_doc ON updates (doc_id, idx);";

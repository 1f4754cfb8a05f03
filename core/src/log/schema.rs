//! The SQL of the shared log schema, for the owners' migrations to include.

/// The columns of the owner's `docs` table that the log uses, after `id TEXT PRIMARY KEY`:
/// kind, version vector, checkpoint (saved state, named `snapshot` in the file; since
/// [`CHECKPOINTS_TABLE`] always NULL), the log index it covers up to, and how many updates
/// were logged since.
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

/// The `checkpoints` table: each document's checkpoint (saved state), kept out of its
/// `docs` row. Every commit rewrites that row (version vector, tail); with the saved state
/// in it SQLite read, copied and compared the whole state each time, and walked its
/// overflow pages to reach the columns after it. A rowid table: a `WITHOUT ROWID` one
/// keyed by `doc_id` reads a record that overflows in full to compare its key, so every
/// lookup would read the saved state twice.
pub const CHECKPOINTS_TABLE: &str = "
    CREATE TABLE IF NOT EXISTS checkpoints (
        doc_id TEXT PRIMARY KEY,
        state  BLOB NOT NULL
    );";

/// Moves checkpoints written in `docs.snapshot` (files from before [`CHECKPOINTS_TABLE`])
/// into that table.
pub const MOVE_CHECKPOINTS: &str = "
    INSERT INTO checkpoints (doc_id, state)
        SELECT id, snapshot FROM docs WHERE snapshot IS NOT NULL
        ON CONFLICT (doc_id) DO UPDATE SET state = excluded.state;
    UPDATE docs SET snapshot = NULL WHERE snapshot IS NOT NULL;";

/// Adds the root types a checkpoint records next to its saved state (`CrdtDoc::root_types`:
/// a Yrs saved state names its roots but does not say what type each is); NULL for
/// checkpoints written before, and for Automerge documents. The table is rebuilt rather
/// than altered so that the step can run on a file that already has the column (SQLite
/// has no `ADD COLUMN IF NOT EXISTS`), as every migration step here can.
pub const CHECKPOINT_ROOTS: &str = "
    CREATE TABLE checkpoints_with_roots (
        doc_id TEXT PRIMARY KEY,
        state  BLOB NOT NULL,
        roots  TEXT
    );
    INSERT INTO checkpoints_with_roots (doc_id, state) SELECT doc_id, state FROM checkpoints;
    DROP TABLE checkpoints;
    ALTER TABLE checkpoints_with_roots RENAME TO checkpoints;";

/// The checkpoint of the `docs` row in scope, as an SQL expression.
pub const CHECKPOINT_OF_ROW: &str = "(SELECT state FROM checkpoints WHERE doc_id = docs.id)";

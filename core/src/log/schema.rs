//! The SQL of the shared log schema, for the owners' migrations to include.

use rusqlite::Connection;

/// The columns of the owner's `docs` table that the log uses, after `id TEXT PRIMARY KEY`,
/// as first written: kind, version vector, checkpoint (saved state, named `snapshot` in the
/// file; since [`CHECKPOINTS_TABLE`] always NULL), the log index it covers up to, and how
/// many updates were logged since (`tail`; since [`add_version_index`] no longer written:
/// the tail is counted from the log). [`add_version_index`] adds `vv_upto`.
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
/// `docs` row. Until schema 6 every commit rewrote that row (version vector, tail); with
/// the saved state in it SQLite read, copied and compared the whole state each time, and
/// walked its overflow pages to reach the columns after it. A rowid table: a `WITHOUT ROWID` one
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
/// checkpoints written before, and for Automerge documents. Adds the column only where it
/// is missing (SQLite has no `ADD COLUMN IF NOT EXISTS`), so the step can run again on a
/// file that has it, losing nothing.
pub fn add_checkpoint_roots(conn: &Connection) -> rusqlite::Result<()> {
    add_column(conn, "checkpoints", "roots", "TEXT", "")
}

/// Adds `checkpoints.checked`: 1 when the checkpoint's own bytes were walked for the
/// nesting depth of their values (`doc::yrs_depth`, as every Yrs update from a peer is)
/// and found clean when it was written, so loading it skips that walk (a whole extra pass
/// over the saved state: about 0.5-0.7 ms of a 6 ms load of the automerge-paper trace's
/// Yrs document). The walk moves from every load to every checkpoint taken. 0 for
/// checkpoints written before, which are walked as a peer's update is. Only where it is
/// missing, like [`add_checkpoint_roots`].
pub fn add_checkpoint_checked(conn: &Connection) -> rusqlite::Result<()> {
    add_column(
        conn,
        "checkpoints",
        "checked",
        "INTEGER NOT NULL DEFAULT 0",
        "",
    )
}

/// Adds `docs.vv_upto`, the log index the stored version vector `docs.vv` holds the
/// document as of (see [`super::version`]): every row written before this step was
/// written with the whole vector, so it is the highest index given so far. Only where it
/// is missing, like [`add_checkpoint_roots`].
pub fn add_version_index(conn: &Connection) -> rusqlite::Result<()> {
    let fill = format!(
        "UPDATE docs SET vv_upto = {};",
        super::version::LAST_INDEX_EVER
    );
    add_column(conn, "docs", "vv_upto", "INTEGER NOT NULL DEFAULT 0", &fill)
}

/// Adds column `column` (of type and constraints `decl`) to `table` and runs `fill`,
/// unless the table has the column already.
fn add_column(
    conn: &Connection,
    table: &str,
    column: &str,
    decl: &str,
    fill: &str,
) -> rusqlite::Result<()> {
    let has: bool = conn.query_row(
        "SELECT COUNT(*) > 0 FROM pragma_table_info(?1) WHERE name = ?2",
        [table, column],
        |r| r.get(0),
    )?;
    if !has {
        conn.execute_batch(&compact(&format!(
            "ALTER TABLE {table} ADD COLUMN {column} {decl}; {fill}"
        )))?;
    }
    Ok(())
}

/// One step of an owner's schema migrations: SQL pieces run in order as one batch, or a
/// function for what SQL alone cannot say.
pub enum Step {
    Sql(&'static [&'static str]),
    Run(fn(&Connection) -> rusqlite::Result<()>),
}

impl Step {
    pub fn apply(&self, conn: &Connection) -> rusqlite::Result<()> {
        match self {
            Step::Sql(pieces) => conn.execute_batch(&compact(&pieces.concat())),
            Step::Run(f) => f(conn),
        }
    }
}

/// The checkpoint of the `docs` row in scope, as an SQL expression.
pub const CHECKPOINT_OF_ROW: &str = "(SELECT state FROM checkpoints WHERE doc_id = docs.id)";

/// `sql` with every run of whitespace outside quoted text made one space, and none after
/// `(` or before `)` and `,`. SQLite keeps each `CREATE` statement's text as written, in
/// the file's schema table, and the migrations' indented text took 4 of a new store's
/// pages where the compact text takes 3 (with 1 KiB pages, a store holding one small
/// document is mostly such fixed pages). A `--` comment outside quoted text is dropped to
/// the end of its line (on one line, it would swallow the statements after it).
pub fn compact(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len());
    let mut quote: Option<char> = None;
    let mut space = false;
    let mut chars = sql.chars().peekable();
    while let Some(c) = chars.next() {
        if let Some(q) = quote {
            out.push(c);
            if c == q {
                quote = None;
            }
            continue;
        }
        if c == '-' && chars.peek() == Some(&'-') {
            for skipped in chars.by_ref() {
                if skipped == '\n' {
                    break;
                }
            }
            space = true;
            continue;
        }
        if c.is_whitespace() {
            space = true;
            continue;
        }
        if space && !out.is_empty() && !out.ends_with('(') && !matches!(c, ')' | ',') {
            out.push(' ');
        }
        space = false;
        if matches!(c, '\'' | '"') {
            quote = Some(c);
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compact_sql_keeps_quoted_text_and_drops_layout_whitespace() {
        assert_eq!(
            compact("CREATE TABLE t (\n    a TEXT NOT NULL ,\n    b   INTEGER\n);\n"),
            "CREATE TABLE t (a TEXT NOT NULL, b INTEGER);"
        );
        assert_eq!(
            compact("INSERT INTO t (a) VALUES ('two  spaces ( , )');  UPDATE \"x  y\" SET b = 1"),
            "INSERT INTO t (a) VALUES ('two  spaces ( , )'); UPDATE \"x  y\" SET b = 1"
        );
        assert_eq!(
            compact("CREATE TABLE t (a -- the key\n  TEXT); -- done\nSELECT '--', 2 - -1"),
            "CREATE TABLE t (a TEXT); SELECT '--', 2 - -1"
        );
    }

    #[test]
    fn the_compact_schema_is_the_same_schema() {
        let tables = |conn: &Connection| -> Vec<(String, String, String)> {
            let mut stmt = conn
                .prepare(
                    "SELECT m.name, p.name, p.type || p.\"notnull\" || p.pk || IFNULL(p.dflt_value, '')
                     FROM sqlite_master m, pragma_table_info(m.name) p
                     WHERE m.type = 'table'
                     UNION ALL
                     SELECT m.name, i.name, i.\"unique\" || i.origin || i.partial
                       || (SELECT group_concat(c.name) FROM pragma_index_info(i.name) c)
                     FROM sqlite_master m, pragma_index_list(m.name) i
                     WHERE m.type = 'table'
                     UNION ALL
                     SELECT name, type, wr || strict || ncol FROM pragma_table_list
                     WHERE schema = 'main'
                     ORDER BY 1, 2",
                )
                .unwrap();
            stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
                .unwrap()
                .map(Result::unwrap)
                .collect()
        };
        let [plain, compacted] = [false, true].map(|compacted| {
            let conn = Connection::open_in_memory().unwrap();
            let sql = format!(
                "CREATE TABLE docs (id TEXT PRIMARY KEY, {DOC_LOG_COLUMNS});
                 CREATE TABLE o (a TEXT, b INTEGER CHECK (b > 0), PRIMARY KEY (a, b))
                   WITHOUT ROWID;
                 {UPDATES_TABLE}{CHECKPOINTS_TABLE}"
            );
            let sql = if compacted { compact(&sql) } else { sql };
            conn.execute_batch(&sql).unwrap();
            add_checkpoint_roots(&conn).unwrap();
            add_checkpoint_checked(&conn).unwrap();
            tables(&conn)
        });
        assert!(!plain.is_empty());
        assert_eq!(plain, compacted);
    }
}

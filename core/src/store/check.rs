//! [`Store::check`]: is the store's file intact, and does every document load?
//!
//! Runs SQLite's `PRAGMA integrity_check` on the file, then reads every document the way
//! loading it does (version vector, checkpoint, logged updates), checks each logged update
//! decodes, and that every outbox entry points to a stored update. Everything found is
//! reported as a [`Problem`] in a [`CheckReport`]; reading stops at nothing short of an
//! error that is not about damaged data (e.g. the file is locked).

use std::fmt;

use rusqlite::types::ValueRef;
use rusqlite::{params, Connection, OptionalExtension};

use super::Store;
use crate::doc::{validate_update, CrdtDoc};
use crate::error::{Error, Result};
use crate::ids::{DocKind, Origin};
use crate::log;
use crate::log::decode_version;
use crate::log::schema::CHECKPOINT_OF_ROW;
use crate::text_unit::TextUnit;

/// What [`Store::check`] found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CheckReport {
    /// How many documents the store lists (and were checked).
    pub docs: usize,
    /// Every problem found, in the order found; empty when the store is healthy.
    pub problems: Vec<Problem>,
    /// Documents with local updates the relay has not acknowledged, and how many: the
    /// edits that exist only in this file. `None` when the outbox cannot be read.
    pub unsynced: Option<Vec<(String, usize)>>,
}

impl CheckReport {
    /// True when nothing is wrong.
    pub fn is_ok(&self) -> bool {
        self.problems.is_empty()
    }
}

/// One thing wrong with the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// The document concerned; `None` for damage to the file itself.
    pub doc: Option<String>,
    pub kind: ProblemKind,
    /// What is wrong, in words.
    pub detail: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.doc {
            Some(doc) => write!(f, "document {doc:?}: {}: {}", self.kind, self.detail),
            None => write!(f, "{}: {}", self.kind, self.detail),
        }
    }
}

/// Which part of the store a [`Problem`] is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ProblemKind {
    /// SQLite's integrity check failed, or a read hit a damaged page: the file is damaged.
    Database,
    /// A document's row cannot be read, or names an unknown kind.
    DocRow,
    /// A document's version vector does not decode, or does not cover its logged updates.
    VersionVector,
    /// A document's checkpoint (its stored saved state, column `snapshot`) does not load.
    /// (Reported as "snapshot", the name users of `concord check` know.)
    Snapshot,
    /// A logged update does not decode, or the log does not apply to the checkpoint.
    Update,
    /// An outbox entry points to no stored update (or to no document).
    Outbox,
}

impl ProblemKind {
    pub fn as_str(&self) -> &'static str {
        match self {
            ProblemKind::Database => "database",
            ProblemKind::DocRow => "document row",
            ProblemKind::VersionVector => "version vector",
            ProblemKind::Snapshot => "snapshot",
            ProblemKind::Update => "update",
            ProblemKind::Outbox => "outbox",
        }
    }
}

impl fmt::Display for ProblemKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// True when `err` means the stored data is damaged: SQLite reports a corrupt file
/// (`SQLITE_CORRUPT`, `SQLITE_NOTADB`), or stored bytes do not decode
/// ([`Error::Corrupt`]). [`Error::InvalidUpdate`] is not included: it also rejects bad
/// updates received from elsewhere; callers that only read stored documents may count it.
pub fn is_corruption(err: &Error) -> bool {
    match err {
        Error::Storage(e) => e.is_corruption(),
        Error::Corrupt(_) => true,
        _ => false,
    }
}

impl Store {
    /// Checks the whole store: SQLite's integrity check, then every document as it would
    /// load (checkpoint and logged updates decode and apply, version vector decodes and
    /// covers the log, outbox entries point to stored updates). Reads the file, not the
    /// in-memory cache. Damage is reported in the [`CheckReport`]; `Err` only for errors
    /// that say nothing about the data (e.g. the file is locked).
    ///
    /// ```
    /// # use concord_core::{Store, DocKind};
    /// let store = Store::open_in_memory()?;
    /// store.create_doc("notes", DocKind::Automerge)?;
    /// assert!(store.check()?.is_ok());
    /// # Ok::<(), concord_core::Error>(())
    /// ```
    pub fn check(&self) -> Result<CheckReport> {
        let inner = self.lock();
        // One read transaction: a consistent view even while other processes commit.
        let tx = inner.conn.unchecked_transaction()?;
        let mut checker = Checker::default();
        checker.integrity(&tx)?;
        let ids = checker
            .attempt(None, ProblemKind::Database, doc_ids(&tx))?
            .unwrap_or_default();
        for id in &ids {
            checker.doc(&tx, id)?;
        }
        checker.orphan_outbox(&tx)?;
        let unsynced = checker.attempt(None, ProblemKind::Outbox, unsynced(&tx))?;
        // Read only: rolled back on drop. (Ending it can itself fail on a damaged file.)
        drop(tx);
        Ok(CheckReport {
            docs: ids.len(),
            problems: checker.problems,
            unsynced,
        })
    }
}

/// Collects problems while the checks run.
#[derive(Default)]
struct Checker {
    problems: Vec<Problem>,
}

impl Checker {
    fn found(&mut self, doc: Option<&str>, kind: ProblemKind, detail: impl fmt::Display) {
        self.problems.push(Problem {
            doc: doc.map(str::to_string),
            kind,
            detail: detail.to_string(),
        });
    }

    /// `Some(value)`, or `None` after recording a problem when `result` failed because
    /// of damaged data (a damaged page is always a [`ProblemKind::Database`] problem).
    /// Other errors are returned.
    fn attempt<T>(
        &mut self,
        doc: Option<&str>,
        kind: ProblemKind,
        result: Result<T>,
    ) -> Result<Option<T>> {
        match result {
            Ok(value) => Ok(Some(value)),
            Err(Error::Storage(e)) if e.is_corruption() => {
                let detail = match doc {
                    Some(_) => format!("reading its {kind} hit a damaged page: {e}"),
                    None => e.to_string(),
                };
                self.found(doc, ProblemKind::Database, detail);
                Ok(None)
            }
            Err(
                e @ (Error::Corrupt(_) | Error::InvalidUpdate { .. } | Error::UnknownDocKind(_)),
            ) => {
                self.found(doc, kind, e);
                Ok(None)
            }
            Err(e) => Err(e),
        }
    }

    /// `PRAGMA integrity_check`: each line it reports is a problem (it may report some,
    /// then stop at a page too damaged to read).
    fn integrity(&mut self, conn: &Connection) -> Result<()> {
        let mut lines = Vec::new();
        let ended = integrity_lines(conn, &mut lines);
        // Newer SQLite puts several findings in one row, one per line, under a heading.
        for line in lines.iter().flat_map(|row| row.lines()) {
            let line = line.trim();
            if !(line.is_empty() || line == "ok" || line.starts_with("*** in database")) {
                self.found(None, ProblemKind::Database, line);
            }
        }
        self.attempt(None, ProblemKind::Database, ended)?;
        Ok(())
    }

    /// Everything loading the document reads, plus its whole log and its outbox.
    fn doc(&mut self, conn: &Connection, id: &str) -> Result<()> {
        let Some(row) = self.attempt(Some(id), ProblemKind::DocRow, doc_row(conn, id))? else {
            return Ok(());
        };
        let Some(kind) =
            self.attempt(Some(id), ProblemKind::DocRow, row.kind.parse::<DocKind>())?
        else {
            return Ok(());
        };
        let mut version = self.attempt(
            Some(id),
            ProblemKind::VersionVector,
            decode_version(&row.vv),
        )?;
        let crdt = match &row.snapshot {
            None => Some(CrdtDoc::new(kind)),
            // Loaded as the store loads it (the recorded root types declared first).
            Some(bytes) => match CrdtDoc::load_checkpoint(
                kind,
                bytes,
                row.roots.as_deref(),
                TextUnit::default(),
                // A check reads everything as from a peer.
                false,
            ) {
                Ok(crdt) => Some(crdt),
                Err(Error::InvalidUpdate { reason, .. }) => {
                    let detail = format!("does not load as {kind}: {reason}");
                    self.found(Some(id), ProblemKind::Snapshot, detail);
                    None
                }
                Err(e) => self.attempt(Some(id), ProblemKind::Snapshot, Err(e))?,
            },
        };
        let Some(updates) = self.attempt(Some(id), ProblemKind::Update, logged(conn, id))? else {
            return self.outbox(conn, id);
        };
        // The stored vector is the row's as of `vv_upto`, advanced by the updates logged
        // after it (`log::version`): none of those may skip a seq of its origin (a rebuilt
        // fold logs seqs the row already counts), and those before it must be in the row's
        // (checked below).
        self.version_index(conn, id, &row)?;
        if let Some(version) = &mut version {
            for u in updates.iter().filter(|u| u.idx > row.vv_upto) {
                let next = version.get(&u.origin) + 1;
                if u.seq > next {
                    let detail = format!(
                        "logged update {}:{} after the stored vector skips from {}:{}",
                        u.origin,
                        u.seq,
                        u.origin,
                        next - 1
                    );
                    self.found(Some(id), ProblemKind::VersionVector, detail);
                }
                log::version::fold_logged(version, u.origin.to_string(), u.seq);
            }
        }
        let mut tail: Vec<&[u8]> = Vec::new();
        let mut tail_ok = true;
        for u in &updates {
            if let Err(e) = validate_update(kind, &u.data) {
                let reason = match e {
                    Error::InvalidUpdate { reason, .. } => reason,
                    other => other.to_string(),
                };
                let detail = format!(
                    "logged update {}:{} does not decode as {kind}: {reason}",
                    u.origin, u.seq
                );
                self.found(Some(id), ProblemKind::Update, detail);
                tail_ok &= u.idx <= row.upto;
            } else if u.idx > row.upto {
                tail.push(&u.data);
            }
            if let Some(version) = &version {
                if !version.contains(&u.origin, u.seq) {
                    let detail = format!(
                        "does not cover logged update {}:{} (it covers {} of that origin)",
                        u.origin,
                        u.seq,
                        version.get(&u.origin)
                    );
                    self.found(Some(id), ProblemKind::VersionVector, detail);
                }
            }
        }
        if let (Some(mut crdt), true) = (crdt, tail_ok) {
            // A document nested past what a read shows whole is still a sound document.
            let applied = crdt.apply_updates(&tail).and_then(|()| match crdt.get("") {
                Err(Error::TooDeep { .. }) => Ok(()),
                read => read.map(|_| ()),
            });
            if let Err(e) = applied {
                let detail = format!("the logged updates do not apply to the snapshot: {e}");
                self.found(Some(id), ProblemKind::Update, detail);
            }
        }
        self.outbox(conn, id)
    }

    /// The log index the row's version vector is stored as of: at least the checkpoint's
    /// (the rows a load counts start there), and no later than any index given (or the
    /// next commits would not count).
    fn version_index(&mut self, conn: &Connection, id: &str, row: &DocRow) -> Result<()> {
        let last: Option<i64> = self.attempt(
            Some(id),
            ProblemKind::VersionVector,
            conn.query_row(
                &format!("SELECT {}", log::version::LAST_INDEX_EVER),
                [],
                |r| r.get(0),
            )
            .map_err(Error::from),
        )?;
        if row.vv_upto < row.upto {
            let detail = format!(
                "stored as of log index {}, before its checkpoint's {}",
                row.vv_upto, row.upto
            );
            self.found(Some(id), ProblemKind::VersionVector, detail);
        }
        if let Some(last) = last.filter(|last| row.vv_upto > *last) {
            let detail = format!(
                "stored as of log index {}, past the last one given ({last}): later updates \
                 would not count",
                row.vv_upto
            );
            self.found(Some(id), ProblemKind::VersionVector, detail);
        }
        Ok(())
    }

    /// Outbox entries of `id` without a stored update.
    fn outbox(&mut self, conn: &Connection, id: &str) -> Result<()> {
        let dangling = self.attempt(Some(id), ProblemKind::Outbox, dangling_outbox(conn, id))?;
        for (origin, seq) in dangling.unwrap_or_default() {
            let detail = format!("entry {origin}:{seq} has no stored update");
            self.found(Some(id), ProblemKind::Outbox, detail);
        }
        Ok(())
    }

    /// Outbox entries of documents the store does not have.
    fn orphan_outbox(&mut self, conn: &Connection) -> Result<()> {
        let orphans = self.attempt(None, ProblemKind::Outbox, orphan_outbox(conn))?;
        for (doc, n) in orphans.unwrap_or_default() {
            let detail = format!("{n} entries for a document the store does not have");
            self.found(Some(&doc), ProblemKind::Outbox, detail);
        }
        Ok(())
    }
}

fn integrity_lines(conn: &Connection, lines: &mut Vec<String>) -> Result<()> {
    let mut stmt = conn.prepare("PRAGMA integrity_check")?;
    for line in stmt.query_map([], |r| r.get(0))? {
        lines.push(line?);
    }
    Ok(())
}

fn doc_ids(conn: &Connection) -> Result<Vec<String>> {
    let mut stmt = conn.prepare("SELECT id FROM docs ORDER BY id")?;
    let ids = stmt.query_map([], |r| r.get(0))?;
    Ok(ids.collect::<std::result::Result<_, _>>()?)
}

struct DocRow {
    kind: String,
    vv: Vec<u8>,
    snapshot: Option<Vec<u8>>,
    /// The root types recorded with the checkpoint (not text: no record, as loading reads it).
    roots: Option<String>,
    upto: i64,
    /// The log index the row's version vector holds the document as of.
    vv_upto: i64,
}

fn doc_row(conn: &Connection, id: &str) -> Result<DocRow> {
    conn.query_row(
        &format!(
            "SELECT kind, vv, {CHECKPOINT_OF_ROW}, snapshot_upto, vv_upto,
                    (SELECT roots FROM checkpoints WHERE doc_id = docs.id)
             FROM docs WHERE id = ?1"
        ),
        [id],
        |r| {
            Ok(DocRow {
                kind: r.get(0)?,
                vv: r.get(1)?,
                snapshot: r.get(2)?,
                upto: r.get(3)?,
                vv_upto: r.get(4)?,
                roots: match r.get_ref(5)? {
                    ValueRef::Text(text) => std::str::from_utf8(text).ok().map(str::to_string),
                    _ => None,
                },
            })
        },
    )
    .optional()?
    .ok_or_else(|| Error::Corrupt(format!("document {id:?} is listed but its row is missing")))
}

struct Logged {
    idx: i64,
    origin: Origin,
    seq: u64,
    data: Vec<u8>,
}

/// Every update logged for `id` (the tail after the checkpoint and the older ones kept for
/// the outbox), in log order.
fn logged(conn: &Connection, id: &str) -> Result<Vec<Logged>> {
    let mut stmt =
        conn.prepare("SELECT idx, origin, seq, data FROM updates WHERE doc_id = ?1 ORDER BY idx")?;
    let rows = stmt.query_map([id], |r| {
        Ok(Logged {
            idx: r.get(0)?,
            origin: Origin::from(r.get::<_, String>(1)?),
            seq: r.get::<_, i64>(2)? as u64,
            data: r.get(3)?,
        })
    })?;
    Ok(rows.collect::<std::result::Result<_, _>>()?)
}

fn dangling_outbox(conn: &Connection, id: &str) -> Result<Vec<(String, i64)>> {
    let mut stmt = conn.prepare(
        "SELECT o.origin, o.seq FROM outbox o WHERE o.doc_id = ?1 AND NOT EXISTS
           (SELECT 1 FROM updates u WHERE u.doc_id = o.doc_id AND u.origin = o.origin AND u.seq = o.seq)
         ORDER BY o.origin, o.seq",
    )?;
    let rows = stmt.query_map(params![id], |r| Ok((r.get(0)?, r.get(1)?)))?;
    Ok(rows.collect::<std::result::Result<_, _>>()?)
}

fn orphan_outbox(conn: &Connection) -> Result<Vec<(String, i64)>> {
    let mut stmt = conn.prepare(
        "SELECT doc_id, COUNT(*) FROM outbox WHERE doc_id NOT IN (SELECT id FROM docs)
         GROUP BY doc_id ORDER BY doc_id",
    )?;
    let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
    Ok(rows.collect::<std::result::Result<_, _>>()?)
}

fn unsynced(conn: &Connection) -> Result<Vec<(String, usize)>> {
    let mut stmt =
        // Rows of the outbox, and the local commits folded into the checkpoint.
        conn.prepare(
            "SELECT doc_id, SUM(n) FROM (
                SELECT doc_id, COUNT(*) AS n FROM outbox GROUP BY doc_id
                UNION ALL SELECT doc_id, commits FROM outbox_fold)
             GROUP BY doc_id ORDER BY doc_id",
        )?;
    let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get::<_, i64>(1)? as usize)))?;
    Ok(rows.collect::<std::result::Result<_, _>>()?)
}

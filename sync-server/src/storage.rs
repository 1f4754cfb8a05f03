//! The relay's durable storage: documents and their update logs in SQLite.
//!
//! Writes come in as ordered batches of [`LogEntry`] applied in one SQLite transaction
//! ([`Storage::apply_batch`]); a replicated log can feed the same entries. Reads answer
//! "what does a client at this version vector lack" ([`Storage::catchup`]): the individual
//! updates, or the latest snapshot plus the updates after it when the client lacks much.
//! Snapshots are taken when a document's tail grows past `snapshot_every`.

use std::collections::HashMap;
use std::path::Path;

use concord_core::protocol::Snapshot;
use concord_core::sync::CatchupData;
use concord_core::{CrdtDoc, DocKind, Origin, UpdateRecord, VersionVector};
use rusqlite::{params, Connection, OptionalExtension};
use thiserror::Error;

#[derive(Debug, Error)]
pub enum StorageError {
    #[error("sqlite: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("corrupt stored data: {0}")]
    Corrupt(String),
    #[error("document error: {0}")]
    Doc(#[from] concord_core::Error),
}

pub type Result<T> = std::result::Result<T, StorageError>;

/// One entry of the ordered write log.
#[derive(Debug, Clone, PartialEq)]
pub enum LogEntry {
    CreateDoc {
        doc_id: String,
        kind: DocKind,
    },
    Append {
        doc_id: String,
        update: UpdateRecord,
    },
}

/// What the relay keeps in memory about each document.
#[derive(Debug, Clone)]
pub struct DocHead {
    pub kind: DocKind,
    pub version: VersionVector,
    tail: u64,
}

/// A client lacking more than this many updates that a snapshot covers gets the snapshot.
const SNAPSHOT_CATCHUP_THRESHOLD: u64 = 64;

/// How many documents are kept loaded in memory (for checking updates and snapshots).
const MAX_LOADED_DOCS: usize = 256;

pub struct Storage {
    conn: Connection,
    heads: HashMap<String, DocHead>,
    snapshot_every: u64,
    /// Documents in memory, always equal to what is committed (plus, inside `append`,
    /// the updates being checked for the batch about to commit).
    loaded: HashMap<String, CrdtDoc>,
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS docs (
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
CREATE INDEX IF NOT EXISTS updates_by_doc ON updates (doc_id, idx);
PRAGMA user_version = 1;
";

fn encode_vv(vv: &VersionVector) -> Vec<u8> {
    postcard::to_allocvec(vv).expect("version vectors encode")
}

fn decode_vv(bytes: &[u8]) -> Result<VersionVector> {
    postcard::from_bytes(bytes).map_err(|e| StorageError::Corrupt(format!("version vector: {e}")))
}

impl Storage {
    /// Opens (or creates) the database file `path`.
    pub fn open(path: &Path, snapshot_every: u64) -> Result<Storage> {
        let conn = Connection::open(path)?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.execute_batch(SCHEMA)?;
        let mut heads = HashMap::new();
        {
            let mut stmt = conn.prepare("SELECT id, kind, vv, tail FROM docs")?;
            let mut rows = stmt.query([])?;
            while let Some(row) = rows.next()? {
                let id: String = row.get(0)?;
                let kind: String = row.get(1)?;
                let vv: Vec<u8> = row.get(2)?;
                let tail: i64 = row.get(3)?;
                heads.insert(
                    id,
                    DocHead {
                        kind: kind.parse()?,
                        version: decode_vv(&vv)?,
                        tail: tail as u64,
                    },
                );
            }
        }
        Ok(Storage {
            conn,
            heads,
            snapshot_every,
            loaded: HashMap::new(),
        })
    }

    pub fn head(&self, doc_id: &str) -> Option<&DocHead> {
        self.heads.get(doc_id)
    }

    pub fn doc_count(&self) -> usize {
        self.heads.len()
    }

    /// The stored bytes of one update, if held.
    pub fn stored_update(
        &self,
        doc_id: &str,
        origin: &Origin,
        seq: u64,
    ) -> Result<Option<Vec<u8>>> {
        Ok(self
            .conn
            .query_row(
                "SELECT data FROM updates WHERE doc_id = ?1 AND origin = ?2 AND seq = ?3",
                params![doc_id, origin.as_str(), seq as i64],
                |r| r.get(0),
            )
            .optional()?)
    }

    /// Applies `update` to the in-memory document, proving it integrates (an update can
    /// decode and still be unusable, e.g. name a parent of the wrong type). On failure the
    /// in-memory copy, which may hold part of it, is dropped and reloaded on next use.
    pub fn integrate(&mut self, doc_id: &str, update: &UpdateRecord) -> Result<()> {
        let doc = self.loaded_doc(doc_id)?;
        if let Err(e) = doc.integrate(&update.data) {
            self.loaded.remove(doc_id);
            return Err(e.into());
        }
        Ok(())
    }

    /// Forgets the in-memory copy of a document (after a refused batch).
    pub fn unload(&mut self, doc_id: &str) {
        self.loaded.remove(doc_id);
    }

    fn loaded_doc(&mut self, doc_id: &str) -> Result<&mut CrdtDoc> {
        if !self.loaded.contains_key(doc_id) {
            let kind = self
                .heads
                .get(doc_id)
                .ok_or_else(|| StorageError::Corrupt(format!("unknown doc {doc_id}")))?
                .kind;
            if self.loaded.len() >= MAX_LOADED_DOCS {
                if let Some(victim) = self.loaded.keys().next().cloned() {
                    self.loaded.remove(&victim);
                }
            }
            let doc = rebuild(&self.conn, doc_id, kind)?.0;
            self.loaded.insert(doc_id.to_string(), doc);
        }
        Ok(self.loaded.get_mut(doc_id).expect("inserted above"))
    }

    /// Applies an ordered batch in one durable transaction. Entries must already be
    /// validated (contiguous sequence numbers, decodable updates).
    pub fn apply_batch(&mut self, entries: &[LogEntry]) -> Result<()> {
        let result = self.write_batch(entries);
        if result.is_err() {
            // Nothing was committed: in-memory copies may be ahead of the file.
            for entry in entries {
                if let LogEntry::Append { doc_id, .. } = entry {
                    self.loaded.remove(doc_id);
                }
            }
        }
        result
    }

    fn write_batch(&mut self, entries: &[LogEntry]) -> Result<()> {
        let mut heads = self.heads.clone();
        let tx = self.conn.transaction()?;
        let mut touched: Vec<String> = Vec::new();
        for entry in entries {
            match entry {
                LogEntry::CreateDoc { doc_id, kind } => {
                    if heads.contains_key(doc_id) {
                        continue;
                    }
                    tx.execute(
                        "INSERT INTO docs (id, kind, vv) VALUES (?1, ?2, ?3)",
                        params![doc_id, kind.as_str(), encode_vv(&VersionVector::new())],
                    )?;
                    heads.insert(
                        doc_id.clone(),
                        DocHead {
                            kind: *kind,
                            version: VersionVector::new(),
                            tail: 0,
                        },
                    );
                }
                LogEntry::Append { doc_id, update } => {
                    let head = heads.get_mut(doc_id).ok_or_else(|| {
                        StorageError::Corrupt(format!("append to unknown doc {doc_id}"))
                    })?;
                    if head.version.contains(&update.origin, update.seq) {
                        continue;
                    }
                    if !head.version.advance(&update.origin, update.seq) {
                        return Err(StorageError::Corrupt(format!(
                            "batch has a gap at {}:{}",
                            update.origin, update.seq
                        )));
                    }
                    tx.execute(
                        "INSERT INTO updates (doc_id, origin, seq, data) VALUES (?1, ?2, ?3, ?4)",
                        params![
                            doc_id,
                            update.origin.as_str(),
                            update.seq as i64,
                            update.data
                        ],
                    )?;
                    head.tail += 1;
                    if let Some(doc) = self.loaded.get_mut(doc_id) {
                        // Already applied by `integrate` on the append path: a no-op then.
                        if doc.apply_update(&update.data).is_err() {
                            self.loaded.remove(doc_id);
                        }
                    }
                    if !touched.contains(doc_id) {
                        touched.push(doc_id.clone());
                    }
                }
            }
        }
        for doc_id in &touched {
            let head = heads.get_mut(doc_id).expect("touched docs exist");
            if head.tail >= self.snapshot_every {
                snapshot(&tx, doc_id, head, self.loaded.get_mut(doc_id))?;
            } else {
                tx.execute(
                    "UPDATE docs SET vv = ?1, tail = ?2 WHERE id = ?3",
                    params![encode_vv(&head.version), head.tail as i64, doc_id],
                )?;
            }
        }
        tx.commit()?;
        self.heads = heads;
        Ok(())
    }

    /// What a client at `client` lacks of `doc_id` (which must exist).
    pub fn catchup(&self, doc_id: &str, client: &VersionVector) -> Result<CatchupData> {
        let head = self
            .heads
            .get(doc_id)
            .ok_or_else(|| StorageError::Corrupt(format!("catch-up of unknown doc {doc_id}")))?;
        let mut data = CatchupData {
            kind: head.kind,
            server_version: head.version.clone(),
            snapshot: None,
            updates: Vec::new(),
        };
        if head.version.missing_from(client).is_empty() {
            return Ok(data);
        }
        let (snapshot, snapshot_vv, upto): (Option<Vec<u8>>, Option<Vec<u8>>, i64) =
            self.conn.query_row(
                "SELECT snapshot, snapshot_vv, snapshot_upto FROM docs WHERE id = ?1",
                [doc_id],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )?;
        let mut skip_upto = 0;
        let mut covered = VersionVector::new();
        if let (Some(snapshot), Some(snapshot_vv)) = (snapshot, snapshot_vv) {
            let snapshot_vv = decode_vv(&snapshot_vv)?;
            let lacking: u64 = snapshot_vv
                .missing_from(client)
                .iter()
                .map(|m| m.to - m.from + 1)
                .sum();
            if lacking > SNAPSHOT_CATCHUP_THRESHOLD || (client.is_empty() && lacking > 0) {
                skip_upto = upto;
                covered = snapshot_vv.clone();
                data.snapshot = Some(Snapshot {
                    data: snapshot,
                    covers: snapshot_vv,
                });
            }
        }
        let have = client.merged(&covered);
        let mut stmt = self.conn.prepare(
            "SELECT origin, seq, data FROM updates WHERE doc_id = ?1 AND idx > ?2 ORDER BY idx",
        )?;
        let rows = stmt.query_map(params![doc_id, skip_upto], |r| {
            Ok(UpdateRecord {
                origin: Origin::from(r.get::<_, String>(0)?),
                seq: r.get::<_, i64>(1)? as u64,
                data: r.get(2)?,
            })
        })?;
        for row in rows {
            let update = row?;
            if !have.contains(&update.origin, update.seq) {
                data.updates.push(update);
            }
        }
        Ok(data)
    }

    /// Documents whose id starts with `prefix`, sorted.
    pub fn list(&self, prefix: &str) -> Vec<(String, DocKind)> {
        let mut docs: Vec<_> = self
            .heads
            .iter()
            .filter(|(id, _)| id.starts_with(prefix))
            .map(|(id, h)| (id.clone(), h.kind))
            .collect();
        docs.sort();
        docs
    }
}

/// The document as committed: its last snapshot plus the updates after it; also returns
/// the log index of the last update included.
fn rebuild(conn: &Connection, doc_id: &str, kind: DocKind) -> Result<(CrdtDoc, i64)> {
    let (snapshot, upto): (Option<Vec<u8>>, i64) = conn.query_row(
        "SELECT snapshot, snapshot_upto FROM docs WHERE id = ?1",
        [doc_id],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )?;
    let mut doc = match snapshot {
        Some(bytes) => CrdtDoc::load(kind, &bytes)?,
        None => CrdtDoc::new(kind),
    };
    let mut stmt =
        conn.prepare("SELECT idx, data FROM updates WHERE doc_id = ?1 AND idx > ?2 ORDER BY idx")?;
    let tail: Vec<(i64, Vec<u8>)> = stmt
        .query_map(params![doc_id, upto], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<std::result::Result<_, _>>()?;
    doc.apply_updates(&tail.iter().map(|(_, d)| d.as_slice()).collect::<Vec<_>>())?;
    let last = tail.last().map(|(idx, _)| *idx).unwrap_or(upto);
    Ok((doc, last))
}

/// Stores a new snapshot of the document (from its in-memory copy when there is one).
/// The individual updates are kept so clients that lack a few still get exactly those.
fn snapshot(
    tx: &rusqlite::Transaction<'_>,
    doc_id: &str,
    head: &mut DocHead,
    loaded: Option<&mut CrdtDoc>,
) -> Result<()> {
    let mut rebuilt;
    let doc = match loaded {
        Some(doc) => doc,
        None => {
            rebuilt = rebuild(tx, doc_id, head.kind)?.0;
            &mut rebuilt
        }
    };
    let upto: i64 = tx.query_row(
        "SELECT COALESCE(MAX(idx), 0) FROM updates WHERE doc_id = ?1",
        [doc_id],
        |r| r.get(0),
    )?;
    if doc.has_pending() {
        // Causal gaps across origins: keep the tail until they fill.
        tx.execute(
            "UPDATE docs SET vv = ?1, tail = ?2 WHERE id = ?3",
            params![encode_vv(&head.version), head.tail as i64, doc_id],
        )?;
        return Ok(());
    }
    tx.execute(
        "UPDATE docs SET vv = ?1, snapshot = ?2, snapshot_vv = ?1, snapshot_upto = ?3, tail = 0 WHERE id = ?4",
        params![encode_vv(&head.version), doc.save(), upto, doc_id],
    )?;
    head.tail = 0;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use concord_core::Store;

    /// `n` updates of one document made by a real device store.
    fn device_updates(kind: DocKind, n: usize) -> (Store, Vec<UpdateRecord>) {
        let store = Store::open_in_memory().unwrap();
        store.create_doc("d", kind).unwrap();
        for i in 0..n {
            store
                .transact("d", |tx| tx.insert_text("text", 0, &format!("{}", i % 10)))
                .unwrap();
        }
        let updates = store.outbox("d").unwrap();
        (store, updates)
    }

    fn append_all(storage: &mut Storage, kind: DocKind, updates: &[UpdateRecord]) {
        let mut entries = vec![LogEntry::CreateDoc {
            doc_id: "d".into(),
            kind,
        }];
        entries.extend(updates.iter().map(|u| LogEntry::Append {
            doc_id: "d".into(),
            update: u.clone(),
        }));
        // One entry per batch (snapshots are considered after each batch), then the second
        // half again in one batch: re-applying held updates is a no-op.
        for entry in &entries {
            storage.apply_batch(std::slice::from_ref(entry)).unwrap();
        }
        storage.apply_batch(&entries[entries.len() / 2..]).unwrap();
    }

    #[test]
    fn new_clients_get_a_snapshot_plus_tail_that_rebuilds_the_document() {
        for kind in [DocKind::Automerge, DocKind::Yrs] {
            let dir = tempfile::tempdir().unwrap();
            let (device, updates) = device_updates(kind, 100);
            let mut storage = Storage::open(&dir.path().join("s.db"), 30).unwrap();
            append_all(&mut storage, kind, &updates);
            let head = storage.head("d").unwrap().clone();
            assert_eq!(head.version.get(&device.device_id()), 100);

            let fresh = storage.catchup("d", &VersionVector::new()).unwrap();
            let snapshot = fresh.snapshot.expect("a new client gets the snapshot");
            assert_eq!(
                snapshot.covers.get(&device.device_id()),
                90,
                "snapshots every 30"
            );
            assert_eq!(
                fresh.updates.iter().map(|u| u.seq).collect::<Vec<_>>(),
                (91..=100).collect::<Vec<_>>()
            );
            let mut rebuilt = CrdtDoc::load(kind, &snapshot.data).unwrap();
            for u in &fresh.updates {
                rebuilt.apply_update(&u.data).unwrap();
            }
            assert_eq!(rebuilt.to_json(), device.to_json("d").unwrap(), "{kind}");

            // A client that lacks only a few gets exactly those, no snapshot.
            let mut almost: VersionVector = VersionVector::new();
            almost.set(device.device_id(), 97);
            let few = storage.catchup("d", &almost).unwrap();
            assert!(few.snapshot.is_none());
            assert_eq!(
                few.updates.iter().map(|u| u.seq).collect::<Vec<_>>(),
                vec![98, 99, 100]
            );

            // Reopening reads the same heads back.
            drop(storage);
            let reopened = Storage::open(&dir.path().join("s.db"), 30).unwrap();
            assert_eq!(reopened.head("d").unwrap().version, head.version);
        }
    }

    #[test]
    fn a_batch_with_a_gap_is_rejected_whole() {
        let dir = tempfile::tempdir().unwrap();
        let (_device, updates) = device_updates(DocKind::Yrs, 3);
        let mut storage = Storage::open(&dir.path().join("s.db"), 30).unwrap();
        storage
            .apply_batch(&[LogEntry::CreateDoc {
                doc_id: "d".into(),
                kind: DocKind::Yrs,
            }])
            .unwrap();
        let batch: Vec<_> = [&updates[0], &updates[2]]
            .iter()
            .map(|u| LogEntry::Append {
                doc_id: "d".into(),
                update: (*u).clone(),
            })
            .collect();
        assert!(storage.apply_batch(&batch).is_err());
        assert!(storage.head("d").unwrap().version.is_empty());
        assert!(storage
            .stored_update("d", &updates[0].origin, 1)
            .unwrap()
            .is_none());
    }
}

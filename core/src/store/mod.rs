//! The device store: many documents in one SQLite file.
//!
//! Each document has a row in `docs` (kind, version vector, latest snapshot) and a log of
//! updates in `updates`; the updates this device authored and the relay has not yet
//! acknowledged are also listed in `outbox`. A commit writes the update, the outbox entry
//! and the new version vector in one SQLite transaction (WAL, `synchronous=FULL`), so once
//! [`Store::transact`] returns the edit survives a crash. Loading a document is its latest
//! snapshot plus the updates logged after it; a snapshot is taken when that tail grows past
//! [`StoreOptions::snapshot_every`].

mod check;
mod schema;

use std::collections::HashMap;
use std::path::Path as FsPath;
use std::sync::{Arc, Mutex, MutexGuard};

use rusqlite::{params, Connection, OptionalExtension, Transaction};
use serde_json::Value;

use crate::doc::{CrdtDoc, DocTxn};
use crate::error::{Error, Result};
use crate::ids::{validate_doc_id, DocKind, Origin};
use crate::notify::{ChangeEvent, ChangeSource, Listeners, Subscription};
use crate::update::UpdateRecord;
use crate::vv::VersionVector;

pub use check::{is_corruption, CheckReport, Problem, ProblemKind};
pub use schema::SCHEMA_VERSION;

/// Tuning for a store.
#[derive(Debug, Clone)]
pub struct StoreOptions {
    /// Take a snapshot once this many updates have been logged since the last one.
    pub snapshot_every: u64,
}

impl Default for StoreOptions {
    fn default() -> Self {
        StoreOptions {
            snapshot_every: 256,
        }
    }
}

/// A document's id and kind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DocInfo {
    pub id: String,
    pub kind: DocKind,
}

/// What a device knows about one document's sync state.
#[derive(Debug, Clone, PartialEq)]
pub struct DocStatus {
    pub id: String,
    pub kind: DocKind,
    pub version: VersionVector,
    /// Local updates not yet acknowledged by the relay.
    pub pending: usize,
}

/// The outcome of applying a batch of remote updates.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RemoteApplied {
    /// Updates that were new and are now stored.
    pub applied: usize,
    /// Updates already held (ignored).
    pub duplicates: usize,
    /// An update skipped because an earlier one from its origin is missing.
    pub gap: Option<(Origin, u64)>,
}

/// A handle to an open store. Cheap to clone; safe to share between threads.
#[derive(Clone)]
pub struct Store {
    inner: Arc<Mutex<Inner>>,
    listeners: Listeners,
}

struct Inner {
    conn: Connection,
    device: Origin,
    docs: HashMap<String, Loaded>,
    options: StoreOptions,
    /// What this connection last saw of other connections' commits.
    data_version: DiskVersion,
}

/// `PRAGMA data_version` when the cache was last known to match the file, and how many
/// times another connection (another process) was seen to have committed since opening.
#[derive(Debug, Clone, Copy)]
struct DiskVersion {
    seen: i64,
    external_changes: u64,
}

/// Drops cached documents (and re-reads the device id) when another connection — another
/// process sharing the file — has committed since we last looked.
fn refresh_from_disk(
    conn: &Connection,
    device: &mut Origin,
    docs: &mut HashMap<String, Loaded>,
    data_version: &mut DiskVersion,
) -> Result<()> {
    let now: i64 = conn.query_row("PRAGMA data_version", [], |r| r.get(0))?;
    if now != data_version.seen {
        docs.clear();
        *device = read_device(conn)?;
        data_version.seen = now;
        data_version.external_changes += 1;
    }
    Ok(())
}

fn read_device(conn: &Connection) -> Result<Origin> {
    schema::device_id(conn)?.ok_or_else(|| Error::Corrupt("the store has no device id".into()))
}

/// Starts a write transaction that holds SQLite's write lock from the start, after which
/// the cache is brought up to date with the file.
fn begin_write<'c>(
    conn: &'c mut Connection,
    device: &mut Origin,
    docs: &mut HashMap<String, Loaded>,
    data_version: &mut DiskVersion,
) -> Result<Transaction<'c>> {
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    refresh_from_disk(&tx, device, docs, data_version)?;
    Ok(tx)
}

/// A document held in memory, with the bookkeeping needed to extend its log.
struct Loaded {
    crdt: CrdtDoc,
    version: VersionVector,
    tail: u64,
}

impl Store {
    /// Opens (or creates) the store in the SQLite file at `path`.
    pub fn open(path: impl AsRef<FsPath>) -> Result<Store> {
        Store::open_with(path, StoreOptions::default())
    }

    pub fn open_with(path: impl AsRef<FsPath>, options: StoreOptions) -> Result<Store> {
        Store::from_connection(Connection::open(path)?, options)
    }

    /// A store that lives only in memory (tests, scratch work).
    pub fn open_in_memory() -> Result<Store> {
        Store::from_connection(Connection::open_in_memory()?, StoreOptions::default())
    }

    fn from_connection(mut conn: Connection, options: StoreOptions) -> Result<Store> {
        schema::prepare(&mut conn)?;
        let device = read_device(&conn)?;
        let data_version = conn.query_row("PRAGMA data_version", [], |r| r.get(0))?;
        Ok(Store {
            inner: Arc::new(Mutex::new(Inner {
                conn,
                device,
                docs: HashMap::new(),
                options,
                data_version: DiskVersion {
                    seen: data_version,
                    external_changes: 0,
                },
            })),
            listeners: Listeners::default(),
        })
    }

    /// Locks the store, first dropping cached state another process made stale.
    fn lock(&self) -> MutexGuard<'_, Inner> {
        let mut guard = self
            .inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let Inner {
            conn,
            device,
            docs,
            data_version,
            ..
        } = &mut *guard;
        if refresh_from_disk(conn, device, docs, data_version).is_err() {
            docs.clear();
        }
        guard
    }

    /// How many times another process was seen to have committed to this store's file.
    /// When it changes, that process may have added local updates to send (the native
    /// client polls this).
    pub fn external_changes(&self) -> u64 {
        self.lock().data_version.external_changes
    }

    /// This device's id: the origin of the updates it authors.
    pub fn device_id(&self) -> Origin {
        self.lock().device.clone()
    }

    /// Creates an empty document; fails if the id is taken.
    pub fn create_doc(&self, id: &str, kind: DocKind) -> Result<()> {
        validate_doc_id(id)?;
        self.write(|tx| {
            if kind_of(tx, id)?.is_some() {
                return Err(Error::DocExists(id.to_string()));
            }
            insert_doc(tx, id, kind)
        })
    }

    /// Creates the document unless it exists; fails if it exists with another kind.
    pub fn ensure_doc(&self, id: &str, kind: DocKind) -> Result<()> {
        validate_doc_id(id)?;
        let check = |actual: DocKind| {
            if actual == kind {
                Ok(())
            } else {
                Err(Error::KindMismatch {
                    id: id.to_string(),
                    expected: kind,
                    actual,
                })
            }
        };
        // Most calls find the document: no write lock for them.
        if let Some(actual) = self.doc_kind(id)? {
            return check(actual);
        }
        self.write(|tx| match kind_of(tx, id)? {
            Some(actual) => check(actual),
            None => insert_doc(tx, id, kind),
        })
    }

    /// Runs `f` in a transaction that holds SQLite's write lock from the start (so a check
    /// and the write that depends on it see the same file, and the lock is waited for
    /// rather than failing), and commits if it succeeds.
    fn write<R>(&self, f: impl FnOnce(&Transaction<'_>) -> Result<R>) -> Result<R> {
        let mut guard = self.lock();
        let Inner {
            conn,
            device,
            docs,
            data_version,
            ..
        } = &mut *guard;
        let tx = begin_write(conn, device, docs, data_version)?;
        let result = f(&tx)?;
        tx.commit()?;
        Ok(result)
    }

    /// The kind of a document, or `None` if the store does not have it.
    pub fn doc_kind(&self, id: &str) -> Result<Option<DocKind>> {
        kind_of(&self.lock().conn, id)
    }

    pub fn list_docs(&self) -> Result<Vec<DocInfo>> {
        let inner = self.lock();
        let mut stmt = inner
            .conn
            .prepare("SELECT id, kind FROM docs ORDER BY id")?;
        let rows = stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))?;
        rows.map(|row| {
            let (id, kind) = row?;
            Ok(DocInfo {
                id,
                kind: kind.parse()?,
            })
        })
        .collect()
    }

    /// Runs a local edit and commits it durably. If `f` fails, nothing is stored.
    ///
    /// ```
    /// # use concord_core::{Store, DocKind};
    /// let store = Store::open_in_memory()?;
    /// store.create_doc("notes", DocKind::Automerge)?;
    /// store.transact("notes", |tx| {
    ///     tx.put("title", "Groceries")?;
    ///     tx.insert_text("body", 0, "milk")
    /// })?;
    /// assert_eq!(store.get("notes", "title")?, Some("Groceries".into()));
    /// # Ok::<(), concord_core::Error>(())
    /// ```
    pub fn transact<R>(&self, id: &str, f: impl FnOnce(&mut DocTxn<'_>) -> Result<R>) -> Result<R> {
        let (result, event) = self.write_doc(id, |tx, doc, device, options| {
            let (result, update) = doc.crdt.edit(f)?;
            let Some(data) = update else {
                return Ok((result, None));
            };
            let record = UpdateRecord {
                origin: device.clone(),
                seq: doc.version.get(device) + 1,
                data,
            };
            insert_update(tx, id, &record, true)?;
            doc.version.advance(&record.origin, record.seq);
            doc.tail += 1;
            write_doc_state(tx, id, doc, options)?;
            Ok((result, Some(change_event(id, ChangeSource::Local, doc))))
        })?;
        self.listeners.emit(event.as_slice());
        Ok(result)
    }

    /// Runs `f` on the document inside a transaction that holds SQLite's write lock from
    /// the start, and commits if it succeeds. If anything fails, nothing is stored and the
    /// in-memory copy (which may already hold part of the change) is dropped, to be
    /// reloaded from the file on next use.
    fn write_doc<R>(
        &self,
        id: &str,
        f: impl FnOnce(&Transaction<'_>, &mut Loaded, &Origin, &StoreOptions) -> Result<R>,
    ) -> Result<R> {
        let mut guard = self.lock();
        let Inner {
            conn,
            device,
            docs,
            options,
            data_version,
        } = &mut *guard;
        let tx = begin_write(conn, device, docs, data_version)?;
        let result = loaded(&tx, docs, id)
            .and_then(|doc| f(&tx, doc, device, options))
            .and_then(|r| Ok(tx.commit().map(|_| r)?));
        if result.is_err() {
            docs.remove(id);
        }
        result
    }

    /// The value at `path` (`""` for the whole document) as JSON.
    pub fn get(&self, id: &str, path: &str) -> Result<Option<Value>> {
        let mut guard = self.lock();
        let Inner { conn, docs, .. } = &mut *guard;
        loaded(conn, docs, id)?.crdt.get(path)
    }

    /// The whole document as JSON.
    pub fn to_json(&self, id: &str) -> Result<Value> {
        Ok(self.get(id, "")?.unwrap_or(Value::Null))
    }

    /// The document's full state, as a CRDT snapshot (Automerge save / Yrs v1 state update).
    pub fn export_snapshot(&self, id: &str) -> Result<Vec<u8>> {
        let mut guard = self.lock();
        let Inner { conn, docs, .. } = &mut *guard;
        Ok(loaded(conn, docs, id)?.crdt.save())
    }

    /// Which updates of the document this device holds.
    pub fn version_vector(&self, id: &str) -> Result<VersionVector> {
        let mut guard = self.lock();
        let Inner { conn, docs, .. } = &mut *guard;
        Ok(loaded(conn, docs, id)?.version.clone())
    }

    /// Number of local updates of `id` the relay has not acknowledged.
    pub fn pending(&self, id: &str) -> Result<usize> {
        let inner = self.lock();
        let n: i64 =
            inner
                .conn
                .query_row("SELECT COUNT(*) FROM outbox WHERE doc_id = ?1", [id], |r| {
                    r.get(0)
                })?;
        Ok(n as usize)
    }

    /// Sync state of every document.
    pub fn status(&self) -> Result<Vec<DocStatus>> {
        let docs = self.list_docs()?;
        docs.into_iter()
            .map(|d| {
                Ok(DocStatus {
                    version: self.version_vector(&d.id)?,
                    pending: self.pending(&d.id)?,
                    id: d.id,
                    kind: d.kind,
                })
            })
            .collect()
    }

    /// Calls `callback` after every change (local or remote) of document `doc_id`, or of
    /// every document when `None`. Keep the returned handle; dropping it unsubscribes.
    pub fn subscribe(
        &self,
        doc_id: Option<&str>,
        callback: impl Fn(&ChangeEvent) + Send + Sync + 'static,
    ) -> Subscription {
        self.listeners
            .add(doc_id.map(str::to_string), Arc::new(callback))
    }

    /// The unacknowledged local updates of `id`, oldest first.
    pub fn outbox(&self, id: &str) -> Result<Vec<UpdateRecord>> {
        let inner = self.lock();
        let mut stmt = inner.conn.prepare(
            "SELECT u.origin, u.seq, u.data FROM outbox o
             JOIN updates u ON u.doc_id = o.doc_id AND u.origin = o.origin AND u.seq = o.seq
             WHERE o.doc_id = ?1 ORDER BY u.idx",
        )?;
        let rows = stmt.query_map([id], row_to_record)?;
        Ok(rows.collect::<std::result::Result<_, _>>()?)
    }

    /// Updates in this device's log that a replica at `other` lacks, in log order.
    /// (Updates folded into a snapshot are no longer individually available, except those
    /// still in the outbox, which are never pruned.)
    pub fn updates_missing_from(
        &self,
        id: &str,
        other: &VersionVector,
    ) -> Result<Vec<UpdateRecord>> {
        let inner = self.lock();
        let mut stmt = inner
            .conn
            .prepare("SELECT origin, seq, data FROM updates WHERE doc_id = ?1 ORDER BY idx")?;
        let rows = stmt.query_map([id], row_to_record)?;
        let mut out = Vec::new();
        for row in rows {
            let record = row?;
            if !other.contains(&record.origin, record.seq) {
                out.push(record);
            }
        }
        Ok(out)
    }

    /// The relay holds every update of `origin` up to `upto`: drop them from the outbox.
    pub fn acknowledge(&self, id: &str, origin: &Origin, upto: u64) -> Result<usize> {
        let inner = self.lock();
        Ok(inner.conn.execute(
            "DELETE FROM outbox WHERE doc_id = ?1 AND origin = ?2 AND seq <= ?3",
            params![id, origin.as_str(), upto as i64],
        )?)
    }

    /// Applies updates received from the relay, in order, in one SQLite transaction.
    /// Updates already held are skipped; an update whose predecessor from the same origin
    /// is missing stops the batch (the caller should ask for a resync).
    pub fn apply_remote(&self, id: &str, updates: &[UpdateRecord]) -> Result<RemoteApplied> {
        let (outcome, event) = self.write_doc(id, |tx, doc, _, options| {
            let mut outcome = RemoteApplied::default();
            let mut version = doc.version.clone();
            let mut accepted: Vec<&UpdateRecord> = Vec::new();
            for record in updates {
                if version.contains(&record.origin, record.seq) {
                    outcome.duplicates += 1;
                    continue;
                }
                if !version.advance(&record.origin, record.seq) {
                    outcome.gap = Some((record.origin.clone(), record.seq));
                    break;
                }
                accepted.push(record);
            }
            if accepted.is_empty() {
                return Ok((outcome, None));
            }
            let data: Vec<&[u8]> = accepted.iter().map(|r| r.data.as_slice()).collect();
            doc.crdt.apply_updates(&data)?;
            for record in &accepted {
                insert_update(tx, id, record, false)?;
            }
            doc.version = version;
            doc.tail += accepted.len() as u64;
            write_doc_state(tx, id, doc, options)?;
            outcome.applied = accepted.len();
            Ok((outcome, Some(change_event(id, ChangeSource::Remote, doc))))
        })?;
        self.listeners.emit(event.as_slice());
        Ok(outcome)
    }

    /// Merges a full snapshot from the relay that covers `covers`; afterwards this device
    /// holds every update in `covers`. Stored at once as this device's own snapshot.
    pub fn apply_remote_snapshot(
        &self,
        id: &str,
        snapshot: &[u8],
        covers: &VersionVector,
    ) -> Result<()> {
        let event = self.write_doc(id, |tx, doc, _, _| {
            doc.crdt.apply_snapshot(snapshot)?;
            doc.version.merge(covers);
            take_snapshot(tx, id, doc)?;
            Ok(change_event(id, ChangeSource::Remote, doc))
        })?;
        self.listeners.emit(&[event]);
        Ok(())
    }

    /// Called when the relay holds updates under this device's origin that this device
    /// does not (it was restored from an old backup). Takes a new origin id and moves every
    /// unacknowledged local update to it, renumbered from 1, so no sequence number is ever
    /// used twice for different content. Returns the new origin.
    pub fn reoriginate(&self) -> Result<Origin> {
        let mut guard = self.lock();
        let Inner {
            conn,
            device,
            docs,
            data_version,
            ..
        } = &mut *guard;
        let tx = begin_write(conn, device, docs, data_version)?;
        let old = device.clone();
        let new = Origin::random();
        tx.execute(
            "UPDATE meta SET value = ?1 WHERE key = 'device_id'",
            [new.as_str()],
        )?;
        let doc_ids: Vec<String> = {
            let mut stmt = tx.prepare("SELECT id FROM docs")?;
            let ids = stmt.query_map([], |r| r.get(0))?;
            ids.collect::<std::result::Result<_, _>>()?
        };
        for id in &doc_ids {
            let pending: Vec<i64> = {
                let mut stmt = tx.prepare(
                    "SELECT seq FROM outbox WHERE doc_id = ?1 AND origin = ?2 ORDER BY seq",
                )?;
                let seqs = stmt.query_map(params![id, old.as_str()], |r| r.get(0))?;
                seqs.collect::<std::result::Result<_, _>>()?
            };
            let mut version = read_version(&tx, id)?;
            let acked = pending
                .first()
                .map(|s| *s as u64 - 1)
                .unwrap_or(version.get(&old));
            version.set(old.clone(), acked);
            for (i, seq) in pending.iter().enumerate() {
                let new_seq = i as i64 + 1;
                tx.execute(
                    "UPDATE updates SET origin = ?1, seq = ?2 WHERE doc_id = ?3 AND origin = ?4 AND seq = ?5",
                    params![new.as_str(), new_seq, id, old.as_str(), seq],
                )?;
                tx.execute(
                    "UPDATE outbox SET origin = ?1, seq = ?2 WHERE doc_id = ?3 AND origin = ?4 AND seq = ?5",
                    params![new.as_str(), new_seq, id, old.as_str(), seq],
                )?;
            }
            version.set(new.clone(), pending.len() as u64);
            tx.execute(
                "UPDATE docs SET vv = ?1 WHERE id = ?2",
                params![encode_version(&version), id],
            )?;
        }
        tx.commit()?;
        *device = new.clone();
        docs.clear();
        Ok(new)
    }
}

fn change_event(id: &str, source: ChangeSource, doc: &Loaded) -> ChangeEvent {
    ChangeEvent {
        doc_id: id.to_string(),
        source,
        version: doc.version.clone(),
    }
}

fn row_to_record(r: &rusqlite::Row<'_>) -> rusqlite::Result<UpdateRecord> {
    Ok(UpdateRecord {
        origin: Origin::from(r.get::<_, String>(0)?),
        seq: r.get::<_, i64>(1)? as u64,
        data: r.get(2)?,
    })
}

fn kind_of(conn: &Connection, id: &str) -> Result<Option<DocKind>> {
    let kind: Option<String> = conn
        .query_row("SELECT kind FROM docs WHERE id = ?1", [id], |r| r.get(0))
        .optional()?;
    kind.map(|k| k.parse()).transpose()
}

fn insert_doc(conn: &Connection, id: &str, kind: DocKind) -> Result<()> {
    conn.execute(
        "INSERT INTO docs (id, kind, vv) VALUES (?1, ?2, ?3)",
        params![id, kind.as_str(), encode_version(&VersionVector::new())],
    )?;
    Ok(())
}

pub(crate) fn encode_version(vv: &VersionVector) -> Vec<u8> {
    postcard::to_allocvec(vv).expect("a version vector always encodes")
}

pub(crate) fn decode_version(bytes: &[u8]) -> Result<VersionVector> {
    postcard::from_bytes(bytes).map_err(|e| Error::Corrupt(format!("version vector: {e}")))
}

fn read_version(conn: &Connection, id: &str) -> Result<VersionVector> {
    let bytes: Vec<u8> = conn.query_row("SELECT vv FROM docs WHERE id = ?1", [id], |r| r.get(0))?;
    decode_version(&bytes)
}

/// The in-memory copy of `id`, loaded from snapshot + tail on first use.
fn loaded<'a>(
    conn: &Connection,
    docs: &'a mut HashMap<String, Loaded>,
    id: &str,
) -> Result<&'a mut Loaded> {
    if !docs.contains_key(id) {
        // Snapshot row and tail are read in one transaction, so a concurrent snapshot by
        // another process cannot make updates fall between the two reads.
        let doc = if conn.is_autocommit() {
            let tx = conn.unchecked_transaction()?;
            let doc = load(&tx, id)?;
            tx.commit()?;
            doc
        } else {
            load(conn, id)?
        };
        docs.insert(id.to_string(), doc);
    }
    Ok(docs.get_mut(id).expect("inserted above"))
}

fn load(conn: &Connection, id: &str) -> Result<Loaded> {
    let row = conn
        .query_row(
            "SELECT kind, vv, snapshot, snapshot_upto, tail FROM docs WHERE id = ?1",
            [id],
            |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, Vec<u8>>(1)?,
                    r.get::<_, Option<Vec<u8>>>(2)?,
                    r.get::<_, i64>(3)?,
                    r.get::<_, i64>(4)?,
                ))
            },
        )
        .optional()?;
    let Some((kind, vv, snapshot, upto, tail)) = row else {
        return Err(Error::NoSuchDoc(id.to_string()));
    };
    let kind: DocKind = kind.parse()?;
    let mut crdt = match snapshot {
        Some(bytes) => CrdtDoc::load(kind, &bytes)?,
        None => CrdtDoc::new(kind),
    };
    let mut stmt =
        conn.prepare("SELECT data FROM updates WHERE doc_id = ?1 AND idx > ?2 ORDER BY idx")?;
    let logged: Vec<Vec<u8>> = stmt
        .query_map(params![id, upto], |r| r.get(0))?
        .collect::<std::result::Result<_, _>>()?;
    crdt.apply_updates(&logged.iter().map(Vec::as_slice).collect::<Vec<_>>())?;
    Ok(Loaded {
        crdt,
        version: decode_version(&vv)?,
        tail: tail as u64,
    })
}

fn insert_update(
    tx: &Transaction<'_>,
    id: &str,
    record: &UpdateRecord,
    outbox: bool,
) -> Result<()> {
    tx.execute(
        "INSERT INTO updates (doc_id, origin, seq, data) VALUES (?1, ?2, ?3, ?4)",
        params![id, record.origin.as_str(), record.seq as i64, record.data],
    )?;
    if outbox {
        tx.execute(
            "INSERT INTO outbox (doc_id, origin, seq) VALUES (?1, ?2, ?3)",
            params![id, record.origin.as_str(), record.seq as i64],
        )?;
    }
    Ok(())
}

/// Writes the document's version vector, and a snapshot when the tail is long enough.
fn write_doc_state(
    tx: &Transaction<'_>,
    id: &str,
    doc: &mut Loaded,
    options: &StoreOptions,
) -> Result<()> {
    if doc.tail >= options.snapshot_every && !doc.crdt.has_pending() {
        return take_snapshot(tx, id, doc);
    }
    tx.execute(
        "UPDATE docs SET vv = ?1, tail = ?2 WHERE id = ?3",
        params![encode_version(&doc.version), doc.tail as i64, id],
    )?;
    Ok(())
}

/// Stores the full state as the new snapshot and prunes the logged updates it covers
/// (keeping those still in the outbox, which must be sent).
fn take_snapshot(tx: &Transaction<'_>, id: &str, doc: &mut Loaded) -> Result<()> {
    let (previous, upto): (i64, i64) = tx.query_row(
        "SELECT snapshot_upto, (SELECT COALESCE(MAX(idx), 0) FROM updates WHERE doc_id = ?1)
         FROM docs WHERE id = ?1",
        [id],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )?;
    tx.execute(
        "UPDATE docs SET vv = ?1, snapshot = ?2, snapshot_upto = ?3, tail = 0 WHERE id = ?4",
        params![encode_version(&doc.version), doc.crdt.save(), upto, id],
    )?;
    // Only the rows since the previous snapshot: older survivors are all outbox entries,
    // and re-checking them every time made long unsynced logs slow down each snapshot.
    tx.execute(
        "DELETE FROM updates WHERE doc_id = ?1 AND idx > ?2 AND idx <= ?3 AND NOT EXISTS
           (SELECT 1 FROM outbox o WHERE o.doc_id = updates.doc_id AND o.origin = updates.origin AND o.seq = updates.seq)",
        params![id, previous, upto],
    )?;
    doc.tail = 0;
    Ok(())
}

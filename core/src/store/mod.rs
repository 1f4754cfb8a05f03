//! The device store: many documents in one SQLite file.
//!
//! Each document has a row in `docs` and a log of updates in `updates` (the shared update
//! log, [`crate::log`]); the updates this device authored and the relay has not yet
//! acknowledged are also listed in `outbox`. A commit writes the update and the outbox entry
//! in one SQLite transaction (WAL, `synchronous=FULL`; the logged update advances the
//! stored version vector, [`crate::log::version`]), so once
//! [`Store::transact`] returns the edit survives a crash. What the relay holds (remote
//! updates, catch-up snapshots, acknowledgements) is committed without waiting for the
//! fsync ([`durability`]). Loading a document is its latest checkpoint plus the updates
//! logged after it; a checkpoint is taken when that tail grows past
//! [`StoreOptions::checkpoint_every`].
//!
//! This file holds the handle, its options and its locking; the rest is by concern:
//! [`durability`] (which writes wait for the fsync), [`coherence`] (other processes'
//! commits), `edit` (creating and editing documents), `query` (reading them), `policies`
//! (conflict policies: setting them, every concurrent value, resolving), `clock` (the
//! device's persisted hybrid logical clock), `sync_api` (what sync needs: outbox, remote
//! updates, acknowledgements) and `sql` (the device's SQL over the shared log).

mod check;
mod clock;
mod coherence;
mod compact;
mod durability;
mod edit;
mod fold;
mod policies;
mod query;
mod schema;
mod sql;
mod sync_api;

use std::collections::HashMap;
use std::path::Path as FsPath;
use std::sync::{Arc, Mutex, MutexGuard};

use rusqlite::{Connection, Transaction};

use crate::doc::CrdtDoc;
use crate::error::Result;
use crate::ids::{DocKind, Origin};
use crate::notify::{ChangeEvent, ChangeSource, Listeners, Subscription};
use crate::policy::{WallClock, DEFAULT_MAX_DRIFT_MS};
use crate::read::Reader;
use crate::text_unit::TextUnit;
use crate::vv::VersionVector;
use coherence::{Cache, DiskVersion};
use durability::{Durability, SyncMode};

pub use check::{is_corruption, CheckReport, Problem, ProblemKind};
pub use schema::SCHEMA_VERSION;

/// Tuning for a store.
#[derive(Debug, Clone)]
pub struct StoreOptions {
    /// Take a checkpoint (store the saved state and prune what it covers) once this many
    /// updates have been logged since the last one.
    pub checkpoint_every: u64,
    /// Also take one once the updates logged since the last checkpoint hold more bytes
    /// than this many times the checkpoint's size (or than `checkpoint_min_bytes`,
    /// whichever is larger): a store of few large commits gets checkpoints too, and
    /// the saving work stays proportional to the document's growth.
    pub checkpoint_tail_ratio: f64,
    /// The tail size in bytes below which the size bound never asks for a checkpoint.
    pub checkpoint_min_bytes: u64,
    /// On close, fold a document's unsent local updates into its checkpoint (one row per
    /// commit no more; rebuilt before sending, see `fold.rs`) once there are this many, or
    /// once their rows hold more bytes than the checkpoint (and 16 KiB).
    /// [`Store::compact`] folds any number.
    pub fold_outbox_at: u64,
    /// What text positions and lengths count, for both document kinds (default: Unicode
    /// scalar values; [`TextUnit::Utf16`] for JavaScript parity).
    pub text_unit: TextUnit,
    /// How document values are read, and which value is shown for a key that holds
    /// concurrent ones (an app's conflict policy plugs in here, see [`Reader::with_policy`];
    /// its merge functions, see [`Reader::with_merge_function`]).
    pub reader: Reader,
    /// The wall clock that stamps writes under conflict policies (the system clock).
    pub wall_clock: WallClock,
    /// How far ahead of the wall clock a received timestamp may move this device's hybrid
    /// logical clock; a timestamp further ahead is clamped (docs/conflicts.md).
    pub max_drift_ms: u64,
}

impl Default for StoreOptions {
    fn default() -> Self {
        StoreOptions {
            checkpoint_every: 256,
            checkpoint_tail_ratio: 1.0,
            checkpoint_min_bytes: 64 * 1024,
            fold_outbox_at: 256,
            text_unit: TextUnit::default(),
            reader: Reader::default(),
            wall_clock: WallClock::system(),
            max_drift_ms: DEFAULT_MAX_DRIFT_MS,
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
    /// How long the last [`Store::apply_remote`] took, in nanoseconds (wall time).
    last_apply_nanos: Arc<std::sync::atomic::AtomicU64>,
}

struct Inner {
    conn: Connection,
    device: Origin,
    docs: HashMap<String, Loaded>,
    options: StoreOptions,
    /// What this connection last saw of other connections' commits.
    data_version: DiskVersion,
    /// Documents whose unacknowledged updates this handle read to send: a relay may hold
    /// them, so closing folds them only by count (`fold.rs`), not for their size.
    read_to_send: std::collections::HashSet<String>,
    /// Whether the connection's commits wait for the fsync ([`durability`]).
    sync_mode: SyncMode,
}

/// A write transaction holding SQLite's write lock, with the cache brought up to date.
struct Write<'a> {
    tx: Transaction<'a>,
    device: &'a mut Origin,
    docs: &'a mut HashMap<String, Loaded>,
    options: &'a StoreOptions,
}

impl Inner {
    fn begin_write(&mut self) -> Result<Write<'_>> {
        self.begin_write_with(Durability::Disk)
    }

    /// Runs `f` in one write transaction that may change several documents, and commits.
    /// If anything fails nothing is committed, and the loaded documents are dropped: `f`
    /// may have changed some of them in memory (a checkpoint resets a tail, a fold cuts a
    /// version vector back) before the failure.
    fn write_docs<R>(&mut self, f: impl FnOnce(&mut Write<'_>) -> Result<R>) -> Result<R> {
        let mut write = self.begin_write()?;
        let result = f(&mut write);
        let Write { tx, docs, .. } = write;
        let result = result.and_then(|r| Ok(tx.commit().map(|()| r)?));
        if result.is_err() {
            docs.clear();
        }
        result
    }

    /// [`Inner::begin_write`] for a write of the given durability ([`durability`]).
    fn begin_write_with(&mut self, durability: Durability) -> Result<Write<'_>> {
        self.sync_mode.set(&self.conn, durability)?;
        let tx = coherence::begin_write(
            &mut self.conn,
            Cache {
                device: &mut self.device,
                docs: &mut self.docs,
                data_version: &mut self.data_version,
            },
        )?;
        durability::debug_check(&tx, durability);
        Ok(Write {
            tx,
            device: &mut self.device,
            docs: &mut self.docs,
            options: &self.options,
        })
    }
}

/// A document held in memory, with the bookkeeping needed to extend its log.
struct Loaded {
    crdt: CrdtDoc,
    /// Shared with the change events of its commits (a listener gets it without a copy:
    /// a document may know tens of thousands of origins); changed with `Arc::make_mut`.
    version: Arc<VersionVector>,
    /// Updates logged since the checkpoint.
    tail: u64,
    /// Their bytes (known once loaded here; 0 after a checkpoint).
    tail_bytes: u64,
    /// The size of the checkpoint the document was loaded from or last saved as.
    checkpoint_bytes: u64,
    /// This handle logged updates to it since loading it: worth a checkpoint on close.
    dirty: bool,
    /// The position before the oldest unacknowledged local update is recorded
    /// (`outbox_base`, see `fold.rs`).
    base_noted: bool,
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
        Store::open_in_memory_with(StoreOptions::default())
    }

    /// A store that lives only in memory, with options.
    pub fn open_in_memory_with(options: StoreOptions) -> Result<Store> {
        Store::from_connection(Connection::open_in_memory()?, options)
    }

    fn from_connection(mut conn: Connection, options: StoreOptions) -> Result<Store> {
        conn.set_prepared_statement_cache_capacity(crate::log::STATEMENT_CACHE);
        conn.busy_timeout(schema::BUSY_TIMEOUT)?;
        // Before the device id is read: another process's commit after this (a new origin)
        // is then seen at the first use, and the device id read again.
        let data_version = DiskVersion::read(&conn)?;
        let device = schema::prepare(&mut conn)?;
        Ok(Store {
            inner: Arc::new(Mutex::new(Inner {
                conn,
                device,
                docs: HashMap::new(),
                options,
                data_version,
                read_to_send: Default::default(),
                sync_mode: SyncMode::new(),
            })),
            listeners: Listeners::default(),
            last_apply_nanos: Arc::default(),
        })
    }

    /// Locks the store, first dropping cached state another process made stale.
    fn lock(&self) -> MutexGuard<'_, Inner> {
        let mut guard = self.inner.lock().unwrap_or_else(|poisoned| {
            // A panic while the lock was held (an app's edit closure; a binding catches
            // it) may have left a loaded document half-changed, in memory only: every
            // cached document is dropped, to be loaded again from the file.
            let mut guard = poisoned.into_inner();
            guard.docs.clear();
            self.inner.clear_poison();
            guard
        });
        let Inner {
            conn,
            device,
            docs,
            data_version,
            ..
        } = &mut *guard;
        let cache = Cache {
            device,
            docs,
            data_version,
        };
        if coherence::refresh_from_disk(conn, cache).is_err() {
            guard.docs.clear();
        }
        guard
    }

    /// Runs `f` on document `id` as this store holds it in memory (loaded first if need
    /// be), with the store's options: the reads' one way in.
    fn with_loaded<R>(
        &self,
        id: &str,
        f: impl FnOnce(&mut Loaded, &StoreOptions) -> Result<R>,
    ) -> Result<R> {
        let mut guard = self.lock();
        let Inner {
            conn,
            docs,
            options,
            ..
        } = &mut *guard;
        let doc = sql::loaded(conn, docs, id, options.text_unit)?;
        f(doc, options)
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

    /// Runs `f` in a transaction that holds SQLite's write lock from the start (so a check
    /// and the write that depends on it see the same file, and the lock is waited for
    /// rather than failing), and commits if it succeeds.
    fn write<R>(&self, f: impl FnOnce(&Transaction<'_>) -> Result<R>) -> Result<R> {
        let mut guard = self.lock();
        let write = guard.begin_write()?;
        let result = f(&write.tx)?;
        write.tx.commit()?;
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
        self.write_doc_with(id, Durability::Disk, f)
    }

    /// [`Store::write_doc`] for a write of the given durability ([`durability`]).
    fn write_doc_with<R>(
        &self,
        id: &str,
        durability: Durability,
        f: impl FnOnce(&Transaction<'_>, &mut Loaded, &Origin, &StoreOptions) -> Result<R>,
    ) -> Result<R> {
        let mut guard = self.lock();
        let Write {
            tx,
            device,
            docs,
            options,
        } = guard.begin_write_with(durability)?;
        // The document is out of the cache while `f` runs and goes back only once the
        // transaction committed: if `f` fails, or panics (an app's closure), nothing it did
        // to the document stays behind, for reads or for the checkpoint taken on close.
        sql::loaded(&tx, docs, id, options.text_unit)?;
        let mut doc = docs.remove(id).expect("loaded above");
        let result = f(&tx, &mut doc, device, options).and_then(|r| Ok(tx.commit().map(|_| r)?));
        if result.is_ok() {
            docs.insert(id.to_string(), doc);
        }
        result
    }
}

fn change_event(id: &str, source: ChangeSource, doc: &Loaded) -> ChangeEvent {
    ChangeEvent {
        doc_id: id.to_string(),
        source,
        version: doc.version.clone(),
    }
}

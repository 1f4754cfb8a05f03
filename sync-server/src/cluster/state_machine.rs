//! The consensus state machine: the relay's own [`Storage`], driven by the committed
//! consensus log.
//!
//! A consensus entry at log index `n` carrying a batch applies each relay entry at log
//! position `n` (so a document's state, and the position a device is acknowledged with,
//! is the consensus log index: the LSN); blank and membership entries apply nothing but
//! advance the position. The last applied log id and the last membership are written in
//! the same transaction as the entries (the relay storage's opaque `consensus` state), so
//! they are exactly as durable as the documents.
//!
//! A snapshot is a consistent copy of the relay database (`VACUUM INTO`), whose consensus
//! state is the snapshot's metadata; installing one replaces the database's content in one
//! transaction (SQLite's backup API). The current snapshot is kept in the snapshot
//! directory ([`snapshot_file`](super::snapshot_file)).

use std::io::Cursor;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{SystemTime, UNIX_EPOCH};

use openraft::storage::{RaftStateMachine, Snapshot};
use openraft::{EntryPayload, RaftSnapshotBuilder, StorageIOError};
use serde::{Deserialize, Serialize};

use super::error::{blocking, ClusterStoreError};
use super::install_gate::InstallGate;
use super::snapshot_file::SnapshotFile;
use super::type_config::{
    Applied, LogId, RaftEntry, RaftStorageError, SnapshotMeta, StoredMembership, TypeConfig, Writer,
};
use crate::storage::{Entry, Storage};

/// The relay database's file name in a node's data directory.
pub const RELAY_DB: &str = "concord.db";

/// What the state machine records with the relay state: the consensus layer's view of it.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct AppliedState {
    last_applied: Option<LogId>,
    membership: StoredMembership,
}

impl AppliedState {
    fn of(storage: &Storage) -> Result<AppliedState, ClusterStoreError> {
        Ok(match storage.consensus() {
            Some(bytes) => serde_json::from_slice(bytes)?,
            None => AppliedState::default(),
        })
    }
}

/// Told what the state machine did, while it still holds the storage lock (so a reader
/// that takes the lock sees the state and its notices in one order): fan-out hangs here.
pub trait ApplyListener: Send + Sync {
    /// `applied` consensus entries: each one's LSN and relay outcomes, with the write each
    /// outcome came from.
    fn applied(&self, applied: &[(Applied, Vec<Option<Writer>>)]);
    /// The storage's content was replaced by a snapshot (followers of documents may have
    /// missed updates between their state and the snapshot's).
    fn installed(&self);
}

/// The state machine of one node; clones share the storage (the snapshot builder is one).
#[derive(Clone)]
pub struct StateMachine {
    storage: Arc<Mutex<Storage>>,
    snapshot: Arc<SnapshotFile>,
    listener: Option<Arc<dyn ApplyListener>>,
    /// Told how far this state machine holds the log, and of installs (`install_gate.rs`).
    gate: Arc<InstallGate>,
}

impl StateMachine {
    /// Opens the relay database in `data_dir` (checkpoint every `checkpoint_every`
    /// updates) and keeps snapshots in `data_dir/snapshots`.
    pub fn open(data_dir: &Path, checkpoint_every: u64) -> Result<StateMachine, ClusterStoreError> {
        let storage = Storage::open(&data_dir.join(RELAY_DB), checkpoint_every)?;
        StateMachine::new(Arc::new(Mutex::new(storage)), &data_dir.join("snapshots"))
    }

    /// A state machine over `storage` (shared with whoever serves reads from it), keeping
    /// snapshots in `snapshot_dir` (created if missing). Refuses a relay database a single
    /// relay wrote (entries applied, but no consensus state): the cluster's log positions
    /// would be taken as already applied there, and committed writes skipped.
    pub fn new(
        storage: Arc<Mutex<Storage>>,
        snapshot_dir: &Path,
    ) -> Result<StateMachine, ClusterStoreError> {
        {
            let storage = lock(&storage);
            if storage.consensus().is_none() && storage.last_applied() > 0 {
                return Err(ClusterStoreError::Corrupt(format!(
                    "the relay database holds a single relay's data (applied up to {}) and \
                     no cluster state: a cluster node starts from an empty data directory \
                     (to bring a single relay's documents into a cluster, sync them through \
                     a device)",
                    storage.last_applied()
                )));
            }
        }
        let gate = Arc::new(InstallGate::default());
        if let Some(applied) = AppliedState::of(&lock(&storage))?.last_applied {
            gate.applied(applied.index);
        }
        Ok(StateMachine {
            storage,
            snapshot: Arc::new(SnapshotFile::open(snapshot_dir)?),
            listener: None,
            gate,
        })
    }

    /// The gate this state machine tells of its position and installs: give it to the
    /// node's log store ([`LogStore::with_install_gate`](super::log_store::LogStore::with_install_gate)).
    pub fn install_gate(&self) -> Arc<InstallGate> {
        self.gate.clone()
    }

    /// Tells `listener` what each apply and snapshot install did.
    pub fn with_listener(mut self, listener: Arc<dyn ApplyListener>) -> StateMachine {
        self.listener = Some(listener);
        self
    }

    /// The relay storage this state machine applies to.
    pub fn storage(&self) -> &Arc<Mutex<Storage>> {
        &self.storage
    }
}

fn lock(storage: &Mutex<Storage>) -> MutexGuard<'_, Storage> {
    storage.lock().unwrap_or_else(|p| p.into_inner())
}

/// Applies consensus entries (ascending) in one relay transaction; one reply per entry.
fn apply_entries(
    storage: &mut Storage,
    entries: Vec<RaftEntry>,
    listener: Option<&dyn ApplyListener>,
) -> Result<Vec<Applied>, ClusterStoreError> {
    let mut state = AppliedState::of(storage)?;
    let mut relay_entries = Vec::new();
    // Per consensus entry: its index and how many relay entries it carried.
    let mut spans = Vec::with_capacity(entries.len());
    let mut writers = Vec::with_capacity(entries.len());
    for entry in entries {
        let index = entry.log_id.index;
        let before = relay_entries.len();
        let mut writer = Vec::new();
        match entry.payload {
            EntryPayload::Blank => {}
            EntryPayload::Normal(batch) => relay_entries.extend({
                writer = batch.writer_of_each();
                batch
                    .entries
                    .into_iter()
                    .map(|payload| Entry { index, payload })
            }),
            EntryPayload::Membership(membership) => {
                state.membership = StoredMembership::new(Some(entry.log_id), membership);
            }
        }
        spans.push((index, relay_entries.len() - before));
        writers.push(writer);
        state.last_applied = Some(entry.log_id);
    }
    let Some(last) = state.last_applied else {
        return Ok(Vec::new());
    };
    let consensus = serde_json::to_vec(&state)?;
    let mut outcomes = storage
        .apply_through(&relay_entries, last.index, &consensus)?
        .into_iter();
    let applied: Vec<Applied> = spans
        .into_iter()
        .map(|(lsn, count)| Applied {
            lsn,
            outcomes: outcomes.by_ref().take(count).collect(),
        })
        .collect();
    if let Some(listener) = listener {
        let notices: Vec<(Applied, Vec<Option<Writer>>)> =
            applied.iter().cloned().zip(writers).collect();
        listener.applied(&notices);
    }
    Ok(applied)
}

/// A file name in the snapshot directory no other snapshot operation uses.
fn scratch_name(what: &str) -> String {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    format!("{what}-{nanos}-{n}.db")
}

/// Removes a scratch database and the WAL files SQLite may have left beside it.
fn remove_scratch(path: &Path) {
    for suffix in ["", "-wal", "-shm"] {
        let mut name = path.as_os_str().to_owned();
        name.push(suffix);
        let _ = std::fs::remove_file(PathBuf::from(name));
    }
}

/// Builds a snapshot of the relay database as of its last committed batch and makes it the
/// current one.
fn build(
    storage: &Mutex<Storage>,
    current: &SnapshotFile,
) -> Result<(SnapshotMeta, Vec<u8>), ClusterStoreError> {
    let scratch = current.dir().join(scratch_name("build"));
    remove_scratch(&scratch);
    let copied = {
        let storage = lock(storage);
        storage
            .copy_to(&scratch)
            .map_err(ClusterStoreError::from)
            .and_then(|()| AppliedState::of(&storage))
    };
    let data = copied.and_then(|state| Ok((state, std::fs::read(&scratch)?)));
    remove_scratch(&scratch);
    let (state, data) = data?;
    let snapshot_id = match state.last_applied {
        Some(id) => format!("{}-{}-{}", id.leader_id, id.index, scratch_name("snapshot")),
        None => format!("none-{}", scratch_name("snapshot")),
    };
    let meta = SnapshotMeta {
        last_log_id: state.last_applied,
        last_membership: state.membership,
        snapshot_id,
    };
    // An install that finished meanwhile keeps its newer snapshot current.
    current.save(&meta, &data)?;
    Ok((meta, data))
}

/// Replaces the relay database's content with the snapshot `data` described by `meta`,
/// then makes it the current snapshot.
fn install(
    storage: &Mutex<Storage>,
    current: &SnapshotFile,
    meta: &SnapshotMeta,
    data: &[u8],
    listener: Option<&dyn ApplyListener>,
) -> Result<(), ClusterStoreError> {
    let scratch = current.dir().join(scratch_name("install"));
    remove_scratch(&scratch);
    let restored = std::fs::write(&scratch, data)
        .map_err(ClusterStoreError::from)
        .and_then(|()| {
            let mut storage = lock(storage);
            storage.restore_from(&scratch)?;
            if let Some(listener) = listener {
                listener.installed();
            }
            AppliedState::of(&storage)
        });
    remove_scratch(&scratch);
    let state = restored?;
    if state.last_applied != meta.last_log_id {
        return Err(ClusterStoreError::Corrupt(format!(
            "snapshot {} holds state at {:?}, not {:?}",
            meta.snapshot_id, state.last_applied, meta.last_log_id
        )));
    }
    current.save(meta, data)?;
    Ok(())
}

impl RaftSnapshotBuilder<TypeConfig> for StateMachine {
    async fn build_snapshot(&mut self) -> Result<Snapshot<TypeConfig>, RaftStorageError> {
        let storage = self.storage.clone();
        let current = self.snapshot.clone();
        let (meta, data) = blocking(StorageIOError::read_state_machine, move || {
            build(&storage, &current)
        })
        .await?;
        Ok(Snapshot {
            meta,
            snapshot: Box::new(Cursor::new(data)),
        })
    }
}

impl RaftStateMachine<TypeConfig> for StateMachine {
    type SnapshotBuilder = StateMachine;

    async fn applied_state(
        &mut self,
    ) -> Result<(Option<LogId>, StoredMembership), RaftStorageError> {
        let storage = self.storage.clone();
        let state = blocking(StorageIOError::read_state_machine, move || {
            AppliedState::of(&lock(&storage))
        })
        .await?;
        Ok((state.last_applied, state.membership))
    }

    async fn apply<I>(&mut self, entries: I) -> Result<Vec<Applied>, RaftStorageError>
    where
        I: IntoIterator<Item = RaftEntry> + openraft::OptionalSend,
        I::IntoIter: openraft::OptionalSend,
    {
        let entries: Vec<RaftEntry> = entries.into_iter().collect();
        let last = entries.last().map(|e| e.log_id.index);
        let storage = self.storage.clone();
        let listener = self.listener.clone();
        let applied = blocking(StorageIOError::write_state_machine, move || {
            apply_entries(&mut lock(&storage), entries, listener.as_deref())
        })
        .await?;
        if let Some(last) = last {
            self.gate.applied(last);
        }
        Ok(applied)
    }

    async fn get_snapshot_builder(&mut self) -> StateMachine {
        self.clone()
    }

    async fn begin_receiving_snapshot(&mut self) -> Result<Box<Cursor<Vec<u8>>>, RaftStorageError> {
        self.gate.receiving();
        Ok(Box::new(Cursor::new(Vec::new())))
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMeta,
        snapshot: Box<Cursor<Vec<u8>>>,
    ) -> Result<(), RaftStorageError> {
        let storage = self.storage.clone();
        let current = self.snapshot.clone();
        let meta = meta.clone();
        let signature = meta.signature();
        let data = snapshot.into_inner();
        let listener = self.listener.clone();
        let index = meta.last_log_id.map(|id| id.index);
        self.gate.receiving();
        let installed = blocking(
            |e| StorageIOError::write_snapshot(Some(signature.clone()), e),
            move || install(&storage, &current, &meta, &data, listener.as_deref()),
        )
        .await;
        self.gate
            .installed(installed.is_ok().then_some(index).flatten());
        installed
    }

    async fn get_current_snapshot(
        &mut self,
    ) -> Result<Option<Snapshot<TypeConfig>>, RaftStorageError> {
        let file = self.snapshot.clone();
        let current = blocking(
            |e| StorageIOError::read_snapshot(None, e),
            move || file.load(),
        )
        .await?;
        Ok(current.map(|(meta, data)| Snapshot {
            meta,
            snapshot: Box::new(Cursor::new(data)),
        }))
    }
}

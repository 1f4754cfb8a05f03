//! The consensus log of one node in its own SQLite file (`raft.db` in the node's data
//! directory): log entries, the vote, the committed log id and the last purged log id.
//!
//! The file is in WAL mode with `synchronous = FULL`, so each transaction is fsynced
//! when its commit returns: openraft is told an append is durable (`LogFlushed`), and a
//! vote is saved, only after that. Entries are stored in the cluster's binary encoding
//! (the whole openraft entry, log id included) by index.

use std::fmt::Debug;
use std::ops::{Bound, RangeBounds};
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};

use openraft::storage::{LogFlushed, LogState, RaftLogStorage};
use openraft::{EntryPayload, OptionalSend, RaftLogReader, StorageIOError, Vote};
use rusqlite::{params, Connection, OptionalExtension};
use serde::de::DeserializeOwned;
use serde::Serialize;

use super::codec;
use super::error::{blocking, ClusterStoreError};
use super::install_gate::InstallGate;
use super::type_config::{LogId, NodeId, RaftEntry, RaftStorageError, TypeConfig};

const SCHEMA: &str = "
    CREATE TABLE IF NOT EXISTS raft_log (
        idx   INTEGER PRIMARY KEY,
        entry BLOB NOT NULL
    );
    CREATE TABLE IF NOT EXISTS raft_meta (
        key   TEXT PRIMARY KEY,
        value BLOB NOT NULL
    );
    PRAGMA user_version = 1;";

const VOTE: &str = "vote";
const COMMITTED: &str = "committed";
const LAST_PURGED: &str = "last_purged";

/// Told, after each durable append, which of the appended entries this node proposed
/// (`(request, log index)` of batches whose writer's leader is `node`).
pub type FlushObserver = Arc<dyn Fn(&[(u64, u64)]) + Send + Sync>;

/// The node's consensus log store; clones share one connection (the log reader is one).
#[derive(Clone)]
pub struct LogStore {
    conn: Arc<Mutex<Connection>>,
    observer: Option<(NodeId, FlushObserver)>,
    /// Shared with the state machine: no purge past what it holds during an install.
    gate: Option<Arc<InstallGate>>,
}

type Result<T> = std::result::Result<T, ClusterStoreError>;

impl LogStore {
    /// Opens (or creates) the consensus log file `path`.
    pub fn open(path: &Path) -> Result<LogStore> {
        let conn = Connection::open(path)?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.execute_batch(SCHEMA)?;
        Ok(LogStore {
            conn: Arc::new(Mutex::new(conn)),
            observer: None,
            gate: None,
        })
    }

    /// Reports durable appends of entries proposed by leader `node` to `observer`.
    pub fn observe_flushes(mut self, node: NodeId, observer: FlushObserver) -> LogStore {
        self.observer = Some((node, observer));
        self
    }

    /// Purges wait at `gate` for a snapshot install under way (see `install_gate.rs`).
    pub fn with_install_gate(mut self, gate: Arc<InstallGate>) -> LogStore {
        self.gate = Some(gate);
        self
    }

    /// Runs `work` on the connection, on the blocking pool.
    async fn with_conn<T, F>(
        &self,
        kind: impl FnOnce(openraft::AnyError) -> StorageIOError<NodeId>,
        work: F,
    ) -> std::result::Result<T, RaftStorageError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T> + Send + 'static,
    {
        let conn = self.conn.clone();
        blocking(kind, move || work(&mut lock(&conn))).await
    }
}

fn lock(conn: &Mutex<Connection>) -> MutexGuard<'_, Connection> {
    conn.lock().unwrap_or_else(|p| p.into_inner())
}

fn read_meta<T: DeserializeOwned>(conn: &Connection, key: &str) -> Result<Option<T>> {
    let value: Option<Vec<u8>> = conn
        .query_row("SELECT value FROM raft_meta WHERE key = ?1", [key], |r| {
            r.get(0)
        })
        .optional()?;
    Ok(match value {
        Some(bytes) => Some(codec::decode(&bytes)?),
        None => None,
    })
}

fn write_meta<T: Serialize>(conn: &Connection, key: &str, value: &T) -> Result<()> {
    conn.execute(
        "INSERT OR REPLACE INTO raft_meta (key, value) VALUES (?1, ?2)",
        params![key, codec::encode(value)?],
    )?;
    Ok(())
}

/// The index range `range` covers, as SQL bounds `[start, end)`.
fn sql_bounds<RB: RangeBounds<u64>>(range: &RB) -> (i64, i64) {
    let clamp = |i: u64| i.min(i64::MAX as u64) as i64;
    let start = match range.start_bound() {
        Bound::Included(i) => clamp(*i),
        Bound::Excluded(i) => clamp(i.saturating_add(1)),
        Bound::Unbounded => 0,
    };
    let end = match range.end_bound() {
        Bound::Included(i) => clamp(i.saturating_add(1)),
        Bound::Excluded(i) => clamp(*i),
        Bound::Unbounded => i64::MAX,
    };
    (start, end)
}

impl RaftLogReader<TypeConfig> for LogStore {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> std::result::Result<Vec<RaftEntry>, RaftStorageError> {
        let (start, end) = sql_bounds(&range);
        self.with_conn(StorageIOError::read_logs, move |conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT entry FROM raft_log WHERE idx >= ?1 AND idx < ?2 ORDER BY idx",
            )?;
            let rows = stmt.query_map([start, end], |r| r.get::<_, Vec<u8>>(0))?;
            let mut entries = Vec::new();
            for row in rows {
                entries.push(codec::decode(&row?)?);
            }
            Ok(entries)
        })
        .await
    }
}

impl RaftLogStorage<TypeConfig> for LogStore {
    type LogReader = LogStore;

    async fn get_log_state(
        &mut self,
    ) -> std::result::Result<LogState<TypeConfig>, RaftStorageError> {
        self.with_conn(StorageIOError::read_logs, |conn| {
            let last_purged_log_id: Option<LogId> = read_meta(conn, LAST_PURGED)?;
            let last: Option<Vec<u8>> = conn
                .query_row(
                    "SELECT entry FROM raft_log ORDER BY idx DESC LIMIT 1",
                    [],
                    |r| r.get(0),
                )
                .optional()?;
            let last_log_id = match last {
                Some(bytes) => Some(codec::decode::<RaftEntry>(&bytes)?.log_id),
                None => last_purged_log_id,
            };
            Ok(LogState {
                last_purged_log_id,
                last_log_id,
            })
        })
        .await
    }

    async fn get_log_reader(&mut self) -> LogStore {
        self.clone()
    }

    async fn save_vote(
        &mut self,
        vote: &Vote<NodeId>,
    ) -> std::result::Result<(), RaftStorageError> {
        let vote = *vote;
        self.with_conn(StorageIOError::write_vote, move |conn| {
            write_meta(conn, VOTE, &vote)
        })
        .await
    }

    async fn read_vote(&mut self) -> std::result::Result<Option<Vote<NodeId>>, RaftStorageError> {
        self.with_conn(StorageIOError::read_vote, |conn| read_meta(conn, VOTE))
            .await
    }

    async fn save_committed(
        &mut self,
        committed: Option<LogId>,
    ) -> std::result::Result<(), RaftStorageError> {
        self.with_conn(StorageIOError::write, move |conn| {
            write_meta(conn, COMMITTED, &committed)
        })
        .await
    }

    async fn read_committed(&mut self) -> std::result::Result<Option<LogId>, RaftStorageError> {
        self.with_conn(StorageIOError::read, |conn| {
            Ok(read_meta::<Option<LogId>>(conn, COMMITTED)?.flatten())
        })
        .await
    }

    async fn append<I>(
        &mut self,
        entries: I,
        callback: LogFlushed<TypeConfig>,
    ) -> std::result::Result<(), RaftStorageError>
    where
        I: IntoIterator<Item = RaftEntry> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let mut own = Vec::new();
        let rows = entries
            .into_iter()
            .map(|e| {
                if let (Some((node, _)), EntryPayload::Normal(batch)) = (&self.observer, &e.payload)
                {
                    for span in batch.writers.iter().filter(|s| s.writer.leader == *node) {
                        own.push((span.writer.request, e.log_id.index));
                    }
                }
                Ok((e.log_id.index as i64, codec::encode(&e)?))
            })
            .collect::<Result<Vec<_>>>()
            .map_err(|e| e.into_raft(StorageIOError::write_logs))?;
        let observer = self.observer.as_ref().map(|(_, o)| o.clone());
        self.with_conn(StorageIOError::write_logs, move |conn| {
            let tx = conn.transaction()?;
            {
                let mut stmt = tx.prepare_cached(
                    "INSERT OR REPLACE INTO raft_log (idx, entry) VALUES (?1, ?2)",
                )?;
                for (idx, entry) in &rows {
                    stmt.execute(params![idx, entry])?;
                }
            }
            // Durable (WAL, synchronous = FULL) once the commit returns: only then is
            // openraft told. On failure the callback is dropped, which reports it.
            tx.commit()?;
            callback.log_io_completed(Ok(()));
            if let (Some(observer), false) = (observer, own.is_empty()) {
                observer(&own);
            }
            Ok(())
        })
        .await
    }

    async fn truncate(&mut self, log_id: LogId) -> std::result::Result<(), RaftStorageError> {
        self.with_conn(StorageIOError::write_logs, move |conn| {
            conn.execute(
                "DELETE FROM raft_log WHERE idx >= ?1",
                [log_id.index as i64],
            )?;
            Ok(())
        })
        .await
    }

    async fn purge(&mut self, log_id: LogId) -> std::result::Result<(), RaftStorageError> {
        let limit = match &self.gate {
            Some(gate) => gate.purge_limit(log_id.index).await,
            None => log_id.index,
        };
        self.with_conn(StorageIOError::write_logs, move |conn| {
            // Cut short by an install that failed: purge only up to the entry at `limit`
            // (nothing when that is gone already).
            let log_id = if limit < log_id.index {
                let at: Option<Vec<u8>> = conn
                    .query_row(
                        "SELECT entry FROM raft_log WHERE idx = ?1",
                        [limit as i64],
                        |r| r.get(0),
                    )
                    .optional()?;
                match at {
                    Some(bytes) => codec::decode::<RaftEntry>(&bytes)?.log_id,
                    None => return Ok(()),
                }
            } else {
                log_id
            };
            let tx = conn.transaction()?;
            write_meta(&tx, LAST_PURGED, &log_id)?;
            tx.execute(
                "DELETE FROM raft_log WHERE idx <= ?1",
                [log_id.index as i64],
            )?;
            tx.commit()?;
            Ok(())
        })
        .await
    }
}

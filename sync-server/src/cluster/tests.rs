//! Tests of the cluster's consensus storage: openraft's storage conformance suite on the
//! SQLite log and relay state machine, and what the suite cannot see (relay batches,
//! durability across reopening, snapshots carrying documents).

use std::collections::{BTreeMap, BTreeSet};

use concord_core::{DocKind, Store, UpdateRecord};
use openraft::storage::{RaftLogStorage, RaftLogStorageExt, RaftStateMachine};
use openraft::testing::{StoreBuilder, Suite};
use openraft::{
    CommittedLeaderId, Entry, EntryPayload, Membership, RaftLogReader, RaftSnapshotBuilder,
    StorageIOError, Vote,
};
use tempfile::TempDir;

use super::state_machine::RELAY_DB;
use super::type_config::{LogId, RaftStorageError};
use super::*;
use crate::storage::{ApplyOutcome, LogEntry, Storage};

/// A node's stores in a fresh temporary data directory.
struct SqliteStores;

impl StoreBuilder<TypeConfig, LogStore, StateMachine, TempDir> for SqliteStores {
    async fn build(&self) -> Result<(TempDir, LogStore, StateMachine), RaftStorageError> {
        let dir = tempfile::tempdir().expect("temporary directory");
        let (log, sm) = open(&dir).map_err(|e| e.into_raft(StorageIOError::write))?;
        Ok((dir, log, sm))
    }
}

fn open(dir: &TempDir) -> Result<(LogStore, StateMachine), ClusterStoreError> {
    let sm = StateMachine::open(dir.path(), 30)?;
    let log = LogStore::open(&dir.path().join("raft.db"))?.with_install_gate(sm.install_gate());
    Ok((log, sm))
}

#[test]
fn openraft_storage_suite_passes_on_sqlite() {
    Suite::test_all(SqliteStores).unwrap();
}

fn log_id(term: u64, index: u64) -> LogId {
    LogId::new(CommittedLeaderId::new(term, 1), index)
}

fn batch(term: u64, index: u64, entries: Vec<LogEntry>) -> Entry<TypeConfig> {
    Entry {
        log_id: log_id(term, index),
        payload: EntryPayload::Normal(Batch {
            entries,
            writers: vec![],
        }),
    }
}

fn membership(term: u64, index: u64, voters: &[u64]) -> Entry<TypeConfig> {
    let voters: BTreeSet<u64> = voters.iter().copied().collect();
    let nodes: BTreeMap<u64, ClusterNode> = voters
        .iter()
        .map(|id| (*id, ClusterNode::default()))
        .collect();
    Entry {
        log_id: log_id(term, index),
        payload: EntryPayload::Membership(Membership::new(vec![voters], nodes)),
    }
}

/// `n` updates of document "d" made by a real device store.
fn device_updates(n: usize) -> (Store, Vec<UpdateRecord>) {
    let store = Store::open_in_memory().unwrap();
    store.create_doc("d", DocKind::Yrs).unwrap();
    for i in 0..n {
        store
            .transact("d", |tx| tx.insert_text("text", 0, &format!("{i}")))
            .unwrap();
    }
    let updates = store.outbox("d").unwrap();
    (store, updates)
}

fn appends(updates: &[UpdateRecord]) -> Vec<LogEntry> {
    updates
        .iter()
        .map(|u| LogEntry::Append {
            doc_id: "d".into(),
            update: u.clone(),
        })
        .collect()
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Runtime::new().unwrap()
}

#[test]
fn a_batch_applies_at_its_log_index_and_survives_reopening() {
    let dir = tempfile::tempdir().unwrap();
    let (device, updates) = device_updates(3);
    runtime().block_on(async {
        let (_, mut sm) = open(&dir).unwrap();
        let mut entries = vec![LogEntry::CreateDoc {
            doc_id: "d".into(),
            kind: DocKind::Yrs,
        }];
        entries.extend(appends(&updates[..2]));
        let replies = sm
            .apply([
                membership(1, 1, &[1, 2, 3]),
                batch(1, 2, entries),
                // The second update again (held: unchanged), then the third.
                batch(1, 3, appends(&updates[1..])),
            ])
            .await
            .unwrap();
        assert_eq!(replies.len(), 3);
        assert_eq!(
            replies[0],
            Applied {
                lsn: 1,
                outcomes: vec![]
            }
        );
        assert_eq!(replies[1].lsn, 2);
        assert!(matches!(
            replies[1].outcomes[0],
            ApplyOutcome::Created { .. }
        ));
        assert!(matches!(
            replies[1].outcomes[2],
            ApplyOutcome::Appended { .. }
        ));
        assert_eq!(replies[2].lsn, 3);
        assert_eq!(replies[2].outcomes[0], ApplyOutcome::Unchanged);
        assert!(matches!(
            replies[2].outcomes[1],
            ApplyOutcome::Appended { .. }
        ));
    });
    // Reopened from its files: the documents, the position and the consensus state.
    runtime().block_on(async {
        let (_, mut sm) = open(&dir).unwrap();
        let (applied, membership) = sm.applied_state().await.unwrap();
        assert_eq!(applied, Some(log_id(1, 3)));
        assert_eq!(membership.log_id(), &Some(log_id(1, 1)));
        let storage = sm.storage().lock().unwrap();
        assert_eq!(storage.last_applied(), 3);
        let head = storage.head("d").unwrap();
        assert_eq!(head.version.get(&device.device_id()), 3);
    });
}

/// A data directory a single relay wrote (entries applied with no consensus state) is
/// refused as a cluster node's: its relay positions would be taken for consensus
/// positions, and committed entries at or below them skipped (acked writes missing on
/// that node).
#[test]
fn a_single_relays_database_is_refused_as_a_cluster_nodes() {
    let dir = tempfile::tempdir().unwrap();
    {
        let mut storage = Storage::open(&dir.path().join(RELAY_DB), 30).unwrap();
        storage
            .apply_batch(&[LogEntry::CreateDoc {
                doc_id: "d".into(),
                kind: DocKind::Yrs,
            }])
            .unwrap();
        assert!(storage.last_applied() > 0);
    }
    let err = StateMachine::open(dir.path(), 30).err().expect("refused");
    assert!(err.to_string().contains("single relay"), "{err}");
    // An empty data directory is a node's.
    assert!(StateMachine::open(tempfile::tempdir().unwrap().path(), 30).is_ok());
}

#[test]
fn the_log_and_the_vote_survive_reopening_and_truncation_drops_the_suffix() {
    let dir = tempfile::tempdir().unwrap();
    let (_, updates) = device_updates(1);
    runtime().block_on(async {
        let (mut log, _) = open(&dir).unwrap();
        log.save_vote(&Vote::new(4, 2)).await.unwrap();
        // Entries carrying a relay batch, an empty batch and a membership change.
        let entries = vec![
            membership(1, 1, &[1]),
            batch(1, 2, appends(&updates)),
            batch(1, 3, vec![]),
        ];
        append(&mut log, entries).await;
        log.truncate(log_id(1, 3)).await.unwrap();
    });
    runtime().block_on(async {
        let (mut log, _) = open(&dir).unwrap();
        assert_eq!(log.read_vote().await.unwrap(), Some(Vote::new(4, 2)));
        let state = log.get_log_state().await.unwrap();
        assert_eq!(state.last_log_id, Some(log_id(1, 2)));
        let entries = log.try_get_log_entries(..).await.unwrap();
        assert_eq!(entries.len(), 2);
        assert_eq!(
            entries[1].payload,
            EntryPayload::Normal(Batch {
                entries: appends(&updates),
                writers: vec![],
            })
        );
    });
}

/// Appends and waits until the `LogFlushed` callback reports the entries durable.
async fn append(log: &mut LogStore, entries: Vec<Entry<TypeConfig>>) {
    log.blocking_append(entries).await.unwrap();
}

#[test]
fn a_snapshot_carries_the_documents_to_a_new_node() {
    let leader_dir = tempfile::tempdir().unwrap();
    let follower_dir = tempfile::tempdir().unwrap();
    let (device, updates) = device_updates(40);
    runtime().block_on(async {
        let (_, mut leader) = open(&leader_dir).unwrap();
        let mut entries = vec![LogEntry::CreateDoc {
            doc_id: "d".into(),
            kind: DocKind::Yrs,
        }];
        entries.extend(appends(&updates[..35]));
        leader
            .apply([membership(1, 1, &[1, 2]), batch(1, 2, entries)])
            .await
            .unwrap();
        let snapshot = leader
            .get_snapshot_builder()
            .await
            .build_snapshot()
            .await
            .unwrap();
        assert_eq!(snapshot.meta.last_log_id, Some(log_id(1, 2)));

        let (_, mut follower) = open(&follower_dir).unwrap();
        follower
            .install_snapshot(&snapshot.meta, snapshot.snapshot)
            .await
            .unwrap();
        let (applied, membership) = follower.applied_state().await.unwrap();
        assert_eq!(applied, Some(log_id(1, 2)));
        assert_eq!(membership.log_id(), &Some(log_id(1, 1)));
        // The follower goes on from the snapshot with the next entries of the log.
        let replies = follower
            .apply([batch(2, 3, appends(&updates[35..]))])
            .await
            .unwrap();
        assert_eq!(replies[0].outcomes.len(), 5);
        assert!(replies[0]
            .outcomes
            .iter()
            .all(|o| matches!(o, ApplyOutcome::Appended { .. })));
        let current = follower.get_current_snapshot().await.unwrap().unwrap();
        assert_eq!(current.meta.last_log_id, Some(log_id(1, 2)));
    });
    // What the follower serves equals what the leader would after the same entries.
    let follower = StateMachine::open(follower_dir.path(), 30).unwrap();
    let storage = follower.storage().lock().unwrap();
    assert_eq!(storage.last_applied(), 3);
    assert_eq!(
        storage.head("d").unwrap().version.get(&device.device_id()),
        40
    );
    let catchup = storage.catchup("d", &Default::default()).unwrap();
    let served = catchup.updates.len() as u64
        + catchup
            .snapshot
            .map_or(0, |s| s.covers.get(&device.device_id()));
    assert_eq!(served, 40);
}

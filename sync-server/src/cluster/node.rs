//! One node of the relay cluster at run time: the openraft instance over the node's SQLite
//! log and the relay storage, the peers it calls, and what the relay's write and read paths
//! need from consensus (who leads, proposals, flush notices, applied positions, lag).
//!
//! The relay's fan-out is hung on the state machine ([`RelayListener`]): every node applies
//! the committed log and sends what it changed to its own subscribers.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use openraft::{Raft, ServerState, SnapshotPolicy};
use tokio::sync::oneshot;

use super::log_store::LogStore;
use super::network::Peers;
use super::proposer::Proposer;
use super::settings::ClusterSettings;
use super::state_machine::{ApplyListener, StateMachine};
use super::type_config::{Applied, ClusterNode, NodeId, TypeConfig, Writer};
use crate::state::Relay;

/// Why a node could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Settings(#[from] super::settings::SettingsError),
    #[error("consensus configuration: {0}")]
    Config(#[from] openraft::ConfigError),
    #[error("opening the consensus log or state machine")]
    Store(#[from] super::ClusterStoreError),
    #[error("starting consensus: {0}")]
    Raft(String),
}

/// Waiters for "this node's log holds my proposal durably" (write concern `leader`).
#[derive(Default)]
pub struct FlushWaiters {
    waiting: Mutex<HashMap<u64, oneshot::Sender<u64>>>,
}

impl FlushWaiters {
    fn lock(&self) -> MutexGuard<'_, HashMap<u64, oneshot::Sender<u64>>> {
        self.waiting.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn register(&self, request: u64) -> oneshot::Receiver<u64> {
        let (tx, rx) = oneshot::channel();
        self.lock().insert(request, tx);
        rx
    }

    pub fn forget(&self, request: u64) {
        self.lock().remove(&request);
    }

    fn flushed(&self, own: &[(u64, u64)]) {
        let mut waiting = self.lock();
        for (request, index) in own {
            if let Some(tx) = waiting.remove(request) {
                let _ = tx.send(*index);
            }
        }
    }
}

/// Fans out what the state machine applied, on this node, to this node's subscribers.
struct RelayListener {
    relay: Weak<Relay>,
    node: NodeId,
}

impl ApplyListener for RelayListener {
    fn applied(&self, applied: &[(Applied, Vec<Option<Writer>>)]) {
        let Some(relay) = self.relay.upgrade() else {
            return;
        };
        for (applied, writers) in applied {
            // Runs of outcomes from one write: its own connection is not sent them back.
            let mut start = 0;
            while start < applied.outcomes.len() {
                let writer = writers.get(start).copied().flatten();
                let mut end = start + 1;
                while end < applied.outcomes.len() && writers.get(end).copied().flatten() == writer
                {
                    end += 1;
                }
                let except = writer.filter(|w| w.node == self.node).map(|w| w.conn);
                relay.fan_out(&applied.outcomes[start..end], except, applied.lsn);
                start = end;
            }
        }
    }

    fn installed(&self) {
        if let Some(relay) = self.relay.upgrade() {
            // Subscribers missed what the snapshot skipped: they resync from their vectors.
            relay.hub().disconnect_all();
        }
    }
}

/// A running cluster node.
pub struct Cluster {
    pub id: NodeId,
    pub raft: Raft<TypeConfig>,
    pub settings: ClusterSettings,
    pub peers: Peers,
    pub relay: Arc<Relay>,
    pub flushes: Arc<FlushWaiters>,
    pub proposer: Proposer,
    /// On the leader: documents with writes proposed and not yet applied here.
    pub in_flight: Arc<super::in_flight::InFlight>,
    next_request: AtomicU64,
    /// On a follower: the leader's last log index as last probed (lag bound).
    pub leader_index: AtomicU64,
    /// The term in which this node, as leader, has applied everything committed before it.
    pub barrier_term: AtomicU64,
    /// On the leader: when the log reached each recent index (replication lag in ms).
    log_times: Mutex<VecDeque<(u64, Instant)>>,
}

const LOG_TIMES_KEPT: usize = 4096;

impl Cluster {
    /// Starts the node over the relay's storage in `data_dir`; bootstraps the cluster when
    /// the settings say so and the node is pristine.
    pub async fn start(
        settings: ClusterSettings,
        data_dir: &Path,
        relay: Arc<Relay>,
    ) -> Result<Arc<Cluster>, StartError> {
        settings.validate()?;
        let id = settings.node_id;
        let config = openraft::Config {
            cluster_name: "concord".into(),
            heartbeat_interval: settings.heartbeat_ms,
            election_timeout_min: settings.election_timeout_min_ms,
            election_timeout_max: settings.election_timeout_max_ms,
            install_snapshot_timeout: settings.rpc_timeout_ms.max(2000),
            snapshot_policy: SnapshotPolicy::LogsSinceLast(settings.snapshot_logs.max(1)),
            max_in_snapshot_log_to_keep: settings.keep_logs,
            replication_lag_threshold: settings.snapshot_logs.max(1) + settings.keep_logs,
            snapshot_max_chunk_size: 1 << 20,
            ..Default::default()
        }
        .validate()?;
        let flushes = Arc::new(FlushWaiters::default());
        let observer = {
            let flushes = flushes.clone();
            Arc::new(move |own: &[(u64, u64)]| flushes.flushed(own))
        };
        let listener = Arc::new(RelayListener {
            relay: Arc::downgrade(&relay),
            node: id,
        });
        let sm = StateMachine::new(relay.shared_storage(), &data_dir.join("snapshots"))?
            .with_listener(listener);
        let log = LogStore::open(&data_dir.join("raft.db"))?
            .observe_flushes(id, observer)
            .with_install_gate(sm.install_gate());
        let dial = settings
            .dial
            .iter()
            .filter_map(|(k, v)| Some((k.parse().ok()?, v.clone())))
            .collect();
        let peers = Peers::new(
            &settings.secret,
            dial,
            Duration::from_millis(settings.rpc_timeout_ms),
        );
        let raft = Raft::new(id, Arc::new(config), peers.clone(), log, sm)
            .await
            .map_err(|e| StartError::Raft(e.to_string()))?;
        let start = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_micros() as u64)
            .unwrap_or(1);
        let proposer = Proposer::start(raft.clone());
        let cluster = Arc::new(Cluster {
            id,
            raft,
            settings,
            peers,
            relay,
            flushes,
            in_flight: Default::default(),
            proposer,
            next_request: AtomicU64::new(start << 8),
            leader_index: AtomicU64::new(0),
            barrier_term: AtomicU64::new(0),
            log_times: Mutex::new(VecDeque::new()),
        });
        if cluster.settings.bootstrap {
            cluster.initialize().await.ok();
        }
        super::background::spawn(&cluster);
        Ok(cluster)
    }

    /// Initialises a pristine cluster with the configured peers as voters.
    pub async fn initialize(&self) -> Result<(), String> {
        let initialized = self
            .raft
            .is_initialized()
            .await
            .map_err(|e| e.to_string())?;
        if initialized {
            return Err("the cluster is already initialised".into());
        }
        let members: BTreeMap<NodeId, ClusterNode> = self
            .settings
            .peers
            .iter()
            .map(|p| {
                (
                    p.id,
                    ClusterNode {
                        client_addr: p.client.clone(),
                        cluster_addr: p.cluster.clone(),
                    },
                )
            })
            .collect();
        self.raft
            .initialize(members)
            .await
            .map_err(|e| e.to_string())
    }

    /// A request id unique to this process (and across its restarts).
    pub fn next_request(&self) -> u64 {
        self.next_request.fetch_add(1, Ordering::Relaxed)
    }

    pub fn metrics(&self) -> openraft::RaftMetrics<NodeId, ClusterNode> {
        self.raft.metrics().borrow().clone()
    }

    /// Resolves when consensus on this node has stopped for good (openraft's core quit on
    /// a fatal error, such as a storage failure), with the reason. The node can then
    /// neither apply nor vote: it must stop serving, so devices move to another node and
    /// the process can be restarted from its data directory.
    pub async fn stopped(&self) -> String {
        let mut metrics = self.raft.metrics();
        loop {
            if let Err(fatal) = &metrics.borrow_and_update().running_state {
                return fatal.to_string();
            }
            if metrics.changed().await.is_err() {
                return "consensus stopped".into();
            }
        }
    }

    /// The current leader, if known.
    pub fn leader(&self) -> Option<NodeId> {
        self.raft.metrics().borrow().current_leader
    }

    pub fn is_leader(&self) -> bool {
        let m = self.raft.metrics();
        let m = m.borrow();
        m.state == ServerState::Leader && m.current_leader == Some(self.id)
    }

    /// The cluster address to dial for node `id` (from the membership, or the dial map).
    pub fn cluster_addr(&self, id: NodeId) -> Option<String> {
        let m = self.raft.metrics();
        let m = m.borrow();
        let node = m.membership_config.membership().get_node(&id)?;
        Some(self.peers.addr(id, &node.cluster_addr))
    }

    /// This node's applied position (LSN).
    pub fn applied(&self) -> u64 {
        self.raft
            .metrics()
            .borrow()
            .last_applied
            .map(|l| l.index)
            .unwrap_or(0)
    }

    /// Waits (at most `timeout`) until this node has applied `lsn`; true if it has.
    pub async fn wait_applied(&self, lsn: u64, timeout: Duration) -> bool {
        if self.applied() >= lsn {
            return true;
        }
        self.raft
            .wait(Some(timeout))
            .applied_index_at_least(Some(lsn), "min_lsn")
            .await
            .is_ok()
    }

    /// Whether this node serves subscriptions: it knows a leader (or is it), and it is not
    /// further behind the leader's log than the configured bound.
    pub fn serving(&self) -> bool {
        let m = self.raft.metrics();
        let m = m.borrow();
        if m.state == ServerState::Leader {
            return true;
        }
        if m.current_leader.is_none() {
            return false;
        }
        let applied = m.last_applied.map(|l| l.index).unwrap_or(0);
        let leader = self.leader_index.load(Ordering::Relaxed);
        leader.saturating_sub(applied) <= self.settings.max_lag_entries
    }

    /// Records that the leader's log reached `index` now (for lag in ms).
    pub fn note_log_index(&self, index: u64) {
        let mut times = self.log_times.lock().unwrap_or_else(|p| p.into_inner());
        if times.back().is_none_or(|(i, _)| *i < index) {
            times.push_back((index, Instant::now()));
            if times.len() > LOG_TIMES_KEPT {
                times.pop_front();
            }
        }
    }

    /// How long ago the leader's log first held an entry past `matched` (0 when the
    /// follower has everything the leader's log had).
    pub fn lag_ms(&self, matched: u64, last: u64) -> u64 {
        if matched >= last {
            return 0;
        }
        let times = self.log_times.lock().unwrap_or_else(|p| p.into_inner());
        times
            .iter()
            .find(|(i, _)| *i > matched)
            .or(times.front())
            .map(|(_, t)| t.elapsed().as_millis() as u64)
            .unwrap_or(0)
    }
}

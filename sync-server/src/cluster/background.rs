//! A node's background tasks: following openraft's metrics (elections, when the leader's
//! log reached each index, lag samples for `/metrics`) and, on a follower, probing the
//! leader's log position so the node knows how far behind it is (`max_lag_entries`).

use std::sync::atomic::Ordering;
use std::sync::{Arc, Weak};
use std::time::Duration;

use openraft::ServerState;

use super::node::Cluster;
use super::status::ClusterStatus;

const PROBE_EVERY: Duration = Duration::from_millis(500);
const LAG_SAMPLE_EVERY: Duration = Duration::from_secs(1);

/// Starts the node's background tasks; they end when the node is dropped.
pub fn spawn(cluster: &Arc<Cluster>) {
    tokio::spawn(watch_metrics(Arc::downgrade(cluster)));
    tokio::spawn(probe_leader(Arc::downgrade(cluster)));
}

async fn watch_metrics(cluster: Weak<Cluster>) {
    let Some(mut watch) = cluster.upgrade().map(|c| c.raft.metrics()) else {
        return;
    };
    let mut term = 0;
    let mut last_sample = tokio::time::Instant::now();
    loop {
        {
            let Some(cluster) = cluster.upgrade() else {
                return;
            };
            let m = watch.borrow_and_update().clone();
            if m.current_term > term {
                if term > 0 {
                    crate::metrics::election();
                }
                term = m.current_term;
            }
            let last = m.last_log_index.unwrap_or(0);
            let leading = m.state == ServerState::Leader;
            crate::metrics::positions(
                m.current_term,
                last,
                m.last_applied.map(|l| l.index).unwrap_or(0),
                leading,
            );
            if leading {
                cluster.note_log_index(last);
                cluster.leader_index.store(last, Ordering::Relaxed);
                if last_sample.elapsed() >= LAG_SAMPLE_EVERY {
                    last_sample = tokio::time::Instant::now();
                    for (id, matched) in m.replication.iter().flatten() {
                        if *id != cluster.id {
                            let at = matched.map(|l| l.index).unwrap_or(0);
                            crate::metrics::replication_lag(
                                last.saturating_sub(at),
                                cluster.lag_ms(at, last),
                            );
                        }
                    }
                }
            }
        }
        // Wake on a change, or at least once a second for the lag samples.
        match tokio::time::timeout(LAG_SAMPLE_EVERY, watch.changed()).await {
            Ok(Err(_)) => return,
            _ => continue,
        }
    }
}

async fn probe_leader(cluster: Weak<Cluster>) {
    loop {
        tokio::time::sleep(PROBE_EVERY).await;
        let Some(cluster) = cluster.upgrade() else {
            return;
        };
        if cluster.is_leader() {
            continue;
        }
        let Some(addr) = cluster.leader().and_then(|l| cluster.cluster_addr(l)) else {
            continue;
        };
        let status = cluster
            .peers
            .call::<_, ClusterStatus>(&addr, "/cluster/status", &(), None)
            .await;
        if let Ok(status) = status {
            cluster
                .leader_index
                .store(status.last_log_index, Ordering::Relaxed);
        }
    }
}

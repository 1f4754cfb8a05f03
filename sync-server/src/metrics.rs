//! Prometheus metrics of a relay node (`GET /metrics`): the recorder is installed once per
//! process; the relay and the cluster record through the `metrics` facade with the names
//! below.

use std::sync::OnceLock;
use std::time::Duration;

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// Installs the process's recorder (once; later calls reuse it). `None` if another
/// recorder was installed first (then `/metrics` says so).
pub fn install() -> Option<&'static PrometheusHandle> {
    HANDLE
        .get_or_init(|| {
            let latency = [
                0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0,
            ];
            let lag = [
                0.0, 1.0, 2.0, 5.0, 10.0, 50.0, 100.0, 1000.0, 10_000.0, 100_000.0,
            ];
            PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), &latency)
                .ok()?
                .set_buckets_for_metric(Matcher::Suffix("_entries".into()), &lag)
                .ok()?
                .install_recorder()
                .ok()
        })
        .as_ref()
}

/// The metrics page in Prometheus's text format.
pub fn render() -> String {
    match install() {
        Some(handle) => handle.render(),
        None => "# metrics recorder unavailable in this process\n".into(),
    }
}

/// A consensus entry of `updates` relay entries was committed `latency` after it was
/// proposed.
pub fn committed(updates: usize, latency: Duration) {
    metrics::counter!("concord_commits_total").increment(1);
    metrics::counter!("concord_committed_entries_total").increment(updates as u64);
    metrics::histogram!("concord_commit_latency_seconds").record(latency.as_secs_f64());
}

/// Updates acknowledged to devices.
pub fn acked(updates: u64) {
    metrics::counter!("concord_acks_total").increment(updates);
}

/// A follower's lag behind the leader's log, sampled on the leader.
pub fn replication_lag(entries: u64, ms: u64) {
    metrics::histogram!("concord_replication_lag_entries").record(entries as f64);
    metrics::histogram!("concord_replication_lag_seconds").record(ms as f64 / 1000.0);
}

/// This node saw a new term (an election happened).
pub fn election() {
    metrics::counter!("concord_elections_total").increment(1);
}

/// Gauges sampled when the page is rendered.
pub fn connections(open: usize, queued_frames: usize) {
    metrics::gauge!("concord_connections").set(open as f64);
    metrics::gauge!("concord_fanout_queue_depth").set(queued_frames as f64);
}

/// Positions of this node's log and state machine.
pub fn positions(term: u64, last_log: u64, applied: u64, is_leader: bool) {
    metrics::gauge!("concord_term").set(term as f64);
    metrics::gauge!("concord_last_log_index").set(last_log as f64);
    metrics::gauge!("concord_applied_index").set(applied as f64);
    metrics::gauge!("concord_is_leader").set(if is_leader { 1.0 } else { 0.0 });
}

//! The end of every run, shared by the tests and the benchmark programs: heal every link,
//! revive every node, stop the writers, wait (bounded) until devices and nodes have
//! converged, stop the processes and check what they hold.

use std::time::Duration;

use crate::checker::{check, Report};
use crate::cluster::Cluster;
use crate::error::Result;
use crate::reads::Reader;
use crate::writers::Writers;

/// Heals, converges and checks (with the `reader`'s probes, if one ran, through the
/// convergence); the cluster's processes are stopped afterwards.
pub async fn settle(
    cluster: &mut Cluster,
    mut writers: Writers,
    reader: Option<Reader>,
    limit: Duration,
) -> Result<Report> {
    cluster.heal();
    cluster.revive_all().await?;
    eprintln!(
        "{} settle: healed, every node running",
        crate::nemesis::clock()
    );
    writers.stop_writing();
    writers.wait_written(limit).await?;
    writers.wait_converged(limit).await?;
    cluster.wait_caught_up().await?;
    let reads = match reader {
        Some(r) => r.finish().await,
        None => Vec::new(),
    };
    let devices = writers.finish().await?;
    let samples = cluster.samples();
    let digests = cluster.stop_and_digest().await?;
    Ok(check(&digests, &devices, &samples, &reads))
}

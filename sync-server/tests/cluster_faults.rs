//! The fault suite on real processes (issue 6): real `concord-server` processes, a fault
//! proxy on every link, devices writing throughout, nemeses from a seeded scheduler, and
//! the checker after healing (no acknowledged update lost, nodes identical, devices
//! converged, one leader per term).
//!
//! The standalone test runs the harness against one plain relay (kill -9 and restart, slow
//! and dropped client links). The cluster tests need the relay cluster (`[cluster]` config).

use std::time::Duration;

use concord_testkit::{check, Cluster, ClusterSpec, Nemesis, Scheduler, Timing, WriterSpec, Writers};

const BIN: &str = env!("CARGO_BIN_EXE_concord-server");
const LIMIT: Duration = Duration::from_secs(60);

fn seed() -> u64 {
    std::env::var("CONCORD_FAULT_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(7)
}

/// Writers, `faults` nemeses from `choices`, heal, converge, check.
async fn run(spec: ClusterSpec, writers: WriterSpec, choices: &[Nemesis], faults: usize) {
    let mut cluster = Cluster::start(spec).await.expect("cluster starts");
    let n = cluster.ids().len();
    let urls = |i: usize| cluster.client_urls(i % n);
    let urls: Vec<Vec<String>> = (0..writers.devices).map(urls).collect();
    let mut w = Writers::start(&writers, |i| urls[i].clone(), LIMIT)
        .await
        .expect("writers start");
    let timing = Timing::for_cluster(&cluster);
    let mut scheduler = Scheduler::new(seed(), choices);
    let injected = scheduler
        .run(&mut cluster, faults, &timing, Duration::from_secs(240))
        .await
        .unwrap_or_else(|e| panic!("fault run failed: {e}\n{}", cluster.log_tail(1)));
    cluster.heal();
    cluster.revive_all().await.expect("every node runs again");
    w.wait_written(LIMIT).await.expect("writers finish");
    w.wait_converged(LIMIT).await.expect("devices converge");
    cluster.wait_caught_up().await.expect("nodes catch up");
    let devices = w.finish().await.expect("device records");
    let samples = cluster.samples();
    let digests = cluster.stop_and_digest().await.expect("digests");
    let report = check(&digests, &devices, &samples);
    eprintln!(
        "{} faults ({:?}); {report}",
        injected.len(),
        injected.iter().map(|f| f.nemesis.name()).collect::<Vec<_>>()
    );
    assert_eq!(injected.len(), faults, "every fault was injected");
    assert!(report.acked > 0, "updates were acknowledged: {report}");
    assert!(report.ok(), "{report}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn standalone_relay_survives_restarts_and_link_faults() {
    run(
        ClusterSpec::standalone().binary(BIN),
        WriterSpec {
            devices: 3,
            docs: 4,
            writes_per_device: 120,
            pause: Duration::from_millis(10),
        },
        Nemesis::STANDALONE,
        6,
    )
    .await;
}

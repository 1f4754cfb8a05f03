//! The fault suite on real processes (issue 6): real `concord-server` processes, a fault
//! proxy on every link, devices writing throughout, nemeses from a seeded scheduler, and
//! the checker after healing (no acknowledged update lost, nodes identical, devices
//! converged, one leader per term).
//!
//! The standalone test runs the harness against one plain relay (kill -9 and restart, slow
//! and dropped client links). The cluster tests need the relay cluster (`[cluster]` config).

use std::time::Duration;

use std::collections::BTreeMap;
use std::time::Instant;

use concord_testkit::{
    settle, Cluster, ClusterSpec, Nemesis, Scheduler, Timing, WriterSpec, Writers,
};

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
    let w = Writers::start(&writers, |i| urls[i].clone(), LIMIT)
        .await
        .expect("writers start");
    let reader = w.start_reader(cluster.client_urls(0), Duration::from_millis(100), seed());
    let timing = Timing::for_cluster(&cluster);
    let mut scheduler = Scheduler::new(seed(), choices);
    let injected = scheduler
        .run(&mut cluster, faults, &timing, Duration::from_secs(240))
        .await
        .unwrap_or_else(|e| panic!("fault run failed: {e}\n{}", cluster.log_tail(1)));
    let report = settle(&mut cluster, w, Some(reader), LIMIT)
        .await
        .unwrap_or_else(|e| panic!("the run did not settle: {e}"));
    eprintln!(
        "{} faults ({:?}); {report}",
        injected.len(),
        injected
            .iter()
            .map(|f| f.nemesis.name())
            .collect::<Vec<_>>()
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

/// Waits (bounded) until `done` holds.
async fn wait_until(what: &str, limit: Duration, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn cluster_writers() -> WriterSpec {
    WriterSpec {
        devices: 4,
        docs: 4,
        writes_per_device: 3000,
        pause: Duration::from_millis(25),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fault_suite_three_nodes_twenty_faults() {
    run(
        ClusterSpec::new(3).binary(BIN),
        cluster_writers(),
        Nemesis::CLUSTER,
        20,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fault_suite_five_nodes() {
    run(
        ClusterSpec::new(5).binary(BIN),
        cluster_writers(),
        &[
            Nemesis::KillLeader,
            Nemesis::KillFollower,
            Nemesis::PartitionLeader,
            Nemesis::PauseLeader,
            Nemesis::SlowLinks,
        ],
        6,
    )
    .await;
}

/// Checks the end of a focused scenario: heal, converge, digests, checker.
async fn settle_and_check(mut cluster: Cluster, w: Writers, members: usize) {
    let report = settle(&mut cluster, w, None, LIMIT)
        .await
        .unwrap_or_else(|e| panic!("the run did not settle: {e}"));
    eprintln!("{report}");
    assert_eq!(report.nodes, members);
    assert!(report.acked > 0, "{report}");
    assert!(report.ok(), "{report}");
}

/// Done-when 2: kill -9 of the leader under concurrent writers: a new leader within the
/// election bound, 0 acknowledged updates lost, all nodes identical after the old leader
/// restarts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_leader_under_concurrent_writers_loses_no_acknowledged_update() {
    let spec = ClusterSpec::new(3).binary(BIN);
    let election = spec.election_timeout_max();
    let mut cluster = Cluster::start(spec).await.expect("cluster starts");
    let urls: Vec<Vec<String>> = (0..4).map(|i| cluster.client_urls(i % 3)).collect();
    let w = Writers::start(&cluster_writers(), |i| urls[i].clone(), LIMIT)
        .await
        .expect("writers start");
    wait_until("updates are acknowledged", LIMIT, || w.acked() >= 40).await;

    let old = cluster.wait_for_leader().await.expect("a leader");
    let old_term = cluster.status(old).await.expect("status").term;
    let killed_at = w.elapsed();
    cluster.kill9(old).expect("kill -9");
    // A new leader, bounded by a few election timeouts.
    let deadline = Instant::now() + election * 10;
    let new = loop {
        if let Some(l) = cluster.leader().await {
            if l != old {
                break l;
            }
        }
        assert!(
            Instant::now() < deadline,
            "no new leader after killing {old}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert!(cluster.status(new).await.expect("status").term > old_term);
    // Writes committed after the kill are acknowledged: by the new leader.
    wait_until("a write made after the kill is acknowledged", LIMIT, || {
        w.first_ack_of_write_after(killed_at).is_some()
    })
    .await;
    cluster
        .restart(old)
        .await
        .expect("the old leader restarts on its data");
    settle_and_check(cluster, w, 3).await;
}

/// Done-when 3: a leader partitioned from the majority with its devices attached
/// acknowledges nothing; after healing it follows the new leader and converges, and its
/// devices' updates land through their outboxes exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partitioned_old_leader_acknowledges_nothing_and_converges_after_healing() {
    let spec = ClusterSpec::new(3).binary(BIN);
    let hold = spec.election_timeout_max() * 4;
    let cluster = Cluster::start(spec).await.expect("cluster starts");
    let leader = cluster.wait_for_leader().await.expect("a leader");
    let ids = cluster.ids();
    let leader_pos = ids
        .iter()
        .position(|i| *i == leader)
        .expect("leader is a member");
    // Devices 0 and 1 only know the leader; devices 2 and 3 start on a follower.
    let only_leader = vec![cluster.client_urls(leader_pos)[0].clone()];
    let others = cluster.client_urls(leader_pos + 1);
    let w = Writers::start(
        &cluster_writers(),
        |i| {
            if i < 2 {
                only_leader.clone()
            } else {
                others.clone()
            }
        },
        LIMIT,
    )
    .await
    .expect("writers start");
    wait_until("updates are acknowledged", LIMIT, || w.acked() >= 40).await;

    // What the leader's devices had committed when the partition began: nothing written
    // after it may be acknowledged until the partition heals.
    cluster.partition(leader);
    let at_partition: Vec<BTreeMap<String, (u64, u64)>> =
        (0..2).map(|i| w.progress(i).expect("progress")).collect();
    let new_leader = {
        let deadline = Instant::now() + LIMIT;
        loop {
            if let Some(l) = cluster.leader().await {
                if l != leader {
                    break l;
                }
            }
            assert!(
                Instant::now() < deadline,
                "no new leader on the majority side"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    let partition_ends = Instant::now() + hold;
    while Instant::now() < partition_ends {
        for (i, before) in at_partition.iter().enumerate() {
            for (doc, (committed, acked)) in w.progress(i).expect("progress") {
                let (committed_then, _) = before[&doc];
                assert!(
                    acked <= committed_then,
                    "device {i} of the partitioned leader got an ack for {doc} #{acked} \
                     (committed {committed} now, {committed_then} when the partition began)"
                );
            }
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // The leader's devices did write during the partition (so the check above meant
    // something).
    let grew = (0..2).any(|i| {
        w.progress(i)
            .expect("progress")
            .iter()
            .any(|(doc, (c, _))| *c > at_partition[i][doc].0)
    });
    assert!(grew, "the partitioned leader's devices kept writing");
    cluster.heal();
    // The old leader follows the new one.
    let deadline = Instant::now() + LIMIT;
    loop {
        let s = cluster.status(leader).await;
        if let Ok(s) = s {
            if s.role == "follower" && s.leader.is_some() && s.leader != Some(leader) {
                break;
            }
        }
        assert!(
            Instant::now() < deadline,
            "the old leader {leader} did not step down"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let _ = new_leader;
    settle_and_check(cluster, w, 3).await;
}

/// A leader stopped with SIGSTOP past the election timeout answers again after SIGCONT
/// and takes part in the later term (following its leader, or elected anew).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paused_leader_resumes_and_follows() {
    let spec = ClusterSpec::new(3).binary(BIN);
    let hold = spec.election_timeout_max() * 2;
    let mut cluster = Cluster::start(spec).await.expect("cluster starts");
    let urls: Vec<Vec<String>> = (0..4).map(|i| cluster.client_urls(i % 3)).collect();
    let w = Writers::start(&cluster_writers(), |i| urls[i].clone(), LIMIT)
        .await
        .expect("writers start");
    for round in 0..3 {
        wait_until("updates are acknowledged", LIMIT, || {
            w.acked() >= 40 * (round + 1)
        })
        .await;
        let leader = cluster.wait_for_leader().await.expect("a leader");
        let term = cluster.status(leader).await.expect("leader status").term;
        cluster.pause(leader).expect("SIGSTOP");
        tokio::time::sleep(hold).await;
        // Past the election timeout the others elect a leader in a later term; on a busy
        // machine that can take longer than the timeout, so wait for it (bounded) rather
        // than resume into a term nobody has left yet.
        let deadline = Instant::now() + LIMIT;
        'elected: loop {
            for node in (1..=3u64).filter(|n| *n != leader) {
                if let Ok(s) = cluster.status(node).await {
                    if s.role == "leader" && s.term > term {
                        break 'elected;
                    }
                }
            }
            assert!(
                Instant::now() < deadline,
                "round {round}: no leader elected while node {leader} was stopped"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        cluster.resume(leader).expect("SIGCONT");
        // The others elected a leader in a later term while it was stopped; back, it knows
        // that term and a leader (which may be itself again, elected anew in a later term).
        let deadline = Instant::now() + LIMIT;
        loop {
            match cluster.status(leader).await {
                Ok(s) if s.term > term && s.leader.is_some() => break,
                s => assert!(
                    Instant::now() < deadline,
                    "round {round}: node {leader} after SIGCONT: {s:?}\n{}",
                    cluster.log_tail(leader)
                ),
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    settle_and_check(cluster, w, 3).await;
}

//! The nemeses — each one fault injected, held, healed, and the cluster waited on until it
//! has a leader again — and a scheduler that picks them from a seeded RNG. Every wait is
//! bounded (the cluster spec's `wait`).

use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::cluster::Cluster;
use crate::error::Result;

/// The faults the suite injects.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Nemesis {
    /// kill -9 the leader, restart it on its data after a while.
    KillLeader,
    /// kill -9 a follower, restart it.
    KillFollower,
    /// SIGSTOP the leader past the election timeout, then SIGCONT.
    PauseLeader,
    /// Blackhole every node link of the leader, its clients kept attached; heal.
    PartitionLeader,
    /// Partition a follower long enough for the log to be purged past it (snapshot install).
    PartitionFollowerLong,
    /// Delay every node→node and client link.
    SlowLinks,
    /// kill -9 and restart a random node at once (restart with data).
    RestartNode,
    /// Add a node under load, then remove one (never below the initial size).
    AddRemoveNode,
    /// Drop every client connection (devices reconnect and resend).
    DropClients,
}

impl Nemesis {
    /// Every nemesis of a cluster.
    pub const CLUSTER: &'static [Nemesis] = &[
        Nemesis::KillLeader,
        Nemesis::KillFollower,
        Nemesis::PauseLeader,
        Nemesis::PartitionLeader,
        Nemesis::PartitionFollowerLong,
        Nemesis::SlowLinks,
        Nemesis::RestartNode,
        Nemesis::AddRemoveNode,
        Nemesis::DropClients,
    ];

    /// The nemeses that make sense for one standalone relay.
    pub const STANDALONE: &'static [Nemesis] = &[
        Nemesis::RestartNode,
        Nemesis::SlowLinks,
        Nemesis::DropClients,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Nemesis::KillLeader => "kill-leader",
            Nemesis::KillFollower => "kill-follower",
            Nemesis::PauseLeader => "pause-leader",
            Nemesis::PartitionLeader => "partition-leader",
            Nemesis::PartitionFollowerLong => "partition-follower-long",
            Nemesis::SlowLinks => "slow-links",
            Nemesis::RestartNode => "restart-node",
            Nemesis::AddRemoveNode => "add-remove-node",
            Nemesis::DropClients => "drop-clients",
        }
    }
}

/// How long faults are held (scaled to the election timeout by the caller).
#[derive(Debug, Clone)]
pub struct Timing {
    /// How long a node stays down / paused / partitioned.
    pub hold: Duration,
    /// How long a follower stays partitioned to need a snapshot.
    pub long_hold: Duration,
    /// Pause between two faults (the cluster under load, no fault).
    pub calm: Duration,
    /// Delay per chunk on slow links.
    pub slow: Duration,
}

impl Timing {
    /// Defaults for a cluster spec: hold past the election timeout.
    pub fn for_cluster(cluster: &Cluster) -> Timing {
        let election = cluster.spec.election_timeout_max();
        Timing {
            hold: election * 2,
            long_hold: election * 5,
            calm: election,
            slow: Duration::from_millis(20),
        }
    }
}

/// What one injected fault did.
#[derive(Debug, Clone)]
pub struct Fault {
    pub nemesis: Nemesis,
    /// The node it hit (if one).
    pub node: Option<u64>,
    /// When it was injected (since the cluster started).
    pub at: Duration,
}

/// The UTC time of day, `HH:MM:SS.mmm`, to match the nodes' logs.
pub fn clock() -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let ms = now.as_millis() % 86_400_000;
    format!(
        "{:02}:{:02}:{:02}.{:03}",
        ms / 3_600_000,
        ms / 60_000 % 60,
        ms / 1000 % 60,
        ms % 1000
    )
}

/// Notes a step of a fault on stderr (shown for failed tests, with the nodes' logs'
/// times): `CONCORD_KEEP_CLUSTER` keeps those logs.
fn note(what: &str) {
    eprintln!("{} nemesis: {what}", clock());
}

/// Injects `nemesis`, holds it, heals, and waits until the cluster has a leader again.
pub async fn inject(
    cluster: &mut Cluster,
    nemesis: Nemesis,
    timing: &Timing,
    rng: &mut StdRng,
) -> Result<Fault> {
    let at = cluster.elapsed();
    let standalone = cluster.spec.standalone;
    let node = match nemesis {
        Nemesis::KillLeader => {
            let leader = cluster.wait_for_leader().await?;
            note(&format!("kill -9 leader {leader}"));
            cluster.kill9(leader)?;
            tokio::time::sleep(timing.hold).await;
            cluster.wait_for_leader().await?;
            cluster.restart(leader).await?;
            note(&format!("restarted {leader}"));
            Some(leader)
        }
        Nemesis::KillFollower => {
            let followers = cluster.followers().await?;
            let f = followers[rng.random_range(0..followers.len())];
            note(&format!("kill -9 follower {f}"));
            cluster.kill9(f)?;
            tokio::time::sleep(timing.hold).await;
            cluster.restart(f).await?;
            note(&format!("restarted {f}"));
            Some(f)
        }
        Nemesis::PauseLeader => {
            let leader = cluster.wait_for_leader().await?;
            note(&format!("SIGSTOP leader {leader}"));
            cluster.pause(leader)?;
            tokio::time::sleep(timing.hold).await;
            cluster.resume(leader)?;
            note(&format!("SIGCONT {leader}"));
            Some(leader)
        }
        Nemesis::PartitionLeader => {
            let leader = cluster.wait_for_leader().await?;
            note(&format!("partition leader {leader}"));
            cluster.partition(leader);
            tokio::time::sleep(timing.hold).await;
            cluster.heal();
            note("healed");
            Some(leader)
        }
        Nemesis::PartitionFollowerLong => {
            let followers = cluster.followers().await?;
            let f = followers[rng.random_range(0..followers.len())];
            note(&format!("long partition of follower {f}"));
            cluster.partition(f);
            tokio::time::sleep(timing.long_hold).await;
            cluster.heal();
            note("healed");
            Some(f)
        }
        Nemesis::SlowLinks => {
            note("slow links");
            cluster.slow_node_links(timing.slow);
            cluster.slow_client_links(timing.slow);
            tokio::time::sleep(timing.hold).await;
            cluster.heal();
            None
        }
        Nemesis::RestartNode => {
            let ids = cluster.ids();
            let id = ids[rng.random_range(0..ids.len())];
            note(&format!("restart {id}"));
            cluster.kill9(id)?;
            tokio::time::sleep(timing.hold / 4).await;
            cluster.restart(id).await?;
            note(&format!("restarted {id}"));
            Some(id)
        }
        Nemesis::AddRemoveNode => {
            let added = cluster.add_node().await?;
            note(&format!("added {added}"));
            tokio::time::sleep(timing.hold).await;
            // Remove a follower other than the new one (the membership keeps its size).
            let followers = cluster.followers().await?;
            let candidates: Vec<u64> = followers.into_iter().filter(|f| *f != added).collect();
            let victim = candidates[rng.random_range(0..candidates.len())];
            cluster.remove_node(victim).await?;
            note(&format!("removed {victim}"));
            Some(victim)
        }
        Nemesis::DropClients => {
            note("drop client connections");
            for id in cluster.ids() {
                if let Some(p) = cluster.client_link(id) {
                    p.drop_all();
                }
            }
            tokio::time::sleep(timing.hold / 4).await;
            cluster.heal();
            None
        }
    };
    if !standalone {
        let leader = cluster.wait_for_leader().await?;
        note(&format!("{} done; leader {leader}", nemesis.name()));
    }
    Ok(Fault { nemesis, node, at })
}

/// Picks nemeses from a seeded RNG.
pub struct Scheduler {
    pub rng: StdRng,
    choices: Vec<Nemesis>,
}

impl Scheduler {
    pub fn new(seed: u64, choices: &[Nemesis]) -> Scheduler {
        Scheduler {
            rng: StdRng::seed_from_u64(seed),
            choices: choices.to_vec(),
        }
    }

    pub fn pick(&mut self) -> Nemesis {
        self.choices[self.rng.random_range(0..self.choices.len())]
    }

    /// Runs `count` faults (a calm pause after each), stopping early after `limit`.
    /// Returns the faults injected.
    pub async fn run(
        &mut self,
        cluster: &mut Cluster,
        count: usize,
        timing: &Timing,
        limit: Duration,
    ) -> Result<Vec<Fault>> {
        let deadline = tokio::time::Instant::now() + limit;
        let mut faults = Vec::new();
        for _ in 0..count {
            if tokio::time::Instant::now() > deadline {
                break;
            }
            let nemesis = self.pick();
            let fault = inject(cluster, nemesis, timing, &mut self.rng).await?;
            tracing::info!(nemesis = fault.nemesis.name(), node = ?fault.node, "fault injected");
            faults.push(fault);
            tokio::time::sleep(timing.calm).await;
        }
        Ok(faults)
    }
}

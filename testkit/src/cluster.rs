//! N real `concord-server` processes on loopback with a fault proxy on every link: node i
//! dials node j through proxy (i, j) (the node's `[cluster.dial]`), and clients reach node i
//! through its client proxy. Controls: kill -9, SIGSTOP / SIGCONT, restart on the same
//! data, partition a node (blackhole all its node links both ways, its client link kept),
//! slow links, heal; add and remove a node through the operator endpoints. An observer polls
//! `GET /cluster` on every node directly and keeps the samples (one leader per term check).
//!
//! With [`ClusterSpec::standalone`] it runs one node without a `[cluster]` section (today's
//! single relay), with its client proxy: the harness's pieces work against it.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use concord_server::cluster::PeerSettings;
pub use concord_server::cluster::{ClusterSettings, WriteConcern};
use concord_server::ServerConfig;
use serde::Deserialize;

use crate::digest::Digest;
use crate::error::{Result, TestkitError};
use crate::http;
use crate::node::{server_binary, NodeProcess};
use crate::ports::free_addr;
use crate::proxy::Proxy;

/// How long an operator's membership change may take under faults (the server's own bound
/// for one leader's attempt).
const MEMBERSHIP_WAIT: Duration = Duration::from_secs(120);

/// How to build the cluster.
#[derive(Debug, Clone)]
pub struct ClusterSpec {
    pub nodes: u64,
    /// No `[cluster]` section: one plain relay (`nodes` must be 1).
    pub standalone: bool,
    /// The `[cluster]` settings every node shares (secret, timeouts, write concern,
    /// snapshots); `node_id`, `listen`, `bootstrap`, `peers` and `dial` are filled in per
    /// node when its config file is written.
    pub settings: ClusterSettings,
    /// A fault proxy on every node→node link (default). Without, nodes dial each other
    /// directly (benchmarks: no proxy hop in a replication round trip); the link nemeses
    /// then have nothing to cut.
    pub node_proxies: bool,
    /// Bound on any single wait (startup, a leader to appear).
    pub wait: Duration,
    /// How often the observer polls `/cluster`.
    pub sample_every: Duration,
    /// The `concord-server` binary (else [`server_binary`]'s lookup).
    pub binary: Option<PathBuf>,
}

impl ClusterSpec {
    /// A cluster of `nodes` with short timeouts and frequent snapshots (so a partitioned
    /// follower falls behind the purged log quickly). The heartbeat is not shorter than
    /// 200 ms: openraft 0.9 bounds every AppendEntries call by the heartbeat interval, and on
    /// a loaded 2-core machine 100 ms made replication time out over and over (elections
    /// churned for a minute after healing).
    pub fn new(nodes: u64) -> ClusterSpec {
        ClusterSpec {
            nodes,
            standalone: false,
            settings: ClusterSettings {
                secret: "cluster-secret".into(),
                heartbeat_ms: 200,
                snapshot_logs: 50,
                keep_logs: 10,
                ..ClusterSettings::default()
            },
            node_proxies: true,
            wait: Duration::from_secs(30),
            sample_every: Duration::from_millis(100),
            binary: None,
        }
    }

    /// One plain relay, no consensus.
    pub fn standalone() -> ClusterSpec {
        ClusterSpec {
            standalone: true,
            ..ClusterSpec::new(1)
        }
    }

    pub fn write_concern(mut self, concern: WriteConcern) -> ClusterSpec {
        self.settings.write_concern = concern;
        self
    }

    /// The longest election timeout the nodes use.
    pub fn election_timeout_max(&self) -> Duration {
        Duration::from_millis(self.settings.election_timeout_max_ms)
    }

    /// Nodes dial each other directly, with no fault proxy between them.
    pub fn direct_node_links(mut self) -> ClusterSpec {
        self.node_proxies = false;
        self
    }

    /// Runs this `concord-server` binary (tests pass `env!("CARGO_BIN_EXE_concord-server")`).
    pub fn binary(mut self, path: impl Into<PathBuf>) -> ClusterSpec {
        self.binary = Some(path.into());
        self
    }
}

/// `GET /cluster` as a node answers it (unknown fields ignored, missing ones defaulted).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct ClusterStatus {
    pub node_id: u64,
    pub role: String,
    pub term: u64,
    pub leader: Option<u64>,
    pub commit_index: u64,
    pub applied_index: u64,
    pub last_log_index: u64,
    pub voters: Vec<u64>,
    pub learners: Vec<u64>,
    pub serving: bool,
    pub snapshot_index: Option<u64>,
    pub purged_index: Option<u64>,
}

/// One observation of one node.
#[derive(Debug, Clone)]
pub struct Sample {
    /// Time since the cluster started.
    pub at: Duration,
    pub node: u64,
    pub status: ClusterStatus,
}

/// One node's addresses and process.
pub struct Node {
    pub id: u64,
    pub client_addr: SocketAddr,
    pub cluster_addr: SocketAddr,
    pub process: NodeProcess,
    /// Removed from the membership: no longer compared by the checker.
    pub removed: bool,
}

/// The running cluster. Dropping it kills every process.
pub struct Cluster {
    pub spec: ClusterSpec,
    dir: tempfile::TempDir,
    binary: PathBuf,
    started: Instant,
    nodes: BTreeMap<u64, Node>,
    /// (from, to) → the proxy node `from` dials node `to` through; `from` 0 is the shared
    /// proxy every node dials an added node through.
    links: BTreeMap<(u64, u64), Proxy>,
    /// node → the proxy clients reach it through.
    client_links: BTreeMap<u64, Proxy>,
    samples: Arc<Mutex<Vec<Sample>>>,
    sampler: Option<tokio::task::JoinHandle<()>>,
    /// Addresses the sampler polls (shared so added nodes are polled too).
    observed: Arc<Mutex<BTreeMap<u64, SocketAddr>>>,
}

const MAX_SAMPLES: usize = 200_000;

impl Cluster {
    /// Starts every node (the first one bootstraps) and waits for a leader.
    pub async fn start(spec: ClusterSpec) -> Result<Cluster> {
        let binary = match &spec.binary {
            Some(b) => b.clone(),
            None => server_binary()?,
        };
        let mut dir = tempfile::Builder::new()
            .prefix("concord-cluster")
            .tempdir()?;
        if std::env::var_os("CONCORD_KEEP_CLUSTER").is_some() {
            // For debugging a failed run: configs, data and logs stay.
            dir.disable_cleanup(true);
            eprintln!("cluster files kept in {}", dir.path().display());
        }
        let ids: Vec<u64> = (1..=spec.nodes).collect();
        let mut addrs = BTreeMap::new();
        for id in &ids {
            addrs.insert(*id, (free_addr()?, free_addr()?));
        }
        let mut links = BTreeMap::new();
        let mut client_links = BTreeMap::new();
        let any: SocketAddr = "127.0.0.1:0".parse().expect("address");
        for &to in &ids {
            client_links.insert(to, Proxy::start(any, addrs[&to].0).await?);
            if spec.standalone || !spec.node_proxies {
                continue;
            }
            for &from in &ids {
                if from != to {
                    links.insert((from, to), Proxy::start(any, addrs[&to].1).await?);
                }
            }
        }
        let mut cluster = Cluster {
            spec,
            dir,
            binary,
            started: Instant::now(),
            nodes: BTreeMap::new(),
            links,
            client_links,
            samples: Arc::new(Mutex::new(Vec::new())),
            sampler: None,
            observed: Arc::new(Mutex::new(BTreeMap::new())),
        };
        let peers: Vec<(u64, SocketAddr, SocketAddr)> = ids
            .iter()
            .map(|id| (*id, addrs[id].0, addrs[id].1))
            .collect();
        for &id in &ids {
            let (client_addr, cluster_addr) = addrs[&id];
            let text = cluster.config_text(id, client_addr, cluster_addr, &peers, id == 1);
            let process = NodeProcess::new(
                id,
                cluster.binary.clone(),
                &cluster.dir.path().join(format!("n{id}")),
                &text,
                client_addr,
            )?;
            cluster.nodes.insert(
                id,
                Node {
                    id,
                    client_addr,
                    cluster_addr,
                    process,
                    removed: false,
                },
            );
        }
        let wait = cluster.spec.wait;
        for node in cluster.nodes.values_mut() {
            node.process.start(wait).await?;
            cluster
                .observed
                .lock()
                .expect("observed")
                .insert(node.id, node.client_addr);
        }
        cluster.sampler = Some(tokio::spawn(sample_loop(
            cluster.observed.clone(),
            cluster.samples.clone(),
            cluster.started,
            cluster.spec.sample_every,
        )));
        if !cluster.spec.standalone {
            cluster.wait_for_leader().await?;
        }
        Ok(cluster)
    }

    fn config_text(
        &self,
        id: u64,
        client: SocketAddr,
        cluster_addr: SocketAddr,
        peers: &[(u64, SocketAddr, SocketAddr)],
        bootstrap: bool,
    ) -> String {
        let cluster = (!self.spec.standalone).then(|| ClusterSettings {
            node_id: id,
            listen: cluster_addr,
            bootstrap,
            peers: peers
                .iter()
                .map(|(pid, pclient, pcluster)| PeerSettings {
                    id: *pid,
                    client: pclient.to_string(),
                    cluster: pcluster.to_string(),
                })
                .collect(),
            dial: self
                .links
                .iter()
                .filter(|((from, _), _)| *from == id)
                .map(|((_, to), proxy)| (to.to_string(), proxy.addr().to_string()))
                .collect(),
            ..self.spec.settings.clone()
        });
        let config = ServerConfig {
            listen: client,
            data_dir: self.dir.path().join(format!("n{id}")).join("data"),
            cluster,
            ..ServerConfig::default()
        };
        toml::to_string(&config).expect("a server config serializes to TOML")
    }

    pub fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }

    /// Ids of the nodes in the cluster (not removed).
    pub fn ids(&self) -> Vec<u64> {
        self.nodes
            .values()
            .filter(|n| !n.removed)
            .map(|n| n.id)
            .collect()
    }

    pub fn node(&self, id: u64) -> Option<&Node> {
        self.nodes.get(&id)
    }

    /// The sync URLs of every node through its client proxy, starting at `first` (each
    /// device gets its own order, so devices spread over the nodes).
    pub fn client_urls(&self, first: usize) -> Vec<String> {
        let ids = self.ids();
        (0..ids.len())
            .map(|k| ids[(first + k) % ids.len()])
            .map(|id| format!("ws://{}/sync", self.client_links[&id].addr()))
            .collect()
    }

    /// The sync URL of node `id`'s own client port, bypassing its client proxy.
    pub fn direct_client_url(&self, id: u64) -> Option<String> {
        self.nodes
            .get(&id)
            .map(|n| format!("ws://{}/sync", n.client_addr))
    }

    /// The proxy node `from` dials node `to` through (cut it to stop that direction only).
    pub fn link(&self, from: u64, to: u64) -> Option<&Proxy> {
        self.links.get(&(from, to))
    }

    /// The client proxy of node `id`.
    pub fn client_link(&self, id: u64) -> Option<&Proxy> {
        self.client_links.get(&id)
    }

    /// Every proxy on a node→node link touching `id` (both directions).
    fn node_links(&self, id: u64) -> impl Iterator<Item = &Proxy> {
        self.links
            .iter()
            .filter(move |((from, to), _)| *from == id || *to == id)
            .map(|(_, p)| p)
    }

    /// `GET /cluster` on node `id` (directly, not through a proxy).
    pub async fn status(&self, id: u64) -> Result<ClusterStatus> {
        let node = self.nodes.get(&id).ok_or_else(|| no_node(id))?;
        let r = http::get(node.client_addr, "/cluster", Duration::from_millis(800)).await?;
        Ok(serde_json::from_str(&r.body)?)
    }

    /// The leader as the running, unpaused nodes agree on it: a node that says it is the
    /// leader and that a majority of the answering nodes name.
    pub async fn leader(&self) -> Option<u64> {
        let mut named: BTreeMap<u64, usize> = BTreeMap::new();
        let mut claims = Vec::new();
        let mut answered = 0;
        for id in self.ids() {
            let n = &self.nodes[&id];
            if !n.process.is_running() || n.process.is_paused() {
                continue;
            }
            if let Ok(s) = self.status(id).await {
                answered += 1;
                if let Some(l) = s.leader {
                    *named.entry(l).or_default() += 1;
                }
                if s.role == "leader" {
                    claims.push((s.term, id));
                }
            }
        }
        claims.sort();
        let (_, id) = *claims.last()?;
        (named.get(&id).copied().unwrap_or(0) * 2 > answered).then_some(id)
    }

    /// Waits (bounded by the spec's wait) until there is an agreed leader.
    pub async fn wait_for_leader(&self) -> Result<u64> {
        let deadline = Instant::now() + self.spec.wait;
        loop {
            if let Some(id) = self.leader().await {
                return Ok(id);
            }
            if Instant::now() > deadline {
                return Err(TestkitError::Timeout {
                    what: "a leader is elected".into(),
                    limit: self.spec.wait,
                });
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Followers (running, in the membership) of the current leader.
    pub async fn followers(&self) -> Result<Vec<u64>> {
        let leader = self.wait_for_leader().await?;
        Ok(self.ids().into_iter().filter(|id| *id != leader).collect())
    }

    /// Waits until every running node has applied what the leader committed (bounded).
    pub async fn wait_caught_up(&self) -> Result<()> {
        if self.spec.standalone {
            return Ok(());
        }
        let deadline = Instant::now() + self.spec.wait;
        loop {
            let leader = self.wait_for_leader().await?;
            let commit = self.status(leader).await.map(|s| s.commit_index).ok();
            let mut seen = vec![format!("leader {leader} commit {commit:?}")];
            let mut all = commit.is_some();
            for id in self.ids() {
                if !all {
                    break;
                }
                all = match self.status(id).await {
                    Ok(s) => {
                        seen.push(format!("n{id} applied {}", s.applied_index));
                        Some(s.applied_index) >= commit
                    }
                    Err(e) => {
                        seen.push(format!("n{id}: {e}"));
                        false
                    }
                };
            }
            if all {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(TestkitError::Timeout {
                    what: format!(
                        "every node applied the leader's commit index (last seen: {})",
                        seen.join(", ")
                    ),
                    limit: self.spec.wait,
                });
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub fn kill9(&mut self, id: u64) -> Result<()> {
        self.nodes
            .get_mut(&id)
            .ok_or_else(|| no_node(id))?
            .process
            .kill9();
        Ok(())
    }

    pub fn pause(&mut self, id: u64) -> Result<()> {
        self.nodes
            .get_mut(&id)
            .ok_or_else(|| no_node(id))?
            .process
            .pause()
    }

    pub fn resume(&mut self, id: u64) -> Result<()> {
        self.nodes
            .get_mut(&id)
            .ok_or_else(|| no_node(id))?
            .process
            .resume()
    }

    /// Starts node `id` again on its data (kill -9 first if it runs).
    pub async fn restart(&mut self, id: u64) -> Result<()> {
        let wait = self.spec.wait;
        let node = self.nodes.get_mut(&id).ok_or_else(|| no_node(id))?;
        node.process.kill9();
        node.process.start(wait).await
    }

    /// Starts every node that is down (not removed) and resumes every paused one.
    pub async fn revive_all(&mut self) -> Result<()> {
        for id in self.ids() {
            let n = &self.nodes[&id];
            if n.process.is_paused() {
                self.resume(id)?;
            } else if !n.process.is_running() {
                self.restart(id).await?;
            }
        }
        Ok(())
    }

    /// Cuts node `id` off from every other node (both directions hang); its client link
    /// stays, so its devices stay attached.
    pub fn partition(&self, id: u64) {
        for p in self.node_links(id) {
            p.blackhole();
        }
    }

    /// Delays every node→node link by `delay` each way.
    pub fn slow_node_links(&self, delay: Duration) {
        for p in self.links.values() {
            p.delay(delay, delay);
        }
    }

    /// Delays every client link by `delay` each way.
    pub fn slow_client_links(&self, delay: Duration) {
        for p in self.client_links.values() {
            p.delay(delay, delay);
        }
    }

    /// Every link back to a plain pass-through.
    pub fn heal(&self) {
        for p in self.links.values().chain(self.client_links.values()) {
            p.heal();
        }
    }

    /// A membership change through the current leader, as an operator would make it: sent
    /// again (up to 3 times) while the cluster answers 503 (no leader to carry it out).
    async fn change_membership(&self, path: &str, body: &str) -> Result<String> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            let leader = self.wait_for_leader().await?;
            match self.admin(leader, "POST", path, body).await {
                Err(TestkitError::Http { message, .. })
                    if attempt < 3 && message.starts_with("status 503") =>
                {
                    eprintln!(
                        "{} {path} answered {message}; again",
                        crate::nemesis::clock()
                    );
                }
                other => return other,
            }
        }
    }

    /// Sends an operator request to node `via`'s cluster port. A membership change blocks
    /// until the learner caught up and both configurations committed, following leadership
    /// (the server bounds it at 120 s per leader): it gets that long, not [`ClusterSpec::wait`].
    pub async fn admin(&self, via: u64, method: &str, path: &str, body: &str) -> Result<String> {
        let node = self.nodes.get(&via).ok_or_else(|| no_node(via))?;
        let timeout = if path == "/admin/add" || path == "/admin/remove" {
            MEMBERSHIP_WAIT.max(self.spec.wait)
        } else {
            self.spec.wait
        };
        let r = http::request(
            node.cluster_addr,
            method,
            path,
            Some(&self.spec.settings.secret),
            Some(body),
            timeout,
        )
        .await?;
        if r.status / 100 != 2 {
            return Err(TestkitError::Http {
                addr: node.cluster_addr,
                path: path.into(),
                message: format!("status {}: {}", r.status, r.body),
            });
        }
        Ok(r.body)
    }

    /// Starts a new node and adds it through the leader (`/admin/add` returns once it is a
    /// voter). Other nodes dial it through one shared proxy (0, id); it dials them through
    /// its own proxies. Returns its id.
    pub async fn add_node(&mut self) -> Result<u64> {
        let id = self.nodes.keys().max().copied().unwrap_or(0) + 1;
        let (client_addr, cluster_addr) = (free_addr()?, free_addr()?);
        let any: SocketAddr = "127.0.0.1:0".parse().expect("address");
        let existing = self.ids();
        for &to in &existing {
            let target = self.nodes[&to].cluster_addr;
            self.links
                .insert((id, to), Proxy::start(any, target).await?);
        }
        let inbound = Proxy::start(any, cluster_addr).await?;
        let inbound_addr = inbound.addr();
        self.links.insert((0, id), inbound);
        self.client_links
            .insert(id, Proxy::start(any, client_addr).await?);
        let peers: Vec<_> = existing
            .iter()
            .map(|i| (*i, self.nodes[i].client_addr, self.nodes[i].cluster_addr))
            .collect();
        let text = self.config_text(id, client_addr, cluster_addr, &peers, false);
        let mut process = NodeProcess::new(
            id,
            self.binary.clone(),
            &self.dir.path().join(format!("n{id}")),
            &text,
            client_addr,
        )?;
        process.start(self.spec.wait).await?;
        self.nodes.insert(
            id,
            Node {
                id,
                client_addr,
                cluster_addr,
                process,
                removed: false,
            },
        );
        self.observed
            .lock()
            .expect("observed")
            .insert(id, client_addr);
        let body =
            format!("{{\"id\":{id},\"client\":\"{client_addr}\",\"cluster\":\"{inbound_addr}\"}}");
        self.change_membership("/admin/add", &body).await?;
        Ok(id)
    }

    /// Removes node `id` from the membership through the leader, then stops it.
    pub async fn remove_node(&mut self, id: u64) -> Result<()> {
        self.change_membership("/admin/remove", &format!("{{\"id\":{id}}}"))
            .await?;
        let node = self.nodes.get_mut(&id).ok_or_else(|| no_node(id))?;
        node.removed = true;
        node.process.kill9();
        self.observed.lock().expect("observed").remove(&id);
        // Devices keep the URL lists they were given: the removed node's client address
        // now leads to the newest member (a name moved to the replacement machine), else a
        // long run that replaces every original node leaves them nowhere to go.
        if let Some(newest) = self.ids().into_iter().max() {
            let target = self.nodes[&newest].client_addr;
            for (from, proxy) in &self.client_links {
                if self.nodes.get(from).is_some_and(|n| n.removed) {
                    proxy.retarget(target);
                }
            }
        }
        Ok(())
    }

    /// Every `/cluster` sample taken so far.
    pub fn samples(&self) -> Vec<Sample> {
        self.samples.lock().expect("samples").clone()
    }

    /// Stops the observer and every process (kill -9; storage is durable at every commit),
    /// then reads each member's digest offline.
    pub async fn stop_and_digest(&mut self) -> Result<BTreeMap<u64, Digest>> {
        if let Some(s) = self.sampler.take() {
            s.abort();
        }
        for node in self.nodes.values_mut() {
            if node.process.is_paused() {
                node.process.resume()?;
            }
            node.process.kill9();
        }
        let mut out = BTreeMap::new();
        for node in self.nodes.values().filter(|n| !n.removed) {
            out.insert(node.id, node.process.digest()?);
        }
        Ok(out)
    }

    /// The tail of node `id`'s log (for failure messages).
    pub fn log_tail(&self, id: u64) -> String {
        self.nodes
            .get(&id)
            .map(|n| n.process.log_tail(6000))
            .unwrap_or_default()
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        if let Some(s) = self.sampler.take() {
            s.abort();
        }
    }
}

fn no_node(id: u64) -> TestkitError {
    TestkitError::Node {
        node: id,
        message: "no such node".into(),
    }
}

async fn sample_loop(
    observed: Arc<Mutex<BTreeMap<u64, SocketAddr>>>,
    samples: Arc<Mutex<Vec<Sample>>>,
    started: Instant,
    every: Duration,
) {
    loop {
        let targets: Vec<(u64, SocketAddr)> = observed
            .lock()
            .expect("observed")
            .iter()
            .map(|(k, v)| (*k, *v))
            .collect();
        let polls = targets.into_iter().map(|(node, addr)| async move {
            let r = http::get(addr, "/cluster", Duration::from_millis(300))
                .await
                .ok()?;
            let status: ClusterStatus = serde_json::from_str(&r.body).ok()?;
            Some((node, status))
        });
        let results = futures_join(polls).await;
        {
            let mut s = samples.lock().expect("samples");
            for (node, status) in results.into_iter().flatten() {
                if s.len() < MAX_SAMPLES {
                    s.push(Sample {
                        at: started.elapsed(),
                        node,
                        status,
                    });
                }
            }
        }
        tokio::time::sleep(every).await;
    }
}

/// Runs the futures concurrently (spawned) and collects their outputs in order.
async fn futures_join<F, T>(futures: impl Iterator<Item = F>) -> Vec<T>
where
    F: std::future::Future<Output = T> + Send + 'static,
    T: Send + 'static,
{
    let handles: Vec<_> = futures.map(tokio::spawn).collect();
    let mut out = Vec::new();
    for h in handles {
        if let Ok(v) = h.await {
            out.push(v);
        }
    }
    out
}

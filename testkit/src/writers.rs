//! Devices writing concurrently for a whole run: each a real `Store` file with the native
//! `SyncClient` syncing through the cluster's client proxies, writing in turn to several
//! documents (Automerge counters and Yrs texts), with a bounded number of writes. Every
//! update written (origin, seq) and every acknowledgement is recorded.
//!
//! An update counts as acknowledged once it has left the outbox (acks are cumulative per
//! origin, so the outbox is a suffix of the device's own updates).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use concord_core::native_client::{sync_once, Acked as ClientAck, Backoff, SyncClient};
use concord_core::sync::{ClientConfig, SyncScope};
use concord_core::{DocKind, Origin, Store, VersionVector};

use crate::error::{Result, TestkitError};

/// What the writers do.
#[derive(Debug, Clone)]
pub struct WriterSpec {
    pub devices: usize,
    /// Documents `doc-0`, `doc-1`, ...: even ones Automerge, odd ones Yrs.
    pub docs: usize,
    /// Upper bound of writes per device.
    pub writes_per_device: u64,
    /// Pause between two writes of one device.
    pub pause: Duration,
}

impl Default for WriterSpec {
    fn default() -> Self {
        WriterSpec {
            devices: 3,
            docs: 4,
            writes_per_device: 200,
            pause: Duration::from_millis(15),
        }
    }
}

/// One update a device committed.
#[derive(Debug, Clone)]
pub struct Written {
    pub doc: String,
    pub seq: u64,
    pub at: Duration,
}

/// One update seen acknowledged (first seen at `at`); `lsn` once the client reports it.
#[derive(Debug, Clone)]
pub struct Acked {
    pub doc: String,
    pub seq: u64,
    pub at: Duration,
    pub lsn: Option<u64>,
}

struct Device {
    store: Store,
    origin: Origin,
    client: Mutex<Option<SyncClient>>,
    written: Mutex<Vec<Written>>,
    acked: Mutex<Vec<Acked>>,
    acked_upto: Mutex<BTreeMap<String, u64>>,
    /// Every acknowledgement the client reported, with its LSN.
    lsn_acks: Arc<Mutex<Vec<LsnAck>>>,
}

/// A device's state at the end of a run, for the checker.
#[derive(Debug, Clone)]
pub struct DeviceRecord {
    pub origin: String,
    pub written: Vec<Written>,
    pub acked: Vec<Acked>,
    /// Per document: version vector (origin → seq), pending updates, JSON content.
    pub docs: BTreeMap<String, (BTreeMap<String, u64>, usize, serde_json::Value)>,
}

/// The writers of one run.
pub struct Writers {
    _dir: tempfile::TempDir,
    started: Instant,
    docs: Vec<(String, DocKind)>,
    devices: Vec<Arc<Device>>,
    /// Stops the writers.
    stop: Arc<AtomicBool>,
    /// Stops the ack tracker (after the writers, once the run has converged).
    stop_tracking: Arc<AtomicBool>,
    writes: Arc<AtomicU64>,
    /// The writers' tasks first (one per device), then the ack tracker's.
    tasks: Vec<tokio::task::JoinHandle<()>>,
    /// How many of the writers' tasks were awaited already.
    written_tasks: usize,
}

fn config() -> ClientConfig {
    ClientConfig {
        token: None,
        scope: SyncScope::Prefix(String::new()),
        ..ClientConfig::default()
    }
}

fn backoff() -> Backoff {
    Backoff {
        initial: Duration::from_millis(20),
        max: Duration::from_millis(300),
    }
}

/// An acknowledgement as the client reported it: `origin`'s updates of `doc` up to `upto`
/// are durable as of log position `lsn`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LsnAck {
    pub origin: String,
    pub doc: String,
    pub upto: u64,
    pub lsn: u64,
}

/// Starts the background client of `store` on the node `urls`, recording every
/// acknowledgement it reports (with its LSN) into `into` (until the client stops).
pub fn spawn_client(store: Store, urls: &[String], into: Arc<Mutex<Vec<LsnAck>>>) -> SyncClient {
    let (client, mut acks) = SyncClient::spawn_with_acks(store, urls.to_vec(), config(), backoff());
    tokio::spawn(async move {
        while let Some(ClientAck {
            doc_id,
            origin,
            upto,
            lsn,
        }) = acks.recv().await
        {
            into.lock().expect("lsn acks").push(LsnAck {
                origin: origin.as_str().to_string(),
                doc: doc_id,
                upto,
                lsn,
            });
        }
    });
    client
}

/// The highest seq of `origin`'s own updates of `doc` that left the outbox.
fn acked_upto(store: &Store, origin: &Origin, doc: &str) -> Result<u64> {
    if store.device_id() == *origin {
        return Ok(store.acknowledged_upto(doc)?);
    }
    // The device took a new origin since: the old one's updates are re-authored, so all
    // of them left the outbox; what was acknowledged of them is in the version vector.
    Ok(store.version_vector(doc)?.get(origin))
}

impl Writers {
    /// Creates the devices and documents (the first device creates them and syncs them
    /// once; the others fetch them), then starts every client and writer. `urls(i)` is
    /// device `i`'s list of node URLs.
    pub async fn start(
        spec: &WriterSpec,
        urls: impl Fn(usize) -> Vec<String>,
        limit: Duration,
    ) -> Result<Writers> {
        let dir = tempfile::Builder::new()
            .prefix("concord-writers")
            .tempdir()?;
        let docs: Vec<(String, DocKind)> = (0..spec.docs)
            .map(|i| {
                let kind = if i % 2 == 0 {
                    DocKind::Automerge
                } else {
                    DocKind::Yrs
                };
                (format!("doc-{i}"), kind)
            })
            .collect();
        let mut devices = Vec::new();
        for i in 0..spec.devices {
            let store = Store::open(dir.path().join(format!("device-{i}.db")))?;
            if i == 0 {
                for (id, kind) in &docs {
                    store.create_doc(id, *kind)?;
                    if *kind == DocKind::Automerge {
                        // One counter object, created once (concurrent creations of a
                        // counter at one key would hide each other's increments).
                        store.transact(id, |tx| tx.increment("n", 0))?;
                    }
                }
            }
            // Every device gets the documents before writing (retried: a cluster may be
            // electing).
            let deadline = Instant::now() + limit;
            let url_list = urls(i);
            let mut attempt = 0usize;
            loop {
                let url = &url_list[attempt % url_list.len()];
                match sync_once(&store, [url.clone()], config(), Duration::from_secs(5)).await {
                    Ok(())
                        if docs
                            .iter()
                            .all(|(d, _)| store.doc_kind(d).ok().flatten().is_some()) =>
                    {
                        break
                    }
                    _ if Instant::now() > deadline => {
                        return Err(TestkitError::Timeout {
                            what: format!("device {i} fetched the documents"),
                            limit,
                        })
                    }
                    _ => {
                        attempt += 1;
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                }
            }
            let origin = store.device_id();
            devices.push(Arc::new(Device {
                store,
                origin,
                client: Mutex::new(None),
                written: Mutex::new(Vec::new()),
                acked: Mutex::new(Vec::new()),
                acked_upto: Mutex::new(BTreeMap::new()),
                lsn_acks: Arc::new(Mutex::new(Vec::new())),
            }));
        }
        let mut writers = Writers {
            _dir: dir,
            started: Instant::now(),
            docs,
            devices,
            stop: Arc::new(AtomicBool::new(false)),
            stop_tracking: Arc::new(AtomicBool::new(false)),
            writes: Arc::new(AtomicU64::new(0)),
            tasks: Vec::new(),
            written_tasks: 0,
        };
        for (i, d) in writers.devices.iter().enumerate() {
            *d.client.lock().expect("client") =
                Some(spawn_client(d.store.clone(), &urls(i), d.lsn_acks.clone()));
        }
        for (i, d) in writers.devices.iter().enumerate() {
            let d = d.clone();
            let docs = writers.docs.clone();
            let stop = writers.stop.clone();
            let writes = writers.writes.clone();
            let started = writers.started;
            let spec = spec.clone();
            writers.tasks.push(tokio::task::spawn_blocking(move || {
                for k in 0..spec.writes_per_device {
                    if stop.load(Ordering::SeqCst) {
                        break;
                    }
                    let (doc, kind) = &docs[(k as usize + i) % docs.len()];
                    let edit = d.store.transact(doc, |tx| match kind {
                        DocKind::Automerge => tx.increment("n", 1),
                        _ => tx.insert_text("text", 0, "x"),
                    });
                    if edit.is_ok() {
                        if let Ok(vv) = d.store.version_vector(doc) {
                            d.written.lock().expect("written").push(Written {
                                doc: doc.clone(),
                                seq: vv.get(&d.origin),
                                at: started.elapsed(),
                            });
                        }
                        writes.fetch_add(1, Ordering::SeqCst);
                    }
                    std::thread::sleep(spec.pause);
                }
            }));
        }
        // The ack tracker: polls every device's outbox.
        let devices = writers.devices.clone();
        let docs = writers.docs.clone();
        let stop = writers.stop_tracking.clone();
        let started = writers.started;
        writers.tasks.push(tokio::task::spawn_blocking(move || {
            // Bounded by the stop flag (set by `finish` or on drop).
            while !stop.load(Ordering::SeqCst) {
                track_acks(&devices, &docs, started);
                std::thread::sleep(Duration::from_millis(10));
            }
            track_acks(&devices, &docs, started);
        }));
        Ok(writers)
    }

    /// Number of devices.
    pub fn devices(&self) -> usize {
        self.devices.len()
    }

    /// Device `i`'s progress per document: (own updates committed, own updates acknowledged).
    pub fn progress(&self, i: usize) -> Result<BTreeMap<String, (u64, u64)>> {
        let d = &self.devices[i];
        let mut out = BTreeMap::new();
        for (doc, _) in &self.docs {
            let committed = d.store.version_vector(doc)?.get(&d.origin);
            out.insert(
                doc.clone(),
                (committed, acked_upto(&d.store, &d.origin, doc)?),
            );
        }
        Ok(out)
    }

    /// Every acknowledgement the clients reported so far, with its LSN.
    pub fn lsn_acks(&self) -> Vec<LsnAck> {
        self.devices
            .iter()
            .flat_map(|d| d.lsn_acks.lock().expect("lsn acks").clone())
            .collect()
    }

    /// Starts a session-guarantee reader over `urls` and these writers' documents, with
    /// `min_lsn` the highest LSN acknowledged so far (see [`crate::reads`]).
    pub fn start_reader(&self, urls: Vec<String>, every: Duration, seed: u64) -> crate::Reader {
        let sources: Vec<Arc<Mutex<Vec<LsnAck>>>> =
            self.devices.iter().map(|d| d.lsn_acks.clone()).collect();
        let acks = move || {
            sources
                .iter()
                .flat_map(|s| s.lock().expect("lsn acks").clone())
                .collect()
        };
        crate::Reader::start(urls, self.docs.clone(), acks, every, seed)
    }

    /// Devices whose store now writes under another origin than at the start (it took a
    /// new one after the relay held updates of its old one that it did not).
    pub fn reoriginated(&self) -> usize {
        self.devices
            .iter()
            .filter(|d| d.store.device_id() != d.origin)
            .count()
    }

    /// Each device's sync client status (for a failure's report).
    pub fn client_states(&self) -> Vec<String> {
        self.devices
            .iter()
            .map(|d| {
                let status = d
                    .client
                    .lock()
                    .expect("client")
                    .as_ref()
                    .map(|c| format!("{:?}", c.status()));
                format!("{}: {status:?}", d.origin)
            })
            .collect()
    }

    /// Time since the writers started.
    pub fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }

    /// Updates committed so far by all devices.
    pub fn writes(&self) -> u64 {
        self.writes.load(Ordering::SeqCst)
    }

    /// Updates seen acknowledged so far.
    pub fn acked(&self) -> usize {
        self.devices
            .iter()
            .map(|d| d.acked.lock().expect("acked").len())
            .sum()
    }

    /// The instant (since start) of the first acknowledgement of an update committed after
    /// `after` (so one that no node could have acknowledged before that instant).
    pub fn first_ack_of_write_after(&self, after: Duration) -> Option<Duration> {
        // Both lists grow in time order: only their tails after `after` are read.
        self.devices
            .iter()
            .filter_map(|d| {
                let written = d.written.lock().expect("written");
                let from = written.partition_point(|w| w.at <= after);
                let fresh: std::collections::BTreeSet<(&str, u64)> = written[from..]
                    .iter()
                    .map(|w| (w.doc.as_str(), w.seq))
                    .collect();
                let acked = d.acked.lock().expect("acked");
                let from = acked.partition_point(|a| a.at <= after);
                acked[from..]
                    .iter()
                    .filter(|a| fresh.contains(&(a.doc.as_str(), a.seq)))
                    .map(|a| a.at)
                    .min()
            })
            .min()
    }

    /// Waits until every writer has done its writes (bounded by `limit`).
    pub async fn wait_written(&mut self, limit: Duration) -> Result<()> {
        let deadline = Instant::now() + limit;
        while self.written_tasks < self.devices.len() {
            let task = &mut self.tasks[self.written_tasks];
            let left = deadline.saturating_duration_since(Instant::now());
            if tokio::time::timeout(left, task).await.is_err() {
                return Err(TestkitError::Timeout {
                    what: "the writers finished".into(),
                    limit,
                });
            }
            self.written_tasks += 1;
        }
        Ok(())
    }

    /// Asks the writers to stop early.
    pub fn stop_writing(&self) {
        self.stop.store(true, Ordering::SeqCst);
    }

    /// Waits until every device has an empty outbox and all devices hold the same
    /// version of every document (bounded by `limit`).
    pub async fn wait_converged(&self, limit: Duration) -> Result<()> {
        let deadline = Instant::now() + limit;
        loop {
            if self.converged()? {
                return Ok(());
            }
            if Instant::now() > deadline {
                let states = self.client_states();
                let split = self.divergence().unwrap_or_else(|e| vec![e.to_string()]);
                return Err(TestkitError::Timeout {
                    what: format!(
                        "the devices converged ({}; differing: {})",
                        states.join("; "),
                        split.join("; ")
                    ),
                    limit,
                });
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Per document whose devices disagree: each device's outbox and the vector entries
    /// where it differs from the first device (for a failed convergence's message).
    fn divergence(&self) -> Result<Vec<String>> {
        let mut out = Vec::new();
        for (doc, _) in &self.docs {
            let mut vectors = Vec::new();
            for d in &self.devices {
                vectors.push((d, d.store.version_vector(doc)?, d.store.pending(doc)?));
            }
            let Some((_, first, _)) = vectors.first() else {
                continue;
            };
            let first = first.clone();
            if vectors.iter().all(|(_, vv, p)| *vv == first && *p == 0) {
                continue;
            }
            let mut per_device = Vec::new();
            for (d, vv, pending) in &vectors {
                let diff: Vec<String> = vv
                    .iter()
                    .chain(first.iter())
                    .map(|(o, _)| o.clone())
                    .collect::<std::collections::BTreeSet<_>>()
                    .into_iter()
                    .filter(|o| vv.get(o) != first.get(o))
                    .map(|o| format!("{o}={} (first {})", vv.get(&o), first.get(&o)))
                    .collect();
                per_device.push(format!(
                    "{} pending {pending} [{}]",
                    d.origin,
                    diff.join(", ")
                ));
            }
            out.push(format!("{doc}: {}", per_device.join(", ")));
        }
        Ok(out)
    }

    fn converged(&self) -> Result<bool> {
        for (doc, _) in &self.docs {
            let mut first: Option<VersionVector> = None;
            for d in &self.devices {
                if d.store.pending(doc)? != 0 {
                    return Ok(false);
                }
                let vv = d.store.version_vector(doc)?;
                match &first {
                    None => first = Some(vv),
                    Some(f) if *f != vv => return Ok(false),
                    Some(_) => {}
                }
            }
        }
        Ok(true)
    }

    /// Stops writers, tracker and clients, and returns every device's record.
    pub async fn finish(mut self) -> Result<Vec<DeviceRecord>> {
        self.stop.store(true, Ordering::SeqCst);
        self.stop_tracking.store(true, Ordering::SeqCst);
        let done = self.written_tasks;
        for task in self.tasks.drain(..).skip(done) {
            let _ = task.await;
        }
        for d in &self.devices {
            let client = d.client.lock().expect("client").take();
            if let Some(c) = client {
                c.stop().await;
            }
        }
        let mut out = Vec::new();
        for d in &self.devices {
            let mut docs = BTreeMap::new();
            for (doc, _) in &self.docs {
                let vv = d.store.version_vector(doc)?;
                let vv = vv
                    .iter()
                    .map(|(o, s)| (o.as_str().to_string(), s))
                    .collect();
                docs.insert(
                    doc.clone(),
                    (vv, d.store.pending(doc)?, d.store.to_json(doc)?),
                );
            }
            let lsn_acks = d.lsn_acks.lock().expect("lsn acks").clone();
            let mut acked = d.acked.lock().expect("acked").clone();
            for a in &mut acked {
                // The first acknowledgement that covered it.
                a.lsn = lsn_acks
                    .iter()
                    .filter(|l| l.doc == a.doc && l.origin == d.origin.as_str() && l.upto >= a.seq)
                    .map(|l| l.lsn)
                    .min();
            }
            out.push(DeviceRecord {
                origin: d.origin.as_str().to_string(),
                written: d.written.lock().expect("written").clone(),
                acked,
                docs,
            });
        }
        Ok(out)
    }
}

impl Drop for Writers {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        self.stop_tracking.store(true, Ordering::SeqCst);
    }
}

fn track_acks(devices: &[Arc<Device>], docs: &[(String, DocKind)], started: Instant) {
    for d in devices {
        for (doc, _) in docs {
            let Ok(upto) = acked_upto(&d.store, &d.origin, doc) else {
                continue;
            };
            let mut seen = d.acked_upto.lock().expect("acked_upto");
            let before = seen.get(doc).copied().unwrap_or(0);
            if upto > before {
                let at = started.elapsed();
                let mut acked = d.acked.lock().expect("acked");
                for seq in before + 1..=upto {
                    acked.push(Acked {
                        doc: doc.clone(),
                        seq,
                        at,
                        lsn: None,
                    });
                }
                seen.insert(doc.clone(), upto);
            }
        }
    }
}

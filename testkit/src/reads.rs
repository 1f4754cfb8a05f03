//! Session-guarantee probes: during a run, a reader subscribes to a document on a node
//! (through its client proxy, like a device) with an empty version and `min_lsn` set to the
//! highest LSN any device has been acknowledged so far. The node must answer state at least
//! that new (its `Catchup` at `lsn >= min_lsn`, holding every update acknowledged at or
//! below it) or a retryable `replica_behind` / `unavailable` — never older state. Every
//! answer is recorded for the checker.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use concord_core::protocol::{self, ErrorCode, Hello, Message, Subscribe, PROTOCOL_VERSION};
use concord_core::{DocKind, Origin, VersionVector};
use futures_util::{SinkExt, StreamExt};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tokio_tungstenite::tungstenite::Message as WsMessage;

use crate::writers::LsnAck;

/// What a node answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReadOutcome {
    /// State at `lsn` with this version vector (origin → seq).
    Served {
        lsn: u64,
        version: BTreeMap<String, u64>,
    },
    /// `replica_behind` or `unavailable`: the client would try another node.
    Refused(String),
    /// No answer (link faulted, node down, timeout).
    Failed(String),
}

/// One probe.
#[derive(Debug, Clone)]
pub struct ReadObservation {
    pub at: Duration,
    pub url: String,
    pub doc: String,
    pub min_lsn: u64,
    pub outcome: ReadOutcome,
}

/// Subscribes to `doc` on `url` with an empty version and `min_lsn`; returns the answer.
pub async fn probe(
    url: &str,
    doc: &str,
    kind: DocKind,
    min_lsn: u64,
    limit: Duration,
) -> ReadOutcome {
    let exchange = async {
        let (mut ws, _) = tokio_tungstenite::connect_async(url)
            .await
            .map_err(|e| e.to_string())?;
        let send = |m: Message| WsMessage::Binary(protocol::encode(&m).into());
        ws.send(send(Message::Hello(Hello {
            protocol_version: PROTOCOL_VERSION,
            device_id: Origin::from(format!("probe-{}", std::process::id())),
            token: None,
        })))
        .await
        .map_err(|e| e.to_string())?;
        ws.send(send(Message::Subscribe(Subscribe {
            doc_id: doc.to_string(),
            kind,
            version: VersionVector::new(),
            min_lsn,
            linearizable: false,
        })))
        .await
        .map_err(|e| e.to_string())?;
        // Bounded by the timeout around this block.
        while let Some(frame) = ws.next().await {
            let WsMessage::Binary(bytes) = frame.map_err(|e| e.to_string())? else {
                continue;
            };
            match protocol::decode(&bytes).map_err(|e| e.to_string())? {
                Message::Catchup(c) if c.doc_id == doc => {
                    let version = c
                        .server_version
                        .iter()
                        .map(|(o, s)| (o.as_str().to_string(), s))
                        .collect();
                    let _ = ws.close(None).await;
                    return Ok(ReadOutcome::Served {
                        lsn: c.lsn,
                        version,
                    });
                }
                Message::Error(e)
                    if matches!(e.code, ErrorCode::ReplicaBehind | ErrorCode::Unavailable) =>
                {
                    return Ok(ReadOutcome::Refused(e.code.name().to_string()));
                }
                Message::Error(e) => return Err(format!("{}: {}", e.code.name(), e.message)),
                _ => continue,
            }
        }
        Err("closed".to_string())
    };
    match tokio::time::timeout(limit, exchange).await {
        Ok(Ok(outcome)) => outcome,
        Ok(Err(e)) => ReadOutcome::Failed(e),
        Err(_) => ReadOutcome::Failed(format!("no answer within {limit:?}")),
    }
}

/// A background reader probing random nodes and documents until stopped.
pub struct Reader {
    observations: Arc<Mutex<Vec<ReadObservation>>>,
    stop: Arc<AtomicBool>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Reader {
    /// Probes one of `urls` and one of `docs` every `every`, with `min_lsn` the highest LSN
    /// in `acks()` at that moment.
    pub fn start(
        urls: Vec<String>,
        docs: Vec<(String, DocKind)>,
        acks: impl Fn() -> Vec<LsnAck> + Send + 'static,
        every: Duration,
        seed: u64,
    ) -> Reader {
        let observations = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (obs, flag) = (observations.clone(), stop.clone());
        let task = tokio::spawn(async move {
            let started = Instant::now();
            let mut rng = StdRng::seed_from_u64(seed);
            // Bounded by the stop flag; at most 100,000 probes.
            for _ in 0..100_000 {
                if flag.load(Ordering::SeqCst) {
                    break;
                }
                let url = &urls[rng.random_range(0..urls.len())];
                let (doc, kind) = &docs[rng.random_range(0..docs.len())];
                let min_lsn = acks().iter().map(|a| a.lsn).max().unwrap_or(0);
                let outcome = probe(url, doc, *kind, min_lsn, Duration::from_secs(3)).await;
                obs.lock().expect("observations").push(ReadObservation {
                    at: started.elapsed(),
                    url: url.clone(),
                    doc: doc.clone(),
                    min_lsn,
                    outcome,
                });
                tokio::time::sleep(every).await;
            }
        });
        Reader {
            observations,
            stop,
            task: Some(task),
        }
    }

    /// Stops probing and returns every observation.
    pub async fn finish(mut self) -> Vec<ReadObservation> {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.task.take() {
            let _ = t.await;
        }
        self.observations.lock().expect("observations").clone()
    }
}

impl Drop for Reader {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

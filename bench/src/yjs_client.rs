//! The child side of `yjs-load`: a number of y-websocket clients (Yrs documents speaking
//! the y-websocket protocol over tokio-tungstenite) in one process. Each connects to its
//! room, syncs, reports ready, waits for the parent's `go`, then appends its edits to the
//! room's root text `t` — each edit `client.seq@unix_micros;` — while it takes in everyone
//! else's, timing each arrival from the timestamp in the text (fan-out latency). It stops
//! once it holds every edit of its room, or at the deadline, and reports what it saw.

use std::collections::HashSet;
use std::io::BufRead;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result};
use futures_util::{SinkExt, StreamExt};
use serde::{Deserialize, Serialize};
use tokio::sync::watch;
use tokio_tungstenite::tungstenite::Message as WsMessage;
use yrs::sync::{Message, SyncMessage};
use yrs::types::text::TextEvent;
use yrs::types::Delta;
use yrs::updates::decoder::Decode;
use yrs::updates::encoder::Encode;
use yrs::{Any, Doc, GetString, Observable, Out, ReadTxn, Text, Transact, Update};

/// The clients one child runs.
#[derive(Debug, Clone, clap::Args)]
pub struct ClientsArgs {
    /// The y-websocket server URL; a client of room R connects to URL/R.
    #[arg(long)]
    pub url: String,
    /// Room names are PREFIX-<k> for k < docs.
    #[arg(long)]
    pub prefix: String,
    /// This child's clients: ids first..first+count of 0..clients.
    #[arg(long)]
    pub first: usize,
    #[arg(long)]
    pub count: usize,
    #[arg(long)]
    pub clients: usize,
    #[arg(long)]
    pub edits: usize,
    #[arg(long)]
    pub docs: usize,
    /// Pause between one client's edits, ms.
    #[arg(long, default_value_t = 0)]
    pub interval_ms: u64,
    /// Seconds after `go` to give up waiting for convergence.
    #[arg(long)]
    pub timeout: u64,
}

/// What one child saw.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct ChildReport {
    pub sent: u64,
    /// Edits of other clients that should have arrived, and that did.
    pub expected: u64,
    pub received: u64,
    pub converged: u64,
    /// Per converged client, ms from `go` until it held every edit of its room.
    pub converge_ms: Vec<f64>,
    /// Fan-out latencies in µs (every one, or an even subsample past 200,000).
    pub latencies_us: Vec<u64>,
    pub failures: Vec<String>,
}

fn now_micros() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_micros() as u64)
        .unwrap_or(0)
}

/// What a client's text observer records.
#[derive(Default)]
struct Seen {
    ids: HashSet<(u64, u64)>,
    latencies: Vec<u64>,
}

fn record(seen: &Mutex<Seen>, me: u64, inserted: &str) {
    let now = now_micros();
    let mut seen = seen.lock().unwrap();
    for edit in inserted.split(';').filter(|e| !e.is_empty()) {
        let Some((id, at)) = edit.split_once('@') else {
            continue;
        };
        let Some((client, seq)) = id.split_once('.') else {
            continue;
        };
        let (Ok(client), Ok(seq), Ok(at)) = (client.parse(), seq.parse(), at.parse::<u64>()) else {
            continue;
        };
        if client != me && seen.ids.insert((client, seq)) {
            seen.latencies.push(now.saturating_sub(at));
        }
    }
}

/// Sets its flag when dropped: the reader task has ended (the connection closed).
struct SetOnDrop(Arc<std::sync::atomic::AtomicBool>);

impl Drop for SetOnDrop {
    fn drop(&mut self) {
        self.0.store(true, std::sync::atomic::Ordering::Relaxed);
    }
}

struct ClientResult {
    sent: u64,
    expected: u64,
    received: u64,
    converge_ms: Option<f64>,
    latencies: Vec<u64>,
    failure: Option<String>,
}

/// One client: connect, sync, tell `ready`, wait for `go` (its Unix µs), edit, converge.
async fn client(
    args: Arc<ClientsArgs>,
    id: usize,
    ready: tokio::sync::mpsc::UnboundedSender<()>,
    mut go: watch::Receiver<Option<u64>>,
) -> ClientResult {
    let room = id % args.docs;
    let in_room = (0..args.clients).filter(|i| i % args.docs == room).count();
    let expected = ((in_room - 1) * args.edits) as u64;
    let mut result = ClientResult {
        sent: 0,
        expected,
        received: 0,
        converge_ms: None,
        latencies: Vec::new(),
        failure: None,
    };
    let url = format!("{}/{}-{room}", args.url.trim_end_matches('/'), args.prefix);
    let mut socket = None;
    for attempt in 0..20 {
        match tokio_tungstenite::connect_async(&url).await {
            Ok((ws, _)) => {
                socket = Some(ws);
                break;
            }
            Err(e) if attempt == 19 => {
                result.failure = Some(format!("connect {url}: {e}"));
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(50 * (attempt + 1))).await,
        }
    }
    let Some(socket) = socket else {
        let _ = ready.send(());
        return result;
    };
    let (mut sink, mut stream) = socket.split();
    let doc = Doc::new();
    let text = doc.get_or_insert_text("t");
    let seen = Arc::new(Mutex::new(Seen::default()));
    let me = id as u64;
    {
        let seen = seen.clone();
        text.observe("load", move |txn, event: &TextEvent| {
            for delta in event.delta(txn) {
                if let Delta::Inserted(Out::Any(Any::String(s)), _) = delta {
                    record(&seen, me, s);
                }
            }
        });
    }
    let step1 = Message::Sync(SyncMessage::SyncStep1(doc.transact().state_vector()));
    if sink
        .send(WsMessage::Binary(step1.encode_v1().into()))
        .await
        .is_err()
    {
        result.failure = Some("send failed".into());
        let _ = ready.send(());
        return result;
    }
    // The reader applies everything the server sends and answers its sync step 1.
    let (synced_tx, mut synced_rx) = watch::channel(false);
    let (reply_tx, mut reply_rx) = tokio::sync::mpsc::unbounded_channel::<Vec<u8>>();
    let reader_doc = doc.clone();
    let closed = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let reader_closed = closed.clone();
    let reader = tokio::spawn(async move {
        let _closed_on_exit = SetOnDrop(reader_closed);
        while let Some(Ok(frame)) = stream.next().await {
            let WsMessage::Binary(bytes) = frame else {
                continue;
            };
            let Ok(message) = Message::decode_v1(&bytes) else {
                continue;
            };
            match message {
                Message::Sync(SyncMessage::SyncStep1(sv)) => {
                    let diff = reader_doc.transact().encode_state_as_update_v1(&sv);
                    let reply = Message::Sync(SyncMessage::SyncStep2(diff));
                    let _ = reply_tx.send(reply.encode_v1());
                }
                Message::Sync(SyncMessage::SyncStep2(update)) => {
                    if let Ok(update) = Update::decode_v1(&update) {
                        let _ = reader_doc.transact_mut().apply_update(update);
                    }
                    let _ = synced_tx.send(true);
                }
                Message::Sync(SyncMessage::Update(update)) => {
                    if let Ok(update) = Update::decode_v1(&update) {
                        let _ = reader_doc.transact_mut().apply_update(update);
                    }
                }
                _ => {}
            }
        }
    });
    let deadline = tokio::time::Instant::now() + Duration::from_secs(args.timeout.max(10));
    let synced = tokio::time::timeout_at(deadline, async {
        loop {
            tokio::select! {
                reply = reply_rx.recv() => {
                    if let Some(reply) = reply {
                        let _ = sink.send(WsMessage::Binary(reply.into())).await;
                    }
                }
                changed = synced_rx.changed() => {
                    if changed.is_err() || *synced_rx.borrow() {
                        break;
                    }
                }
            }
        }
    })
    .await;
    let _ = ready.send(());
    if synced.is_err() {
        result.failure = Some(format!("{url}: not synced in time"));
        reader.abort();
        return result;
    }
    // Wait for the parent's go (its time, Unix µs).
    let start = loop {
        if let Some(start) = *go.borrow() {
            break start;
        }
        if go.changed().await.is_err() {
            reader.abort();
            return result;
        }
    };
    let deadline = tokio::time::Instant::now() + Duration::from_secs(args.timeout);
    for seq in 0..args.edits {
        let update = {
            let mut txn = doc.transact_mut();
            let at = text.len(&txn);
            text.insert(&mut txn, at, &format!("{id}.{seq}@{};", now_micros()));
            txn.encode_update_v1()
        };
        let message = Message::Sync(SyncMessage::Update(update));
        if sink
            .send(WsMessage::Binary(message.encode_v1().into()))
            .await
            .is_err()
        {
            result.failure = Some(format!("{url}: connection lost while editing"));
            break;
        }
        result.sent += 1;
        while let Ok(reply) = reply_rx.try_recv() {
            let _ = sink.send(WsMessage::Binary(reply.into())).await;
        }
        if args.interval_ms > 0 {
            tokio::time::sleep(Duration::from_millis(args.interval_ms)).await;
        }
    }
    // Converged when every other client's edits of the room are here.
    loop {
        let received = seen.lock().unwrap().ids.len() as u64;
        if received >= expected {
            let done = now_micros();
            result.converge_ms = Some(done.saturating_sub(start) as f64 / 1000.0);
            break;
        }
        if tokio::time::Instant::now() >= deadline {
            break;
        }
        tokio::select! {
            reply = reply_rx.recv() => if let Some(reply) = reply {
                let _ = sink.send(WsMessage::Binary(reply.into())).await;
            },
            _ = tokio::time::sleep(Duration::from_millis(5)) => {}
        }
    }
    if result.converge_ms.is_none() && result.failure.is_none() {
        let why = if closed.load(std::sync::atomic::Ordering::Relaxed) {
            "the server closed the connection"
        } else {
            "not converged by the deadline"
        };
        result.failure = Some(format!("{url}: {why}"));
    }
    reader.abort();
    let _ = sink.close().await;
    let seen = std::mem::take(&mut *seen.lock().unwrap());
    result.received = seen.ids.len() as u64;
    result.latencies = seen.latencies;
    // The text must hold exactly the room's edits (nothing doubled by the server).
    let _ = text.get_string(&doc.transact());
    result
}

/// Runs this child's clients: prints `ready` once all are synced, reads `go <µs>` from
/// stdin, prints the [`ChildReport`] as JSON when done.
pub fn run(args: ClientsArgs) -> Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("tokio runtime")?;
    let args = Arc::new(args);
    runtime.block_on(async move {
        let (ready_tx, mut ready_rx) = tokio::sync::mpsc::unbounded_channel();
        let (go_tx, go_rx) = watch::channel(None);
        let tasks: Vec<_> = (args.first..args.first + args.count)
            .map(|id| tokio::spawn(client(args.clone(), id, ready_tx.clone(), go_rx.clone())))
            .collect();
        for _ in 0..args.count {
            ready_rx.recv().await;
        }
        println!("ready");
        let start = tokio::task::spawn_blocking(|| {
            let mut line = String::new();
            std::io::stdin().lock().read_line(&mut line).ok()?;
            line.trim().strip_prefix("go ")?.parse::<u64>().ok()
        })
        .await
        .ok()
        .flatten()
        .context("no `go` from the parent")?;
        let _ = go_tx.send(Some(start));
        let mut report = ChildReport::default();
        for task in tasks {
            let result = task.await.context("a client task failed")?;
            report.sent += result.sent;
            report.expected += result.expected;
            report.received += result.received;
            if let Some(ms) = result.converge_ms {
                report.converged += 1;
                report.converge_ms.push(ms);
            }
            report.latencies_us.extend(result.latencies);
            report.failures.extend(result.failure);
        }
        if report.latencies_us.len() > 200_000 {
            let step = report.latencies_us.len().div_ceil(200_000);
            report.latencies_us = report.latencies_us.iter().step_by(step).copied().collect();
        }
        println!("{}", serde_json::to_string(&report)?);
        Ok(())
    })
}

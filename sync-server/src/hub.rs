//! Fan-out: which connections follow which documents, and each connection's send queue.
//! Also which connections watch a prefix for new documents (those that listed it: each
//! document created under it later is announced to them, as far as their rights read).
//! Also presence (awareness): each connection's current presence frame per document, shown
//! to the document's other followers on this node and to later ones, withdrawn (its leave
//! frame fanned out) when the connection unfollows or goes. Presence is never stored.
//!
//! A connection's queue is unbounded in type but bounded in policy: when fan-out finds more
//! than `max_queue` frames, or more than [`MAX_QUEUED_BYTES`], waiting for a connection,
//! that connection is marked lagging and closed (with a `slow_consumer` error). It resyncs
//! from its version vector when it reconnects, so a slow client is never silently skipped.
//! Replies to a connection's own requests are never refused, but the connection's reader
//! stops taking requests while that much is waiting ([`ConnQueue::drained`]), so a client
//! that sends and never reads is held back by its own socket.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

use concord_core::ids::MAX_DOC_ID_LEN;
use concord_core::sync::Rights;
use tokio::sync::{mpsc, Notify};

pub type ConnId = u64;
pub type Frame = Arc<Vec<u8>>;

/// The most bytes waiting for one connection before fan-out stops and marks it lagging,
/// and its reader stops taking requests.
pub const MAX_QUEUED_BYTES: usize = 64 << 20;

/// The most prefixes one connection watches for new documents; listing another forgets
/// the one listed longest ago (a client lists one, its sync scope).
pub const MAX_WATCHED_PREFIXES: usize = 16;

/// The sending half of one connection.
#[derive(Clone)]
pub struct ConnQueue {
    tx: mpsc::UnboundedSender<Frame>,
    queued: Arc<AtomicUsize>,
    bytes: Arc<AtomicUsize>,
    lagging: Arc<AtomicBool>,
    wake: Arc<Notify>,
    drain: Arc<Notify>,
}

/// The receiving half, owned by the connection's writer task.
pub struct ConnReceiver {
    pub rx: mpsc::UnboundedReceiver<Frame>,
    pub watch: LagWatch,
}

/// Tracks how far behind a connection is.
pub struct LagWatch {
    queued: Arc<AtomicUsize>,
    bytes: Arc<AtomicUsize>,
    lagging: Arc<AtomicBool>,
    wake: Arc<Notify>,
    drain: Arc<Notify>,
}

pub fn conn_queue() -> (ConnQueue, ConnReceiver) {
    let (tx, rx) = mpsc::unbounded_channel();
    let queued = Arc::new(AtomicUsize::new(0));
    let bytes = Arc::new(AtomicUsize::new(0));
    let lagging = Arc::new(AtomicBool::new(false));
    let wake = Arc::new(Notify::new());
    let drain = Arc::new(Notify::new());
    (
        ConnQueue {
            tx,
            queued: queued.clone(),
            bytes: bytes.clone(),
            lagging: lagging.clone(),
            wake: wake.clone(),
            drain: drain.clone(),
        },
        ConnReceiver {
            rx,
            watch: LagWatch {
                queued,
                bytes,
                lagging,
                wake,
                drain,
            },
        },
    )
}

impl ConnQueue {
    /// Queues a direct reply (never refused: it answers this connection's own request).
    pub fn send(&self, frame: Frame) {
        self.queued.fetch_add(1, Ordering::Relaxed);
        self.bytes.fetch_add(frame.len(), Ordering::Relaxed);
        let _ = self.tx.send(frame);
    }

    /// Queues a fanned-out frame unless the connection is too far behind; then it is
    /// marked lagging and will be closed.
    pub(crate) fn offer(&self, frame: Frame, max_queue: usize) {
        if self.lagging.load(Ordering::Relaxed) {
            return;
        }
        if self.queued.load(Ordering::Relaxed) >= max_queue
            || self.bytes.load(Ordering::Relaxed) >= MAX_QUEUED_BYTES
        {
            self.lagging.store(true, Ordering::Relaxed);
            self.wake.notify_one();
            return;
        }
        self.send(frame);
    }

    /// Resolves once fewer than `max_queue` frames and [`MAX_QUEUED_BYTES`] wait for the
    /// connection (at once when they do): its reader takes no new request until then.
    pub async fn drained(&self, max_queue: usize) {
        loop {
            let waiting = self.drain.notified();
            if self.queued.load(Ordering::Relaxed) < max_queue
                && self.bytes.load(Ordering::Relaxed) < MAX_QUEUED_BYTES
            {
                return;
            }
            waiting.await;
        }
    }

    /// Marks the connection lagging: it is closed with `slow_consumer` and resyncs.
    fn resync(&self) {
        self.lagging.store(true, Ordering::Relaxed);
        self.wake.notify_one();
    }
}

impl LagWatch {
    /// Records that `frame` left the queue.
    pub fn sent(&self, frame: &Frame) {
        self.queued.fetch_sub(1, Ordering::Relaxed);
        self.bytes.fetch_sub(frame.len(), Ordering::Relaxed);
        self.drain.notify_waiters();
    }

    pub fn is_lagging(&self) -> bool {
        self.lagging.load(Ordering::Relaxed)
    }

    /// Resolves when the connection has been marked lagging.
    pub async fn lagged(&self) {
        while !self.is_lagging() {
            self.wake.notified().await;
        }
    }
}

/// The prefixes one connection listed (oldest first), with what it may read, and the
/// announcements held while the answer to its latest listing is on its way.
#[derive(Default)]
struct Watching {
    prefixes: Vec<(String, Rights)>,
    held: Option<Vec<Frame>>,
}

/// Subscriptions of all connections.
pub struct Hub {
    conns: HashMap<ConnId, ConnQueue>,
    followers: HashMap<String, HashSet<ConnId>>,
    /// Per document and connection: its presence frame and the frame announcing it left.
    presence: HashMap<String, HashMap<ConnId, (Frame, Frame)>>,
    /// Per connection: what it watches for new documents.
    watchers: HashMap<ConnId, Watching>,
    next_id: ConnId,
}

impl Default for Hub {
    /// Connection ids start from this process's start time (µs, shifted), so they differ
    /// from every earlier process's on this node: a cluster's log names the connection a
    /// write came from (not sent back to it), and a restarted node applying an entry an
    /// earlier process wrote must not skip a new connection that got the same id.
    fn default() -> Self {
        let start = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_micros() as u64)
            .unwrap_or(1);
        Hub {
            conns: HashMap::new(),
            followers: HashMap::new(),
            presence: HashMap::new(),
            watchers: HashMap::new(),
            next_id: start << 8,
        }
    }
}

impl Hub {
    pub fn register(&mut self, queue: ConnQueue) -> ConnId {
        self.next_id += 1;
        self.conns.insert(self.next_id, queue);
        self.next_id
    }

    pub fn remove(&mut self, conn: ConnId) {
        self.conns.remove(&conn);
        self.watchers.remove(&conn);
        let docs: Vec<String> = self.presence.keys().cloned().collect();
        for doc in docs {
            self.withdraw(conn, &doc);
        }
        self.followers.retain(|_, set| {
            set.remove(&conn);
            !set.is_empty()
        });
    }

    /// `conn` follows `doc_id` from now on, and is shown who is present there.
    pub fn follow(&mut self, conn: ConnId, doc_id: &str) {
        self.followers
            .entry(doc_id.to_string())
            .or_default()
            .insert(conn);
        if let (Some(present), Some(queue)) = (self.presence.get(doc_id), self.conns.get(&conn)) {
            for (_, (frame, _)) in present.iter().filter(|(c, _)| **c != conn) {
                queue.send(frame.clone());
            }
        }
    }

    pub fn unfollow(&mut self, conn: ConnId, doc_id: &str) {
        self.withdraw(conn, doc_id);
        if let Some(set) = self.followers.get_mut(doc_id) {
            set.remove(&conn);
        }
    }

    /// Sets `conn`'s presence on `doc_id` (`None`: withdraws it) and shows the change to
    /// the document's other followers. `frames` = (presence, leave).
    pub fn set_presence(
        &mut self,
        conn: ConnId,
        doc_id: &str,
        frames: Option<(Frame, Frame)>,
        max_queue: usize,
    ) {
        match frames {
            None => self.withdraw(conn, doc_id),
            Some((frame, leave)) => {
                self.presence
                    .entry(doc_id.to_string())
                    .or_default()
                    .insert(conn, (frame.clone(), leave));
                self.fan_out(doc_id, Some(conn), frame, max_queue);
            }
        }
    }

    /// Withdraws `conn`'s presence on `doc_id`, if any, telling the other followers.
    fn withdraw(&mut self, conn: ConnId, doc_id: &str) {
        let Some(present) = self.presence.get_mut(doc_id) else {
            return;
        };
        let Some((_, leave)) = present.remove(&conn) else {
            return;
        };
        if present.is_empty() {
            self.presence.remove(doc_id);
        }
        // A leave is not dropped for a queue that is only long (it is small and says
        // someone left), but the queue's byte bound holds: a client that toggles its
        // presence costs it no request, and a follower that does not read is closed
        // (lagging) rather than buffered for without end.
        if let Some(set) = self.followers.get(doc_id) {
            for other in set.iter().filter(|c| **c != conn) {
                if let Some(queue) = self.conns.get(other) {
                    queue.offer(leave.clone(), usize::MAX);
                }
            }
        }
    }

    /// `conn` is told of every document created under `prefix` from now on that `rights`
    /// let it read ([`Hub::announce`]). Called under the storage lock with the listing of
    /// `prefix`; announcements are held until [`Hub::release`], once the listing's answer
    /// is queued, so the client never learns of a document before the listing it follows.
    /// A prefix longer than any document id matches none and is not kept.
    pub fn watch(&mut self, conn: ConnId, prefix: &str, rights: Rights) {
        if !self.conns.contains_key(&conn) || prefix.len() > MAX_DOC_ID_LEN {
            return;
        }
        let watching = self.watchers.entry(conn).or_default();
        watching.prefixes.retain(|(p, _)| p != prefix);
        if watching.prefixes.len() >= MAX_WATCHED_PREFIXES {
            watching.prefixes.remove(0);
        }
        watching.prefixes.push((prefix.to_string(), rights));
        watching.held.get_or_insert_with(Vec::new);
    }

    /// Sends the announcements held for `conn` since its latest listing (whose answer is
    /// now queued), and those to come at once.
    pub fn release(&mut self, conn: ConnId, max_queue: usize) {
        let held = self.watchers.get_mut(&conn).and_then(|w| w.held.take());
        if let (Some(held), Some(queue)) = (held, self.conns.get(&conn)) {
            for frame in held {
                queue.offer(frame, max_queue);
            }
        }
    }

    /// `conn` watches nothing any more (it presented new credentials: it lists again).
    pub fn unwatch(&mut self, conn: ConnId) {
        self.watchers.remove(&conn);
    }

    /// Sends `frame` (a `DocList` naming the new document `doc_id`) to every connection
    /// watching a prefix of it with the right to read it (held for one whose listing's
    /// answer is not queued yet). Costs each watching connection a check of its prefixes.
    pub fn announce(&mut self, doc_id: &str, frame: Frame, max_queue: usize) {
        for (conn, watching) in self.watchers.iter_mut() {
            let told = watching.prefixes.iter().any(|(prefix, rights)| {
                doc_id.starts_with(prefix.as_str()) && rights.can_read(doc_id)
            });
            if !told {
                continue;
            }
            match (&mut watching.held, self.conns.get(conn)) {
                (Some(held), _) => held.push(frame.clone()),
                (None, Some(queue)) => queue.offer(frame.clone(), max_queue),
                (None, None) => {}
            }
        }
    }

    /// Sends `frame` to every follower of `doc_id` except `except`.
    pub fn fan_out(&self, doc_id: &str, except: Option<ConnId>, frame: Frame, max_queue: usize) {
        if let Some(set) = self.followers.get(doc_id) {
            for conn in set.iter().filter(|c| Some(**c) != except) {
                if let Some(queue) = self.conns.get(conn) {
                    queue.offer(frame.clone(), max_queue);
                }
            }
        }
    }

    pub fn connection_count(&self) -> usize {
        self.conns.len()
    }

    /// Frames queued for all connections (the fan-out queue depth).
    pub fn queued_frames(&self) -> usize {
        self.conns
            .values()
            .map(|q| q.queued.load(Ordering::Relaxed))
            .sum()
    }

    /// Closes every connection with `slow_consumer`, so each resyncs from its version
    /// vector (after the storage's content was replaced by a snapshot).
    pub fn disconnect_all(&self) {
        for queue in self.conns.values() {
            queue.resync();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(text: &str) -> Frame {
        Arc::new(text.as_bytes().to_vec())
    }

    /// A new process's connection ids are not an earlier process's: a restarted cluster
    /// node applying an entry an earlier process wrote (which names the connection it came
    /// from, not sent back to it) would otherwise skip a new connection with that id.
    #[test]
    fn connection_ids_differ_across_processes() {
        let mut earlier = Hub::default();
        let first = earlier.register(conn_queue().0);
        std::thread::sleep(std::time::Duration::from_millis(2));
        let mut later = Hub::default();
        let next = later.register(conn_queue().0);
        assert!(next > first + 256, "{first} then {next}");
        assert_eq!(later.register(conn_queue().0), next + 1);
    }

    #[test]
    fn announcements_wait_for_the_listing_answer_and_match_prefix_and_rights() {
        let mut hub = Hub::default();
        let (queue, mut rx) = conn_queue();
        let conn = hub.register(queue);
        let team_only = Rights {
            scopes: vec!["team/*".into()],
            ..Rights::open()
        };
        hub.watch(conn, "", team_only);
        hub.announce("team/a", frame("a"), 100);
        hub.announce("secret/b", frame("b"), 100);
        assert!(
            rx.rx.try_recv().is_err(),
            "held until the listing is answered"
        );
        hub.release(conn, 100);
        assert_eq!(rx.rx.try_recv().unwrap(), frame("a"));
        hub.announce("team/c", frame("c"), 100);
        assert_eq!(rx.rx.try_recv().unwrap(), frame("c"));
        assert!(rx.rx.try_recv().is_err(), "secret/b is not readable");

        // A prefix no document id can have is not kept; a new Hello ends every watch.
        let long = "p".repeat(MAX_DOC_ID_LEN + 1);
        hub.watch(conn, &long, Rights::open());
        assert_eq!(hub.watchers[&conn].prefixes.len(), 1);
        hub.unwatch(conn);
        hub.announce("team/d", frame("d"), 100);
        assert!(rx.rx.try_recv().is_err());
    }

    /// A client toggling its presence costs it nothing per toggle, and each withdrawal
    /// sends every follower a leave: a follower that does not read is bounded by its
    /// queue's bytes and marked lagging (it is closed), not buffered for without end.
    #[test]
    fn presence_withdrawals_respect_a_followers_byte_bound() {
        let mut hub = Hub::default();
        let (toggler_queue, _toggler_rx) = conn_queue();
        let toggler = hub.register(toggler_queue);
        let (follower_queue, _follower_rx) = conn_queue();
        let watched = follower_queue.clone();
        let follower = hub.register(follower_queue);
        hub.follow(follower, "d");
        hub.follow(toggler, "d");
        let big = Arc::new(vec![0u8; 1 << 20]);
        for _ in 0..100 {
            hub.set_presence(toggler, "d", Some((frame("here"), big.clone())), 10_000);
            hub.set_presence(toggler, "d", None, 10_000);
        }
        let bytes = watched.bytes.load(Ordering::Relaxed);
        assert!(
            bytes <= MAX_QUEUED_BYTES + (1 << 20),
            "{bytes} bytes queued"
        );
        assert!(watched.lagging.load(Ordering::Relaxed), "marked lagging");
    }

    #[test]
    fn a_connection_watches_a_bounded_number_of_prefixes() {
        let mut hub = Hub::default();
        let (queue, _rx) = conn_queue();
        let conn = hub.register(queue);
        for i in 0..MAX_WATCHED_PREFIXES + 5 {
            hub.watch(conn, &format!("p{i}/"), Rights::open());
        }
        hub.watch(conn, "p20/", Rights::open());
        let prefixes: Vec<&str> = hub.watchers[&conn]
            .prefixes
            .iter()
            .map(|(p, _)| p.as_str())
            .collect();
        assert_eq!(prefixes.len(), MAX_WATCHED_PREFIXES);
        assert_eq!(prefixes.first(), Some(&"p5/"), "the oldest are forgotten");
        assert_eq!(prefixes.last(), Some(&"p20/"), "listing again refreshes");
        hub.remove(conn);
        assert!(hub.watchers.is_empty());
    }
}

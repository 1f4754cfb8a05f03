//! Which automerge-repo connections of this node have each document open, to relay their
//! `ephemeral` messages (presence, cursors) to the document's other connections. Ephemeral
//! data is never stored and does not cross cluster nodes. It is best-effort, as in
//! automerge-repo: each connection has room for [`EPHEMERAL_QUEUE`] relayed messages of
//! [`EPHEMERAL_BYTES`] together, and what arrives for a connection that has not taken them
//! (it does not read) is dropped, never buffered without limit.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use ciborium::Value;
use tokio::sync::mpsc;

use super::automerge_wire;

/// How many relayed ephemeral messages may wait for one connection.
pub const EPHEMERAL_QUEUE: usize = 256;

/// How many bytes of relayed ephemeral messages may wait for one connection (one message
/// is always taken when none waits, whatever its size).
pub const EPHEMERAL_BYTES: u64 = 1 << 20;

/// Where a connection's relayed frames go.
#[derive(Clone)]
pub struct PeerTx {
    tx: mpsc::Sender<Vec<u8>>,
    queued: Arc<AtomicU64>,
}

/// A connection's relayed frames.
pub struct PeerRx {
    rx: mpsc::Receiver<Vec<u8>>,
    queued: Arc<AtomicU64>,
}

/// A connection's queue of relayed frames, bounded by [`EPHEMERAL_QUEUE`] and
/// [`EPHEMERAL_BYTES`].
pub fn peer_channel() -> (PeerTx, PeerRx) {
    let (tx, rx) = mpsc::channel(EPHEMERAL_QUEUE);
    let queued = Arc::new(AtomicU64::new(0));
    (
        PeerTx {
            tx,
            queued: queued.clone(),
        },
        PeerRx { rx, queued },
    )
}

impl PeerTx {
    /// Queues `frame` if there is room; false when it was dropped.
    pub fn try_send(&self, frame: Vec<u8>) -> bool {
        let len = frame.len() as u64;
        let before = self.queued.fetch_add(len, Ordering::AcqRel);
        if (before > 0 && before + len > EPHEMERAL_BYTES) || self.tx.try_send(frame).is_err() {
            self.queued.fetch_sub(len, Ordering::AcqRel);
            return false;
        }
        true
    }
}

impl PeerRx {
    /// The next relayed frame (cancel-safe).
    pub async fn recv(&mut self) -> Option<Vec<u8>> {
        let frame = self.rx.recv().await?;
        self.queued.fetch_sub(frame.len() as u64, Ordering::AcqRel);
        Some(frame)
    }
}

/// A document's connections: connection → (its client's peer id, its frames).
type Peers = HashMap<u64, (String, PeerTx)>;

/// Per document, its connections on this node.
#[derive(Default)]
pub struct AutomergePeers {
    docs: Mutex<HashMap<String, Peers>>,
}

impl AutomergePeers {
    fn docs(&self) -> std::sync::MutexGuard<'_, HashMap<String, Peers>> {
        self.docs.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn join(&self, document_id: &str, conn: u64, peer: String, tx: PeerTx) {
        self.docs()
            .entry(document_id.to_string())
            .or_default()
            .insert(conn, (peer, tx));
    }

    /// Sends `raw` (an ephemeral message of `conn`) to the document's other connections.
    pub fn relay(&self, document_id: &str, conn: u64, raw: &Value) {
        if let Some(peers) = self.docs().get(document_id) {
            for (other, (peer, tx)) in peers {
                if *other != conn && !tx.try_send(automerge_wire::readdressed(raw, peer)) {
                    tracing::debug!(document_id, "ephemeral message dropped: queue full");
                }
            }
        }
    }

    /// Takes `conn` out of every document.
    pub fn leave(&self, conn: u64) {
        self.docs().retain(|_, peers| {
            peers.remove(&conn);
            !peers.is_empty()
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_connection_that_does_not_read_holds_a_bounded_number_of_bytes() {
        let (tx, mut rx) = peer_channel();
        // One message is taken whatever its size, when nothing waits.
        let big = EPHEMERAL_BYTES as usize + 1;
        assert!(tx.try_send(vec![1; big]));
        assert!(!tx.try_send(vec![2; 10]), "past the byte bound");
        assert_eq!(rx.recv().await.map(|f| f.len()), Some(big));
        // Then room by bytes: messages of 64 KiB until a MiB waits.
        let piece = 64 * 1024;
        let mut taken = 0;
        while tx.try_send(vec![3; piece]) {
            taken += 1;
            assert!(taken <= EPHEMERAL_QUEUE, "no bound");
        }
        assert_eq!(taken as u64, EPHEMERAL_BYTES / piece as u64);
        // Reading makes room again.
        assert!(rx.recv().await.is_some());
        assert!(tx.try_send(vec![4; piece]));
        assert!(!tx.try_send(vec![4; piece]));
    }

    #[tokio::test]
    async fn small_messages_are_bounded_by_count() {
        let (tx, _rx) = peer_channel();
        let taken = (0..EPHEMERAL_QUEUE + 10)
            .filter(|_| tx.try_send(vec![0; 8]))
            .count();
        assert_eq!(taken, EPHEMERAL_QUEUE);
    }
}

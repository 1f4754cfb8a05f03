//! Which automerge-repo connections of this node have each document open, to relay their
//! `ephemeral` messages (presence, cursors) to the document's other connections. Ephemeral
//! data is never stored and does not cross cluster nodes. It is best-effort, as in
//! automerge-repo: each connection has room for [`EPHEMERAL_QUEUE`] relayed messages, and
//! what arrives for a connection that has not taken them (it does not read) is dropped,
//! never buffered without limit.

use std::collections::HashMap;
use std::sync::Mutex;

use ciborium::Value;
use tokio::sync::mpsc;

use super::automerge_wire;

/// How many relayed ephemeral messages may wait for one connection.
pub const EPHEMERAL_QUEUE: usize = 256;

/// Where a connection's relayed frames go (made with [`EPHEMERAL_QUEUE`] room).
pub type PeerTx = mpsc::Sender<Vec<u8>>;

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
                if *other != conn {
                    let _ = tx.try_send(automerge_wire::readdressed(raw, peer));
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

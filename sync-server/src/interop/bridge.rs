//! The bridge from a foreign sync protocol (y-websocket, automerge-repo) into the relay's
//! own session: it speaks Concord messages to a [`RelaySession`] on the connection's
//! behalf, so these clients' writes take exactly a device's path — access rights, append
//! rules, quorum commit in a cluster ([`crate::http::execute`]) — and their connection
//! follows documents in the hub, from which it gets the live updates of everyone else.
//!
//! Each bridged connection writes under an origin of its own (`<protocol>-<64 random bits
//! in hex>`), numbering its updates 1, 2, 3… in the order the relay stored them.

use concord_core::protocol::{self, ErrorCode, ErrorFrame, Hello, Message, Subscribe, Updates};
use concord_core::sync::{RelayOutput, RelaySession};
use concord_core::{DocKind, Origin, UpdateRecord, VersionVector};

use crate::http::{execute, Node};
use crate::hub::ConnQueue;
use crate::state::{now_secs, Connection};

/// How an append of a bridged client ended.
#[derive(Debug)]
pub enum Written {
    /// Durably stored (committed in a cluster) and fanned out.
    Stored,
    /// Refused for lack of the write right (a read-only token): dropped.
    Dropped,
    /// Refused for another reason (a malformed update, the cluster unavailable, …).
    Refused(ErrorFrame),
}

/// One bridged connection's Concord session.
pub struct Bridge {
    node: Node,
    conn: Connection,
    session: RelaySession,
    origin: Origin,
    next_seq: u64,
}

impl Bridge {
    /// Registers a connection whose fan-out frames (Concord-encoded) go to `queue`.
    pub fn new(node: &Node, queue: ConnQueue, protocol: &str) -> Bridge {
        let relay = node.relay.clone();
        let conn = relay.connection(queue);
        Bridge {
            node: node.clone(),
            conn,
            session: RelaySession::new(
                relay.config.server_id.clone(),
                relay.config.max_frame_bytes,
            ),
            origin: Origin::from(format!("{protocol}-{:016x}", rand::random::<u64>())),
            next_seq: 1,
        }
    }

    /// The connection's number in the hub.
    pub fn conn_id(&self) -> u64 {
        self.conn.id()
    }

    /// The largest message the relay takes from a client (`max_frame_bytes`).
    pub fn max_frame_bytes(&self) -> usize {
        self.node.relay.config.max_frame_bytes
    }

    /// The origin this connection's updates are stored under.
    pub fn origin(&self) -> &Origin {
        &self.origin
    }

    /// When the connection's token expires (Unix seconds), if it does.
    pub fn expires_at(&self) -> Option<u64> {
        self.session.expires_at()
    }

    /// The handshake with the connection's token; the refusal when the token is not good.
    pub async fn hello(&mut self, token: Option<String>) -> Result<(), ErrorFrame> {
        let replies = self
            .run(Message::Hello(Hello {
                protocol_version: protocol::PROTOCOL_VERSION,
                device_id: self.origin.clone(),
                token,
            }))
            .await?;
        first_error(replies).map_or(Ok(()), Err)
    }

    /// Follows `doc_id` (created when absent and the token may write) and returns its
    /// whole content as the relay's catch-up messages (`Catchup`, then `Updates`).
    pub async fn subscribe(
        &mut self,
        doc_id: &str,
        kind: DocKind,
    ) -> Result<Vec<Message>, ErrorFrame> {
        let replies = self
            .run(Message::Subscribe(Subscribe {
                doc_id: doc_id.to_string(),
                kind,
                version: VersionVector::new(),
                min_lsn: 0,
                linearizable: false,
            }))
            .await?;
        match replies.iter().find(|m| matches!(m, Message::Error(_))) {
            Some(Message::Error(e)) => Err(e.clone()),
            _ => Ok(replies),
        }
    }

    /// Appends one update (the CRDT's own bytes) of this connection to `doc_id`.
    pub async fn append(&mut self, doc_id: &str, data: Vec<u8>) -> Written {
        let update = UpdateRecord {
            origin: self.origin.clone(),
            seq: self.next_seq,
            data,
        };
        let replies = match self
            .run(Message::Updates(Updates {
                doc_id: doc_id.to_string(),
                updates: vec![update],
                lsn: 0,
            }))
            .await
        {
            Ok(replies) => replies,
            Err(e) => return Written::Refused(e),
        };
        match first_error(replies) {
            None => {
                self.next_seq += 1;
                Written::Stored
            }
            Some(e) if e.code == ErrorCode::Forbidden => Written::Dropped,
            Some(e) => Written::Refused(e),
        }
    }

    /// Feeds one Concord message to the session and carries out its requests; the replies
    /// in order. An `Err` when a request could not complete (its task failed).
    async fn run(&mut self, message: Message) -> Result<Vec<Message>, ErrorFrame> {
        let relay = self.node.relay.clone();
        let outputs = self
            .session
            .handle_frame(&protocol::encode(&message), now_secs(), &*relay);
        let mut pending = std::collections::VecDeque::from(outputs);
        let mut replies = Vec::new();
        while let Some(output) = pending.pop_front() {
            match output {
                RelayOutput::Send(reply) => replies.push(reply),
                RelayOutput::Unfollow(doc_id) => self.conn.unfollow(&doc_id),
                RelayOutput::Presence { .. } => {}
                RelayOutput::Request(id, request) => {
                    let completion =
                        execute(&self.node, self.conn.id(), request)
                            .await
                            .map_err(|e| ErrorFrame {
                                code: ErrorCode::Internal,
                                message: format!("request failed: {e}"),
                                doc_id: None,
                            })?;
                    pending.extend(self.session.handle_completion(
                        id,
                        completion,
                        now_secs(),
                        &*relay,
                    ));
                }
            }
        }
        Ok(replies)
    }
}

fn first_error(replies: Vec<Message>) -> Option<ErrorFrame> {
    replies.into_iter().find_map(|m| match m {
        Message::Error(e) => Some(e),
        _ => None,
    })
}

//! The relay's side of one connection, sans IO.
//!
//! [`RelaySession`] decodes each frame, enforces the handshake, frame size and access
//! rights, and turns requests into calls on a [`RelayBackend`] (storage, fan-out and token
//! checks live there) and reply messages. Every refusal is an `Error` frame; the session
//! stays usable after one.

use std::collections::HashSet;

use crate::ids::{validate_doc_id, DocKind, Origin};
use crate::protocol::{
    self, Ack, Catchup, DocList, ErrorCode, Message, Snapshot, Welcome, PROTOCOL_VERSION,
};
use crate::sync::chunk::chunk_updates;
use crate::sync::rights::Rights;
use crate::update::UpdateRecord;
use crate::vv::VersionVector;

/// A request the relay refuses, as it will be reported to the client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RelayRefusal {
    pub code: ErrorCode,
    pub message: String,
}

impl RelayRefusal {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> RelayRefusal {
        RelayRefusal {
            code,
            message: message.into(),
        }
    }
}

/// What a client lacks of a document, as read by the backend.
#[derive(Debug, Clone, PartialEq)]
pub struct CatchupData {
    pub kind: DocKind,
    pub server_version: VersionVector,
    pub snapshot: Option<Snapshot>,
    pub updates: Vec<UpdateRecord>,
}

/// The result of appending a batch: the updates durably stored (or already held) are
/// acknowledged per origin up to `acked`; a refusal stops the batch at the first bad update.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AppendOutcome {
    pub acked: Vec<(Origin, u64)>,
    pub refusal: Option<RelayRefusal>,
}

/// Storage, fan-out and authentication, as the relay session needs them.
pub trait RelayBackend {
    /// Checks a token (or its absence) and returns the connection's rights.
    fn authenticate(&mut self, token: Option<&str>) -> Result<Rights, RelayRefusal>;
    /// Current time, Unix seconds (token expiry).
    fn now_secs(&self) -> u64;
    /// Registers this connection for live updates of `doc_id` and reads what a client at
    /// `client_version` lacks, atomically with respect to appends. Creates the document
    /// with `kind` when absent and `may_create`; fails with `KindMismatch` on another kind.
    fn subscribe(
        &mut self,
        doc_id: &str,
        kind: DocKind,
        client_version: &VersionVector,
        may_create: bool,
    ) -> Result<CatchupData, RelayRefusal>;
    fn unsubscribe(&mut self, doc_id: &str);
    /// Validates, durably stores and fans out `updates` of a document, in order.
    fn append(&mut self, doc_id: &str, updates: Vec<UpdateRecord>) -> AppendOutcome;
    /// Documents whose id starts with `prefix`.
    fn list_docs(&mut self, prefix: &str) -> Result<Vec<(String, DocKind)>, RelayRefusal>;
}

/// One connection's protocol state on the relay.
pub struct RelaySession {
    max_frame_bytes: usize,
    server_id: String,
    device: Option<Origin>,
    rights: Option<Rights>,
    subscribed: HashSet<String>,
}

impl RelaySession {
    pub fn new(server_id: impl Into<String>, max_frame_bytes: usize) -> RelaySession {
        RelaySession {
            max_frame_bytes,
            server_id: server_id.into(),
            device: None,
            rights: None,
            subscribed: HashSet::new(),
        }
    }

    /// The device id given in the handshake.
    pub fn device(&self) -> Option<&Origin> {
        self.device.as_ref()
    }

    /// When the connection's token expires (Unix seconds), once authenticated.
    pub fn expires_at(&self) -> Option<u64> {
        self.rights.as_ref().and_then(|r| r.expires_at)
    }

    pub fn subscriptions(&self) -> impl Iterator<Item = &String> {
        self.subscribed.iter()
    }

    /// Handles one incoming frame; returns the replies, in order.
    pub fn handle_frame(&mut self, frame: &[u8], backend: &mut impl RelayBackend) -> Vec<Message> {
        if frame.len() > self.max_frame_bytes {
            return vec![Message::error(
                ErrorCode::FrameTooLarge,
                format!(
                    "frame of {} bytes exceeds the limit of {} bytes",
                    frame.len(),
                    self.max_frame_bytes
                ),
                None,
            )];
        }
        match protocol::decode(frame) {
            Ok(message) => self.handle(message, backend),
            Err(e) => vec![Message::error(e.code(), e.to_string(), None)],
        }
    }

    /// Handles one decoded message.
    pub fn handle(&mut self, message: Message, backend: &mut impl RelayBackend) -> Vec<Message> {
        match message {
            Message::Ping(n) => return vec![Message::Pong(n)],
            Message::Hello(hello) => return self.hello(hello, backend),
            _ => {}
        }
        let Some(rights) = self.rights.clone() else {
            return vec![Message::error(
                ErrorCode::HelloRequired,
                "send Hello (and a token, if the server requires one) first",
                None,
            )];
        };
        if rights.expired(backend.now_secs()) {
            return vec![Message::error(
                ErrorCode::TokenExpired,
                "the access token has expired",
                None,
            )];
        }
        match message {
            Message::Subscribe(sub) => self.subscribe(sub, &rights, backend),
            Message::Updates(u) => self.updates(u, &rights, backend),
            Message::Unsubscribe(u) => {
                if self.subscribed.remove(&u.doc_id) {
                    backend.unsubscribe(&u.doc_id);
                }
                vec![]
            }
            Message::ListDocs(list) => match backend.list_docs(&list.prefix) {
                Ok(docs) => vec![Message::DocList(DocList {
                    docs: docs
                        .into_iter()
                        .filter(|(id, _)| rights.can_read(id))
                        .collect(),
                })],
                Err(r) => vec![Message::error(r.code, r.message, None)],
            },
            Message::Pong(_) | Message::Error(_) => vec![],
            other => vec![Message::error(
                ErrorCode::UnknownMessage,
                format!("{} is not a message a client sends", message_name(&other)),
                None,
            )],
        }
    }

    fn hello(&mut self, hello: protocol::Hello, backend: &mut impl RelayBackend) -> Vec<Message> {
        if hello.protocol_version != PROTOCOL_VERSION {
            return vec![Message::error(
                ErrorCode::UnsupportedVersion,
                format!(
                    "client speaks protocol {}, server speaks {PROTOCOL_VERSION}",
                    hello.protocol_version
                ),
                None,
            )];
        }
        match backend.authenticate(hello.token.as_deref()) {
            Ok(rights) if rights.expired(backend.now_secs()) => {
                vec![Message::error(
                    ErrorCode::TokenExpired,
                    "the access token has expired",
                    None,
                )]
            }
            Ok(rights) => {
                self.rights = Some(rights);
                self.device = Some(hello.device_id);
                vec![Message::Welcome(Welcome {
                    protocol_version: PROTOCOL_VERSION,
                    server_id: self.server_id.clone(),
                    max_frame_bytes: self.max_frame_bytes as u32,
                })]
            }
            Err(r) => vec![Message::error(r.code, r.message, None)],
        }
    }

    fn subscribe(
        &mut self,
        sub: protocol::Subscribe,
        rights: &Rights,
        backend: &mut impl RelayBackend,
    ) -> Vec<Message> {
        let doc = sub.doc_id.as_str();
        if let Err(e) = validate_doc_id(doc) {
            return vec![Message::error(
                ErrorCode::InvalidDocId,
                e.to_string(),
                Some(doc),
            )];
        }
        if !rights.can_read(doc) {
            return vec![Message::error(
                ErrorCode::Forbidden,
                format!("the token does not grant access to {doc:?}"),
                Some(doc),
            )];
        }
        match backend.subscribe(doc, sub.kind, &sub.version, rights.can_write(doc)) {
            Ok(data) => {
                self.subscribed.insert(sub.doc_id.clone());
                let mut out = vec![Message::Catchup(Catchup {
                    doc_id: sub.doc_id.clone(),
                    kind: data.kind,
                    server_version: data.server_version,
                    snapshot: data.snapshot,
                })];
                out.extend(chunk_updates(doc, data.updates, self.max_frame_bytes / 2));
                out
            }
            Err(r) => vec![Message::error(r.code, r.message, Some(doc))],
        }
    }

    fn updates(
        &mut self,
        updates: protocol::Updates,
        rights: &Rights,
        backend: &mut impl RelayBackend,
    ) -> Vec<Message> {
        let doc = updates.doc_id.as_str();
        if !rights.can_write(doc) {
            return vec![Message::error(
                ErrorCode::Forbidden,
                format!("the token does not grant write access to {doc:?}"),
                Some(doc),
            )];
        }
        if !self.subscribed.contains(doc) {
            return vec![Message::error(
                ErrorCode::NotSubscribed,
                "subscribe to a document before sending its updates",
                Some(doc),
            )];
        }
        let outcome = backend.append(doc, updates.updates);
        let mut out: Vec<Message> = outcome
            .acked
            .into_iter()
            .map(|(origin, upto)| {
                Message::Ack(Ack {
                    doc_id: updates.doc_id.clone(),
                    origin,
                    upto,
                })
            })
            .collect();
        if let Some(r) = outcome.refusal {
            out.push(Message::error(r.code, r.message, Some(doc)));
        }
        out
    }
}

fn message_name(m: &Message) -> &'static str {
    match m {
        Message::Hello(_) => "Hello",
        Message::Welcome(_) => "Welcome",
        Message::Subscribe(_) => "Subscribe",
        Message::Catchup(_) => "Catchup",
        Message::Updates(_) => "Updates",
        Message::Ack(_) => "Ack",
        Message::Error(_) => "Error",
        Message::Ping(_) => "Ping",
        Message::Pong(_) => "Pong",
        Message::ListDocs(_) => "ListDocs",
        Message::DocList(_) => "DocList",
        Message::Unsubscribe(_) => "Unsubscribe",
    }
}

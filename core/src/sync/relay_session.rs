//! The relay's side of one connection, sans IO: frames in; replies and requests out.
//!
//! [`RelaySession`] decodes each frame, enforces the handshake, frame size, token expiry
//! and access rights, and answers what it can at once (Welcome, Pong, refusals). Work on
//! documents leaves as a [`RelayRequest`] with a [`RequestId`]; the reply messages are made
//! when the host hands back its [`Completion`]. Tokens are checked by a direct call to an
//! [`Authenticator`] (cheap and pure). Every refusal is an `Error` frame; the session stays
//! usable after one. Time comes in as an argument (Unix seconds), never read from a clock.
//!
//! Ordering: a session has at most one request in flight. Frames that arrive meanwhile are
//! queued inside the session and handled, in arrival order, once the completion came back;
//! so the replies to one connection leave in the order of its requests, and an `Ack` is
//! only made from a completed (durable) append.

use std::collections::{HashSet, VecDeque};

use crate::ids::{validate_doc_id, Origin};
use crate::protocol::{
    self, Ack, Catchup, DocList, ErrorCode, Message, Welcome, MAX_PRESENCE_BYTES, PROTOCOL_VERSION,
};
use crate::sync::chunk::chunk_updates;
use crate::sync::relay_request::{Authenticator, Completion, RelayOutput, RelayRequest, RequestId};
use crate::sync::rights::Rights;

/// The request a session waits for, with what it needs to reply.
#[derive(Debug)]
enum Waiting {
    Subscribe(String),
    Append(String),
    List(Rights),
}

/// One connection's protocol state on the relay.
pub struct RelaySession {
    max_frame_bytes: usize,
    server_id: String,
    device: Option<Origin>,
    rights: Option<Rights>,
    subscribed: HashSet<String>,
    next_request: u64,
    in_flight: Option<(RequestId, Waiting)>,
    /// Frames received while a request was in flight, in arrival order.
    queued: VecDeque<Queued>,
}

/// A frame that arrived while a request was in flight, waiting for its turn.
enum Queued {
    Frame(Vec<u8>),
    /// Above the frame limit: only its size is kept.
    TooLarge(usize),
}

impl RelaySession {
    pub fn new(server_id: impl Into<String>, max_frame_bytes: usize) -> RelaySession {
        RelaySession {
            max_frame_bytes,
            server_id: server_id.into(),
            device: None,
            rights: None,
            subscribed: HashSet::new(),
            next_request: 0,
            in_flight: None,
            queued: VecDeque::new(),
        }
    }

    /// The device id given in the handshake.
    pub fn device(&self) -> Option<&Origin> {
        self.device.as_ref()
    }

    /// When the connection's token expires (Unix seconds), once authenticated: the host
    /// calls [`RelaySession::handle_timeout`] then.
    pub fn expires_at(&self) -> Option<u64> {
        self.rights.as_ref().and_then(|r| r.expires_at)
    }

    pub fn subscriptions(&self) -> impl Iterator<Item = &String> {
        self.subscribed.iter()
    }

    /// True while a request is in flight (later frames wait inside the session).
    pub fn is_busy(&self) -> bool {
        self.in_flight.is_some()
    }

    /// At `now_secs`: the error to send before closing, when the token has expired.
    pub fn handle_timeout(&mut self, now_secs: u64) -> Option<Message> {
        let expired = self.rights.as_ref().is_some_and(|r| r.expired(now_secs));
        expired.then(|| {
            Message::error(
                ErrorCode::TokenExpired,
                "the access token has expired; reconnect with a new one",
                None,
            )
        })
    }

    /// Handles one incoming frame; returns what to do, in order (at most one request, last).
    pub fn handle_frame(
        &mut self,
        frame: &[u8],
        now_secs: u64,
        auth: &dyn Authenticator,
    ) -> Vec<RelayOutput> {
        if self.in_flight.is_some() {
            // An oversized frame is not kept: only its size, to refuse it in its turn.
            self.queued
                .push_back(if frame.len() > self.max_frame_bytes {
                    Queued::TooLarge(frame.len())
                } else {
                    Queued::Frame(frame.to_vec())
                });
            return vec![];
        }
        let mut out = Vec::new();
        self.frame(frame, now_secs, auth, &mut out);
        self.drain_queue(now_secs, auth, &mut out);
        out
    }

    /// Takes the result of request `id`; returns the replies it makes and what the frames
    /// queued behind it produce.
    pub fn handle_completion(
        &mut self,
        id: RequestId,
        completion: Completion,
        now_secs: u64,
        auth: &dyn Authenticator,
    ) -> Vec<RelayOutput> {
        let waiting = match self.in_flight.take() {
            Some((expected, waiting)) if expected == id => waiting,
            other => {
                self.in_flight = other;
                return vec![];
            }
        };
        let mut out = Vec::new();
        let send = |m: Message| RelayOutput::Send(m);
        match (waiting, completion) {
            (Waiting::Subscribe(doc_id), Completion::Subscribed(Ok(data))) => {
                self.subscribed.insert(doc_id.clone());
                out.push(send(Message::Catchup(Catchup {
                    doc_id: doc_id.clone(),
                    kind: data.kind,
                    server_version: data.server_version,
                    snapshot: data.snapshot,
                    lsn: data.lsn,
                })));
                out.extend(
                    chunk_updates(&doc_id, data.updates, self.max_frame_bytes / 2, data.lsn)
                        .into_iter()
                        .map(send),
                );
            }
            (Waiting::Subscribe(doc_id), Completion::Subscribed(Err(r))) => {
                out.push(send(Message::error(r.code, r.message, Some(&doc_id))));
            }
            (Waiting::Append(doc_id), Completion::Appended(outcome)) => {
                let lsn = outcome.lsn;
                out.extend(outcome.acked.into_iter().map(|(origin, upto)| {
                    send(Message::Ack(Ack {
                        doc_id: doc_id.clone(),
                        origin,
                        upto,
                        lsn,
                    }))
                }));
                if let Some(r) = outcome.refusal {
                    out.push(send(Message::error(r.code, r.message, Some(&doc_id))));
                }
            }
            (Waiting::List(rights), Completion::Listed(Ok(docs))) => {
                out.push(send(Message::DocList(DocList {
                    docs: docs
                        .into_iter()
                        .filter(|(id, _)| rights.can_read(id))
                        .collect(),
                })));
            }
            (Waiting::List(_), Completion::Listed(Err(r))) => {
                out.push(send(Message::error(r.code, r.message, None)));
            }
            (waiting, completion) => {
                out.push(send(Message::error(
                    ErrorCode::Internal,
                    format!("the relay answered {waiting:?} with {completion:?}"),
                    None,
                )));
            }
        }
        self.drain_queue(now_secs, auth, &mut out);
        out
    }

    fn too_large(&self, len: usize) -> RelayOutput {
        RelayOutput::Send(Message::error(
            ErrorCode::FrameTooLarge,
            format!(
                "frame of {len} bytes exceeds the limit of {} bytes",
                self.max_frame_bytes
            ),
            None,
        ))
    }

    /// Handles queued frames until one of them makes a request.
    fn drain_queue(&mut self, now_secs: u64, auth: &dyn Authenticator, out: &mut Vec<RelayOutput>) {
        while self.in_flight.is_none() {
            match self.queued.pop_front() {
                None => break,
                Some(Queued::Frame(frame)) => self.frame(&frame, now_secs, auth, out),
                Some(Queued::TooLarge(len)) => out.push(self.too_large(len)),
            }
        }
    }

    fn frame(
        &mut self,
        frame: &[u8],
        now_secs: u64,
        auth: &dyn Authenticator,
        out: &mut Vec<RelayOutput>,
    ) {
        if frame.len() > self.max_frame_bytes {
            out.push(self.too_large(frame.len()));
            return;
        }
        match protocol::decode(frame) {
            Ok(message) => self.message(message, now_secs, auth, out),
            Err(e) => out.push(RelayOutput::Send(Message::error(
                e.code(),
                e.to_string(),
                None,
            ))),
        }
    }

    fn request(&mut self, request: RelayRequest, waiting: Waiting) -> RelayOutput {
        self.next_request += 1;
        let id = RequestId(self.next_request);
        self.in_flight = Some((id, waiting));
        RelayOutput::Request(id, request)
    }

    /// Handles one decoded message.
    fn message(
        &mut self,
        message: Message,
        now_secs: u64,
        auth: &dyn Authenticator,
        out: &mut Vec<RelayOutput>,
    ) {
        let reply = match message {
            Message::Ping(n) => Message::Pong(n),
            Message::Hello(hello) => {
                let reply = self.hello(hello, now_secs, auth);
                if matches!(reply, Message::Welcome(_)) {
                    self.drop_unreadable(out);
                }
                reply
            }
            message => match self.rights.clone() {
                None => Message::error(
                    ErrorCode::HelloRequired,
                    "send Hello (and a token, if the server requires one) first",
                    None,
                ),
                Some(rights) if rights.expired(now_secs) => Message::error(
                    ErrorCode::TokenExpired,
                    "the access token has expired",
                    None,
                ),
                Some(rights) => match self.authorized(message, rights) {
                    Ok(Some(output)) => return out.push(output),
                    Ok(None) => return,
                    Err(reply) => reply,
                },
            },
        };
        out.push(RelayOutput::Send(reply));
    }

    /// After a new `Hello`: the subscriptions its token cannot read end (their updates and
    /// presence stop coming), as the old token's watches do.
    fn drop_unreadable(&mut self, out: &mut Vec<RelayOutput>) {
        let Some(rights) = &self.rights else { return };
        let mut gone: Vec<String> = self
            .subscribed
            .iter()
            .filter(|doc| !rights.can_read(doc))
            .cloned()
            .collect();
        gone.sort();
        for doc in gone {
            self.subscribed.remove(&doc);
            out.push(RelayOutput::Unfollow(doc));
        }
    }

    fn hello(
        &mut self,
        hello: protocol::Hello,
        now_secs: u64,
        auth: &dyn Authenticator,
    ) -> Message {
        if hello.protocol_version != PROTOCOL_VERSION {
            return Message::error(
                ErrorCode::UnsupportedVersion,
                format!(
                    "client speaks protocol {}, server speaks {PROTOCOL_VERSION}",
                    hello.protocol_version
                ),
                None,
            );
        }
        if let Some(why) = hello.device_id.invalid() {
            return Message::error(
                ErrorCode::MalformedFrame,
                format!("invalid device id: {why}"),
                None,
            );
        }
        match auth.authenticate(hello.token.as_deref()) {
            Ok(rights) if rights.expired(now_secs) => Message::error(
                ErrorCode::TokenExpired,
                "the access token has expired",
                None,
            ),
            Ok(rights) => {
                self.rights = Some(rights);
                self.device = Some(hello.device_id);
                Message::Welcome(Welcome {
                    protocol_version: PROTOCOL_VERSION,
                    server_id: self.server_id.clone(),
                    max_frame_bytes: self.max_frame_bytes as u32,
                })
            }
            Err(r) => Message::error(r.code, r.message, None),
        }
    }

    /// A message of an authenticated connection: a request, an effect, nothing, or a
    /// refusal.
    fn authorized(
        &mut self,
        message: Message,
        rights: Rights,
    ) -> Result<Option<RelayOutput>, Message> {
        match message {
            Message::Subscribe(sub) => {
                let doc = sub.doc_id.as_str();
                if let Err(e) = validate_doc_id(doc) {
                    return Err(Message::error(
                        ErrorCode::InvalidDocId,
                        e.to_string(),
                        Some(doc),
                    ));
                }
                if !rights.can_read(doc) {
                    return Err(Message::error(
                        ErrorCode::Forbidden,
                        format!("the token does not grant access to {doc:?}"),
                        Some(doc),
                    ));
                }
                let may_create = rights.can_write(doc);
                Ok(Some(self.request(
                    RelayRequest::Subscribe {
                        doc_id: sub.doc_id.clone(),
                        kind: sub.kind,
                        client_version: sub.version,
                        may_create,
                        min_lsn: sub.min_lsn,
                        linearizable: sub.linearizable,
                    },
                    Waiting::Subscribe(sub.doc_id),
                )))
            }
            Message::Updates(updates) => {
                let doc = updates.doc_id.as_str();
                if !rights.can_write(doc) {
                    return Err(Message::error(
                        ErrorCode::Forbidden,
                        format!("the token does not grant write access to {doc:?}"),
                        Some(doc),
                    ));
                }
                if !self.subscribed.contains(doc) {
                    return Err(Message::error(
                        ErrorCode::NotSubscribed,
                        "subscribe to a document before sending its updates",
                        Some(doc),
                    ));
                }
                if let Some((seq, why)) = updates
                    .updates
                    .iter()
                    .find_map(|u| u.origin.invalid().map(|why| (u.seq, why)))
                {
                    return Err(Message::error(
                        ErrorCode::InvalidUpdate,
                        format!("update {seq}: {why}; nothing of this batch was stored"),
                        Some(doc),
                    ));
                }
                Ok(Some(self.request(
                    RelayRequest::Append {
                        doc_id: updates.doc_id.clone(),
                        updates: updates.updates,
                    },
                    Waiting::Append(updates.doc_id),
                )))
            }
            Message::Presence(p) => {
                let doc = p.doc_id.as_str();
                if !self.subscribed.contains(doc) {
                    return Err(Message::error(
                        ErrorCode::NotSubscribed,
                        "subscribe to a document before sending presence on it",
                        Some(doc),
                    ));
                }
                if p.state.len() > MAX_PRESENCE_BYTES {
                    return Err(Message::error(
                        ErrorCode::FrameTooLarge,
                        format!(
                            "a presence state of {} bytes is above the limit of {MAX_PRESENCE_BYTES}",
                            p.state.len()
                        ),
                        Some(doc),
                    ));
                }
                let device_id = self.device.clone().unwrap_or_else(|| Origin::from(""));
                Ok(Some(RelayOutput::Presence {
                    doc_id: p.doc_id,
                    device_id,
                    state: p.state,
                }))
            }
            Message::Unsubscribe(u) => Ok(self
                .subscribed
                .remove(&u.doc_id)
                .then_some(RelayOutput::Unfollow(u.doc_id))),
            Message::ListDocs(list) => Ok(Some(self.request(
                RelayRequest::ListDocs {
                    prefix: list.prefix,
                    rights: rights.clone(),
                },
                Waiting::List(rights),
            ))),
            Message::Pong(_) | Message::Error(_) => Ok(None),
            other => Err(Message::error(
                ErrorCode::UnknownMessage,
                format!("{} is not a message a client sends", message_name(&other)),
                None,
            )),
        }
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
        Message::Presence(_) => "Presence",
    }
}

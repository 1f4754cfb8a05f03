//! The device's side of sync, sans IO.
//!
//! A [`ClientSession`] is told when the transport connects and disconnects, is given every
//! message from the relay and every local commit, and answers with messages to send. It
//! subscribes every document of its [`DeviceLog`] (and, with [`SyncScope::Prefix`], every matching
//! document the relay has), sends the relay exactly what it lacks, applies what arrives,
//! drops acknowledged updates from the outbox, and resends the rest after a reconnect.
//!
//! Session guarantees across relay nodes: the session keeps `max_lsn`, the highest log
//! position (LSN) it has been acknowledged (`Ack.lsn`) or served (`Catchup.lsn`,
//! `Updates.lsn`), for its whole life (across reconnects and node switches), and sends it as
//! `min_lsn` on every subscribe, so no node serves it older state (read-your-writes,
//! monotonic reads).

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use crate::error::Result;
use crate::ids::{DocKind, Origin};
use crate::protocol::{
    self, ErrorCode, ErrorFrame, Hello, ListDocs, Message, Presence, Subscribe, Updates,
    PROTOCOL_VERSION,
};
use crate::sync::chunk::chunk_updates;
use crate::sync::device_log::DeviceLog;
use crate::sync::intake::Intake;
use crate::sync::outcome::Acked;
use crate::update::UpdateRecord;
use crate::vv::{Causality, VersionVector};

/// Which documents a session syncs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SyncScope {
    /// The documents in the local store.
    LocalDocs,
    /// The local documents and every document on the relay whose id starts with the prefix
    /// (`""` = all documents the token can read).
    Prefix(String),
}

/// How a session identifies itself and what it syncs.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    pub token: Option<String>,
    pub scope: SyncScope,
    /// Ask for linearizable subscriptions: the relay node confirms with its cluster that it
    /// holds every committed entry before answering (slower; default false).
    pub linearizable: bool,
    /// The LSN the session starts from, as if it had already seen it (e.g. an earlier
    /// client's `ClientStatus::max_lsn`, so a new client never reads older state than it
    /// did); default 0.
    pub min_lsn: u64,
}

impl Default for ClientConfig {
    fn default() -> Self {
        ClientConfig {
            token: None,
            scope: SyncScope::Prefix(String::new()),
            linearizable: false,
            min_lsn: 0,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Disconnected,
    AwaitingWelcome,
    Ready,
}

/// How many times one connection resubscribes a document after `seq_gap` before refusing it.
const MAX_RESYNCS: u32 = 3;

/// Per-document sync state for the current connection.
#[derive(Debug, Default)]
struct DocState {
    /// What the relay held when it answered the subscription (then kept up to date with acks).
    server_version: Option<VersionVector>,
    /// Own updates up to this seq have been sent on this connection.
    sent_upto: u64,
}

/// The sans-IO sync state machine of a device, over its update log (the
/// [`Store`](crate::Store) in production).
pub struct ClientSession<L: DeviceLog> {
    log: L,
    config: ClientConfig,
    phase: Phase,
    docs: HashMap<String, DocState>,
    /// Subscribed documents not yet known to be in step with the relay.
    unsynced: HashSet<String>,
    /// Documents the relay refused on this connection (e.g. outside the token's scope):
    /// they cannot get in step, so they do not hold up [`ClientSession::is_synced`].
    refused: HashSet<String>,
    /// Documents resubscribed on this connection after a `seq_gap`, and how often.
    resynced: HashMap<String, u32>,
    /// Documents whose catch-up showed the relay lacking updates the device cannot resend:
    /// subscribed again with a linearizable read to confirm the loss (a lagging follower
    /// shows the same) before it is repaired.
    confirming: HashSet<String>,
    listed: bool,
    max_frame_bytes: usize,
    errors: Vec<ErrorFrame>,
    /// The highest log position acknowledged or served; never reset (see the module docs).
    max_lsn: u64,
    /// Acks received since the last [`ClientSession::take_acks`].
    acks: Vec<Acked>,
    /// This device's presence per document (kept across connections, sent once the
    /// document's catch-up arrived).
    presence: HashMap<String, Vec<u8>>,
    /// Presence of others received since the last [`ClientSession::take_presence`].
    presence_in: Vec<Presence>,
    /// The highest `Pong` nonce received (the driver's liveness probe).
    last_pong: u64,
    /// Whether received updates are held for [`ClientSession::apply_held`] (set by the
    /// driver) or applied as they are handled.
    hold_intake: bool,
    /// Received updates not yet applied (see [`crate::sync::intake`]).
    intake: Intake,
}

impl<L: DeviceLog> ClientSession<L> {
    pub fn new(log: L, config: ClientConfig) -> ClientSession<L> {
        let max_lsn = config.min_lsn;
        ClientSession {
            log,
            config,
            phase: Phase::Disconnected,
            docs: HashMap::new(),
            unsynced: HashSet::new(),
            refused: HashSet::new(),
            resynced: HashMap::new(),
            confirming: HashSet::new(),
            listed: false,
            max_frame_bytes: 1 << 20,
            errors: Vec::new(),
            max_lsn,
            acks: Vec::new(),
            presence: HashMap::new(),
            presence_in: Vec::new(),
            last_pong: 0,
            hold_intake: false,
            intake: Intake::default(),
        }
    }

    /// Hold received updates until [`ClientSession::apply_held`] (the driver does this for
    /// a background client, see [`crate::sync::intake`]) instead of applying them as they
    /// are handled. Turning it off applies nothing by itself.
    pub fn set_hold_intake(&mut self, hold: bool) {
        self.hold_intake = hold;
    }

    /// True when received updates wait to be applied.
    pub fn has_held_intake(&self) -> bool {
        !self.intake.is_empty()
    }

    /// How long updates that arrive now should wait before [`ClientSession::apply_held`]:
    /// the last apply's wall time times [`crate::sync::INTAKE_HOLD_FACTOR`], capped.
    pub fn intake_hold(&self) -> Duration {
        self.intake.hold()
    }

    /// Applies every held update, one batch per document; returns the messages to send
    /// (a resubscribe after a gap).
    pub fn apply_held(&mut self) -> Result<Vec<Message>> {
        let held = self.intake.take();
        if held.is_empty() {
            return Ok(vec![]);
        }
        let mut out = Vec::new();
        let mut result = Ok(());
        let mut took = Duration::ZERO;
        for u in held {
            match self.apply_updates(u, &mut took) {
                Ok(more) => out.extend(more),
                Err(e) => {
                    result = Err(e);
                    break;
                }
            }
        }
        self.intake.applied(took);
        result.map(|()| out)
    }

    /// The highest nonce of a `Pong` received: the relay had answered every frame sent
    /// before that `Ping` (it answers a connection's frames in order).
    pub fn last_pong(&self) -> u64 {
        self.last_pong
    }

    /// The highest log position (LSN) this session has been acknowledged or served. It is
    /// sent as `min_lsn` on every subscribe.
    pub fn max_lsn(&self) -> u64 {
        self.max_lsn
    }

    /// Acks received since the last call, in order, with the log position of each.
    pub fn take_acks(&mut self) -> Vec<Acked> {
        std::mem::take(&mut self.acks)
    }

    /// Sets this device's presence on `doc_id` (empty: withdraws it) and returns the
    /// message to send now: none while the document is not caught up on this connection
    /// (it is sent with the catch-up).
    pub fn set_presence(&mut self, doc_id: &str, state: Vec<u8>) -> Vec<Message> {
        if state.is_empty() {
            self.presence.remove(doc_id);
        } else {
            self.presence.insert(doc_id.to_string(), state.clone());
        }
        if self.caught_up(doc_id) {
            vec![self.presence_message(doc_id, state)]
        } else {
            vec![]
        }
    }

    /// This device's presence on every caught-up document, again (a refresh, so that
    /// peers that expire silent entries keep it).
    pub fn presence_refresh(&self) -> Vec<Message> {
        self.presence
            .iter()
            .filter(|(doc, _)| self.caught_up(doc))
            .map(|(doc, state)| self.presence_message(doc, state.clone()))
            .collect()
    }

    /// The request that lists the relay's documents in this device's scope again, so that
    /// documents others created after this connection listed them are found (a `DocList`
    /// subscribes what is new); nothing unless the scope is a prefix and the session ready.
    pub fn relist(&self) -> Vec<Message> {
        match &self.config.scope {
            SyncScope::Prefix(prefix) if self.phase == Phase::Ready => {
                vec![Message::ListDocs(ListDocs {
                    prefix: prefix.clone(),
                })]
            }
            _ => vec![],
        }
    }

    /// Presence of others received since the last call.
    pub fn take_presence(&mut self) -> Vec<Presence> {
        std::mem::take(&mut self.presence_in)
    }

    fn caught_up(&self, doc_id: &str) -> bool {
        self.phase == Phase::Ready
            && self
                .docs
                .get(doc_id)
                .is_some_and(|d| d.server_version.is_some())
    }

    fn presence_message(&self, doc_id: &str, state: Vec<u8>) -> Message {
        Message::Presence(Presence {
            doc_id: doc_id.to_string(),
            peer: 0,
            device_id: self.log.device_id(),
            state,
        })
    }

    fn seen_lsn(&mut self, lsn: u64) {
        self.max_lsn = self.max_lsn.max(lsn);
    }

    /// The device's update log.
    pub fn log(&self) -> &L {
        &self.log
    }

    /// The transport is up: returns the handshake.
    pub fn connected(&mut self) -> Vec<Message> {
        self.phase = Phase::AwaitingWelcome;
        // Errors of the last connection not yet taken (it ended on a store error) are not
        // an answer to this connection's Hello.
        self.errors.clear();
        self.docs.clear();
        self.unsynced.clear();
        self.refused.clear();
        self.resynced.clear();
        self.confirming.clear();
        self.listed = false;
        vec![Message::Hello(Hello {
            protocol_version: PROTOCOL_VERSION,
            device_id: self.log.device_id(),
            token: self.config.token.clone(),
        })]
    }

    /// The transport is gone; everything unacknowledged is resent after the next connect.
    pub fn disconnected(&mut self) {
        self.phase = Phase::Disconnected;
        self.docs.clear();
        self.unsynced.clear();
        self.refused.clear();
        self.resynced.clear();
        self.confirming.clear();
        self.listed = false;
    }

    pub fn is_ready(&self) -> bool {
        self.phase == Phase::Ready
    }

    /// True between sending the `Hello` and receiving the `Welcome`: an error without a
    /// document now answers the handshake.
    pub fn awaiting_welcome(&self) -> bool {
        self.phase == Phase::AwaitingWelcome
    }

    /// Error frames received since the last call.
    pub fn take_errors(&mut self) -> Vec<ErrorFrame> {
        std::mem::take(&mut self.errors)
    }

    /// True when every document is subscribed, holds all the relay held when it answered,
    /// and has nothing unacknowledged (and the relay's document list has arrived).
    /// Constant time: per-document state is re-checked as messages touch it.
    pub fn is_synced(&self) -> bool {
        self.phase == Phase::Ready
            && (self.listed || !matches!(self.config.scope, SyncScope::Prefix(_)))
            && self.unsynced.is_empty()
            && self.intake.is_empty()
    }

    /// Re-checks whether one document is in step with the relay.
    fn recheck(&mut self, doc_id: &str) -> Result<()> {
        if self.refused.contains(doc_id) {
            self.unsynced.remove(doc_id);
            return Ok(());
        }
        let Some(server) = self
            .docs
            .get(doc_id)
            .and_then(|d| d.server_version.as_ref())
        else {
            self.unsynced.insert(doc_id.to_string());
            return Ok(());
        };
        let local = self.log.version_vector(doc_id)?;
        let behind = matches!(
            local.compare(server),
            Causality::DominatedBy | Causality::Concurrent
        );
        if behind || self.log.pending(doc_id)? > 0 {
            self.unsynced.insert(doc_id.to_string());
        } else {
            self.unsynced.remove(doc_id);
        }
        Ok(())
    }

    /// Decodes and handles one frame; returns the messages to send.
    pub fn handle_frame(&mut self, frame: &[u8]) -> Result<Vec<Message>> {
        match protocol::decode(frame) {
            Ok(message) => self.handle(message),
            Err(e) => {
                self.errors.push(ErrorFrame {
                    code: e.code(),
                    message: format!("undecodable frame from the relay: {e}"),
                    doc_id: None,
                });
                Ok(vec![])
            }
        }
    }

    /// Handles frames that arrived together, in order. Consecutive `Updates` of a document
    /// (up to any message that must see them applied first) are applied as one batch: one
    /// store transaction and one CRDT apply instead of one per frame (group commit). While
    /// the intake is held (see [`ClientSession::set_hold_intake`]) they wait for
    /// [`ClientSession::apply_held`] instead.
    pub fn handle_frames<F: AsRef<[u8]>>(&mut self, frames: &[F]) -> Result<Vec<Message>> {
        let mut out = Vec::new();
        for frame in frames {
            match protocol::decode(frame.as_ref()) {
                Ok(message) => out.extend(self.take_in(message)?),
                Err(e) => self.errors.push(ErrorFrame {
                    code: e.code(),
                    message: format!("undecodable frame from the relay: {e}"),
                    doc_id: None,
                }),
            }
        }
        if !self.hold_intake {
            out.extend(self.apply_held()?);
        }
        Ok(out)
    }

    /// A local commit happened on `doc_id`: returns the updates to send now, if connected.
    pub fn local_change(&mut self, doc_id: &str) -> Result<Vec<Message>> {
        if self.phase != Phase::Ready {
            return Ok(vec![]);
        }
        if !self.docs.contains_key(doc_id) {
            // A document created locally after the connection came up.
            return self.subscribe(doc_id);
        }
        self.unsynced.insert(doc_id.to_string());
        let out = self.send_unsent(doc_id)?;
        if out.is_empty() {
            // Nothing new to send: another process on the same store (a `sync --watch`,
            // say) may have sent it and had it acknowledged already, and then no message
            // will come for this document on this connection. Check it now.
            self.recheck(doc_id)?;
        }
        Ok(out)
    }

    /// Handles one message from the relay; returns the messages to send.
    pub fn handle(&mut self, message: Message) -> Result<Vec<Message>> {
        let mut out = self.take_in(message)?;
        if !self.hold_intake {
            out.extend(self.apply_held()?);
        }
        Ok(out)
    }

    /// Handles one message, except that `Updates` join the held intake. A message that must
    /// see them applied first (a catch-up, an error, a welcome) applies them before it is
    /// handled; acks, presence and pings do not wait for them.
    fn take_in(&mut self, message: Message) -> Result<Vec<Message>> {
        match message {
            Message::Updates(u) => {
                // Its LSN counts as served once the updates are applied (`apply_updates`).
                if self.docs.contains_key(&u.doc_id) {
                    self.unsynced.insert(u.doc_id.clone());
                    self.intake.push(u);
                }
                Ok(vec![])
            }
            Message::Ack(_) | Message::Presence(_) | Message::Ping(_) | Message::Pong(_) => {
                self.handle_in_order(message)
            }
            _ => {
                let mut out = self.apply_held()?;
                out.extend(self.handle_in_order(message)?);
                Ok(out)
            }
        }
    }

    /// Applies one document's received updates; adds the store's time for it to `took`.
    fn apply_updates(&mut self, u: Updates, took: &mut Duration) -> Result<Vec<Message>> {
        if !self.docs.contains_key(&u.doc_id) || self.log.doc_kind(&u.doc_id)?.is_none() {
            return Ok(vec![]);
        }
        let gap = self.log.apply_remote(&u.doc_id, &u.updates)?;
        *took += self.log.last_apply_time();
        self.seen_lsn(u.lsn);
        if gap.is_some() {
            // Something was missed: ask again from what we hold.
            return self.subscribe(&u.doc_id);
        }
        self.recheck(&u.doc_id)?;
        Ok(vec![])
    }

    /// Handles a message other than `Updates`, in its turn.
    fn handle_in_order(&mut self, message: Message) -> Result<Vec<Message>> {
        match message {
            Message::Welcome(w) => {
                self.phase = Phase::Ready;
                self.max_frame_bytes = w.max_frame_bytes.max(1024) as usize;
                let mut out = Vec::new();
                for id in self.log.doc_ids()? {
                    out.extend(self.subscribe(&id)?);
                }
                if let SyncScope::Prefix(prefix) = &self.config.scope {
                    out.push(Message::ListDocs(ListDocs {
                        prefix: prefix.clone(),
                    }));
                }
                Ok(out)
            }
            Message::DocList(list) => {
                self.listed = true;
                let mut out = Vec::new();
                for (id, kind) in list.docs {
                    if self.log.doc_kind(&id)?.is_none() {
                        self.log.ensure_doc(&id, kind)?;
                        out.extend(self.subscribe(&id)?);
                    }
                }
                Ok(out)
            }
            Message::Catchup(c) => {
                self.seen_lsn(c.lsn);
                let doc_id = c.doc_id.clone();
                let mut out = self.catchup(c)?;
                if let Some(state) = self
                    .presence
                    .get(&doc_id)
                    .filter(|_| self.caught_up(&doc_id))
                {
                    out.push(self.presence_message(&doc_id, state.clone()));
                }
                Ok(out)
            }
            Message::Presence(p) => {
                if self.docs.contains_key(&p.doc_id) {
                    self.presence_in.push(p);
                }
                Ok(vec![])
            }
            Message::Updates(u) => {
                self.intake.push(u);
                self.apply_held()
            }
            Message::Ack(ack) => {
                self.seen_lsn(ack.lsn);
                self.log.acknowledge(&ack.doc_id, &ack.origin, ack.upto)?;
                self.acks.push(Acked {
                    doc_id: ack.doc_id.clone(),
                    origin: ack.origin.clone(),
                    upto: ack.upto,
                    lsn: ack.lsn,
                });
                if let Some(server) = self
                    .docs
                    .get_mut(&ack.doc_id)
                    .and_then(|d| d.server_version.as_mut())
                {
                    if server.get(&ack.origin) < ack.upto {
                        server.set(ack.origin.clone(), ack.upto);
                    }
                }
                if self.docs.contains_key(&ack.doc_id) {
                    self.recheck(&ack.doc_id)?;
                }
                Ok(vec![])
            }
            Message::Error(e) => {
                if let Some(out) = self.resync_after_gap(&e)? {
                    return Ok(out);
                }
                let out = if e.code == ErrorCode::SeqConflict {
                    self.restart_under_new_origin()?
                } else if e.code.switches_node() {
                    vec![] // the driver moves to another node; nothing is refused for good
                } else {
                    if let Some(doc) = e.doc_id.as_ref().filter(|d| self.docs.contains_key(*d)) {
                        // This document cannot sync on this connection; the rest go on.
                        self.refused.insert(doc.clone());
                        self.unsynced.remove(doc);
                    }
                    vec![]
                };
                self.errors.push(e);
                Ok(out)
            }
            Message::Ping(n) => Ok(vec![Message::Pong(n)]),
            Message::Pong(n) => {
                self.last_pong = self.last_pong.max(n);
                Ok(vec![])
            }
            Message::Hello(_)
            | Message::Subscribe(_)
            | Message::ListDocs(_)
            | Message::Unsubscribe(_) => {
                self.errors.push(ErrorFrame {
                    code: ErrorCode::UnknownMessage,
                    message: "the relay sent a client-only message".into(),
                    doc_id: None,
                });
                Ok(vec![])
            }
        }
    }

    /// A `seq_gap` on a document: the relay lacks earlier updates of this device that it
    /// was sent (a write lost with a cluster leader before it committed, or refused while
    /// an earlier one was still committing). Resubscribing makes the catch-up resend what
    /// the relay lacks. Bounded per connection: after that the document is refused.
    fn resync_after_gap(&mut self, e: &ErrorFrame) -> Result<Option<Vec<Message>>> {
        let Some(doc) = e.doc_id.as_ref().filter(|d| self.docs.contains_key(*d)) else {
            return Ok(None);
        };
        if e.code != ErrorCode::SeqGap {
            return Ok(None);
        }
        let count = self.resynced.entry(doc.clone()).or_default();
        if *count >= MAX_RESYNCS {
            return Ok(None);
        }
        *count += 1;
        let doc = doc.clone();
        self.subscribe(&doc).map(Some)
    }

    fn subscribe(&mut self, doc_id: &str) -> Result<Vec<Message>> {
        self.subscribe_with(doc_id, self.config.linearizable)
    }

    fn subscribe_with(&mut self, doc_id: &str, linearizable: bool) -> Result<Vec<Message>> {
        let kind: DocKind = match self.log.doc_kind(doc_id)? {
            Some(k) => k,
            None => return Ok(vec![]),
        };
        self.docs.insert(doc_id.to_string(), DocState::default());
        self.unsynced.insert(doc_id.to_string());
        Ok(vec![Message::Subscribe(Subscribe {
            doc_id: doc_id.to_string(),
            kind,
            version: self.log.version_vector(doc_id)?,
            min_lsn: self.max_lsn,
            linearizable,
        })])
    }

    fn catchup(&mut self, c: protocol::Catchup) -> Result<Vec<Message>> {
        if !self.docs.contains_key(&c.doc_id) {
            return Ok(vec![]);
        }
        let device: Origin = self.log.device_id();
        let local = self.log.version_vector(&c.doc_id)?;
        if c.server_version.get(&device) > local.get(&device) {
            // The relay holds updates from this device that the device does not: it was
            // restored from an old backup. Never reuse those sequence numbers.
            return self.restart_under_new_origin();
        }
        if let Some(snapshot) = &c.snapshot {
            self.log
                .apply_catchup_snapshot(&c.doc_id, &snapshot.data, &snapshot.covers)?;
        }
        // Outbox entries the relay claims to hold are resent, not assumed acknowledged: the
        // relay acknowledges identical bytes (an ack lost in a crash) and refuses different
        // ones with `seq_conflict` (a device restored from a backup reused the numbers).
        let mut to_send: Vec<_> = self
            .log
            .outbox(&c.doc_id)?
            .into_iter()
            .filter(|u| c.server_version.contains(&u.origin, u.seq))
            .collect();
        let missing = self
            .log
            .updates_missing_from(&c.doc_id, &c.server_version)?;
        // Origins of which the relay holds fewer updates than this device, which cannot
        // resend the next one by itself: the relay lost them (a leader under the `leader`
        // write concern died before passing acknowledged updates on, or it was restored
        // from an old backup) after the device folded them into its checkpoint.
        let lost: Vec<(Origin, u64)> = local
            .iter()
            .filter(|(origin, seq)| *seq > c.server_version.get(origin))
            .filter(|(origin, _)| {
                let has = c.server_version.get(origin);
                let next = missing
                    .iter()
                    .filter(|u| &u.origin == *origin)
                    .map(|u| u.seq)
                    .min();
                next != Some(has + 1)
            })
            .map(|(origin, _)| (origin.clone(), c.server_version.get(origin)))
            .collect();
        if !lost.is_empty() {
            // A lagging follower shows the same as a relay that lost updates: first ask
            // again with a linearizable read (the node holds every committed entry).
            if self.confirming.insert(c.doc_id.clone()) {
                return self.subscribe_with(&c.doc_id, true);
            }
            self.confirming.remove(&c.doc_id);
            // Their content goes out as whole-document updates; subscribe again to send
            // it (every document, when the device took a new origin).
            let own = c.server_version.get(&device);
            let renewed = self.log.repair_lost(&c.doc_id, &lost, own)?;
            if renewed {
                return self.resubscribe_all();
            }
            return self.subscribe(&c.doc_id);
        }
        self.confirming.remove(&c.doc_id);
        to_send.extend(sendable(missing, &c.server_version));
        let state = self.docs.get_mut(&c.doc_id).expect("checked above");
        state.server_version = Some(c.server_version.clone());
        state.sent_upto = to_send
            .iter()
            .filter(|u| u.origin == device)
            .map(|u| u.seq)
            .max()
            .unwrap_or(0)
            .max(c.server_version.get(&device));
        self.recheck(&c.doc_id)?;
        Ok(chunk_updates(
            &c.doc_id,
            to_send,
            self.max_frame_bytes / 2,
            0,
        ))
    }

    fn send_unsent(&mut self, doc_id: &str) -> Result<Vec<Message>> {
        let Some(state) = self.docs.get_mut(doc_id) else {
            return Ok(vec![]);
        };
        if state.server_version.is_none() {
            return Ok(vec![]); // sent once the catch-up arrives
        }
        let unsent = self.log.outbox_after(doc_id, state.sent_upto)?;
        if let Some(last) = unsent.last() {
            state.sent_upto = last.seq;
        }
        Ok(chunk_updates(doc_id, unsent, self.max_frame_bytes / 2, 0))
    }

    /// Takes a new origin and subscribes every document again.
    fn restart_under_new_origin(&mut self) -> Result<Vec<Message>> {
        self.log.reoriginate()?;
        self.resubscribe_all()
    }

    fn resubscribe_all(&mut self) -> Result<Vec<Message>> {
        let ids: Vec<String> = self.docs.keys().cloned().collect();
        let mut out = Vec::new();
        for id in ids {
            out.extend(self.subscribe(&id)?);
        }
        Ok(out)
    }
}

/// The updates the relay can take, in order: per origin only the run that continues what
/// it holds (`have`). An update past a gap — another device's update whose predecessor
/// this device never held, or no longer holds — would only be refused with `seq_gap`.
fn sendable(missing: Vec<UpdateRecord>, have: &VersionVector) -> Vec<UpdateRecord> {
    let mut next: HashMap<Origin, u64> = HashMap::new();
    missing
        .into_iter()
        .filter(|u| {
            let expected = next
                .entry(u.origin.clone())
                .or_insert_with(|| have.get(&u.origin) + 1);
            if u.seq == *expected {
                *expected += 1;
                true
            } else {
                false
            }
        })
        .collect()
}

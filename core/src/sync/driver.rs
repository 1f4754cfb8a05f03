//! The device's sync driver, sans IO, in quinn-proto's style: every protocol decision a
//! client makes around its [`ClientSession`] — when to connect and to which relay URL,
//! reconnect backoff with jitter, keepalive pings, polling for other processes' commits,
//! listing a prefix scope again every presence beat (documents others created since),
//! which relay errors end the run, collecting per-document refusals, when a one-shot sync
//! is done — with time passed in and work handed out as [`DriverEvent`]s.
//!
//! A shell (native, browser, FFI) owns only the socket and a timer. It loops: wait for a
//! frame, a local commit or [`ClientDriver::poll_timeout`]; feed the driver
//! (`handle_*`); drain [`ClientDriver::poll_event`]. Time is a [`Duration`] since any
//! fixed origin the shell picks (so the driver also runs where `Instant` does not).
//!
//! Several relay URLs are the nodes of one cluster: every attempt takes the next one. A
//! node that answers `replica_behind` or `unavailable` is left the same way as a broken
//! connection (back off, next URL, subscribe again, resend the outbox). A one-shot sync
//! retries those until its timeout, and gives up on unreachable nodes only once every URL
//! in a row has failed to connect.

use std::collections::VecDeque;
use std::time::Duration;

use crate::error::Result;
use crate::protocol::{self, ErrorFrame, Message};
use crate::sync::backoff::{Backoff, RandomSource};
use crate::sync::device_log::DeviceLog;
use crate::sync::outcome::{Acked, ClientError, ClientStatus, Disconnect};
use crate::sync::presence::{PeerState, PresenceView, PRESENCE_REFRESH};
use crate::sync::session::{ClientConfig, ClientSession};

/// A ping is sent this long after the last one was answered (or the connection opened),
/// busy or idle: the relay answers a connection's frames in order, so its `Pong` shows that
/// every request sent before the ping was carried out.
pub const KEEPALIVE_AFTER: Duration = Duration::from_secs(20);
/// How often a connected driver looks for commits made by other processes on its log.
pub const EXTERNAL_POLL_EVERY: Duration = Duration::from_millis(250);
/// A connection that brought no frame for this long, or left a ping unanswered for this
/// long, is taken as dead and replaced by one to the next URL: a relay node that hangs with
/// the socket open, or one that still forwards other devices' updates while this
/// connection's requests get no answer.
pub const SILENT_AFTER: Duration = Duration::from_secs(30);

/// The longest pause between a one-shot sync's attempts (it has a timeout of its own).
const ONCE_MAX_BACKOFF: Duration = Duration::from_secs(2);

/// How long a driver runs.
#[derive(Debug, Clone)]
pub enum DriverMode {
    /// Sync until this device and the relay hold the same updates, then close. It ends at
    /// `timeout`, or when every URL has failed to connect in a row (with one URL: at the
    /// first connection failure); a node's `replica_behind`/`unavailable` is retried on the
    /// next URL.
    Once { timeout: Duration },
    /// Keep syncing, reconnecting after failures with `backoff`, until the relay refuses
    /// the connection for good or the shell stops.
    Background { backoff: Backoff },
}

/// Work for the shell, in order.
#[derive(Debug)]
pub enum DriverEvent {
    /// Open a connection to this URL, then call [`ClientDriver::handle_connected`] or
    /// [`ClientDriver::handle_disconnected`].
    Connect(String),
    /// Send these bytes as one binary frame.
    Transmit(Vec<u8>),
    /// Close the connection (or abandon the attempt). The driver already counts it as gone:
    /// do not report its end.
    Close,
    /// The status changed.
    Status(ClientStatus),
    /// The relay refused this document for good on this connection; the others go on.
    Refused(ErrorFrame),
    /// The relay acknowledged updates (one event per `Ack`, with its log position).
    Acked(Acked),
    /// Who is present on this document changed (see [`ClientDriver::presence`]).
    Presence(String),
    /// The driver is done; no further events follow.
    Ended(std::result::Result<(), ClientError>),
}

/// The state of the transport as the driver sees it.
#[derive(Debug)]
enum Link {
    /// Not connected; connect at `at`.
    Waiting {
        at: Duration,
    },
    Connecting,
    Connected {
        /// When the next ping is due (none while one is unanswered).
        ping_at: Duration,
        /// The unanswered ping: its nonce and when it was sent.
        probe: Option<(u64, Duration)>,
        poll_at: Duration,
        external_seen: u64,
        /// When the last frame from the relay arrived.
        heard_at: Duration,
        /// When this device's presence is re-sent and silent peers are dropped.
        presence_at: Duration,
    },
    Ended,
}

/// The sans-IO sync driver of a device (see the module docs).
pub struct ClientDriver<L: DeviceLog, R: RandomSource> {
    session: ClientSession<L>,
    mode: DriverMode,
    urls: Vec<String>,
    connects: usize,
    random: R,
    link: Link,
    deadline: Option<Duration>,
    /// Failed attempts since the last handshake that succeeded.
    attempt: u32,
    /// Connections that failed in a row (transport failures) since the last handshake that
    /// succeeded: a one-shot sync gives up when every URL has failed.
    unreachable: usize,
    /// Nodes in a row that answered `replica_behind`/`unavailable` after a handshake, since
    /// the last ack or full sync: the backoff keeps growing across them.
    node_refusals: u32,
    refusals: Vec<ErrorFrame>,
    status: ClientStatus,
    events: VecDeque<DriverEvent>,
    presence: PresenceView,
    /// The nonce of the last ping sent (pings are numbered for the driver's life).
    pings: u64,
    /// When the updates held by the session are applied (see [`crate::sync::intake`]).
    intake_at: Option<Duration>,
}

impl<L: DeviceLog, R: RandomSource> ClientDriver<L, R> {
    /// A driver that starts by connecting to `urls[0]` (after failures it rotates through
    /// `urls`, one per attempt). `now` is the shell's clock reading.
    ///
    /// # Panics
    /// If `urls` is empty.
    pub fn new(
        log: L,
        config: ClientConfig,
        urls: Vec<String>,
        mode: DriverMode,
        random: R,
        now: Duration,
    ) -> ClientDriver<L, R> {
        assert!(!urls.is_empty(), "a sync driver needs a relay URL");
        let deadline = match &mode {
            DriverMode::Once { timeout } => Some(now.saturating_add(*timeout)),
            DriverMode::Background { .. } => None,
        };
        let mut driver = ClientDriver {
            session: ClientSession::new(log, config),
            mode,
            urls,
            connects: 0,
            random,
            link: Link::Waiting { at: now },
            deadline,
            attempt: 0,
            unreachable: 0,
            node_refusals: 0,
            refusals: Vec::new(),
            status: ClientStatus::default(),
            events: VecDeque::new(),
            presence: PresenceView::default(),
            pings: 0,
            intake_at: None,
        };
        // A background client holds live updates while it is busy applying (see
        // `sync::intake`); a one-shot sync applies each batch as it comes.
        let hold = matches!(driver.mode, DriverMode::Background { .. });
        driver.session.set_hold_intake(hold);
        driver.connect();
        driver
    }

    /// The next piece of work for the shell.
    pub fn poll_event(&mut self) -> Option<DriverEvent> {
        self.events.pop_front()
    }

    /// When [`ClientDriver::handle_timeout`] is next due, if ever.
    pub fn poll_timeout(&self) -> Option<Duration> {
        let link = match self.link {
            Link::Waiting { at } => Some(at),
            Link::Connected {
                ping_at,
                probe,
                poll_at,
                heard_at,
                presence_at,
                ..
            } => Some(
                probe
                    .map_or(ping_at, |(_, sent)| sent + SILENT_AFTER)
                    .min(poll_at)
                    .min(presence_at)
                    .min(heard_at + SILENT_AFTER),
            ),
            Link::Connecting => None,
            Link::Ended => return None,
        };
        let link = match (link, self.intake_at) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        match (link, self.deadline) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// The session over the device's log.
    pub fn session(&self) -> &ClientSession<L> {
        &self.session
    }

    /// The highest log position (LSN) acknowledged or served so far (see
    /// [`ClientSession::max_lsn`]); it lives as long as the driver.
    pub fn max_lsn(&self) -> u64 {
        self.session.max_lsn()
    }

    /// The current status (`pending` is left for the shell to fill in).
    pub fn status(&self) -> &ClientStatus {
        &self.status
    }

    /// True once [`DriverEvent::Ended`] has been emitted.
    pub fn is_ended(&self) -> bool {
        matches!(self.link, Link::Ended)
    }

    /// Time passed: reconnect, ping, poll for other processes' commits, or give up.
    pub fn handle_timeout(&mut self, now: Duration) {
        if self.is_ended() {
            return;
        }
        if let (Some(deadline), DriverMode::Once { timeout }) = (self.deadline, &self.mode) {
            if now >= deadline {
                let timeout = *timeout;
                self.end(Err(ClientError::Timeout(timeout)));
                return;
            }
        }
        if self.intake_at.is_some_and(|at| now >= at) {
            self.intake_at = None;
            let result = self.session.apply_held();
            self.after_step(now, result);
            if self.is_ended() {
                return;
            }
        }
        match &mut self.link {
            Link::Waiting { at } if now >= *at => self.connect(),
            Link::Connected { heard_at, .. } if now >= *heard_at + SILENT_AFTER => {
                self.events.push_back(DriverEvent::Close);
                self.connection_lost(
                    now,
                    ClientError::Disconnected(format!(
                        "no frame from the relay for {} s",
                        SILENT_AFTER.as_secs()
                    )),
                );
            }
            Link::Connected {
                probe: Some((_, sent)),
                ..
            } if now >= *sent + SILENT_AFTER => {
                self.events.push_back(DriverEvent::Close);
                self.connection_lost(
                    now,
                    ClientError::Disconnected(format!(
                        "the relay answered no ping for {} s (its requests hang)",
                        SILENT_AFTER.as_secs()
                    )),
                );
            }
            Link::Connected {
                ping_at,
                probe,
                poll_at,
                external_seen,
                presence_at,
                ..
            } => {
                let ping = probe.is_none() && now >= *ping_at;
                if ping {
                    self.pings += 1;
                    *probe = Some((self.pings, now));
                }
                let presence = now >= *presence_at;
                if presence {
                    *presence_at = now + PRESENCE_REFRESH;
                }
                let mut external = false;
                if now >= *poll_at {
                    *poll_at = now + EXTERNAL_POLL_EVERY;
                    let seen = self.session.log().external_changes();
                    external = seen != *external_seen;
                    *external_seen = seen;
                }
                if external {
                    // Another process committed to the log: it may have added local updates.
                    let result = self.send_all_local_changes();
                    self.after_step(now, result);
                }
                if presence && matches!(self.link, Link::Connected { .. }) {
                    let mut refresh = self.session.presence_refresh();
                    // On the same beat, documents others created since the last listing.
                    refresh.extend(self.session.relist());
                    self.transmit(refresh);
                    for doc in self.presence.expire(now) {
                        self.events.push_back(DriverEvent::Presence(doc));
                    }
                }
                if ping && matches!(self.link, Link::Connected { .. }) {
                    self.transmit(vec![Message::Ping(self.pings)]);
                }
            }
            _ => {}
        }
    }

    /// The connection asked for by [`DriverEvent::Connect`] is open.
    pub fn handle_connected(&mut self, now: Duration) {
        if !matches!(self.link, Link::Connecting) {
            return;
        }
        self.link = Link::Connected {
            ping_at: now + KEEPALIVE_AFTER,
            probe: None,
            poll_at: now + EXTERNAL_POLL_EVERY,
            external_seen: self.session.log().external_changes(),
            heard_at: now,
            presence_at: now + PRESENCE_REFRESH,
        };
        self.refusals.clear();
        let hello = self.session.connected();
        self.transmit(hello);
        self.status.connected = true;
        self.status.retries = 0;
        self.status.last_error = None;
        self.emit_status();
    }

    /// The connection failed to open, broke, or the relay closed it.
    pub fn handle_disconnected(&mut self, now: Duration, reason: Disconnect) {
        if matches!(self.link, Link::Connecting | Link::Connected { .. }) {
            self.connection_lost(now, reason.into());
        }
    }

    /// A binary frame from the relay.
    pub fn handle_frame(&mut self, now: Duration, frame: &[u8]) {
        if let Link::Connected { heard_at, .. } = &mut self.link {
            *heard_at = now;
            let result = self.session.handle_frame(frame);
            self.after_step(now, result);
        }
    }

    /// Frames that were waiting together on the connection: applied as one batch per
    /// document (see [`ClientSession::handle_frames`]).
    pub fn handle_frames<F: AsRef<[u8]>>(&mut self, now: Duration, frames: &[F]) {
        if let Link::Connected { heard_at, .. } = &mut self.link {
            *heard_at = now;
            let result = self.session.handle_frames(frames);
            self.after_step(now, result);
        }
    }

    /// A local commit happened on `doc_id`.
    pub fn handle_local_change(&mut self, now: Duration, doc_id: &str) {
        if matches!(self.link, Link::Connected { .. }) {
            let result = self.session.local_change(doc_id);
            self.after_step(now, result);
        }
    }

    /// Sets this device's presence on `doc_id` (empty: withdraws it): sent now when the
    /// document is in sync on this connection, else once it is; re-sent after reconnects
    /// and every [`PRESENCE_REFRESH`].
    pub fn set_presence(&mut self, _now: Duration, doc_id: &str, state: Vec<u8>) {
        let out = self.session.set_presence(doc_id, state);
        if matches!(self.link, Link::Connected { .. }) {
            self.transmit(out);
        }
    }

    /// The others present on `doc_id` (as of the last [`DriverEvent::Presence`]).
    pub fn presence(&self, doc_id: &str) -> Vec<PeerState> {
        self.presence.peers(doc_id)
    }

    fn send_all_local_changes(&mut self) -> Result<Vec<Message>> {
        let mut out = Vec::new();
        for doc_id in self.session.log().doc_ids()? {
            out.extend(self.session.local_change(&doc_id)?);
        }
        Ok(out)
    }

    fn connect(&mut self) {
        let url = self.urls[self.connects % self.urls.len()].clone();
        self.connects = self.connects.wrapping_add(1);
        self.link = Link::Connecting;
        self.events.push_back(DriverEvent::Connect(url));
    }

    /// The one place messages become frames.
    fn transmit(&mut self, messages: Vec<Message>) {
        if messages.is_empty() {
            return;
        }
        self.events.extend(
            messages
                .iter()
                .map(|m| DriverEvent::Transmit(protocol::encode(m))),
        );
    }

    /// After the session handled something: send its answer, act on the relay's errors,
    /// and finish a one-shot sync that is done.
    fn after_step(&mut self, now: Duration, result: Result<Vec<Message>>) {
        if let Link::Connected { ping_at, probe, .. } = &mut self.link {
            if probe.is_some_and(|(nonce, _)| self.session.last_pong() >= nonce) {
                *probe = None;
                *ping_at = now + KEEPALIVE_AFTER;
            }
        }
        for p in self.session.take_presence() {
            let doc = p.doc_id.clone();
            if self.presence.apply(now, p) {
                self.events.push_back(DriverEvent::Presence(doc));
            }
        }
        let acks = self.session.take_acks();
        if !acks.is_empty() {
            self.node_refusals = 0;
        }
        self.events.extend(acks.into_iter().map(DriverEvent::Acked));
        if self.session.max_lsn() != self.status.max_lsn {
            self.status.max_lsn = self.session.max_lsn();
            self.emit_status();
        }
        match result {
            Ok(messages) => self.transmit(messages),
            Err(e) => {
                self.events.push_back(DriverEvent::Close);
                self.connection_lost(now, ClientError::Store(e));
                return;
            }
        }
        if self.session.is_ready() {
            self.attempt = 0;
            self.unreachable = 0;
        }
        if self.session.is_synced() {
            self.node_refusals = 0;
        }
        self.act_on_errors(now);
        self.schedule_intake(now);
        if matches!(self.mode, DriverMode::Once { .. })
            && !self.is_ended()
            && self.session.is_synced()
        {
            let result = if self.refusals.is_empty() {
                Ok(())
            } else {
                Err(ClientError::DocumentsRefused(std::mem::take(
                    &mut self.refusals,
                )))
            };
            self.end(result);
        }
    }

    /// Applies the updates the session holds before the connection or the driver goes. A
    /// failure is reported in the status; what was not applied is still on the relay, and
    /// the next catch-up brings it again.
    fn apply_held_before_leaving(&mut self) {
        if let Err(e) = self.session.apply_held() {
            self.status.last_error = Some(format!("applying received updates: {e}"));
        }
    }

    /// Sets when the updates the session holds are applied: after the session's hold from
    /// the first of them, or now when the hold is zero (the last apply was cheap).
    fn schedule_intake(&mut self, now: Duration) {
        if !self.session.has_held_intake() || !matches!(self.link, Link::Connected { .. }) {
            self.intake_at = None;
            return;
        }
        if self.intake_at.is_some() {
            return;
        }
        let hold = self.session.intake_hold();
        if hold.is_zero() {
            let result = self.session.apply_held();
            self.after_step(now, result);
        } else {
            self.intake_at = Some(now + hold);
        }
    }

    /// Decides on the error frames the relay sent.
    fn act_on_errors(&mut self, now: Duration) {
        let errors = self.session.take_errors();
        if errors.is_empty() {
            return;
        }
        let once = matches!(self.mode, DriverMode::Once { .. });
        for error in errors {
            self.status.last_error = Some(format!("{} ({})", error.message, error.code.name()));
            // An error without a document before the Welcome answers the handshake.
            let handshake = error.doc_id.is_none() && self.session.awaiting_welcome();
            if (error.doc_id.is_none() && error.code.ends_session())
                || (handshake && error.code.refuses_handshake())
            {
                // The connection as a whole was refused (token, version, frames the relay
                // cannot read): reconnecting with the same settings cannot succeed.
                if !once {
                    self.status.stopped = Some(error.clone());
                }
                self.end(Err(ClientError::Refused(error)));
                return;
            }
            if error.code.switches_node() || (handshake && !once) {
                // This node cannot serve us now (behind our `min_lsn`, no leader, write
                // concern not met, or it failed the handshake, which no Welcome follows):
                // leave it, back off, try the next URL. The outbox stays and is resent
                // there.
                self.events.push_back(DriverEvent::Close);
                self.connection_lost(now, ClientError::Refused(error));
                return;
            }
            if error.code.is_retryable() {
                continue; // the session resyncs, or the relay closes and we reconnect
            }
            match &error.doc_id {
                None if once => {
                    self.end(Err(ClientError::Refused(error)));
                    return;
                }
                // One document was refused: the others go on; report it once.
                Some(doc) if !self.refusals.iter().any(|r| r.doc_id.as_ref() == Some(doc)) => {
                    self.refusals.push(error.clone());
                    self.events.push_back(DriverEvent::Refused(error));
                }
                _ => {}
            }
        }
        self.emit_status();
    }

    /// The connection is gone: a background driver schedules a retry (on the next URL). A
    /// one-shot sync does too after a node's `replica_behind`/`unavailable`, or after a
    /// transport failure while some URL has not yet failed in a row; otherwise it ends.
    fn connection_lost(&mut self, now: Duration, error: ClientError) {
        // Updates that arrived before the connection went are applied now. If that fails
        // the rest are dropped: the next connection's catch-up brings them again.
        self.intake_at = None;
        self.apply_held_before_leaving();
        self.session.disconnected();
        for doc in self.presence.clear() {
            self.events.push_back(DriverEvent::Presence(doc));
        }
        self.events
            .retain(|e| !matches!(e, DriverEvent::Transmit(_)));
        self.status.connected = false;
        let transport = matches!(
            error,
            ClientError::Connect { .. } | ClientError::Disconnected(_) | ClientError::Closed { .. }
        );
        if transport {
            self.unreachable = self.unreachable.saturating_add(1);
        }
        if matches!(&error, ClientError::Refused(e) if e.code.switches_node()) {
            self.node_refusals = self.node_refusals.saturating_add(1);
        }
        let backoff = match &self.mode {
            DriverMode::Background { backoff } => backoff.clone(),
            DriverMode::Once { .. } => {
                let retry = match &error {
                    ClientError::Refused(e) => e.code.switches_node(),
                    _ => transport && self.unreachable < self.urls.len(),
                };
                if !retry {
                    self.link = Link::Ended;
                    self.events.push_back(DriverEvent::Ended(Err(error)));
                    return;
                }
                Backoff {
                    max: ONCE_MAX_BACKOFF,
                    ..Backoff::default()
                }
            }
        };
        // A node refusal comes after a handshake (which resets `attempt`): count those in a
        // row too, so that a cluster with no node able to serve is not hammered.
        let attempt = self.attempt.max(self.node_refusals.saturating_sub(1));
        let delay = backoff.delay(attempt, &mut self.random);
        self.status.last_error = Some(error.to_string());
        self.status.retries = attempt.saturating_add(1);
        self.attempt = attempt.saturating_add(1);
        self.link = Link::Waiting { at: now + delay };
        self.emit_status();
    }

    /// Ends the run at the app's request: the updates the session holds are applied first
    /// (see `sync::intake`), then the connection is closed ([`DriverEvent::Close`],
    /// [`DriverEvent::Ended`] with `Ok`). Nothing happens if the run already ended.
    pub fn stop(&mut self) {
        if !self.is_ended() {
            self.end(Ok(()));
        }
    }

    /// Closes whatever connection there is and ends the run.
    fn end(&mut self, result: std::result::Result<(), ClientError>) {
        self.intake_at = None;
        self.apply_held_before_leaving();
        if matches!(self.link, Link::Connecting | Link::Connected { .. }) {
            self.session.disconnected();
            self.events.push_back(DriverEvent::Close);
            self.status.connected = false;
        }
        self.link = Link::Ended;
        self.emit_status();
        self.events.push_back(DriverEvent::Ended(result));
    }

    fn emit_status(&mut self) {
        self.events
            .push_back(DriverEvent::Status(self.status.clone()));
    }
}

//! A device's [`ClientDriver`] over a [`MemLog`] wired to a [`FakeRelay`] on a simulated
//! clock, in the style of quinn's `tests/util.rs` `Pair`: frames move instantly, and time
//! moves only when the test says so.

use std::time::Duration;

use concord_core::protocol::{self, ErrorFrame};
use concord_core::sync::{
    Acked, ClientConfig, ClientDriver, ClientError, ClientStatus, Disconnect, DriverEvent,
    DriverMode, SeededRandom,
};

use crate::fake_relay::FakeRelay;
use crate::mem_log::MemLog;

pub struct Pair {
    pub now: Duration,
    pub driver: ClientDriver<MemLog, SeededRandom>,
    pub log: MemLog,
    pub relay: FakeRelay,
    /// The transport is open.
    pub connected: bool,
    /// Every connection attempt: (when, URL).
    pub connects: Vec<(Duration, String)>,
    pub closes: usize,
    pub refused: Vec<ErrorFrame>,
    /// Every acknowledgement the driver reported.
    pub acked: Vec<Acked>,
    pub status: ClientStatus,
    pub ended: Option<Result<(), ClientError>>,
}

impl Pair {
    pub fn new(log: MemLog, relay: FakeRelay, mode: DriverMode, urls: &[&str], seed: u64) -> Pair {
        Pair::with_config(log, relay, mode, urls, seed, ClientConfig::default())
    }

    pub fn with_config(
        log: MemLog,
        relay: FakeRelay,
        mode: DriverMode,
        urls: &[&str],
        seed: u64,
        config: ClientConfig,
    ) -> Pair {
        let now = Duration::from_secs(1000);
        let driver = ClientDriver::new(
            log.clone(),
            config,
            urls.iter().map(|u| u.to_string()).collect(),
            mode,
            SeededRandom::new(seed),
            now,
        );
        let mut pair = Pair {
            now,
            driver,
            log,
            relay,
            connected: false,
            connects: Vec::new(),
            closes: 0,
            refused: Vec::new(),
            acked: Vec::new(),
            status: ClientStatus::default(),
            ended: None,
        };
        pair.drive();
        pair
    }

    /// Carries out the driver's events (and the relay's answers) until both are quiet,
    /// without moving the clock.
    pub fn drive(&mut self) {
        while let Some(event) = self.driver.poll_event() {
            match event {
                DriverEvent::Connect(url) => {
                    self.connects.push((self.now, url.clone()));
                    self.relay.url = url.clone();
                    if self.relay.up && !self.relay.down.contains(&url) {
                        self.connected = true;
                        self.driver.handle_connected(self.now);
                    } else {
                        let reason = "connection refused".to_string();
                        self.driver.handle_disconnected(
                            self.now,
                            Disconnect::ConnectFailed { url, reason },
                        );
                    }
                }
                DriverEvent::Transmit(frame) => {
                    assert!(self.connected, "a frame sent without a connection");
                    let message = protocol::decode(&frame).expect("the driver sends valid frames");
                    for reply in self.relay.handle(message) {
                        self.driver
                            .handle_frame(self.now, &protocol::encode(&reply));
                    }
                }
                DriverEvent::Close => {
                    self.connected = false;
                    self.closes += 1;
                }
                DriverEvent::Status(status) => self.status = status,
                DriverEvent::Refused(error) => self.refused.push(error),
                DriverEvent::Acked(ack) => self.acked.push(ack),
                // Presence is covered against a real relay (sync-server/tests/presence.rs).
                DriverEvent::Presence(_) => {}
                DriverEvent::Ended(result) => {
                    assert!(self.ended.is_none(), "ended twice");
                    self.ended = Some(result);
                }
            }
        }
    }

    /// A local commit, reported the way a store's change subscription reports it.
    pub fn commit(&mut self, doc_id: &str, data: &[u8]) {
        self.log.commit(doc_id, data);
        self.driver.handle_local_change(self.now, doc_id);
        self.drive();
    }

    /// Moves the clock to the driver's next timeout and handles it. Returns false when
    /// the driver wants no timeout.
    pub fn step_timeout(&mut self) -> bool {
        let Some(at) = self.driver.poll_timeout() else {
            return false;
        };
        self.now = self.now.max(at);
        self.driver.handle_timeout(self.now);
        self.drive();
        true
    }

    /// Moves the clock by `by`, handling every timeout due on the way.
    pub fn advance(&mut self, by: Duration) {
        let until = self.now + by;
        while let Some(at) = self.driver.poll_timeout().filter(|at| *at <= until) {
            self.now = self.now.max(at);
            self.driver.handle_timeout(self.now);
            self.drive();
        }
        self.now = until;
    }

    /// A frame the relay sends unasked (another device's updates, fanned out).
    pub fn push(&mut self, message: &concord_core::protocol::Message) {
        assert!(self.connected);
        self.driver
            .handle_frame(self.now, &protocol::encode(message));
        self.drive();
    }

    /// The transport breaks.
    pub fn break_connection(&mut self) {
        assert!(self.connected);
        self.connected = false;
        self.driver
            .handle_disconnected(self.now, Disconnect::Lost("reset by peer".into()));
        self.drive();
    }
}

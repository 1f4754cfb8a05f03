//! The sync protocol as sans-IO state machines: messages in, messages out.
//!
//! [`ClientSession`] runs on a device over its [`DeviceLog`] (the [`crate::Store`]);
//! [`ClientDriver`] wraps it with every decision a client makes about connections (backoff,
//! keepalive, fatal errors, when a one-shot sync is done). [`RelaySession`] runs on the
//! server for one connection and hands document work to its host as [`RelayRequest`]s.
//! Transports (tokio, browser WebSocket, tests that shuffle messages) are thin shells that
//! move frames between them.

mod append_rules;
mod backoff;
mod chunk;
mod device_log;
mod driver;
mod intake;
mod outcome;
mod presence;
mod relay_request;
mod relay_session;
#[cfg(test)]
mod relay_session_tests;
mod rights;
mod session;

pub use append_rules::{plan_append, plan_append_batched, update_refusal, AppendPlan, DocHead};
pub use backoff::{Backoff, OsRandom, RandomSource, SeededRandom};
pub use chunk::chunk_updates;
pub use device_log::DeviceLog;
pub use driver::{
    ClientDriver, DriverEvent, DriverMode, EXTERNAL_POLL_EVERY, KEEPALIVE_AFTER, SILENT_AFTER,
};
pub use intake::{INTAKE_HOLD_FACTOR, MAX_INTAKE_HOLD};
pub use outcome::{Acked, ClientError, ClientStatus, Disconnect};
pub use presence::{PeerState, PresenceView, PRESENCE_REFRESH, PRESENCE_TIMEOUT};
pub use relay_request::{
    AppendOutcome, Authenticator, CatchupData, Completion, RelayOutput, RelayRefusal, RelayRequest,
    RequestId,
};
pub use relay_session::RelaySession;
pub use rights::{Right, Rights};
pub use session::{ClientConfig, ClientSession, SyncScope};

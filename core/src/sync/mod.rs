//! The sync protocol as sans-IO state machines: messages in, messages out.
//!
//! [`ClientSession`] runs on a device over its [`DeviceLog`] (the [`crate::Store`]);
//! [`ClientDriver`] wraps it with every decision a client makes about connections (backoff,
//! keepalive, fatal errors, when a one-shot sync is done). [`RelaySession`] runs on the
//! server for one connection over a [`RelayBackend`]. Transports (native or browser
//! WebSocket, tests that shuffle messages) are thin shells that move frames between them.

mod backoff;
mod chunk;
mod device_log;
mod driver;
mod outcome;
mod relay;
mod rights;
mod session;

pub use backoff::{Backoff, OsRandom, RandomSource, SeededRandom};
pub use chunk::chunk_updates;
pub use device_log::DeviceLog;
pub use driver::{ClientDriver, DriverEvent, DriverMode, EXTERNAL_POLL_EVERY, KEEPALIVE_AFTER};
pub use outcome::{ClientError, ClientStatus, Disconnect};
pub use relay::{AppendOutcome, CatchupData, RelayBackend, RelayRefusal, RelaySession};
pub use rights::{Right, Rights};
pub use session::{ClientConfig, ClientSession, SyncScope};

//! The sync protocol as sans-IO state machines: messages in, messages out.
//!
//! [`ClientSession`] runs on a device over its [`crate::Store`]; [`RelaySession`] runs on the
//! server for one connection over a [`RelayBackend`]. Transports (tokio, browser WebSocket,
//! tests that shuffle messages) are thin shells that move frames between them.

mod chunk;
mod client;
mod relay;
mod rights;

pub use chunk::chunk_updates;
pub use client::{ClientConfig, ClientSession, SyncScope};
pub use relay::{AppendOutcome, CatchupData, RelayBackend, RelayRefusal, RelaySession};
pub use rights::{Right, Rights};

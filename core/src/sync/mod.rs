//! The sync protocol as sans-IO state machines: messages in, messages out.
//!
//! [`ClientSession`] runs on a device over its [`crate::Store`]; [`RelaySession`] runs on the
//! server for one connection and hands document work to its host as [`RelayRequest`]s.
//! Transports (tokio, browser WebSocket, tests that shuffle messages) are thin shells that
//! move frames between them.

mod append_rules;
mod chunk;
mod client;
mod relay_request;
mod relay_session;
#[cfg(test)]
mod relay_session_tests;
mod rights;

pub use append_rules::{plan_append, update_refusal, AppendPlan, DocHead};
pub use chunk::chunk_updates;
pub use client::{ClientConfig, ClientSession, SyncScope};
pub use relay_request::{
    AppendOutcome, Authenticator, CatchupData, Completion, RelayOutput, RelayRefusal, RelayRequest,
    RequestId,
};
pub use relay_session::RelaySession;
pub use rights::{Right, Rights};

//! The wire protocol: versioned binary messages, one per WebSocket binary frame.
//!
//! A frame is `[protocol version: u8][message tag: u8][postcard-encoded body]`. The layout
//! and every message are documented in `docs/protocol.md`; keep the two in step.

mod codec;
mod error_code;
mod messages;

pub use codec::{decode, encode, CodecError};
pub use error_code::ErrorCode;
pub use messages::*;

/// The protocol version this build speaks (the first byte of every frame).
pub const PROTOCOL_VERSION: u8 = 2;

//! What a device's sync reports to its application: [`ClientStatus`] while it runs,
//! [`Acked`] for every acknowledgement, [`ClientError`] when it ends, and [`Disconnect`],
//! the transport failures a shell reports to the driver.

use std::collections::BTreeMap;
use std::time::Duration;

use thiserror::Error;

use crate::ids::Origin;
use crate::protocol::ErrorFrame;

/// The relay acknowledged every update of `origin` up to `upto` in `doc_id`, durably, as of
/// the commit at log position `lsn` (the cluster's log index, the same on every node).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Acked {
    pub doc_id: String,
    pub origin: Origin,
    pub upto: u64,
    pub lsn: u64,
}

/// Why syncing failed.
#[derive(Debug, Error)]
pub enum ClientError {
    #[error("cannot connect to {url}: {reason}")]
    Connect { url: String, reason: String },
    #[error("connection lost: {0}")]
    Disconnected(String),
    /// The relay closed the WebSocket with a status code, e.g. 1009 (message too big) for
    /// a frame above its transport limit.
    #[error("the relay closed the connection: {reason} (WebSocket close code {code})")]
    Closed { code: u16, reason: String },
    #[error("the relay refused: {} ({}){}", .0.message, .0.code.name(), .0.doc_id.as_ref().map(|d| format!(" for document {d:?}")).unwrap_or_default())]
    Refused(ErrorFrame),
    /// A one-shot sync synced every document except these, which the relay refused (one
    /// error per document, e.g. `forbidden` outside the token's scope). Their updates stay
    /// in the outbox.
    #[error("the relay refused {}; the others synced", refusals_text(.0))]
    DocumentsRefused(Vec<ErrorFrame>),
    #[error("not synced after {0:?}")]
    Timeout(Duration),
    #[error(transparent)]
    Store(#[from] crate::Error),
}

/// `2 documents: "a": <message> (<code>); "b": ...`
fn refusals_text(refused: &[ErrorFrame]) -> String {
    let plural = if refused.len() == 1 { "" } else { "s" };
    let each = refused
        .iter()
        .map(|e| {
            format!(
                "{:?}: {} ({})",
                e.doc_id.as_deref().unwrap_or_default(),
                e.message,
                e.code.name()
            )
        })
        .collect::<Vec<_>>()
        .join("; ");
    format!("{} document{plural}: {each}", refused.len())
}

/// How a transport connection failed or ended, as a shell reports it to the driver.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Disconnect {
    /// The connection could not be opened.
    ConnectFailed { url: String, reason: String },
    /// The connection broke (or the relay closed it without a status code).
    Lost(String),
    /// The relay closed the connection with a WebSocket status code.
    Closed { code: u16, reason: String },
}

impl From<Disconnect> for ClientError {
    fn from(d: Disconnect) -> ClientError {
        match d {
            Disconnect::ConnectFailed { url, reason } => ClientError::Connect { url, reason },
            Disconnect::Lost(reason) => ClientError::Disconnected(reason),
            Disconnect::Closed { code, reason } => ClientError::Closed { code, reason },
        }
    }
}

/// The client's state at one moment.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ClientStatus {
    pub connected: bool,
    /// Unacknowledged local updates per document (filled in by the shell from the store).
    pub pending: BTreeMap<String, usize>,
    /// Reconnect attempts since the last successful connection.
    pub retries: u32,
    pub last_error: Option<String>,
    /// Set when the relay refused the connection for good (see
    /// [`ends_session`](crate::protocol::ErrorCode::ends_session), e.g. `token_expired`):
    /// the client has stopped and does not reconnect. Start a new one with a new token.
    pub stopped: Option<ErrorFrame>,
    /// The highest log position (LSN) the client has been acknowledged or served, over
    /// every connection and node so far; sent as `min_lsn` on every subscribe.
    pub max_lsn: u64,
}

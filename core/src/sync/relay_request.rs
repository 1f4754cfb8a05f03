//! The work a [`crate::sync::RelaySession`] hands to its host, as data: requests with ids
//! (append, subscribe-and-catch-up, list), their completions, and refusals.
//!
//! The host (the server's storage, a cluster, a test's in-memory map) carries out each
//! request however it likes — on another thread, through a quorum — and hands the result
//! back with [`crate::sync::RelaySession::handle_completion`].

use crate::ids::{DocKind, Origin};
use crate::protocol::{CatchupSnapshot, ErrorCode, Message};
use crate::sync::rights::Rights;
use crate::update::UpdateRecord;
use crate::vv::VersionVector;

/// A request the relay refuses, as it will be reported to the client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RelayRefusal {
    pub code: ErrorCode,
    pub message: String,
}

impl RelayRefusal {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> RelayRefusal {
        RelayRefusal {
            code,
            message: message.into(),
        }
    }
}

/// Checks tokens: cheap and pure, so the session calls it directly on Hello.
pub trait Authenticator {
    /// Checks a token (or its absence) and returns the connection's rights.
    fn authenticate(&self, token: Option<&str>) -> Result<Rights, RelayRefusal>;
}

/// Identifies one request of one session; completions name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RequestId(pub u64);

/// Work the session needs done by its host.
#[derive(Debug, Clone, PartialEq)]
pub enum RelayRequest {
    /// Register the connection for live updates of `doc_id` and read what a client at
    /// `client_version` lacks, atomically with respect to appends. Create the document
    /// with `kind` when absent and `may_create`; refuse with `kind_mismatch` on another
    /// kind. Completes with [`Completion::Subscribed`].
    ///
    /// `min_lsn`: the client has been acknowledged or served state up to this log position;
    /// a host whose state is older waits (bounded) for it, then refuses with
    /// `replica_behind` — it never serves older state (0 = no requirement).
    /// `linearizable`: confirm with the cluster that this node holds every committed entry
    /// (a read index) before reading.
    Subscribe {
        doc_id: String,
        kind: DocKind,
        client_version: VersionVector,
        may_create: bool,
        min_lsn: u64,
        linearizable: bool,
    },
    /// Check `updates` (append rules and integration), durably store those accepted, and
    /// fan them out. Completes with [`Completion::Appended`] only once they are durable.
    Append {
        doc_id: String,
        updates: Vec<UpdateRecord>,
    },
    /// Documents whose id starts with `prefix`. Completes with [`Completion::Listed`].
    /// From then on, until the connection ends, the host announces every document created
    /// under `prefix` that `rights` lets the connection read, with an unsolicited
    /// [`DocList`](crate::protocol::DocList) naming it (registered atomically with the
    /// listing, so none created in between is missed).
    ListDocs { prefix: String, rights: Rights },
}

/// What a client lacks of a document, as read by the host, at log position `lsn`.
#[derive(Debug, Clone, PartialEq)]
pub struct CatchupData {
    pub kind: DocKind,
    pub server_version: VersionVector,
    pub snapshot: Option<CatchupSnapshot>,
    pub updates: Vec<UpdateRecord>,
    pub lsn: u64,
}

/// The result of appending a batch: the updates durably stored (or already held) are
/// acknowledged per origin up to `acked`; a refusal stops the batch at the first bad update.
/// `lsn` is the log position of the commit that holds them (when all were already held,
/// the host's current applied position); every `Ack` carries it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AppendOutcome {
    pub acked: Vec<(Origin, u64)>,
    pub refusal: Option<RelayRefusal>,
    pub lsn: u64,
}

/// The result of a [`RelayRequest`].
#[derive(Debug, Clone, PartialEq)]
pub enum Completion {
    Subscribed(Result<CatchupData, RelayRefusal>),
    Appended(AppendOutcome),
    Listed(Result<Vec<(String, DocKind)>, RelayRefusal>),
}

/// What the session asks of its host, in order.
#[derive(Debug, Clone, PartialEq)]
pub enum RelayOutput {
    /// Send this message to the client.
    Send(Message),
    /// Carry out this request, then call `handle_completion` with its id.
    Request(RequestId, RelayRequest),
    /// Stop fanning out `doc_id` to this connection (immediate, nothing to complete); its
    /// presence there, if any, is withdrawn.
    Unfollow(String),
    /// This connection's presence on `doc_id` (empty: withdrawn): show it to the document's
    /// other followers on this node, and to those who follow it later, until withdrawn or
    /// the connection ends. Never stored.
    Presence {
        doc_id: String,
        device_id: Origin,
        state: Vec<u8>,
    },
}

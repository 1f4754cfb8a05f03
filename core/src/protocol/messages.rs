//! The messages of the protocol. Every message names the document it concerns, so many
//! documents share one connection.

use serde::{Deserialize, Serialize};

use super::ErrorCode;
use crate::ids::{DocKind, Origin};
use crate::update::UpdateRecord;
use crate::vv::VersionVector;

/// Client → server, first message: who is connecting and with which rights.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Hello {
    pub protocol_version: u8,
    pub device_id: Origin,
    /// A signed access token (JWT), required when the server has an auth secret.
    pub token: Option<String>,
}

/// Server → client: the handshake succeeded.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Welcome {
    pub protocol_version: u8,
    pub server_id: String,
    /// The largest frame the server accepts.
    pub max_frame_bytes: u32,
}

/// Client → server: start syncing a document. `version` says what the client holds; the
/// server answers with a [`Catchup`] and then streams live [`Updates`]. The server creates
/// the document with `kind` if it does not exist (write access needed).
///
/// `min_lsn` is the highest log position (LSN) the client has been acknowledged or served:
/// a relay node whose state is older answers `replica_behind` rather than older state (0 =
/// no requirement). `linearizable` asks the node to confirm with the cluster that it holds
/// every committed entry (a read index) before answering.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Subscribe {
    pub doc_id: String,
    pub kind: DocKind,
    pub version: VersionVector,
    pub min_lsn: u64,
    pub linearizable: bool,
}

/// A catch-up snapshot: a saved state the relay sends a client that lacks a lot (its
/// latest checkpoint), and the version vector it covers. The type's name is not on the
/// wire (postcard encodes fields in order, no names).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CatchupSnapshot {
    #[serde(with = "crate::update::bytes")]
    pub data: Vec<u8>,
    pub covers: VersionVector,
}

/// Server → client: the answer to [`Subscribe`]. `server_version` is what the server holds;
/// what the client lacks follows as an optional catch-up snapshot here and [`Updates`] after it.
/// `lsn` is the log position of the state served.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Catchup {
    pub doc_id: String,
    pub kind: DocKind,
    pub server_version: VersionVector,
    pub snapshot: Option<CatchupSnapshot>,
    pub lsn: u64,
}

/// Either direction: updates of one document, in order. Client → server updates are
/// acknowledged with [`Ack`] once durable. Server → client, `lsn` is the log position of
/// the commit that held them; client → server it is 0 (the server ignores it).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Updates {
    pub doc_id: String,
    pub updates: Vec<UpdateRecord>,
    pub lsn: u64,
}

/// Server → client: every update of `origin` up to `upto` is durably stored, as of the
/// commit at log position `lsn`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Ack {
    pub doc_id: String,
    pub origin: Origin,
    pub upto: u64,
    pub lsn: u64,
}

/// Either direction: a request was refused. The connection stays open unless said otherwise.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ErrorFrame {
    pub code: ErrorCode,
    pub message: String,
    pub doc_id: Option<String>,
}

/// Client → server: the documents the server holds whose id starts with `prefix` (and
/// that the client may read).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ListDocs {
    pub prefix: String,
}

/// Server → client: the answer to [`ListDocs`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DocList {
    pub docs: Vec<(String, DocKind)>,
}

/// Client → server: stop receiving updates of a document.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Unsubscribe {
    pub doc_id: String,
}

/// The most bytes a presence state may have.
pub const MAX_PRESENCE_BYTES: usize = 4096;

/// Either direction: ephemeral presence (awareness) on one document — who is here, a name,
/// a colour, a cursor — as opaque bytes (the apps use JSON). Never stored.
///
/// Client → relay: this connection's state on `doc_id` (subscribed first; `peer` and
/// `device_id` are ignored, the relay fills them in); an empty `state` withdraws it.
/// Relay → client: another connection's state (`peer` numbers connections on that node);
/// an empty `state` means that peer left (withdrew, unsubscribed or disconnected).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Presence {
    pub doc_id: String,
    pub peer: u64,
    pub device_id: Origin,
    #[serde(with = "crate::update::bytes")]
    pub state: Vec<u8>,
}

/// Every message, with its tag byte.
#[derive(Debug, Clone, PartialEq)]
pub enum Message {
    Hello(Hello),
    Welcome(Welcome),
    Subscribe(Subscribe),
    Catchup(Catchup),
    Updates(Updates),
    Ack(Ack),
    Error(ErrorFrame),
    Ping(u64),
    Pong(u64),
    ListDocs(ListDocs),
    DocList(DocList),
    Unsubscribe(Unsubscribe),
    Presence(Presence),
}

impl Message {
    /// A refusal, for documents or for the connection as a whole.
    pub fn error(code: ErrorCode, message: impl Into<String>, doc_id: Option<&str>) -> Message {
        Message::Error(ErrorFrame {
            code,
            message: message.into(),
            doc_id: doc_id.map(str::to_string),
        })
    }
}

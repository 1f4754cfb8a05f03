//! Interop endpoints for clients of other sync stacks — unmodified y-websocket (Yjs) and
//! automerge-repo clients — as thin shells over the relay's own session and append path
//! (docs/interop.md).

pub mod automerge_checks;
pub mod automerge_peers;
pub mod automerge_repo;
pub mod automerge_wire;
pub mod bridge;
pub mod yjs;
pub mod yjs_rooms;

//! Concord core: CRDT documents (Automerge and Yrs) in SQLite, version vectors, the sync
//! protocol and its sans-IO state machines, and (feature `native-client`) a tokio client.
//!
//! Start with [`Store`]: open a database file, create a document, edit it in a
//! transaction, read it as JSON, and sync it with [`sync::ClientSession`].

pub mod doc;
pub mod error;
pub mod ids;
pub mod kind;
pub mod log;
pub mod path;
pub mod policy;
pub mod read;
pub mod text_unit;
pub mod vv;

pub use doc::{CrdtDoc, DocTxn};
pub use error::{Error, Result, StorageError};
pub use ids::{DocKind, Origin};
pub use text_unit::TextUnit;
pub use vv::{Causality, VersionVector};
pub mod notify;
mod stopwatch;
pub mod store;
pub mod update;

pub use notify::{ChangeEvent, ChangeSource, Subscription};
pub use policy::{ConcurrentValue, Hlc, MergeFunction, PlainValue, Policy, WallClock};
pub use read::policies::ValueVersion;
pub use read::{Candidate, ConflictPolicy, Reader};
pub use store::{DocInfo, DocStatus, RemoteApplied, Store, StoreOptions};
pub use update::UpdateRecord;
#[cfg(feature = "native-client")]
pub mod native_client;
pub mod protocol;
pub mod sync;

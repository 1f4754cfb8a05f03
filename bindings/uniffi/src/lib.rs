//! Concord for Kotlin, Swift and Python, through uniffi (proc-macros, no UDL).
//!
//! One API shape in every language (names follow each language's conventions):
//!
//! ```text
//! Store.open(path) / Store.openWithMergeFunctions(path, {name: MergeFunction})
//!   store.deviceId()                              -> String
//!   store.createDocument(id, kind)                -> Document   (kind: AUTOMERGE | YRS)
//!   store.document(id)                            -> Document   (NotFound if absent)
//!   store.listDocuments()                         -> [DocumentInfo{id, kind}]
//!   store.status()                                -> [DocumentStatus{id, kind, version, pending}]
//!   store.subscribe(ChangeListener)               -> Subscription   (every document)
//!   store.startSync(urls, token, SyncStateListener?)  background sync, reconnects, rotates URLs
//!   store.syncState()                             -> SyncState{connected, retries, lastError, refused, maxLsn, pending}
//!   store.stopSync()
//!   store.syncOnce(urls, token, timeoutMs)        async: until caught up (SyncRefused, Network)
//! Document
//!   get(path) -> Value?    getJson(path) -> String?    toJson() -> String
//!   put(path, Value)   putJson(path, json)   delete(path)
//!   insertText(path, index, text)   deleteText(path, index, len)
//!   push(path, Value)   insert(path, Value)   increment(path, by)
//!   transaction() -> Transaction (same edits, recorded; commit() = one durable commit)
//!   subscribe(ChangeListener) -> Subscription
//!   setPolicy(pattern, Policy)   getAll(path) -> [ValueVersion]   resolve(path, Value)
//!   conflicts() -> [String]
//! Foreign traits: ChangeListener.onChange(ChangeEvent), SyncStateListener.onState(SyncState),
//!   MergeFunction.merge(path, [ConcurrentValue]) -> Value
//! Errors: ConcordError — NotFound, AlreadyExists, BadPath, WrongKind, InvalidValue, Storage,
//!   SyncRefused{code}, Network, Panic (a Rust panic, or a host callback that threw).
//! ```
//!
//! Threads: every object may be used from any thread. Listener callbacks run on one
//! background thread per store (never the caller's), in order. Sync runs on an internal
//! tokio runtime; no call waits for the network, and an edit waits for one SQLite commit.

mod callbacks;
mod document;
mod error;
mod merge;
mod store;
mod sync;
mod transaction;
mod types;
mod value;

pub use callbacks::{ChangeListener, Subscription};
pub use document::Document;
pub use error::ConcordError;
pub use merge::MergeFunction;
pub use store::Store;
pub use sync::{SyncRefusal, SyncState, SyncStateListener};
pub use transaction::Transaction;
pub use types::{
    ChangeEvent, ChangeSource, ConcurrentValue, DocumentInfo, DocumentKind, DocumentStatus, Hlc,
    Policy, ValueVersion,
};
pub use value::Value;

uniffi::setup_scaffolding!("concord");

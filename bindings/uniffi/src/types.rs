//! The plain records and enums of the API (document kinds, status, change events, policies,
//! concurrent values) and their conversions from core's types.

use std::collections::HashMap;

use concord_core::policy::Policy as CorePolicy;
use concord_core::{DocKind, VersionVector};

use crate::value::Value;

/// The CRDT behind a document.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum DocumentKind {
    /// JSON-like: maps, lists, text, counters.
    Automerge,
    /// Yjs-compatible shared types; paths start with a root type's name.
    Yrs,
}

impl From<DocumentKind> for DocKind {
    fn from(k: DocumentKind) -> DocKind {
        match k {
            DocumentKind::Automerge => DocKind::Automerge,
            DocumentKind::Yrs => DocKind::Yrs,
        }
    }
}

impl From<DocKind> for DocumentKind {
    fn from(k: DocKind) -> DocumentKind {
        match k {
            DocKind::Automerge => DocumentKind::Automerge,
            DocKind::Yrs => DocumentKind::Yrs,
        }
    }
}

/// A document's id and kind.
#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct DocumentInfo {
    pub id: String,
    pub kind: DocumentKind,
}

/// A document's sync state on this device.
#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct DocumentStatus {
    pub id: String,
    pub kind: DocumentKind,
    /// Device id → highest contiguous update seen from it.
    pub version: HashMap<String, u64>,
    /// Local updates the relay has not acknowledged yet.
    pub pending: u64,
}

pub(crate) fn version_map(vv: &VersionVector) -> HashMap<String, u64> {
    vv.iter()
        .map(|(origin, seq)| (origin.as_str().to_string(), seq))
        .collect()
}

/// Where a change came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum ChangeSource {
    /// A commit on this device.
    Local,
    /// Updates received from the relay.
    Remote,
}

/// A document changed (told to a `ChangeListener`, on a background thread).
#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct ChangeEvent {
    pub document_id: String,
    pub source: ChangeSource,
    /// The document's version vector after the change.
    pub version: HashMap<String, u64>,
}

impl From<&concord_core::ChangeEvent> for ChangeEvent {
    fn from(e: &concord_core::ChangeEvent) -> ChangeEvent {
        ChangeEvent {
            document_id: e.doc_id.clone(),
            source: match e.source {
                concord_core::ChangeSource::Local => ChangeSource::Local,
                concord_core::ChangeSource::Remote => ChangeSource::Remote,
            },
            version: version_map(&e.version),
        }
    }
}

/// How concurrent values at matching paths are resolved (docs/conflicts.md).
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Enum)]
pub enum Policy {
    /// The CRDT's own result (the default).
    Crdt,
    /// Last writer wins by hybrid logical clock.
    Lww,
    /// The merge function registered under `name` (or a built-in: max, min, union, concat).
    Merge { name: String },
    /// Every concurrent value is kept until `resolve`d.
    KeepAll,
}

impl From<Policy> for CorePolicy {
    fn from(p: Policy) -> CorePolicy {
        match p {
            Policy::Crdt => CorePolicy::Crdt,
            Policy::Lww => CorePolicy::Lww,
            Policy::Merge { name } => CorePolicy::Merge(name),
            Policy::KeepAll => CorePolicy::KeepAll,
        }
    }
}

/// A hybrid logical clock time: when, and by which device, a value was written.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct Hlc {
    pub ms: u64,
    pub counter: u32,
    pub origin: String,
}

impl From<concord_core::Hlc> for Hlc {
    fn from(h: concord_core::Hlc) -> Hlc {
        Hlc {
            ms: h.ms,
            counter: h.counter,
            origin: h.origin,
        }
    }
}

/// One of the values concurrently at a path, as `getAll` returns them.
#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct ValueVersion {
    pub value: Value,
    /// `None` for a value not written under a policy.
    pub hlc: Option<Hlc>,
}

/// One of the concurrent values a merge function receives.
#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct ConcurrentValue {
    pub value: Value,
    /// The device that wrote it.
    pub origin: String,
    pub hlc: Hlc,
}

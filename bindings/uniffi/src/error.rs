//! `ConcordError`, the one error type of the bindings (an exception in Kotlin and Python, a
//! thrown error in Swift), and `guard`, which turns a Rust panic into one of its cases.

use std::panic::{catch_unwind, AssertUnwindSafe};

use concord_core::native_client::ClientError;
use concord_core::Error as CoreError;

/// Everything a call can fail with. `detail` is a readable explanation.
#[derive(Debug, thiserror::Error, uniffi::Error)]
pub enum ConcordError {
    /// No such document.
    #[error("not found: {detail}")]
    NotFound { detail: String },
    /// A document with this id exists already.
    #[error("already exists: {detail}")]
    AlreadyExists { detail: String },
    /// A path that does not parse or does not lead anywhere in this document.
    #[error("bad path: {detail}")]
    BadPath { detail: String },
    /// The document, or the value at the path, is of another kind than the call needs.
    #[error("wrong kind: {detail}")]
    WrongKind { detail: String },
    /// An argument that is not acceptable (an id, JSON text, URL, edit).
    #[error("invalid value: {detail}")]
    InvalidValue { detail: String },
    /// The SQLite file failed (I/O, locked too long, damaged).
    #[error("storage: {detail}")]
    Storage { detail: String },
    /// The relay refused: `code` is its error code (`unauthorized`, `forbidden`,
    /// `token_expired`, ...).
    #[error("sync refused ({code}): {detail}")]
    SyncRefused { code: String, detail: String },
    /// The relay could not be reached, or the connection broke, or a sync timed out, or
    /// no node could serve it now (`replica_behind`, `unavailable`): retry later.
    #[error("network: {detail}")]
    Network { detail: String },
    /// A bug: Rust panicked (or a host callback threw where no error was expected). The
    /// store stays usable.
    #[error("internal panic: {detail}")]
    Panic { detail: String },
}

impl From<CoreError> for ConcordError {
    fn from(e: CoreError) -> ConcordError {
        let detail = e.to_string();
        match e {
            CoreError::NoSuchDoc(_) => ConcordError::NotFound { detail },
            CoreError::DocExists(_) => ConcordError::AlreadyExists { detail },
            CoreError::InvalidPath { .. } => ConcordError::BadPath { detail },
            CoreError::KindMismatch { .. } => ConcordError::WrongKind { detail },
            CoreError::InvalidEdit(ref m) if is_kind_complaint(m) => {
                ConcordError::WrongKind { detail }
            }
            CoreError::Storage(_) | CoreError::SchemaTooNew { .. } | CoreError::Corrupt(_) => {
                ConcordError::Storage { detail }
            }
            CoreError::InvalidDocId(_)
            | CoreError::UnknownDocKind(_)
            | CoreError::InvalidEdit(_)
            | CoreError::InvalidUpdate { .. }
            | CoreError::MissingDependencies { .. }
            | CoreError::TypeConflict { .. }
            | CoreError::TooDeep { .. } => ConcordError::InvalidValue { detail },
        }
    }
}

/// An edit refused because a value is of another type than the edit needs.
fn is_kind_complaint(message: &str) -> bool {
    let m = message.to_ascii_lowercase();
    [
        "not a ", "not an ", "only in", "is a ", "expected", "mismatch",
    ]
    .iter()
    .any(|w| m.contains(w))
}

impl From<ClientError> for ConcordError {
    fn from(e: ClientError) -> ConcordError {
        let detail = e.to_string();
        match e {
            // The node cannot serve now but another (or this one later) can.
            ClientError::Refused(frame) if frame.code.switches_node() => {
                ConcordError::Network { detail }
            }
            ClientError::Refused(frame) => ConcordError::SyncRefused {
                code: frame.code.name().to_string(),
                detail,
            },
            ClientError::DocumentsRefused(frames) => ConcordError::SyncRefused {
                code: frames
                    .first()
                    .map(|f| f.code.name().to_string())
                    .unwrap_or_default(),
                detail,
            },
            ClientError::Store(e) => e.into(),
            ClientError::Connect { .. }
            | ClientError::Disconnected(_)
            | ClientError::Closed { .. }
            | ClientError::Timeout(_) => ConcordError::Network { detail },
        }
    }
}

impl From<serde_json::Error> for ConcordError {
    fn from(e: serde_json::Error) -> ConcordError {
        ConcordError::InvalidValue {
            detail: format!("not JSON: {e}"),
        }
    }
}

/// Runs `f`, turning a panic into [`ConcordError::Panic`]: a Rust bug (or a host callback
/// that threw) never unwinds into the host and never aborts it.
pub(crate) fn guard<R>(f: impl FnOnce() -> Result<R, ConcordError>) -> Result<R, ConcordError> {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(result) => result,
        Err(payload) => Err(ConcordError::Panic {
            detail: panic_text(payload.as_ref()),
        }),
    }
}

/// The message a panic was raised with.
pub(crate) fn panic_text(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic without a message".into())
}

#[cfg(test)]
mod tests {
    use concord_core::protocol::{ErrorCode, ErrorFrame};

    use super::*;

    fn refused(code: ErrorCode) -> ConcordError {
        ClientError::Refused(ErrorFrame {
            code,
            message: "m".into(),
            doc_id: None,
        })
        .into()
    }

    #[test]
    fn relay_codes_map_to_their_cases() {
        for code in [ErrorCode::ReplicaBehind, ErrorCode::Unavailable] {
            assert!(
                matches!(refused(code), ConcordError::Network { .. }),
                "{code}"
            );
        }
        for code in [ErrorCode::Unauthorized, ErrorCode::MissingDependencies] {
            match refused(code) {
                ConcordError::SyncRefused { code: name, .. } => assert_eq!(name, code.name()),
                other => panic!("{code}: {other:?}"),
            }
        }
    }
}

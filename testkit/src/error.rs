//! The harness's error type.

use std::net::SocketAddr;
use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum TestkitError {
    #[error("cannot bind {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("I/O: {0}")]
    Io(#[from] std::io::Error),
    #[error("cannot start {binary}: {source}")]
    Spawn {
        binary: PathBuf,
        source: std::io::Error,
    },
    #[error("node {node}: {message}")]
    Node { node: u64, message: String },
    #[error("HTTP {addr}{path}: {message}")]
    Http {
        addr: SocketAddr,
        path: String,
        message: String,
    },
    #[error("timed out after {limit:?} waiting until {what}")]
    Timeout {
        what: String,
        limit: std::time::Duration,
    },
    #[error("the concord-server binary was not found (set CONCORD_SERVER_BIN): looked at {0:?}")]
    NoBinary(Vec<PathBuf>),
    #[error("JSON: {0}")]
    Json(#[from] serde_json::Error),
    #[error("store: {0}")]
    Store(#[from] concord_core::Error),
    #[error("{0}")]
    Other(String),
}

pub type Result<T, E = TestkitError> = std::result::Result<T, E>;

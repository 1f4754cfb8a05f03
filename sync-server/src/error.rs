//! The relay library's error type (the binary wraps it in `anyhow`).

use std::net::SocketAddr;
use std::path::PathBuf;

use thiserror::Error;

use crate::storage::StorageError;

/// Why the relay could not start or keep serving.
#[derive(Debug, Error)]
pub enum ServerError {
    #[error("cannot read config {}", path.display())]
    ReadConfig {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("invalid config {}", path.display())]
    ParseConfig {
        path: PathBuf,
        #[source]
        source: toml::de::Error,
    },
    #[error("cannot create data dir {}", path.display())]
    DataDir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot open {}", path.display())]
    OpenStorage {
        path: PathBuf,
        #[source]
        source: StorageError,
    },
    #[error("cannot listen on {addr}")]
    Listen {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("the server failed")]
    Serve(#[source] std::io::Error),
    #[error("cannot start the cluster node")]
    Cluster(#[source] Box<crate::cluster::node::StartError>),
    #[error("consensus stopped on this node: {0}")]
    ConsensusStopped(String),
}

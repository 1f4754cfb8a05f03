//! Server configuration: command-line flags, optionally read from a TOML file first.

use std::net::SocketAddr;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::cluster::ClusterSettings;
use crate::error::ServerError;

/// Settings of `concord-server serve`. Flags override the config file.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    pub listen: SocketAddr,
    pub data_dir: PathBuf,
    pub auth_secret: Option<String>,
    pub max_frame_bytes: usize,
    pub max_queue: usize,
    pub checkpoint_every: u64,
    pub server_id: Option<String>,
    /// Present when this node is one of a cluster; absent: a single relay.
    pub cluster: Option<ClusterSettings>,
    /// A directory served as static files on the client port (the web demo); none: none.
    pub static_dir: Option<PathBuf>,
    /// A connection that sends nothing for this long (no frame, and no pong to the pings
    /// the relay sends every third of it) is closed; so is a sync connection that has not
    /// said Hello by then. At least 1, at most [`MAX_IDLE_TIMEOUT_SECS`] (larger values are
    /// taken as that).
    pub idle_timeout_secs: u64,
}

/// The longest idle timeout a relay takes: a day.
pub const MAX_IDLE_TIMEOUT_SECS: u64 = 24 * 3600;

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            listen: "127.0.0.1:8787".parse().expect("valid address"),
            data_dir: PathBuf::from("./concord-data"),
            auth_secret: None,
            max_frame_bytes: 4 << 20,
            max_queue: 4096,
            checkpoint_every: 256,
            server_id: None,
            cluster: None,
            static_dir: None,
            idle_timeout_secs: 45,
        }
    }
}

impl ServerConfig {
    pub fn from_file(path: &std::path::Path) -> Result<ServerConfig, ServerError> {
        let text = std::fs::read_to_string(path).map_err(|source| ServerError::ReadConfig {
            path: path.to_path_buf(),
            source,
        })?;
        toml::from_str(&text).map_err(|source| ServerError::ParseConfig {
            path: path.to_path_buf(),
            source,
        })
    }
}

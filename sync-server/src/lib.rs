//! The Concord relay as a library: storage, auth, fan-out and the HTTP/WebSocket shell,
//! used by the `concord-server` binary and by tests that run the relay in-process.

pub mod auth;
pub mod cluster;
pub mod config;
pub mod error;
pub mod http;
pub mod hub;
pub mod state;
pub mod storage;

use std::sync::Arc;

pub use config::ServerConfig;
pub use error::ServerError;

/// Opens storage under `config.data_dir` and builds the shared relay state.
pub fn build_relay(config: &ServerConfig) -> Result<Arc<state::Relay>, ServerError> {
    std::fs::create_dir_all(&config.data_dir).map_err(|source| ServerError::DataDir {
        path: config.data_dir.clone(),
        source,
    })?;
    let db = config.data_dir.join("concord.db");
    let storage = storage::Storage::open(&db, config.checkpoint_every)
        .map_err(|source| ServerError::OpenStorage { path: db, source })?;
    let auth = match &config.auth_secret {
        Some(secret) if !secret.is_empty() => auth::Auth::Secret(secret.as_bytes().to_vec()),
        _ => auth::Auth::Open,
    };
    let server_id = config
        .server_id
        .clone()
        .unwrap_or_else(|| format!("concord-{}", config.listen));
    Ok(state::Relay::new(
        state::RelayConfig {
            server_id,
            max_frame_bytes: config.max_frame_bytes,
            max_queue: config.max_queue,
        },
        auth,
        storage,
    ))
}

/// Serves until `shutdown` resolves.
pub async fn serve(
    config: ServerConfig,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), ServerError> {
    let relay = build_relay(&config)?;
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .map_err(|source| ServerError::Listen {
            addr: config.listen,
            source,
        })?;
    let addr = listener.local_addr().map_err(ServerError::Serve)?;
    tracing::info!(addr = %addr, data_dir = %config.data_dir.display(),
        auth = config.auth_secret.is_some(), "concord-server listening");
    axum::serve(
        listener,
        http::router(relay).into_make_service_with_connect_info::<std::net::SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown)
    .await
    .map_err(ServerError::Serve)?;
    Ok(())
}

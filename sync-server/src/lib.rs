//! The Concord relay as a library: storage, auth, fan-out and the HTTP/WebSocket shell,
//! used by the `concord-server` binary and by tests that run the relay in-process.

pub mod auth;
pub mod cluster;
pub mod config;
pub mod error;
pub mod group_commit;
pub mod http;
pub mod hub;
pub mod interop;
pub mod metrics;
pub mod operator;
pub mod state;
pub mod static_files;
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
            idle_timeout: std::time::Duration::from_secs(
                config
                    .idle_timeout_secs
                    .clamp(1, config::MAX_IDLE_TIMEOUT_SECS),
            ),
        },
        auth,
        storage,
    ))
}

async fn bind(addr: std::net::SocketAddr) -> Result<tokio::net::TcpListener, ServerError> {
    tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|source| ServerError::Listen { addr, source })
}

/// Serves until `shutdown` resolves: the client port, and with a `[cluster]` section the
/// node's consensus and the cluster port too.
pub async fn serve(
    config: ServerConfig,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), ServerError> {
    metrics::install();
    let relay = build_relay(&config)?;
    let listener = bind(config.listen).await?;
    let addr = listener.local_addr().map_err(ServerError::Serve)?;
    let cluster = match &config.cluster {
        None => None,
        Some(settings) => {
            let cluster_listener = bind(settings.listen).await?;
            let cluster =
                cluster::Cluster::start(settings.clone(), &config.data_dir, relay.clone())
                    .await
                    .map_err(|e| ServerError::Cluster(Box::new(e)))?;
            let router = cluster::rpc::router(cluster.clone());
            tokio::spawn(async move {
                if let Err(e) = axum::serve(cluster_listener, router).await {
                    tracing::error!(error = %e, "cluster port failed");
                }
            });
            tracing::info!(node = settings.node_id, cluster_addr = %settings.listen,
                write_concern = settings.write_concern.name(), "cluster node started");
            Some(cluster)
        }
    };
    tracing::info!(addr = %addr, data_dir = %config.data_dir.display(),
        auth = config.auth_secret.is_some(), "concord-server listening");
    let server = axum::serve(
        listener,
        http::router(relay.clone(), cluster.clone(), config.static_dir.clone())
            .into_make_service_with_connect_info::<std::net::SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown);
    let Some(cluster) = cluster else {
        return server.await.map_err(ServerError::Serve);
    };
    // A node whose consensus stopped must not go on serving what it can no longer keep
    // current: it closes its connections and the process ends with the reason.
    tokio::select! {
        served = server => {
            let _ = cluster.raft.shutdown().await;
            served.map_err(ServerError::Serve)
        }
        reason = cluster.stopped() => {
            tracing::error!(reason, "consensus stopped; closing every connection and exiting");
            relay.hub().disconnect_all();
            Err(ServerError::ConsensusStopped(reason))
        }
    }
}

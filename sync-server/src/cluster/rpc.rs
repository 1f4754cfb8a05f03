//! Node-to-node RPC, server side: the cluster port's routes. openraft's messages
//! (`/raft/append`, `/raft/vote`, `/raft/snapshot`), the relay's own calls (`/cluster/write`
//! forwarded writes, `/cluster/read-index`, `/cluster/status`), in the cluster's binary
//! encoding ([`super::codec`]), and the operator's (`GET /cluster`, `/admin/*`, see
//! [`super::admin`]) in JSON. Every route requires the shared secret as a bearer token.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use openraft::error::{InstallSnapshotError, RaftError};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};

use super::codec::Binary;
use super::node::Cluster;
use super::status::ClusterStatus;
use super::type_config::{NodeId, TypeConfig};
use super::writes::{Attempt, Forwarded, WriteReply};

/// The largest node-to-node request body.
pub const MAX_BODY_BYTES: usize = 512 << 20;

/// The cluster port's router.
pub fn router(cluster: Arc<Cluster>) -> Router {
    Router::new()
        .route("/raft/append", post(append))
        .route("/raft/vote", post(vote))
        .route("/raft/snapshot", post(snapshot))
        .route("/cluster/write", post(write))
        .route("/cluster/read-index", post(read_index))
        .route("/cluster/status", post(peer_status))
        .route("/cluster", get(status))
        .merge(super::admin::routes())
        // AppendEntries carries up to a few hundred batches and snapshots come in 1 MiB
        // chunks: well past axum's 2 MiB default.
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(middleware::from_fn_with_state(cluster.clone(), authorize))
        .with_state(cluster)
}

/// Compares in time independent of where the first difference is.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

async fn authorize(State(cluster): State<Arc<Cluster>>, request: Request, next: Next) -> Response {
    let given = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    match given {
        Some(secret) if same(secret.as_bytes(), cluster.settings.secret.as_bytes()) => {
            next.run(request).await
        }
        _ => (
            StatusCode::UNAUTHORIZED,
            Json(serde_json::json!({"error": "cluster secret missing or wrong"})),
        )
            .into_response(),
    }
}

async fn append(
    State(cluster): State<Arc<Cluster>>,
    Binary(rpc): Binary<AppendEntriesRequest<TypeConfig>>,
) -> Binary<Result<AppendEntriesResponse<NodeId>, RaftError<NodeId>>> {
    Binary(cluster.raft.append_entries(rpc).await)
}

async fn vote(
    State(cluster): State<Arc<Cluster>>,
    Binary(rpc): Binary<VoteRequest<NodeId>>,
) -> Binary<Result<VoteResponse<NodeId>, RaftError<NodeId>>> {
    Binary(cluster.raft.vote(rpc).await)
}

async fn snapshot(
    State(cluster): State<Arc<Cluster>>,
    Binary(rpc): Binary<InstallSnapshotRequest<TypeConfig>>,
) -> Binary<Result<InstallSnapshotResponse<NodeId>, RaftError<NodeId, InstallSnapshotError>>> {
    Binary(cluster.raft.install_snapshot(rpc).await)
}

async fn write(
    State(cluster): State<Arc<Cluster>>,
    Binary(forwarded): Binary<Forwarded>,
) -> Binary<Result<WriteReply, String>> {
    let budget = Duration::from_millis(forwarded.budget_ms.min(cluster.settings.write_timeout_ms));
    let deadline = Instant::now() + budget;
    let attempt = cluster
        .lead(
            forwarded.write,
            forwarded.node,
            forwarded.conn,
            forwarded.min_lsn,
            deadline,
        )
        .await;
    Binary(match attempt {
        Attempt::Done(reply) => Ok(reply),
        Attempt::Retry(why) => Err(why),
    })
}

async fn read_index(State(cluster): State<Arc<Cluster>>) -> Binary<Result<u64, String>> {
    Binary(cluster.read_index().await)
}

/// The node's status for another node (binary).
async fn peer_status(State(cluster): State<Arc<Cluster>>) -> Binary<ClusterStatus> {
    Binary(cluster.status().await)
}

/// The node's status for an operator (JSON).
async fn status(State(cluster): State<Arc<Cluster>>) -> Json<ClusterStatus> {
    Json(cluster.status().await)
}

//! The operator's endpoints on the cluster port (behind the cluster secret), used by
//! `concord-server cluster init|add|remove|status|transfer-leader`: initialise, add a node
//! (as a learner until it has caught up, then a voter), remove a node, hand leadership to a
//! node. Membership changes are carried out by the leader; another node passes them on.

use std::collections::BTreeSet;
use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use openraft::ChangeMembers;
use serde::{Deserialize, Serialize};

use super::node::Cluster;
use super::type_config::{ClusterNode, NodeId};

/// `POST /admin/add`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AddNode {
    pub id: NodeId,
    pub client: String,
    pub cluster: String,
}

/// `POST /admin/remove`, `POST /admin/transfer-leader`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NodeRef {
    pub id: NodeId,
}

pub fn routes() -> Router<Arc<Cluster>> {
    Router::new()
        .route("/admin/init", post(init))
        .route("/admin/add", post(add))
        .route("/admin/remove", post(remove))
        .route("/admin/transfer-leader", post(transfer_leader))
        .route("/admin/elect", post(elect))
}

fn answer(result: Result<serde_json::Value, String>) -> Response {
    match result {
        Ok(value) => Json(value).into_response(),
        Err(error) => (
            StatusCode::CONFLICT,
            Json(serde_json::json!({ "error": error })),
        )
            .into_response(),
    }
}

/// A retryable refusal: no leader to carry the change out now.
fn unavailable(error: &str) -> Response {
    (
        StatusCode::SERVICE_UNAVAILABLE,
        Json(serde_json::json!({ "error": error })),
    )
        .into_response()
}

/// Runs `path` on the leader when this node is not it; `None` when this node leads. With no
/// leader known (an election under way), waits for one, up to two election timeouts.
async fn on_leader<T: Serialize>(cluster: &Cluster, path: &str, body: &T) -> Option<Response> {
    if cluster.is_leader() {
        return None;
    }
    if cluster.leader().is_none() {
        let wait = std::time::Duration::from_millis(2 * cluster.settings.election_timeout_max_ms);
        let _ = cluster
            .raft
            .wait(Some(wait))
            .metrics(|m| m.current_leader.is_some(), "a leader")
            .await;
        if cluster.is_leader() {
            return None;
        }
    }
    let result = match cluster.leader().and_then(|l| cluster.cluster_addr(l)) {
        None => return Some(unavailable("no leader now; try again")),
        Some(addr) => cluster
            .peers
            .call_json::<_, serde_json::Value>(&addr, path, body, Some(long()))
            .await
            .map_err(|e| e.to_string()),
    };
    Some(answer(result))
}

/// Membership changes wait for a learner to catch up: longer than one RPC.
fn long() -> std::time::Duration {
    std::time::Duration::from_secs(120)
}

async fn init(State(cluster): State<Arc<Cluster>>) -> Response {
    answer(
        cluster
            .initialize()
            .await
            .map(|()| serde_json::json!({ "initialized": cluster.settings.peers.len() })),
    )
}

fn voters(cluster: &Cluster) -> BTreeSet<NodeId> {
    cluster
        .metrics()
        .membership_config
        .membership()
        .voter_ids()
        .collect()
}

/// Why a membership change did not complete here.
enum Change {
    /// Leadership moved (possibly between the two steps of a joint change): ask the new
    /// leader, which completes it.
    Moved,
    Failed(String),
}

impl<E: std::fmt::Display + std::fmt::Debug> From<openraft::error::RaftError<NodeId, E>> for Change
where
    E: openraft::TryAsRef<openraft::error::ForwardToLeader<NodeId, ClusterNode>>,
{
    fn from(e: openraft::error::RaftError<NodeId, E>) -> Change {
        match e.forward_to_leader::<ClusterNode>() {
            Some(_) => Change::Moved,
            None => Change::Failed(e.to_string()),
        }
    }
}

/// A membership change an operator asked for.
#[derive(Serialize)]
#[serde(untagged)]
enum Membership {
    Add(AddNode),
    Remove(NodeRef),
}

/// How many times a membership change follows leadership to another node.
const MOVES: usize = 3;

/// Carries out `change` on the leader (passed on when this node is not it), and again on
/// the new leader when leadership moves during it.
async fn change_on_leader(cluster: &Cluster, path: &str, change: Membership) -> Response {
    for attempt in 0..MOVES {
        if let Some(passed_on) = on_leader(cluster, path, &change).await {
            return passed_on;
        }
        match change_here(cluster, &change, attempt > 0).await {
            Ok(done) => return answer(Ok(done)),
            Err(Change::Failed(why)) => return answer(Err(why)),
            Err(Change::Moved) => {
                let wait = cluster.settings.election_timeout_max_ms;
                tokio::time::sleep(std::time::Duration::from_millis(wait)).await;
            }
        }
    }
    unavailable("leadership kept moving during the change; try again")
}

/// The leader's part of a membership change. `again`: a previous attempt may have
/// completed it before leadership moved.
async fn change_here(
    cluster: &Cluster,
    change: &Membership,
    again: bool,
) -> Result<serde_json::Value, Change> {
    let mut voters = voters(cluster);
    match change {
        Membership::Add(node) => {
            let member = ClusterNode {
                client_addr: node.client.clone(),
                cluster_addr: node.cluster.clone(),
            };
            // Blocking: returns once the learner has caught up with the leader's log.
            cluster.raft.add_learner(node.id, member, true).await?;
            voters.insert(node.id);
        }
        Membership::Remove(node) => {
            if !voters.remove(&node.id) {
                if again {
                    return Ok(serde_json::json!({ "voters": voters }));
                }
                return Err(Change::Failed(format!("node {} is not a voter", node.id)));
            }
            if voters.is_empty() {
                return Err(Change::Failed("cannot remove the last voter".into()));
            }
        }
    }
    let response = cluster
        .raft
        .change_membership(ChangeMembers::ReplaceAllVoters(voters.clone()), false)
        .await?;
    Ok(serde_json::json!({ "voters": voters, "log_index": response.log_id.index }))
}

async fn add(State(cluster): State<Arc<Cluster>>, Json(node): Json<AddNode>) -> Response {
    change_on_leader(&cluster, "/admin/add", Membership::Add(node)).await
}

async fn remove(State(cluster): State<Arc<Cluster>>, Json(node): Json<NodeRef>) -> Response {
    change_on_leader(&cluster, "/admin/remove", Membership::Remove(node)).await
}

/// Asks node `id` to start an election: with an up-to-date log it wins, and the old
/// leader steps down on seeing the higher term.
async fn transfer_leader(
    State(cluster): State<Arc<Cluster>>,
    Json(node): Json<NodeRef>,
) -> Response {
    let result = if node.id == cluster.id {
        elect_here(&cluster).await
    } else {
        match cluster.cluster_addr(node.id) {
            None => Err(format!("node {} is not a member", node.id)),
            Some(addr) => cluster
                .peers
                .call_json::<_, serde_json::Value>(&addr, "/admin/elect", &(), None)
                .await
                .map_err(|e| e.to_string()),
        }
    };
    answer(result)
}

async fn elect(State(cluster): State<Arc<Cluster>>) -> Response {
    answer(elect_here(&cluster).await)
}

async fn elect_here(cluster: &Cluster) -> Result<serde_json::Value, String> {
    cluster
        .raft
        .trigger()
        .elect()
        .await
        .map_err(|e| e.to_string())?;
    Ok(serde_json::json!({ "election_started_on": cluster.id }))
}

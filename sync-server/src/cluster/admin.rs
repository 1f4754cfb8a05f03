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

/// Runs `path` on the leader when this node is not it; `None` when this node leads.
async fn on_leader<T: Serialize>(cluster: &Cluster, path: &str, body: &T) -> Option<Response> {
    if cluster.is_leader() {
        return None;
    }
    let result = match cluster.leader().and_then(|l| cluster.cluster_addr(l)) {
        None => Err("no leader now; try again".to_string()),
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

/// Makes `voters` the cluster's voters (a joint-consensus change through the log).
async fn set_voters(
    cluster: &Cluster,
    voters: BTreeSet<NodeId>,
) -> Result<serde_json::Value, String> {
    let response = cluster
        .raft
        .change_membership(ChangeMembers::ReplaceAllVoters(voters.clone()), false)
        .await
        .map_err(|e| e.to_string())?;
    Ok(serde_json::json!({ "voters": voters, "log_index": response.log_id.index }))
}

async fn add(State(cluster): State<Arc<Cluster>>, Json(node): Json<AddNode>) -> Response {
    if let Some(passed_on) = on_leader(&cluster, "/admin/add", &node).await {
        return passed_on;
    }
    let result = async {
        let member = ClusterNode {
            client_addr: node.client.clone(),
            cluster_addr: node.cluster.clone(),
        };
        // Blocking: returns once the learner has caught up with the leader's log.
        cluster
            .raft
            .add_learner(node.id, member, true)
            .await
            .map_err(|e| e.to_string())?;
        let mut voters = voters(&cluster);
        voters.insert(node.id);
        set_voters(&cluster, voters).await
    }
    .await;
    answer(result)
}

async fn remove(State(cluster): State<Arc<Cluster>>, Json(node): Json<NodeRef>) -> Response {
    if let Some(passed_on) = on_leader(&cluster, "/admin/remove", &node).await {
        return passed_on;
    }
    let result = async {
        let mut voters = voters(&cluster);
        if !voters.remove(&node.id) {
            return Err(format!("node {} is not a voter", node.id));
        }
        if voters.is_empty() {
            return Err("cannot remove the last voter".into());
        }
        set_voters(&cluster, voters).await
    }
    .await;
    answer(result)
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

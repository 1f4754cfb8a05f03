//! Node-to-node RPC, client side: openraft's network (append entries, vote, snapshot
//! chunks) and the relay's own calls (forwarded writes, read index, status) as HTTP POSTs
//! to a peer's cluster port in the cluster's binary encoding, with the shared secret and a
//! timeout on every call.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use openraft::error::{
    InstallSnapshotError, NetworkError, RPCError, RaftError, RemoteError, Unreachable,
};
use openraft::network::{RPCOption, RaftNetwork, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};
use serde::de::DeserializeOwned;
use serde::Serialize;

use super::codec;
use super::type_config::{ClusterNode, NodeId, TypeConfig};

/// Why a call to a peer failed.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    #[error("peer {addr} unreachable: {source}")]
    Unreachable {
        addr: String,
        #[source]
        source: reqwest::Error,
    },
    #[error("peer {addr} answered HTTP {status}: {body}")]
    Status {
        addr: String,
        status: u16,
        body: String,
    },
    #[error("peer {addr} sent an answer that does not decode: {0}", .detail)]
    Decode { addr: String, detail: String },
    #[error("a request to {addr} does not encode: {detail}")]
    Encode { addr: String, detail: String },
}

/// Calls to peers: one HTTP client (connection pool) for all, the secret and the dial map.
#[derive(Clone)]
pub struct Peers {
    http: reqwest::Client,
    secret: Arc<str>,
    /// Node id → the address dialled instead of the membership's (fault proxies).
    dial: Arc<BTreeMap<NodeId, String>>,
    timeout: Duration,
}

impl Peers {
    pub fn new(secret: &str, dial: BTreeMap<NodeId, String>, timeout: Duration) -> Peers {
        let http = reqwest::Client::builder()
            .connect_timeout(timeout)
            .pool_idle_timeout(Duration::from_secs(30))
            .build()
            .expect("an HTTP client without TLS builds");
        Peers {
            http,
            secret: secret.into(),
            dial: Arc::new(dial),
            timeout,
        }
    }

    /// The address to dial for node `id` whose cluster address is `addr`.
    pub fn addr(&self, id: NodeId, addr: &str) -> String {
        self.dial
            .get(&id)
            .cloned()
            .unwrap_or_else(|| addr.to_string())
    }

    /// POSTs `body` in the cluster's encoding to `http://{addr}{path}` and decodes the
    /// answer.
    pub async fn call<Req: Serialize, Resp: DeserializeOwned>(
        &self,
        addr: &str,
        path: &str,
        body: &Req,
        timeout: Option<Duration>,
    ) -> Result<Resp, CallError> {
        let body = codec::encode(body).map_err(|e| CallError::Encode {
            addr: addr.to_string(),
            detail: e.to_string(),
        })?;
        let bytes = self
            .post(addr, path, timeout)
            .header(reqwest::header::CONTENT_TYPE, codec::CONTENT_TYPE)
            .body(body)
            .send_ok(addr)
            .await?
            .bytes()
            .await
            .map_err(|e| decode_error(addr, e))?;
        codec::decode(&bytes).map_err(|e| decode_error(addr, e))
    }

    /// POSTs `body` as JSON (an operator's request passed on to the leader).
    pub async fn call_json<Req: Serialize, Resp: DeserializeOwned>(
        &self,
        addr: &str,
        path: &str,
        body: &Req,
        timeout: Option<Duration>,
    ) -> Result<Resp, CallError> {
        self.post(addr, path, timeout)
            .json(body)
            .send_ok(addr)
            .await?
            .json()
            .await
            .map_err(|e| decode_error(addr, e))
    }

    fn post(&self, addr: &str, path: &str, timeout: Option<Duration>) -> reqwest::RequestBuilder {
        self.http
            .post(format!("http://{addr}{path}"))
            .bearer_auth(&*self.secret)
            .timeout(timeout.unwrap_or(self.timeout))
    }
}

fn decode_error(addr: &str, e: impl std::fmt::Display) -> CallError {
    CallError::Decode {
        addr: addr.to_string(),
        detail: e.to_string(),
    }
}

/// Sends a request; a non-success status is an error carrying the body.
trait SendOk {
    async fn send_ok(self, addr: &str) -> Result<reqwest::Response, CallError>;
}

impl SendOk for reqwest::RequestBuilder {
    async fn send_ok(self, addr: &str) -> Result<reqwest::Response, CallError> {
        let response = self.send().await.map_err(|source| CallError::Unreachable {
            addr: addr.to_string(),
            source,
        })?;
        let status = response.status();
        if status.is_success() {
            return Ok(response);
        }
        Err(CallError::Status {
            addr: addr.to_string(),
            status: status.as_u16(),
            body: response.text().await.unwrap_or_default(),
        })
    }
}

impl RaftNetworkFactory<TypeConfig> for Peers {
    type Network = PeerClient;

    async fn new_client(&mut self, target: NodeId, node: &ClusterNode) -> PeerClient {
        PeerClient {
            peers: self.clone(),
            target,
            addr: self.addr(target, &node.cluster_addr),
        }
    }
}

/// openraft's connection to one peer.
pub struct PeerClient {
    peers: Peers,
    target: NodeId,
    addr: String,
}

impl PeerClient {
    async fn raft_call<Req, Resp, E>(
        &self,
        path: &str,
        req: &Req,
        option: &RPCOption,
    ) -> Result<Resp, RPCError<NodeId, ClusterNode, RaftError<NodeId, E>>>
    where
        Req: Serialize,
        Resp: DeserializeOwned,
        E: std::error::Error + DeserializeOwned,
    {
        let answer: Result<Resp, RaftError<NodeId, E>> = self
            .peers
            .call(&self.addr, path, req, Some(option.hard_ttl()))
            .await
            .map_err(|e| match e {
                CallError::Unreachable { .. } => RPCError::Unreachable(Unreachable::new(&e)),
                _ => RPCError::Network(NetworkError::new(&e)),
            })?;
        answer.map_err(|e| RPCError::RemoteError(RemoteError::new(self.target, e)))
    }
}

impl RaftNetwork<TypeConfig> for PeerClient {
    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<AppendEntriesResponse<NodeId>, RPCError<NodeId, ClusterNode, RaftError<NodeId>>>
    {
        self.raft_call("/raft/append", &rpc, &option).await
    }

    async fn install_snapshot(
        &mut self,
        rpc: InstallSnapshotRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<
        InstallSnapshotResponse<NodeId>,
        RPCError<NodeId, ClusterNode, RaftError<NodeId, InstallSnapshotError>>,
    > {
        self.raft_call("/raft/snapshot", &rpc, &option).await
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<NodeId>,
        option: RPCOption,
    ) -> Result<VoteResponse<NodeId>, RPCError<NodeId, ClusterNode, RaftError<NodeId>>> {
        self.raft_call("/raft/vote", &rpc, &option).await
    }
}

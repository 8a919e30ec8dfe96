//! Raft RPC client: openraft's network traits over HTTP, bincode bodies, and
//! the same way the forwarding of a follower's operations to the leader and
//! the figures a peer reports for the status page.
//!
//! openraft gives each replication stream (and each vote) its own network
//! client and calls it one RPC at a time, so each [`PeerClient`] owns one
//! keep-alive connection ([`Conn`]: hyper's connection-level client, driven
//! in the caller's task). A shared reqwest pool cost the leader a URL parse,
//! a pool checkout and a hand-off to a connection task per RPC, four RPCs per
//! entry at one client (the entry, then the commit, to each follower).
//! Forwarding, hand-over and status keep the shared `reqwest::Client`: many
//! tasks use them at once, and none is on the write path's hot loop. Each RPC
//! is bounded by the TTL openraft gives it.

use openraft::error::{InstallSnapshotError, NetworkError, RPCError, RaftError, RemoteError, Unreachable};
use openraft::network::{RPCOption, RaftNetwork, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse, VoteRequest,
    VoteResponse,
};
use std::sync::Arc;

use idem_client::conn::{Conn, ConnError, Endpoint};
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::codec::{decode, encode};
use crate::store::DurableWatch;
use crate::types::{NodeAddr, NodeId, TypeConfig};

/// Paths of the Raft RPC routes, shared with the server side in `api::raft`.
pub mod paths {
    pub const APPEND: &str = "/raft/append";
    pub const VOTE: &str = "/raft/vote";
    pub const SNAPSHOT: &str = "/raft/snapshot";
    /// A follower's operations, for the leader to propose.
    pub const FORWARD: &str = "/raft/forward";
    /// A stopping leader asks a caught-up follower to campaign (`crate::handover`).
    pub const HANDOVER: &str = "/raft/handover";
    /// A node's own figures, for a peer serving the status page (`crate::network::figures`).
    pub const STATUS: &str = "/raft/status";
    /// The features a node supports, for the leader to switch on (`crate::upgrade`).
    pub const FEATURES: &str = "/raft/features";
}

mod forward;
mod status;

pub use forward::{forward, Forwarded, Group, Unsent};
pub use status::{features, figures};

pub const BINCODE: &str = "application/x-bincode";

/// How a node reaches its peers: one pooled HTTP client and the TLS
/// settings for Raft RPC's own connections (this node's certificate, the
/// cluster CA), and the scheme every peer is spoken to in. With TLS it is
/// `https` for every peer: never clear text.
#[derive(Clone)]
pub struct Peers {
    pub http: reqwest::Client,
    tls: Option<Arc<rustls::ClientConfig>>,
    scheme: &'static str,
}

impl Peers {
    pub fn new(http: reqwest::Client, tls: Option<Arc<rustls::ClientConfig>>) -> Self {
        let scheme = if tls.is_some() { "https" } else { "http" };
        Peers { http, tls, scheme }
    }

    /// The URL of `path_and_query` on the peer at `addr` (`host:port`).
    pub fn url(&self, addr: &str, path_and_query: &str) -> String {
        format!("{}://{addr}{path_and_query}", self.scheme)
    }
}

#[derive(Clone)]
pub struct Network {
    peers: Peers,
    durable: DurableWatch,
}

impl Network {
    /// `durable`: this node's log, whose durable end bounds the commit a
    /// leader passes on (`store::log::durable`).
    pub fn new(peers: Peers, durable: DurableWatch) -> Self {
        Network { peers, durable }
    }
}

impl RaftNetworkFactory<TypeConfig> for Network {
    type Network = PeerClient;

    async fn new_client(&mut self, target: NodeId, node: &NodeAddr) -> Self::Network {
        // An address that makes no endpoint fails each RPC, as an unreachable peer does.
        let conn = Endpoint::new(&self.peers.url(&node.addr, ""), self.peers.tls.clone()).map(Conn::new);
        PeerClient { conn, target, durable: self.durable.clone() }
    }
}

pub struct PeerClient {
    conn: Result<Conn, String>,
    target: NodeId,
    durable: DurableWatch,
}

type RpcResult<T, E> = Result<T, RPCError<NodeId, NodeAddr, RaftError<NodeId, E>>>;

impl PeerClient {
    async fn call<Req, Resp, E>(&mut self, path: &str, req: &Req, option: &RPCOption) -> RpcResult<Resp, E>
    where
        Req: Serialize,
        Resp: DeserializeOwned,
        E: std::error::Error + DeserializeOwned,
    {
        let conn = match &mut self.conn {
            Ok(conn) => conn,
            Err(e) => return Err(RPCError::Unreachable(Unreachable::new(&std::io::Error::other(e.clone())))),
        };
        let body = encode(req).map_err(|e| RPCError::Network(NetworkError::new(&e)))?;
        let (status, bytes) = conn.post(path, BINCODE, body.into(), option.hard_ttl()).await.map_err(|e| match e {
            ConnError::Connect(..) => RPCError::Unreachable(Unreachable::new(&e)),
            _ => RPCError::Network(NetworkError::new(&e)),
        })?;
        if !status.is_success() {
            let msg = format!("{path} answered {status}: {}", String::from_utf8_lossy(&bytes));
            return Err(RPCError::Network(NetworkError::new(&std::io::Error::other(msg))));
        }
        let result: Result<Resp, RaftError<NodeId, E>> =
            decode(&bytes).map_err(|e| RPCError::Network(NetworkError::new(&e)))?;
        result.map_err(|e| RPCError::RemoteError(RemoteError::new(self.target, e)))
    }
}

impl RaftNetwork<TypeConfig> for PeerClient {
    async fn append_entries(
        &mut self,
        mut rpc: AppendEntriesRequest<TypeConfig>,
        option: RPCOption,
    ) -> RpcResult<AppendEntriesResponse<NodeId>, openraft::error::Infallible> {
        // A follower applies what it is told is committed: only what this
        // leader also has on disk, so what it applies is on a majority's.
        rpc.leader_commit = self.durable.clamp(rpc.leader_commit);
        self.call(paths::APPEND, &rpc, &option).await
    }

    async fn install_snapshot(
        &mut self,
        rpc: InstallSnapshotRequest<TypeConfig>,
        option: RPCOption,
    ) -> RpcResult<InstallSnapshotResponse<NodeId>, InstallSnapshotError> {
        self.call(paths::SNAPSHOT, &rpc, &option).await
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<NodeId>,
        option: RPCOption,
    ) -> RpcResult<VoteResponse<NodeId>, openraft::error::Infallible> {
        self.call(paths::VOTE, &rpc, &option).await
    }
}

//! The one place openraft is configured for idem: `declare_raft_types!` and the
//! aliases every other module uses, so a change of openraft's generics touches
//! one file.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::registry::{Request, Response};

/// A node's id as it appears in `--initial-cluster` and `/v1/cluster`.
pub type NodeId = u64;

/// What the cluster knows of a node: the address its HTTP port is reachable at
/// (both the client API and Raft RPC are served there).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeAddr {
    pub addr: String,
}

impl fmt::Display for NodeAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.addr)
    }
}

openraft::declare_raft_types!(
    /// idem's Raft: registry commands in, registry outcomes out, snapshots as
    /// files so a large state is streamed rather than held in memory.
    pub TypeConfig:
        D = Request,
        R = Response,
        NodeId = NodeId,
        Node = NodeAddr,
        Entry = openraft::Entry<TypeConfig>,
        SnapshotData = tokio::fs::File,
        AsyncRuntime = openraft::TokioRuntime,
);

pub type Raft = openraft::Raft<TypeConfig>;
pub type Entry = openraft::Entry<TypeConfig>;
pub type LogId = openraft::LogId<NodeId>;
pub type Vote = openraft::Vote<NodeId>;
pub type StoredMembership = openraft::StoredMembership<NodeId, NodeAddr>;
pub type SnapshotMeta = openraft::SnapshotMeta<NodeId, NodeAddr>;
pub type Snapshot = openraft::Snapshot<TypeConfig>;
pub type StorageError = openraft::StorageError<NodeId>;
pub type RaftMetrics = openraft::RaftMetrics<NodeId, NodeAddr>;

//! Errors of the node below its HTTP edge. Nothing here knows HTTP: the API
//! maps these to statuses in one place (`api::error`).

use crate::types::StorageError;

/// Why a node could not start or stopped abnormally.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    #[error("bad configuration: {0}")]
    Config(String),
    #[error("storage: {0}")]
    Storage(#[from] StorageError),
    #[error("raft: {0}")]
    Raft(String),
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
}

/// Why the cluster did not carry out a proposal or confirm a linearizable
/// read. Serializable: a leader answers it to the follower that forwarded
/// the proposal.
#[derive(Debug, Clone, thiserror::Error, serde::Serialize, serde::Deserialize)]
pub enum ClusterError {
    /// No leader or no quorum in time, or leadership lost meanwhile: the
    /// outcome of a write is unknown and a retry must be safe.
    #[error("{0}")]
    Unavailable(String),
    /// Raft refused the request itself (an impossible membership change);
    /// nothing was changed.
    #[error("{0}")]
    Refused(String),
    /// The leader, checking a forwarded caller's token again, refused it
    /// (its token file says otherwise than the follower's); nothing was changed.
    #[error("{0}")]
    Forbidden(String),
}

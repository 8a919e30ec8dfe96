//! The record as replicas store it. Its wire form is the API's business
//! (`api::reply`), built only on the node that answers.

use serde::{Deserialize, Serialize};

/// `in_progress` or `completed`; a record that is absent is not stored.
///
/// The variants' order is part of the on-disk format (bincode writes the index).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum RecordState {
    InProgress,
    Completed,
}

/// Stored form of a record. No `serde_json::Value` inside (bincode), and the
/// claim's retention is kept so completion can restart the same window.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredRecord {
    pub state: RecordState,
    pub token: u64,
    pub attempt: u32,
    pub claim_id: Option<String>,
    pub owner: Option<String>,
    pub fingerprint: Option<String>,
    pub checkpoint: Option<StoredCheckpoint>,
    pub result_json: Option<String>,
    pub created_at_ms: u64,
    pub updated_at_ms: u64,
    pub lease_expires_at_ms: Option<u64>,
    pub expires_at_ms: u64,
    pub retention_ms: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredCheckpoint {
    pub stage: String,
    pub data_json: String,
    pub at_ms: u64,
}

impl StoredRecord {
    /// Absent to every operation and read once the replicated clock reaches its expiry.
    pub fn is_live(&self, clock_ms: u64) -> bool {
        clock_ms < self.expires_at_ms
    }
}

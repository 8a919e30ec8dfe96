//! The record as replicas store it, and its conversion to the wire [`Record`].

use idem_client::proto::{Checkpoint, Record, RecordState};
use serde::{Deserialize, Serialize};

use super::RecordId;

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

/// JSON text we wrote ourselves from a parsed value; it always parses back.
fn parse_json(text: &str) -> serde_json::Value {
    serde_json::from_str(text).unwrap_or(serde_json::Value::Null)
}

impl StoredRecord {
    /// Absent to every operation and read once the replicated clock reaches its expiry.
    pub fn is_live(&self, clock_ms: u64) -> bool {
        clock_ms < self.expires_at_ms
    }

    pub fn to_wire(&self, id: &RecordId) -> Record {
        Record {
            namespace: id.ns.clone(),
            key: id.key.clone(),
            state: self.state,
            token: self.token,
            attempt: self.attempt,
            claim_id: self.claim_id.clone(),
            owner: self.owner.clone(),
            fingerprint: self.fingerprint.clone(),
            checkpoint: self.checkpoint.as_ref().map(|c| Checkpoint {
                stage: c.stage.clone(),
                data: parse_json(&c.data_json),
                at_ms: c.at_ms,
            }),
            result: self.result_json.as_deref().map(parse_json).unwrap_or_default(),
            created_at_ms: self.created_at_ms,
            updated_at_ms: self.updated_at_ms,
            lease_expires_at_ms: self.lease_expires_at_ms,
            expires_at_ms: self.expires_at_ms,
        }
    }
}

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

    /// In progress with its lease run out by the replicated clock: the next
    /// claim takes it over (`apply`'s takeover rule), but none has yet.
    pub fn is_abandoned(&self, clock_ms: u64) -> bool {
        self.is_live(clock_ms)
            && self.state == RecordState::InProgress
            && self.lease_expires_at_ms.is_some_and(|end| end <= clock_ms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::strategies::stored;

    #[test]
    fn abandoned_from_the_lease_end_until_expiry_and_never_once_completed() {
        let rec = stored(RecordState::InProgress, Some(100), 1_000);
        assert!(!rec.is_abandoned(99));
        assert!(rec.is_abandoned(100), "the takeover rule: the lease is over at its end");
        assert!(!rec.is_abandoned(1_000), "expired is absent, not abandoned");
        let done = StoredRecord { state: RecordState::Completed, lease_expires_at_ms: None, ..rec };
        assert!(!done.is_abandoned(500));
    }
}

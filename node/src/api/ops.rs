//! From a wire operation to a registry [`Op`]: validation and defaults, once,
//! for single calls and batch entries alike.

use idem_client::proto::{limits, BatchOp};

use super::error::ApiError;
use crate::registry::{Op, RecordId};

fn json_text(v: &serde_json::Value) -> String {
    // Serialising a parsed `Value` cannot fail.
    serde_json::to_string(v).unwrap_or_else(|_| "null".into())
}

pub fn resolve(op: BatchOp) -> Result<Op, ApiError> {
    op.validate().map_err(|e| ApiError::BadRequest(e.0))?;
    Ok(match op {
        BatchOp::Claim { ns, key, req } => Op::Claim {
            id: RecordId::new(ns, key),
            lease_ms: req.lease_ms.unwrap_or(limits::LEASE_MS_DEFAULT),
            retention_ms: req.retention_ms.unwrap_or(limits::RETENTION_MS_DEFAULT),
            fingerprint: req.fingerprint,
            owner: req.owner,
            claim_id: req.claim_id,
        },
        BatchOp::Checkpoint { ns, key, req } => Op::Checkpoint {
            id: RecordId::new(ns, key),
            token: req.token,
            stage: req.stage,
            data_json: json_text(&req.data),
            lease_ms: req.lease_ms,
        },
        BatchOp::Complete { ns, key, req } => Op::Complete {
            id: RecordId::new(ns, key),
            token: req.token,
            result_json: json_text(&req.result),
            retention_ms: req.retention_ms,
        },
        BatchOp::Release { ns, key, req } => Op::Release { id: RecordId::new(ns, key), token: req.token },
        BatchOp::Delete { ns, key } => Op::Delete { id: RecordId::new(ns, key) },
    })
}

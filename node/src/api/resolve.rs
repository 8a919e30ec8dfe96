//! From a wire request to a registry [`Op`]: validation and defaults, once.
//! A single call's path was validated by its extractor, so only its body is
//! checked here; a batch op carries its own namespace and key and checks them.

use idem_client::proto::{
    limits, validate_key, validate_namespace, BatchOp, CheckpointRequest, ClaimRequest, CompleteRequest, ReleaseRequest,
};

use super::error::ApiError;
use crate::auth::Perm;
use crate::registry::{Op, RecordId};

fn json_text(v: &serde_json::Value) -> String {
    // Serialising a parsed `Value` cannot fail.
    serde_json::to_string(v).unwrap_or_else(|_| "null".into())
}

fn bad(e: idem_client::proto::Invalid) -> ApiError {
    ApiError::BadRequest(e.0)
}

pub fn claim(id: RecordId, req: ClaimRequest) -> Result<Op, ApiError> {
    req.validate().map_err(bad)?;
    Ok(Op::Claim {
        id,
        lease_ms: req.lease_ms.unwrap_or(limits::LEASE_MS_DEFAULT),
        retention_ms: req.retention_ms.unwrap_or(limits::RETENTION_MS_DEFAULT),
        fingerprint: req.fingerprint,
        owner: req.owner,
        claim_id: req.claim_id,
    })
}

pub fn checkpoint(id: RecordId, req: CheckpointRequest) -> Result<Op, ApiError> {
    req.validate().map_err(bad)?;
    Ok(Op::Checkpoint {
        id,
        token: req.token,
        stage: req.stage,
        data_json: json_text(&req.data),
        lease_ms: req.lease_ms,
    })
}

pub fn complete(id: RecordId, req: CompleteRequest) -> Result<Op, ApiError> {
    req.validate().map_err(bad)?;
    Ok(Op::Complete { id, token: req.token, result_json: json_text(&req.result), retention_ms: req.retention_ms })
}

pub fn release(id: RecordId, req: ReleaseRequest) -> Op {
    Op::Release { id, token: req.token }
}

pub fn delete(id: RecordId) -> Op {
    Op::Delete { id }
}

/// A batch op: its namespace and key first, then its body as the single call would.
pub fn batch_op(op: BatchOp) -> Result<Op, ApiError> {
    let (ns, key) = op.target();
    validate_namespace(ns).map_err(bad)?;
    validate_key(key).map_err(bad)?;
    match op {
        BatchOp::Claim { ns, key, req } => claim(RecordId::new(ns, key), req),
        BatchOp::Checkpoint { ns, key, req } => checkpoint(RecordId::new(ns, key), req),
        BatchOp::Complete { ns, key, req } => complete(RecordId::new(ns, key), req),
        BatchOp::Release { ns, key, req } => Ok(release(RecordId::new(ns, key), req)),
        BatchOp::Delete { ns, key } => Ok(delete(RecordId::new(ns, key))),
    }
}

/// The grant an operation needs (API.md, Security).
pub fn perm(op: &Op) -> Perm {
    match op {
        Op::Claim { .. } | Op::Checkpoint { .. } | Op::Complete { .. } | Op::Release { .. } => Perm::Write,
        Op::Delete { .. } => Perm::Delete,
    }
}

//! `POST /v1/batch`: many operations, one Raft entry, applied in order.

use std::sync::Arc;

use axum::extract::State;
use axum::Json;
use idem_client::proto::{limits, BatchRequest, BatchResponse, BatchResult};

use super::error::ApiError;
use super::extract::JsonBody;
use super::ops::resolve;
use super::reply::Reply;
use crate::app::App;
use crate::registry::Command;

/// Invalid operations answer their own 400 in place and are not proposed;
/// the valid ones go to the log together.
pub async fn batch(
    State(app): State<Arc<App>>,
    JsonBody(req): JsonBody<BatchRequest>,
) -> Result<Json<BatchResponse>, ApiError> {
    if req.ops.len() > limits::BATCH_MAX_OPS {
        return Err(ApiError::BadRequest(format!("a batch holds at most {} ops", limits::BATCH_MAX_OPS)));
    }
    let resolved: Vec<_> = req.ops.into_iter().map(resolve).collect();
    let valid: Vec<_> = resolved.iter().filter_map(|r| r.as_ref().ok().cloned()).collect();
    let mut outcomes =
        if valid.is_empty() { Vec::new() } else { app.propose(Command::Batch(valid)).await?.outcomes }.into_iter();
    let mut results = Vec::with_capacity(resolved.len());
    for r in resolved {
        let reply: Reply = match r {
            Ok(_) => outcomes.next().ok_or_else(|| ApiError::internal("batch outcome missing"))?.into(),
            Err(e) => e.into(),
        };
        results.push(BatchResult { status: reply.status.as_u16(), body: reply.body });
    }
    Ok(Json(BatchResponse { results }))
}

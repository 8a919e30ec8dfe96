//! `POST /v1/batch`: many operations, one Raft entry, applied in order.

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use axum::Extension;
use idem_client::proto::{limits, BatchRequest, BatchResponse, BatchResult};

use super::auth;
use super::error::ApiError;
use super::extract::JsonBody;
use super::metrics;
use super::reply::{json, json_response, Reply};
use super::resolve;
use crate::app::App;
use crate::auth::Caller;
use crate::registry::RecordId;

/// Invalid operations answer their own 400 in place, and operations the
/// caller has no grant for their own 403; neither is proposed. The rest go
/// to the log together.
pub async fn batch(
    State(app): State<Arc<App>>,
    Extension(caller): Extension<Caller>,
    JsonBody(req): JsonBody<BatchRequest>,
) -> Result<Response, ApiError> {
    if req.ops.len() > limits::BATCH_MAX_OPS {
        return Err(ApiError::BadRequest(format!("a batch holds at most {} ops", limits::BATCH_MAX_OPS)));
    }
    let mut valid = Vec::with_capacity(req.ops.len());
    // Each op's record id where it is valid, its refusal where not, in order.
    let slots: Vec<_> = req
        .ops
        .into_iter()
        .map(|op| -> Result<RecordId, ApiError> {
            let op = resolve::batch_op(op)?;
            auth::allow(&caller, &op.id().ns, resolve::perm(&op))?;
            let id = op.id().clone();
            valid.push(op);
            Ok(id)
        })
        .collect();
    let mut outcomes = if valid.is_empty() { Vec::new() } else { app.submit(valid, &caller).await? }.into_iter();
    let mut results = Vec::with_capacity(slots.len());
    for slot in slots {
        let reply = match slot {
            Ok(id) => {
                let outcome = outcomes.next().ok_or_else(|| ApiError::internal("batch outcome missing"))?;
                metrics::count(&outcome);
                Reply::outcome(&id, outcome)
            }
            Err(e) => e.into(),
        };
        results.push(BatchResult { status: reply.status.as_u16(), body: reply.body });
    }
    Ok(json_response(StatusCode::OK, &json(&BatchResponse { results })))
}

//! `/v1/ns/{ns}/keys/{key}...`: claim, checkpoint, complete, release, read, delete.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::{Extension, Json};
use idem_client::proto::{
    CheckpointRequest, ClaimRequest, CompleteRequest, Consistency, GetQuery, Record, ReleaseRequest,
};

use super::auth;
use super::error::ApiError;
use super::extract::{JsonBody, QueryArgs, RecordPath};
use super::metrics;
use super::reply::{wire, Reply};
use super::resolve;
use crate::app::App;
use crate::auth::{Caller, Perm};
use crate::registry::{Op, RecordId, RecordState};

/// Check the caller's grant, propose `op` on `id` and answer with its outcome.
async fn execute(app: &App, caller: &Caller, id: &RecordId, op: Op) -> Result<Reply, ApiError> {
    auth::allow(caller, &id.ns, resolve::perm(&op))?;
    let outcome =
        app.submit(vec![op], caller).await?.pop().ok_or_else(|| ApiError::internal("an op without outcome"))?;
    metrics::count(&outcome);
    Ok(Reply::outcome(id, outcome))
}

pub async fn claim(
    State(app): State<Arc<App>>,
    Extension(caller): Extension<Caller>,
    RecordPath(id): RecordPath,
    JsonBody(req): JsonBody<ClaimRequest>,
) -> Result<Reply, ApiError> {
    execute(&app, &caller, &id, resolve::claim(id.clone(), req)?).await
}

pub async fn checkpoint(
    State(app): State<Arc<App>>,
    Extension(caller): Extension<Caller>,
    RecordPath(id): RecordPath,
    JsonBody(req): JsonBody<CheckpointRequest>,
) -> Result<Reply, ApiError> {
    execute(&app, &caller, &id, resolve::checkpoint(id.clone(), req)?).await
}

pub async fn complete(
    State(app): State<Arc<App>>,
    Extension(caller): Extension<Caller>,
    RecordPath(id): RecordPath,
    JsonBody(req): JsonBody<CompleteRequest>,
) -> Result<Reply, ApiError> {
    execute(&app, &caller, &id, resolve::complete(id.clone(), req)?).await
}

pub async fn release(
    State(app): State<Arc<App>>,
    Extension(caller): Extension<Caller>,
    RecordPath(id): RecordPath,
    JsonBody(req): JsonBody<ReleaseRequest>,
) -> Result<Reply, ApiError> {
    execute(&app, &caller, &id, resolve::release(id.clone(), req)).await
}

pub async fn delete(
    State(app): State<Arc<App>>,
    Extension(caller): Extension<Caller>,
    RecordPath(id): RecordPath,
) -> Result<Reply, ApiError> {
    execute(&app, &caller, &id, resolve::delete(id.clone())).await
}

/// Read a record. Linearizable reads were forwarded to the leader, which
/// confirms its leadership first; with `wait_ms`, an in-progress record is
/// watched (woken by each applied entry, no polling) until it settles.
pub async fn get(
    State(app): State<Arc<App>>,
    Extension(caller): Extension<Caller>,
    RecordPath(id): RecordPath,
    QueryArgs(query): QueryArgs<GetQuery>,
) -> Result<Json<Record>, ApiError> {
    query.validate().map_err(|e| ApiError::BadRequest(e.0))?;
    auth::allow(&caller, &id.ns, Perm::Read)?;
    if query.consistency == Consistency::Linearizable {
        app.ensure_linearizable().await?;
    }
    let deadline = tokio::time::Instant::now() + Duration::from_millis(query.wait_ms.unwrap_or(0));
    let mut applied = app.view.subscribe();
    loop {
        applied.borrow_and_update();
        let record = app.view.get(&id)?.ok_or(ApiError::NotFound)?;
        if record.state == RecordState::Completed || tokio::time::Instant::now() >= deadline {
            return Ok(Json(wire(&id, &record)));
        }
        match tokio::time::timeout_at(deadline, applied.changed()).await {
            Ok(Ok(())) => continue,
            Ok(Err(_)) => return Err(ApiError::Unavailable("the node is shutting down".into())),
            Err(_) => return Ok(Json(wire(&id, &record))),
        }
    }
}

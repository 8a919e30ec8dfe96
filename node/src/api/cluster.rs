//! `/v1/cluster`: status and membership changes.

use std::collections::BTreeSet;
use std::sync::Arc;

use axum::extract::State;
use axum::{Extension, Json};
use idem_client::proto::{AddLearnerRequest, ChangeVotersRequest, ClusterStatus, Member};

use super::auth;
use super::error::ApiError;
use super::extract::JsonBody;
use crate::app::App;
use crate::auth::Caller;
use crate::types::{NodeAddr, NodeId};

pub async fn status(State(app): State<Arc<App>>) -> Json<ClusterStatus> {
    let s = app.status();
    Json(ClusterStatus {
        node_id: s.id,
        leader_id: s.leader,
        term: s.term,
        last_log_index: s.last_log_index,
        committed_index: Some(s.committed_index),
        applied_index: s.applied_index,
        clock_ms: s.clock_ms,
        members: s.members.into_iter().map(|m| Member { id: m.id, addr: m.addr, voter: m.voter }).collect(),
    })
}

fn membership_error(e: impl std::fmt::Display) -> ApiError {
    ApiError::Unavailable(format!("membership change failed: {e}"))
}

/// Add a learner and wait until it has caught up with the log.
pub async fn add_learner(
    State(app): State<Arc<App>>,
    Extension(caller): Extension<Caller>,
    JsonBody(req): JsonBody<AddLearnerRequest>,
) -> Result<Json<ClusterStatus>, ApiError> {
    auth::admin(&caller)?;
    if req.addr.trim().is_empty() {
        return Err(ApiError::BadRequest("addr must be host:port".into()));
    }
    app.raft.add_learner(req.id, NodeAddr { addr: req.addr }, true).await.map_err(membership_error)?;
    Ok(status(State(app)).await)
}

pub async fn change_voters(
    State(app): State<Arc<App>>,
    Extension(caller): Extension<Caller>,
    JsonBody(req): JsonBody<ChangeVotersRequest>,
) -> Result<Json<ClusterStatus>, ApiError> {
    auth::admin(&caller)?;
    let ids: BTreeSet<NodeId> = req.ids.into_iter().collect();
    if ids.is_empty() {
        return Err(ApiError::BadRequest("ids must name at least one voter".into()));
    }
    let known: BTreeSet<NodeId> = app.status().members.iter().map(|m| m.id).collect();
    if let Some(unknown) = ids.iter().find(|id| !known.contains(id)) {
        return Err(ApiError::BadRequest(format!("node {unknown} is not a member; add it as a learner first")));
    }
    app.raft.change_membership(ids, false).await.map_err(membership_error)?;
    Ok(status(State(app)).await)
}

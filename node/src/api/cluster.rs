//! `/v1/cluster`: status and membership changes.

use std::collections::BTreeSet;
use std::sync::Arc;

use axum::extract::State;
use axum::Json;
use idem_client::proto::{AddLearnerRequest, ChangeVotersRequest, ClusterStatus, Member};

use super::error::ApiError;
use super::extract::JsonBody;
use crate::app::App;
use crate::types::{NodeAddr, NodeId};

pub async fn status(State(app): State<Arc<App>>) -> Json<ClusterStatus> {
    let m = app.metrics();
    let membership = m.membership_config.membership();
    let voters: BTreeSet<NodeId> = membership.voter_ids().collect();
    let members = membership
        .nodes()
        .map(|(id, node)| Member { id: *id, addr: node.addr.clone(), voter: voters.contains(id) })
        .collect();
    Json(ClusterStatus {
        node_id: app.id,
        leader_id: crate::app::known_leader(&m),
        term: m.current_term,
        last_log_index: m.last_log_index,
        committed_index: Some(app.committed.load(std::sync::atomic::Ordering::Relaxed)),
        applied_index: m.last_applied.map(|l| l.index),
        clock_ms: app.view.clock_ms(),
        members,
    })
}

fn membership_error(e: impl std::fmt::Display) -> ApiError {
    ApiError::Unavailable(format!("membership change failed: {e}"))
}

/// Add a learner and wait until it has caught up with the log.
pub async fn add_learner(
    State(app): State<Arc<App>>,
    JsonBody(req): JsonBody<AddLearnerRequest>,
) -> Result<Json<ClusterStatus>, ApiError> {
    if req.addr.trim().is_empty() {
        return Err(ApiError::BadRequest("addr must be host:port".into()));
    }
    app.raft.add_learner(req.id, NodeAddr { addr: req.addr }, true).await.map_err(membership_error)?;
    Ok(status(State(app)).await)
}

pub async fn change_voters(
    State(app): State<Arc<App>>,
    JsonBody(req): JsonBody<ChangeVotersRequest>,
) -> Result<Json<ClusterStatus>, ApiError> {
    let ids: BTreeSet<NodeId> = req.ids.into_iter().collect();
    if ids.is_empty() {
        return Err(ApiError::BadRequest("ids must name at least one voter".into()));
    }
    let known: BTreeSet<NodeId> = app.metrics().membership_config.membership().nodes().map(|(id, _)| *id).collect();
    if let Some(unknown) = ids.iter().find(|id| !known.contains(id)) {
        return Err(ApiError::BadRequest(format!("node {unknown} is not a member; add it as a learner first")));
    }
    app.raft.change_membership(ids, false).await.map_err(membership_error)?;
    Ok(status(State(app)).await)
}

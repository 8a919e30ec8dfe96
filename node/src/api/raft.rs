//! `/raft/*`: the server side of Raft RPC and of forwarded operations,
//! bincode in and out. Clients never call these; the client side is `crate::network`.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use serde::de::DeserializeOwned;
use serde::Serialize;

use super::resolve;
use crate::app::App;
use crate::codec::{decode, encode};
use crate::error::ClusterError;
use crate::handover;
use crate::network::{paths, Group, BINCODE};
use crate::registry::{Outcome, MAX_OPS_PER_ENTRY};

fn bincode_reply<T: Serialize>(value: &T) -> Response {
    match encode(value) {
        Ok(bytes) => ([(header::CONTENT_TYPE, BINCODE)], bytes).into_response(),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
    }
}

fn parse<T: DeserializeOwned>(body: &[u8]) -> Result<T, Response> {
    decode(body).map_err(|e| (StatusCode::BAD_REQUEST, format!("undecodable raft rpc: {e}")).into_response())
}

async fn append(State(app): State<Arc<App>>, body: Bytes) -> Response {
    match parse(&body) {
        Ok(req) => bincode_reply(&app.raft.append_entries(req).await),
        Err(resp) => resp,
    }
}

async fn vote(State(app): State<Arc<App>>, body: Bytes) -> Response {
    match parse(&body) {
        Ok(req) => bincode_reply(&app.raft.vote(req).await),
        Err(resp) => resp,
    }
}

async fn snapshot(State(app): State<Arc<App>>, body: Bytes) -> Response {
    match parse(&body) {
        Ok(req) => bincode_reply(&app.raft.install_snapshot(req).await),
        Err(resp) => resp,
    }
}

/// A stopping leader asks this node to campaign (see `crate::handover`):
/// 200 once the election has started, 409 with the reason when it declines.
async fn handover(State(app): State<Arc<App>>, body: Bytes) -> Response {
    match parse(&body) {
        Ok(req) => match handover::campaign(&app, req).await {
            Ok(()) => StatusCode::OK.into_response(),
            Err(why) => (StatusCode::CONFLICT, why).into_response(),
        },
        Err(resp) => resp,
    }
}

/// This node's own figures, for a peer serving the status page (`super::status`).
async fn status(State(app): State<Arc<App>>) -> Response {
    bincode_reply(&super::status::figures(&app.status()))
}

/// The features this node supports (`crate::upgrade`).
async fn features() -> Response {
    bincode_reply(&crate::upgrade::supported())
}

/// A follower's operations: proposed here if this node leads, else refused
/// (the follower's callers retry); never forwarded a second time. Each
/// group's caller is checked again against this node's tokens.
async fn forward(State(app): State<Arc<App>>, body: Bytes) -> Response {
    if app.handing_over() {
        // 421: nothing was proposed, so the follower sends them to the next leader.
        return (StatusCode::MISDIRECTED_REQUEST, "this node is handing leadership over").into_response();
    }
    let groups: Vec<Group> = match parse(&body) {
        Ok(groups) => groups,
        Err(resp) => return resp,
    };
    let size: usize = groups.iter().map(|g| g.ops.len()).sum();
    if groups.iter().any(|g| g.ops.is_empty()) || size > MAX_OPS_PER_ENTRY {
        return (StatusCode::BAD_REQUEST, format!("1 to {MAX_OPS_PER_ENTRY} ops per forward")).into_response();
    }
    let answers = groups.into_iter().map(|group| {
        let app = app.clone();
        async move {
            recheck(&app, &group)?;
            app.submit_forwarded(group).await
        }
    });
    let answers: Vec<Result<Vec<Outcome>, ClusterError>> = futures::future::join_all(answers).await;
    bincode_reply(&Ok::<_, ClusterError>(answers))
}

/// The forwarded caller may do every op of `group`, by this node's tokens.
fn recheck(app: &App, group: &Group) -> Result<(), ClusterError> {
    let Some(tokens) = &app.tokens else { return Ok(()) };
    let refused = |why: String| ClusterError::Forbidden(format!("the leader refused the caller: {why}"));
    let identity =
        group.caller.and_then(|d| tokens.by_digest(&d)).ok_or_else(|| refused("no token it knows".into()))?;
    match group.ops.iter().find(|op| !identity.allows(&op.id().ns, resolve::perm(op))) {
        Some(op) => Err(refused(format!("token {:?} has no grant for {:?}", identity.name, op.id().ns))),
        None => Ok(()),
    }
}

pub fn routes() -> Router<Arc<App>> {
    Router::new()
        .route(paths::APPEND, post(append))
        .route(paths::VOTE, post(vote))
        .route(paths::SNAPSHOT, post(snapshot))
        .route(paths::FORWARD, post(forward))
        .route(paths::HANDOVER, post(handover))
        .route(paths::STATUS, get(status))
        .route(paths::FEATURES, get(features))
}

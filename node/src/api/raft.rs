//! `/raft/*`: the server side of Raft RPC and of forwarded operations,
//! bincode in and out. Clients never call these; the client side is `crate::network`.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::app::App;
use crate::codec::{decode, encode};
use crate::network::{paths, BINCODE};
use crate::registry::{Op, MAX_OPS_PER_ENTRY};

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

/// A follower's operations: proposed here if this node leads, else refused
/// (the follower's callers retry); never forwarded a second time.
async fn forward(State(app): State<Arc<App>>, body: Bytes) -> Response {
    let ops: Vec<Op> = match parse(&body) {
        Ok(ops) => ops,
        Err(resp) => return resp,
    };
    if ops.is_empty() || ops.len() > MAX_OPS_PER_ENTRY {
        return (StatusCode::BAD_REQUEST, format!("1 to {MAX_OPS_PER_ENTRY} ops per forward")).into_response();
    }
    bincode_reply(&app.submit_forwarded(ops).await)
}

pub fn routes() -> Router<Arc<App>> {
    Router::new()
        .route(paths::APPEND, post(append))
        .route(paths::VOTE, post(vote))
        .route(paths::SNAPSHOT, post(snapshot))
        .route(paths::FORWARD, post(forward))
}

//! The HTTP surface of a node: the client API of API.md, Raft RPC, health,
//! metrics and the status page, all on one port.

mod admin;
mod auth;
mod batch;
#[cfg(test)]
mod bodies_fuzz;
mod cluster;
mod debug;
mod error;
mod extract;
mod forward;
mod gate;
mod health;
mod keys;
mod list;
mod metrics;
mod openapi;
mod raft;
mod reply;
mod resolve;
mod status;

use std::sync::Arc;

use axum::extract::DefaultBodyLimit;
use axum::middleware::{from_fn, from_fn_with_state};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::Router;

use crate::app::App;
use error::ApiError;
use extract::BodyRules;
use gate::Gate;

/// Raft messages (log batches, snapshot chunks) may exceed the client body
/// limit; they are bounded by what the codec will decode.
const RAFT_BODY_LIMIT: usize = crate::codec::MAX_DECODE_BYTES;

pub use metrics::register as register_metrics;

pub fn router(app: Arc<App>) -> Router {
    let limit = app.config.max_body_bytes;
    let client_gate = Gate { app: app.clone(), body: BodyRules { max_bytes: limit, timeout: app.config.body_timeout } };
    let peer_gate =
        Gate { app: app.clone(), body: BodyRules { max_bytes: RAFT_BODY_LIMIT, timeout: app.config.body_timeout } };
    let client_api = Router::new()
        .route("/v1/ns/{ns}/keys/{key}/claim", post(keys::claim))
        .route("/v1/ns/{ns}/keys/{key}/checkpoint", post(keys::checkpoint))
        .route("/v1/ns/{ns}/keys/{key}/complete", post(keys::complete))
        .route("/v1/ns/{ns}/keys/{key}/release", post(keys::release))
        .route("/v1/ns/{ns}/keys/{key}", get(keys::get).delete(keys::delete))
        .route("/v1/ns/{ns}/keys", get(list::list))
        .route("/v1/batch", post(batch::batch))
        .route("/v1/cluster", get(cluster::status))
        .route("/v1/cluster/learners", post(cluster::add_learner))
        .route("/v1/cluster/voters", post(cluster::change_voters))
        .route("/v1/admin/snapshot", get(admin::snapshot))
        .route("/metrics", get(metrics::render))
        .route("/v1/status", get(status::report))
        .route_layer(from_fn_with_state(client_gate, gate::client))
        .layer(DefaultBodyLimit::max(limit));
    let mut open = Router::new()
        .route("/", get(status::page))
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .route("/openapi.yaml", get(openapi::serve));
    if app.config.test_hooks {
        open = open.route("/debug/clock-offset", post(debug::clock_offset));
    }
    let raft = raft::routes()
        .route_layer(from_fn_with_state(peer_gate, gate::peer))
        .layer(DefaultBodyLimit::max(RAFT_BODY_LIMIT));
    Router::new()
        .merge(client_api)
        .merge(open)
        .merge(raft)
        .fallback(|| async { ApiError::NotFound.into_response() })
        .method_not_allowed_fallback(|| async { ApiError::MethodNotAllowed.into_response() })
        .layer(from_fn(metrics::track_http))
        .with_state(app)
}

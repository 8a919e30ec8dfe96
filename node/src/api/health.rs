//! `/healthz` (the process serves) and `/readyz` (knows a leader and has
//! applied up to the commit index it learned), as rqlite means them.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde_json::{json, Value};

use crate::app::App;

pub async fn healthz() -> Json<Value> {
    Json(json!({"status": "ok"}))
}

pub async fn readyz(State(app): State<Arc<App>>) -> (StatusCode, Json<Value>) {
    let m = app.metrics();
    let applied = m.last_applied.map_or(0, |l| l.index);
    let committed = app.committed.load(Ordering::Relaxed);
    let leader = crate::app::known_leader(&m);
    let ready = leader.is_some() && applied >= committed;
    let status = if ready { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    (status, Json(json!({"ready": ready, "leader_id": leader, "applied_index": applied, "committed_index": committed})))
}
